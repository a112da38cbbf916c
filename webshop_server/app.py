"""The WebShop site: HTML pages for people and browsers, a JSON API for programs, both on one engine.

Two URL schemes reach the same sessions.  Ours carries the page state as plain path segments and
query-string parameters: ``/s/<sid>/search?q=red+shoes&page=2``,
``/s/<sid>/item/<ASIN>?q=...&page=1&color=red``, ``/s/<sid>/item/<ASIN>/features?...``.
The original WebShop's (``/<sid>``, ``/search_results/...``, ``/item_page/...``, ``/item_sub_page/...``,
``/done/...``) serves pages in the original's structure, so the original's clients run against this site
unchanged; its URL literals are parsed, never evaluated (:mod:`webshop_server.urls`).
A request is turned into a :class:`SessionRecord`, checked by
:meth:`Engine.validate` and rendered from :meth:`Engine.page_model`; every link on a page is the URL of the
record that :meth:`Engine.transition` gives for that click, so browsing and in-process stepping agree.
Bad input of any kind answers with a 4xx page (or JSON error under ``/api``), never a 500.
"""

from __future__ import annotations

import json
import random
import re
import secrets
import threading
from bisect import bisect_right
from dataclasses import replace
from itertools import accumulate
from typing import Any

from flask import Flask, abort, jsonify, redirect, render_template, request, url_for
from werkzeug.exceptions import Conflict, HTTPException, ServiceUnavailable

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
from webshop_server.original import OriginalSite
from webshop_server.sessions import (
    DEFAULT_MAX_SESSIONS,
    DEFAULT_SESSION_TTL,
    SessionExistsError,
    SessionLimitError,
    SessionStore,
)
from webshop_server.synthetic import generate_catalog
from webshop_server.urls import (
    SUB_PAGE_NAMES,
    LiteralError,
    buy_url,
    is_reserved_param,
    original_url,
    parse_keywords,
    parse_options,
    record_url,
)

_SESSION_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
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


class Site:
    """The engine, the sessions, the goal sampler and the original-scheme pages behind one app."""

    def __init__(self, engine: Engine, sessions: SessionStore, seed: int) -> None:
        self.engine = engine
        self.sessions = sessions
        self.sampler = GoalSampler(engine.catalog, seed)
        self.original = OriginalSite(engine)

    def create(self, goal: int | None = None, session_id: str | None = None) -> tuple[str, SessionRecord]:
        """A new session (a 409 when ``session_id`` is live, a 503 when the store is full)."""
        if goal is None:
            goal = self.sampler.draw()
        if not 0 <= goal < len(self.engine.catalog.goals):
            abort(400, f"goal must be within 0..{len(self.engine.catalog.goals) - 1}")
        session_id = session_id or secrets.token_hex(8)
        if not _SESSION_ID.match(session_id):
            abort(400, "session ids are 1-64 letters, digits, '-' or '_'")
        record = self.engine.new_record(goal)
        try:
            self.sessions.add(session_id, record)
        except SessionExistsError:
            abort(409, f"Session {session_id!r} already exists; leave the id out to get a fresh one.")
        except SessionLimitError as error:
            raise ServiceUnavailable(str(error), retry_after=error.retry_after) from None
        return session_id, record

    def current(self, session_id: str) -> SessionRecord:
        record = self.sessions.get(session_id) if _SESSION_ID.match(session_id) else None
        if record is None:
            abort(404, f"Unknown or expired session {session_id[:64]!r}. Start a new one from the home page.")
        return record

    def store(self, session_id: str, record: SessionRecord) -> None:
        """Save a session's new state (a 503 if it expired meanwhile and the store is full)."""
        try:
            self.sessions.put(session_id, record)
        except SessionLimitError as error:
            raise ServiceUnavailable(str(error), retry_after=error.retry_after) from None

    def original_session(self, session_id: str) -> SessionRecord:
        """The session behind an original-scheme ``/<session_id>`` visit, created on the first visit.

        As in the original, an id containing ``fixed`` names its goal by its last ``_`` part
        (``fixed_17`` is the original's goal 17); any other new id draws a goal by weight.
        """
        if not _SESSION_ID.match(session_id):
            abort(404, "session ids are 1-64 letters, digits, '-' or '_'")
        record = self.sessions.get(session_id)
        if record is not None:
            return record
        goal = None
        if "fixed" in session_id:
            number = session_id.split("_")[-1]
            if not _NUMBER.match(number):
                abort(400, f"{session_id!r}: a fixed session ends in _<goal number>, e.g. fixed_17.")
            try:
                goal = self.original.goal_index(int(number))
            except IndexError as error:
                abort(404, str(error))
        try:
            return self.create(goal, session_id)[1]
        except Conflict:  # created by a concurrent first visit
            return self.current(session_id)


def create_app(
    catalog: Catalog | None = None,
    *,
    seed: int = 0,
    show_attributes: bool = False,
    max_sessions: int = DEFAULT_MAX_SESSIONS,
    session_ttl: float = DEFAULT_SESSION_TTL,
) -> Flask:
    """A Flask app serving ``catalog`` (default: the 1,000-product synthetic catalogue of ``seed``).

    At most ``max_sessions`` sessions live at once; one idle for ``session_ttl`` seconds expires.  At the
    cap new sessions are refused (503 with ``Retry-After``) and live ones are kept.
    """
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = 64 * 1024
    engine = Engine(
        catalog or generate_catalog(num_products=1000, seed=seed), show_attributes=show_attributes
    )
    shop = Site(engine, SessionStore(max_sessions, session_ttl), seed)
    app.extensions["webshop"] = shop
    _register_html(app, shop)
    _register_original(app, shop)
    _register_api(app, shop)

    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException):
        code = error.code or 500
        if request.path.startswith("/api/"):
            response = jsonify(error=error.description, status=code)
        else:
            page = render_template("error.html", code=code, name=error.name, message=error.description)
            response = app.make_response(page)
        response.status_code = code
        retry_after = getattr(error, "retry_after", None)
        if retry_after is not None:
            response.headers["Retry-After"] = str(retry_after)
        return response

    return app


# -- URL <-> record ----------------------------------------------------------------------------------------
def _whole_number(text: str | None, what: str) -> int | None:
    if text is None:
        return None
    if not _NUMBER.match(text):
        abort(400, f"Bad {what} {text[:20]!r}: use a whole number.")
    return int(text)


def _checked_query(raw: str) -> str:
    if len(raw) > MAX_QUERY_CHARS:
        abort(400, f"The search query is longer than {MAX_QUERY_CHARS} characters.")
    return normalize_query(raw)


def _navigate(
    engine: Engine,
    current: SessionRecord,
    page: str,
    query: str = "",
    number: int = 1,
    asin: str = "",
    options: tuple[tuple[str, str], ...] = (),
) -> SessionRecord:
    """The record a request for a page asks for, or a 4xx when it names no valid shop state.

    Moving to another state counts one step; products opened since the search page stay visited.
    """
    if page == RESULTS and not query:
        abort(400, "Empty search query: type what you are looking for.")
    visited: tuple[str, ...] = () if page == SEARCH else current.visited
    if asin and asin not in visited and asin in engine.catalog.asin_index:
        visited = (*visited, asin)
    record = SessionRecord(
        goal_index=current.goal_index,
        page=page,
        query=query if page != SEARCH else "",
        page_number=number if page != SEARCH else 1,
        asin=asin,
        options=tuple(sorted(options)),
        steps=current.steps,
        visited=visited,
    )
    error = engine.validate(record)
    if error is not None:
        abort(404 if "unknown product" in error or "does not exist" in error else 400, error)
    if replace(record, steps=0) != replace(current, steps=0):
        record = replace(record, steps=current.steps + 1)
    return record


def _our_request(engine: Engine, current: SessionRecord, page: str, asin: str = "") -> SessionRecord:
    """The record one of our ``/s/...`` URLs asks for (query string: ``q``, ``page`` and the options)."""
    if page == SEARCH:
        return _navigate(engine, current, SEARCH)
    query = _checked_query(request.args.get("q", ""))
    number = _whole_number(request.args.get("page", "1"), "page number")
    options = ()
    if page != RESULTS:
        options = tuple((k, v) for k, v in request.args.items() if not is_reserved_param(k))
    return _navigate(engine, current, page, query, number, asin, options)  # type: ignore[arg-type]


# -- HTML --------------------------------------------------------------------------------------------------
def _register_html(app: Flask, shop: Site) -> None:
    engine = shop.engine

    def show(session_id: str, record: SessionRecord):
        shop.store(session_id, record)
        actions = engine.available_actions(record)
        links = {
            c: record_url(session_id, engine.transition(record, f"click[{c}]").record)
            for c in actions["clickables"]
            if c != BUY_NOW
        }
        template = {SEARCH: "search.html", RESULTS: "results.html", ITEM: "item.html", DONE: "done.html"}
        return render_template(
            template.get(record.page, "sub_page.html"),
            sid=session_id,
            page=engine.page_model(record),
            links=links,
            record=record,
            buy_url=buy_url(session_id, record) if record.page == ITEM else None,
        )

    def navigate(session_id: str, page: str, asin: str = ""):
        current = shop.current(session_id)
        if current.done:
            return redirect(url_for("done_page", sid=session_id))
        return show(session_id, _our_request(engine, current, page, asin))

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
            record = _our_request(engine, current, ITEM, asin)
            shop.store(sid, engine.transition(record, f"click[{BUY_NOW}]").record)
        return redirect(url_for("done_page", sid=sid), code=303)

    @app.get("/s/<sid>/done")
    def done_page(sid: str):
        current = shop.current(sid)
        if not current.done:
            abort(409, "Nothing has been bought in this session yet.")
        return show(sid, current)


# -- the original URL scheme -------------------------------------------------------------------------------
def _register_original(app: Flask, shop: Site) -> None:
    """The original site's routes, beside ours: every one answers GET and POST, as the original's do."""
    engine = shop.engine
    methods = ["GET", "POST"]

    def show(session_id: str, record: SessionRecord) -> str:
        shop.store(session_id, record)
        return shop.original.html(session_id, record)

    def literal(parse: Any, text: str, what: str) -> Any:
        try:
            return parse(text)
        except LiteralError as error:
            abort(400, f"Bad {what} in the URL: {error}.")

    def product_page(sid: str, page: str, asin: str, keywords: str, number: str, options: str):
        current = shop.current(sid)
        if current.done:
            return redirect(original_url(sid, current))
        query = _checked_query(" ".join(literal(parse_keywords, keywords, "keywords")))
        chosen = literal(parse_options, options, "options")
        page_number: int = _whole_number(number, "page number")  # type: ignore[assignment]
        return show(sid, _navigate(engine, current, page, query, page_number, asin, tuple(chosen.items())))

    @app.route("/<sid>", methods=methods)
    def original_index(sid: str):
        current = shop.original_session(sid)
        if current.done:  # the original lets a finished session start over on its goal
            current = engine.new_record(current.goal_index)
        if request.method == "POST" and "search_query" in request.form:
            query = _checked_query(request.form["search_query"])
            if not query:
                abort(400, "Empty search query: type what you are looking for.")
            shop.store(sid, _navigate(engine, current, SEARCH))
            results = SessionRecord(current.goal_index, page=RESULTS, query=query)
            return redirect(original_url(sid, results))
        return show(sid, _navigate(engine, current, SEARCH))

    @app.route("/search_results/<sid>/<path:keywords>/<number>", methods=methods)
    def original_results(sid: str, keywords: str, number: str):
        current = shop.current(sid)
        if current.done:
            return redirect(original_url(sid, current))
        query = _checked_query(" ".join(literal(parse_keywords, keywords, "keywords")))
        page_number: int = _whole_number(number, "page number")  # type: ignore[assignment]
        return show(sid, _navigate(engine, current, RESULTS, query, page_number))

    @app.route("/item_page/<sid>/<asin>/<path:keywords>/<number>/<path:options>", methods=methods)
    def original_item(sid: str, asin: str, keywords: str, number: str, options: str):
        return product_page(sid, ITEM, asin, keywords, number, options)

    @app.route("/item_sub_page/<sid>/<asin>/<path:keywords>/<number>/<sub>/<path:options>", methods=methods)
    def original_sub_page(sid: str, asin: str, keywords: str, number: str, sub: str, options: str):
        if sub.lower() not in SUB_PAGES:
            names = ", ".join(SUB_PAGE_NAMES.values())
            abort(404, f"No page {sub[:40]!r} for a product: use one of {names}.")
        return product_page(sid, sub.lower(), asin, keywords, number, options)

    @app.route("/done/<sid>/<asin>/<path:options>", methods=methods)
    def original_done(sid: str, asin: str, options: str):
        current = shop.current(sid)
        if not current.done:
            chosen = literal(parse_options, options, "options")
            query, number = (current.query, current.page_number) if current.query else ("", 1)
            item = _navigate(engine, current, ITEM, query, number, asin, tuple(chosen.items()))
            current = engine.transition(item, f"click[{BUY_NOW}]").record
        return show(sid, current)


# -- JSON API ----------------------------------------------------------------------------------------------
def _register_api(app: Flask, shop: Site) -> None:
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
        """The request's JSON object ({} for an empty body); any other body is a 400, whatever its depth."""
        raw = request.get_data(cache=True)
        if not raw.strip():
            return {}
        try:
            data = json.loads(raw)
        except (ValueError, RecursionError):  # RecursionError: brackets nested deeper than the parser goes
            abort(400, "The request body must be a JSON object.")
        if not isinstance(data, dict):
            abort(400, "The request body must be a JSON object.")
        return data

    @app.get("/api/info")
    def api_info():
        catalog = engine.catalog
        return jsonify(
            catalog=catalog.name,
            products=len(catalog),
            goals=len(catalog.goals),
            show_attributes=engine.show_attributes,
            max_query_chars=MAX_QUERY_CHARS,
            max_sessions=shop.sessions.max_sessions,
            session_ttl=shop.sessions.ttl_seconds,
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
        shop.store(sid, result.record)
        return jsonify(view(sid, result.record, reward=result.reward, done=result.done, error=result.error))

    @app.route("/api/s/<sid>/record", methods=["GET", "PUT"])
    def api_record(sid: str):
        shop.current(sid)
        if request.method == "GET":
            return jsonify(shop.current(sid).to_dict())
        try:
            record = SessionRecord.from_dict(body())
        except (TypeError, ValueError, OverflowError) as exc:
            abort(400, f"Malformed session record: {exc}")
        error = engine.validate(record)
        if error is not None:
            abort(400, f"Invalid session record: {error}")
        shop.store(sid, record)
        return jsonify(view(sid, record))

    @app.delete("/api/s/<sid>")
    def api_delete(sid: str):
        if not shop.sessions.delete(sid):
            abort(404, f"Unknown or expired session {sid[:64]!r}.")
        return "", 204
