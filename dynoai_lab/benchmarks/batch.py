"""Wall time of one 20-run batch on a local Dask cluster of 1 and 2 workers.

The batch is the bundled real pull (``data/5TH GEAR.txt`` with
``data/base.pvv``) and 19 simulated wide-open-throttle pulls of the
``m8-114`` set, seeds 0 to 18, each run through its papermill report
template into a fresh run store. The timed span is the whole
:func:`dynoai_lab.batch.run_batch` call: cluster start, every run, the
catalog writes and the cluster's shutdown.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from pathlib import Path

logger = logging.getLogger(__name__)


def run(count: int = 20, reports: str = "all", workers=(1, 2)) -> dict:
    """Time the same batch on each worker count.

    Parameters
    ----------
    count : int
        Runs in the batch: the bundled pull and ``count - 1`` simulated
        pulls.
    reports : {"all", "none"}
        Passed to :func:`~dynoai_lab.batch.run_batch`.
    workers : sequence of int
        Worker counts; the first two give ``speedup``.

    Returns
    -------
    dict
        ``wall_s_<n>`` per worker count [s], ``speedup`` (first wall
        time over the second), ``runs``, ``reports`` and ``cores``.
    """
    from dynoai_lab import batch
    from dynoai_lab.datasets import DEMO_LOG, DEMO_TUNE, bundled_path

    with tempfile.TemporaryDirectory(prefix="dynoai-lab-bench-") as tmp:
        tmp = Path(tmp)
        logs = batch.write_simulated_logs(tmp / "simulated", count - 1)
        items = batch.log_items(
            [bundled_path(DEMO_LOG), *logs], tune=bundled_path(DEMO_TUNE)
        )
        figures = {"runs": len(items), "reports": reports}
        for n in workers:
            started = time.perf_counter()
            result = batch.run_batch(
                items,
                tmp / f"store-{n}",
                workers=n,
                reports=reports,
                progress=False,
            )
            wall = time.perf_counter() - started
            if result.failed or result.succeeded != len(items):
                failed = result.rows[result.rows["status"] == "failed"]
                errors = "; ".join(
                    f"{row.name}: {row.error}" for row in failed.itertuples()
                )
                raise RuntimeError(
                    f"benchmark batch on {n} workers: {result.succeeded} "
                    f"succeeded, {result.failed} failed of {len(items)} "
                    f"({errors}); expected every run to succeed"
                )
            logger.info("%d workers: %.1f s", n, wall)
            figures[f"wall_s_{n}"] = round(wall, 2)
    first, second = (figures[f"wall_s_{n}"] for n in workers[:2])
    figures["speedup"] = round(first / second, 3)
    figures["cores"] = len(os.sched_getaffinity(0))
    return figures
