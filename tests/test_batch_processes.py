"""Batches as real processes: Ctrl-C and resume, a Dask cluster, a study."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dynoai_lab.catalog import read_catalog

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
DYNOAI_LAB = str(BIN / "dynoai-lab")
DASK = str(BIN / "dask")


def _write_grid(path, **grid):
    path.write_text(json.dumps(grid))
    return path


def _check_store(store, expected_runs):
    """Every run once in the catalog, one complete folder per success."""
    catalog = read_catalog(store)
    assert len(catalog) == expected_runs
    assert catalog["run_id"].is_unique
    assert catalog["name"].is_unique
    assert (catalog["status"] == "succeeded").all(), catalog["error"]
    folders = sorted((store / "runs").iterdir())
    assert len(folders) == expected_runs
    assert all((f / "run.json").is_file() for f in folders)
    assert all((f / "history.nc").is_file() for f in folders)
    assert sorted(catalog["run_dir"]) == [f"runs/{f.name}" for f in folders]
    staging = store / ".staging"
    assert not staging.exists() or not any(staging.iterdir())
    return catalog


def _default_sigint():
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _interrupt(command, store):
    """Start a batch, send Ctrl-C after its second result, return it."""
    process = subprocess.Popen(
        [*command, "--workers", "1", "--no-progress"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        # A child inherits an ignored SIGINT, and something earlier in
        # the test run can leave it ignored in this process. A
        # terminal's shell starts commands with the default action.
        preexec_fn=_default_sigint,
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and process.poll() is None:
            if len(read_catalog(store)) >= 2:
                break
            time.sleep(0.05)
        assert process.poll() is None, "the batch ended before the interrupt"
        # Ctrl-C in a terminal signals the whole process group.
        os.killpg(process.pid, signal.SIGINT)
        _, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    return process.returncode, err


def test_sigint_stops_cleanly_and_the_rerun_resumes(tmp_path):
    # 16 sessions of about 0.5 s each on one worker take about 8 s, so
    # the interrupt after the second result lands mid-batch.
    grid = _write_grid(
        tmp_path / "grid.json",
        seed={"count": 8},
        delay_scale=[1.0, 2.0],
        plan="covering",
        iterations=2,
        delay_compensation="model",
    )
    for attempt in range(3):
        store = tmp_path / f"store{attempt}"
        command = [DYNOAI_LAB, "batch", "--grid", str(grid)]
        command += ["--store", str(store), "--reports", "none"]
        returncode, err = _interrupt(command, store)
        # On a loaded machine the last results can arrive before the
        # signal does; then the batch is complete and the test repeats.
        finished = returncode == 0 and len(read_catalog(store)) == 16
        if not finished:
            break
    assert returncode == 130, err
    assert "run the same command again to resume" in err, err
    # The worker processes ignore the group's SIGINT; only the driver
    # stops, without a traceback.
    assert "KeyboardInterrupt" not in err, err
    recorded = read_catalog(store)
    assert 2 <= len(recorded) < 16, err
    assert (recorded["status"] == "succeeded").all()

    rerun = subprocess.run(
        [*command, "--workers", "2", "--no-progress"],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert rerun.returncode == 0, rerun.stderr
    assert "skipped" in rerun.stdout
    _check_store(store, 16)


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for_workers(address, count, timeout=60):
    from dask.distributed import Client

    with Client(address, timeout=timeout) as client:
        client.wait_for_workers(count, timeout=timeout)
        return sorted(client.scheduler_info()["workers"])


def test_batch_runs_on_a_running_dask_cluster(tmp_path):
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    loopback = ["--dashboard-address", "127.0.0.1:0", "--no-dashboard"]
    scheduler = [DASK, "scheduler", "--host", "127.0.0.1", "--port", str(port)]
    worker = [DASK, "worker", address, "--nthreads", "1", "--no-nanny"]
    worker += ["--host", "127.0.0.1"]
    log = open(tmp_path / "dask.log", "w")  # noqa: SIM115
    processes = []
    try:
        processes.append(
            subprocess.Popen([*scheduler, *loopback], stderr=log, stdout=log)
        )
        for _ in range(2):
            processes.append(
                subprocess.Popen([*worker, *loopback], stderr=log, stdout=log)
            )
        workers = _wait_for_workers(address, 2)

        grid = _write_grid(
            tmp_path / "grid.json",
            seed={"count": 8},
            delay_compensation="model",
        )
        store = tmp_path / "store"
        result = subprocess.run(
            [DYNOAI_LAB, "batch", "--grid", str(grid), "--store", str(store)]
            + ["--scheduler", address, "--reports", "none", "--no-progress"],
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert result.returncode == 0, result.stderr
        catalog = _check_store(store, 8)
        # Both started workers ran sessions, and no other process did.
        assert sorted(set(catalog["worker"])) == workers
    finally:
        for process in reversed(processes):
            process.send_signal(signal.SIGINT)
        for process in reversed(processes):
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        log.close()


def test_study_of_100_sessions_and_its_summary_notebook(tmp_path):
    grid = _write_grid(
        tmp_path / "grid.yaml",
        seed={"count": 5},
        delay_scale=[1.0, 2.0, 4.0, 8.0, 16.0],
        ve_error_pct=[[4, 8], [8, 15], -12, 12],
        iterations=3,
        # The analysis's own delay model, not a per-pull estimate, so
        # delay_scale is a pure model error (and a session takes 0.2 s).
        delay_compensation="model",
    )
    store = tmp_path / "store"
    result = subprocess.run(
        [DYNOAI_LAB, "batch", "--grid", str(grid), "--store", str(store)]
        + ["--reports", "none", "--workers", "2", "--no-progress"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    assert "100 succeeded, 0 failed" in result.stdout
    catalog = _check_store(store, 100)
    assert catalog["iterations"].between(1, 3).all()
    # A sensor far downstream must hurt: sessions converge less often
    # with 16x the delay volume than with the modelled one.
    converged = catalog.groupby("delay_scale")["converged"].mean()
    assert converged[1.0] > converged[16.0]

    # The summary notebook, pointed at this store, runs under nbval.
    notebook = tmp_path / "04_batch_summary.ipynb"
    repo = Path(__file__).resolve().parents[1]
    subprocess.run(
        [str(BIN / "papermill"), "--prepare-only", "-p", "store", str(store)]
        + [str(repo / "notebooks" / "04_batch_summary.ipynb"), str(notebook)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    nbval = subprocess.run(
        [sys.executable, "-m", "pytest", "--nbval-lax", "-q"]
        + ["-p", "no:cacheprovider", str(notebook)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(repo)},
    )
    assert nbval.returncode == 0, nbval.stdout[-3000:]
    assert " passed" in nbval.stdout
