"""Loaders for the original WebShop data files (``items_shuffle*.json``, ``items_ins_v2*.json``,
``items_human_ins.json``), producing the same products and goals as the original ``load_products`` +
``get_goals``, minus its randomness bugs (hidden range prices and price bounds are drawn from the seed).

Product text is cleaned to the observation charset on load (see :mod:`webshop_server.text`).
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

from webshop_server.catalog import DUMMY_ATTRIBUTE, Catalog, Product, draw_hidden_prices
from webshop_server.goals import GoalSpec, SyntheticGoals, human_goals
from webshop_server.text import clean_text

GOAL_KINDS = ("synthetic", "human")


def _pricing(raw: Any) -> tuple[float, ...]:
    """The original's parse: every ``$``-separated number, the first two kept; $100 when missing."""
    if not raw:
        return (100.0,)
    prices = tuple(float(Decimal(re.sub(r"[^\d.]", "", part))) for part in str(raw).split("$")[1:])
    return prices[:2] or (100.0,)


class _Shared(dict):
    """One object per distinct value: the short fields that repeat across a catalogue are stored once.

    Category paths, queries, option groups and mined attributes take few distinct values (a few hundred
    paths and queries, a small option vocabulary), but parsing makes a fresh string or tuple for every
    product.  Sharing them cut the 30k-product benchmark's products from 98 MB to about 70 MB.
    """

    def __call__(self, value: Any) -> Any:
        return self.setdefault(value, value)


def _options(raw: Any, share: _Shared) -> tuple[tuple[str, tuple[str, ...]], ...]:
    if not raw:
        return ()
    groups = []
    for name, contents in raw.items():
        if contents is None:
            continue
        values = (clean_text(str(c["value"]).strip().replace("/", " | ").lower()) for c in contents)
        values = tuple(map(share, values))
        groups.append(share((share(clean_text(name.lower())), share(values))))
    return share(tuple(groups))


def parse_product(raw: dict[str, Any], attributes: list[str] | None, share: _Shared | None = None) -> Product:
    """One ``items_shuffle`` record as a :class:`Product` (``attributes`` from ``items_ins_v2``).

    ``share`` (one per catalogue) makes equal short fields one object; without it every field is fresh.
    """
    share = _Shared() if share is None else share
    bullets = raw.get("small_description") or []
    if isinstance(bullets, str):
        bullets = [bullets]
    path = tuple(share(clean_text(part)) for part in str(raw.get("product_category", "")).split("›"))
    return Product(
        asin=raw["asin"],
        title=clean_text(raw.get("name", "")),
        category=share(clean_text(raw.get("category", ""))),
        query=share(clean_text(str(raw.get("query", "")).lower().strip())),
        category_path=share(path),
        description=clean_text(raw.get("full_description", "")),
        bullet_points=tuple(clean_text(b) for b in bullets),
        pricing=_pricing(raw.get("pricing")),
        options=_options(raw.get("customization_options"), share),
        attributes=share(tuple(share(clean_text(a)) for a in attributes or [DUMMY_ATTRIBUTE])),
    )


def _read_json(path: str | Path) -> Any:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


#: Characters of the items file read at a time by ``iter_json_array``.
CHUNK_CHARS = 1 << 20
_SPACE = " \t\n\r"


def iter_json_array(path: str | Path, chunk_chars: int = CHUNK_CHARS) -> Iterator[Any]:
    """The elements of a file holding one JSON array, decoded one at a time.

    ``json.load`` of the full 1.18M-product ``items_shuffle.json`` builds every raw record before the
    first product is parsed, several times the file's size in memory; this holds one chunk of text and
    one raw record.  A file that does not start as an array raises ``TypeError``; malformed text inside
    it raises ``json.JSONDecodeError`` (the catalogue loaders turn both into one clear error).
    """
    decoder = json.JSONDecoder()
    with open(path, encoding="utf-8") as f:
        buffer, position, at_end = "", 0, False

        def fill() -> bool:
            """Append the next chunk, dropping what was consumed; ``False`` at the end of the file."""
            nonlocal buffer, position, at_end
            if at_end:
                return False
            more = f.read(chunk_chars)
            at_end = len(more) < chunk_chars
            if not more:
                return False
            buffer, position = buffer[position:] + more, 0
            return True

        def skip_space() -> str:
            nonlocal position
            while True:
                while position < len(buffer) and buffer[position] in _SPACE:
                    position += 1
                if position < len(buffer) or not fill():
                    return buffer[position : position + 1]

        if (start := skip_space()) != "[":
            raise TypeError(f"{path} must hold a JSON array of products, not text starting {start!r}")
        position += 1
        first = True
        while True:
            char = skip_space()
            if char == "]":
                return
            if not first:
                if char != ",":
                    raise json.JSONDecodeError("expected ',' or ']'", buffer, position)
                position += 1
                skip_space()
            while True:
                try:
                    value, end = decoder.raw_decode(buffer, position)
                except json.JSONDecodeError:
                    if not fill():
                        raise
                    continue
                if end < len(buffer) or not fill():  # a value that ends the chunk may go on in the next
                    break
            position, first = end, False
            yield value


def load_webshop(
    items_path: str | Path,
    attributes_path: str | Path,
    human_path: str | Path | None = None,
    *,
    goals: str = "synthetic",
    num_products: int | None = None,
    seed: int = 0,
) -> Catalog:
    """A :class:`Catalog` from the original files.

    ``goals="synthetic"`` builds the original synthetic goals from the ``instruction`` entries of
    ``items_ins_v2`` (6,910 on the 1,000-product file); ``goals="human"`` needs ``human_path``. As in the
    original, ``num_products`` truncates the product list first and invalid or duplicate ASINs are skipped.
    """
    if goals not in GOAL_KINDS:
        raise ValueError(f"goals must be one of {GOAL_KINDS}, not {goals!r}")
    if goals == "human" and human_path is None:
        raise ValueError("human goals need the items_human_ins file")
    raw_items = itertools.islice(iter_json_array(items_path), num_products)
    mined = _read_json(attributes_path)
    products: list[Product] = []
    specs: list[GoalSpec] = []
    seen: set[str] = set()
    share = _Shared()
    for raw in raw_items:
        asin = raw.get("asin", "nan")
        if asin == "nan" or len(asin) > 10 or asin in seen:
            continue
        seen.add(asin)
        entry = mined.get(asin, {})
        if goals == "synthetic" and entry.get("instruction") is not None:
            named = tuple(share(clean_text(a)) for a in entry["instruction_attributes"])
            specs.append(GoalSpec(len(products), clean_text(entry["instruction"]), named))
        products.append(parse_product(raw, entry.get("attributes"), share))
    # The parsed files are not needed any more: free them before the index is built (the load's peak).
    del mined, seen, share
    prices = draw_hidden_prices(products, seed)
    if goals == "synthetic":
        goal_list: Any = SyntheticGoals(products, prices, specs, seed)
    else:
        human = _read_json(human_path)  # type: ignore[arg-type]
        records = [
            (i, {**r, "instruction": clean_text(r["instruction"])})
            for i, p in enumerate(products)
            for r in human.get(p.asin, [])
        ]
        del human
        goal_list = human_goals(products, prices, records, seed)
    return Catalog(products, prices, goal_list, name=f"webshop({Path(items_path).name}, goals={goals})")
