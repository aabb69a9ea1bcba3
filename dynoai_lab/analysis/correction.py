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

from dataclasses import dataclass

import numpy as np
import xarray as xr
from numba import njit

#: Units and long names of the correction Dataset's variables.
VARIABLE_ATTRS = {
    "ve_current": ("%", "VE in the tune before correction"),
    "ve_proposed": ("%", "VE after the bounded correction"),
    "ratio": ("1", "weighted mean of lambda measured / lambda target"),
    "applied_ratio": ("1", "ratio applied, after limits and min weight"),
    "weight": ("s", "summed bilinear weight × sample duration"),
    "hits": ("1", "samples with a non-zero weight in the cell"),
    "spread": ("1", "weighted standard deviation of the ratio"),
    "confidence": ("1", "0..1 from weight and spread"),
    "locked": ("1", "1 where the cell is locked against change"),
    "fill_proposal": (
        "1",
        "ratio proposed for unvisited cells from visited ones, not applied",
    ),
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

    Notes
    -----
    One compiled pass over the samples (:func:`_bin_sums`) finds each
    sample's cell by binary search on the axes and adds its four
    weighted terms, the same arithmetic as :func:`bilinear_weights`
    followed by ``numpy.bincount``, without the ``(n, 4)`` temporaries.
    """
    xa = _axis(x_axis, "first")
    ya = _axis(y_axis, "second")
    sums = _bin_sums(
        np.ascontiguousarray(x, dtype=float),
        np.ascontiguousarray(y, dtype=float),
        np.ascontiguousarray(ratio, dtype=float),
        np.ascontiguousarray(duration, dtype=float),
        xa,
        ya,
    )
    return _cell_statistics(*sums, (xa.size, ya.size))


def _axis(values, label):
    axis = np.ascontiguousarray(values, dtype=float)
    if axis.size < 2 or np.any(np.diff(axis) <= 0):
        raise ValueError(
            f"table {label} axis must have at least 2 strictly "
            f"increasing breakpoints, got {axis.tolist()}"
        )
    return axis


def _cell_statistics(total, first, second, hits, shape):
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


#: Buckets of the uniform grid that finds a sample's cell [1].
_BUCKETS = 1024


@njit(cache=True)
def _bucket_table(axis):
    """Lower cell index at the start of each of _BUCKETS equal buckets."""
    table = np.empty(_BUCKETS + 1, np.int64)
    scale = _BUCKETS / (axis[-1] - axis[0])
    i = 0
    for b in range(_BUCKETS + 1):
        value = axis[0] + b / scale
        while i < axis.size - 2 and axis[i + 1] <= value:
            i += 1
        table[b] = i
    return table


@njit(cache=True, inline="always")
def _lower_index(axis, table, scale, value):
    """Return i with axis[i] <= value < axis[i + 1], within 0 .. n - 2."""
    i = table[int((value - axis[0]) * scale)]
    # Rounding can put a value a hair below a breakpoint into the
    # bucket that starts there.
    while i > 0 and axis[i] > value:
        i -= 1
    while i < axis.size - 2 and axis[i + 1] <= value:
        i += 1
    return i


@njit(cache=True)
def _bin_sums(xs, ys, r, dt, xa, ya):
    """Return per-cell sums of w, w·r, w·r² and the count of w > 0."""
    n_x, n_y = xa.size, ya.size
    total = np.zeros(n_x * n_y)
    first = np.zeros(n_x * n_y)
    second = np.zeros(n_x * n_y)
    hits = np.zeros(n_x * n_y)
    x_low, x_high, y_low, y_high = xa[0], xa[-1], ya[0], ya[-1]
    # Each bucket starts at or above its table entry's breakpoint, so
    # the search nearly always steps up, and rarely more than once.
    x_table, y_table = _bucket_table(xa), _bucket_table(ya)
    x_scale = _BUCKETS / (x_high - x_low)
    y_scale = _BUCKETS / (y_high - y_low)

    for k in range(xs.size):
        x = xs[k]
        y = ys[k]
        rk = r[k]
        duration = dt[k]
        # The comparisons are False for NaN, so NaN samples skip too.
        if not (x_low <= x <= x_high and y_low <= y <= y_high):
            continue
        if not (np.isfinite(rk) and np.isfinite(duration)):
            continue

        i = _lower_index(xa, x_table, x_scale, x)
        j = _lower_index(ya, y_table, y_scale, y)
        fx = (x - xa[i]) / (xa[i + 1] - xa[i])
        fy = (y - ya[j]) / (ya[j + 1] - ya[j])
        cell = i * n_y + j
        _add(
            total, first, second, hits, cell, (1 - fx) * (1 - fy), duration, rk
        )
        _add(
            total, first, second, hits, cell + n_y, fx * (1 - fy), duration, rk
        )
        _add(total, first, second, hits, cell + 1, (1 - fx) * fy, duration, rk)
        _add(total, first, second, hits, cell + n_y + 1, fx * fy, duration, rk)
    return total, first, second, hits


@njit(cache=True, inline="always")
def _add(total, first, second, hits, cell, share, duration, ratio):
    w = share * duration
    total[cell] += w
    first[cell] += w * ratio
    second[cell] += w * ratio * ratio
    if w > 0:
        hits[cell] += 1.0


def bin_ratios_numpy(x, y, ratio, duration, x_axis, y_axis):
    """Compute :func:`bin_ratios` with numpy only, as a reference.

    Builds the ``(n, 4)`` corner indices and weights of
    :func:`bilinear_weights` and sums them with ``numpy.bincount``.
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
    return _cell_statistics(total, first, second, hits, shape)


@dataclass(frozen=True)
class CorrectionSettings:
    """How far and where a correction may move a VE table.

    Attributes
    ----------
    min_weight : float
        Cells with less summed weight are left unchanged [s].
    max_lean_step, max_rich_step : float
        Largest VE increase (the cell ran lean) and decrease (it ran
        rich) in one correction, as fractions [1].
    max_lean_total, max_rich_total : float
        Largest VE increase and decrease relative to the reference
        table (the tune before the session), as fractions [1].
    smoothing : float
        Strength of confidence-weighted smoothing between neighbouring
        visited cells [1]; 0 turns it off. A cell's ratio moves toward
        its neighbours in proportion to their weight over its own, so
        a well-measured cell keeps a large correction and a thin one is
        pulled toward what the cells around it saw.
    confidence_weight : float
        Summed weight at which a cell's confidence reaches 0.5 [s].
    """

    min_weight: float = 0.05
    max_lean_step: float = 0.15
    max_rich_step: float = 0.15
    max_lean_total: float = 0.30
    max_rich_total: float = 0.30
    smoothing: float = 0.0
    confidence_weight: float = 0.2

    def __post_init__(self):
        for name in (
            "max_lean_step",
            "max_rich_step",
            "max_lean_total",
            "max_rich_total",
        ):
            value = getattr(self, name)
            if not 0 < value < 1:
                raise ValueError(
                    f"{name} must be a fraction in (0, 1), got {value!r}"
                )
        if self.min_weight < 0 or self.smoothing < 0:
            raise ValueError(
                "min_weight and smoothing must be >= 0, got "
                f"{self.min_weight!r} and {self.smoothing!r}"
            )


def bounded_ratio(
    ratio,
    weight,
    settings=None,
    current=None,
    reference=None,
    locked=None,
):
    """Limit a correction ratio for one iteration.

    Parameters
    ----------
    ratio : array_like
        Weighted mean ratio per cell [1].
    weight : array_like
        Summed weight per cell [s].
    settings : CorrectionSettings, optional
        Limits; defaults to ``CorrectionSettings()``.
    current : array_like, optional
        VE now in use [%]; needed with ``reference``.
    reference : array_like, optional
        VE before the session [%]; the total limits apply to it.
    locked : array_like of bool, optional
        Cells that must not change.

    Returns
    -------
    numpy.ndarray
        Ratio to multiply VE by; exactly 1 where the cell is locked,
        has too little weight or no ratio.
    """
    settings = settings or CorrectionSettings()
    r = np.asarray(ratio, dtype=float)
    w = np.asarray(weight, dtype=float)
    confident = np.isfinite(r) & (w >= settings.min_weight)
    if locked is not None:
        confident &= ~np.asarray(locked, dtype=bool)

    limited = np.clip(
        r, 1.0 - settings.max_rich_step, 1.0 + settings.max_lean_step
    )
    if reference is not None and current is not None:
        ref = np.asarray(reference, dtype=float)
        now = np.asarray(current, dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            low = ref * (1.0 - settings.max_rich_total) / now
            high = ref * (1.0 + settings.max_lean_total) / now
        limited = np.clip(limited, low, high)
    return np.where(confident, limited, 1.0)


def smooth_ratio(ratio, weight, strength):
    """Smooth ratios between neighbouring cells, weighted by confidence.

    Parameters
    ----------
    ratio : numpy.ndarray
        Weighted mean ratio per cell [1], NaN where unvisited.
    weight : numpy.ndarray
        Summed weight per cell [s].
    strength : float
        0 returns ``ratio`` unchanged.

    Returns
    -------
    numpy.ndarray
        ``(w·r + k·Σ w_n·r_n) / (w + k·Σ w_n)`` over the four direct
        neighbours ``n`` that have a ratio; unvisited cells stay NaN.
    """
    if strength <= 0:
        return ratio
    r = np.where(np.isfinite(ratio), ratio, 0.0)
    w = np.where(np.isfinite(ratio), weight, 0.0)
    wr = w * r
    neighbour_w = np.zeros_like(w)
    neighbour_wr = np.zeros_like(w)
    for axis in (0, 1):
        for shift in (-1, 1):
            rolled_w = np.roll(w, shift, axis=axis)
            rolled_wr = np.roll(wr, shift, axis=axis)
            edge = [slice(None)] * 2
            edge[axis] = 0 if shift == 1 else -1
            rolled_w[tuple(edge)] = 0.0
            rolled_wr[tuple(edge)] = 0.0
            neighbour_w += rolled_w
            neighbour_wr += rolled_wr
    with np.errstate(divide="ignore", invalid="ignore"):
        smoothed = (wr + strength * neighbour_wr) / (
            w + strength * neighbour_w
        )
    return np.where(np.isfinite(ratio), smoothed, np.nan)


def fill_proposal(ratio, weight, min_weight, power=2.0):
    """Propose ratios for unvisited cells from the visited ones.

    Parameters
    ----------
    ratio, weight : numpy.ndarray
        Per-cell ratio [1] and summed weight [s].
    min_weight : float
        Cells with at least this weight are the sources [s].
    power : float
        Inverse-distance exponent, with distance counted in cells.

    Returns
    -------
    numpy.ndarray
        Proposed ratio in cells below ``min_weight``; NaN elsewhere and
        everywhere when no cell was visited. A proposal only: nothing
        applies it.
    """
    source = np.isfinite(ratio) & (weight >= min_weight)
    proposal = np.full(ratio.shape, np.nan)
    if not source.any():
        return proposal
    rows, cols = np.indices(ratio.shape)
    src_r, src_c = rows[source], cols[source]
    values = ratio[source]
    for i, j in zip(*np.nonzero(~source), strict=True):
        distance = np.hypot(src_r - i, src_c - j)
        w = 1.0 / distance**power
        proposal[i, j] = float(np.sum(w * values) / np.sum(w))
    return proposal


def confidence(weight, spread, settings=None):
    """Return a 0..1 confidence per cell from weight and spread.

    ``c = w / (w + w_half) · 1 / (1 + spread / 0.02)``: more time in the
    cell raises it, a scattered ratio (2 % spread halves it) lowers it.
    """
    settings = settings or CorrectionSettings()
    w = np.asarray(weight, dtype=float)
    sd = np.nan_to_num(np.asarray(spread, dtype=float), nan=0.0)
    return w / (w + settings.confidence_weight) / (1.0 + sd / 0.02)


def correction_dataset(table, stats, applied, extra=None):
    """Assemble the VE correction of one table as an xarray Dataset.

    Parameters
    ----------
    table : xarray.DataArray
        The VE table before correction [%], dims ``("rpm", load)``.
    stats : dict
        Output of :func:`bin_ratios` on the table's axes.
    applied : numpy.ndarray
        Ratio applied per cell (from :func:`bounded_ratio`).
    extra : dict of numpy.ndarray, optional
        More per-cell variables named in ``VARIABLE_ATTRS``.

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
        **(extra or {}),
    }
    ds = xr.Dataset({k: (dims, v) for k, v in data.items()}, coords=coords)
    for name in ds.data_vars:
        units, long_name = VARIABLE_ATTRS[name]
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
