"""The run catalog of a batch: one Parquet table, one row per run.

A run store (see :mod:`dynoai_lab.batch`) keeps ``catalog.parquet``
beside its ``runs/`` folder. Each row contains a run's parameters, the
SHA-256 of its inputs, its status and error, and its summary figures;
pandas reads it with ``pandas.read_parquet``. Only the process that
drives the batch writes the catalog, and every write replaces the whole
file atomically (temporary file and ``os.replace``), so a reader never
sees half a table.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd

#: File name of the catalog inside a run store.
CATALOG_NAME = "catalog.parquet"

#: Catalog columns and their pandas dtypes. Columns that one kind of
#: run does not have (peak power for a tuning study) are null there.
COLUMNS = {
    "run_id": "string",
    "kind": "string",
    "name": "string",
    "status": "string",
    "error": "string",
    "run_dir": "string",
    "template": "string",
    "package_version": "string",
    "parameters": "string",
    "input_path": "string",
    "input_sha256": "string",
    "tune_path": "string",
    "tune_sha256": "string",
    "vehicle": "string",
    "engine": "string",
    "seed": "Int64",
    "plan": "string",
    "ve_error_pct": "string",
    "ve_error_max_pct": "Float64",
    "delay_scale": "Float64",
    "sensor_lag_s": "Float64",
    "delay_compensation": "string",
    "max_iterations": "Int64",
    "started": "string",
    "duration_s": "Float64",
    "worker": "string",
    "peak_power_hp": "Float64",
    "peak_power_rpm": "Float64",
    "peak_torque_lbft": "Float64",
    "peak_torque_rpm": "Float64",
    "correction_factor": "Float64",
    "cells_with_data": "Int64",
    "iterations": "Int64",
    "converged": "boolean",
    "stop_reason": "string",
    "final_mean_abs_lambda_error_pct": "Float64",
    "fraction_within_1pct_lambda": "Float64",
    "ve_error_vs_truth_pct_p95": "Float64",
}

#: Units of the catalog's physical columns, stored in the Parquet
#: file's metadata under ``dynoai_lab.units``.
UNITS = {
    "ve_error_pct": "%",
    "ve_error_max_pct": "%",
    "delay_scale": "1",
    "sensor_lag_s": "s",
    "duration_s": "s",
    "peak_power_hp": "hp",
    "peak_power_rpm": "rpm",
    "peak_torque_lbft": "lbf·ft",
    "peak_torque_rpm": "rpm",
    "correction_factor": "1",
    "final_mean_abs_lambda_error_pct": "%",
    "fraction_within_1pct_lambda": "1",
    "ve_error_vs_truth_pct_p95": "%",
}


def catalog_path(store):
    """Return the catalog path of a run store, or ``store`` if a file."""
    store = Path(store)
    return store if store.suffix == ".parquet" else store / CATALOG_NAME


def empty_catalog():
    """Return a catalog table with no rows and every column typed."""
    return pd.DataFrame(
        {name: pd.Series(dtype=dtype) for name, dtype in COLUMNS.items()}
    )


def catalog_frame(rows):
    """Build a typed catalog table from row dicts.

    Keys that are not catalog columns are ignored; missing columns are
    null. Rows are sorted by kind, name and run id, so the same rows
    give the same table.
    """
    records = [{name: row.get(name) for name in COLUMNS} for row in rows]
    frame = pd.DataFrame.from_records(records, columns=list(COLUMNS))
    frame = frame.astype(COLUMNS)
    frame = frame.sort_values(["kind", "name", "run_id"], kind="stable")
    return frame.reset_index(drop=True)


def read_catalog(store):
    """Read a run store's catalog.

    Parameters
    ----------
    store : path-like
        The run store folder, or the Parquet file itself.

    Returns
    -------
    pandas.DataFrame
        One row per run with the columns of :data:`COLUMNS`; an empty
        table when the store has no catalog yet.

    Raises
    ------
    ValueError
        If the file exists but is not a catalog (a column is missing).
    """
    path = catalog_path(store)
    if not path.is_file():
        return empty_catalog()
    frame = pd.read_parquet(path)
    missing = [name for name in COLUMNS if name not in frame.columns]
    if missing:
        raise ValueError(
            f"{path} is not a dynoai-lab run catalog: columns {missing} "
            "are missing"
        )
    return frame.astype(COLUMNS)


def write_catalog(rows, store):
    """Write the catalog of a run store atomically.

    Parameters
    ----------
    rows : iterable of dict
        One dict per run, keyed by column name.
    store : path-like
        The run store folder, or the Parquet file itself.

    Returns
    -------
    pathlib.Path
        The catalog file.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = catalog_path(store)
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pandas(catalog_frame(rows), preserve_index=False)
    metadata = dict(table.schema.metadata or {})
    metadata[b"dynoai_lab.units"] = json.dumps(UNITS).encode()
    table = table.replace_schema_metadata(metadata)
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        pq.write_table(table, temp)
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)
    return path
