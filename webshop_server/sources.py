"""One entry point that turns a catalogue description (``"synthetic"`` or a path) into a :class:`Catalog`.

Used by the ``serve-webshop`` command and by the environments, so both accept the same ``--catalog``.
"""

from __future__ import annotations

import json
from pathlib import Path

from webshop_server.catalog import Catalog
from webshop_server.original_files import load_webshop
from webshop_server.synthetic import generate_catalog

DEFAULT_SYNTHETIC_PRODUCTS = 1000


class CatalogError(ValueError):
    """A catalogue that cannot be loaded: a missing path, files of the wrong shape, a bad size."""


def find_webshop_files(path: str | Path) -> tuple[Path, Path, Path | None]:
    """``(items_shuffle, items_ins_v2, items_human_ins or None)`` in a folder, or beside an items file.

    The largest matching name wins when a folder holds several sizes, e.g. ``items_shuffle_1000.json``
    and ``items_shuffle.json`` (the full file sorts last).
    """
    path = Path(path)
    if not path.exists():
        raise CatalogError(f"no WebShop catalogue at {path}: no such file or folder")
    folder = path if path.is_dir() else path.parent

    def pick(pattern: str) -> Path | None:
        found = sorted(folder.glob(pattern))
        return found[-1] if found else None

    items = path if path.is_file() else pick("items_shuffle*.json")
    attributes = pick("items_ins_v2*.json")
    if items is None or attributes is None:
        raise CatalogError(f"{folder} needs items_shuffle*.json and items_ins_v2*.json")
    return items, attributes, pick("items_human_ins*.json")


def load_catalog(
    source: str | Path = "synthetic",
    *,
    num_products: int | None = None,
    goals: str = "synthetic",
    seed: int = 0,
) -> Catalog:
    """The built-in synthetic catalogue (``source="synthetic"``) or the original files found at ``source``.

    Raises :class:`CatalogError` (one clear sentence) for a missing path, files that are valid JSON of
    the wrong shape, or a product count below one.
    """
    if num_products is not None and num_products < 1:
        raise CatalogError(f"the number of products must be at least 1, got {num_products}")
    if str(source) == "synthetic":
        if goals != "synthetic":
            raise CatalogError("the generated catalogue has synthetic goals only")
        return generate_catalog(num_products=num_products or DEFAULT_SYNTHETIC_PRODUCTS, seed=seed)
    items, attributes, human = find_webshop_files(source)
    try:
        return load_webshop(items, attributes, human, goals=goals, num_products=num_products, seed=seed)
    except (
        AttributeError,
        KeyError,
        TypeError,
        IndexError,
        UnicodeDecodeError,
        json.JSONDecodeError,
    ) as error:
        raise CatalogError(
            f"{items.parent} does not hold WebShop files in the original format "
            f"({type(error).__name__}: {error})"
        ) from None
