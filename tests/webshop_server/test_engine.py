"""The engine: transitions, observations, scores and the oracle."""

from __future__ import annotations

import pickle
from dataclasses import replace

import pytest

from webshop_server import Catalog, Engine, SessionRecord, parse_action
from webshop_server.engine import DONE, ITEM, RESULTS, SEARCH
from webshop_server.reward import fuzzy_match, normalize_color
from webshop_server.synthetic import generate_catalog
from webshop_server.text import in_charset


def run(engine: Engine, record: SessionRecord, actions: list[str]) -> SessionRecord:
    for action in actions:
        result = engine.transition(record, action)
        assert result.error is None, (action, result.error)
        record = result.record
    return record


def test_oracle_reaches_one_on_every_synthetic_goal(engine: Engine):
    goals = engine.catalog.goals
    assert len(goals) > 3000
    for index in range(len(goals)):
        record = run(engine, engine.new_record(index), engine.oracle_actions(engine.new_record(index)))
        assert record.done and record.reward == 1.0, index


@pytest.mark.parametrize("seed", [1, 2])
def test_oracle_on_larger_generated_catalogues(seed: int):
    engine = Engine(generate_catalog(num_products=5000, seed=seed))
    for index in range(0, len(engine.catalog.goals), 37):
        record = run(engine, engine.new_record(index), engine.oracle_actions(engine.new_record(index)))
        assert record.reward == 1.0, index


def test_oracle_on_real_goals_reaches_the_best_achievable_reward(real_catalog: Catalog):
    """1.0 except where the original's colour normalisation makes a goal option unmatchable."""
    engine = Engine(real_catalog)
    perfect = 0
    for index in range(len(real_catalog.goals)):
        goal = real_catalog.goals[index]
        record = run(engine, engine.new_record(index), engine.oracle_actions(engine.new_record(index)))
        reward = engine.reward(replace(record, page=ITEM, done=False))
        assert reward.type.r_type == 1.0 and reward.price_ok
        assert reward.attribute_matches == len(goal["attributes"])
        trapped = sum(
            1
            for pair in goal["goal_options"].items()
            if not fuzzy_match(normalize_color(pair[1]), normalize_color(pair))
        )
        assert reward.option_matches == len(goal["goal_options"]) - trapped, index
        perfect += record.reward == 1.0
    assert perfect / len(real_catalog.goals) > 0.9


def test_oracle_from_the_middle_of_an_episode(engine: Engine):
    record = engine.new_record(11)
    record = run(engine, record, ["search[something else entirely]"])
    record = run(engine, record, engine.oracle_actions(record))
    assert record.reward == 1.0
    assert engine.oracle_actions(record) == []


def test_navigation_between_pages(engine: Engine):
    record = run(engine, engine.new_record(0), ["search[Running SHOES Trainers]"])
    assert (record.page, record.query, record.page_number) == (RESULTS, "running shoes trainers", 1)
    assert len(engine.catalog.search(record.query)) > 10, "the query must fill more than one page"
    assert engine.available_actions(record)["clickables"][:2] == ["back to search", "next >"]
    record = run(engine, record, ["click[Next >]"])
    assert record.page_number == 2 and "< prev" in engine.available_actions(record)["clickables"]
    asin = engine.available_actions(record)["clickables"][-1]
    record = run(engine, record, [f"click[{asin}]"])
    assert (record.page, record.asin) == (ITEM, asin.upper())
    record = run(engine, record, ["click[features]"])
    assert record.page == "features" and engine.available_actions(record)["clickables"] == [
        "back to search",
        "< prev",
    ]
    record = run(engine, record, ["click[< prev]", "click[< prev]"])
    assert (record.page, record.page_number, record.asin) == (RESULTS, 2, "")
    record = run(engine, record, ["click[back to search]"])
    assert record == SessionRecord(goal_index=0, steps=record.steps)


def test_option_clicks_replace_the_group_value(engine: Engine):
    goal = engine.catalog.goals[0]
    product = engine.catalog.product(goal["asin"])
    record = SessionRecord(goal_index=0, page=ITEM, asin=product.asin)
    name, values = product.options[0]
    record = run(engine, record, [f"click[{values[0]}]", f"click[{values[1].upper()}]"])
    assert record.options == ((name, values[1]),)


def test_invalid_actions_leave_the_record_unchanged(engine: Engine):
    start = engine.new_record(0)
    for action in ("", "jump", "click[nothing]", "search[]", "search[" + "x" * 1001 + "]", "click[buy now]"):
        result = engine.transition(start, action)
        assert result.record == start and result.error and not result.done
    assert in_charset(engine.transition(start, "gr\u00fc\u00dfe \u2764").error)
    results = run(engine, start, ["search[shoes]"])
    error = engine.transition(results, "search[hats]").error
    assert error and "back to search" in error


def test_buy_now_ends_the_episode_with_the_score(engine: Engine):
    record = run(engine, engine.new_record(3), ["search[shoes]"])
    asin = engine.available_actions(record)["clickables"][-1]
    record = run(engine, record, [f"click[{asin}]"])
    expected = engine.score(record)
    result = engine.transition(record, "click[buy now]")
    assert result.done and result.reward == expected == engine.score(result.record)
    assert result.record.page == DONE and engine.available_actions(result.record)["clickables"] == []
    after = engine.transition(result.record, "click[back to search]")
    assert after.done and after.reward == 0.0 and after.record == result.record


def test_score_is_zero_without_an_open_product(engine: Engine):
    assert engine.score(engine.new_record(0)) == 0.0
    assert engine.score(run(engine, engine.new_record(0), ["search[tea]"])) == 0.0


def test_observations_list_clickables_and_stay_in_the_charset(engine: Engine, real_catalog: Catalog):
    for eng in (engine, Engine(real_catalog, show_attributes=True)):
        record = eng.new_record(7)
        text = eng.render_text(record)
        assert "Search is available" in text and text.startswith("Instruction: ")
        subs = ["description", "features", "reviews"] + (["attributes"] if eng.show_attributes else [])
        visits = [a for sub in subs for a in (f"click[{sub}]", "click[< prev]")]
        for action in eng.oracle_actions(record)[:-1] + visits + ["click[buy now]"]:
            record = run(eng, record, [action])
            text = eng.render_text(record)
            assert in_charset(text)
            for clickable in eng.available_actions(record)["clickables"]:
                assert f"[{clickable}]" in text


def test_records_are_small_picklable_and_round_trip_through_json(engine: Engine):
    record = run(engine, engine.new_record(0), engine.oracle_actions(engine.new_record(0))[:-1])
    assert pickle.loads(pickle.dumps(record)) == record
    assert SessionRecord.from_dict(record.to_dict()) == record
    assert hash(record) == hash(SessionRecord.from_dict(record.to_dict()))
    assert engine.validate(record) is None


@pytest.mark.parametrize(
    "change",
    [
        dict(goal_index=-1),
        dict(page="nowhere"),
        dict(page=RESULTS, query=""),
        dict(page=RESULTS, query="shoes", page_number=99),
        dict(page=ITEM, asin="B000000000"),
        dict(page=SEARCH, asin="X"),
        dict(done=True),
        dict(page=ITEM, asin="<ASIN>", options=(("color", "not-a-colour"),)),
        dict(page="attributes", asin="<ASIN>"),
    ],
)
def test_validate_rejects_unreachable_records(engine: Engine, change: dict):
    asin = engine.catalog.goals[0]["asin"]
    change = {k: (asin if v == "<ASIN>" else v) for k, v in change.items()}
    assert engine.validate(replace(SessionRecord(goal_index=0), **change)) is not None


def test_parse_action_is_case_insensitive_and_strict():
    assert parse_action(" Click[ Buy Now ] ") == ("click", " Buy Now ")
    assert parse_action("SEARCH[a [b] c]") == ("search", "a [b] c")
    assert parse_action("buy") is None and parse_action(None) is None  # type: ignore[arg-type]
