"""Read TunerStudio and MegaLogViewer text logs (``.csv``, ``.msl``).

Both programs write one header row of channel names and, under it, a
row of units, then one row per record. Quirks the reader handles:

- TunerStudio's CSV export separates fields by semicolons and quotes
  the header and units fields; MegaLogViewer ``.msl`` files use tabs
  and start with quoted information lines (firmware signature, capture
  date) before the header.
- The first record may carry the time of the previous log (536.9 s
  followed by 0.001 s); it is dropped with a warning.
- A column may have an empty name; it is kept as ``unnamed_<i>``.
- Marker lines (``MARK 000 - Manual - ...``) between records become
  ``attrs["markers"]``.
- Enum text in numeric columns is read as numbers where the word is
  known (``On`` is 1), else NaN.

Channel names follow the ECU firmware's ``.ini`` file; the Speeduino
names (``RPM``, ``MAP``, ``TPS``, ``AFR``, ``Lambda``, ``IAT``, ``CLT``,
``AFR Target``...) map to canonical variables, see
:data:`dynoai_lab.channels.FLAT_ALIASES`.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np
import xarray as xr

from dynoai_lab import channels as registry
from dynoai_lab.io import delimited
from dynoai_lab.io.canonical import Column, build_dataset, shift_time
from dynoai_lab.io.errors import LogFormatError

logger = logging.getLogger(__name__)

SOURCE_FORMAT = "tunerstudio-text"

#: Lines searched for the header row.
HEADER_SEARCH_LINES = 40


def find_header(lines: list[str]) -> tuple[int, str] | None:
    """Find the header row of a TunerStudio or MegaLogViewer text log.

    Returns
    -------
    tuple of (int, str) or None
        Line index of the header and its separator, or None when no
        line among the first :data:`HEADER_SEARCH_LINES` starts with a
        ``Time`` field followed by a units row.
    """
    for index, line in enumerate(lines[:HEADER_SEARCH_LINES]):
        delimiter = delimited.sniff_delimiter(line)
        fields = delimited.split_line(line, delimiter)
        if len(fields) < 2 or fields[0].casefold() != "time":
            continue
        if index + 1 >= len(lines):
            return index, delimiter
        units = delimited.split_line(lines[index + 1], delimiter)
        numeric = sum(delimited.is_number(u) for u in units if u)
        if numeric <= len(units) // 2:
            return index, delimiter
    return None


def looks_like_tunerstudio(lines: list[str]) -> bool:
    """Tell whether the first lines look like a TunerStudio text log."""
    found = find_header(lines)
    if found is None:
        return False
    index, _ = found
    # WinPEP exports also start with Time but have no units row; a
    # units row needs a second line that is mostly text.
    return index + 1 < len(lines) and not lines[index].lstrip().startswith(
        "Time, ("
    )


def read_tunerstudio(path: str | os.PathLike) -> xr.Dataset:
    """Read a TunerStudio CSV or MegaLogViewer ``.msl`` log.

    Parameters
    ----------
    path : str or path-like
        The log file.

    Returns
    -------
    xarray.Dataset
        Canonical variables on ``time`` [s] (see ``docs/nomenclature.md``);
        the other channels keep their names (slugified) and the units of
        the units row. Dataset attrs: ``source_format``
        (``"tunerstudio-text"``), ``source_file``, ``info`` (the
        information lines), ``time_offset`` [s] (the file's time of the
        first kept record) and ``markers`` (JSON list of
        ``{"time": s, "text": ...}``).

    Raises
    ------
    LogFormatError
        If the file is empty, has no ``Time`` header with a units row,
        has ragged rows or a time that is not a number.
    """
    path = Path(path)
    lines = delimited.read_text(path, "TunerStudio log").splitlines()
    found = find_header(lines)
    if found is None:
        raise LogFormatError(
            f"{path} is not a TunerStudio or MegaLogViewer log: no header "
            "row starting with 'Time' followed by a units row in the first "
            f"{HEADER_SEARCH_LINES} lines"
        )
    index, delimiter = found
    headers = delimited.split_line(lines[index], delimiter)
    units = delimited.split_line(lines[index + 1], delimiter)
    units += [""] * (len(headers) - len(units))
    info = [line.strip().strip('"') for line in lines[:index] if line.strip()]

    data_lines, marker_rows = _split_markers(lines[index + 2 :])
    rows = delimited.parse_rows(
        path, data_lines, delimiter, len(headers), index + 3
    )
    columns = delimited.numeric_columns(
        path, headers, rows, decimal_comma=delimiter != ","
    )
    return _build(
        path, headers, units[: len(headers)], columns, marker_rows, info
    )


def _split_markers(lines: list[str]) -> tuple[list[str], list[tuple]]:
    """Separate marker lines from data lines; drop blank lines.

    Returns the data lines and (number of data rows before, text) per
    marker.
    """
    data, markers = [], []
    for line in lines:
        stripped = line.strip().strip('"')
        if not stripped:
            continue
        if stripped.startswith("MARK "):
            markers.append((len(data), stripped))
            continue
        data.append(line)
    return data, markers


def _build(path, headers, units, columns, marker_rows, info):
    time = columns[0]
    if time.dtype == object:
        raise LogFormatError(
            f"{path}: the Time column contains text ({time[0]!r}...); "
            "expected numbers in seconds"
        )
    time_units = registry.normalize_units(units[0]) or "s"
    time = registry.convert(time, time_units, "s")
    time, keep, offset = shift_time(path, time)
    items = [
        Column(
            header,
            values[keep],
            registry.normalize_units(unit),
            {"source_units": unit} if unit else {},
        )
        for header, unit, values in zip(
            headers[1:], units[1:], columns[1:], strict=True
        )
    ]
    kept_index = np.cumsum(keep) - 1
    markers = [
        {
            "time": float(time[max(kept_index[max(n - 1, 0)], 0)])
            if time.size
            else 0.0,
            "text": text,
        }
        for n, text in marker_rows
    ]
    return build_dataset(
        path,
        time,
        items,
        source="tunerstudio",
        source_format=SOURCE_FORMAT,
        attrs={
            "info": "\n".join(info),
            "time_offset": offset,
            "markers": json.dumps(markers),
        },
    )
