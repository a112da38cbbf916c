"""The catalogue: products, their hidden purchase prices, the goals and the search index behind one interface.

Both sources (the procedural generator in :mod:`webshop_server.synthetic` and the loaders for the original
WebShop files in :mod:`webshop_server.original_files`) end in the same :class:`Catalog`, so the engine, the
site and the reward never know where the products came from.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import itertools
import operator
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from webshop_server.search import BM25Index, Postings

#: The original's placeholder when a product has no mined attributes.
DUMMY_ATTRIBUTE = "DUMMY_ATTR"
_ASIN = operator.attrgetter("asin")


@dataclass(frozen=True, slots=True)
class Product:
    """One product, already cleaned (see :mod:`webshop_server.text`) and with lower-cased option values.

    ``options`` keeps the display order of the option groups: ``((name, (value, ...)), ...)``.
    ``pricing`` holds one price or a ``(low, high)`` range, as the original's ``pricing`` floats.
    """

    asin: str
    title: str
    category: str
    query: str
    category_path: tuple[str, ...]
    description: str
    bullet_points: tuple[str, ...]
    pricing: tuple[float, ...]
    options: tuple[tuple[str, tuple[str, ...]], ...]
    attributes: tuple[str, ...]
    rating: str = "N.A."

    @property
    def price_text(self) -> str:
        """The price as the original pages print it: ``$12.99`` or ``$12.99 to $15.99``."""
        return " to ".join(f"${p}" for p in self.pricing)

    @property
    def product_category(self) -> str:
        """The breadcrumb string in the original's ``a › b › c`` form (used in goal dicts)."""
        return " › ".join(self.category_path)

    def option_group(self, value: str) -> str | None:
        """The name of the first option group offering ``value`` (None when none does)."""
        for name, values in self.options:
            if value in values:
                return name
        return None

    def search_text(self) -> str:
        """The text the original indexes: title, description, first bullet point and the option listing."""
        option_text = ", and ".join(f"{name}: {', '.join(values)}" for name, values in self.options)
        first_bullet = self.bullet_points[0] if self.bullet_points else ""
        return f"{self.title} {self.description} {first_bullet} {option_text}".lower()


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection while a catalogue is built; what was built is then frozen.

    Building makes millions of long-lived objects and almost no cycles, so every full collection during
    the build walks everything built so far for nothing: at 1.18M synthetic products that was 15 s of
    generation (84 s -> 69 s) and 5 s of indexing (34 s -> 28 s), measured.  And the first collection
    after the build would walk all of it once more (5.5 s at 1.18M products), so on leaving the outermost
    pause every object alive is moved to the collector's permanent generation (``gc.freeze``), where
    collections never look: a catalogue lives as long as its process.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.freeze()
            gc.enable()


def return_freed_memory() -> None:
    """Give the memory a build freed back to the operating system (glibc's ``malloc_trim``, else nothing).

    Building the index frees many mid-size numpy arrays, which glibc keeps in its heap, so the resident
    size stays well above what is live: at 300k synthetic products 737 MB, and 607 MB after this call.
    """
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError, TypeError):  # not glibc, or no C library to load by name
        return
    trim(0)


def draw_hidden_prices(products: Sequence[Product], seed: int) -> list[float]:
    """The price each product is bought at: its single price, or a seeded uniform draw inside its range.

    The original draws the range price with the unseeded global ``random``; here the draw is reproducible.
    """
    rng = random.Random(f"webshop-prices:{seed}")
    return [
        p.pricing[0] if len(p.pricing) == 1 else rng.uniform(p.pricing[0], p.pricing[1]) for p in products
    ]


class Catalog:
    """Products, hidden prices, goals and a BM25 index over the original's indexed fields.

    ``goals`` is any sequence of goal dicts with the original keys (``asin, instruction_text, attributes,
    goal_options, price_upper, query, category, product_category, name, weight``); for large synthetic
    catalogues it is a lazy sequence that builds each dict on access.  ``postings`` are the products'
    ``search_text`` postings when the caller has them already (a generator that knows each product's
    parts); otherwise the texts are indexed here.
    """

    def __init__(
        self,
        products: Sequence[Product],
        prices: Sequence[float],
        goals: Sequence[dict[str, Any]],
        *,
        name: str = "custom",
        postings: Postings | None = None,
    ) -> None:
        if len(products) != len(prices):
            raise ValueError("one hidden price per product is required")
        self.name = name
        self.products: list[Product] = list(products)
        self.prices: list[float] = [float(p) for p in prices]
        self.goals = goals
        self.asin_index: dict[str, int] = dict(zip(map(_ASIN, self.products), itertools.count()))
        if len(self.asin_index) != len(self.products):
            raise ValueError("duplicate ASINs in catalogue")
        with gc_paused():
            self.index = BM25Index(postings or (p.search_text() for p in self.products))
        return_freed_memory()

    def __len__(self) -> int:
        return len(self.products)

    def __repr__(self) -> str:
        return f"Catalog({self.name!r}, products={len(self.products)}, goals={len(self.goals)})"

    def product(self, asin: str) -> Product:
        """The product with this ASIN (case-insensitive); KeyError when unknown."""
        return self.products[self.asin_index[asin.upper()]]

    def price(self, asin: str) -> float:
        """The hidden purchase price of the product with this ASIN."""
        return self.prices[self.asin_index[asin.upper()]]

    def search(self, query: str) -> tuple[str, ...]:
        """ASINs of the best BM25 matches for ``query``, best first (at most the index's result limit)."""
        return tuple(self.products[i].asin for i in self.index.search(query))
