"""Drive a batch on Dask: skip what is done, submit the rest, record.

The driver is the only writer of the catalog. It takes an exclusive
lock on the store, removes staging folders that an interrupted batch
left behind, and adds to the catalog any finished run folder that an
interrupt kept from being recorded. Then it submits the remaining
items to a ``dask.distributed`` cluster and rewrites the catalog as
results arrive, at most once a second, and once more at the end.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import shutil
import signal
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from dynoai_lab.batch.items import TEMPLATES
from dynoai_lab.batch.work import RUNS, STAGING, execute_item
from dynoai_lab.catalog import catalog_frame, read_catalog, write_catalog

logger = logging.getLogger(__name__)

#: Values of the ``reports`` option.
REPORT_CHOICES = ("all", "none")


class StoreLockedError(RuntimeError):
    """Another batch is writing to the same run store."""


@dataclass
class BatchResult:
    """Outcome of :func:`run_batch`.

    Attributes
    ----------
    store : pathlib.Path
        The run store.
    succeeded, failed, skipped : int
        Runs of this call that succeeded or failed, and items already
        in the catalog that were not run again.
    catalog : pandas.DataFrame
        The whole catalog after the batch, this batch's runs and older
        ones.
    run_ids : list of str
        Run ids of this batch's items, run or skipped.
    """

    store: Path
    succeeded: int
    failed: int
    skipped: int
    catalog: object
    run_ids: list

    @property
    def rows(self):
        """Catalog rows of this batch's items."""
        return self.catalog[self.catalog["run_id"].isin(self.run_ids)]


class RunStore:
    """A folder of runs with its catalog, locked while a batch runs.

    Use as a context manager: entering takes the lock, cleans staging
    folders and recovers unrecorded runs. :meth:`record` adds a row and
    rewrites the catalog at most once per :attr:`write_interval`, and
    leaving writes what is left.
    """

    #: Minimum time between two catalog writes [s]. A write of a catalog
    #: of 1000 rows takes about 0.1 s, so writing after every result
    #: would cost a long batch minutes of driver time.
    write_interval = 1.0

    def __init__(self, path):
        self.path = Path(path)
        self.rows = {}
        self._lock = None
        self._unwritten = False
        self._written_at = float("-inf")

    def __enter__(self):
        self.path.mkdir(parents=True, exist_ok=True)
        self._lock = open(self.path / ".lock", "w")  # noqa: SIM115
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock.close()
            self._lock = None
            raise StoreLockedError(
                f"run store {self.path} is in use by another batch; wait "
                "for it to finish or choose another --store"
            ) from None
        try:
            shutil.rmtree(self.path / STAGING, ignore_errors=True)
            catalog = read_catalog(self.path)
            self.rows = {
                row["run_id"]: _plain(row)
                for row in catalog.to_dict(orient="records")
            }
            self._reconcile()
        except BaseException:
            self._unlock()
            raise
        return self

    def __exit__(self, *exc):
        if self._lock is not None:
            try:
                self.flush()
            finally:
                self._unlock()
        return False

    def _unlock(self):
        if self._lock is not None:
            fcntl.flock(self._lock, fcntl.LOCK_UN)
            self._lock.close()
            self._lock = None

    def _reconcile(self):
        """Match the catalog to the run folders on disk.

        A run folder whose row is missing is added from its
        ``run.json``: the batch stopped between the rename and the
        catalog write. A succeeded row whose folder is gone is dropped,
        so the run is done again.
        """
        changed = False
        for run_json in sorted((self.path / RUNS).glob("*/run.json")):
            row = json.loads(run_json.read_text())
            if self.rows.get(row.get("run_id"), {}).get("status") != (
                "succeeded"
            ):
                self.rows[row["run_id"]] = row
                changed = True
        for run_id, row in list(self.rows.items()):
            folder = row.get("run_dir")
            if row.get("status") == "succeeded" and not (
                folder and (self.path / folder / "run.json").is_file()
            ):
                del self.rows[run_id]
                changed = True
        if changed:
            logger.info("catalog reconciled with the run folders")
            self._unwritten = True
            self.flush()

    def is_done(self, run_id, retry_failed=False):
        """Return True if a run needs no new attempt."""
        row = self.rows.get(run_id)
        if row is None:
            return False
        return row["status"] == "succeeded" or not retry_failed

    def record(self, row):
        """Add or replace one run's row; rewrite the catalog if due."""
        self.rows[row["run_id"]] = row
        self._unwritten = True
        if time.monotonic() - self._written_at >= self.write_interval:
            self.flush()

    def flush(self):
        """Rewrite the catalog if it lacks recorded rows."""
        if self._unwritten:
            write_catalog(self.rows.values(), self.path)
            self._unwritten = False
            self._written_at = time.monotonic()


def _plain(row):
    """Turn pandas' missing values in a catalog row into None."""
    import pandas as pd

    return {k: (None if pd.isna(v) else v) for k, v in row.items()}


def run_batch(
    items,
    store,
    *,
    workers=2,
    scheduler=None,
    reports="all",
    retry_failed=False,
    progress=True,
):
    """Run batch items on Dask into a run store.

    Parameters
    ----------
    items : list of BatchItem
        From :func:`~dynoai_lab.batch.log_items` or
        :func:`~dynoai_lab.batch.study_items`.
    store : path-like
        Run store folder; created when missing. With ``scheduler`` it
        must be on a file system that every worker reaches at the same
        path.
    workers : int
        Worker processes of the local cluster, one thread each;
        ignored with ``scheduler``.
    scheduler : str, optional
        Address of a running Dask scheduler, for example
        ``"tcp://127.0.0.1:8786"``, used instead of a local cluster.
    reports : {"all", "none"}
        ``"all"`` runs each item through its papermill report template,
        which leaves an executed notebook and offline HTML in every run
        folder. ``"none"`` runs the same library code without a
        notebook and so saves a Jupyter kernel start per run.
    retry_failed : bool
        Run again items whose last run failed; by default they are
        skipped like succeeded ones, since the same inputs fail the
        same way.
    progress : bool
        Show a progress bar (terminal or notebook) with counts of
        done, failed and remaining runs.

    Returns
    -------
    BatchResult

    Raises
    ------
    KeyboardInterrupt
        After an interrupt: futures are cancelled, the cluster is
        closed, and the catalog contains every run finished so far.
    """
    if reports not in REPORT_CHOICES:
        raise ValueError(
            f"reports must be one of {REPORT_CHOICES}, got {reports!r}"
        )
    store = Path(store).resolve()
    with RunStore(store) as run_store:
        todo, skipped, run_ids = _plan(items, run_store, reports, retry_failed)
        counts = Counter()
        if todo:
            _submit(todo, run_store, workers, scheduler, counts, progress)
        catalog = catalog_frame(run_store.rows.values())
    return BatchResult(
        store=store,
        succeeded=counts["succeeded"],
        failed=counts["failed"],
        skipped=skipped,
        catalog=catalog,
        run_ids=run_ids,
    )


def _plan(items, run_store, reports, retry_failed):
    """Return the (item, template, run id) to run, skips and all ids."""
    todo = {}
    skipped = 0
    run_ids = []
    for item in items:
        template = TEMPLATES[item.kind] if reports == "all" else ""
        run_id = item.run_id(template)
        run_ids.append(run_id)
        if run_id in todo:
            logger.warning(
                "%s has the same inputs and parameters as %s; run once",
                item.name,
                todo[run_id][0].name,
            )
            continue
        if run_store.is_done(run_id, retry_failed):
            skipped += 1
            continue
        todo[run_id] = (item, template)
    todo = [(i, t, r) for r, (i, t) in todo.items()]
    return todo, skipped, run_ids


def _submit(todo, run_store, workers, scheduler, counts, progress):
    from dask.distributed import Client, LocalCluster, as_completed

    if not logger.isEnabledFor(logging.INFO):
        # Dask logs each connection at INFO; keep the terminal to the bar.
        logging.getLogger("distributed").setLevel(logging.WARNING)
    cluster = None
    if scheduler:
        client = Client(scheduler)
    else:
        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        with _sigint_ignored():
            # Worker processes inherit the ignored SIGINT, so Ctrl-C in
            # a terminal reaches only the driver, which closes them.
            cluster = LocalCluster(
                n_workers=workers,
                threads_per_worker=1,
                processes=True,
                host="127.0.0.1",
                dashboard_address=None,
                silence_logs=logging.WARNING,
                # The health endpoint on a free loopback port, not 8787.
                scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
            )
        client = Client(cluster)
    bar = _progress_bar(len(todo), progress)
    futures = {}
    try:
        for item, template, run_id in todo:
            future = client.submit(
                execute_item,
                item,
                str(run_store.path),
                template,
                key=f"dynoai-lab-{run_id}",
                pure=False,
            )
            futures[future] = (item, template, run_id)
        for future in as_completed(futures):
            row = _result_row(future, futures[future])
            run_store.record(row)
            counts[row["status"]] += 1
            _advance(bar, counts, len(todo))
    except KeyboardInterrupt:
        client.cancel(list(futures))
        raise
    finally:
        if bar is not None:
            bar.close()
        client.close()
        if cluster is not None:
            cluster.close()


@contextlib.contextmanager
def _sigint_ignored():
    """Ignore SIGINT in this block (main thread only; elsewhere no-op)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _result_row(future, task):
    """Return a finished future's row; a crashed task becomes a failure."""
    from dynoai_lab.batch.work import base_row, describe_error

    try:
        return future.result()
    except Exception as error:
        # The worker died or the task could not run (KilledWorker).
        item, template, run_id = task
        row = base_row(item, run_id, template)
        row.update(status="failed", error=describe_error(error))
        return row


def _progress_bar(total, enabled):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    bar = tqdm(total=total, desc="batch", unit="run")
    bar.set_postfix(done=0, failed=0, remaining=total)
    return bar


def _advance(bar, counts, total):
    done = counts["succeeded"]
    failed = counts["failed"]
    remaining = total - done - failed
    logger.info("%d done, %d failed, %d remaining", done, failed, remaining)
    if bar is not None:
        bar.set_postfix(done=done, failed=failed, remaining=remaining)
        bar.update(1)
