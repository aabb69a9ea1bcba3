"""Checks shared by the tune readers and writers: table axes, new values.

A VE or AFR table is interpolated on its breakpoints, so each axis
needs at least two finite, strictly increasing breakpoints.
:func:`check_axes` raises :class:`TuneFormatError` naming the tune file
and the item when that does not hold, before any analysis uses the
table. :func:`check_new_values` guards the writers against values on
other axes or in another layout, such as a transposed array.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from dynoai_lab.io.errors import TuneFormatError

#: Load dimensions a VE table may have: manifold pressure or throttle.
LOAD_DIMS = ("map", "tps")

#: Below this top breakpoint [rpm] an rpm axis contains thousands of rpm.
#: Engines idle above 500 rpm, so no real table ends under 100 rpm.
MIN_TOP_RPM = 100.0


def check_axes(
    table: xr.DataArray,
    where: str,
    load_dims: tuple[str, ...] = LOAD_DIMS,
) -> xr.DataArray:
    """Check that a table is on ``("rpm", load)`` with usable breakpoints.

    Parameters
    ----------
    table : xarray.DataArray
        The table as read.
    where : str
        The tune file and item, for messages.
    load_dims : tuple of str
        Allowed names of the second dimension.

    Returns
    -------
    xarray.DataArray
        ``table``, unchanged.

    Raises
    ------
    TuneFormatError
        If the dims are not ``("rpm", load)``, an axis has fewer than two
        breakpoints, a breakpoint is not finite or does not increase, or
        the rpm axis tops out below :data:`MIN_TOP_RPM`.
    """
    units = {
        dim: table[dim].attrs.get("source_units", "?")
        for dim in table.dims
        if dim in table.coords
    }
    if (
        table.ndim != 2
        or table.dims[0] != "rpm"
        or table.dims[1] not in load_dims
    ):
        raise TuneFormatError(
            f"{where}: table has dims {table.dims} (axis units {units}); "
            f"expected rows on rpm and columns on {' or '.join(load_dims)}"
        )
    for dim in table.dims:
        _check_breakpoints(np.asarray(table[dim].values, float), dim, where)
    top = float(table["rpm"].max())
    if top < MIN_TOP_RPM:
        raise TuneFormatError(
            f"{where}: rpm breakpoints end at {top:g} rpm (axis units "
            f"{units.get('rpm', '?')!r}); they look like thousands of rpm, "
            "so the axis units should be 'RPMx1000'"
        )
    return table


def _check_breakpoints(values: np.ndarray, dim: str, where: str) -> None:
    if values.size < 2:
        raise TuneFormatError(
            f"{where}: the {dim} axis has {values.size} breakpoint(s) "
            f"{values.tolist()}; expected at least 2"
        )
    if not np.all(np.isfinite(values)):
        raise TuneFormatError(
            f"{where}: the {dim} axis {values.tolist()} contains NaN or "
            "infinity; expected finite breakpoints"
        )
    steps = np.diff(values)
    if np.any(steps <= 0):
        i = int(np.flatnonzero(steps <= 0)[0])
        raise TuneFormatError(
            f"{where}: the {dim} axis is not strictly increasing: "
            f"{values[i + 1]:g} follows {values[i]:g} at index {i + 1} "
            f"(0-based) of {values.tolist()}; expected increasing "
            "breakpoints"
        )


def check_new_values(expected: xr.DataArray, values, where: str) -> np.ndarray:
    """Check new table values against the table they replace.

    Parameters
    ----------
    expected : xarray.DataArray
        The table as read, on its real breakpoints.
    values : xarray.DataArray or array_like
        New values. A DataArray must have the same dims, in the same
        order, and coordinates equal to the breakpoints (to 1e-9); an
        array must have exactly the table's shape.
    where : str
        The tune file and item, for messages.

    Returns
    -------
    numpy.ndarray
        The values as floats, shape ``expected.shape``.

    Raises
    ------
    ValueError
        If the dims, coordinates or shape differ.

    Notes
    -----
    A plain array of a square table cannot be told from its transpose;
    pass a DataArray to have the axes checked.
    """
    if isinstance(values, xr.DataArray):
        if values.dims != expected.dims:
            raise ValueError(
                f"{where}: new values have dims {values.dims}; expected "
                f"{expected.dims}"
            )
        for dim in expected.dims:
            old = np.asarray(expected[dim].values, dtype=float)
            got = values[dim].values if dim in values.coords else None
            if (
                got is None
                or got.shape != old.shape
                or not np.allclose(got, old, rtol=1e-9, atol=1e-9)
            ):
                raise ValueError(
                    f"{where}: new values have {dim} coordinates "
                    f"{None if got is None else got.tolist()}; expected "
                    f"the tune's breakpoints {old.tolist()}"
                )
    array = np.asarray(values, dtype=float)
    if array.shape != expected.shape:
        hint = (
            " (the transpose of the table)"
            if array.shape == expected.shape[::-1]
            else ""
        )
        raise ValueError(
            f"{where}: new values have shape {array.shape}{hint}; expected "
            f"{expected.shape} with dims {expected.dims}"
        )
    return array
