"""VE corrections binned onto the ECU's own table axes.

Each usable sample gives a ratio ``λ_measured / λ_target`` (after the
ECU's closed-loop trim is removed). The ECU interpolates its VE table
bilinearly, so a sample informs the four cells around it with bilinear
weights, further weighted by the time the sample represents. Per cell
this module keeps the summed weight, the hit count and the weighted
mean and spread of the ratio; the proposed VE is
``VE_new = VE_old · mean ratio`` where enough weight was gathered.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

#: Units and long names of the correction Dataset's variables.
VARIABLE_ATTRS = {
    "ve_current": ("%", "VE in the tune before correction"),
    "ve_proposed": ("%", "VE after the bounded correction"),
    "ratio": ("1", "weighted mean of lambda measured / lambda target"),
    "applied_ratio": ("1", "ratio applied, after limits and min weight"),
    "weight": ("s", "summed bilinear weight × sample duration"),
    "hits": ("1", "samples with a non-zero weight in the cell"),
    "spread": ("1", "weighted standard deviation of the ratio"),
}


def bilinear_weights(x, y, x_axis, y_axis):
    """Locate samples in a table and compute their four corner weights.

    Parameters
    ----------
    x, y : array_like
        Sample coordinates along the table's first and second axes.
    x_axis, y_axis : array_like
        Increasing breakpoints of the two axes.

    Returns
    -------
    cells : numpy.ndarray of int, shape (n, 4)
        Flat indices (``i * len(y_axis) + j``) of the four corners.
    weights : numpy.ndarray, shape (n, 4)
        Bilinear weights, summing to 1 for each sample.
    inside : numpy.ndarray of bool, shape (n,)
        False for samples outside the table; their rows are zero.
    """
    xa = np.asarray(x_axis, dtype=float)
    ya = np.asarray(y_axis, dtype=float)
    xs = np.asarray(x, dtype=float)
    ys = np.asarray(y, dtype=float)
    for axis, label in ((xa, "first"), (ya, "second")):
        if axis.size < 2 or np.any(np.diff(axis) <= 0):
            raise ValueError(
                f"table {label} axis must have at least 2 strictly "
                f"increasing breakpoints, got {axis.tolist()}"
            )
    with np.errstate(invalid="ignore"):
        inside = (
            np.isfinite(xs)
            & np.isfinite(ys)
            & (xs >= xa[0])
            & (xs <= xa[-1])
            & (ys >= ya[0])
            & (ys <= ya[-1])
        )

    # Lower corner index and fraction along each axis.
    i = np.clip(np.searchsorted(xa, xs, side="right") - 1, 0, xa.size - 2)
    j = np.clip(np.searchsorted(ya, ys, side="right") - 1, 0, ya.size - 2)
    fx = np.where(inside, (xs - xa[i]) / (xa[i + 1] - xa[i]), 0.0)
    fy = np.where(inside, (ys - ya[j]) / (ya[j + 1] - ya[j]), 0.0)

    n_y = ya.size
    cells = np.stack(
        [
            i * n_y + j,
            (i + 1) * n_y + j,
            i * n_y + j + 1,
            (i + 1) * n_y + j + 1,
        ],
        axis=1,
    )
    weights = np.stack(
        [(1 - fx) * (1 - fy), fx * (1 - fy), (1 - fx) * fy, fx * fy], axis=1
    )
    weights[~inside] = 0.0
    return cells, weights, inside


def bin_ratios(x, y, ratio, duration, x_axis, y_axis):
    """Accumulate per-cell statistics of a ratio with bilinear weights.

    Parameters
    ----------
    x, y : array_like
        Operating point of each sample on the table's axes (for example
        engine speed [rpm] and MAP [kPa]).
    ratio : array_like
        ``λ_measured / λ_target`` per sample [1]; NaN samples are
        skipped.
    duration : array_like
        Time each sample represents [s].
    x_axis, y_axis : array_like
        Table breakpoints.

    Returns
    -------
    dict of numpy.ndarray
        ``weight`` [s], ``hits`` [1], ``ratio`` (weighted mean, NaN with
        no weight) and ``spread`` (weighted standard deviation), each of
        shape ``(len(x_axis), len(y_axis))``.
    """
    r = np.asarray(ratio, dtype=float)
    dt = np.asarray(duration, dtype=float)
    cells, weights, _ = bilinear_weights(x, y, x_axis, y_axis)
    use = np.isfinite(r) & np.isfinite(dt)
    weights = weights * np.where(use, dt, 0.0)[:, None]
    r = np.where(use, r, 0.0)

    shape = (len(x_axis), len(y_axis))
    size = shape[0] * shape[1]
    flat = cells.ravel()
    w = weights.ravel()
    rr = np.repeat(r, 4)
    total = np.bincount(flat, w, size)
    first = np.bincount(flat, w * rr, size)
    second = np.bincount(flat, w * rr * rr, size)
    hits = np.bincount(flat, (w > 0).astype(float), size)

    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(total > 0, first / total, np.nan)
        variance = np.where(total > 0, second / total - mean**2, np.nan)
    spread = np.sqrt(np.clip(variance, 0.0, None))
    return {
        "weight": total.reshape(shape),
        "hits": hits.reshape(shape),
        "ratio": mean.reshape(shape),
        "spread": spread.reshape(shape),
    }


def bounded_ratio(ratio, weight, min_weight=0.05, max_change=0.15):
    """Limit a correction ratio for one iteration.

    Parameters
    ----------
    ratio : array_like
        Weighted mean ratio per cell [1].
    weight : array_like
        Summed weight per cell [s].
    min_weight : float
        Cells with less weight are left unchanged [s].
    max_change : float
        Largest change of VE in one iteration, lean or rich, as a
        fraction (0.15 allows a ratio of 0.85 to 1.15).

    Returns
    -------
    numpy.ndarray
        Ratio to multiply VE by; 1 where the cell is not corrected.
    """
    r = np.asarray(ratio, dtype=float)
    w = np.asarray(weight, dtype=float)
    if not 0 < max_change < 1:
        raise ValueError(
            f"max_change must be a fraction in (0, 1), got {max_change!r}"
        )
    confident = np.isfinite(r) & (w >= min_weight)
    limited = np.clip(r, 1.0 - max_change, 1.0 + max_change)
    return np.where(confident, limited, 1.0)


def correction_dataset(table, stats, applied):
    """Assemble the VE correction of one table as an xarray Dataset.

    Parameters
    ----------
    table : xarray.DataArray
        The VE table before correction [%], dims ``("rpm", load)``.
    stats : dict
        Output of :func:`bin_ratios` on the table's axes.
    applied : numpy.ndarray
        Ratio applied per cell (from :func:`bounded_ratio`).

    Returns
    -------
    xarray.Dataset
        Variables of ``VARIABLE_ATTRS`` on the table's coordinates.
    """
    dims = table.dims
    coords = {d: table[d] for d in dims}
    data = {
        "ve_current": table.values.astype(float),
        "ve_proposed": table.values * applied,
        "ratio": stats["ratio"],
        "applied_ratio": applied,
        "weight": stats["weight"],
        "hits": stats["hits"],
        "spread": stats["spread"],
    }
    ds = xr.Dataset({k: (dims, v) for k, v in data.items()}, coords=coords)
    for name, (units, long_name) in VARIABLE_ATTRS.items():
        ds[name].attrs.update(units=units, long_name=long_name)
    return ds


def lookup_table(table, x, y):
    """Interpolate a table bilinearly, holding the edge values outside.

    Parameters
    ----------
    table : xarray.DataArray
        Two-dimensional table; its first dim is the x axis.
    x, y : array_like
        Points on the first and second axes.

    Returns
    -------
    numpy.ndarray
        Interpolated values, NaN where ``x`` or ``y`` is NaN. Clamping
        at the edges is what an ECU does when it reads its table.
    """
    x_axis = table[table.dims[0]].values.astype(float)
    y_axis = table[table.dims[1]].values.astype(float)
    xs = np.clip(np.asarray(x, dtype=float), x_axis[0], x_axis[-1])
    ys = np.clip(np.asarray(y, dtype=float), y_axis[0], y_axis[-1])
    cells, weights, inside = bilinear_weights(xs, ys, x_axis, y_axis)
    values = np.sum(table.values.ravel()[cells] * weights, axis=1)
    return np.where(inside, values, np.nan)
