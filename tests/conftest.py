"""Shared fixtures: where the real recordings are, and temporary output."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "data"
REALDATA = REPO.parent / "shared" / "realdata"


@pytest.fixture
def realdata() -> Path:
    """Return the folder of real recordings, or skip when it is absent."""
    if not REALDATA.is_dir():
        pytest.skip(f"real recordings not found at {REALDATA}")
    return REALDATA


@pytest.fixture
def bundled() -> Path:
    """Return the project's own data folder (ships with the repository)."""
    return DATA
