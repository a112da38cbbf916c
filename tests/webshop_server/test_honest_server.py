"""The server keeps rewards and sessions honest: it computes every reward itself, never overwrites a session,
answers any malformed JSON with a 400, and treats look-alike verbs as invalid actions."""

from __future__ import annotations

from dataclasses import replace

import pytest

from webshop_server import Catalog, Engine, SessionRecord
from webshop_server.app import create_app
from webshop_server.engine import parse_action


@pytest.fixture(scope="module")
def app(synthetic_catalog: Catalog):
    return create_app(synthetic_catalog, seed=0)


@pytest.fixture
def client(app):
    return app.test_client()


def bought(engine: Engine, goal: int, *, perfect: bool) -> SessionRecord:
    """A finished purchase of goal ``goal``'s product: with the goal's options, or with none chosen."""
    record = engine.new_record(goal)
    plan = engine.oracle_actions(record)
    if not perfect:
        plan = [
            a
            for a in plan
            if not any(a == f"click[{v}]" for v in engine.goal(record)["goal_options"].values())
        ]
    for action in plan:
        record = engine.transition(record, action).record
    return record


def test_a_restored_record_cannot_carry_a_reward_it_did_not_earn(client, app):
    engine: Engine = app.extensions["webshop"].engine
    goal = next(i for i in range(50) if engine.goal(engine.new_record(i))["goal_options"])
    cheap = bought(engine, goal, perfect=False)
    assert cheap.done and cheap.reward < 1.0
    sid = client.post("/api/sessions", json={"goal": goal}).json["session"]
    forged = client.put(f"/api/s/{sid}/record", json={**cheap.to_dict(), "reward": 1.0})
    assert forged.status_code == 400 and "earns reward" in forged.json["error"]
    assert client.get(f"/api/s/{sid}/record").json == engine.new_record(goal).to_dict()
    not_done = replace(engine.new_record(goal), reward=0.5).to_dict()
    assert client.put(f"/api/s/{sid}/record", json=not_done).status_code == 400
    honest = client.put(f"/api/s/{sid}/record", json=cheap.to_dict())
    assert honest.status_code == 200 and honest.json["record"]["reward"] == cheap.reward
    assert f"<pre>{cheap.reward}</pre>" in client.get(f"/s/{sid}/done").get_data(as_text=True)
    # any reachable state may still be restored: clone/restore of the HTTP transport needs it
    midway = replace(cheap, page="item", done=False, reward=0.0)
    assert client.put(f"/api/s/{sid}/record", json=midway.to_dict()).status_code == 200


def test_creating_a_session_never_overwrites_one(client):
    first = client.post("/api/sessions", json={"goal": 3, "session": "mine"})
    assert first.status_code == 201
    client.post("/api/s/mine/step", json={"action": "search[shoes]"})
    again = client.post("/api/sessions", json={"goal": 5, "session": "mine"})
    assert again.status_code == 409 and "already exists" in again.json["error"]
    record = client.get("/api/s/mine/record").json
    assert record["goal_index"] == 3 and record["page"] == "results"
    fresh = {client.post("/api/sessions", json={}).json["session"] for _ in range(5)}
    assert len(fresh) == 5 and "mine" not in fresh


NESTED = "[" * 2000 + "]" * 2000


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("post", "/api/sessions", NESTED),
        ("post", "/api/sessions", '{"goal": ' + NESTED + "}"),
        ("post", "/api/s/{sid}/step", '{"action": ' + "[" * 500 + "]" * 500 + "}"),
        ("post", "/api/s/{sid}/step", "{" * 5000),
        ("put", "/api/s/{sid}/record", NESTED),
        ("put", "/api/s/{sid}/record", '{"goal_index": 0, "options": [' + "[" * 600 + "]" * 600 + "]}"),
        ("put", "/api/s/{sid}/record", '{"goal_index": 0, "visited": [[' + "{}" * 5 + "]]}"),
        ("put", "/api/s/{sid}/record", '{"goal_index": 0, "page_number": 1.5}'),
        ("put", "/api/s/{sid}/record", '{"goal_index": true}'),
        ("put", "/api/s/{sid}/record", '{"goal_index": 0, "reward": "1"}'),
        ("put", "/api/s/{sid}/record", '{"goal_index": 0, "visited": ["NOPE"]}'),
        ("put", "/api/s/{sid}/record", "\xff\xfe garbage"),
        ("put", "/api/s/{sid}/record", '"just a string"'),
    ],
)
def test_malformed_json_of_any_shape_or_depth_is_a_400(client, method, path, body):
    sid = client.post("/api/sessions", json={}).json["session"]
    response = getattr(client, method)(path.replace("{sid}", sid), data=body, content_type="application/json")
    assert response.status_code == 400, response.get_data(as_text=True)[:200]
    assert response.json["status"] == 400


@pytest.mark.parametrize(
    "action",
    ["ſearch[back to search]", "\u212alick[back to search]", "search\u0131[x]", "ｓearch[shoes]", "clıck[x]"],
)
def test_look_alike_verbs_are_invalid_actions(client, app, action):
    engine: Engine = app.extensions["webshop"].engine
    assert parse_action(action) is None
    sid = client.post("/api/sessions", json={"goal": 0}).json["session"]
    client.post(f"/api/s/{sid}/step", json={"action": "search[shoes]"})
    result = client.post(f"/api/s/{sid}/step", json={"action": action}).json
    assert result["error"] and result["record"]["page"] == "results"
    assert engine.transition(engine.new_record(0), action).error is not None
    assert parse_action("SEARCH[x]") == ("search", "x") and parse_action("Click[x]") == ("click", "x")
