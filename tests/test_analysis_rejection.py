"""Each rejection reason: fed the samples it targets, counted, excluded."""

from types import SimpleNamespace

import numpy as np
import pytest
import xarray as xr

import dynoai_lab as dl
from dynoai_lab.analysis.pull import REJECTION_REASONS, RejectionLimits

N = 400  # 20 s at 20 Hz
RPM_AXIS = np.array([1000.0, 2000.0, 3000.0, 4000.0, 5000.0])
MAP_AXIS = np.array([20.0, 40.0, 60.0, 80.0, 100.0])


def steady_log(**overrides):
    """A steady 3000 rpm, 60 kPa log with one good front wideband."""
    time = np.arange(N) * 0.05
    channels = {
        "engine_speed": np.full(N, 3000.0),
        "manifold_pressure": np.full(N, 60.0),
        "throttle_position": np.full(N, 30.0),
        "afr_target": np.full(N, 13.5),
        # A live sensor wanders; a constant one is stuck (not connected).
        "afr_front": 13.8
        * (1 + 0.005 * np.random.default_rng(0).standard_normal(N)),
        "coolant_temperature": np.full(N, 90.0),
        "accel_enrichment": np.zeros(N),
        "injector_time_front": np.full(N, 0.004),
    }
    channels.update(overrides)
    ds = xr.Dataset(
        {k: ("time", np.asarray(v, float)) for k, v in channels.items()},
        coords={"time": time},
        attrs={"source_file": "steady.csv"},
    )
    ds["afr_front"].attrs.update(
        kind="wideband", cylinder="front", stoichiometric_afr=14.7
    )
    return ds


def tune():
    table = xr.DataArray(
        np.full((RPM_AXIS.size, MAP_AXIS.size), 80.0),
        dims=("rpm", "map"),
        coords={"rpm": RPM_AXIS, "map": MAP_AXIS},
    )
    afr = table.copy(data=np.full(table.shape, 13.5))
    return SimpleNamespace(
        ve_front=table, ve_rear=table.copy(), afr_target=afr, path="t.pvv"
    )


def analyze(log, **kwargs):
    # A constant delay keeps the arithmetic of each case obvious.
    return dl.analyze_pull(log, tune(), delay=0.0, **kwargs)


def counts(analysis):
    return analysis.rejected["front"]


def test_clean_log_keeps_everything():
    result = counts(analyze(steady_log()))
    assert result["accepted"] == N
    assert sum(result[r] for r in REJECTION_REASONS) == 0


def with_window(values, start, stop, value):
    values = np.array(values, float)
    values[start:stop] = value
    return values


CASES = {
    "missing_operating_point": (
        {"manifold_pressure": with_window(np.full(N, 60.0), 50, 60, np.nan)},
        10,
    ),
    "after_start": (
        # The engine starts at sample 100: 30 s of after-start
        # enrichment covers every later sample.
        {"engine_speed": with_window(np.full(N, 3000.0), 0, 100, 0.0)},
        N - 100,
    ),
    "cold_engine": (
        {"coolant_temperature": with_window(np.full(N, 90.0), 0, 40, 35.0)},
        40,
    ),
    "decel_fuel_cut": (
        {"throttle_position": with_window(np.full(N, 30.0), 200, 220, 0.0)},
        20,
    ),
    "accel_enrichment": (
        # Active for 10 samples plus the 0.3 s (6 sample) hold-off.
        {"accel_enrichment": with_window(np.zeros(N), 100, 110, 1.2)},
        16,
    ),
    "fuel_cut": (
        {"injector_time_front": with_window(np.full(N, 0.004), 300, 310, 0.0)},
        10,
    ),
    "unsteady_map": (
        # One 20 kPa jump in 0.05 s (400 kPa/s) touches two samples,
        # and the 0.5 s hold-off adds the 10 samples after them.
        {"manifold_pressure": with_window(np.full(N, 60.0), 150, N, 80.0)},
        12,
    ),
    "sensor_dead": (
        {"afr_front": with_window(steady_log()["afr_front"], 10, 30, 0.0)},
        20,
    ),
    "sensor_railed": (
        {"afr_front": with_window(steady_log()["afr_front"], 60, 70, 22.39)},
        10,
    ),
}


@pytest.mark.parametrize("reason", sorted(CASES))
def test_reason_counted_and_excluded(reason):
    overrides, expected = CASES[reason]
    analysis = analyze(steady_log(**overrides))
    result = counts(analysis)
    assert result[reason] == expected
    code = analysis.samples["rejection_front"].values
    ratio = analysis.samples["ratio_front"].values
    flagged = code == REJECTION_REASONS.index(reason)
    assert flagged.sum() == expected
    assert np.all(np.isnan(ratio[flagged]))
    assert result["accepted"] + sum(result[r] for r in REJECTION_REASONS) == N


def test_unsteady_throttle():
    throttle = 30.0 + 10.0 * (np.arange(N) >= 200)
    result = counts(analyze(steady_log(throttle_position=throttle)))
    # Two samples around the step, then 0.5 s (10 samples) of hold-off
    # while the wall film settles.
    assert result["unsteady_throttle"] == 12


def test_unsteady_holdoff_is_a_setting():
    throttle = 30.0 + 10.0 * (np.arange(N) >= 200)
    limits = RejectionLimits(unsteady_holdoff=0.0)
    result = counts(
        analyze(steady_log(throttle_position=throttle), limits=limits)
    )
    assert result["unsteady_throttle"] == 2


def test_reading_past_a_segment_break_is_rejected():
    # Two simulated plan steps that do not continue from each other:
    # with a 0.5 s delay, the last 0.5 s (10 samples) of the first
    # step would take their readings from the second.
    log = steady_log().assign(segment=("time", (np.arange(N) >= 200) * 1))
    result = counts(dl.analyze_pull(log, tune(), delay=0.5))
    # Plus the last 10 samples of the log, whose readings never came.
    assert result["log_break"] == 20
    analysis = dl.analyze_pull(log, tune(), delay=0.5)
    code = analysis.samples["rejection_front"].values
    broken = np.flatnonzero(code == REJECTION_REASONS.index("log_break"))
    assert set(broken) == set(range(190, 200)) | set(range(N - 10, N))


def test_off_table_samples():
    rpm = with_window(np.full(N, 3000.0), 0, 25, 6500.0)
    result = counts(analyze(steady_log(engine_speed=rpm)))
    assert result["off_table"] == 25


def test_user_expression():
    analysis = analyze(steady_log(), reject="time > 15")
    # time is 0 to 19.95 s: samples after 15 s are rejected.
    assert counts(analysis)["user_expression"] == int(
        np.sum(np.arange(N) * 0.05 > 15)
    )
    with pytest.raises(dl.AnalysisError, match="reject expression"):
        analyze(steady_log(), reject="no_such_channel > 1")


def test_logger_connecting_late_is_not_a_start():
    # The first samples have no engine speed yet: that is a logger
    # connecting, not an engine starting.
    rpm = with_window(np.full(N, 3000.0), 0, 20, np.nan)
    result = counts(analyze(steady_log(engine_speed=rpm)))
    assert result["after_start"] == 0
    assert result["missing_operating_point"] == 20


@pytest.mark.parametrize("neutral", [0.0, 100.0])
def test_closed_loop_trim_removed_in_both_conventions(neutral):
    # The ECU added 5 % fuel in closed loop, logged either as +5 (0 means
    # no trim) or as 105 (100 means no trim); the table alone would
    # have run 5 % leaner, so the ratio rises by 5 % either way.
    base = analyze(steady_log())
    trimmed = analyze(
        steady_log(closed_loop_trim_front=np.full(N, neutral + 5))
    )
    ratio = np.nanmean(base.samples["ratio_front"].values)
    ratio_trimmed = np.nanmean(trimmed.samples["ratio_front"].values)
    assert ratio_trimmed == pytest.approx(ratio * 1.05, rel=1e-12)
