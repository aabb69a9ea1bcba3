"""Readers and writers for dyno logs and ECU tunes.

Logs become an :class:`xarray.Dataset` on a ``time`` coordinate with the
canonical variables of ``docs/nomenclature.md``; tunes become objects
whose tables are :class:`xarray.DataArray` on the ECU's own axes.

>>> from dynoai_lab.io import read_log, read_tune  # doctest: +SKIP
>>> log = read_log("data/5TH GEAR.txt")  # doctest: +SKIP
>>> tune = read_tune("data/base.pvv")  # doctest: +SKIP
"""

from __future__ import annotations

import os
from pathlib import Path

import xarray as xr

from dynoai_lab.io.errors import (
    FileFormatError,
    LogFormatError,
    TuneFormatError,
)
from dynoai_lab.io.pvv import PvvTune, read_pvv, write_pvv
from dynoai_lab.io.winpep import looks_like_winpep, read_winpep

__all__ = [
    "FileFormatError",
    "LogFormatError",
    "PvvTune",
    "TuneFormatError",
    "read_log",
    "read_pvv",
    "read_tune",
    "read_winpep",
    "write_pvv",
]

SUPPORTED_LOGS = (
    "WinPEP 8 CSV/text export (header 'Time, (GROUP) Channel, ...')"
)
SUPPORTED_TUNES = "Power Vision .pvv (XML with a <PVV> root)"


def _first_line(path: Path) -> str:
    """Return the file's first line, decoded leniently, for sniffing."""
    try:
        with open(path, "rb") as file:
            head = file.read(65536)
    except OSError as error:
        raise FileFormatError(f"failed to read {path}: {error}") from None
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        text = head.decode("utf-16", errors="replace")
    else:
        text = head.decode("utf-8-sig", errors="replace")
    return text.splitlines()[0] if text else ""


def read_log(path: str | os.PathLike) -> xr.Dataset:
    """Read a dyno or ECU log, picking the reader from the file's content.

    Parameters
    ----------
    path : str or path-like
        The log file.

    Returns
    -------
    xarray.Dataset
        The log on a ``time`` coordinate [s], see ``docs/nomenclature.md``.

    Raises
    ------
    FileFormatError
        If no reader recognises the file; the message lists the
        supported formats.
    """
    path = Path(path)
    if looks_like_winpep(_first_line(path)):
        return read_winpep(path)
    raise LogFormatError(
        f"{path} is not a log format dynoai-lab can read; supported: "
        f"{SUPPORTED_LOGS}"
    )


def read_tune(path: str | os.PathLike) -> PvvTune:
    """Read an ECU tune, picking the reader from the file's content.

    Parameters
    ----------
    path : str or path-like
        The tune file.

    Returns
    -------
    PvvTune
        The tune.

    Raises
    ------
    FileFormatError
        If no reader recognises the file; the message lists the
        supported formats.
    """
    path = Path(path)
    if _first_line(path).lstrip().startswith("<PVV") or (
        path.suffix.casefold() == ".pvv"
    ):
        return read_pvv(path)
    raise TuneFormatError(
        f"{path} is not a tune format dynoai-lab can read; supported: "
        f"{SUPPORTED_TUNES}"
    )
