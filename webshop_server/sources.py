"""One entry point that turns a catalogue description (``"synthetic"`` or a path) into a :class:`Catalog`.

Used by the ``serve-webshop`` command and by the environments, so both accept the same ``--catalog``.
"""

from __future__ import annotations

from pathlib import Path

from webshop_server.catalog import Catalog
from webshop_server.original_files import load_webshop

DEFAULT_SYNTHETIC_PRODUCTS = 1000


def find_webshop_files(path: str | Path) -> tuple[Path, Path, Path | None]:
    """``(items_shuffle, items_ins_v2, items_human_ins or None)`` in a folder, or beside an items file.

    The largest matching name wins when a folder holds several sizes, e.g. ``items_shuffle_1000.json``
    and ``items_shuffle.json`` (the full file sorts last).
    """
    path = Path(path)
    folder = path if path.is_dir() else path.parent
    if not folder.is_dir():
        raise FileNotFoundError(f"no WebShop data folder at {folder}")

    def pick(pattern: str) -> Path | None:
        found = sorted(folder.glob(pattern))
        return found[-1] if found else None

    items = path if path.is_file() else pick("items_shuffle*.json")
    attributes = pick("items_ins_v2*.json")
    if items is None or attributes is None:
        raise FileNotFoundError(f"{folder} needs items_shuffle*.json and items_ins_v2*.json")
    return items, attributes, pick("items_human_ins*.json")


def load_catalog(source: str | Path = "synthetic", *, num_products: int | None = None,
                 goals: str = "synthetic", seed: int = 0) -> Catalog:
    """The built-in synthetic catalogue (``source="synthetic"``) or the original files found at ``source``."""
    if str(source) == "synthetic":
        if goals != "synthetic":
            raise ValueError("the generated catalogue has synthetic goals only")
        return Catalog.synthetic(num_products or DEFAULT_SYNTHETIC_PRODUCTS, seed)
    items, attributes, human = find_webshop_files(source)
    return load_webshop(items, attributes, human, goals=goals, num_products=num_products, seed=seed)
