"""Read Dynojet WinPEP 8 text exports of dyno runs.

WinPEP 8 exports a run as comma-separated text: one header row of
``(GROUP) Channel`` names, no units row, one row per sample (20 Hz in the
files seen so far). Quirks the reader handles:

- Fields are separated by ``", "`` in some exports and by ``","`` in
  others, blank cells hold a space, and every line ends with a
  separator, so the last field is empty. Lines end in CRLF or LF.
- Channels logged at lower rates, or not at all, leave blank cells: the
  first rows are nearly empty and dyno and weather channels start late.
  Blank cells become NaN and are not filled.
- Units are not written. Engine speed is in thousands of rpm, power in
  hp, torque in lbf·ft, speed in mph, force in lbf, acceleration in
  mph/s, temperatures in °F and injector time in ms (seconds in the
  Power Vision group). Barometric pressure is in kPa or inHg depending
  on the WinPEP settings, so its unit is guessed from the values.
- A header may be lost in export (64 ``?`` characters), and several
  columns may be always empty. Such columns are kept.

Malformed exports are handled as follows. A blank Time cell drops its
row with a warning; any other Time value that is not a finite number
(``nan``, ``inf``, text) raises. Time going back (a restart, or two
recordings joined) raises unless ``time_restart="keep"``. Time stepping
by more than 1 s per sample is read as milliseconds, with a warning.
Text in a numeric column (``On``, ``---``, ``nan``, ``inf``) becomes NaN
with a warning naming the column, line and value, unless most of the
column is text, which is then kept as a text column. Identical copies
of a column are dropped. Two columns with the same header and different
values raise when the header is Time or a registry channel, because the
reader cannot tell which is right. Other such pairs are both kept, with
a warning.

Recognised channels become the canonical variables of
``docs/nomenclature.md``, converted to canonical units, by the priority
order of :mod:`dynoai_lab.channels`. Every other column is kept as an
extra variable named from its header.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from dynoai_lab import channels as registry
from dynoai_lab.io.errors import LogFormatError
from dynoai_lab.io.files import read_regular_file
from dynoai_lab.io.preflight import looks_like_milliseconds

logger = logging.getLogger(__name__)

SOURCE_FORMAT = "winpep8-csv"

_CYLINDERS = ("front", "rear", "both", "unknown")
_TIME_UNITS = {"s": 1.0, "ms": 1e-3}
_TIME_RESTART = ("raise", "keep")


def read_winpep(
    path: str | os.PathLike,
    *,
    units: Mapping[str, str] | None = None,
    wideband_cylinder: Mapping[str, str] | None = None,
    time_units: str | None = None,
    time_restart: str = "raise",
) -> xr.Dataset:
    """Read a WinPEP 8 CSV or text export into a Dataset.

    Parameters
    ----------
    path : str or path-like
        The export file.
    units : mapping of str to str, optional
        Unit override for a column, keyed by its header as written in
        the file (for example ``{"(DWRT ATMO) Temperature 1": "°C"}``
        when WinPEP was set to metric units). Values are unit strings
        of :mod:`dynoai_lab.channels`.
    wideband_cylinder : mapping of str to str, optional
        Cylinder seen by each wideband sensor, keyed by variable name,
        for example ``{"afr_lc2": "both"}`` for a sensor in the
        collector. Values are ``front``, ``rear``, ``both`` or
        ``unknown``. The file itself does not say where a dyno sensor
        sits, so dyno wideband inputs default to ``unknown``.
    time_units : {"s", "ms"}, optional
        Unit of the Time column. By default it is seconds unless the
        median step exceeds 1 s, which is read as milliseconds with a
        warning (see
        :func:`dynoai_lab.io.preflight.looks_like_milliseconds`).
    time_restart : {"raise", "keep"}, default "raise"
        What to do when Time goes back: raise, or keep the rows in file
        order with a warning. Analyses shift samples in time, so
        :func:`dynoai_lab.io.preflight` reports a kept restart as an
        error for them.

    Returns
    -------
    xarray.Dataset
        One variable per column on the ``time`` coordinate [s], which
        starts at 0 for the first row. Canonical variables are in
        canonical units with ``attrs`` ``units``, ``long_name`` and
        ``original_name``. Lower-priority copies of a canonical channel
        are converted too and carry ``attrs["duplicate_of"]``. Columns
        the registry does not know keep their values with
        ``attrs["units"] = "unknown"``. Dataset attrs are
        ``source_format`` (``"winpep8-csv"``) and ``source_file``.

    Raises
    ------
    LogFormatError
        If the path is not a regular file, the file is empty, its header
        does not start with ``Time``, a row has more fields than the
        header, a row other than the last has fewer, no row has a time
        and a value, a time value is not a finite number, Time goes back
        (with ``time_restart="raise"``), or two columns share a header
        but not their values (for Time or a registry channel).
    ValueError
        If ``time_units``, ``time_restart`` or ``wideband_cylinder``
        has a value not listed above.

    Examples
    --------
    >>> ds = read_winpep("data/5TH GEAR.txt")  # doctest: +SKIP
    >>> float(ds.engine_speed.max())  # doctest: +SKIP
    6149.0
    """
    if time_units not in (None, *_TIME_UNITS):
        raise ValueError(
            f"time_units={time_units!r}; expected 's', 'ms' or None"
        )
    if time_restart not in _TIME_RESTART:
        raise ValueError(
            f"time_restart={time_restart!r}; expected 'raise' or 'keep'"
        )
    path = Path(path)
    headers, rows = _read_table(path)
    headers, rows = _drop_duplicate_columns(path, headers, rows)
    text = np.array(rows, dtype=object).reshape(len(rows), len(headers))
    _check_data_rows(path, text)

    time, keep = _time_coordinate(path, text[:, 0], time_units, time_restart)
    lines = np.flatnonzero(keep) + 2
    data = _columns_from_rows(path, headers[1:], text[keep, 1:], lines)
    variables = _build_variables(
        path, headers[1:], data, units or {}, wideband_cylinder or {}
    )

    dataset = xr.Dataset(
        variables,
        coords={
            "time": (
                "time",
                time,
                {"units": "s", "long_name": "time since the first row"},
            )
        },
        attrs={"source_format": SOURCE_FORMAT, "source_file": str(path)},
    )
    logger.info(
        "read %s: %d rows, %d columns, canonical variables: %s",
        path,
        dataset.sizes["time"],
        len(headers),
        ", ".join(n for n in dataset.data_vars if n in registry.REGISTRY),
    )
    return dataset


def looks_like_winpep(first_line: str) -> bool:
    """Tell whether a file's first line looks like a WinPEP 8 header.

    Parameters
    ----------
    first_line : str
        The first line of the file, decoded.

    Returns
    -------
    bool
        True when the first comma-separated field is ``Time`` and at
        least one other field has a ``(GROUP) `` prefix.
    """
    fields = [field.strip() for field in first_line.split(",")]
    if not fields or fields[0].casefold() != "time":
        return False
    return any(registry.split_header(f)[0] for f in fields[1:])


def _decode(path: Path, raw: bytes) -> str:
    """Decode the file's bytes: UTF-16 with a BOM, UTF-8, else cp1252."""
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return raw.decode("utf-16")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        logger.info("%s is not UTF-8; decoding it as cp1252", path)
        return raw.decode("cp1252")


def _split(line: str) -> list[str]:
    """Split one line into stripped fields, dropping the trailing empty one.

    WinPEP ends every line with a separator, so the last field is empty.
    """
    fields = [field.strip() for field in line.split(",")]
    if len(fields) > 1 and fields[-1] == "":
        fields.pop()
    return fields


def _read_table(path: Path) -> tuple[list[str], list[list[str]]]:
    """Read the header and the rows of fields, checking their lengths."""
    raw = read_regular_file(path, LogFormatError, "WinPEP export")
    lines = _decode(path, raw).splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        raise LogFormatError(
            f"{path} is empty; expected a WinPEP 8 export with a header "
            "row starting with 'Time'"
        )

    headers = _split(lines[0])
    if headers[0].casefold() != "time":
        raise LogFormatError(
            f"{path} is not a WinPEP 8 export: the first header field is "
            f"{headers[0][:40]!r}, expected 'Time'"
        )

    rows = []
    for number, line in enumerate(lines[1:], start=2):
        fields = _split(line)
        if len(fields) > len(headers):
            raise LogFormatError(
                f"{path}, line {number}: {len(fields)} fields, but the "
                f"header has {len(headers)}; expected one field per column"
            )
        if len(fields) < len(headers):
            if number != len(lines):
                raise LogFormatError(
                    f"{path}, line {number}: {len(fields)} fields, but the "
                    f"header has {len(headers)}; expected one field per "
                    "column (only the last line may be cut short)"
                )
            logger.warning(
                "%s: last line has %d of %d fields; the missing cells are "
                "read as NaN",
                path,
                len(fields),
                len(headers),
            )
            fields += [""] * (len(headers) - len(fields))
        rows.append(fields)
    return headers, rows


def _drop_duplicate_columns(
    path: Path, headers: list[str], rows: list[list[str]]
) -> tuple[list[str], list[list[str]]]:
    """Drop exact copies of a column; raise or warn for differing ones.

    Columns are compared by header (Time case-insensitively) and by the
    text of every cell. Of identical columns the first is kept. Two
    differing columns raise when the header is Time or a registry
    channel, because either could be the right one; other differing
    columns are both kept, with a warning, under distinct names.
    """
    if not rows:
        return headers, rows
    text = np.array(rows, dtype=object).reshape(len(rows), len(headers))
    first_seen: dict[str, int] = {}
    drop = set()
    for index, header in enumerate(headers):
        key = "time" if header.casefold() == "time" else header
        if key not in first_seen:
            first_seen[key] = index
            continue
        first = first_seen[key]
        differ = np.flatnonzero(text[:, first] != text[:, index])
        columns = f"columns {first + 1} and {index + 1}"
        if differ.size == 0:
            logger.info(
                "%s: %s are both named %r and hold the same values; "
                "keeping column %d",
                path,
                columns,
                header,
                first + 1,
            )
            drop.add(index)
            continue
        row = int(differ[0])
        difference = (
            f"first difference on line {row + 2}: "
            f"{_shorten(text[row, first])!r} and "
            f"{_shorten(text[row, index])!r}"
        )
        if key == "time" or registry.lookup(header) is not None:
            raise LogFormatError(
                f"{path}: {columns} are both named {header!r} but hold "
                f"different values ({difference}); expected one column "
                "per channel, so rename or remove one"
            )
        logger.warning(
            "%s: %s are both named %r but hold different values (%s); "
            "keeping both under separate names",
            path,
            columns,
            header,
            difference,
        )
    if not drop:
        return headers, rows
    keep = [i for i in range(len(headers)) if i not in drop]
    return [headers[i] for i in keep], [[r[i] for i in keep] for r in rows]


def _check_data_rows(path: Path, text: np.ndarray) -> None:
    """Raise when no row has both a time and another value."""
    with_data = (text[:, 0] != "") & (text[:, 1:] != "").any(axis=1)
    if with_data.any():
        return
    if text.shape[0] == 0:
        found = "only the header line"
    else:
        found = (
            f"{text.shape[0]} line(s) after the header, none with both a "
            "Time value and a channel value"
        )
    raise LogFormatError(
        f"{path} has no data rows: {found}; expected an export with samples"
    )


def _columns_from_rows(
    path: Path, headers: list[str], text: np.ndarray, lines: np.ndarray
) -> list[np.ndarray]:
    """Turn cells of text into one array per column.

    Blank cells become NaN. A column whose non-blank cells are mostly
    finite numbers becomes float; its other cells (``On``, ``---``,
    ``nan``, ``inf``) become NaN and a warning names the column, the
    first such cell's line and its value. A column that is mostly text
    stays an object array of str, with a warning. ``lines`` holds the
    file line number of each row, for messages.
    """
    columns = []
    for index, header in enumerate(headers):
        cells = pd.Series(text[:, index], dtype=object)
        blank = (cells == "").to_numpy()
        numbers = pd.to_numeric(cells.where(~blank), errors="coerce")
        values = np.array(numbers, dtype=float)
        bad = ~blank & ~np.isfinite(values)
        if not bad.any():
            columns.append(values)
            continue
        first = int(np.flatnonzero(bad)[0])
        if 2 * bad.sum() > (~blank).sum():
            logger.warning(
                "%s: column %r has %d of %d cells that are not numbers "
                "(first %r on line %d); keeping it as a text column",
                path,
                header,
                int(bad.sum()),
                int((~blank).sum()),
                _shorten(cells[first]),
                lines[first],
            )
            columns.append(cells.to_numpy(dtype=object))
            continue
        logger.warning(
            "%s: column %r has %d cell(s) that are not finite numbers "
            "(first %r on line %d); reading them as NaN",
            path,
            header,
            int(bad.sum()),
            _shorten(cells[first]),
            lines[first],
        )
        values[bad] = np.nan
        columns.append(values)
    return columns


def _shorten(text: str, limit: int = 40) -> str:
    """Cut a cell's text for a message (a cell may hold binary junk)."""
    return text if len(text) <= limit else text[:limit] + "..."


def _time_coordinate(
    path: Path, cells: np.ndarray, time_units: str | None, restart: str
) -> tuple[np.ndarray, np.ndarray]:
    """Parse the Time column [s], shifted to start at 0.

    Returns the time values and a mask of the rows to keep: rows with a
    blank Time cell are dropped, with a warning.
    """
    blank = cells == ""
    numbers = pd.to_numeric(
        pd.Series(cells, dtype=object).where(~blank), errors="coerce"
    ).to_numpy(dtype=float)
    bad = ~blank & ~np.isfinite(numbers)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise LogFormatError(
            f"{path}: invalid Time value {_shorten(cells[row])!r} on line "
            f"{row + 2}; "
            "expected a number in seconds, or a blank cell for a row "
            "without time"
        )
    keep = ~blank
    if not keep.all():
        logger.warning(
            "%s: dropping %d rows without a Time value (first on line %d)",
            path,
            int(blank.sum()),
            int(np.flatnonzero(blank)[0]) + 2,
        )
    time = numbers[keep]
    lines = np.flatnonzero(keep) + 2
    time = time * _time_scale(path, time, time_units)
    _check_time_order(path, time, lines, restart)
    if time.size:
        time = time - time[0]
    return time, keep


def _time_scale(path: Path, time: np.ndarray, time_units: str | None) -> float:
    """Return the factor from the Time column's unit to seconds."""
    if time_units is not None:
        return _TIME_UNITS[time_units]
    if not looks_like_milliseconds(time):
        return 1.0
    steps = np.diff(time)
    logger.warning(
        "%s: Time steps by a median of %g per row, which as seconds is "
        "under 1 Hz; reading Time as milliseconds (pass time_units='s' "
        "to read it as seconds)",
        path,
        float(np.median(steps[steps > 0])),
    )
    return _TIME_UNITS["ms"]


def _check_time_order(
    path: Path, time: np.ndarray, lines: np.ndarray, restart: str
) -> None:
    """Raise or warn when Time goes back; warn when it repeats."""
    steps = np.diff(time)
    back = np.flatnonzero(steps < 0)
    if back.size:
        line = int(lines[back[0] + 1])
        where = (
            f"on line {line} Time goes back from {time[back[0]]:g} s to "
            f"{time[back[0] + 1]:g} s"
        )
        if restart == "raise":
            raise LogFormatError(
                f"{path}: {where} ({back.size} time(s) in all); the log "
                "restarts or joins several recordings, which corrupts "
                "analyses that align samples in time. Split the file "
                "there, or pass time_restart='keep' to read it as is"
            )
        logger.warning(
            "%s: %s (%d time(s) in all); rows are kept in file order, and "
            "preflight reports this as an error for analysis",
            path,
            where,
            back.size,
        )
    repeats = np.flatnonzero(steps == 0)
    if repeats.size:
        logger.warning(
            "%s: Time repeats on %d rows (first on line %d); rows are kept "
            "in file order",
            path,
            repeats.size,
            int(lines[repeats[0] + 1]),
        )


def _build_variables(
    path: Path,
    headers: list[str],
    data: list[np.ndarray],
    unit_overrides: Mapping[str, str],
    wideband_cylinder: Mapping[str, str],
) -> dict[str, tuple]:
    """Name, convert and describe every column, in file order."""
    winners = _pick_canonical_columns(headers, data)
    # "time" is the coordinate, so no variable may take that name.
    used_names: set[str] = set(registry.REGISTRY) | {"time"}
    variables: dict[str, tuple] = {}

    for index, (header, values) in enumerate(zip(headers, data, strict=True)):
        match = registry.lookup(header)
        if match is None or values.dtype == object:
            name = _extra_name(header, index + 1, used_names)
            variables[name] = _unknown_variable(header, values)
            continue

        channel, alias = match
        file_units = unit_overrides.get(header) or _file_units(
            path, header, channel, alias, values
        )
        try:
            converted = registry.convert(values, file_units, channel.units)
        except ValueError as error:
            raise ValueError(f"{path}, column {header!r}: {error}") from None
        attrs = {
            "units": channel.units,
            "long_name": channel.long_name,
            "original_name": header,
            "source_units": file_units,
        }
        if winners.get(channel.name) == index:
            attrs.update(channel.attrs)
            if channel.kind == "wideband":
                attrs["cylinder"] = _cylinder(
                    path, channel.name, wideband_cylinder
                )
            _warn_implausible(path, channel, header, converted)
            variables[channel.name] = ("time", converted, attrs)
        else:
            attrs["duplicate_of"] = channel.name
            name = _extra_name(header, index + 1, used_names)
            variables[name] = ("time", converted, attrs)
    return variables


def _pick_canonical_columns(
    headers: list[str], data: list[np.ndarray]
) -> dict[str, int]:
    """Choose which column becomes each canonical variable.

    Among columns with at least one value, the alias with the lowest
    priority number wins. When all candidates are empty, the lowest
    priority number wins anyway, so the variable exists (all NaN).
    """
    best: dict[str, tuple[tuple[bool, int], int]] = {}
    for index, (header, values) in enumerate(zip(headers, data, strict=True)):
        match = registry.lookup(header)
        if match is None or values.dtype == object:
            continue
        channel, alias = match
        rank = (not np.isfinite(values).any(), alias.priority)
        if channel.name not in best or rank < best[channel.name][0]:
            best[channel.name] = (rank, index)
    return {name: index for name, (_, index) in best.items()}


def _file_units(
    path: Path,
    header: str,
    channel: registry.Channel,
    alias: registry.Alias,
    values: np.ndarray,
) -> str:
    """Return the unit a column is written in, checking ambiguous ones."""
    finite = values[np.isfinite(values)]
    if channel.name == "ambient_pressure":
        guessed = registry.guess_pressure_units(finite)
        if guessed is None:
            if finite.size:
                logger.warning(
                    "%s: %r has median %.4g, which fits no pressure unit; "
                    "reading it as %s",
                    path,
                    header,
                    float(np.median(finite)),
                    alias.units,
                )
            return alias.units
        if guessed != alias.units:
            logger.info("%s: %r read as %s", path, header, guessed)
        return guessed
    # Engine speed in thousands stays below about 20; a median above 100
    # means the export wrote plain rpm.
    if alias.units == "krpm" and finite.size and np.median(finite) > 100:
        logger.info("%s: %r is in rpm, not thousands", path, header)
        return "rpm"
    return alias.units


def _cylinder(
    path: Path, name: str, wideband_cylinder: Mapping[str, str]
) -> str:
    """Return the cylinder of a wideband variable, default from registry."""
    cylinder = wideband_cylinder.get(
        name, registry.REGISTRY[name].attrs["cylinder"]
    )
    if cylinder not in _CYLINDERS:
        raise ValueError(
            f"wideband_cylinder[{name!r}] is {cylinder!r} (reading "
            f"{path}); expected one of {', '.join(_CYLINDERS)}"
        )
    return cylinder


def _warn_implausible(
    path: Path, channel: registry.Channel, header: str, values: np.ndarray
) -> None:
    count = channel.count_implausible(values)
    if count:
        low, high = channel.valid_range
        logger.warning(
            "%s: %d values of %r (%s) lie outside the plausible range "
            "%g to %g %s; check the unit or the sensor",
            path,
            count,
            header,
            channel.name,
            low,
            high,
            channel.units,
        )


def _extra_name(header: str, column: int, used: set[str]) -> str:
    """Make a unique variable name for a column kept as an extra.

    The name is the source of the group and the channel text, lower
    case, for example ``dwrt_cpu_user_analog_1`` or ``pv_engine_speed``.
    A header without letters or digits (a name lost in export) becomes
    ``<group>_unnamed_<column>`` with the 0-based column number.
    """
    group, channel = registry.split_header(header)
    source = registry.source_of_group(group) if group else ""
    if source in ("dyno", "weather", "dyno_afr", "general"):
        # Keep the group as written for Dynojet's own groups, so the
        # name says which box logged it.
        source = registry.slugify(group)
    stem = registry.slugify(channel) or f"unnamed_{column}"
    base = f"{source}_{stem}" if source else stem
    name = base
    suffix = 2
    while name in used:
        name = f"{base}_{suffix}"
        suffix += 1
    used.add(name)
    return name


def _unknown_variable(header: str, values: np.ndarray) -> tuple:
    group, channel = registry.split_header(header)
    attrs = {
        "units": "unknown",
        "long_name": channel or header,
        "original_name": header,
    }
    return ("time", values, attrs)
