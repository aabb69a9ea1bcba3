"""Readers and writers for dyno logs and ECU tunes.

Logs become an :class:`xarray.Dataset` on a ``time`` coordinate with the
canonical variables of ``docs/nomenclature.md``; tunes become objects
whose tables are :class:`xarray.DataArray` on the ECU's own axes.

>>> from dynoai_lab.io import read_log, read_tune  # doctest: +SKIP
>>> log = read_log("data/5TH GEAR.txt")  # doctest: +SKIP
>>> tune = read_tune("data/base.pvv")  # doctest: +SKIP

Readers are picked from the file's content, not its extension; see
``docs/formats.md`` for what each handles.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import xarray as xr

from dynoai_lab.io.errors import (
    FileFormatError,
    LogFormatError,
    PreflightError,
    TuneFormatError,
)
from dynoai_lab.io.files import read_regular_file
from dynoai_lab.io.grid import GridTable, looks_like_grid, read_grid
from dynoai_lab.io.haltech import looks_like_haltech, read_haltech
from dynoai_lab.io.jetdrive import looks_like_jetdrive, read_jetdrive
from dynoai_lab.io.mlg import looks_like_mlg, read_mlg
from dynoai_lab.io.msq import (
    MsqTune,
    TableFile,
    read_msq,
    read_table_file,
    write_msq,
)
from dynoai_lab.io.preflight import Finding, PreflightReport, preflight
from dynoai_lab.io.pvv import PvvTune, read_pvv, write_pvv
from dynoai_lab.io.romraider import looks_like_romraider, read_romraider
from dynoai_lab.io.tunerstudio import looks_like_tunerstudio, read_tunerstudio
from dynoai_lab.io.winpep import looks_like_winpep, read_winpep

__all__ = [
    "FileFormatError",
    "Finding",
    "GridTable",
    "LogFormatError",
    "MsqTune",
    "PreflightError",
    "PreflightReport",
    "PvvTune",
    "TableFile",
    "TuneFormatError",
    "detect_log_format",
    "detect_tune_format",
    "preflight",
    "read_grid",
    "read_haltech",
    "read_jetdrive",
    "read_log",
    "read_mlg",
    "read_msq",
    "read_pvv",
    "read_romraider",
    "read_table_file",
    "read_tune",
    "read_tunerstudio",
    "read_winpep",
    "write_msq",
    "write_pvv",
    "write_tune",
]

#: Log formats by name: (reader, description).
LOG_READERS = {
    "mlg": (read_mlg, "MegaLogViewer binary .mlg, format 1 or 2"),
    "haltech": (read_haltech, "Haltech NSP CSV export ('%DataLog%' block)"),
    "winpep": (read_winpep, "WinPEP 8 export ('Time, (GROUP) Channel')"),
    "romraider": (read_romraider, "RomRaider logger CSV ('Time (msec)')"),
    "jetdrive": (read_jetdrive, "JetDrive channel CSV ('Timestamp')"),
    "tunerstudio": (
        read_tunerstudio,
        "TunerStudio/MegaLogViewer .csv or .msl (Time + units row)",
    ),
}
SUPPORTED_LOGS = "; ".join(d for _, d in LOG_READERS.values())
SUPPORTED_TUNES = (
    "Power Vision .pvv (<PVV> root); TunerStudio .msq (<msq> root); "
    "TunerStudio .table (<tableData> root); grid CSV (corner cell and "
    "breakpoints in the first row)"
)

_HEAD_BYTES = 65536


# Markup that may come before a tune's root element.
_PROLOG = re.compile(
    r"\s*(?:<\?.*?\?>|<!--.*?-->|<!DOCTYPE(?:[^\[>]|\[.*?\])*>)", re.DOTALL
)
_ROOT_TAG = re.compile(r"\s*<([A-Za-z_][\w.-]*:)?([A-Za-z_][\w.-]*)")
_TUNE_ROOTS = {"PVV": "pvv", "msq": "msq", "tableData": "table"}


def _head(
    path: Path, error: type[FileFormatError], what: str
) -> tuple[bytes, list[str]]:
    """Return the file's first bytes and its first lines, decoded leniently.

    At most :data:`_HEAD_BYTES` are read, and only from a regular file.
    """
    head = read_regular_file(path, error, what, limit=_HEAD_BYTES)
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        text = head.decode("utf-16", errors="replace")
    else:
        text = head.decode("utf-8-sig", errors="replace")
    return head, text.splitlines()


def detect_log_format(path: str | os.PathLike) -> str | None:
    """Tell which log format a file is in, from its content.

    Parameters
    ----------
    path : str or path-like
        The file.

    Returns
    -------
    str or None
        A key of :data:`LOG_READERS`, or None when no reader recognises
        the file. The extension is not used.
    """
    path = Path(path)
    head, lines = _head(path, LogFormatError, "log")
    if looks_like_mlg(head):
        return "mlg"
    first = lines[0] if lines else ""
    for name, check in (
        ("haltech", looks_like_haltech),
        ("winpep", looks_like_winpep),
        ("romraider", looks_like_romraider),
        ("jetdrive", looks_like_jetdrive),
    ):
        if check(first):
            return name
    if looks_like_tunerstudio(lines):
        return "tunerstudio"
    return None


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
        If the path is not a regular file (a directory, FIFO or device),
        no reader recognises the file (the message lists the supported
        formats), the reader finds it malformed, or it has no data rows.
    """
    path = Path(path)
    head, _ = _head(path, LogFormatError, "log")
    if not head:
        raise LogFormatError(
            f"{path} is empty; expected a log ({SUPPORTED_LOGS})"
        )
    name = detect_log_format(path)
    if name is None:
        raise LogFormatError(
            f"{path} is not a log format dynoai-lab can read; supported: "
            f"{SUPPORTED_LOGS}"
        )
    reader, _ = LOG_READERS[name]
    dataset = reader(path)
    if dataset.sizes.get("time", 0) == 0:
        raise LogFormatError(
            f"{path} has no data rows: the {name} header is followed by no "
            "row with a time value; expected at least one sample"
        )
    return dataset


def detect_tune_format(path: str | os.PathLike) -> str | None:
    """Tell which tune format a file is in: pvv, msq, table, grid or None.

    XML tunes are recognised by their root element, after any XML
    declaration, comments and DOCTYPE, whatever the extension.
    """
    path = Path(path)
    head, lines = _head(path, TuneFormatError, "tune")
    text = "\n".join(lines)
    root = _root_element(text)
    if root in _TUNE_ROOTS:
        return _TUNE_ROOTS[root]
    text = text[:4096]
    for tag, name in (
        ("<PVV", "pvv"),
        ("<msq", "msq"),
        ("<tableData", "table"),
    ):
        if tag in text:
            return name
    first = next((line for line in lines if line.strip()), "")
    if first.lstrip().startswith("<") and path.suffix.casefold() == ".pvv":
        return "pvv"
    if looks_like_grid(first):
        return "grid"
    return None


def _root_element(text: str) -> str | None:
    """Return the local name of the first element in XML text, or None."""
    position = 0
    while match := _PROLOG.match(text, position):
        if match.end() == position:
            break
        position = match.end()
    match = _ROOT_TAG.match(text, position)
    return match.group(2) if match else None


def read_tune(path: str | os.PathLike):
    """Read an ECU tune, picking the reader from the file's content.

    Parameters
    ----------
    path : str or path-like
        The tune file.

    Returns
    -------
    PvvTune or MsqTune or TableFile or GridTable
        The tune. Each has ``ve_front``, ``ve_rear`` (DataArrays with
        dims ``("rpm", load)``), ``afr_target`` (or None), ``path`` and
        ``displacement`` [m³] (None when the file does not state it).

    Raises
    ------
    FileFormatError
        If no reader recognises the file; the message lists the
        supported formats.
    """
    path = Path(path)
    readers = {
        "pvv": read_pvv,
        "msq": read_msq,
        "table": read_table_file,
        "grid": read_grid,
    }
    name = detect_tune_format(path)
    if name is None:
        raise TuneFormatError(
            f"{path} is not a tune format dynoai-lab can read; supported: "
            f"{SUPPORTED_TUNES}"
        )
    return readers[name](path)


def write_tune(
    tune,
    path: str | os.PathLike,
    ve_front=None,
    ve_rear=None,
    *,
    overwrite_readonly: bool = False,
):
    """Write a tune of any supported format, optionally with new VE tables.

    Only the changed VE cells' text differs from the bytes the tune was
    read from; the write is atomic.

    Parameters
    ----------
    tune : PvvTune or MsqTune or TableFile or GridTable
        The tune, as returned by :func:`read_tune`.
    path : str or path-like
        Destination file.
    ve_front, ve_rear : xarray.DataArray or array_like, optional
        New VE [%] on the axes of ``tune.ve_front`` and ``tune.ve_rear``.
        For a tune with one VE table (``tune.shared_ve``) both must be
        equal when both are given. Dims, coordinates (of a DataArray)
        and shape must match the tune's table.
    overwrite_readonly : bool, default False
        Replace a destination without write permission. A symlink is
        written through to its target.

    Returns
    -------
    The tune as written.

    Raises
    ------
    TypeError
        If ``tune`` is not a tune read by this package.
    ValueError
        If a shared VE table is given two different tables, or new
        values do not match the table's dims, coordinates or shape.
    OSError
        If the destination's folder is missing, the destination is
        read-only (``PermissionError``) or writing fails.
    """
    options = {"overwrite_readonly": overwrite_readonly}
    if isinstance(tune, PvvTune):
        return write_pvv(
            tune, path, ve_front=ve_front, ve_rear=ve_rear, **options
        )
    if isinstance(tune, MsqTune):
        return write_msq(
            tune, path, ve_front=ve_front, ve_rear=ve_rear, **options
        )
    if isinstance(tune, (TableFile, GridTable)):
        given = [v for v in (ve_front, ve_rear) if v is not None]
        if len(given) == 2 and not np.allclose(
            np.asarray(ve_front, dtype=float),
            np.asarray(ve_rear, dtype=float),
            equal_nan=True,
        ):
            raise ValueError(
                f"{tune.path} contains one table, but ve_front and ve_rear "
                "differ; pass one table"
            )
        written = tune.with_ve(given[0]) if given else tune
        written.write(path, **options)
        return written
    raise TypeError(
        f"write_tune got a {type(tune).__name__}; expected a tune returned "
        "by read_tune"
    )
