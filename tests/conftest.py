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


def _shipped(repo_path: Path, realdata_path: Path) -> Path:
    """Return a data file that ships with the repository.

    The repository copy is preferred; the copy under ../shared/realdata
    is the fallback, and the test is skipped when neither exists.
    """
    for path in (repo_path, realdata_path):
        if path.is_file():
            return path
    pytest.skip(f"neither {repo_path} nor {realdata_path} exists")


@pytest.fixture
def fifth_gear_path() -> Path:
    """Return the WinPEP export of a 5th gear WOT pull (5TH GEAR.txt)."""
    return _shipped(
        DATA / "5TH GEAR.txt", REALDATA / "harley" / "5TH GEAR.txt"
    )


@pytest.fixture
def base_pvv_path() -> Path:
    """Return the Harley base tune (base.pvv, TPS-based VE)."""
    return _shipped(DATA / "base.pvv", REALDATA / "harley" / "base.pvv")


@pytest.fixture
def template_pvv_path() -> Path:
    """Return the Power Vision 110 CID template (MAP- and TPS-based VE)."""
    return _shipped(
        REPO / "dynoai_lab" / "data" / "pvv_template.pvv",
        REALDATA / "powervision" / "pvv_template.pvv",
    )
