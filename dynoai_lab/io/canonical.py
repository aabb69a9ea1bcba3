"""Turn the columns of a flat ECU or logger log into canonical variables.

The readers of formats whose headers carry no ``(GROUP)`` prefix
(TunerStudio and MegaLogViewer, RomRaider, Haltech, JetDrive) parse
their files into :class:`Column` objects and call :func:`build_dataset`,
which names, converts and describes them with the registry of
:mod:`dynoai_lab.channels`:

- A header found in the registry becomes its canonical variable, in
  canonical units. When several columns give the same channel, the
  alias listed first for the source wins and the others are kept with
  ``attrs["duplicate_of"]``.
- Air-fuel ratio channels are checked against their values: a column
  named as lambda whose median lies between 5 and 25 holds an AFR, and
  a column named as AFR whose median lies between 0.4 and 2.5 holds a
  lambda. A lambda column is kept as ``lambda_<sensor>`` and, when the
  file has no AFR column for the same sensor, ``afr_<sensor>`` is
  computed as lambda times the stoichiometric AFR; ``attrs["original"]``
  says which of the two the file logged.
- Every other column is kept under a name made from its header, with
  the unit the file states (or ``"unknown"``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import xarray as xr

from dynoai_lab import channels as registry

logger = logging.getLogger(__name__)

#: Median range [1] of a column that contains lambda, not AFR.
LAMBDA_RANGE = (0.4, 2.5)
#: Median range [1] of a column that contains an AFR, not lambda.
AFR_RANGE = (5.0, 25.0)


@dataclass
class Column:
    """One column of a log as read from the file.

    Attributes
    ----------
    header : str
        Channel name as written in the file, without a unit suffix.
    values : numpy.ndarray
        Values, float (NaN for blank cells) or object for text columns.
    units : str or None
        Unit the file states, normalised with
        :func:`dynoai_lab.channels.normalize_units`, or None.
    attrs : dict
        Extra attributes for the variable (for example the raw unit
        text or a Haltech channel type).
    """

    header: str
    values: np.ndarray
    units: str | None = None
    attrs: dict = field(default_factory=dict)


def build_dataset(
    path: Path,
    time: np.ndarray,
    columns: list[Column],
    *,
    source: str,
    source_format: str,
    attrs: dict | None = None,
    stoichiometric_afr: float = registry.STOICHIOMETRIC_AFR_GASOLINE,
) -> xr.Dataset:
    """Build the canonical Dataset of a flat log.

    Parameters
    ----------
    path : pathlib.Path
        The file, for messages and ``attrs["source_file"]``.
    time : numpy.ndarray
        Time of each row [s], already shifted to start at 0.
    columns : list of Column
        The other columns, each with one value per row.
    source : str
        Key of :data:`dynoai_lab.channels.FLAT_ALIASES`.
    source_format : str
        Value of ``attrs["source_format"]``, for example ``"mlg-v2"``.
    attrs : dict, optional
        More Dataset attrs (header metadata of the file).
    stoichiometric_afr : float, default 14.7
        Stoichiometric AFR [1] used to convert lambda to AFR.

    Returns
    -------
    xarray.Dataset
        The log on the ``time`` coordinate [s].
    """
    groups: dict[str, list[tuple[int, registry.Channel, registry.Alias]]]
    groups = {}
    for index, column in enumerate(columns):
        match = registry.lookup_name(source, column.header)
        if match is None or column.values.dtype == object:
            continue
        channel, alias = match
        groups.setdefault(channel.name, []).append((index, channel, alias))

    variables: dict[str, tuple] = {}
    used = set(registry.REGISTRY)
    placed: set[int] = set()
    for name, candidates in groups.items():
        channel = candidates[0][1]
        if channel.units == "1" and (
            channel.kind == "wideband" or name == "afr_target"
        ):
            chosen = _place_afr(
                path, name, candidates, columns, stoichiometric_afr
            )
        else:
            chosen = _place_plain(path, channel, candidates, columns)
        for variable_name, index, variable in chosen:
            if variable_name is None:
                variable_name = _extra_name(columns[index].header, index, used)
            variables[variable_name] = variable
            if index is not None:
                placed.add(index)
        used.update(n for n, _, _ in chosen if n)

    for index, column in enumerate(columns):
        if index in placed:
            continue
        name = _extra_name(column.header, index, used)
        variables[name] = ("time", column.values, _extra_attrs(column))

    dataset = xr.Dataset(
        variables,
        coords={
            "time": (
                "time",
                np.asarray(time, dtype=float),
                {"units": "s", "long_name": "time since the first row"},
            )
        },
        attrs={
            "source_format": source_format,
            "source_file": str(path),
            **(attrs or {}),
        },
    )
    logger.info(
        "read %s (%s): %d rows, %d columns, canonical variables: %s",
        path,
        source_format,
        dataset.sizes["time"],
        len(columns),
        ", ".join(n for n in dataset.data_vars if n in registry.REGISTRY),
    )
    return dataset


def _file_units(column: Column, alias: registry.Alias) -> str:
    """Return the column's unit: the file's when known, else the alias'."""
    if column.units and column.units != alias.units:
        if alias.units == "lambda" and column.units == "1":
            return alias.units
        return column.units
    return alias.units


def _place_plain(
    path: Path,
    channel: registry.Channel,
    candidates: list,
    columns: list[Column],
) -> list[tuple]:
    """Convert candidate columns; the first with values is canonical."""
    winner = _first_with_values(candidates, columns)
    placed = []
    for index, _, alias in candidates:
        column = columns[index]
        units = _file_units(column, alias)
        try:
            values = registry.convert(column.values, units, channel.units)
        except ValueError:
            logger.warning(
                "%s: column %r has unit %r, which cannot be converted to "
                "%s; reading it as %s",
                path,
                column.header,
                units,
                channel.units,
                alias.units,
            )
            units = alias.units
            values = registry.convert(column.values, units, channel.units)
        attrs = {
            "units": channel.units,
            "long_name": channel.long_name,
            "original_name": column.header,
            "source_units": units,
            **column.attrs,
        }
        if index == winner:
            attrs.update(channel.attrs)
            placed.append((channel.name, index, ("time", values, attrs)))
        else:
            attrs["duplicate_of"] = channel.name
            placed.append((None, index, ("time", values, attrs)))
    return placed


def _first_with_values(candidates: list, columns: list[Column]) -> int:
    """Index of the best candidate: lowest priority among non-empty ones."""
    ranked = sorted(
        candidates,
        key=lambda c: (
            not np.isfinite(columns[c[0]].values).any(),
            c[2].priority,
        ),
    )
    return ranked[0][0]


def guess_afr_or_lambda(values: np.ndarray) -> str | None:
    """Tell from the values whether a column contains an AFR or a lambda.

    Parameters
    ----------
    values : numpy.ndarray
        The column's values.

    Returns
    -------
    str or None
        ``"1"`` (AFR) when the median of the finite non-zero values lies
        in :data:`AFR_RANGE`, ``"lambda"`` when it lies in
        :data:`LAMBDA_RANGE`, else None. Zeros are left out because
        controllers report 0 while the sensor warms up.
    """
    array = np.asarray(values, dtype=float)
    finite = array[np.isfinite(array) & (array != 0)]
    if finite.size == 0:
        return None
    median = float(np.median(finite))
    if LAMBDA_RANGE[0] <= median <= LAMBDA_RANGE[1]:
        return "lambda"
    if AFR_RANGE[0] <= median <= AFR_RANGE[1]:
        return "1"
    return None


def _place_afr(
    path: Path,
    name: str,
    candidates: list,
    columns: list[Column],
    stoichiometric_afr: float,
) -> list[tuple]:
    """Place AFR and lambda columns of one sensor or of the target."""
    channel = candidates[0][1]
    lambda_name = "lambda_" + name.removeprefix("afr_")
    afr_like, lambda_like = [], []
    for candidate in candidates:
        index, _, alias = candidate
        column = columns[index]
        declared = _file_units(column, alias)
        declared = "lambda" if declared == "lambda" else "1"
        guessed = guess_afr_or_lambda(column.values) or declared
        if guessed != declared:
            logger.warning(
                "%s: column %r is named as %s but its values (median "
                "%.3g) are %s; reading it as %s",
                path,
                column.header,
                "lambda" if declared == "lambda" else "an AFR",
                float(np.nanmedian(column.values)),
                "a lambda" if guessed == "lambda" else "an AFR",
                "lambda" if guessed == "lambda" else "AFR",
            )
        (lambda_like if guessed == "lambda" else afr_like).append(candidate)

    attrs = {**channel.attrs}
    if channel.kind == "wideband":
        attrs["stoichiometric_afr"] = stoichiometric_afr
    placed = []
    afr_winner = _first_with_values(afr_like, columns) if afr_like else None
    lambda_winner = (
        _first_with_values(lambda_like, columns) if lambda_like else None
    )
    for index, _, _ in afr_like:
        column = columns[index]
        values = np.asarray(column.values, dtype=float)
        var_attrs = {
            "units": "1",
            "long_name": channel.long_name,
            "original_name": column.header,
            "source_units": "AFR",
            **column.attrs,
        }
        if index == afr_winner:
            var_attrs.update(attrs, original="afr")
            placed.append((name, index, ("time", values, var_attrs)))
        else:
            var_attrs["duplicate_of"] = name
            placed.append((None, index, ("time", values, var_attrs)))

    for index, _, _ in lambda_like:
        column = columns[index]
        values = np.asarray(column.values, dtype=float)
        var_attrs = {
            "units": "1",
            "long_name": "lambda, " + channel.long_name,
            "original_name": column.header,
            "source_units": "lambda",
            "stoichiometric_afr": stoichiometric_afr,
            **column.attrs,
        }
        if channel.kind == "wideband":
            var_attrs["kind"] = "lambda"
            var_attrs["cylinder"] = channel.attrs["cylinder"]
        if index != lambda_winner:
            var_attrs["duplicate_of"] = lambda_name
            placed.append((None, index, ("time", values, var_attrs)))
            continue
        var_attrs["original"] = "lambda"
        placed.append((lambda_name, index, ("time", values, var_attrs)))
        if afr_winner is None:
            afr_attrs = {
                "units": "1",
                "long_name": channel.long_name,
                "original_name": column.header,
                "source_units": "lambda",
                **column.attrs,
                **attrs,
                "original": "lambda",
                "derived_from": lambda_name,
            }
            placed.append(
                (
                    name,
                    None,
                    ("time", values * stoichiometric_afr, afr_attrs),
                )
            )
    return placed


def _extra_name(header: str, index: int, used: set[str]) -> str:
    """Make a unique variable name from a header (``unnamed_<i>`` if none)."""
    base = registry.slugify(header) or f"unnamed_{index}"
    if base[0].isdigit():
        base = f"channel_{base}"
    name = base
    suffix = 2
    while name in used:
        name = f"{base}_{suffix}"
        suffix += 1
    used.add(name)
    return name


def _extra_attrs(column: Column) -> dict:
    return {
        "units": column.units or column.attrs.get("source_units", "unknown"),
        "long_name": column.header or "unnamed column",
        "original_name": column.header,
        **column.attrs,
    }


def shift_time(
    path: Path, time: np.ndarray
) -> tuple[np.ndarray, np.ndarray, float]:
    """Drop a stale first record and shift time to start at 0.

    TunerStudio writes a first record whose time is that of the previous
    log (536.9 s, then 0.001 s). A first row later than the second is
    dropped with a warning; other backward steps are kept for the
    preflight to report.

    Returns
    -------
    time : numpy.ndarray
        Time [s] from the first kept row.
    keep : numpy.ndarray of bool
        Rows kept.
    offset : float
        Time of the first kept row in the file [s].
    """
    keep = np.isfinite(time)
    if keep.sum() >= 2:
        first, second = np.flatnonzero(keep)[:2]
        if time[first] > time[second]:
            logger.warning(
                "%s: the first record's time %.6g s is later than the "
                "second's %.6g s (a stale record); dropping it",
                path,
                time[first],
                time[second],
            )
            keep[first] = False
    if not keep.all():
        logger.info("%s: dropping %d rows", path, int((~keep).sum()))
    kept = time[keep]
    offset = float(kept[0]) if kept.size else 0.0
    return kept - offset, keep, offset
