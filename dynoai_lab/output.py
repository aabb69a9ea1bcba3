"""Atomic writers for results: a crash never leaves a half-written file."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path


def _atomic_path(path):
    """Return a temporary path in the same folder as ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(
        prefix=f".{path.name}.", suffix=".tmp", dir=path.parent
    )
    os.close(handle)
    return Path(temp)


def write_json(data, path):
    """Write ``data`` as indented JSON, atomically.

    Keys are sorted, so the same data gives the same bytes.
    """
    temp = _atomic_path(path)
    try:
        temp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)
    return Path(path)


def write_netcdf(dataset, path):
    """Write an xarray Dataset to NetCDF, atomically.

    Attributes that NetCDF cannot store (dicts, booleans, None) are
    turned into strings or integers on a copy; the caller's Dataset is
    not changed.
    """
    ds = dataset.copy()
    ds.attrs = _netcdf_attrs(ds.attrs)
    for name in ds.variables:
        ds[name].attrs = _netcdf_attrs(ds[name].attrs)
    temp = _atomic_path(path)
    try:
        ds.to_netcdf(temp)
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)
    return Path(path)


def _netcdf_attrs(attrs):
    clean = {}
    for key, value in attrs.items():
        if isinstance(value, bool):
            clean[key] = int(value)
        elif value is None:
            clean[key] = ""
        elif isinstance(value, (dict, list, tuple)):
            clean[key] = json.dumps(value, default=str)
        else:
            clean[key] = value
    return clean


def save_analysis(analysis, out_dir, tune=None, extra=None):
    """Write a pull analysis: summary.json and its Datasets as NetCDF.

    Parameters
    ----------
    analysis : PullAnalysis
        Result of :func:`dynoai_lab.analyze_pull`.
    out_dir : path-like
        Folder to write into; created when missing.
    tune : PvvTune, optional
        When given with corrections, the proposed VE tables are also
        written as ``<tune>_proposed.pvv`` next to the results.
    extra : dict, optional
        More entries for ``summary.json`` (input paths).

    Returns
    -------
    dict
        The summary written.
    """
    out_dir = Path(out_dir)
    summary = analysis.summary()
    summary.update(extra or {})
    if analysis.power is not None:
        write_netcdf(analysis.power, out_dir / "power.nc")
    write_netcdf(analysis.samples, out_dir / "samples.nc")
    if analysis.corrections is not None:
        write_netcdf(analysis.corrections, out_dir / "corrections.nc")
        if tune is not None and getattr(tune, "path", None) is not None:
            from dynoai_lab.io import write_pvv

            proposed = analysis.corrections["ve_proposed"]
            target = out_dir / f"{tune.path.stem}_proposed.pvv"
            write_pvv(
                tune,
                target,
                ve_front=proposed.sel(cylinder="front", drop=True),
                ve_rear=proposed.sel(cylinder="rear", drop=True),
            )
            summary["proposed_tune"] = str(target)
    write_json(summary, out_dir / "summary.json")
    return summary


def save_session(session, out_dir):
    """Write a tuning session: summary.json and history.nc."""
    out_dir = Path(out_dir)
    summary = session.summary()
    write_netcdf(session.history, out_dir / "history.nc")
    write_json(summary, out_dir / "summary.json")
    return summary
