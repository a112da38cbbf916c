"""Per-process cache of WebShop catalogues, their engines and their train/validation/test goal splits.

Why a cache: a catalogue (products, BM25 index, goals) is by far the largest part of a WebShop env, while an
episode's state is a tiny session record.  Every env built with the same catalogue arguments in one process
shares one :class:`Shop`, clones share it by reference, and a pickled env stores only its
:class:`CatalogKey` and finds (or rebuilds) the shop from the cache when unpickled.

Splits follow the original WebShop: the goals are shuffled with ``random.seed(233)`` and cut into
test = the first 500, validation = the next 1,000 and train = the rest.  A catalogue with fewer than 3,000
goals (where that cut would leave less than half for training) is cut proportionally instead: test = the
first ``n // 6``, validation = the next ``n // 3``, train = the rest; both rules agree at 3,000 goals.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import NamedTuple

from webshop_server.catalog import Catalog
from webshop_server.engine import Engine
from webshop_server.original import OriginalSite
from webshop_server.sources import DEFAULT_SYNTHETIC_PRODUCTS, load_catalog

#: The original's cut sizes (``web_agent_site/envs/web_agent_text_env.py``).
TEST_GOALS, VALIDATION_GOALS = 500, 1000
#: How many category queries ``legal_actions()`` offers on the search page.
MAX_GENERIC_QUERIES = 8


class CatalogKey(NamedTuple):
    """The arguments that determine a catalogue: what the cache and pickles store."""

    source: str
    num_products: int | None
    goals: str
    seed: int

    @classmethod
    def of(cls, source: str | Path, num_products: int | None, goals: str, seed: int) -> CatalogKey:
        """A normalised key, so that equivalent arguments share one cache entry."""
        if str(source) == "synthetic":
            return cls("synthetic", num_products or DEFAULT_SYNTHETIC_PRODUCTS, goals, int(seed))
        return cls(str(Path(source).resolve()), num_products, goals, int(seed))


@dataclass(eq=False)
class Shop:
    """A loaded catalogue with its engine; splits and generic queries are computed on first use."""

    key: CatalogKey
    catalog: Catalog
    engine: Engine

    @cached_property
    def splits(self) -> dict[str, tuple[int, ...]]:
        """Goal indices of each split (see the module docstring for the cut)."""
        count = len(self.catalog.goals)
        order = self.original.goal_order
        if count >= 2 * (TEST_GOALS + VALIDATION_GOALS):
            test, validation = TEST_GOALS, VALIDATION_GOALS
        else:
            test, validation = count // 6, count // 3
        return {
            "test": tuple(order[:test]),
            "validation": tuple(order[test : test + validation]),
            "train": tuple(order[test + validation :]),
        }

    @cached_property
    def original(self) -> OriginalSite:
        """The original site's pages, text modes and goal numbering over this catalogue."""
        return OriginalSite(self.engine)

    @cached_property
    def generic_queries(self) -> tuple[str, ...]:
        """Goal-free search queries: the catalogue's product categories, sorted (the same for every goal)."""
        categories = sorted({product.category for product in self.catalog.products if product.category})
        return tuple(categories[:MAX_GENERIC_QUERIES]) or ("product",)


_SHOPS: dict[CatalogKey, Shop] = {}
_LOCK = threading.Lock()


def get_shop(key: CatalogKey) -> Shop:
    """The process-wide shop for ``key``, loading the catalogue on first use (thread-safe)."""
    with _LOCK:
        shop = _SHOPS.get(key)
        if shop is None:
            catalog = load_catalog(key.source, num_products=key.num_products, goals=key.goals, seed=key.seed)
            shop = _SHOPS[key] = Shop(key, catalog, Engine(catalog))
        return shop
