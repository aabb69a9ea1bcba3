"""Closed-loop tuning on the virtual dyno, through the CLI and the API."""

import json
import subprocess
import sys

import numpy as np
import pytest

from dynoai_lab import sim
from dynoai_lab.ecu import make_base_ecu
from dynoai_lab.tuning import START_VE_ERROR, TuningSession

SEEDS = (1, 2, 3, 4, 5)


def run_tune(out, seed, iterations=4):
    result = subprocess.run(
        [
            sys.executable, "-m", "dynoai_lab.cli", "tune",
            "--engine", "m8-114", "--seed", str(seed),
            "--iterations", str(iterations), "--out", str(out),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return out / "summary.json"


@pytest.mark.parametrize("seed", SEEDS)
def test_tune_reduces_error_fivefold(tmp_path, seed):
    # Starting VE 8 to 15 % off in a smooth pattern, the mean absolute
    # lambda error over visited cells must fall at least 5-fold within
    # 4 iterations.
    summary = json.loads(run_tune(tmp_path, seed).read_text())
    errors = [r["mean_abs_lambda_error_pct"] for r in summary["per_iteration"]]
    assert summary["iterations"] <= 4
    assert errors[0] > 7.0, "the starting error is not 8-15 % off"
    assert errors[0] / errors[-1] >= 5.0, errors
    assert summary["converged"] is True
    for record in summary["per_iteration"]:
        assert (
            record["max_abs_lambda_error_pct"]
            >= (record["mean_abs_lambda_error_pct"])
        )


def test_same_seed_identical_summary(tmp_path):
    first = run_tune(tmp_path / "a", 7, iterations=2).read_bytes()
    second = run_tune(tmp_path / "b", 7, iterations=2).read_bytes()
    assert first == second
    other = run_tune(tmp_path / "c", 8, iterations=2).read_bytes()
    assert other != first


def test_unvisited_cells_unchanged():
    engine = sim.get_engine("m8-114")
    ecu = make_base_ecu(engine, ve_error=START_VE_ERROR, seed=3)
    session = TuningSession(engine, ecu, seed=3, max_iterations=2)
    session.run()
    history = session.history
    first, last = (
        history["ve"].isel(iteration=0),
        history["ve"].isel(iteration=-1),
    )
    # A cell no pull ever reached keeps its VE bit for bit.
    never = (history["weight"] == 0).all("iteration").values
    assert never.any()
    np.testing.assert_array_equal(first.values[never], last.values[never])
    # The true VE error falls in the visited cells.
    truth = history["ve_error_vs_truth_pct"].values
    assert truth[-1] < truth[0] / 5


def test_stop_request_ends_session():
    engine = sim.get_engine("m8-114")
    ecu = make_base_ecu(engine, ve_error=START_VE_ERROR, seed=0)
    plan = [sim.wot_sweep(engine)]
    session = TuningSession(engine, ecu, plan=plan, max_iterations=5)
    calls = []
    session.run(
        should_stop=lambda: len(calls) >= 1,
        progress=lambda r, s: calls.append(r),
    )
    assert len(session.records) == 1
    assert session.stop_reason == "stopped by the user"


def test_invalid_iterations():
    engine = sim.get_engine("m8-114")
    ecu = make_base_ecu(engine)
    with pytest.raises(ValueError, match="max_iterations"):
        TuningSession(engine, ecu, max_iterations=0)
