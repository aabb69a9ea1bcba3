"""Batches of reports on Dask: many logs, or a virtual tuning study.

>>> from dynoai_lab import batch
>>> items = batch.study_items({"seed": {"count": 3}})
>>> [item.name for item in items][:1]
['m8-114_part-throttle_ve8-15_d1_s0']

:func:`run_batch` runs items on a ``dask.distributed`` cluster, local
by default, into a run store: one folder per run under ``runs/`` and a
Parquet catalog (:mod:`dynoai_lab.catalog`). See ``docs/batch.md``.
"""

from dynoai_lab.batch.driver import (
    REPORT_CHOICES,
    BatchResult,
    RunStore,
    StoreLockedError,
    run_batch,
)
from dynoai_lab.batch.items import (
    GRID_DEFAULTS,
    TEMPLATES,
    BatchItem,
    find_logs,
    log_items,
    read_grid,
    study_items,
)
from dynoai_lab.batch.simulated import write_simulated_logs
from dynoai_lab.batch.work import (
    read_batch_log,
    run_log_item,
    run_study_item,
    study_session,
)
from dynoai_lab.catalog import read_catalog

__all__ = [
    "GRID_DEFAULTS",
    "REPORT_CHOICES",
    "TEMPLATES",
    "BatchItem",
    "BatchResult",
    "RunStore",
    "StoreLockedError",
    "find_logs",
    "log_items",
    "read_batch_log",
    "read_catalog",
    "read_grid",
    "run_batch",
    "run_log_item",
    "run_study_item",
    "study_items",
    "study_session",
    "write_simulated_logs",
]
