"""Fixtures shared by the whole suite."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def require_shared_data(*parts: str) -> Path:
    """Path to real data under ``../shared/data``: skipped locally when absent, a failure in CI."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        message = f"real data not found at {path}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture
def shared_data() -> Path:
    return require_shared_data()
