"""The WebShop site: HTML pages for people and browsers, a JSON API for programs, both on one engine.

URLs carry the page state as plain path segments and query-string parameters (never Python literals to
evaluate): ``/s/<sid>/search?q=red+shoes&page=2``, ``/s/<sid>/item/<ASIN>?q=...&page=1&color=red``,
``/s/<sid>/item/<ASIN>/features?...``. A request is turned into a :class:`SessionRecord`, checked by
:meth:`Engine.validate` and rendered from :meth:`Engine.page_model`; every link on a page is the URL of the
record that :meth:`Engine.transition` gives for that click, so browsing and in-process stepping agree.
Bad input of any kind answers with a 4xx page (or JSON error under ``/api``), never a 500.
"""

from __future__ import annotations

import random
import re
import secrets
import threading
from bisect import bisect_right
from dataclasses import replace
from itertools import accumulate
from typing import Any

from flask import Flask, abort, jsonify, redirect, render_template, request, url_for
from werkzeug.exceptions import HTTPException

from webshop_server.catalog import Catalog
from webshop_server.engine import (
    BUY_NOW,
    DONE,
    ITEM,
    MAX_QUERY_CHARS,
    RESULTS,
    SEARCH,
    SUB_PAGES,
    Engine,
    SessionRecord,
    normalize_query,
)
from webshop_server.sessions import SessionStore
from webshop_server.synthetic import generate_catalog

_SESSION_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_RESERVED_PARAMS = ("q", "page")
_NUMBER = re.compile(r"^[0-9]{1,9}$")


class GoalSampler:
    """Weighted goal draws for new sessions (the original samples by goal weight), from a seeded RNG."""

    def __init__(self, catalog: Catalog, seed: int) -> None:
        goals = catalog.goals
        weights = goals.weights() if hasattr(goals, "weights") else [g["weight"] for g in goals]
        self._cumulative = list(accumulate(weights))
        self._rng = random.Random(f"webshop-sessions:{seed}")
        self._lock = threading.Lock()

    def draw(self) -> int:
        with self._lock:
            x = self._rng.random() * self._cumulative[-1]
        return min(bisect_right(self._cumulative, x), len(self._cumulative) - 1)


class Shop:
    """The engine, the sessions and the goal sampler behind one app."""

    def __init__(self, engine: Engine, sessions: SessionStore, seed: int) -> None:
        self.engine = engine
        self.sessions = sessions
        self.sampler = GoalSampler(engine.catalog, seed)

    def create(self, goal: int | None = None, session_id: str | None = None) -> tuple[str, SessionRecord]:
        if goal is None:
            goal = self.sampler.draw()
        if not 0 <= goal < len(self.engine.catalog.goals):
            abort(400, f"goal must be within 0..{len(self.engine.catalog.goals) - 1}")
        session_id = session_id or secrets.token_hex(8)
        if not _SESSION_ID.match(session_id):
            abort(400, "session ids are 1-64 letters, digits, '-' or '_'")
        record = self.engine.new_record(goal)
        self.sessions.put(session_id, record)
        return session_id, record

    def current(self, session_id: str) -> SessionRecord:
        record = self.sessions.get(session_id) if _SESSION_ID.match(session_id) else None
        if record is None:
            abort(404, f"Unknown or expired session {session_id!r}. Start a new one from the home page.")
        return record


def create_app(
    catalog: Catalog | None = None,
    *,
    seed: int = 0,
    show_attributes: bool = False,
    max_sessions: int = 10_000,
    session_ttl: float = 3600.0,
) -> Flask:
    """A Flask app serving ``catalog`` (default: the 1,000-product synthetic catalogue of ``seed``)."""
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = 64 * 1024
    engine = Engine(
        catalog or generate_catalog(num_products=1000, seed=seed), show_attributes=show_attributes
    )
    shop = Shop(engine, SessionStore(max_sessions, session_ttl), seed)
    app.extensions["webshop"] = shop
    _register_html(app, shop)
    _register_api(app, shop)

    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException):
        code = error.code or 500
        if request.path.startswith("/api/"):
            return jsonify(error=error.description, status=code), code
        return render_template("error.html", code=code, name=error.name, message=error.description), code

    return app


# -- URL <-> record ----------------------------------------------------------------------------------------
def record_url(session_id: str, record: SessionRecord) -> str:
    """The site URL that shows ``record``."""
    if record.page == SEARCH:
        return url_for("search_page", sid=session_id)
    if record.page == RESULTS:
        return url_for("results_page", sid=session_id, q=record.query, page=record.page_number)
    if record.page == DONE:
        return url_for("done_page", sid=session_id)
    params = _item_params(record)
    if record.page == ITEM:
        return url_for("item_page", sid=session_id, asin=record.asin, **params)
    return url_for("item_sub_page", sid=session_id, asin=record.asin, sub=record.page, **params)


def _item_params(record: SessionRecord) -> dict[str, Any]:
    params: dict[str, Any] = dict(record.options)
    if record.query:
        params.update(q=record.query, page=record.page_number)
    return params


def _whole_number(text: str | None, what: str) -> int | None:
    if text is None:
        return None
    if not _NUMBER.match(text):
        abort(400, f"Bad {what} {text[:20]!r}: use a whole number.")
    return int(text)


def _query_args() -> tuple[str, int]:
    raw = request.args.get("q", "")
    if len(raw) > MAX_QUERY_CHARS:
        abort(400, f"The search query is longer than {MAX_QUERY_CHARS} characters.")
    page = _whole_number(request.args.get("page", "1"), "page number")
    return normalize_query(raw), page  # type: ignore[return-value]


def _requested_record(engine: Engine, current: SessionRecord, page: str, asin: str = "") -> SessionRecord:
    """The record a GET request asks for, or a 4xx when it names no valid shop state."""
    query, number = _query_args() if page != SEARCH else ("", 1)
    if page == RESULTS and not query:
        abort(400, "Empty search query: type what you are looking for.")
    options: tuple[tuple[str, str], ...] = ()
    if page != RESULTS and page != SEARCH:
        options = tuple(sorted((k, v) for k, v in request.args.items() if k not in _RESERVED_PARAMS))
    record = SessionRecord(
        goal_index=current.goal_index,
        page=page,
        query=query if page != SEARCH else "",
        page_number=number,
        asin=asin,
        options=options,
        steps=current.steps,
    )
    error = engine.validate(record)
    if error is not None:
        abort(404 if "unknown product" in error or "does not exist" in error else 400, error)
    if replace(record, steps=0) != replace(current, steps=0):
        record = replace(record, steps=current.steps + 1)
    return record


# -- HTML --------------------------------------------------------------------------------------------------
def _register_html(app: Flask, shop: Shop) -> None:
    engine = shop.engine

    def show(session_id: str, record: SessionRecord):
        shop.sessions.put(session_id, record)
        actions = engine.available_actions(record)
        links = {
            c: record_url(session_id, engine.transition(record, f"click[{c}]").record)
            for c in actions["clickables"]
            if c != BUY_NOW
        }
        buy_url = (
            url_for("buy", sid=session_id, asin=record.asin, **_item_params(record))
            if record.page == ITEM
            else None
        )
        template = {SEARCH: "search.html", RESULTS: "results.html", ITEM: "item.html", DONE: "done.html"}
        return render_template(
            template.get(record.page, "sub_page.html"),
            sid=session_id,
            page=engine.page_model(record),
            links=links,
            record=record,
            observation=engine.render_text(record),
            buy_url=buy_url,
        )

    def navigate(session_id: str, page: str, asin: str = ""):
        current = shop.current(session_id)
        if current.done:
            return redirect(url_for("done_page", sid=session_id))
        return show(session_id, _requested_record(engine, current, page, asin))

    @app.get("/")
    def home():
        return render_template("home.html", catalog=engine.catalog)

    @app.route("/new", methods=["GET", "POST"])
    def new_session():
        session_id, _ = shop.create(_whole_number(request.values.get("goal"), "goal"))
        return redirect(url_for("search_page", sid=session_id))

    @app.get("/s/<sid>/")
    def search_page(sid: str):
        return navigate(sid, SEARCH)

    @app.get("/s/<sid>/search")
    def results_page(sid: str):
        return navigate(sid, RESULTS)

    @app.get("/s/<sid>/item/<asin>")
    def item_page(sid: str, asin: str):
        return navigate(sid, ITEM, asin)

    @app.get("/s/<sid>/item/<asin>/<sub>")
    def item_sub_page(sid: str, asin: str, sub: str):
        if sub not in SUB_PAGES:
            abort(404, f"No page {sub[:40]!r} for a product: use one of {', '.join(SUB_PAGES)}.")
        return navigate(sid, sub, asin)

    @app.post("/s/<sid>/buy/<asin>")
    def buy(sid: str, asin: str):
        current = shop.current(sid)
        if not current.done:
            record = _requested_record(engine, current, ITEM, asin)
            shop.sessions.put(sid, engine.transition(record, f"click[{BUY_NOW}]").record)
        return redirect(url_for("done_page", sid=sid), code=303)

    @app.get("/s/<sid>/done")
    def done_page(sid: str):
        current = shop.current(sid)
        if not current.done:
            abort(409, "Nothing has been bought in this session yet.")
        return show(sid, current)


# -- JSON API ----------------------------------------------------------------------------------------------
def _register_api(app: Flask, shop: Shop) -> None:
    engine = shop.engine

    def view(session_id: str, record: SessionRecord, **extra: Any) -> dict[str, Any]:
        return {
            "session": session_id,
            "record": record.to_dict(),
            "observation": engine.render_text(record),
            "available_actions": engine.available_actions(record),
            "page": engine.page_model(record),
            "score": engine.score(record),
            **extra,
        }

    def body() -> dict[str, Any]:
        data = request.get_json(silent=True)
        if data is None and request.content_length:
            abort(400, "The request body must be a JSON object.")
        if data is not None and not isinstance(data, dict):
            abort(400, "The request body must be a JSON object.")
        return data or {}

    @app.get("/api/info")
    def api_info():
        catalog = engine.catalog
        return jsonify(
            catalog=catalog.name,
            products=len(catalog),
            goals=len(catalog.goals),
            show_attributes=engine.show_attributes,
            max_query_chars=MAX_QUERY_CHARS,
        )

    @app.post("/api/sessions")
    def api_create():
        data = body()
        goal = data.get("goal")
        if goal is not None and (not isinstance(goal, int) or isinstance(goal, bool)):
            abort(400, "goal must be an integer")
        session = data.get("session")
        if session is not None and not isinstance(session, str):
            abort(400, "session must be a string")
        session_id, record = shop.create(goal, session)
        return jsonify(view(session_id, record)), 201

    @app.get("/api/s/<sid>")
    def api_view(sid: str):
        return jsonify(view(sid, shop.current(sid)))

    @app.post("/api/s/<sid>/step")
    def api_step(sid: str):
        record = shop.current(sid)
        action = body().get("action")
        if not isinstance(action, str):
            abort(400, 'Send {"action": "search[...]" or "click[...]"}.')
        if len(action) > MAX_QUERY_CHARS + 100:
            abort(400, f"The action is longer than {MAX_QUERY_CHARS + 100} characters.")
        result = engine.transition(record, action)
        shop.sessions.put(sid, result.record)
        return jsonify(view(sid, result.record, reward=result.reward, done=result.done, error=result.error))

    @app.route("/api/s/<sid>/record", methods=["GET", "PUT"])
    def api_record(sid: str):
        shop.current(sid)
        if request.method == "GET":
            return jsonify(shop.current(sid).to_dict())
        try:
            record = SessionRecord.from_dict(body())
        except (KeyError, TypeError, ValueError, OverflowError) as exc:
            abort(400, f"Malformed session record: {exc}")
        error = engine.validate(record)
        if error is not None:
            abort(400, f"Invalid session record: {error}")
        shop.sessions.put(sid, record)
        return jsonify(view(sid, record))

    @app.delete("/api/s/<sid>")
    def api_delete(sid: str):
        if not shop.sessions.delete(sid):
            abort(404, f"Unknown or expired session {sid[:64]!r}.")
        return "", 204
