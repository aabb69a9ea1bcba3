"""Read Haltech NSP data log exports (CSV with a ``%DataLog%`` block).

Layout of the export:

- A block of ``Key : Value`` lines starting with ``%DataLog%``:
  ``DataLogVersion``, ``Software``, ``DownloadDateTime``, then for each
  channel four lines ``Channel``, ``ID``, ``Type`` and
  ``DisplayMaxMin``, then ``Log Source``, ``Log Number`` and ``Log``.
- One data row per sample: wall-clock time ``HH:MM:SS.fff`` and one raw
  integer per channel, in the order of the channel block.

Raw values are scaled by the channel type. The scales below follow the
units of the Haltech CAN broadcast protocol. They were checked on a real
export: battery 13042 raw is 13.04 V, intake air 3166 raw is 316.6 K
(43.45 °C), and the wideband's ``DisplayMaxMin`` 1600,400 is lambda 1.6
to 0.4.

============== =========================== ==================
type           value                       unit
============== =========================== ==================
EngineSpeed    raw                         rpm
Pressure       raw / 10 (absolute)         kPa
AbsPressure    raw / 10                    kPa
Percentage     raw / 10                    %
Angle          raw / 10                    deg
Temperature    raw / 10                    K (read as °C)
Speed          raw / 10                    km/h
AFR            raw / 1000 (a lambda)       lambda
BatteryVoltage raw / 1000                  V
Decibel        raw / 100                   dB
Ratio          raw / 100                   1
GearRatio      raw / 100                   1
Time_us        raw                         µs
Time_ms        raw                         ms
other          raw                         type name
============== =========================== ==================

Haltech displays ``Pressure`` channels (fuel, oil, manifold) as gauge
pressure, that is the absolute value less 101.3 kPa; here they stay
absolute, which is what the canonical ``manifold_pressure`` is.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import numpy as np
import xarray as xr

from dynoai_lab import channels as registry
from dynoai_lab.io import delimited
from dynoai_lab.io.canonical import Column, build_dataset, shift_time
from dynoai_lab.io.errors import LogFormatError

logger = logging.getLogger(__name__)

SOURCE_FORMAT = "haltech-nsp-csv"
MAGIC = "%DataLog%"

#: Channel type -> (divisor, unit string of dynoai_lab.channels).
TYPE_SCALES = {
    "EngineSpeed": (1.0, "rpm"),
    "Pressure": (10.0, "kPa"),
    "AbsPressure": (10.0, "kPa"),
    "Percentage": (10.0, "%"),
    "Angle": (10.0, "deg"),
    "Temperature": (10.0, "K"),
    "Speed": (10.0, "km/h"),
    "AFR": (1000.0, "lambda"),
    "BatteryVoltage": (1000.0, "V"),
    "Decibel": (100.0, "dB"),
    "Ratio": (100.0, "1"),
    "GearRatio": (100.0, "1"),
    "Time_us": (1.0, "µs"),
    "Time_ms": (1.0, "ms"),
}

#: Raw values at or below this (near the int32 minimum) mean "no value".
NOT_AVAILABLE = -2147483000

_ROW = re.compile(r"^\d{1,2}:\d{2}:\d{2}(\.\d+)?,")
_SECONDS_PER_DAY = 86400.0


def looks_like_haltech(first_line: str) -> bool:
    """Tell whether a first line is Haltech's ``%DataLog%`` marker."""
    return first_line.strip() == MAGIC


def read_haltech(path: str | os.PathLike) -> xr.Dataset:
    """Read a Haltech NSP data log export.

    Parameters
    ----------
    path : str or path-like
        The ``.csv`` export.

    Returns
    -------
    xarray.Dataset
        Canonical variables on ``time`` [s] from 0, every channel kept
        and scaled by its type; ``attrs["haltech_type"]`` and
        ``attrs["haltech_id"]`` on each variable. Temperatures are in
        °C and pressures absolute. Dataset attrs ``source_format``
        (``"haltech-nsp-csv"``), ``source_file``, ``time_offset`` [s]
        and the header's ``Software``, ``Log`` and ``Log Number``.

    Raises
    ------
    LogFormatError
        If the first line is not ``%DataLog%``, a channel definition
        is incomplete, there are no data rows or a row has a different
        number of values than there are channels.
    """
    path = Path(path)
    lines = delimited.read_text(path, "Haltech log").splitlines()
    if not lines or not looks_like_haltech(lines[0]):
        first = lines[0][:40] if lines else ""
        raise LogFormatError(
            f"{path} is not a Haltech NSP log: the first line is {first!r}; "
            f"expected {MAGIC!r}"
        )
    meta, definitions, first_row = _read_block(path, lines)
    data_lines = [line for line in lines[first_row:] if line.strip()]
    headers = ["Time"] + [d["Channel"] for d in definitions]
    rows = delimited.parse_rows(
        path, data_lines, ",", len(headers), first_row + 1
    )
    stamps = [row[0] for row in rows]
    columns = delimited.numeric_columns(
        path, headers[1:], [row[1:] for row in rows], decimal_comma=False
    )
    time, keep, offset = shift_time(path, _seconds(path, stamps))
    items = [
        _column(definition, values[keep])
        for definition, values in zip(definitions, columns, strict=True)
    ]
    return build_dataset(
        path,
        time,
        items,
        source="haltech",
        source_format=SOURCE_FORMAT,
        attrs={
            "time_offset": offset,
            **{k: v for k, v in meta.items() if k in _META_KEYS},
        },
    )


_META_KEYS = ("Software", "SoftwareVersion", "Log", "Log Number")


def _read_block(path: Path, lines: list[str]):
    """Parse the header block; return metadata, channels, first data row."""
    meta: dict[str, str] = {}
    definitions: list[dict[str, str]] = []
    for number, line in enumerate(lines[1:], start=1):
        if _ROW.match(line):
            first_row = number
            break
        key, sep, value = line.partition(":")
        if not sep:
            continue
        key, value = key.strip(), value.strip()
        if key == "Channel":
            definitions.append({"Channel": value})
        elif key in ("ID", "Type", "DisplayMaxMin") and definitions:
            definitions[-1][key] = value
        else:
            meta[key] = value
    else:
        raise LogFormatError(
            f"{path}: no data rows after the {MAGIC} block; expected rows "
            "starting with a time 'HH:MM:SS.fff'"
        )
    for definition in definitions:
        if "Type" not in definition:
            raise LogFormatError(
                f"{path}: channel {definition['Channel']!r} has no 'Type' "
                "line; expected Channel, ID, Type and DisplayMaxMin"
            )
    if not definitions:
        raise LogFormatError(f"{path}: the {MAGIC} block defines no channels")
    return meta, definitions, first_row


def _seconds(path: Path, stamps: list[str]) -> np.ndarray:
    """Convert ``HH:MM:SS.fff`` to seconds, adding a day past midnight."""
    seconds = np.empty(len(stamps))
    for index, stamp in enumerate(stamps):
        try:
            hours, minutes, secs = stamp.split(":")
            seconds[index] = (
                int(hours) * 3600 + int(minutes) * 60 + float(secs)
            )
        except ValueError:
            raise LogFormatError(
                f"{path}: invalid time {stamp!r} in data row {index + 1}; "
                "expected 'HH:MM:SS.fff'"
            ) from None
    wraps = np.cumsum(np.diff(seconds, prepend=seconds[:1]) < -43200.0)
    return seconds + wraps * _SECONDS_PER_DAY


def _column(definition: dict[str, str], raw: np.ndarray) -> Column:
    kind = definition["Type"]
    divisor, unit = TYPE_SCALES.get(kind, (1.0, kind))
    if raw.dtype != object and np.any(raw <= NOT_AVAILABLE):
        # NOTE: this meaning is inferred from a real export, where a
        # wideband reads -2147483637 while it has no reading. Such
        # values are read as missing.
        raw = np.where(raw <= NOT_AVAILABLE, np.nan, raw)
    values = raw / divisor if raw.dtype != object else raw
    attrs = {
        "haltech_type": kind,
        "haltech_id": definition.get("ID", ""),
        "source_units": unit,
    }
    if unit == "K" and raw.dtype != object:
        values = registry.convert(values, "K", "°C")
        unit = "°C"
        attrs["source_units"] = "K"
    return Column(definition["Channel"], values, unit, attrs)
