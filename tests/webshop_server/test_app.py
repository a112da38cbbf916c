"""The site: every page, bad input as 4xx, escaping, the JSON API, session expiry and concurrent clients."""

from __future__ import annotations

import json
import re
import socket
import threading
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from html import unescape

import pytest
from waitress.server import create_server

from webshop_server import Catalog, Engine, SessionRecord
from webshop_server.app import create_app
from webshop_server.sessions import SessionExistsError, SessionLimitError, SessionStore


@pytest.fixture(scope="module")
def app(synthetic_catalog: Catalog):
    return create_app(synthetic_catalog, seed=0, show_attributes=True)


@pytest.fixture
def client(app):
    return app.test_client()


def new_session(client, goal: int = 0) -> str:
    response = client.post(f"/new?goal={goal}")
    assert response.status_code == 302
    return response.location.split("/")[2]


def links(html: str) -> dict[str, str]:
    """data-clickable -> href of the page's links (what a browser would click)."""
    found = re.findall(r'data-clickable="([^"]*)"[^>]*?href="([^"]*)"', html)
    return {unescape(text): unescape(href) for text, href in found}


def visible_text(html: str) -> str:
    """The page's text as an HTML-to-text client reads it (tags dropped, hidden elements included)."""
    return unescape(re.sub(r"<[^>]+>", " ", re.sub(r"<(script|style)\b.*?</\1>", "", html, flags=re.S)))


def test_home_and_search_pages(client):
    assert b"Start shopping" in client.get("/").data
    sid = new_session(client)
    html = client.get(f"/s/{sid}/").get_data(as_text=True)
    assert 'id="search_input"' in html and 'id="instruction-text"' in html


def test_browsing_matches_the_engine_step_by_step(client, app):
    """Following the page links the oracle would click leaves the engine's state at every step.

    The pages carry no session id and no hidden observation: the JSON view of the session gives both.
    """
    engine: Engine = app.extensions["webshop"].engine
    sid = new_session(client, goal=4)
    record = engine.new_record(4)
    html = client.get(f"/s/{sid}/").get_data(as_text=True)
    for action in engine.oracle_actions(record):
        record = engine.transition(record, action).record
        if action.startswith("search["):
            response = client.get(f"/s/{sid}/search", query_string={"q": action[7:-1]})
        elif action == "click[buy now]":
            buy_url = unescape(
                re.search(r'<form method="post" action="([^"]+)" id="buy_form"', html).group(1)
            )
            response = client.post(buy_url, follow_redirects=True)
        else:
            response = client.get(links(html)[action[6:-1]])
        assert response.status_code == 200, action
        html = response.get_data(as_text=True)
        view = client.get(f"/api/s/{sid}").get_json()
        assert view["record"] == record.to_dict() and view["observation"] == engine.render_text(record)
        assert sid not in visible_text(html) and "<pre id=\"observation\"" not in html, action
    assert re.search(r'<h3 id="reward">Your score \(min 0.0, max 1.0\)<pre>1.0</pre>', html)


def test_item_sub_pages(client, synthetic_catalog):
    sid = new_session(client)
    asin = synthetic_catalog.goals[0]["asin"]
    product = synthetic_catalog.product(asin)
    assert product.title.encode() in client.get(f"/s/{sid}/item/{asin}").data
    description = client.get(f"/s/{sid}/item/{asin}/description").get_data(as_text=True)
    assert unescape(description).count(product.description) == 1  # the page only: nothing hidden
    assert product.bullet_points[0].encode() in client.get(f"/s/{sid}/item/{asin}/features").data
    assert b"Nothing to show here." in client.get(f"/s/{sid}/item/{asin}/reviews").data
    assert product.attributes[0].encode() in client.get(f"/s/{sid}/item/{asin}/attributes").data


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/s/nosuchsession/", 404),
        ("/s/bad%20id%3C/", 404),
        ("/s/{sid}/search", 400),
        ("/s/{sid}/search?q=shoes&page=0", 404),
        ("/s/{sid}/search?q=shoes&page=999", 404),
        ("/s/{sid}/search?q=shoes&page=abc", 400),
        ("/s/{sid}/search?q=shoes&page=" + "9" * 5000, 400),
        ("/s/{sid}/search?q=" + "a" * 1001, 400),
        ("/s/{sid}/item/NOPE", 404),
        ("/s/{sid}/item/{asin}/reviewz", 404),
        ("/s/{sid}/item/{asin}?colour=red", 400),
        ("/s/{sid}/item/{asin}?q=shoes&page=77", 404),
        ("/s/{sid}/done", 409),
        ("/new?goal=-1", 400),
        ("/new?goal=99999999", 400),
        ("/no/such/page", 404),
    ],
)
def test_bad_urls_answer_4xx_pages(client, synthetic_catalog, path, status):
    sid = new_session(client)
    asin = synthetic_catalog.goals[0]["asin"]
    response = client.get(path.format(sid=sid, asin=asin))
    assert response.status_code == status
    assert b'id="error"' in response.data


def test_wrong_method_and_buying_twice(client, synthetic_catalog):
    sid = new_session(client)
    asin = synthetic_catalog.goals[0]["asin"]
    assert client.get(f"/s/{sid}/buy/{asin}").status_code == 405
    assert client.post(f"/s/{sid}/buy/{asin}").status_code == 303
    assert client.post(f"/s/{sid}/buy/{asin}").status_code == 303  # already done: just shows the done page
    assert client.get(f"/s/{sid}/search?q=shoes").status_code == 302
    assert b'id="reward"' in client.get(f"/s/{sid}/done").data


def test_user_strings_are_escaped(client):
    sid = new_session(client)
    html = client.get(f"/s/{sid}/search", query_string={"q": "<script>alert(1)</script>"}).get_data(
        as_text=True
    )
    assert "<script>" not in html and "&lt;script&gt;" in html
    error = client.get("/s/%3Cscript%3Ex/").get_data(as_text=True)
    assert "<script>" not in error


def test_json_api_create_step_record_delete(client, app):
    engine: Engine = app.extensions["webshop"].engine
    created = client.post("/api/sessions", json={"goal": 2, "session": "api-test"})
    assert created.status_code == 201 and created.json["session"] == "api-test"
    assert created.json["observation"] == engine.render_text(engine.new_record(2))
    record = engine.new_record(2)
    for action in engine.oracle_actions(record):
        record = engine.transition(record, action).record
        stepped = client.post("/api/s/api-test/step", json={"action": action}).json
        assert stepped["observation"] == engine.render_text(record) and stepped["error"] is None
    assert stepped["done"] and stepped["reward"] == 1.0
    invalid = client.post("/api/s/api-test/step", json={"action": "click[nothing]"}).json
    assert invalid["error"] and invalid["reward"] == 0.0
    restored = client.put("/api/s/api-test/record", json=SessionRecord(goal_index=1).to_dict())
    assert restored.status_code == 200 and restored.json["record"]["goal_index"] == 1
    assert client.get("/api/s/api-test/record").json == SessionRecord(goal_index=1).to_dict()
    assert client.get("/api/info").json["goals"] == len(engine.catalog.goals)
    assert client.delete("/api/s/api-test").status_code == 204
    assert client.get("/api/s/api-test").status_code == 404


@pytest.mark.parametrize(
    ("method", "path", "payload"),
    [
        ("post", "/api/sessions", {"goal": "3"}),
        ("post", "/api/sessions", {"goal": 10**9}),
        ("post", "/api/sessions", {"session": "no spaces"}),
        ("post", "/api/sessions", [1, 2]),
        ("post", "/api/s/{sid}/step", {"act": "x"}),
        ("post", "/api/s/{sid}/step", {"action": "search[" + "x" * 2000 + "]"}),
        ("put", "/api/s/{sid}/record", {"goal_index": 0, "page": "results"}),
        ("put", "/api/s/{sid}/record", {"goal_index": "zero"}),
        ("put", "/api/s/{sid}/record", {"goal_index": 0, "hack": 1}),
    ],
)
def test_json_api_rejects_bad_input_with_json_errors(client, method, path, payload):
    sid = client.post("/api/sessions", json={}).json["session"]
    response = getattr(client, method)(path.format(sid=sid), json=payload)
    assert response.status_code == 400 and "error" in response.json


def test_json_api_rejects_malformed_bodies(client):
    sid = client.post("/api/sessions").json["session"]
    response = client.post(f"/api/s/{sid}/step", data="{not json", content_type="application/json")
    assert response.status_code == 400 and response.json["status"] == 400
    assert client.post("/api/s/unknown/step", json={"action": "x"}).status_code == 404


def test_session_store_refuses_new_sessions_at_its_cap_and_expires_idle_ones():
    now = [0.0]
    store = SessionStore(max_sessions=2, ttl_seconds=10, clock=lambda: now[0])
    store.add("a", SessionRecord(0))
    now[0] = 4.0
    store.add("b", SessionRecord(1))
    with pytest.raises(SessionExistsError):
        store.add("b", SessionRecord(2))
    with pytest.raises(SessionLimitError) as full:
        store.add("c", SessionRecord(2))
    assert full.value.retry_after == 6  # "a", idle since t=0, expires at t=10
    assert store.get("a") == SessionRecord(0) and store.get("b") == SessionRecord(1), "live sessions stay"
    store.put("a", SessionRecord(3))  # updating a live session is always possible
    assert store.delete("b") and not store.delete("b")
    store.add("c", SessionRecord(2))
    now[0] = 14.5  # "a" was last used at 4.0, "c" at 4.0
    assert len(store) == 0 and store.get("a") is None


def test_app_refuses_sessions_beyond_its_cap_with_503_and_keeps_the_live_ones(synthetic_catalog):
    client = create_app(synthetic_catalog, max_sessions=3).test_client()
    sids = [new_session(client) for _ in range(3)]
    refused = client.post("/api/sessions", json={})
    assert refused.status_code == 503 and "maximum of 3" in refused.json["error"]
    assert int(refused.headers["Retry-After"]) > 0
    assert client.post("/new").status_code == 503
    assert client.get("/fixed_1").status_code == 503  # the original scheme's first visit, too
    assert all(client.get(f"/s/{sid}/").status_code == 200 for sid in sids)
    client.delete(f"/api/s/{sids[0]}")
    assert client.post("/api/sessions", json={}).status_code == 201


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _call(url: str, payload: dict | None = None) -> dict:
    data = json.dumps(payload).encode() if payload is not None else None
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


@pytest.mark.slow
def test_concurrent_clients_on_waitress_keep_sessions_isolated(app):
    engine: Engine = app.extensions["webshop"].engine
    server = create_server(app, host="127.0.0.1", port=_free_port(), threads=8)
    base = f"http://127.0.0.1:{server.effective_port}"
    stopping = threading.Event()

    def serve() -> None:
        try:
            server.run()
        except OSError:  # closing the listening socket under select() ends the loop this way
            if not stopping.is_set():
                raise

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:

        def episode(goal: int) -> tuple[int, float, list[str]]:
            sid = _call(f"{base}/api/sessions", {"goal": goal})["session"]
            record, seen = engine.new_record(goal), []
            for action in engine.oracle_actions(record):
                record = engine.transition(record, action).record
                out = _call(f"{base}/api/s/{sid}/step", {"action": action})
                seen.append(out["observation"] == engine.render_text(record))
            return goal, out["reward"], seen

        goals = list(range(0, 24 * 7, 7))
        with ThreadPoolExecutor(max_workers=8) as pool:
            results = list(pool.map(episode, goals, timeout=60))
        assert [g for g, _, _ in results] == goals
        assert all(reward == 1.0 and all(seen) for _, reward, seen in results)
        with pytest.raises(urllib.error.HTTPError) as err:
            _call(f"{base}/api/s/nope")
        assert err.value.code == 404
    finally:
        stopping.set()
        server.task_dispatcher.shutdown()
        server.close()
        thread.join(timeout=5)
