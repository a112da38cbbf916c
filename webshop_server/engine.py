"""The shop as pure functions over a small immutable session record.

Every transport (in-process env, HTTP API, HTML site driven by a browser) goes through :class:`Engine`, so
they all see the same pages. An episode's whole state is a :class:`SessionRecord` (a few scalars and a
tuple of selected options), which makes clone/restore for search-based rollouts free: nothing about the
catalogue or the index is copied.

Actions follow the original WebShop grammar: ``search[query]`` (only where the page has a search bar, i.e.
the search page, as in the site) and ``click[text]`` where ``text`` is one of the page's clickables,
compared case-insensitively. ``click[buy now]`` ends the episode with the WebShop reward. An invalid action
leaves the record unchanged and returns an error sentence; ``steps`` counts the valid actions that change
the page (re-choosing the selected option is a no-op, as reloading a page is on the site).
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, replace
from typing import Any, NamedTuple

from webshop_server.catalog import Catalog, Product
from webshop_server.reward import Reward, get_reward
from webshop_server.search import RESULTS_PER_PAGE
from webshop_server.text import clean_text

SEARCH, RESULTS, ITEM, DONE = "search", "results", "item", "done"
SUB_PAGES = ("description", "features", "reviews", "attributes")
PAGE_KINDS = (SEARCH, RESULTS, ITEM, *SUB_PAGES, DONE)
BACK_TO_SEARCH, PREV, NEXT, BUY_NOW = "back to search", "< prev", "next >", "buy now"
MAX_QUERY_CHARS = 1000

# ASCII-only case folding: with Unicode folding "ſearch" (long s, U+017F) or a Kelvin-sign "K" would match
# a verb, so a look-alike word would run as an action instead of being rejected.
_ACTION = re.compile(r"^\s*(search|click)\s*\[(.*)\]\s*$", re.IGNORECASE | re.DOTALL | re.ASCII)


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """Everything that defines a session's current state; small, immutable, hashable and picklable.

    ``visited`` lists the products opened since the search page was last shown, in the order first
    opened: the original's rich text view marks their result links as clicked.
    """

    goal_index: int
    page: str = SEARCH
    query: str = ""
    page_number: int = 1
    asin: str = ""
    options: tuple[tuple[str, str], ...] = ()
    steps: int = 0
    done: bool = False
    reward: float = 0.0
    visited: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (options as a list of ``[name, value]`` pairs)."""
        data = asdict(self)
        data["options"] = [list(pair) for pair in self.options]
        data["visited"] = list(self.visited)
        return data

    @classmethod
    def from_dict(cls, data: Any) -> SessionRecord:
        """The inverse of :meth:`to_dict`; raises ``ValueError``/``TypeError`` on malformed input.

        Types are checked, never coerced: a record arrives from untrusted clients, and converting an
        arbitrary JSON value (``str()`` of a deeply nested list, ``int()`` of ``"7"``) would either hide
        a client bug or recurse without bound.
        """
        if not isinstance(data, dict):
            raise TypeError("a session record must be a JSON object")
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown record fields: {sorted(map(str, unknown))[:5]}")
        if "goal_index" not in data:
            raise ValueError("a session record needs goal_index")
        pairs = data.get("options", [])
        if not isinstance(pairs, list | tuple) or not all(
            isinstance(p, list | tuple) and len(p) == 2 and all(isinstance(x, str) for x in p) for p in pairs
        ):
            raise TypeError("options must be a list of [name, value] string pairs")
        visited = data.get("visited", [])
        if not isinstance(visited, list | tuple) or not all(isinstance(a, str) for a in visited):
            raise TypeError("visited must be a list of ASIN strings")
        reward = data.get("reward", 0.0)
        if isinstance(reward, bool) or not isinstance(reward, int | float):
            raise TypeError("reward must be a number")
        return cls(
            goal_index=_typed(data, "goal_index", int, 0),
            page=_typed(data, "page", str, SEARCH),
            query=_typed(data, "query", str, ""),
            page_number=_typed(data, "page_number", int, 1),
            asin=_typed(data, "asin", str, ""),
            options=tuple(sorted((str(n), str(v)) for n, v in pairs)),
            steps=_typed(data, "steps", int, 0),
            done=_typed(data, "done", bool, False),
            reward=float(reward),
            visited=tuple(visited),
        )


def _typed(data: dict[str, Any], name: str, kind: type, default: Any) -> Any:
    value = data.get(name, default)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise TypeError(f"{name} must be of type {kind.__name__}, got {type(value).__name__}")
    return value


class EngineStep(NamedTuple):
    """The result of one action: the new record, its reward, whether the episode ended, and any error."""

    record: SessionRecord
    reward: float
    done: bool
    error: str | None


def parse_action(action: str) -> tuple[str, str] | None:
    """``("search"|"click", argument)`` for a well-formed action, else None."""
    match = _ACTION.match(action) if isinstance(action, str) else None
    if match is None:
        return None
    return match.group(1).lower(), match.group(2)


def normalize_query(query: str) -> str:
    """A search query as the shop stores it: cleaned to the charset, lower-cased, single-spaced."""
    return clean_text(query).lower()


class Engine:
    """Pages, transitions, observations and rewards over one :class:`Catalog`.

    ``show_attributes`` adds the Attributes sub-page (the original's ``--attrs`` flag; off by default
    because the attributes list gives the goal's attributes away).
    """

    def __init__(self, catalog: Catalog, *, show_attributes: bool = False) -> None:
        self.catalog = catalog
        self.show_attributes = show_attributes

    # -- records -----------------------------------------------------------------------------------------
    def new_record(self, goal_index: int) -> SessionRecord:
        """The start of an episode for goal ``goal_index``: the search page."""
        if not 0 <= goal_index < len(self.catalog.goals):
            raise IndexError(f"goal index {goal_index} out of range 0..{len(self.catalog.goals) - 1}")
        return SessionRecord(goal_index=goal_index)

    def goal(self, record: SessionRecord) -> dict[str, Any]:
        """The goal dict of the record's episode."""
        return self.catalog.goals[record.goal_index]

    def results(self, query: str) -> tuple[str, ...]:
        """All result ASINs for ``query`` (at most 50, as the original)."""
        return self.catalog.search(query)

    def num_pages(self, query: str) -> int:
        return max(1, math.ceil(len(self.results(query)) / RESULTS_PER_PAGE))

    def validate(self, record: SessionRecord) -> str | None:
        """Why ``record`` is not a reachable shop state (None when it is); used for records from outside."""
        if not 0 <= record.goal_index < len(self.catalog.goals):
            return f"goal index {record.goal_index} is out of range"
        if record.page not in PAGE_KINDS:
            return f"unknown page kind {record.page!r}"
        if record.steps < 0:
            return "steps must be >= 0"
        if record.done != (record.page == DONE):
            return "a record is done exactly when it is on the done page"
        if not record.done and record.reward != 0.0:
            return "only a finished purchase carries a reward"
        visited_error = self._visited_error(record)
        if visited_error is not None:
            return visited_error
        if len(record.query) > MAX_QUERY_CHARS:
            return f"query longer than {MAX_QUERY_CHARS} characters"
        if record.page == RESULTS and not record.query:
            return "a results page needs a query"
        if record.query and not 1 <= record.page_number <= self.num_pages(record.query):
            return f"page {record.page_number} does not exist for this query"
        if record.page in (ITEM, *SUB_PAGES, DONE):
            if record.asin.upper() not in self.catalog.asin_index or record.asin != record.asin.upper():
                return f"unknown product {record.asin!r}"
            if record.page == "attributes" and not self.show_attributes:
                return "the attributes page is disabled"
            error = self._options_error(self.catalog.product(record.asin), record.options)
            if error is None and record.done:
                # The server computes every reward itself: a restored record may name any reachable
                # purchase, but never a reward that this purchase does not earn.
                earned = self.reward(record).total
                if record.reward != earned:
                    return f"this purchase earns reward {earned!r}, not {record.reward!r}"
            return error
        if record.asin or record.options:
            return "only product pages carry a product and options"
        return None

    def _visited_error(self, record: SessionRecord) -> str | None:
        if len(set(record.visited)) != len(record.visited):
            return "visited products must be distinct"
        if record.page == SEARCH and record.visited:
            return "the search page starts with no visited products"
        for asin in record.visited:
            if asin not in self.catalog.asin_index:
                return f"unknown visited product {asin[:20]!r}"
        return None

    @staticmethod
    def _options_error(product: Product, options: tuple[tuple[str, str], ...]) -> str | None:
        groups = dict(product.options)
        names = [name for name, _ in options]
        if len(set(names)) != len(names) or list(options) != sorted(options):
            return "options must be sorted (name, value) pairs with distinct names"
        for name, value in options:
            if value not in groups.get(name, ()):
                return f"product {product.asin} has no option {name}: {value}"
        return None

    # -- transitions -------------------------------------------------------------------------------------
    def transition(self, record: SessionRecord, action: str) -> EngineStep:
        """Apply ``action`` to ``record``; never raises for bad actions (they come back as ``error``)."""
        if record.done:
            return EngineStep(record, 0.0, True, "The episode is over: the purchase has been made.")
        parsed = parse_action(action)
        if parsed is None:
            shown = clean_text(action)[:80] if isinstance(action, str) else type(action).__name__
            return self._invalid(record, f"Cannot parse {shown!r}: use search[query] or click[button].")
        verb, argument = parsed
        if verb == "search":
            return self._search(record, argument)
        target = clean_text(argument).lower()
        clickables = self.available_actions(record)["clickables"]
        if target not in clickables:
            listed = ", ".join(clickables) if clickables else "none (use search[query])"
            return self._invalid(record, f"{target[:80]!r} is not clickable here. Clickables: {listed}.")
        return self._click(record, target)

    @staticmethod
    def _invalid(record: SessionRecord, message: str) -> EngineStep:
        return EngineStep(record, 0.0, False, message)

    def _search(self, record: SessionRecord, raw_query: str) -> EngineStep:
        if record.page != SEARCH:
            return self._invalid(record, "There is no search bar on this page: click[back to search] first.")
        query = normalize_query(raw_query)
        if not query:
            return self._invalid(record, "The search query is empty.")
        if len(query) > MAX_QUERY_CHARS:
            return self._invalid(record, f"The search query is longer than {MAX_QUERY_CHARS} characters.")
        new = replace(record, page=RESULTS, query=query, page_number=1, steps=record.steps + 1)
        return EngineStep(new, 0.0, False, None)

    def _click(self, record: SessionRecord, target: str) -> EngineStep:
        step = record.steps + 1
        if target == BACK_TO_SEARCH:
            new = SessionRecord(goal_index=record.goal_index, steps=step)
        elif target == NEXT:
            new = replace(record, page_number=record.page_number + 1, steps=step)
        elif target == PREV and record.page == RESULTS:
            new = replace(record, page_number=record.page_number - 1, steps=step)
        elif target == PREV and record.page == ITEM:
            page = RESULTS if record.query else SEARCH
            new = replace(record, page=page, asin="", options=(), steps=step)
        elif target == PREV:
            new = replace(record, page=ITEM, steps=step)
        elif target in SUB_PAGES:
            new = replace(record, page=target, steps=step)
        elif target == BUY_NOW:
            reward = self.reward(record).total
            new = replace(record, page=DONE, done=True, reward=reward, steps=step)
            return EngineStep(new, reward, True, None)
        elif record.page == RESULTS:
            asin = target.upper()
            visited = record.visited if asin in record.visited else (*record.visited, asin)
            new = replace(record, page=ITEM, asin=asin, options=(), steps=step, visited=visited)
        else:  # an option value on the item page
            group = self.catalog.product(record.asin).option_group(target)
            selected = dict(record.options)
            if selected.get(group) == target:
                # Re-choosing the selected value is a valid click that changes nothing; like the site (for
                # which it is a page reload) it is not counted as a step.
                return EngineStep(record, 0.0, False, None)
            selected[group] = target  # type: ignore[index]
            new = replace(record, options=tuple(sorted(selected.items())), steps=step)
        return EngineStep(new, 0.0, False, None)

    # -- what the agent sees -----------------------------------------------------------------------------
    def available_actions(self, record: SessionRecord) -> dict[str, Any]:
        """``{"has_search_bar": bool, "clickables": [...]}`` with lower-cased clickables in page order."""
        if record.page == SEARCH:
            return {"has_search_bar": True, "clickables": []}
        if record.page == DONE:
            return {"has_search_bar": False, "clickables": []}
        clickables = [BACK_TO_SEARCH]
        if record.page == RESULTS:
            pages = self.num_pages(record.query)
            clickables += [PREV] if record.page_number > 1 else []
            clickables += [NEXT] if record.page_number < pages else []
            clickables += [asin.lower() for asin in self._page_asins(record)]
            return {"has_search_bar": False, "clickables": clickables}
        clickables.append(PREV)
        if record.page == ITEM:
            product = self.catalog.product(record.asin)
            for _, values in product.options:
                clickables += [v for v in values if v not in clickables]
            clickables += [s for s in SUB_PAGES if s != "attributes" or self.show_attributes]
            clickables.append(BUY_NOW)
        return {"has_search_bar": False, "clickables": clickables}

    def _page_asins(self, record: SessionRecord) -> tuple[str, ...]:
        start = (record.page_number - 1) * RESULTS_PER_PAGE
        return self.results(record.query)[start : start + RESULTS_PER_PAGE]

    def page_model(self, record: SessionRecord) -> dict[str, Any]:
        """The page as data: what the text renderer, the HTML templates and the JSON API all show."""
        model: dict[str, Any] = {
            "kind": record.page,
            "instruction": self.goal(record)["instruction_text"],
            "query": record.query,
            "page_number": record.page_number,
        }
        if record.page == RESULTS:
            results = self.results(record.query)
            model.update(
                total=len(results),
                num_pages=self.num_pages(record.query),
                has_prev=record.page_number > 1,
                has_next=record.page_number < self.num_pages(record.query),
                results=[self._summary(self.catalog.product(a)) for a in self._page_asins(record)],
            )
        elif record.page in (ITEM, *SUB_PAGES, DONE):
            product = self.catalog.product(record.asin)
            selected = dict(record.options)
            options = [
                {"name": name, "values": list(values), "selected": selected.get(name)}
                for name, values in product.options
            ]
            model["product"] = {**self._summary(product), "rating": product.rating, "options": options}
            model["sub_pages"] = [s for s in SUB_PAGES if s != "attributes" or self.show_attributes]
            if record.page in SUB_PAGES:
                model["content"] = self._sub_page_content(product, record.page)
            if record.page == DONE:
                model["reward"] = record.reward
                model["selected"] = selected
        return model

    @staticmethod
    def _summary(product: Product) -> dict[str, str]:
        return {"asin": product.asin, "title": product.title, "price": product.price_text}

    @staticmethod
    def _sub_page_content(product: Product, page: str) -> list[str]:
        if page == "description":
            return [product.description] if product.description else []
        if page == "features":
            return list(product.bullet_points)
        if page == "attributes":
            return list(product.attributes)
        return []  # reviews: the released WebShop data has none

    def render_text(self, record: SessionRecord) -> str:
        """The text observation: the page's content with clickables shown as ``[text]``."""
        model = self.page_model(record)
        lines = [f"Instruction: {model['instruction']}"]
        kind = model["kind"]
        if kind == SEARCH:
            lines.append("WebShop search page. Search is available: use search[your query].")
            return "\n".join(lines)
        if kind == DONE:
            product = model["product"]
            chosen = ", ".join(f"{k}: {v}" for k, v in sorted(model["selected"].items())) or "none"
            lines += [
                "Thank you for shopping with us!",
                f"You bought: {product['title']} ({product['asin']}), options: {chosen}.",
                f"Your score (min 0.0, max 1.0): {model['reward']:.4f}",
            ]
            return "\n".join(lines)
        buttons = ["[back to search]"]
        if kind == RESULTS:
            buttons += ["[< prev]"] if model["has_prev"] else []
            buttons += ["[next >]"] if model["has_next"] else []
            lines.append(
                f'Results for "{model["query"]}": page {model["page_number"]} of '
                f"{model['num_pages']} ({model['total']} results)."
            )
            lines.append(" ".join(buttons))
            lines += [f"[{r['asin'].lower()}] {r['title']} | {r['price']}" for r in model["results"]]
            if not model["results"]:
                lines.append("No products match this query.")
        else:
            product = model["product"]
            lines.append(" ".join([*buttons, "[< prev]"]))
            if kind == ITEM:
                lines.append(product["title"])
                lines.append(f"Price: {product['price']} | Rating: {product['rating']}")
                for group in product["options"]:
                    chosen = f" (selected: {group['selected']})" if group["selected"] else ""
                    lines.append(f"{group['name']}: " + " ".join(f"[{v}]" for v in group["values"]) + chosen)
                lines.append(" ".join(f"[{s}]" for s in model["sub_pages"]) + " [buy now]")
            else:
                lines.append(f"{kind.capitalize()} of {product['title']}:")
                lines += [f"- {item}" for item in model["content"]] or ["(nothing to show)"]
        lines.append("Search is not available on this page: click [back to search] to search again.")
        return "\n".join(lines)

    # -- rewards -----------------------------------------------------------------------------------------
    def reward(self, record: SessionRecord) -> Reward:
        """The reward breakdown for buying the record's product with its selected options."""
        product = self.catalog.product(record.asin)
        return get_reward(product, self.goal(record), self.catalog.price(record.asin), dict(record.options))

    def score(self, record: SessionRecord) -> float:
        """The reward the agent would get by buying now (0.0 with no product open; the reward once done)."""
        if record.done:
            return record.reward
        if record.page in (ITEM, *SUB_PAGES):
            return self.reward(record).total
        return 0.0

    def oracle_actions(self, record: SessionRecord) -> list[str]:
        """Actions from ``record`` that buy the goal product with the goal options.

        Searches the goal's query and pages to the product; when the product is not among the query's 50
        results, it searches the product's title instead. For human goals (option strings) it clicks every
        goal option the product offers.
        """
        if record.done:
            return []
        goal = self.goal(record)
        asin = goal["asin"]
        actions: list[str] = []
        if record.asin == asin and record.page in (ITEM, *SUB_PAGES):
            actions += [f"click[{PREV}]"] if record.page != ITEM else []
        else:
            product = self.catalog.product(asin)
            candidates = (normalize_query(goal["query"]), normalize_query(product.title)[:MAX_QUERY_CHARS])
            query = next((q for q in candidates if asin in self.results(q)), candidates[-1])
            position = self.results(query).index(asin) if asin in self.results(query) else 0
            target_page = position // RESULTS_PER_PAGE + 1
            if record.page == RESULTS and record.query == query:
                # Already on the right results: page there (re-searching would loop a one-step re-planner).
                moves = target_page - record.page_number
                actions += [f"click[{NEXT}]"] * moves if moves > 0 else [f"click[{PREV}]"] * -moves
            else:
                actions += [f"click[{BACK_TO_SEARCH}]"] if record.page != SEARCH else []
                actions.append(f"search[{query}]")
                actions += [f"click[{NEXT}]"] * (target_page - 1)
            actions.append(f"click[{asin.lower()}]")
        wanted = goal["goal_options"]
        values = wanted.values() if isinstance(wanted, dict) else wanted
        offered = {v for _, vs in self.catalog.product(asin).options for v in vs}
        chosen = set(dict(record.options).values()) if record.asin == asin else set()
        actions += [f"click[{v}]" for v in values if v in offered and v not in chosen]
        actions.append(f"click[{BUY_NOW}]")
        return actions
