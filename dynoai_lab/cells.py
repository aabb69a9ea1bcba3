"""Per-cell figures for the workbench: rejections, locked cells, shared VE.

These functions hold no widget code, so the workbench stays a thin
layer over them and tests can call them directly.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from dynoai_lab.analysis.pull import CYLINDERS, REJECTION_REASONS

#: Reasons counted per cell. Samples without an operating point or off
#: the table belong to no cell, so they are only counted per cylinder.
CELL_REASONS = tuple(
    reason
    for reason in REJECTION_REASONS
    if reason not in ("missing_operating_point", "off_table")
)

#: Log channel that gives each VE load axis its values.
LOAD_CHANNELS = {"map": "manifold_pressure", "tps": "throttle_position"}


def rejection_counts(log, samples, table, cylinder):
    """Count rejected samples per cell of a VE table.

    Each rejected sample is counted in the cell nearest to its
    operating point, because a rejected sample carries no bilinear
    weight.

    Parameters
    ----------
    log : xarray.Dataset
        The analysed log, with ``engine_speed`` [rpm] and the load
        channel of the table (``manifold_pressure`` [kPa] or
        ``throttle_position`` [%]).
    samples : xarray.Dataset
        ``PullAnalysis.samples`` with ``rejection_<cylinder>`` codes.
    table : xarray.DataArray
        The VE table on dims ``("rpm", load)``.
    cylinder : str
        ``front`` or ``rear``.

    Returns
    -------
    numpy.ndarray
        Integer counts shaped like ``table``; all zero when the
        cylinder had no wideband.
    """
    counts = np.zeros(table.shape, dtype=int)
    name = f"rejection_{cylinder}"
    load_dim = table.dims[1]
    channel = LOAD_CHANNELS.get(load_dim)
    if name not in samples or channel not in log:
        return counts
    code = np.asarray(samples[name].values)
    counted = np.isin(code, [REJECTION_REASONS.index(r) for r in CELL_REASONS])
    rpm = np.asarray(log["engine_speed"].values, dtype=float)[counted]
    load = np.asarray(log[channel].values, dtype=float)[counted]
    finite = np.isfinite(rpm) & np.isfinite(load)
    rows = _nearest_index(table["rpm"].values, rpm[finite])
    columns = _nearest_index(table[load_dim].values, load[finite])
    np.add.at(counts, (rows, columns), 1)
    return counts


def _nearest_index(axis, values):
    axis = np.asarray(axis, dtype=float)
    index = np.clip(np.searchsorted(axis, values), 1, axis.size - 1)
    left = axis[index - 1]
    right = axis[index]
    return np.where(values - left <= right - values, index - 1, index)


def lock_mask(table, rpm_range, load_range):
    """Select the cells of a table inside an rpm and a load range.

    Parameters
    ----------
    table : xarray.DataArray
        VE table on dims ``("rpm", load)``.
    rpm_range : (float, float)
        Lowest and highest engine speed, inclusive [rpm].
    load_range : (float, float)
        Lowest and highest load, inclusive, in the table's load unit
        ([kPa] for MAP, [%] for throttle).

    Returns
    -------
    numpy.ndarray
        Boolean mask shaped like ``table``.

    Raises
    ------
    ValueError
        When a range is reversed or selects no cell.
    """
    load_dim = table.dims[1]
    for label, (low, high) in (("rpm", rpm_range), (load_dim, load_range)):
        if not low <= high:
            raise ValueError(
                f"{label} range {low:g} to {high:g} is reversed; give the "
                "lowest value first"
            )
    rpm = table["rpm"].values
    load = table[load_dim].values
    rows = (rpm >= rpm_range[0]) & (rpm <= rpm_range[1])
    columns = (load >= load_range[0]) & (load <= load_range[1])
    mask = rows[:, None] & columns[None, :]
    if not mask.any():
        raise ValueError(
            f"no cell lies in rpm {rpm_range[0]:g} to {rpm_range[1]:g} and "
            f"{load_dim} {load_range[0]:g} to {load_range[1]:g}; the table "
            f"spans rpm {rpm[0]:g} to {rpm[-1]:g} and {load_dim} "
            f"{load[0]:g} to {load[-1]:g}"
        )
    return mask


def applied_ratios(corrections, locked, shared_ve=False):
    """Return the ratio to multiply each VE table by, locked cells at 1.

    Parameters
    ----------
    corrections : xarray.Dataset
        ``PullAnalysis.corrections`` with ``applied_ratio`` and
        ``weight`` [s] on ``(cylinder, rpm, load)``.
    locked : dict
        ``{"front": mask, "rear": mask}``. Locked cells get ratio 1
        whatever the correction is, also when the cells were locked
        after the analysis ran.
    shared_ve : bool
        The tune has one VE table for every cylinder (a TunerStudio
        ``.msq``). Both cylinders then get the weight-averaged ratio,
        ``Σ wᵢ·rᵢ / Σ wᵢ`` per cell.

    Returns
    -------
    dict
        ``{"front": ndarray, "rear": ndarray}`` of ratios [1].
    """
    ratios = {
        cyl: corrections["applied_ratio"].sel(cylinder=cyl).values.copy()
        for cyl in CYLINDERS
    }
    if shared_ve:
        weights = {
            cyl: corrections["weight"].sel(cylinder=cyl).values
            for cyl in CYLINDERS
        }
        total = weights["front"] + weights["rear"]
        summed = sum(weights[c] * ratios[c] for c in CYLINDERS)
        mean = np.divide(
            summed, total, out=np.ones_like(total), where=total > 0
        )
        ratios = {cyl: mean.copy() for cyl in CYLINDERS}
    for cyl in CYLINDERS:
        mask = np.asarray(locked.get(cyl, False), dtype=bool)
        ratios[cyl] = np.where(mask, 1.0, ratios[cyl])
    return ratios


def corrections_frame(corrections, rejections=None):
    """Flatten a correction Dataset into one row per cylinder and cell.

    Parameters
    ----------
    corrections : xarray.Dataset
        ``PullAnalysis.corrections``.
    rejections : dict, optional
        ``{"front": counts, "rear": counts}`` from
        :func:`rejection_counts`, added as a ``rejected`` column.

    Returns
    -------
    pandas.DataFrame
        Columns named ``<variable> [<unit>]``, for a CSV download.
    """
    ds = corrections.drop_vars(
        [c for c in corrections.coords if c not in corrections.dims]
    )
    if rejections is not None:
        stacked = np.stack([rejections[c] for c in CYLINDERS])
        ds["rejected"] = xr.DataArray(
            stacked,
            dims=ds["ratio"].dims,
            attrs={"units": "1", "long_name": "rejected samples"},
        )
    frame = ds.to_dataframe().reset_index()
    names = {}
    for name in frame.columns:
        units = ds[name].attrs.get("units") if name in ds else None
        names[name] = f"{name} [{units}]" if units else name
    return frame.rename(columns=names)
