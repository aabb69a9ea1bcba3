"""Closed-loop tuning on the virtual dyno, through the CLI and the API."""

import json

import numpy as np
import pytest

from dynoai_lab import sim
from dynoai_lab.cli import main
from dynoai_lab.ecu import make_base_ecu
from dynoai_lab.tuning import START_VE_ERROR, TuningSession

SEEDS = (1, 2, 3, 4, 5)


def run_tune(out, seed, iterations=4):
    # The command line in this process: a subprocess per run would add
    # an interpreter start and a numba cache load each time.
    status = main(
        [
            "tune", "--engine", "m8-114", "--seed", str(seed),
            "--iterations", str(iterations), "--out", str(out),
        ]
    )  # fmt: skip
    assert status == 0
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


def _session(**kwargs):
    engine = sim.get_engine("m8-114")
    ecu = make_base_ecu(engine, ve_error=START_VE_ERROR, seed=4)
    return TuningSession(engine, ecu, seed=4, **kwargs)


def test_rollback_restores_tables_exactly():
    session = _session(max_iterations=3)
    before = session.ecu
    session.step()
    assert session.records[-1].applied
    assert session.ecu.ve_front.values.tobytes() != (
        before.ve_front.values.tobytes()
    )
    restored = session.rollback()
    assert restored.ve_front.values.tobytes() == (
        before.ve_front.values.tobytes()
    )
    assert restored.ve_rear.values.tobytes() == (
        before.ve_rear.values.tobytes()
    )


def test_locked_cells_never_change():
    engine = sim.get_engine("m8-114")
    ecu = make_base_ecu(engine, ve_error=START_VE_ERROR, seed=4)
    locked = np.zeros(ecu.ve_front.shape, bool)
    locked[10:14, 12:16] = True
    session = TuningSession(
        engine, ecu, seed=4, max_iterations=3,
        locked={"front": locked, "rear": locked},
    )  # fmt: skip
    session.run()
    first = session.history["ve"].isel(iteration=0)
    last = session.ecu
    for index, cyl in enumerate(("front", "rear")):
        np.testing.assert_array_equal(
            getattr(last, f"ve_{cyl}").values[locked],
            first.isel(cylinder=index).values[locked],
        )
    # The locked cells were visited, so locking is what kept them.
    weight = session.history["weight"].isel(iteration=0, cylinder=0)
    assert float(weight.values[locked].sum()) > 0


def test_oscillation_stops_session():
    from types import SimpleNamespace

    import xarray as xr

    session = _session(max_iterations=10)
    shape = session.ecu.ve_front.shape

    def fake(sign):
        ratio = np.full((2, *shape), 1.0 + sign * 0.05)
        weight = np.ones((2, *shape))
        ds = xr.Dataset(
            {
                "ratio": (("cylinder", "rpm", "map"), ratio),
                "weight": (("cylinder", "rpm", "map"), weight),
            }
        )
        return SimpleNamespace(corrections=ds)

    reasons = []
    for iteration, sign in enumerate((1, -1, 1), start=1):
        record = session._measure(iteration, fake(sign))
        reasons.append(session._stop_reason(record))
    assert reasons[0] == ""
    assert reasons[1] == ""
    assert "oscillating" in reasons[2]


def test_summary_final_figures():
    session = _session(max_iterations=4)
    session.run()
    summary = session.summary()
    assert summary["covered_cells"] > 300
    assert summary["unvisited_cells_changed"] == 0
    assert summary["fraction_within_1pct_lambda"] >= 0.95
    assert "converged" in summary["stop_reason"]
    assert set(summary["rejected"]) == {"front", "rear"}
