"""What a worker does with one batch item.

:func:`execute_item` runs on a Dask worker. It builds the run in a
staging folder inside the store and renames it into ``runs/`` only when
the run succeeded, so ``runs/`` never contains half a run. It never
raises for a failing item: it returns the catalog row, with status
``"failed"`` and the error, and the driver records it.

:func:`run_log_item` and :func:`run_study_item` are the work itself.
The report templates call them too, so a run with a report notebook
and one without compute the same results.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from dynoai_lab import __version__

logger = logging.getLogger(__name__)

#: Folders inside a run store.
RUNS = "runs"
STAGING = ".staging"


def read_batch_log(path):
    """Read a log for a batch: any format ``read_log`` reads, or NetCDF.

    Parameters
    ----------
    path : path-like
        A dyno or ECU log, or a ``.nc`` log written by ``dynoai-lab
        simulate`` (``log.nc``) or :func:`write_simulated_logs`.

    Returns
    -------
    xarray.Dataset
        The log on a ``time`` coordinate [s].
    """
    import xarray as xr

    import dynoai_lab as dl

    path = Path(path)
    if path.suffix.lower() != ".nc":
        return dl.read_log(path)
    try:
        log = xr.load_dataset(path)
    except (OSError, ValueError) as error:
        raise ValueError(
            f"{path}: not a readable NetCDF file ({error}); expected a "
            "log written by 'dynoai-lab simulate'"
        ) from None
    if "time" not in log.coords or "engine_speed" not in log:
        raise ValueError(
            f"{path}: NetCDF file without a 'time' coordinate and an "
            "'engine_speed' variable; expected a log written by "
            "'dynoai-lab simulate'"
        )
    return log


def run_log_item(parameters, out_dir=None):
    """Analyse one log of a batch and, with ``out_dir``, save the results.

    Parameters
    ----------
    parameters : dict
        ``log_path``, ``tune_path`` (or None) and ``wideband`` (or
        None), as in :class:`~dynoai_lab.batch.BatchItem`.
    out_dir : path-like, optional
        Folder for ``summary.json`` and the NetCDF Datasets, see
        :func:`dynoai_lab.save_analysis`.

    Returns
    -------
    PullAnalysis
    """
    import dynoai_lab as dl

    log_path = Path(parameters["log_path"])
    tune_path = parameters.get("tune_path")
    log = read_batch_log(log_path)
    tune = dl.read_tune(tune_path) if tune_path else None
    analysis = dl.analyze_pull(log, tune, wideband=parameters.get("wideband"))
    if out_dir is not None:
        dl.save_analysis(
            analysis,
            Path(out_dir),
            tune=tune,
            extra={
                "log": str(log_path),
                "tune": tune_path,
                "vehicle": vehicle_label(log, log_path),
            },
            inputs=[log_path, tune_path],
        )
    return analysis


def vehicle_label(log, path):
    """Return the vehicle a log belongs to, for grouping in summaries.

    A simulated log names its engine set. A real log is labelled by the
    folder it lies in, because shops keep one folder per vehicle.
    """
    if log.attrs.get("source_format") == "simulated" and log.attrs.get(
        "engine"
    ):
        return f"simulated {log.attrs['engine']}"
    return Path(path).resolve().parent.name


def study_session(parameters):
    """Build the tuning session of one study point, not yet run.

    Parameters
    ----------
    parameters : dict
        ``engine``, ``seed``, ``ve_error_pct`` (a uniform error [%] or
        an amplitude range ``[low, high]`` [%]), ``delay_scale`` [1],
        ``sensor_lag_s`` [s], ``plan``, ``iterations`` and
        ``delay_compensation`` (None for the session's default).

    Returns
    -------
    TuningSession

    Notes
    -----
    ``delay_scale`` multiplies the engine's exhaust volume up to the
    sensor, so the simulated transport delay is that of a sensor
    further downstream while the analysis keeps its own delay model or
    estimate. ``sensor_lag_s`` is the first-order time constant of the
    simulated sensor and controller.
    """
    from dynoai_lab import sim
    from dynoai_lab.ecu import make_base_ecu
    from dynoai_lab.tuning import TuningSession

    engine = sim.get_engine(parameters["engine"])
    scale = float(parameters["delay_scale"])
    if scale != 1.0:
        engine = dataclasses.replace(
            engine, exhaust_delay_volume=engine.exhaust_delay_volume * scale
        )
    error = parameters["ve_error_pct"]
    ve_error = (
        tuple(e / 100.0 for e in error)
        if isinstance(error, (list, tuple))
        else error / 100.0
    )
    seed = int(parameters["seed"])
    ecu = make_base_ecu(engine, ve_error=ve_error, seed=seed)
    plan = sim.named_plan(parameters["plan"], engine, ecu)
    sensor = sim.WidebandSensor(time_constant=parameters["sensor_lag_s"])
    options = {}
    if parameters.get("delay_compensation") is not None:
        options["delay_compensation"] = parameters["delay_compensation"]
    return TuningSession(
        engine,
        ecu,
        plan=plan,
        seed=seed,
        max_iterations=int(parameters["iterations"]),
        simulate_kwargs={"sensor": sensor},
        **options,
    )


def run_study_item(parameters, out_dir=None):
    """Run one simulated tuning session and, with ``out_dir``, save it.

    Parameters are those of :func:`study_session`. With ``out_dir``
    the session's ``summary.json`` and ``history.nc`` are written
    there, see :func:`dynoai_lab.save_session`.

    Returns
    -------
    TuningSession
        The finished session.
    """
    import dynoai_lab as dl

    session = study_session(parameters)
    session.run()
    if out_dir is not None:
        dl.save_session(session, Path(out_dir))
    return session


def run_folder_name(item, run_id):
    """Return the folder name of a run inside ``runs/``."""
    return f"{item.name}-{run_id[:12]}"


def execute_item(item, store, template):
    """Run one item into the store; return its catalog row.

    Parameters
    ----------
    item : BatchItem
        The item.
    store : path-like
        The run store; must be on a file system this worker can write.
    template : str
        Report template stem, or ``""`` to run without a notebook.

    Returns
    -------
    dict
        The catalog row, also written as ``run.json`` in the run folder
        when the run succeeded.
    """
    from dynoai_lab.output import write_json

    store = Path(store)
    run_id = item.run_id(template)
    final = store / RUNS / run_folder_name(item, run_id)
    staging = store / STAGING / f"{final.name}.{uuid.uuid4().hex[:8]}"
    staging.mkdir(parents=True)
    row = base_row(item, run_id, template)
    started = time.perf_counter()
    published = False
    try:
        try:
            _run(item, staging, template)
            summary = json.loads((staging / "summary.json").read_text())
            row.update(summary_figures(item.kind, summary))
            row.update(status="succeeded", run_dir=f"{RUNS}/{final.name}")
        except Exception as error:
            logger.info("run %s failed: %s", item.name, error)
            row.update(status="failed", error=describe_error(error))
        row["duration_s"] = round(time.perf_counter() - started, 3)
        if row["status"] == "succeeded":
            write_json(row, staging / "run.json")
            _publish(staging, final)
            published = True
        return row
    finally:
        if not published:
            shutil.rmtree(staging, ignore_errors=True)


#: Kernel starts per report before a run fails. jupyter_client picks
#: free TCP ports for a kernel before the kernel binds them, so two
#: kernels started at once can get the same port. The kernel that loses
#: this race dies before it replies.
KERNEL_START_ATTEMPTS = 3


def _run(item, folder, template):
    if template:
        _run_report(item, folder, template)
    elif item.kind == "log":
        run_log_item(item.parameters, folder)
    else:
        run_study_item(item.parameters, folder)


def _run_report(item, folder, template):
    """Run a report template, starting its kernel again if it died."""
    from dynoai_lab.report import run_report

    parameters = {**item.parameters, "out_dir": "."}
    for attempt in range(1, KERNEL_START_ATTEMPTS + 1):
        try:
            run_report(template, folder, "report", parameters)
            return
        except RuntimeError as error:
            # A cell's exception is a PapermillExecutionError, never a
            # RuntimeError, so this is the kernel or its start.
            if "Kernel died" not in str(error):
                raise
            if attempt == KERNEL_START_ATTEMPTS:
                raise
            logger.warning(
                "%s: kernel died at start (%s); starting another",
                item.name,
                error,
            )


def _publish(staging, final):
    """Move a finished run folder into place, replacing an older one."""
    final.parent.mkdir(parents=True, exist_ok=True)
    old = None
    if final.exists():
        old = staging.with_name(f"{staging.name}.old")
        os.rename(final, old)
    os.rename(staging, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def describe_error(error):
    """Return one line naming an exception, papermill's cell errors too."""
    ename = getattr(error, "ename", None)
    if ename:
        text = f"{ename}: {getattr(error, 'evalue', '')}"
    else:
        text = f"{type(error).__name__}: {error}"
    lines = text.strip().splitlines()
    return lines[0] if lines else type(error).__name__


def base_row(item, run_id, template):
    """Return the catalog fields known before an item runs."""
    from dynoai_lab.batch.items import ve_error_label

    parameters = item.parameters
    row = {
        "run_id": run_id,
        "kind": item.kind,
        "name": item.name,
        "status": "running",
        "template": template,
        "package_version": __version__,
        "parameters": json.dumps(parameters, sort_keys=True),
        "input_sha256": item.input_sha256 or None,
        "tune_sha256": item.tune_sha256 or None,
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "worker": _worker_name(),
    }
    if item.kind == "log":
        row.update(
            input_path=parameters["log_path"],
            tune_path=parameters.get("tune_path"),
        )
        return row
    error = parameters["ve_error_pct"]
    magnitude = (
        max(abs(e) for e in error)
        if isinstance(error, (list, tuple))
        else abs(error)
    )
    compensation = parameters.get("delay_compensation")
    row.update(
        engine=parameters["engine"],
        seed=parameters["seed"],
        plan=parameters["plan"],
        ve_error_pct=ve_error_label(error),
        ve_error_max_pct=magnitude,
        delay_scale=parameters["delay_scale"],
        sensor_lag_s=parameters["sensor_lag_s"],
        delay_compensation=None if compensation is None else str(compensation),
        max_iterations=parameters["iterations"],
    )
    return row


def summary_figures(kind, summary):
    """Pick a run's catalog figures from its ``summary.json``."""
    if kind == "log":
        cells = summary.get("cells_with_data")
        return {
            "vehicle": summary.get("vehicle"),
            "peak_power_hp": summary.get("peak_power_hp"),
            "peak_power_rpm": summary.get("peak_power_rpm"),
            "peak_torque_lbft": summary.get("peak_torque_lbft"),
            "peak_torque_rpm": summary.get("peak_torque_rpm"),
            "correction_factor": summary.get("correction_factor"),
            "cells_with_data": (
                sum(cells.values()) if isinstance(cells, dict) else None
            ),
        }
    per_iteration = summary.get("per_iteration") or [{}]
    return {
        "vehicle": f"simulated {summary.get('engine')}",
        "iterations": summary.get("iterations"),
        "converged": summary.get("converged"),
        "stop_reason": summary.get("stop_reason"),
        "final_mean_abs_lambda_error_pct": per_iteration[-1].get(
            "mean_abs_lambda_error_pct"
        ),
        "fraction_within_1pct_lambda": summary.get(
            "fraction_within_1pct_lambda"
        ),
        "ve_error_vs_truth_pct_p95": summary.get("ve_error_vs_truth_pct_p95"),
    }


def _worker_name():
    try:
        from distributed import get_worker

        return str(get_worker().address)
    except (ImportError, ValueError):
        return f"pid {os.getpid()}"
