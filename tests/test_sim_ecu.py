"""ECU behaviours, sensor options and plans on the virtual dyno."""

from __future__ import annotations

import time as wall_clock

import numpy as np
import pytest

from dynoai_lab.analysis.pull import REJECTION_REASONS, analyze_pull
from dynoai_lab.ecu import EcuFeatures, make_base_ecu
from dynoai_lab.sim import (
    SteadyState,
    StepThrottle,
    Sweep,
    Weather,
    WidebandSensor,
    get_dyno,
    get_engine,
    named_plan,
    simulate_plan,
    simulate_pull,
)


@pytest.fixture(scope="module")
def m8():
    return get_engine("m8-114")


def _tip_in(m8, ecu):
    step = StepThrottle(
        rpm=2500, start_throttle=10, end_throttle=60, duration_s=2.5
    )
    return simulate_plan(m8, ecu, [step], sample_rate_hz=1000.0)


def test_accel_enrichment_on_tip_in(m8):
    ecu = make_base_ecu(m8)
    log, truth = _tip_in(m8, ecu)
    time = log["time"].values
    enrichment = log["accel_enrichment"].values
    assert np.all(enrichment[time < 1.0] == 0.0)
    assert enrichment[(time > 1.0) & (time < 1.2)].max() > 0.05
    assert np.all(enrichment[time > 2.2] == 0.0)

    # Without enrichment the wall film leaves the tip-in leaner.
    _, bare = _tip_in(m8, ecu.with_features(accel_enrichment=False))
    window = (time > 1.0) & (time < 1.5)
    lean_with = truth["lambda_front"].values[window].max()
    lean_without = bare["lambda_front"].values[window].max()
    assert lean_without > lean_with


def test_decel_fuel_cut_on_closed_throttle(m8):
    ecu = make_base_ecu(m8)
    step = StepThrottle(rpm=3000, start_throttle=40, end_throttle=0)
    log, truth = simulate_plan(m8, ecu, [step], sample_rate_hz=100.0)
    closed = log["time"].values > 1.1
    assert np.all(log["decel_enleanment"].values[closed] == 1.0)
    assert np.all(log["injector_time_front"].values[closed] == 0.0)
    assert np.all(log["decel_enleanment"].values[~closed][:90] == 0.0)
    # The analysis rejects these samples as a fuel cut.
    analysis = analyze_pull(log, ecu)
    code = analysis.samples["rejection_front"].values
    cut = REJECTION_REASONS.index("decel_fuel_cut")
    assert np.all(code[closed] == cut)


def test_rev_limiter_cuts_fuel(m8):
    ecu = make_base_ecu(m8)
    sweep = Sweep(
        throttle=100,
        start_rpm=4500,
        end_rpm=m8.rev_limit_rpm + 500,
        gear=3,
        max_duration_s=3.0,
    )
    log, _ = simulate_pull(m8, ecu, sweep, sample_rate_hz=1000.0)
    rpm = log["engine_speed"].values
    pulse = log["injector_time_front"].values
    assert np.any(pulse[rpm >= m8.rev_limit_rpm] == 0.0)
    # One step of overshoot at most before fuel returns below it.
    assert rpm.max() < m8.rev_limit_rpm + 100.0

    off = ecu.with_features(rev_limiter=False)
    log_off, _ = simulate_pull(m8, off, sweep, sample_rate_hz=1000.0)
    assert log_off["engine_speed"].values.max() > m8.rev_limit_rpm + 200


def _closed_loop_point(m8, **features):
    ecu = make_base_ecu(m8, ve_error=-0.10).with_features(
        closed_loop=True, **features
    )
    point = [SteadyState(rpm=2500, map_kpa=50, settle_s=1.0, hold_s=7.0)]
    return ecu, simulate_plan(m8, ecu, point, seed=2)


def test_closed_loop_pulls_lambda_to_target(m8):
    ecu, (log, truth) = _closed_loop_point(m8, adaptive=False)
    target = log["afr_target"].values[-1] / 14.7
    # Table VE 10 % low: open loop runs 11 % lean, the trim adds
    # 1/0.9 - 1 = 11.1 % fuel. Integral action settles within 1 %.
    assert truth["lambda_front"].values[-1] == pytest.approx(target, rel=0.01)
    trim = log["closed_loop_trim_front"].values[-1]
    assert trim == pytest.approx(100 * (1 / 0.9 - 1), abs=1.0)
    assert np.all(log["adaptive_fuel_factor_front"].values == 0.0)


def test_analysis_divides_out_closed_loop_trim(m8):
    ecu, (log, _) = _closed_loop_point(m8, adaptive=False)
    analysis = analyze_pull(log, ecu)
    corrections = analysis.corrections.sel(cylinder="front")
    visited = corrections["weight"].values > 0.5
    ratio = corrections["ratio"].values[visited]
    # With the trim removed, the ratio is the table's error, 1/0.9,
    # within the 1 % sensor noise averaged over the hold.
    np.testing.assert_allclose(ratio, 1 / 0.9, rtol=0.015)


def test_adaptive_factor_takes_over_trim(m8):
    _, (log, _) = _closed_loop_point(m8)
    adaptive = log["adaptive_fuel_factor_front"].values[-1]
    trim = log["closed_loop_trim_front"].values[-1]
    assert adaptive > 3.0
    total = (1 + adaptive / 100) * (1 + trim / 100) - 1
    assert total == pytest.approx(1 / 0.9 - 1, abs=0.01)


def test_knock_retard_on_hot_day(m8):
    hot = Weather(temperature=45.0)
    ecu = make_base_ecu(m8)
    advanced = ecu.with_ve()
    advanced.spark = ecu.spark + 4.0
    point = [SteadyState(rpm=2500, map_kpa=95, settle_s=1.5, hold_s=1.0)]
    log, truth = simulate_plan(m8, advanced, point, weather=hot)
    assert log["knock_retard_rear"].values.max() > 3.0
    assert log["knock_retard_rear"].values.max() <= 12.0
    unchecked = advanced.with_features(knock_retard=False)
    log_off, truth_off = simulate_plan(m8, unchecked, point, weather=hot)
    assert np.all(log_off["knock_retard_rear"].values == 0.0)
    assert truth_off["knock_intensity_rear"].values[-1] > 3.0


def test_every_feature_can_be_switched_off(m8):
    features = EcuFeatures().only()
    ecu = make_base_ecu(m8).with_features(features)
    log, _ = _tip_in(m8, ecu)
    for name in (
        "accel_enrichment",
        "decel_enleanment",
        "closed_loop_trim_front",
        "knock_retard_front",
    ):
        assert np.all(log[name].values == 0.0), name


def test_feature_names_checked():
    with pytest.raises(ValueError, match="closed_loop"):
        EcuFeatures().only("closed_lop")
    with pytest.raises(ValueError, match="closed_loop_limit"):
        EcuFeatures(closed_loop_limit=1.5)


# ---------------------------------------------------------------------------
# Sensor options
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(("reading", "value"), [("zero", 0.0), ("rail", 1.6)])
def test_sensor_warm_up_reading(m8, reading, value):
    sensor = WidebandSensor(warmup_s=1.0, warmup_reading=reading)
    ecu = make_base_ecu(m8)
    plan = named_plan("step", m8, ecu)
    log, _ = simulate_plan(m8, ecu, plan, sensor=sensor)
    cold = log["time"].values < 1.0
    assert np.all(log["afr_front"].values[cold] == value * 14.7)
    assert np.all(log["afr_front"].values[~cold] > 9.0)


def test_sensor_bias_shifts_reading(m8):
    ecu = make_base_ecu(m8)
    point = [SteadyState(rpm=3000, map_kpa=60, settle_s=1.0, hold_s=4.0)]
    biased = WidebandSensor(bias=0.03)
    log, truth = simulate_plan(m8, ecu, point, sensor=biased, seed=1)
    error = log["afr_front"].values / 14.7 / truth["lambda_front"].values
    # 250 samples of 1 % noise: the mean is within 0.3 % of the bias.
    assert error[100:].mean() == pytest.approx(1.03, abs=0.003)


def test_sensor_noise_about_one_percent(m8):
    ecu = make_base_ecu(m8)
    point = [SteadyState(rpm=3000, map_kpa=60, settle_s=1.0, hold_s=4.0)]
    log, truth = simulate_plan(m8, ecu, point, seed=1)
    error = log["afr_front"].values / 14.7 / truth["lambda_front"].values
    assert 0.008 < error[100:].std() < 0.012


def test_invalid_sensor_option():
    with pytest.raises(ValueError, match="warmup_reading"):
        WidebandSensor(warmup_reading="nan")


# ---------------------------------------------------------------------------
# Plans, names, seeds and pacing
# ---------------------------------------------------------------------------


def test_unknown_names_list_valid_ones(m8):
    with pytest.raises(ValueError, match="dynojet-250i-motorcycle"):
        get_dyno("superflow")
    with pytest.raises(ValueError, match="steady-state"):
        named_plan("drag-race", m8, make_base_ecu(m8))


def test_invalid_plan_steps():
    with pytest.raises(ValueError, match="exactly one"):
        SteadyState(rpm=2000)
    with pytest.raises(ValueError, match="step_at_s"):
        StepThrottle(rpm=2000, start_throttle=5, end_throttle=50, step_at_s=5)


def test_all_features_same_seed_same_bytes(m8):
    ecu = make_base_ecu(m8, ve_error=(0.08, 0.15), seed=3)
    ecu = ecu.with_features(closed_loop=True)
    plan = named_plan("step", m8, ecu)
    sensor = WidebandSensor(warmup_s=0.5, bias=0.01)
    runs = [
        simulate_plan(m8, ecu, plan, seed=5, sensor=sensor, tyre_slip=True)
        for _ in range(2)
    ]
    for first, second in zip(runs[0], runs[1], strict=True):
        assert bytes(first.to_netcdf()) == bytes(second.to_netcdf())


def test_realtime_pacing(m8):
    ecu = make_base_ecu(m8)
    point = SteadyState(rpm=2000, map_kpa=50, settle_s=0.2, hold_s=0.2)
    started = wall_clock.perf_counter()
    simulate_pull(m8, ecu, point, realtime=True)
    assert wall_clock.perf_counter() - started >= 0.39


def test_slow_tip_in_still_enriches(m8):
    # A 0.3 s twist adds about 0.001 per 1 ms step, below the cut to
    # zero; it must build up anyway.
    step = StepThrottle(
        rpm=2500, start_throttle=10, end_throttle=40, ramp_s=0.3
    )
    log, _ = simulate_plan(m8, make_base_ecu(m8), [step])
    assert log["accel_enrichment"].max() > 0.05


def test_chained_points_run_continuously(m8):
    ecu = make_base_ecu(m8)
    plan = named_plan("steady-state", m8, ecu)[:20]
    log, truth = simulate_plan(m8, ecu, plan, seed=2)
    # One stretch of running: no jump in drum speed between points.
    assert set(np.unique(log["segment"].values)) == {0}
    jump = np.abs(np.diff(log["drum_speed"].values)).max()
    assert jump < 0.5, f"drum speed jumps {jump:.2f} m/s between samples"
    # Every point is held at its speed and MAP by the end of its time.
    samples = log.sizes["time"] // len(plan)
    for k, point in enumerate(plan):
        last = (k + 1) * samples - 1
        rpm = float(log["engine_speed"][last])
        map_kpa = float(log["manifold_pressure"][last])
        assert abs(rpm - point.rpm) < 50, (point, rpm)
        assert abs(map_kpa - point.map_kpa) < 1.0, (point, map_kpa)
    # The wideband still shows the previous point after each move.
    assert float(truth["transport_delay"].min()) > 0.05


def test_sensor_delay_scale(m8):
    ecu = make_base_ecu(m8)
    step = [SteadyState(rpm=2000, map_kpa=50)]
    _, near = simulate_plan(m8, ecu, step, sensor=WidebandSensor())
    _, far = simulate_plan(
        m8, ecu, step, sensor=WidebandSensor(delay_scale=3.0)
    )
    dead = 0.08
    ratio = (far["transport_delay"].values - dead) / (
        near["transport_delay"].values - dead
    )
    np.testing.assert_allclose(ratio, 3.0, rtol=1e-9)
    with pytest.raises(ValueError, match="delay_scale"):
        WidebandSensor(delay_scale=0.0)


def test_chained_point_needs_both_start_values():
    with pytest.raises(ValueError, match="from_rpm and from_throttle"):
        SteadyState(rpm=2000, map_kpa=50, from_rpm=1500)
    with pytest.raises(ValueError, match="from_throttle"):
        SteadyState(rpm=2000, map_kpa=50, from_rpm=1500, from_throttle=120)
