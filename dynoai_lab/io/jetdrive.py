"""Read CSV logs of Dynojet JetDrive channels.

A JetDrive logger writes the channels that Power Core broadcasts on the
network, one column per channel and one row per sample. Quirks the
reader handles:

- Every field is quoted, numbers included.
- The first column, ``Timestamp``, is local wall-clock time
  (``2025-12-18 23:00:24.584``); time is counted from its first row.
- Channel names are cut at 30 characters, the length of the name field
  of a JetDrive ChannelInfo record (``Idle Air Control Motor Positio``).
- Channels without a name in the provider's ChannelInfo are written as
  ``chan_<id>``; they are kept with unit ``unknown``, because ids
  differ between installations.
- ``Desired Lambda`` of the Harley ECU holds an AFR (about 14.29); the
  AFR-or-lambda check of :mod:`dynoai_lab.io.canonical` reads it as
  ``afr_target``.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from dynoai_lab.io import delimited
from dynoai_lab.io.canonical import Column, build_dataset, shift_time
from dynoai_lab.io.errors import LogFormatError

logger = logging.getLogger(__name__)

SOURCE_FORMAT = "jetdrive-csv"


def looks_like_jetdrive(first_line: str) -> bool:
    """Tell whether a first line is a JetDrive log header."""
    fields = delimited.split_line(first_line, ",")
    return (
        len(fields) > 1
        and fields[0] in ("Timestamp", "timestamp_ms")
        and not any(f.startswith("(") for f in fields)
    )


def read_jetdrive(path: str | os.PathLike) -> xr.Dataset:
    """Read a JetDrive channel log written as CSV.

    Parameters
    ----------
    path : str or path-like
        The log file.

    Returns
    -------
    xarray.Dataset
        Canonical variables on ``time`` [s] from 0, other channels kept.
        Dataset attrs ``source_format`` (``"jetdrive-csv"``),
        ``source_file``, ``time_offset`` [s] and ``start_time`` (the
        first timestamp as written).

    Raises
    ------
    LogFormatError
        If the file is empty, the first column is not ``Timestamp`` or
        ``timestamp_ms``, rows are ragged or a timestamp is invalid.
    """
    path = Path(path)
    lines = [
        line
        for line in delimited.read_text(path, "JetDrive log").splitlines()
        if line.strip()
    ]
    if not lines or not looks_like_jetdrive(lines[0]):
        first = lines[0][:40] if lines else ""
        raise LogFormatError(
            f"{path} is not a JetDrive log: the first line starts with "
            f"{first!r}; expected a 'Timestamp' column first"
        )
    headers = delimited.split_line(lines[0], ",")
    rows = delimited.parse_rows(path, lines[1:], ",", len(headers), 2)
    stamps = [row[0] for row in rows]
    columns = delimited.numeric_columns(
        path, headers[1:], [row[1:] for row in rows], decimal_comma=False
    )
    time = _seconds(path, headers[0], stamps)
    time, keep, offset = shift_time(path, time)
    items = [
        Column(header, values[keep])
        for header, values in zip(headers[1:], columns, strict=True)
    ]
    return build_dataset(
        path,
        time,
        items,
        source="jetdrive",
        source_format=SOURCE_FORMAT,
        attrs={
            "time_offset": offset,
            "start_time": stamps[0] if stamps else "",
        },
    )


def _seconds(path: Path, header: str, stamps: list[str]) -> np.ndarray:
    """Convert the first column to seconds since an arbitrary origin."""
    if header == "timestamp_ms":
        values = pd.to_numeric(pd.Series(stamps), errors="coerce")
        if values.isna().any():
            bad = stamps[int(np.flatnonzero(values.isna())[0])]
            raise LogFormatError(
                f"{path}: invalid timestamp_ms {bad!r}; expected a number "
                "of milliseconds"
            )
        return values.to_numpy(dtype=float) / 1000.0
    times = pd.to_datetime(pd.Series(stamps), errors="coerce")
    if times.isna().any():
        bad = stamps[int(np.flatnonzero(times.isna())[0])]
        raise LogFormatError(
            f"{path}: invalid Timestamp {bad!r}; expected "
            "'YYYY-MM-DD HH:MM:SS.fff'"
        )
    return (times - times.iloc[0]).dt.total_seconds().to_numpy(dtype=float)
