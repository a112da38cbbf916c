"""WebShop as a cloneable text environment: ``search[query]`` and ``click[text]`` over a shop engine.

The episode's whole state is the engine's small immutable :class:`SessionRecord`; the catalogue and its
search index live in a per-process cache (:mod:`tsr_envs.webshop.catalogs`) and are never copied by
``clone()``/``get_state()`` nor pickled.  A transport (:mod:`tsr_envs.webshop.transports`) executes the
actions: in-process (default), against the site's JSON API, or in a real headless Chromium.

``legal_actions()`` must list directly executable actions, because random agents pick from it: on the search
page it offers ``search[<category>]`` for the catalogue's product categories (sorted, at most eight, the same
for every goal, so nothing about the goal leaks); any other query is just as legal.  On other pages it is
``click[x]`` for every clickable in page order; once bought, nothing.

``observation_mode`` chooses what the agent reads.  ``"tsr"`` (the default) is this suite's text view: the
page with its clickables in brackets.  ``"html"``, ``"text"``, ``"text_rich"`` and ``"url"`` are the
original ``WebAgentTextEnv``'s modes, with its strings (``[SEP]``-joined page text, ``[button] … [button_]``
markup, "You have clicked …"), and ``info["available_actions"]`` then lists the clickables in the
original's order (buttons, product links, then option values; ``"search"`` on the search page).  Models
trained or evaluated against the original read the same observations here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tsr_envs.core import ActionOutcome, TextEnv, Transition
from tsr_envs.splits import SPLIT_NAMES
from tsr_envs.webshop.catalogs import CatalogKey, Shop, get_shop
from tsr_envs.webshop.transports import DEFAULT_TIMEOUT, HttpTransport, InProcessTransport, Transport
from webshop_server.engine import Engine, SessionRecord, normalize_query, parse_action
from webshop_server.original import OBSERVATION_MODES as ORIGINAL_MODES
from webshop_server.text import clean_text

TRANSPORTS = ("inprocess", "http", "browser")
OBSERVATION_MODES = ("tsr", *ORIGINAL_MODES)
#: Room for a whole product page in ``html`` mode (the text modes fit the default limit).
HTML_OBSERVATION_MAX_LENGTH = 1 << 20

INSTRUCTIONS = (
    "You are shopping on WebShop for the product described by the instruction at the top of each page. "
    "Actions: search[your query] on the search page (the page says when search is available), and "
    "click[text] for any clickable shown in brackets, e.g. click[b0abc12345] to open a product, "
    "click[red] to choose an option, click[next >] or click[back to search] to move around. "
    "click[buy now] buys the open product with the selected options and ends the episode; the reward "
    "(0 to 1) measures how well it matches the instruction: type, attributes, options and price. "
    "{page_note}{answer_rule}, for example "
    "<think>I should look for the product first.</think><answer>search[red running shoes]</answer>"
)


class WebShopEnv(TextEnv):
    """The WebShop task on the built-in synthetic catalogue or the original WebShop files.

    * ``catalog``: ``"synthetic"`` or a folder / ``items_shuffle*.json`` path of the original files;
      ``num_products`` (synthetic default 1000), ``goals`` (``"synthetic"`` or ``"human"``) and
      ``catalog_seed`` complete the catalogue's description;
    * ``split``: which goals ``reset`` draws from (see :mod:`tsr_envs.webshop.catalogs` for the cut);
      ``reset(options={"goal_index": i})`` picks goal ``i`` of the catalogue exactly, whatever the split;
    * ``transport``: ``"inprocess"``, ``"http"`` or ``"browser"``; the remote ones use the server at
      ``base_url`` or, when it is ``None``, a private one started in this process; ``timeout`` bounds every
      request and page load;
    * ``observation_mode``: ``"tsr"`` (default) or one of the original's ``"html"``, ``"text"``,
      ``"text_rich"``, ``"url"`` (see the module docstring); ``reset(options={"original_goal_index": n})``
      picks the original's goal ``n`` (its goal list is our catalogue's, shuffled once with seed 233).

    ``score`` is the reward the agent would get by buying the open product now with its selected options
    (0 with no product open); ``success`` means a purchase with reward 1.
    """

    default_max_actions_per_turn = 1
    #: goals come from a fixed pool cut into train/validation/test (``tsr_envs.splits.split_env_kwargs``)
    has_instance_splits = True

    def __init__(
        self,
        *,
        catalog: str | Path = "synthetic",
        num_products: int | None = None,
        goals: str = "synthetic",
        catalog_seed: int = 0,
        split: str = "train",
        transport: str = "inprocess",
        base_url: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        observation_mode: str = "tsr",
        **kwargs: Any,
    ) -> None:
        if observation_mode not in OBSERVATION_MODES:
            raise ValueError(f"observation_mode must be one of {OBSERVATION_MODES}, got {observation_mode!r}")
        if observation_mode == "html":
            kwargs.setdefault("observation_max_length", HTML_OBSERVATION_MAX_LENGTH)
        super().__init__(**kwargs)
        self.observation_mode = observation_mode
        if split not in SPLIT_NAMES:
            raise ValueError(f"split must be one of {SPLIT_NAMES}, got {split!r}")
        if transport not in TRANSPORTS:
            raise ValueError(f"transport must be one of {TRANSPORTS}, got {transport!r}")
        self.split = split
        self._catalog_key = CatalogKey.of(catalog, num_products, goals, catalog_seed)
        self._transport_config = (transport, base_url, float(timeout))
        self._shop: Shop = get_shop(self._catalog_key)
        self._record: SessionRecord = self._shop.engine.new_record(0)
        self._observation: str | None = None
        # The original-mode view of one record: (record, observation, available actions).
        self._original_view: tuple[SessionRecord, str, dict[str, Any]] | None = None
        self._transport: Transport = self._make_transport()

    def _make_transport(self) -> Transport:
        kind, base_url, timeout = self._transport_config
        if kind == "inprocess":
            return InProcessTransport(self._shop)
        if kind == "http":
            return HttpTransport(self._shop, base_url, self._record, timeout)
        from tsr_envs.webshop.browser import BrowserTransport

        return BrowserTransport(self._shop, base_url, self._record, timeout)

    @property
    def engine(self) -> Engine:
        """The shared engine of this env's catalogue."""
        return self._shop.engine

    @property
    def record(self) -> SessionRecord:
        """The current session record (the episode's whole dynamic state)."""
        return self._record

    def goal_indices(self, split: str | None = None) -> tuple[int, ...]:
        """The catalogue's goal indices of ``split`` (default: this env's split)."""
        return self._shop.splits[split or self.split]

    # -- instance
    def _new_task(self, options: dict[str, Any]) -> None:
        count = len(self._shop.catalog.goals)
        if "original_goal_index" in options:
            number = options["original_goal_index"]
            if isinstance(number, bool) or not isinstance(number, int) or not 0 <= number < count:
                raise ValueError(f"original_goal_index must be an integer in 0..{count - 1}, got {number!r}")
            index = self._shop.original.goal_index(number)
        elif "goal_index" in options:
            index = options["goal_index"]
            if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < count:
                raise ValueError(f"goal_index must be an integer in 0..{count - 1}, got {index!r}")
        else:
            indices = self.goal_indices()
            if not indices:
                raise ValueError(f"the {self.split!r} split of {self._shop.catalog!r} has no goals")
            index = indices[int(self.np_random.integers(len(indices)))]
        self._task = index
        self._set_dynamic((self.engine.new_record(index),))

    def _get_dynamic(self) -> tuple:
        return (self._record,)

    def _set_dynamic(self, dynamic: tuple) -> None:
        (self._record,) = dynamic
        self._observation = self._transport.restore(self._record)

    # -- dynamics
    def legal_actions(self) -> list[str]:
        available = self._available_actions()
        if available["has_search_bar"]:
            return [f"search[{query}]" for query in self._shop.generic_queries]
        return [f"click[{clickable}]" for clickable in available["clickables"]]

    def _act(self, text: str) -> ActionOutcome:
        """Run ``text`` through the engine once: a rejection comes back with the shop's reason, a valid
        action is spelled canonically (lower-cased, single-spaced) and executed by the transport, which
        reuses the engine's answer instead of computing it again."""
        result = self.engine.transition(self._record, text)
        if result.error is not None:
            hint = " Any search[<your query>] is allowed here." if self._record.page == "search" else ""
            return ActionOutcome(None, None, f"The shop says: {result.error}{hint}")
        verb, argument = parse_action(text)  # type: ignore[misc]  # valid, hence parseable
        if verb == "search":
            canonical = f"search[{normalize_query(argument)}]"
        else:
            canonical = f"click[{clean_text(argument).lower()}]"
        step = self._transport.step(self._record, canonical, result)
        self._record, self._observation = step.record, step.observation
        return ActionOutcome(canonical, Transition(step.reward, step.done))

    # -- views
    def _original(self) -> tuple[str, dict[str, Any]]:
        """The original-mode observation and available actions of the current record (rendered once)."""
        view = self._original_view
        if view is None or view[0] is not self._record:
            session = str(self._shop.original.original_index(self._record.goal_index))
            observation, actions = self._shop.original.observe(session, self._record, self.observation_mode)
            view = self._original_view = (self._record, observation, actions)
        return view[1], view[2]

    def _available_actions(self) -> dict[str, Any]:
        if self.observation_mode == "tsr":
            return self.engine.available_actions(self._record)
        available = self._original()[1]
        return {**available, "clickables": [c for c in available["clickables"] if c != "search"]}

    def _render(self) -> str:
        if self.observation_mode != "tsr":
            return self._original()[0]
        if self._observation is None:
            self._observation = self.engine.render_text(self._record)
        return self._observation

    def _score(self) -> float:
        return float(self.engine.score(self._record))

    def _success(self) -> bool:
        return self._record.done and self._record.reward >= 1.0

    def _status(self) -> str:
        if self._record.done:
            return f"You bought a product; reward {self._record.reward:.4f}."
        return ""

    def _extra_info(self) -> dict[str, Any]:
        if self.observation_mode == "tsr":
            return {"available_actions": self.engine.available_actions(self._record)}
        available = self._original()[1]  # cached: hand out a copy the caller may keep or change
        return {"available_actions": {**available, "clickables": list(available["clickables"])}}

    def _reset_info(self) -> dict[str, Any]:
        info = {"goal": dict(self.engine.goal(self._record)), "goal_index": self._record.goal_index}
        if self.observation_mode != "tsr":
            info["original_goal_index"] = self._shop.original.original_index(self._record.goal_index)
        return info

    def instructions(self) -> str:
        rule = (
            "Answer with one action per turn"
            if self.max_actions_per_turn == 1
            else f"Answer with at most {self.max_actions_per_turn} actions per turn, separated by ||"
        )
        note = (
            ""
            if self.observation_mode == "tsr"
            else (
                "The page is shown as the original WebShop shows it; every button, product link and option "
                "on it can be clicked by its text. "
            )
        )
        return INSTRUCTIONS.format(answer_rule=rule, page_note=note)

    def optimal_actions(self) -> list[str] | None:
        """The engine's oracle plan: search the goal's query, open the goal product, pick its options, buy."""
        return self.engine.oracle_actions(self._record)

    # -- clones, pickles, resources
    def clone(self, rng_seed: int | None = None) -> WebShopEnv:
        """An independent env in the same state; remote transports open a new server session for it."""
        twin = super().clone(rng_seed)
        twin._transport = self._transport.fork(self._record)
        return twin  # type: ignore[return-value]

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        for name in ("_shop", "_transport", "_observation", "_original_view"):
            state.pop(name)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._original_view = None
        self._shop = get_shop(self._catalog_key)
        self._transport = self._make_transport()
        self._set_dynamic((self._record,))

    def close(self) -> None:
        self._transport.close()
        super().close()
