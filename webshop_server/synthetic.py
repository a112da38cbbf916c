"""The built-in catalogue: products and goals generated from a seed, no download.

Each product draws a product type from :mod:`webshop_server.taxonomy`, a brand, 3-6 attributes, a subset of
each option group's values and a price in the type's band (one in ten products with options gets a price
range, as in the original data). About 40% of products carry a synthetic instruction naming 1-3 of their
attributes, which makes them goal products. Everything comes from one ``random.Random(seed)``, so the same
seed gives the same catalogue in any process.
"""

from __future__ import annotations

import random
import string

from webshop_server.catalog import Catalog, Product, draw_hidden_prices, gc_paused
from webshop_server.goals import GoalSpec, SyntheticGoals
from webshop_server.taxonomy import BRAND_SYLLABLES, DEPARTMENT_ATTRIBUTES, PRODUCT_TYPES, USES, ProductType

GOAL_PRODUCT_SHARE = 0.4
_ASIN_CHARS = string.ascii_uppercase + string.digits
_INSTRUCTIONS = (
    "i need {query} that is {attrs}",
    "i am looking for {attrs} {query}",
    "find me {query} with {attrs}",
    "i want to buy {query} which are {attrs}",
    "get me some {attrs} {query}",
)


def _brands(rng: random.Random, count: int) -> list[str]:
    names: set[str] = set()
    while len(names) < count:
        names.add("".join(rng.choice(BRAND_SYLLABLES) for _ in range(rng.randint(2, 3))).capitalize())
    return sorted(names)


def _price(rng: random.Random, low: float, high: float) -> float:
    cents = rng.choice((0.99, 0.95, 0.49, 0.0))
    return round(max(1.0, int(rng.uniform(low, high)) + cents), 2)


def _join(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def _make_product(rng: random.Random, asin: str, brand: str, kind: ProductType) -> Product:
    attributes = rng.sample(DEPARTMENT_ATTRIBUTES[kind.department], rng.randint(3, 6))
    options = tuple(
        (name, tuple(sorted(rng.sample(values, rng.randint(2, min(6, len(values)))), key=values.index)))
        for name, values in kind.options
        if rng.random() < 0.85
    )
    qualifier = rng.choice(kind.qualifiers)
    noun = rng.choice(kind.nouns)
    use = rng.choice(USES[kind.department])
    title = f"{brand} {qualifier} {noun} - {attributes[0].title()}, {attributes[1].title()} for {use}"
    description = (
        f"The {brand} {qualifier.lower()} {noun.lower()} is designed for {use}. "
        f"It is {_join(attributes[:3])}, and built to last. "
        f"Every order is backed by our {rng.randint(30, 365)}-day satisfaction guarantee."
    )
    bullets = (
        f"{attributes[0].upper()}: a {noun.lower()} that is {attributes[0]} from the first day.",
        f"MADE FOR {use.upper()}: {qualifier.lower()} design with {_join(attributes[1:])}.",
        f"WHAT YOU GET: one {brand} {noun.lower()}, packed in recyclable materials.",
    )
    low = _price(rng, *kind.price)
    pricing = (low, round(low * rng.uniform(1.1, 1.6), 2)) if options and rng.random() < 0.1 else (low,)
    return Product(
        asin=asin,
        title=title,
        category=kind.department,
        query=kind.query,
        category_path=kind.path,
        description=description,
        bullet_points=bullets,
        pricing=pricing,
        options=options,
        attributes=tuple(attributes),
    )


def _instruction(rng: random.Random, product: Product) -> GoalSpec | None:
    if rng.random() >= GOAL_PRODUCT_SHARE:
        return None
    named = rng.sample(product.attributes, rng.randint(1, min(3, len(product.attributes))))
    template = rng.choice(_INSTRUCTIONS)
    return GoalSpec(-1, template.format(query=product.query, attrs=", ".join(named)), tuple(named))


def generate_catalog(num_products: int = 1000, seed: int = 0) -> Catalog:
    """A synthetic catalogue of ``num_products`` products with its synthetic goals (see module docstring)."""
    if num_products < 1:
        raise ValueError("num_products must be positive")
    with gc_paused():
        return _generate(num_products, seed)


def _generate(num_products: int, seed: int) -> Catalog:
    rng = random.Random(f"webshop-catalog:{seed}")
    brands = _brands(rng, max(20, min(2000, num_products // 10)))
    asins: set[str] = set()
    products: list[Product] = []
    specs: list[GoalSpec] = []
    for index in range(num_products):
        asin = "B0" + "".join(rng.choices(_ASIN_CHARS, k=8))
        while asin in asins:
            asin = "B0" + "".join(rng.choices(_ASIN_CHARS, k=8))
        asins.add(asin)
        product = _make_product(rng, asin, rng.choice(brands), rng.choice(PRODUCT_TYPES))
        products.append(product)
        spec = _instruction(rng, product)
        if spec is not None:
            specs.append(GoalSpec(index, spec.instruction, spec.attributes))
    prices = draw_hidden_prices(products, seed)
    goals = SyntheticGoals(products, prices, specs, seed)
    return Catalog(products, prices, goals, name=f"synthetic(n={num_products}, seed={seed})")
