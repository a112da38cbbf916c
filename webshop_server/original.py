"""The original WebShop's pages and observations, rendered from a session record.

Existing WebShop clients (the original ``WebAgentTextEnv`` and ``WebAgentSiteEnv``, and the RL frameworks
built on them) read the site's HTML: they select ``#search_input``, ``.btn`` buttons, ``.product-link``
links, radio inputs, ``#instruction-text h4``, ``#reward pre`` and ``#product-image``, and turn the page
into text by joining its visible strings.  The pages here keep that structure, so those clients run
unchanged, and the text observations are made from the page the same way, so they are the same strings:

* ``text``: every visible string, stripped, joined by `` [SEP] ``;
* ``text_rich``: buttons as ``[button] … [button_]``, product links and options likewise (``[clicked
  button]`` for a product opened since the search page or a selected option, with a "You have clicked
  …" line in front), other strings as they are, one per line;
* ``url``: the URL the original text environment would be on;
* ``html``: the page itself.

"Visible" means what the original's HTML-to-text step keeps: text outside ``head``/``script``/``style``/
``title``/comments, with CSS ignored, and whitespace-only strings collapsed the way Beautiful Soup's
``html.parser`` builder collapses them (to ``"\\n"`` when they hold a newline, which is then dropped, else
to one space).

Where this site differs from the original on purpose, the observations differ the same way: "Next >"
appears only when there is a next page (the original shows it on the last page too and leads to empty
pages), product text is cleaned to the observation charset when the catalogue loads, and queries are
normalised (single spaces).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from functools import cached_property
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
from jinja2 import Environment, FileSystemLoader, select_autoescape

from webshop_server.engine import DONE, ITEM, NEXT, PREV, RESULTS, SEARCH, Engine, SessionRecord
from webshop_server.goals import original_goal_order
from webshop_server.text import clean_text
from webshop_server.urls import SUB_PAGE_NAMES, original_url, text_env_url

OBSERVATION_MODES = ("html", "text", "text_rich", "url")
_TEMPLATES = Path(__file__).with_name("templates")
_IGNORED_PARENTS = frozenset({"style", "script", "head", "title", "meta", "[document]"})
_VOID = frozenset(
    {
        "area",
        "base",
        "br",
        "col",
        "embed",
        "hr",
        "img",
        "input",
        "link",
        "meta",
        "param",
        "source",
        "track",
        "wbr",
    }
)
_PRESERVE_WHITESPACE = frozenset({"pre", "textarea"})
_ASCII_SPACES = " \n\t\x0c\r"


@dataclass(frozen=True, slots=True)
class TextNode:
    """One string of a page with the tag directly around it (what the rich text view looks at)."""

    text: str
    parent: str
    parent_classes: tuple[str, ...]


@dataclass
class ParsedPage:
    """A page's visible strings and what a client can act on, in document order."""

    nodes: list[TextNode] = field(default_factory=list)
    has_search_bar: bool = False
    buttons: list[str] = field(default_factory=list)
    product_links: list[str] = field(default_factory=list)
    radio_values: list[str] = field(default_factory=list)

    def clickables(self) -> list[str]:
        """The original's clickables: button and product-link texts lower-cased, then option values."""
        names = [text.lower() for text in (*self.buttons, *self.product_links)] + self.radio_values
        return list(dict.fromkeys(names))


class _PageParser(HTMLParser):
    """Collects visible strings like Beautiful Soup's ``html.parser`` tree and ``find_all(string=True)``."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.page = ParsedPage()
        self._stack: list[tuple[str, tuple[str, ...]]] = []
        self._data: list[str] = []
        # Open .btn / .product-link elements collecting their text (``get_text()``), by stack depth.
        self._collecting: list[tuple[int, str, list[str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._flush()
        values = dict(attrs)
        classes = tuple((values.get("class") or "").split())
        if values.get("id") == "search_input":
            self.page.has_search_bar = True
        if tag == "input" and (values.get("type") or "").lower() == "radio":
            self.page.radio_values.append(values.get("value") or "")
        if tag in _VOID:
            return
        self._stack.append((tag, classes))
        kind = "btn" if "btn" in classes else "link" if "product-link" in classes else ""
        if kind:
            self._collecting.append((len(self._stack), kind, []))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in _VOID:
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        self._flush()
        names = [name for name, _ in self._stack]
        if tag not in names:
            return  # a stray end tag closes nothing, as in Beautiful Soup
        depth = len(names) - names[::-1].index(tag) - 1
        while self._collecting and self._collecting[-1][0] > depth:
            _, kind, parts = self._collecting.pop()
            (self.page.buttons if kind == "btn" else self.page.product_links).append("".join(parts))
        del self._stack[depth:]

    def handle_data(self, data: str) -> None:
        self._data.append(data)

    def handle_comment(self, data: str) -> None:
        self._flush()

    def handle_decl(self, decl: str) -> None:
        self._flush()

    def close(self) -> None:
        super().close()
        self._flush()

    def _flush(self) -> None:
        if not self._data:
            return
        text = "".join(self._data)
        self._data = []
        if not text.strip(_ASCII_SPACES) and not any(tag in _PRESERVE_WHITESPACE for tag, _ in self._stack):
            text = "\n" if "\n" in text else " "
        for _, _, parts in self._collecting:
            parts.append(text)
        parent, classes = self._stack[-1] if self._stack else ("[document]", ())
        if parent not in _IGNORED_PARENTS:
            self.page.nodes.append(TextNode(text, parent, classes))


def parse_page(html: str) -> ParsedPage:
    """The visible strings and clickables of an HTML page."""
    parser = _PageParser()
    parser.feed(html)
    parser.close()
    return parser.page


def simple_text(page: ParsedPage) -> str:
    """The ``text`` observation: visible strings, stripped, joined by `` [SEP] ``."""
    return " [SEP] ".join(node.text.strip() for node in page.nodes if node.text != "\n")


def rich_text(page: ParsedPage, url: str, visited: tuple[str, ...]) -> str:
    """The ``text_rich`` observation: clickables tagged, selected options and opened products marked."""
    observation = ""
    for node in page.nodes:
        text = node.text
        if text == "\n":
            continue
        if node.parent == "button":
            piece = f"[button] {text} [button_]"
        elif node.parent == "label":
            if f'"{text}"' in url:
                piece = f"  [clicked button] {text} [clicked button_]"
                observation = f"You have clicked {text}.\n" + observation
            else:
                piece = f"  [button] {text} [button_]"
        elif node.parent_classes == ("product-link",):
            mark = "clicked button" if text in visited else "button"
            piece = f"\n[{mark}] {text} [{mark}_]"
        else:
            piece = text
        observation += piece + "\n"
    return observation


class OriginalSite:
    """The original site's pages, observations and goal numbering over one :class:`Engine`."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._jinja = Environment(loader=FileSystemLoader(_TEMPLATES), autoescape=select_autoescape())

    # -- goal numbering --------------------------------------------------------------------------------
    @cached_property
    def goal_order(self) -> list[int]:
        """Our goal index of the original's goal ``n`` (the original shuffles its goal list once)."""
        return original_goal_order(len(self.engine.catalog.goals))

    @cached_property
    def _original_index(self) -> np.ndarray:
        inverse = np.empty(len(self.goal_order), dtype=np.int64)
        inverse[np.asarray(self.goal_order, dtype=np.int64)] = np.arange(len(self.goal_order))
        return inverse

    def goal_index(self, original_index: int) -> int:
        """Our catalogue index of the original's goal ``original_index``; IndexError when out of range."""
        if not 0 <= original_index < len(self.goal_order):
            raise IndexError(f"goal {original_index} out of range 0..{len(self.goal_order) - 1}")
        return self.goal_order[original_index]

    def original_index(self, goal_index: int) -> int:
        """The original's number of our goal ``goal_index``."""
        return int(self._original_index[goal_index])

    # -- pages -----------------------------------------------------------------------------------------
    def html(self, session_id: str, record: SessionRecord, *, links: bool = True) -> str:
        """The page that shows ``record``, in the original's structure, its links in the original scheme.

        ``links=False`` leaves every link empty: the text views never read them, and working out where
        each control leads costs one engine transition per control.
        """
        model = self.engine.page_model(record)
        urls = self._links(session_id, record, model, links)
        context: dict[str, Any] = {"page": model, "urls": urls, "sub_names": SUB_PAGE_NAMES}
        if record.page == SEARCH:
            name = "original_search.html"
        elif record.page == RESULTS:
            name = "original_results.html"
        elif record.page == DONE:
            name = "original_done.html"
            escaped = json.dumps(dict(record.options), sort_keys=True)
            for char, code in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("'", "\\u0027")):
                escaped = escaped.replace(char, code)
            context["options_json"] = escaped
        elif record.page == ITEM:
            name = "original_item.html"
        else:
            name = "original_sub_page.html"
            product = self.engine.catalog.product(record.asin)
            context.update(product=product, product_category=clean_text(product.product_category))
        return self._jinja.get_template(name).render(context)

    def _links(
        self, session_id: str, record: SessionRecord, model: dict[str, Any], follow: bool
    ) -> dict[str, Any]:
        """Where every control of the page leads: the URL of the record its click gives ("#" unless
        ``follow``); ``prev``/``next`` are None where the page has no such button."""

        def after(click: str) -> str:
            if not follow:
                return "#"
            return original_url(session_id, self.engine.transition(record, f"click[{click}]").record)

        links: dict[str, Any] = {"search": f"/{session_id}"}
        clickables = self.engine.available_actions(record)["clickables"]
        for name, control in (("prev", PREV), ("next", NEXT)):
            links[name] = after(control) if control in clickables else None
        if record.page == RESULTS:
            links["products"] = [after(r["asin"].lower()) for r in model["results"]]
        elif record.page == ITEM:
            product = self.engine.catalog.product(record.asin)
            links["options"] = [[after(value) for value in values] for _, values in product.options]
            links["sub_pages"] = [after(sub) for sub in model["sub_pages"]]
            links["buy"] = original_url(session_id, replace(record, page=DONE)) if follow else "#"
        return links

    # -- observations ----------------------------------------------------------------------------------
    def observe(self, session_id: str, record: SessionRecord, mode: str) -> tuple[str, dict[str, Any]]:
        """``(observation, available_actions)`` in one of :data:`OBSERVATION_MODES`.

        ``available_actions`` is the original's ``{"has_search_bar", "clickables"}``, clickables in its
        order (buttons, product links, then option values; "search" on the search page).
        """
        if mode not in OBSERVATION_MODES:
            raise ValueError(f"observation mode must be one of {OBSERVATION_MODES}, got {mode!r}")
        html = self.html(session_id, record, links=mode == "html")
        page = parse_page(html)
        actions = {"has_search_bar": page.has_search_bar, "clickables": page.clickables()}
        if mode == "html":
            return html, actions
        if mode == "text":
            return simple_text(page), actions
        url = text_env_url(session_id, record)
        if mode == "url":
            return url, actions
        return rich_text(page, url, record.visited), actions
