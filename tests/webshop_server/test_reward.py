"""The WebShop reward, term by term, on hand-made products and goals."""

from __future__ import annotations

import pytest

from webshop_server.catalog import Product
from webshop_server.reward import fuzzy_match, get_reward, normalize_color, title_nouns, type_reward


def make_product(**overrides) -> Product:
    fields = dict(
        asin="B000000001",
        title="Acme Trail Running Shoes",
        category="fashion",
        query="running shoes",
        category_path=("Clothing, Shoes & Jewelry", "Men", "Shoes", "Athletic", "Running"),
        description="Breathable mesh upper.",
        bullet_points=("Rubber sole for grip", "Lace up"),
        pricing=(40.0,),
        options=(("color", ("navy blue", "black")), ("size", ("9", "10"))),
        attributes=("rubber sole", "non slip"),
    )
    fields.update(overrides)
    return Product(**fields)


def make_goal(**overrides) -> dict:
    goal = dict(
        asin="B000000001",
        instruction_text="...",
        attributes=["rubber sole"],
        goal_options={"color": "navy blue"},
        price_upper=50.0,
        query="running shoes",
        category="fashion",
        product_category="Clothing, Shoes & Jewelry › Men › Shoes › Athletic › Running",
        name="Acme Trail Running Shoes",
        weight=1.0,
    )
    goal.update(overrides)
    return goal


def test_goal_product_with_goal_options_scores_one():
    reward = get_reward(make_product(), make_goal(), 40.0, {"color": "navy blue"})
    assert reward.total == 1.0
    assert (reward.attribute_matches, reward.option_matches, reward.price_ok) == (1, 1, True)


def test_formula_counts_each_term_over_the_total():
    goal = make_goal(attributes=["rubber sole", "waterproof"], goal_options={"color": "black", "size": "10"})
    reward = get_reward(make_product(), goal, 60.0, {"color": "black", "size": "9"})
    # 1 attribute + 1 option + price failed, over 2 + 2 + 1
    assert reward.total == pytest.approx(2 / 5)


def test_attribute_fuzzy_match_uses_token_set_ratio():
    goal = make_goal(attributes=["slip"], goal_options={})  # token subset of "non slip" scores 100
    assert get_reward(make_product(), goal, 40.0, {}).attribute_matches == 1
    assert fuzzy_match("essential oil", "essential oils")
    assert not fuzzy_match("gluten free", "sugar free")


def test_attribute_substring_of_title_bullets_or_description():
    product = make_product(attributes=("DUMMY_ATTR",))
    for wanted in ("trail running", "grip", "mesh upper"):
        assert (
            get_reward(product, make_goal(attributes=[wanted], goal_options={}), 40.0, {}).attribute_matches
            == 1
        )
    assert (
        get_reward(product, make_goal(attributes=["leather"], goal_options={}), 40.0, {}).attribute_matches
        == 0
    )


def test_color_normalisation_first_alphabetical_substring():
    assert normalize_color("navy blue") == "blue"
    assert normalize_color("rose gold") == "gold"
    assert normalize_color("standard") == "tan"  # the original's trap, kept on purpose
    assert normalize_color("webshop") == "webshop"
    assert normalize_color(("color", "black")) == "black"  # tuples test membership
    assert normalize_color(("style", "standard")) == ("style", "standard")


def test_options_match_after_normalisation_and_fail_on_the_standard_trap():
    product = make_product(options=(("style", ("standard", "deluxe")),))
    dark = get_reward(
        make_product(), make_goal(goal_options={"color": "navy blue"}), 40.0, {"color": "dark blue"}
    )
    assert dark.option_matches == 1  # both sides normalise to "blue"
    trap = get_reward(product, make_goal(goal_options={"style": "standard"}), 40.0, {"style": "standard"})
    assert trap.option_matches == 0 and trap.total == pytest.approx(2 / 3)


def test_human_goal_options_are_plain_strings():
    goal = make_goal(goal_options=["black", "size 10"])
    assert get_reward(make_product(), goal, 40.0, {"color": "black", "size": "10"}).option_matches == 2


def test_no_goal_options_counts_attributes_and_price_only():
    reward = get_reward(make_product(), make_goal(goal_options={}), 40.0, {"color": "black"})
    assert reward.total == 1.0 and reward.option_matches == 0


def test_price_bound_is_inclusive():
    assert get_reward(make_product(), make_goal(price_upper=40.0), 40.0, {"color": "navy blue"}).price_ok
    assert not get_reward(make_product(), make_goal(price_upper=39.99), 40.0, {"color": "navy blue"}).price_ok


@pytest.mark.parametrize(
    ("other", "expected"),
    [
        (dict(), 1.0),  # same query
        (dict(query="sneakers", title="Zed Road Running Shoes"), 1.0),  # same category path
        (dict(query="x", category_path=("Sports",), title="Acme Trail Running Shoes"), 1.0),  # all nouns
        (dict(query="x", category_path=("Sports",), title="Zed Shoes"), 1.0),  # 1 of 4 nouns is > 20%
        (dict(query="x", category_path=("Sports",), title="Completely different thing"), 0.0),
    ],
)
def test_type_reward_levels(other, expected):
    assert type_reward(make_product(**other), make_goal()).r_type == expected


def test_type_reward_without_query_category_or_title_match_is_half():
    goal = make_goal(name="Acme Trail Running Shoes Kit")  # 5 nouns, 1 shared = 20%: not a title match
    assert (
        type_reward(make_product(query="x", category_path=("Sports",), title="Zed Shoes"), goal).r_type == 0.5
    )


def test_type_reward_small_title_overlap_gives_point_one():
    goal = make_goal(name="Acme Alpha Bravo Charlie Delta Echo Foxtrot Golf Hotel India Juliet Kilo")
    product = make_product(query="x", category_path=("Sports",), title="Kilo")
    match = type_reward(product, goal)
    assert match.title_score == pytest.approx(1 / 12) and match.r_type == 0.1


def test_title_nouns_drop_function_words_adjectives_and_numbers():
    assert title_nouns("The New Black Running Shoes for Men, 2 Pack") == ["running", "shoes", "men", "pack"]
    assert title_nouns("") == []
