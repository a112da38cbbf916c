"""Every URL of the site, built and parsed without Flask, for both URL schemes.

Our own scheme keeps the page state in path segments and query parameters:
``/s/<sid>/search?q=red+shoes&page=2``, ``/s/<sid>/item/<ASIN>?q=...&page=1&color=red``.

The original WebShop scheme puts Python literals in path segments, e.g.
``/item_page/<sid>/<ASIN>/['red', 'shoes']/1/{'color': 'red'}``; its server reads them back with
``ast.literal_eval``, which evaluates attacker-controlled text.  Here they are read by a small scanner that
accepts exactly a flat list of strings or a flat ``{string: string}`` dict (Python or JSON quoting) and
rejects everything else.

Building URLs needs no app, so clients (the browser transport) and the server share these functions.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote, urlencode

from webshop_server.engine import DONE, ITEM, RESULTS, SEARCH, SessionRecord

#: Where the original text environment pretends its server lives; its ``url`` observations start so.
ORIGINAL_BASE_URL = "http://127.0.0.1:3000"
#: The original's names of the product sub-pages, as they appear in its URLs and buttons.
SUB_PAGE_NAMES = {
    "description": "Description",
    "features": "Features",
    "reviews": "Reviews",
    "attributes": "Attributes",
}
MAX_LITERAL_CHARS = 4000
_RESERVED_PARAMS = ("q", "page")


class LiteralError(ValueError):
    """A URL segment that is not the flat list or dict literal it should be."""


# -- our scheme ------------------------------------------------------------------------------------------
def record_url(session_id: str, record: SessionRecord) -> str:
    """The path (with query string) of our own scheme that shows ``record``."""
    base = f"/s/{quote(session_id, safe='')}"
    if record.page == SEARCH:
        return f"{base}/"
    if record.page == RESULTS:
        return f"{base}/search?{urlencode({'q': record.query, 'page': record.page_number})}"
    if record.page == DONE:
        return f"{base}/done"
    item = f"{base}/item/{quote(record.asin, safe='')}"
    path = item if record.page == ITEM else f"{item}/{record.page}"
    return f"{path}?{urlencode(item_params(record))}" if item_params(record) else path


def buy_url(session_id: str, record: SessionRecord) -> str:
    """Where the Buy Now form of our item page posts to."""
    params = item_params(record)
    path = f"/s/{quote(session_id, safe='')}/buy/{quote(record.asin, safe='')}"
    return f"{path}?{urlencode(params)}" if params else path


def item_params(record: SessionRecord) -> dict[str, Any]:
    """The query parameters of a product page: its options, then the query and results page it came from."""
    params: dict[str, Any] = dict(record.options)
    if record.query:
        params.update(q=record.query, page=record.page_number)
    return params


def is_reserved_param(name: str) -> bool:
    """Whether a query parameter of a product URL is the query/page rather than an option name."""
    return name in _RESERVED_PARAMS


# -- the original scheme: building ------------------------------------------------------------------------
def keywords_of(query: str) -> list[str]:
    """The original's keyword list for a query: the lower-cased query split on single spaces."""
    return query.split(" ") if query else []


def original_url(session_id: str, record: SessionRecord) -> str:
    """The path of the original scheme that shows ``record``, with literals as the original's Flask app
    writes them (``str()`` of a list or dict) and percent-encoded."""
    sid = quote(session_id, safe="")
    if record.page == SEARCH:
        return f"/{sid}"
    keywords = _segment(repr(keywords_of(record.query)))
    if record.page == RESULTS:
        return f"/search_results/{sid}/{keywords}/{record.page_number}"
    options = _segment(repr(dict(record.options)))
    asin = quote(record.asin, safe="")
    if record.page == DONE:
        return f"/done/{sid}/{asin}/{options}"
    if record.page == ITEM:
        return f"/item_page/{sid}/{asin}/{keywords}/{record.page_number}/{options}"
    sub = SUB_PAGE_NAMES[record.page]
    return f"/item_sub_page/{sid}/{asin}/{keywords}/{record.page_number}/{sub}/{options}"


def text_env_url(session_id: str, record: SessionRecord) -> str:
    """The ``url`` observation of the original text environment for ``record``, character for character.

    That environment writes its URLs by hand, unquoted: keywords joined by ``+``, the item page's options
    as JSON and the sub-page's and done page's as ``str()`` of the dict.
    """
    base = ORIGINAL_BASE_URL
    if record.page == SEARCH:
        return f"{base}/{session_id}"
    keywords = "+".join(keywords_of(record.query))
    options = dict(record.options)
    if record.page == RESULTS:
        return f"{base}/search_results/{session_id}/{keywords}/{record.page_number}"
    if record.page == DONE:
        return f"{base}/done/{session_id}/{record.asin}/{options}"
    product = f"{session_id}/{record.asin}/{keywords}/{record.page_number}"
    if record.page == ITEM:
        return f"{base}/item_page/{product}/{json.dumps(options)}"
    return f"{base}/item_sub_page/{product}/{SUB_PAGE_NAMES[record.page]}/{options}"


def _segment(text: str) -> str:
    return quote(text, safe="")


# -- the original scheme: parsing -------------------------------------------------------------------------
def parse_keywords(segment: str) -> list[str]:
    """The keywords of a results or item URL: a list literal, or plain words separated by ``+``/spaces."""
    text = segment.strip()
    if text.startswith("["):
        value = parse_literal(text)
        if not isinstance(value, list):
            raise LiteralError("keywords must be a list of strings")
        return value
    return [word for word in text.replace("+", " ").split(" ") if word]


def parse_options(segment: str) -> dict[str, str]:
    """The selected options of an item URL: a ``{name: value}`` literal of strings (Python or JSON)."""
    value = parse_literal(segment.strip())
    if not isinstance(value, dict):
        raise LiteralError("options must be a {name: value} dict of strings")
    return value


def parse_literal(text: str) -> list[str] | dict[str, str]:
    """A flat list of strings or a flat string-to-string dict, written in Python or JSON syntax.

    Raises :class:`LiteralError` for anything else (nesting, numbers, names, calls, trailing text).
    """
    if len(text) > MAX_LITERAL_CHARS:
        raise LiteralError(f"literal longer than {MAX_LITERAL_CHARS} characters")
    scanner = _Scanner(text)
    value = scanner.container()
    scanner.skip_spaces()
    if scanner.pos != len(text):
        raise LiteralError(f"unexpected text after the literal at position {scanner.pos}")
    return value


_ESCAPES = {
    "\\": "\\",
    "'": "'",
    '"': '"',
    "n": "\n",
    "t": "\t",
    "r": "\r",
    "/": "/",
    "b": "\b",
    "f": "\f",
    "0": "\0",
}


class _Scanner:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def skip_spaces(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos] in " \t\r\n":
            self.pos += 1

    def expect(self, char: str) -> None:
        self.skip_spaces()
        if not self.text.startswith(char, self.pos):
            raise LiteralError(f"expected {char!r} at position {self.pos}")
        self.pos += 1

    def peek(self) -> str:
        self.skip_spaces()
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def container(self) -> list[str] | dict[str, str]:
        opening = self.peek()
        if opening not in ("[", "{"):
            raise LiteralError("expected a list [...] or a dict {...}")
        closing = "]" if opening == "[" else "}"
        self.pos += 1
        items: list[str] = []
        pairs: dict[str, str] = {}
        while self.peek() != closing:
            if items or pairs:
                self.expect(",")
                if self.peek() == closing:  # a trailing comma, as Python allows
                    break
            key = self.string()
            if opening == "{":
                self.expect(":")
                pairs[key] = self.string()
            else:
                items.append(key)
        self.expect(closing)
        return items if opening == "[" else pairs

    def string(self) -> str:
        quote_char = self.peek()
        if quote_char not in ("'", '"'):
            raise LiteralError(f"expected a quoted string at position {self.pos}")
        self.pos += 1
        out: list[str] = []
        while True:
            if self.pos >= len(self.text):
                raise LiteralError("unterminated string")
            char = self.text[self.pos]
            self.pos += 1
            if char == quote_char:
                return "".join(out)
            if char != "\\":
                out.append(char)
                continue
            out.append(self.escape())

    def escape(self) -> str:
        if self.pos >= len(self.text):
            raise LiteralError("unterminated escape")
        char = self.text[self.pos]
        self.pos += 1
        if char in _ESCAPES:
            return _ESCAPES[char]
        width = {"x": 2, "u": 4, "U": 8}.get(char)
        digits = self.text[self.pos : self.pos + width] if width else ""
        if not width or len(digits) != width or any(d not in "0123456789abcdefABCDEF" for d in digits):
            raise LiteralError(f"bad escape \\{char} at position {self.pos - 1}")
        self.pos += width
        code = int(digits, 16)
        if code > 0x10FFFF:
            raise LiteralError("escape beyond Unicode")
        return chr(code)
