"""Read RomRaider logger CSV files.

RomRaider writes one header row of ``Name (unit)`` fields and one row
per sample. Quirks the reader handles:

- In locales with a decimal comma the separator is a semicolon and
  numbers are written ``0,98``.
- Time is the first column, ``Time (msec)``, in milliseconds since the
  logger started.
- External sensors carry their module's prefix (``PLX Engine Speed
  (rpm)``); manifold pressure may be in bar and a wideband in lambda
  (``PLX O2 - Wideband (Lambda)``), so the lambda is kept as
  ``lambda_plx`` and ``afr_plx`` is computed from it.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import xarray as xr

from dynoai_lab import channels as registry
from dynoai_lab.io import delimited
from dynoai_lab.io.canonical import Column, build_dataset, shift_time
from dynoai_lab.io.errors import LogFormatError

logger = logging.getLogger(__name__)

SOURCE_FORMAT = "romraider-csv"

_NAME_UNIT = re.compile(r"^(?P<name>.*?)\s*\((?P<unit>[^()]*)\)\s*$")


def split_name_unit(header: str) -> tuple[str, str]:
    """Split ``"PLX Engine Speed (rpm)"`` into name and unit text.

    Examples
    --------
    >>> split_name_unit("Time (msec)")
    ('Time', 'msec')
    >>> split_name_unit("Gear")
    ('Gear', '')
    """
    match = _NAME_UNIT.match(header)
    if match is None:
        return header.strip(), ""
    return match["name"].strip(), match["unit"].strip()


def looks_like_romraider(first_line: str) -> bool:
    """Tell whether a first line is a RomRaider header (``Time (msec)``)."""
    delimiter = delimited.sniff_delimiter(first_line)
    fields = delimited.split_line(first_line, delimiter)
    return bool(fields) and split_name_unit(fields[0]) == ("Time", "msec")


def read_romraider(path: str | os.PathLike) -> xr.Dataset:
    """Read a RomRaider logger CSV file.

    Parameters
    ----------
    path : str or path-like
        The log file.

    Returns
    -------
    xarray.Dataset
        Canonical variables on ``time`` [s] from 0; other columns kept
        with the unit of their header. Dataset attrs ``source_format``
        (``"romraider-csv"``), ``source_file`` and ``time_offset`` [s].

    Raises
    ------
    LogFormatError
        If the file is empty, its first column is not ``Time (msec)``,
        rows are ragged or a time is not a number.
    """
    path = Path(path)
    lines = [
        line
        for line in delimited.read_text(path, "RomRaider log").splitlines()
        if line.strip()
    ]
    if not lines or not looks_like_romraider(lines[0]):
        first = lines[0][:40] if lines else ""
        raise LogFormatError(
            f"{path} is not a RomRaider log: the first line starts with "
            f"{first!r}; expected a 'Time (msec)' column first"
        )
    delimiter = delimited.sniff_delimiter(lines[0])
    headers = delimited.split_line(lines[0], delimiter)
    rows = delimited.parse_rows(path, lines[1:], delimiter, len(headers), 2)
    columns = delimited.numeric_columns(
        path, headers, rows, decimal_comma=delimiter != ","
    )
    if columns[0].dtype == object:
        raise LogFormatError(
            f"{path}: the Time column contains text; expected milliseconds"
        )
    time = registry.convert(columns[0], "ms", "s")
    time, keep, offset = shift_time(path, time)
    items = []
    for header, values in zip(headers[1:], columns[1:], strict=True):
        name, unit = split_name_unit(header)
        items.append(
            Column(
                name,
                values[keep],
                registry.normalize_units(unit),
                {"source_units": unit} if unit else {},
            )
        )
    return build_dataset(
        path,
        time,
        items,
        source="romraider",
        source_format=SOURCE_FORMAT,
        attrs={"time_offset": offset},
    )
