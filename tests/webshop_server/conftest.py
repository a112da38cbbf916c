"""Shared fixtures: catalogues are built once per session because the tests only read them."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import require_shared_data
from webshop_server import Catalog, Engine
from webshop_server.original_files import load_webshop
from webshop_server.synthetic import generate_catalog


@pytest.fixture(scope="session")
def webshop_data() -> Path:
    """The real 1,000-product WebShop files beside the checkout: skipped when absent, required in CI."""
    return require_shared_data("webshop", "items_shuffle_1000.json").parent


@pytest.fixture(scope="session")
def real_catalog(webshop_data: Path) -> Catalog:
    return load_webshop(webshop_data / "items_shuffle_1000.json", webshop_data / "items_ins_v2_1000.json")


@pytest.fixture(scope="session")
def synthetic_catalog() -> Catalog:
    return generate_catalog(num_products=1000, seed=0)


@pytest.fixture(scope="session")
def engine(synthetic_catalog: Catalog) -> Engine:
    return Engine(synthetic_catalog)
