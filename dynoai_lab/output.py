"""Atomic writers for results: a crash never leaves a half-written file."""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
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

    # mkstemp creates the file readable by its owner only; results get
    # the permissions any new file gets under the process umask.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(temp, 0o666 & ~umask)
    return Path(temp)


def write_json(data, path):
    """Write ``data`` as indented JSON, atomically.

    Keys are sorted, so the same data gives the same bytes. NaN and
    infinities, which JSON cannot hold, are written as null.
    """
    text = json.dumps(
        _finite_json(data), indent=2, sort_keys=True, allow_nan=False
    )
    temp = _atomic_path(path)
    try:
        temp.write_text(text + "\n")
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


def _finite_json(value):
    """Replace non-finite floats by None, recursively."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_json(v) for v in value]
    if hasattr(value, "item") and callable(value.item):
        return _finite_json(value.item())
    return value


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


class OutputClashError(ValueError):
    """A result would overwrite one of the inputs."""


@contextlib.contextmanager
def result_folder(out_dir, inputs=()):
    """Stage a set of result files and publish them together.

    Parameters
    ----------
    out_dir : path-like
        Folder that receives the results; created when missing.
    inputs : iterable of path-like
        Files the results were computed from; a result whose path is
        one of them raises :class:`OutputClashError` before anything is
        written.

    Yields
    ------
    callable
        ``target(name) -> Path``: where to write the result ``name``.
        The file lands in a hidden staging folder inside ``out_dir``.

    Notes
    -----
    On success every staged file is moved into ``out_dir`` with
    ``os.replace``, ``summary.json`` last, and results that the
    previous run listed in its ``summary.json`` but this run did not
    write are removed, so the folder never mixes two runs. On any error
    the staging folder is deleted and ``out_dir`` is left as it was.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    resolved_inputs = {Path(p).resolve() for p in inputs if p is not None}
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=out_dir))
    names = []

    def target(name):
        final = (out_dir / name).resolve()
        if final in resolved_inputs:
            raise OutputClashError(
                f"result {out_dir / name} would overwrite an input file; "
                "choose another --out folder"
            )
        names.append(name)
        return staging / name

    try:
        yield target
        previous = _previous_results(out_dir)
        ordered = sorted(names, key=lambda n: n == "summary.json")
        for name in ordered:
            os.replace(staging / name, out_dir / name)
        for name in previous - set(names):
            (out_dir / name).unlink(missing_ok=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _previous_results(out_dir):
    """Return the result names the last run listed in its summary."""
    try:
        summary = json.loads((out_dir / "summary.json").read_text())
    except (OSError, ValueError):
        return set()
    files = summary.get("files", []) if isinstance(summary, dict) else []
    # Only bare file names are trusted, so nothing outside out_dir goes.
    return {f for f in files if isinstance(f, str) and Path(f).name == f}


def save_analysis(analysis, out_dir, tune=None, extra=None, inputs=()):
    """Write a pull analysis: summary.json and its Datasets as NetCDF.

    Parameters
    ----------
    analysis : PullAnalysis
        Result of :func:`dynoai_lab.analyze_pull`.
    out_dir : path-like
        Folder to write into; created when missing.
    tune : object, optional
        A tune read by :func:`dynoai_lab.read_tune`; when given with
        corrections, the proposed VE tables are also written as
        ``<tune>_proposed.<suffix>`` in the tune's own format.
    extra : dict, optional
        More entries for ``summary.json`` (input paths).
    inputs : iterable of path-like
        Input files, which no result may overwrite.

    Returns
    -------
    dict
        The summary written; ``files`` lists the result files.
    """
    summary = analysis.summary()
    summary.update(extra or {})
    with result_folder(out_dir, inputs) as target:
        if analysis.power is not None:
            write_netcdf(analysis.power, target("power.nc"))
        write_netcdf(analysis.samples, target("samples.nc"))
        if analysis.corrections is not None:
            write_netcdf(analysis.corrections, target("corrections.nc"))
            if tune is not None and getattr(tune, "path", None) is not None:
                from dynoai_lab.io import write_tune

                proposed = analysis.corrections["ve_proposed"]
                path = Path(tune.path)
                name = f"{path.stem}_proposed{path.suffix}"
                write_tune(
                    tune,
                    target(name),
                    ve_front=proposed.sel(cylinder="front", drop=True),
                    ve_rear=proposed.sel(cylinder="rear", drop=True),
                )
                summary["proposed_tune"] = str(Path(out_dir) / name)
        summary_path = target("summary.json")
        summary["files"] = sorted(
            p.name for p in summary_path.parent.iterdir()
        ) + ["summary.json"]
        write_json(summary, summary_path)
    return summary


def save_session(session, out_dir):
    """Write a tuning session: summary.json and history.nc."""
    summary = session.summary()
    with result_folder(out_dir) as target:
        write_netcdf(session.history, target("history.nc"))
        summary["files"] = ["history.nc", "summary.json"]
        write_json(summary, target("summary.json"))
    return summary
