"""Goal construction as in the original ``get_synthetic_goals`` / ``get_human_goals``, but reproducible.

The original draws each goal's price bound with the unseeded global ``random`` (WebShop issue #45: the
instruction text changes from one process to the next). Here every draw comes from a ``random.Random``
seeded by the catalogue seed, so goal text and bounds are a function of (catalogue, seed).

Synthetic goals are one per combination of the goal product's option values, which multiplies quickly on
large catalogues; :class:`SyntheticGoals` therefore stores one compact entry per goal product and builds each
goal dict on access.
"""

from __future__ import annotations

import bisect
import itertools
import math
import random
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from webshop_server.catalog import Product

#: Candidate price bounds: multiples of ten up to 990, as the original's ``PRICE_RANGE``.
PRICE_STEPS = tuple(10.0 * i for i in range(1, 100))
#: The seed of the original's one shuffle of its goal list (``random.seed(233); random.shuffle(goals)``).
GOAL_SHUFFLE_SEED = 233
#: Bound used when the product is too expensive for two candidate bounds (no price text then).
NO_PRICE_LIMIT = 1_000_000


def original_goal_order(count: int) -> list[int]:
    """Position ``n`` holds the catalogue index of the original's goal ``n``.

    The original builds its goals in catalogue order, then shuffles the list once with the global
    ``random`` seeded to 233; ``random.shuffle`` draws depend only on the seed and the list's length,
    so shuffling the indices with a fresh ``Random(233)`` gives the same permutation.
    """
    order = list(range(count))
    random.Random(GOAL_SHUFFLE_SEED).shuffle(order)
    return order


def price_bound(price: float, rng: random.Random) -> tuple[float, str]:
    """The goal's ``price_upper`` and its instruction suffix, drawn as the original does but from ``rng``.

    Of the first four multiples of ten above ``price``, two are sampled and the larger kept.
    """
    first_above = bisect.bisect_right(PRICE_STEPS, price)
    candidates = PRICE_STEPS[first_above : first_above + 4]
    if len(candidates) < 2:
        return NO_PRICE_LIMIT, ""
    upper = max(rng.sample(candidates, 2))
    return upper, f", and price lower than {upper:.2f} dollars"


@dataclass(frozen=True, slots=True)
class GoalSpec:
    """A product that can be a synthetic goal: its instruction and the attributes that instruction names."""

    product_index: int
    instruction: str
    attributes: tuple[str, ...]


class _Entry(NamedTuple):  # a tuple: a large catalogue makes one per goal product (470k at 1.18M)
    product: Product
    instruction: str
    attributes: tuple[str, ...]
    price_upper: float
    price_text: str
    weight: float
    option_names: tuple[str, ...]
    option_values: tuple[tuple[str, ...], ...]


class SyntheticGoals(Sequence[dict[str, Any]]):
    """All synthetic goals of a catalogue, in catalogue order, one per option combination of each product.

    ``weight`` is the original's: the mean over the goal's attributes of 1 / (number of goals naming it).
    """

    def __init__(
        self, products: Sequence[Product], prices: Sequence[float], specs: Sequence[GoalSpec], seed: int
    ) -> None:
        rng = random.Random(f"webshop-goals:{seed}")
        counts: dict[str, int] = defaultdict(int)
        drafts = []
        for spec in specs:
            product = products[spec.product_index]
            if not spec.attributes:
                raise ValueError(f"goal product {product.asin} names no attributes")
            groups = sorted(product.options)  # the original iterates option names alphabetically
            combos = math.prod(map(len, (values for _, values in groups)))
            upper, text = price_bound(prices[spec.product_index], rng)
            for attribute in spec.attributes:
                counts[attribute] += combos
            drafts.append((spec, product, groups, combos, upper, text))
        self._entries: list[_Entry] = []
        self._starts: list[int] = []
        total = 0
        for spec, product, groups, combos, upper, text in drafts:
            if combos == 0:
                continue
            weight = sum(1.0 / counts[a] for a in spec.attributes) / len(spec.attributes)
            self._entries.append(
                _Entry(
                    product,
                    spec.instruction,
                    spec.attributes,
                    upper,
                    text,
                    weight,
                    tuple(n for n, _ in groups),
                    tuple(v for _, v in groups),
                )
            )
            self._starts.append(total)
            total += combos
        self._len = total

    def __len__(self) -> int:
        return self._len

    def __getitem__(self, index: int) -> dict[str, Any]:  # type: ignore[override]
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(self._len))]  # type: ignore[return-value]
        if index < 0:
            index += self._len
        if not 0 <= index < self._len:
            raise IndexError("goal index out of range")
        slot = bisect.bisect_right(self._starts, index) - 1
        entry = self._entries[slot]
        offset = index - self._starts[slot]
        chosen = []
        for values in reversed(entry.option_values):  # mixed radix, last option varying fastest
            offset, digit = divmod(offset, len(values))
            chosen.append(values[digit])
        goal_options = dict(zip(entry.option_names, reversed(chosen), strict=True))
        option_text = ", and ".join(f"{k}: {v}" for k, v in goal_options.items())
        product = entry.product
        return {
            "asin": product.asin,
            "category": product.category,
            "query": product.query,
            "name": product.title,
            "product_category": product.product_category,
            "instruction_text": entry.instruction
            + (f" with {option_text}" if option_text else "")
            + entry.price_text,
            "attributes": list(entry.attributes),
            "price_upper": entry.price_upper,
            "goal_options": goal_options,
            "weight": entry.weight,
        }

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return (self[i] for i in range(self._len))

    def weights(self) -> list[float]:
        """The sampling weight of every goal, without building the goal dicts."""
        out: list[float] = []
        for slot, entry in enumerate(self._entries):
            end = self._starts[slot + 1] if slot + 1 < len(self._starts) else self._len
            out.extend(itertools.repeat(entry.weight, end - self._starts[slot]))
        return out


def human_goals(
    products: Sequence[Product],
    prices: Sequence[float],
    instructions: Sequence[tuple[int, dict[str, Any]]],
    seed: int,
) -> list[dict[str, Any]]:
    """Goals from human-written instructions, ``(product_index, record)`` pairs of ``items_human_ins``.

    As in the original, instructions naming no attributes are skipped and every weight is 1.
    """
    rng = random.Random(f"webshop-human-goals:{seed}")
    goals = []
    for product_index, record in instructions:
        if not record.get("instruction_attributes"):
            continue
        product = products[product_index]
        upper, text = price_bound(prices[product_index], rng)
        goals.append(
            {
                "asin": product.asin,
                "category": product.category,
                "query": product.query,
                "name": product.title,
                "product_category": product.product_category,
                "instruction_text": str(record["instruction"]).strip(".") + text,
                "attributes": list(record["instruction_attributes"]),
                "price_upper": upper,
                "goal_options": list(record.get("instruction_options") or []),
                "weight": 1,
            }
        )
    return goals
