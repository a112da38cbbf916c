"""The built-in catalogue: products and goals generated from a seed, no download.

Each product draws a product type from :mod:`webshop_server.taxonomy`, a brand, 3-6 attributes, a subset of
each option group's values and a price in the type's band (one in ten products with options gets a price
range, as in the original data). About 40% of products carry a synthetic instruction naming 1-3 of their
attributes, which makes them goal products. The same seed gives the same catalogue in any process.

Why it is built the way it is: the original's full catalogue has 1.18M products, and a catalogue of that
size has to start in seconds, not minutes.  So every random draw is made for all products at once, with
numpy, one product type at a time; only the brand names come from a ``random.Random``.  Python then only
formats each product's strings, and the search index is not built from those strings at all: the
generator knows which parts (brand, noun, attributes, option values, ...) fill each product's indexed
text, so its postings come from the parts' terms (:func:`webshop_server.search.postings_from_fills`),
which a test checks against indexing the text itself.
"""

from __future__ import annotations

import hashlib
import random
import re
import string
from collections import Counter
from dataclasses import dataclass

import numpy as np

from webshop_server.catalog import Catalog, Product, draw_hidden_prices, gc_paused
from webshop_server.goals import GoalSpec, SyntheticGoals
from webshop_server.search import postings_from_fills
from webshop_server.taxonomy import BRAND_SYLLABLES, DEPARTMENT_ATTRIBUTES, PRODUCT_TYPES, USES

GOAL_PRODUCT_SHARE = 0.4
OPTION_GROUP_SHARE = 0.85
PRICE_RANGE_SHARE = 0.1
MIN_ATTRIBUTES, MAX_ATTRIBUTES = 3, 6
MAX_OPTION_VALUES = 6
MAX_NAMED_ATTRIBUTES = 3
#: The cents a price ends in; prices are whole cents, at least $1.
_CENTS = (99, 95, 49, 0)
_ASIN_CHARS = string.ascii_uppercase + string.digits
_ASIN_LENGTH = 8
_INSTRUCTIONS = (
    "i need {query} that is {attrs}",
    "i am looking for {attrs} {query}",
    "find me {query} with {attrs}",
    "i want to buy {query} which are {attrs}",
    "get me some {attrs} {query}",
)
#: The parts that fill a product's indexed text (title, description, first bullet point), in order.
_PARTS = ("brand", "qualifier", "noun", "attribute0", "attribute1", "attribute2", "use", "days")


def _brands(rng: random.Random, count: int) -> list[str]:
    names: set[str] = set()
    while len(names) < count:
        names.add("".join(rng.choice(BRAND_SYLLABLES) for _ in range(rng.randint(2, 3))).capitalize())
    return sorted(names)


def _join(words: list[str] | tuple[str, ...]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def _texts(
    brand: str, qualifier: str, noun: str, attributes: tuple[str, ...], use: str, days: str
) -> tuple[str, str, tuple[str, ...]]:
    """A product's title, description and bullet points, from its parts."""
    title = f"{brand} {qualifier} {noun} - {attributes[0].title()}, {attributes[1].title()} for {use}"
    description = (
        f"The {brand} {qualifier.lower()} {noun.lower()} is designed for {use}. "
        f"It is {attributes[0]}, {attributes[1]} and {attributes[2]}, and built to last. "
        f"Every order is backed by our {days}-day satisfaction guarantee."
    )
    bullets = (
        f"{attributes[0].upper()}: a {noun.lower()} that is {attributes[0]} from the first day.",
        f"MADE FOR {use.upper()}: {qualifier.lower()} design with {_join(attributes[1:])}.",
        f"WHAT YOU GET: one {brand} {noun.lower()}, packed in recyclable materials.",
    )
    return title, description, bullets


def _template_layout() -> tuple[str, dict[str, int]]:
    """The indexed text's own words, and how many times each part appears in it.

    Read off ``_texts`` filled with marker words, so that the index stays right whatever the templates say.
    """
    markers = {part: f"zqx{index}slotq" for index, part in enumerate(_PARTS)}
    attributes = (markers["attribute0"], markers["attribute1"], markers["attribute2"])
    title, description, bullets = _texts(
        markers["brand"], markers["qualifier"], markers["noun"], attributes, markers["use"], markers["days"]
    )
    words = re.findall(r"[a-z0-9]+", f"{title} {description} {bullets[0]}".lower())
    counts = Counter(words)
    constant = " ".join(w for w in words if w not in markers.values())
    return constant, {part: counts[marker] for part, marker in markers.items()}


@dataclass
class _Draws:
    """Every random choice for every product (one row per product), made one product type at a time."""

    kind: np.ndarray
    brand: np.ndarray
    qualifier: np.ndarray
    noun: np.ndarray
    use: np.ndarray
    days: np.ndarray
    attributes: np.ndarray  # (n, MAX_ATTRIBUTES) indices into the department's list; -1 past the count
    price: np.ndarray  # the uniform draw inside the type's band, before cents
    cents: np.ndarray  # whole cents
    has_range: np.ndarray
    range_factor: np.ndarray
    options: list[np.ndarray]  # per option group slot: a bit mask of the values kept (0: group dropped)
    is_goal: np.ndarray
    named: np.ndarray  # (n, MAX_NAMED_ATTRIBUTES) positions in the product's attributes; -1 past the count
    instruction: np.ndarray


def _draw(rng: np.random.Generator, num_products: int, num_brands: int) -> _Draws:
    n = num_products
    draws = _Draws(
        kind=rng.integers(len(PRODUCT_TYPES), size=n),
        brand=rng.integers(num_brands, size=n),
        qualifier=np.zeros(n, np.int64),
        noun=np.zeros(n, np.int64),
        use=np.zeros(n, np.int64),
        days=np.zeros(n, np.int64),
        attributes=np.full((n, MAX_ATTRIBUTES), -1, np.int64),
        price=np.zeros(n),
        cents=np.zeros(n, np.int64),
        has_range=np.zeros(n, bool),
        range_factor=np.zeros(n),
        options=[np.zeros(n, np.int64) for _ in range(max(len(k.options) for k in PRODUCT_TYPES))],
        is_goal=np.zeros(n, bool),
        named=np.full((n, MAX_NAMED_ATTRIBUTES), -1, np.int64),
        instruction=np.zeros(n, np.int64),
    )
    for kind_index, kind in enumerate(PRODUCT_TYPES):
        rows = np.flatnonzero(draws.kind == kind_index)
        m = len(rows)
        draws.qualifier[rows] = rng.integers(len(kind.qualifiers), size=m)
        draws.noun[rows] = rng.integers(len(kind.nouns), size=m)
        draws.use[rows] = rng.integers(len(USES[kind.department]), size=m)
        draws.days[rows] = rng.integers(30, 366, size=m)
        population = len(DEPARTMENT_ATTRIBUTES[kind.department])
        counts = rng.integers(MIN_ATTRIBUTES, MAX_ATTRIBUTES + 1, size=m)
        sample = np.argsort(rng.random((m, population)), axis=1)[:, :MAX_ATTRIBUTES]
        draws.attributes[rows] = np.where(np.arange(MAX_ATTRIBUTES) < counts[:, None], sample, -1)
        any_option = np.zeros(m, bool)
        for slot, (_, values) in enumerate(kind.options):
            kept = rng.random(m) < OPTION_GROUP_SHARE
            wanted = rng.integers(2, min(MAX_OPTION_VALUES, len(values)) + 1, size=m)
            ranks = np.argsort(np.argsort(rng.random((m, len(values))), axis=1), axis=1)
            chosen = (ranks < wanted[:, None]) & kept[:, None]
            draws.options[slot][rows] = chosen @ (1 << np.arange(len(values)))
            any_option |= kept
        draws.price[rows] = rng.uniform(*kind.price, size=m)
        draws.cents[rows] = np.asarray(_CENTS)[rng.integers(len(_CENTS), size=m)]
        draws.has_range[rows] = any_option & (rng.random(m) < PRICE_RANGE_SHARE)
        draws.range_factor[rows] = rng.uniform(1.1, 1.6, size=m)
        draws.is_goal[rows] = rng.random(m) < GOAL_PRODUCT_SHARE
        named_counts = rng.integers(1, MAX_NAMED_ATTRIBUTES + 1, size=m)  # every product has >= 3
        keys = np.where(np.arange(MAX_ATTRIBUTES) < counts[:, None], rng.random((m, MAX_ATTRIBUTES)), 2.0)
        order = np.argsort(keys, axis=1)[:, :MAX_NAMED_ATTRIBUTES]
        draws.named[rows] = np.where(np.arange(MAX_NAMED_ATTRIBUTES) < named_counts[:, None], order, -1)
        draws.instruction[rows] = rng.integers(len(_INSTRUCTIONS), size=m)
    return draws


def _asins(rng: np.random.Generator, num_products: int) -> list[str]:
    """Distinct ``B0`` + 8 random letters or digits; a repeated code is redrawn (later copies only)."""
    codes = rng.integers(len(_ASIN_CHARS) ** _ASIN_LENGTH, size=num_products)
    while True:
        repeated = np.ones(num_products, dtype=bool)
        repeated[np.unique(codes, return_index=True)[1]] = False  # the first copy of each code stays
        repeated = np.flatnonzero(repeated)
        if not len(repeated):
            break
        codes[repeated] = rng.integers(len(_ASIN_CHARS) ** _ASIN_LENGTH, size=len(repeated))
    digits = np.stack([(codes // len(_ASIN_CHARS) ** p) % len(_ASIN_CHARS) for p in range(_ASIN_LENGTH)], 1)
    chars = np.empty((num_products, _ASIN_LENGTH + 2), dtype=np.uint8)
    chars[:, :2] = np.frombuffer(b"B0", dtype=np.uint8)
    chars[:, 2:] = np.frombuffer(_ASIN_CHARS.encode(), dtype=np.uint8)[digits]
    return chars.view(f"S{_ASIN_LENGTH + 2}").ravel().astype(f"U{_ASIN_LENGTH + 2}").tolist()


class _ValueTable:
    """Every value a product can put into its indexed text, numbered, with the draws' rows mapped to them."""

    def __init__(self, brands: list[str]) -> None:
        self.values: list[str] = []
        self.brand = self._block(brands)
        self.days = self._block([str(days) for days in range(30, 366)])
        self.qualifier = self._lookup([kind.qualifiers for kind in PRODUCT_TYPES])
        self.noun = self._lookup([kind.nouns for kind in PRODUCT_TYPES])
        self.attribute = self._lookup([DEPARTMENT_ATTRIBUTES[kind.department] for kind in PRODUCT_TYPES])
        self.use = self._lookup([USES[kind.department] for kind in PRODUCT_TYPES])
        slots = max(len(kind.options) for kind in PRODUCT_TYPES)
        width = max(len(values) for kind in PRODUCT_TYPES for _, values in kind.options)
        self.option_name = np.full((len(PRODUCT_TYPES), slots), -1, np.int64)
        self.option_value = np.full((len(PRODUCT_TYPES), slots, width), -1, np.int64)
        for k, kind in enumerate(PRODUCT_TYPES):
            for slot, (name, values) in enumerate(kind.options):
                self.option_name[k, slot] = self._block([name])
                self.option_value[k, slot, : len(values)] = self._block(list(values)) + np.arange(len(values))

    def _block(self, values: list[str] | tuple[str, ...]) -> int:
        """Append ``values``; the id of the first."""
        self.values.extend(values)
        return len(self.values) - len(values)

    def _lookup(self, per_kind: list[tuple[str, ...]]) -> np.ndarray:
        """(kind, index) -> value id, for a choice list per product type (padded with -1)."""
        table = np.full((len(per_kind), max(map(len, per_kind))), -1, np.int64)
        for k, values in enumerate(per_kind):
            table[k, : len(values)] = self._block(values) + np.arange(len(values))
        return table

    def fills(self, draws: _Draws, repeats: dict[str, int]) -> list[tuple[np.ndarray, np.ndarray, int]]:
        """Which value each product puts into its indexed text, as ``postings_from_fills`` takes them."""
        n = len(draws.kind)
        every = np.arange(n, dtype=np.int64)
        k = draws.kind
        part_ids = {
            "brand": self.brand + draws.brand,
            "qualifier": self.qualifier[k, draws.qualifier],
            "noun": self.noun[k, draws.noun],
            **{f"attribute{j}": self.attribute[k, draws.attributes[:, j]] for j in range(MIN_ATTRIBUTES)},
            "use": self.use[k, draws.use],
            "days": self.days + draws.days - 30,
        }
        fills = [(every, part_ids[part], repeats[part]) for part in _PARTS]
        for slot, masks in enumerate(draws.options):
            kept = np.flatnonzero(masks)
            fills.append((kept, self.option_name[k[kept], slot], 1))
            for bit in range(self.option_value.shape[2]):
                rows = np.flatnonzero(masks >> bit & 1)
                fills.append((rows, self.option_value[k[rows], slot, bit], 1))
        return fills


class _OptionGroups:
    """A product's kept option groups from its bit masks, by table lookups instead of loops over bits.

    Each group's values are split in bytes of 8 values; ``subsets[k][slot][byte][bits]`` is the tuple of
    that byte's values whose bits are set, so a group is the concatenation of one tuple per byte.
    """

    def __init__(self) -> None:
        self.subsets = [
            [
                [
                    [
                        tuple(v for bit, v in enumerate(values[lo : lo + 8]) if bits >> bit & 1)
                        for bits in range(256)
                    ]
                    for lo in range(0, len(values), 8)
                ]
                for _, values in kind.options
            ]
            for kind in PRODUCT_TYPES
        ]

    def __call__(self, kind_index: int, masks: tuple[int, ...]) -> tuple[tuple[str, tuple[str, ...]], ...]:
        groups = []
        for (name, _), tables, mask in zip(
            PRODUCT_TYPES[kind_index].options, self.subsets[kind_index], masks, strict=False
        ):
            if mask:
                values = tables[0][mask & 255]
                for byte, table in enumerate(tables[1:], start=1):
                    values += table[mask >> 8 * byte & 255]
                groups.append((name, values))
        return tuple(groups)


def _products(draws: _Draws, brands: list[str], asins: list[str]) -> tuple[list[Product], list[GoalSpec]]:
    """Format the drawn products (their strings) and the goal specs of the goal products.

    This loop is most of a large catalogue's start-up, so it does only what needs Python: equal option
    groups are one shared tuple (also fewer objects), and counts come precomputed.
    """
    option_groups = _OptionGroups()
    option_cache: dict[tuple[int, tuple[int, ...]], tuple[tuple[str, tuple[str, ...]], ...]] = {}
    products: list[Product] = []
    specs: list[GoalSpec] = []
    rows = zip(
        draws.kind.tolist(),
        draws.brand.tolist(),
        draws.qualifier.tolist(),
        draws.noun.tolist(),
        draws.use.tolist(),
        draws.days.tolist(),
        draws.attributes.tolist(),
        (draws.attributes >= 0).sum(axis=1).tolist(),
        (np.maximum(draws.price.astype(np.int64) * 100 + draws.cents, 100) / 100).tolist(),
        np.where(draws.has_range, draws.range_factor, 0.0).tolist(),
        zip(*(slot.tolist() for slot in draws.options), strict=True),
        np.where(draws.is_goal, draws.instruction, -1).tolist(),
        draws.named.tolist(),
        (draws.named >= 0).sum(axis=1).tolist(),
        strict=True,
    )
    for index, row in enumerate(rows):
        k, brand, qualifier, noun, use, days, picks, count, price, factor, masks, template, named, chosen = (
            row
        )
        kind = PRODUCT_TYPES[k]
        attributes = tuple(map(DEPARTMENT_ATTRIBUTES[kind.department].__getitem__, picks[:count]))
        title, description, bullets = _texts(
            brands[brand],
            kind.qualifiers[qualifier],
            kind.nouns[noun],
            attributes,
            USES[kind.department][use],
            str(days),
        )
        options = option_cache.get((k, masks))
        if options is None:
            options = option_cache[k, masks] = option_groups(k, masks)
        products.append(
            Product(
                asins[index],
                title,
                kind.department,
                kind.query,
                kind.path,
                description,
                bullets,
                (price, round(price * factor, 2)) if factor else (price,),
                options,
                attributes,
            )
        )
        if template >= 0:
            named_attributes = tuple(map(attributes.__getitem__, named[:chosen]))
            text = _INSTRUCTIONS[template].format(query=kind.query, attrs=", ".join(named_attributes))
            specs.append(GoalSpec(index, text, named_attributes))
    return products, specs


def _seed_sequence(seed: int) -> np.random.SeedSequence:
    """A numpy seed from any integer seed (negative ones too), the same in every process."""
    digest = hashlib.sha256(f"webshop-catalog:{seed}".encode()).digest()
    return np.random.SeedSequence(int.from_bytes(digest[:16], "little"))


def generate_catalog(num_products: int = 1000, seed: int = 0) -> Catalog:
    """A synthetic catalogue of ``num_products`` products with its synthetic goals (see module docstring)."""
    if num_products < 1:
        raise ValueError("num_products must be positive")
    with gc_paused():
        return _generate(num_products, seed)


def _generate(num_products: int, seed: int) -> Catalog:
    brands = _brands(random.Random(f"webshop-catalog:{seed}"), max(20, min(2000, num_products // 10)))
    rng = np.random.default_rng(_seed_sequence(seed))
    draws = _draw(rng, num_products, len(brands))
    products, specs = _products(draws, brands, _asins(rng, num_products))
    table = _ValueTable(brands)
    common, repeats = _template_layout()
    postings = postings_from_fills(num_products, table.values, table.fills(draws, repeats), common)
    del draws, table
    prices = draw_hidden_prices(products, seed)
    goals = SyntheticGoals(products, prices, specs, seed)
    name = f"synthetic(n={num_products}, seed={seed})"
    return Catalog(products, prices, goals, name=name, postings=postings)
