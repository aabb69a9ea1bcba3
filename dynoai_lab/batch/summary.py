"""Tables across the runs of a store, for the batch summary notebook.

Every function takes the catalog (:func:`dynoai_lab.batch.read_catalog`) and
the store folder, and reads only succeeded runs' result files.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from dynoai_lab.units import HP, LBF_FT

logger = logging.getLogger(__name__)

#: Minimum weight a cell needs to count as covered [s], the analysis's
#: default when a corrections file does not state its own.
DEFAULT_MIN_WEIGHT = 0.05


def _succeeded(catalog, kind):
    rows = catalog[
        (catalog["status"] == "succeeded") & (catalog["kind"] == kind)
    ]
    return rows.sort_values(["vehicle", "name"], kind="stable")


def power_curves(catalog, store):
    """Collect the power and torque curves of every succeeded log run.

    Returns
    -------
    pandas.DataFrame
        Long table with ``run``, ``vehicle``, ``engine_speed`` [rpm],
        ``power_hp`` [hp] and ``torque_lbft`` [lbf·ft] (weather
        corrected where the run corrected them), one row per sample
        with a finite engine speed and power.
    """
    frames = []
    for row in _succeeded(catalog, "log").itertuples():
        path = Path(store) / row.run_dir / "power.nc"
        if not path.is_file():
            continue
        with xr.open_dataset(path) as power:
            name = "power_corrected" if "power_corrected" in power else "power"
            torque = (
                "torque_corrected" if "torque_corrected" in power else "torque"
            )
            frame = pd.DataFrame(
                {
                    "engine_speed": power["engine_speed"].values,
                    "power_hp": power[name].values / HP,
                    "torque_lbft": power[torque].values / LBF_FT,
                }
            )
        frame = frame[np.isfinite(frame["engine_speed"])]
        frame = frame[np.isfinite(frame["power_hp"])]
        frame.insert(0, "vehicle", row.vehicle)
        frame.insert(0, "run", row.name)
        frames.append(frame)
    if not frames:
        return pd.DataFrame(
            columns=[
                "run",
                "vehicle",
                "engine_speed",
                "power_hp",
                "torque_lbft",
            ]
        )
    return pd.concat(frames, ignore_index=True)


def _cell_tables(catalog, store):
    """Yield (group, run name, Dataset of ve_before, ve_after, weight)."""
    for row in _succeeded(catalog, "log").itertuples():
        path = Path(store) / row.run_dir / "corrections.nc"
        if not path.is_file():
            continue
        with xr.load_dataset(path) as corrections:
            tables = xr.Dataset(
                {
                    "ve_before": corrections["ve_current"],
                    "ve_after": corrections["ve_proposed"],
                    "weight": corrections["weight"],
                },
                attrs={
                    "min_weight": corrections.attrs.get(
                        "min_weight_s", DEFAULT_MIN_WEIGHT
                    )
                },
            )
        group = f"{row.vehicle} with {Path(row.tune_path).name}"
        yield group, row.name, tables
    for row in _succeeded(catalog, "study").itertuples():
        path = Path(store) / row.run_dir / "history.nc"
        if not path.is_file():
            continue
        with xr.load_dataset(path) as history:
            ve = history["ve"]
            tables = xr.Dataset(
                {
                    "ve_before": ve.isel(iteration=0, drop=True),
                    "ve_after": ve.isel(iteration=-1, drop=True),
                    "weight": history["weight"].sum("iteration"),
                },
                attrs={"min_weight": DEFAULT_MIN_WEIGHT},
            )
        yield row.vehicle, row.name, tables


def ve_changes(catalog, store):
    """Stack the cell-by-cell VE change of every run, per group.

    A log run's change is the VE its analysis proposes over the tune's
    VE; a study's is the VE after its last iteration over the starting
    VE. Runs are grouped by vehicle and tune (logs) or engine
    (studies), since only tables on the same axes can be compared.

    Returns
    -------
    dict of str to xarray.Dataset
        Per group, ``ve_change`` [%] and ``covered`` [1] (the cell
        reached the minimum weight) on ``(run, cylinder, rpm, load)``
        with the load axis named as in the tables (``map`` or ``tps``).
    """
    groups = {}
    for group, name, tables in _cell_tables(catalog, store):
        change = (tables["ve_after"] / tables["ve_before"] - 1.0) * 100.0
        change.attrs = {"units": "%", "long_name": "VE change"}
        covered = (tables["weight"] >= tables.attrs["min_weight"]).astype(int)
        covered.attrs = {"units": "1", "long_name": "cell covered"}
        ds = xr.Dataset({"ve_change": change, "covered": covered})
        groups.setdefault(group, []).append(ds.expand_dims(run=[name]))
    result = {}
    for group, datasets in groups.items():
        try:
            result[group] = xr.concat(datasets, dim="run", join="exact")
        except ValueError:
            # NOTE: a group whose tunes have different axes is skipped;
            # split it by tune to compare those runs.
            logger.warning("runs of %s differ in table axes; skipped", group)
    return result


def coverage_table(changes):
    """Count covered cells per run.

    Parameters
    ----------
    changes : dict
        Result of :func:`ve_changes`.

    Returns
    -------
    pandas.DataFrame
        ``group``, ``run``, ``covered_cells`` and ``covered_fraction``
        [1] of all cells of both cylinders.
    """
    rows = []
    for group, ds in changes.items():
        covered = ds["covered"]
        cells = covered.isel(run=0).size
        for run in ds["run"].values:
            count = int(covered.sel(run=run).sum())
            rows.append(
                {
                    "group": group,
                    "run": str(run),
                    "covered_cells": count,
                    "covered_fraction": round(count / cells, 4),
                }
            )
    return pd.DataFrame(
        rows, columns=["group", "run", "covered_cells", "covered_fraction"]
    )


def convergence_table(catalog):
    """Summarise a study: iterations to converge per delay and VE error.

    Returns
    -------
    pandas.DataFrame
        One row per ``(delay_scale, sensor_lag_s, ve_error_pct)`` with
        ``sessions``, ``converged_fraction`` [1],
        ``mean_iterations_to_converge`` over converged sessions and
        ``max_iterations``.
    """
    rows = _succeeded(catalog, "study").copy()
    keys = ["delay_scale", "sensor_lag_s", "ve_error_pct"]
    columns = keys + [
        "sessions",
        "converged_fraction",
        "mean_iterations_to_converge",
        "max_iterations",
    ]
    if rows.empty:
        return pd.DataFrame(columns=columns)
    rows["converged"] = rows["converged"].fillna(False).astype(bool)
    rows["to_converge"] = (
        rows["iterations"].astype(float).where(rows["converged"])
    )
    table = rows.groupby(keys, dropna=False).agg(
        sessions=("run_id", "size"),
        converged_fraction=("converged", "mean"),
        mean_iterations_to_converge=("to_converge", "mean"),
        max_iterations=("max_iterations", "max"),
    )
    return table.reset_index()[columns].round(3)
