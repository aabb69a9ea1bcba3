"""Physics invariants of the virtual dyno, with stated tolerances."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dynoai_lab.analysis.wideband import align_to_operating_point
from dynoai_lab.ecu import harley_delphi_axes, make_base_ecu
from dynoai_lab.sim import (
    CoastDown,
    SteadyState,
    Sweep,
    Weather,
    engine_names,
    engine_record,
    fit_coast_down,
    get_dyno,
    get_engine,
    kernel,
    physics,
    reachable_cells,
    simulate_plan,
    simulate_pull,
    simulation_summary,
    steady_state_plan,
    transport_delay,
)
from dynoai_lab.sim.sensor import exhaust_transport_delay

#: SAE J1349 reference weather, at which the rated figures apply.
REFERENCE = Weather(pressure=99.0, temperature=25.0)


@pytest.fixture(scope="module")
def m8():
    return get_engine("m8-114")


@pytest.fixture(scope="module")
def kilohertz_pull(m8):
    ecu = make_base_ecu(m8, ve_error=(0.08, 0.15), seed=2)
    sweep = Sweep(throttle=100, start_rpm=2000, end_rpm=5400, settle_s=0.5)
    return simulate_pull(m8, ecu, sweep, seed=3, sample_rate_hz=1000.0)


@pytest.fixture(scope="module")
def held(m8):
    ecu = make_base_ecu(m8)
    plan = [
        SteadyState(rpm=rpm, map_kpa=map_kpa, settle_s=2.0, hold_s=0.5)
        for rpm, map_kpa in ((1500, 50), (3000, 70), (4500, 95))
    ]
    return simulate_plan(m8, ecu, plan, seed=4)


def _drum_terms(m8, dyno, log, truth):
    ratio = dyno.radius / m8.tyre_radius
    omega_d = log["drum_speed"].values / dyno.radius
    alpha_d = truth["drum_acceleration"].values / dyno.radius
    engine_ratio = ratio * m8.overall_ratio(None)
    return ratio, omega_d, alpha_d, engine_ratio


# ---------------------------------------------------------------------------
# Drum and driveline
# ---------------------------------------------------------------------------


def test_drum_power_is_inertia_alpha_omega(m8, kilohertz_pull):
    # P = I·α·ω + losses + absorber, with α from a central difference of
    # the 1 kHz drum speed. The Euler step makes α piecewise constant,
    # so the difference is exact to round-off except where α changes
    # between two steps; 0.1 % covers those.
    log, truth = kilohertz_pull
    dyno = get_dyno()
    omega = log["drum_speed"].values / dyno.radius
    alpha = np.gradient(omega, log["time"].values)
    expected = (
        dyno.inertia * alpha + dyno.loss_torque(omega)
    ) * omega + truth["absorber_power"].values
    # The absorber lets go at the end of settling (0.5 s), a jump in α
    # that a central difference smears over two samples.
    time = log["time"].values
    inner = (np.abs(time - 0.5) > 0.0025) & (time > 0.005)
    inner[-5:] = False
    np.testing.assert_allclose(
        expected[inner], truth["drum_power"].values[inner], rtol=1e-3
    )


def test_engine_power_balances_drum_each_step(m8, kilohertz_pull):
    # η·T·ω_e = I_eq·α·ω_d + (T_loss + T_abs + F_roll·r_d)·ω_d at every
    # step: the drum equation the kernel solves, to round-off.
    log, truth = kilohertz_pull
    dyno = get_dyno()
    ratio, omega_d, alpha_d, engine_ratio = _drum_terms(m8, dyno, log, truth)
    inertia = (
        dyno.inertia
        + m8.wheel_inertia * ratio**2
        + m8.driveline_efficiency * m8.engine_inertia * engine_ratio**2
    )
    engine_power = (
        m8.driveline_efficiency
        * truth["engine_torque"].values
        * log["engine_speed"].values
        * (math.pi / 30.0)
    )
    losses = (
        dyno.loss_torque(omega_d)
        + truth["absorber_power"].values / omega_d
        + dyno.tyre_rolling_force * dyno.radius
    ) * omega_d
    np.testing.assert_allclose(
        engine_power, inertia * alpha_d * omega_d + losses, rtol=1e-9
    )


def test_steady_state_torque_speed_equals_drum_power(m8, held):
    # Held by the absorber, the engine's shaft power after the
    # driveline equals the power into the absorber, drum losses and
    # tyre rolling. After 2 s the speed controller's residual
    # acceleration is below 1e-4 of the drive, which sets rtol.
    log, truth = held
    dyno = get_dyno()
    segment = log["segment"].values
    end = np.append(segment[1:] != segment[:-1], True)
    omega_d = log["drum_speed"].values[end] / dyno.radius
    engine_power = (
        m8.driveline_efficiency
        * truth["engine_torque"].values[end]
        * log["engine_speed"].values[end]
        * (math.pi / 30.0)
    )
    drum = (
        truth["absorber_power"].values[end]
        + dyno.loss_torque(omega_d) * omega_d
        + dyno.tyre_rolling_force * log["drum_speed"].values[end]
    )
    np.testing.assert_allclose(engine_power, drum, rtol=1e-4)
    assert np.all(truth["absorber_power"].values[end] > 0)


def test_coast_down_reproduces_loss_model(m8):
    dyno = get_dyno()
    ecu = make_base_ecu(m8)
    log, truth = simulate_plan(m8, ecu, [CoastDown(40.0, 10.0)], seed=1)
    ratio = dyno.radius / m8.tyre_radius
    inertia = dyno.inertia + m8.wheel_inertia * ratio**2
    fit = fit_coast_down(
        log["time"].values, log["drum_speed"].values, inertia, dyno.radius
    )
    # The fit differentiates a 50 Hz trace of an Euler integration with
    # 1 ms steps: the constant term to 0.5 %, and the small windage
    # term (0.8 N·m of about 11 N·m at 175 rad/s) to 3 %.
    constant = dyno.bearing_torque + dyno.tyre_rolling_force * dyno.radius
    assert fit["constant_torque"] == pytest.approx(constant, rel=0.005)
    assert fit["windage_coefficient"] == pytest.approx(
        dyno.windage_coefficient, rel=0.03
    )
    assert np.all(truth["engine_torque"].values != 0)
    assert np.all(truth["wheel_power"].values == 0)


def test_tyre_slip_raises_engine_speed(m8):
    ecu = make_base_ecu(m8)
    point = [SteadyState(rpm=3000, map_kpa=90, settle_s=1.5, hold_s=0.5)]
    log, truth = simulate_plan(m8, ecu, point, tyre_slip=True)
    slip = truth["tyre_slip"].values[-1]
    force = truth["tyre_force"].values[-1]
    # Quasi-static slip: force over the tyre's slip stiffness.
    assert slip == pytest.approx(force / m8.tyre_slip_stiffness, rel=1e-3)
    assert 0.005 < slip < 0.05


# ---------------------------------------------------------------------------
# Engine sets against their cited figures
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["m8-114", "tc-103", "i4-1000"])
def test_peaks_within_ten_percent_of_cited(name):
    # The done-when band: peak crank power and torque within 10 % of
    # the published figures at SAE J1349 reference weather.
    engine = get_engine(name)
    ecu = make_base_ecu(engine)
    sweep = Sweep(
        throttle=100,
        start_rpm=engine.idle_rpm + 500,
        end_rpm=engine.rev_limit_rpm - 100,
    )
    log, truth = simulate_pull(engine, ecu, sweep, weather=REFERENCE)
    summary = simulation_summary(log, truth)
    record = engine_record(engine)
    power_hp = summary["peak_power_hp"]
    if record["rated_power_basis"] == "rear wheel":
        # A chassis-dyno figure: compare power after the driveline.
        power_hp = float(truth["wheel_power"].max()) / 745.6999
    assert power_hp == pytest.approx(record["rated_power_hp"], rel=0.10)
    assert summary["peak_torque_lbft"] == pytest.approx(
        record["rated_torque_lbft"], rel=0.10
    )


def test_weather_changes_power(m8):
    ecu = make_base_ecu(m8)
    sweep = Sweep(throttle=100, start_rpm=3000, end_rpm=4000)
    dense = Weather(pressure=101.3, temperature=15.0)
    thin = Weather(pressure=85.0, temperature=35.0, relative_humidity=60.0)
    _, truth_dense = simulate_pull(m8, ecu, sweep, weather=dense)
    _, truth_thin = simulate_pull(m8, ecu, sweep, weather=thin)
    ratio = (
        truth_thin["engine_torque"].values.max()
        / truth_dense["engine_torque"].values.max()
    )
    # Density falls by about 20 %; brake torque by more, as friction
    # stays.
    assert ratio < 0.85


def test_engine_record_has_required_fields():
    for name in engine_names():
        record = engine_record(get_engine(name))
        for key in (
            "displacement_cm3",
            "bore_mm",
            "stroke_mm",
            "rated_power_hp",
            "rated_torque_lbft",
            "rev_limit_rpm",
            "gear_ratios",
            "tyre_size",
            "source",
            "validity",
        ):
            assert record[key], (name, key)


# ---------------------------------------------------------------------------
# Coverage of the real Harley tune's VE axes
# ---------------------------------------------------------------------------


def test_steady_state_plan_covers_reachable_cells(m8):
    (rpm_axis, map_axis), _ = harley_delphi_axes()
    cells = reachable_cells((rpm_axis, map_axis), m8)
    reachable = cells["reachable"].values
    plan = steady_state_plan((rpm_axis, map_axis), m8)
    assert len(plan) == reachable.sum()
    log, _ = simulate_plan(m8, make_base_ecu(m8), plan, seed=1)
    rpm = log["engine_speed"].values
    map_kpa = log["manifold_pressure"].values
    reached = np.zeros_like(reachable)
    for i, x in enumerate(rpm_axis):
        for j, y in enumerate(map_axis):
            near = (np.abs(rpm - x) <= 25.0) & (np.abs(map_kpa - y) <= 1.0)
            # At least 0.5 s (25 samples at 50 Hz) at the cell.
            reached[i, j] = near.sum() >= 25
    share = (reached & reachable).sum() / reachable.sum()
    assert share >= 0.90
    # Every excluded cell has a reason.
    assert np.all(cells["reason"].values[~reachable] >= 0)


def test_unreachable_reasons_make_sense(m8):
    cells = reachable_cells(([500.0, 3000.0, 5600.0], [10.0, 60.0, 104.4]), m8)
    reason = cells["reason"].values
    assert reason[0, 1] == 0  # below idle
    assert reason[2, 1] == 1  # at the rev limit
    assert reason[1, 2] == 2  # above wide-open MAP
    assert reason[1, 0] in (3, 4)  # closed-throttle or negative torque
    assert reason[1, 1] == -1


# ---------------------------------------------------------------------------
# Compiled step against the vector physics
# ---------------------------------------------------------------------------


def test_kernel_constants_match_sources():
    from dynoai_lab.sim import sensor
    from dynoai_lab.units import R_AIR, ZERO_CELSIUS

    assert kernel.R_AIR == R_AIR
    assert kernel.ZERO_CELSIUS == ZERO_CELSIUS
    assert kernel.GASOLINE_LHV == physics.GASOLINE_LHV
    assert kernel.BEST_POWER_LAMBDA == physics.BEST_POWER_LAMBDA
    assert kernel.SPARK_LOSS_PER_DEG2 == physics.SPARK_LOSS_PER_DEG2
    assert kernel.SENSOR_DEAD_TIME == sensor.DEAD_TIME
    assert kernel.EXHAUST_VOLUME_RATIO == sensor.EXHAUST_VOLUME_RATIO
    assert (kernel.DELAY_MIN, kernel.DELAY_MAX) == sensor.DELAY_RANGE


def test_kernel_scalars_match_vectors(m8):
    p = np.zeros(kernel.N_PARAMETERS)
    p[kernel.P_KNOCK_MARGIN] = m8.knock_margin
    p[kernel.P_RATED_RPM] = m8.rated_power_rpm
    p[kernel.P_INTAKE_C] = 40.0
    for rpm, map_kpa in ((1000, 30), (3000, 95), (5500, 100)):
        border = physics.knock_border_advance(
            rpm,
            map_kpa,
            40.0,
            rated_power_rpm=m8.rated_power_rpm,
            knock_margin=m8.knock_margin,
            cylinder_offset=-1.5,
        )
        assert kernel.knock_border(rpm, map_kpa, p, -1.5) == pytest.approx(
            float(border), rel=1e-14
        )
        delay = exhaust_transport_delay(rpm, map_kpa, 3.2)
        assert kernel.transport_delay(rpm, map_kpa, 3.2) == pytest.approx(
            float(delay), rel=1e-14
        )


def test_map_step_rests_at_static_map(m8):
    p = np.zeros(kernel.N_PARAMETERS)
    p[kernel.P_AMBIENT] = 101.325
    p[kernel.P_FLOW_RPM] = m8.throttle_flow_rpm
    p[kernel.P_LEAK] = m8.throttle_leak_fraction
    p[kernel.P_DISP] = m8.displacement
    p[kernel.P_MAN_VOL] = m8.manifold_volume
    for throttle in (5.0, 30.0, 100.0):
        map_kpa = 50.0
        for _ in range(3000):
            map_kpa = kernel.map_step(map_kpa, throttle, 3000.0, 0.001, p)
        static = physics.static_manifold_pressure(
            throttle,
            3000.0,
            101.325,
            throttle_flow_rpm=m8.throttle_flow_rpm,
            leak_fraction=m8.throttle_leak_fraction,
        )
        # 3 s is many filling time constants (about 25 ms).
        assert map_kpa == pytest.approx(float(static), rel=1e-9)


def test_map_lags_throttle_step(m8):
    ecu = make_base_ecu(m8)
    from dynoai_lab.sim import StepThrottle

    step = StepThrottle(
        rpm=2500, start_throttle=10, end_throttle=60, ramp_s=0.0
    )
    log, _ = simulate_plan(m8, ecu, [step], sample_rate_hz=1000.0)
    time = log["time"].values
    map_kpa = log["manifold_pressure"].values
    final = map_kpa[-1]
    # The throttle opens within 1 ms at 1 s; the manifold fills with a
    # time constant of about 25 ms at 2500 rpm, so 5 ms later MAP is
    # still far below its end value, and after 0.3 s within 1 %.
    assert map_kpa[np.searchsorted(time, 1.006)] < final - 5.0
    assert map_kpa[np.searchsorted(time, 1.3)] == pytest.approx(
        final, rel=0.01
    )
    assert map_kpa.max() <= 101.325


def test_wall_film_settles_to_injected(m8):
    delivered, film = physics.wall_film_step(0.0, 1e-3, 0.3, 0.2, 0.001)
    for _ in range(5000):
        delivered, film = physics.wall_film_step(film, 1e-3, 0.3, 0.2, 0.001)
    # After 25 time constants the film holds X·τ·ṁ and passes ṁ.
    assert film == pytest.approx(0.3 * 0.2 * 1e-3, rel=1e-9)
    assert delivered == pytest.approx(1e-3, rel=1e-9)


# ---------------------------------------------------------------------------
# Sensor and delay against the analysis
# ---------------------------------------------------------------------------


def test_delay_documented_range():
    for name in engine_names():
        engine = get_engine(name)
        rpm, map_kpa = np.meshgrid(
            np.linspace(engine.idle_rpm, engine.rev_limit_rpm, 30),
            np.linspace(10, 105, 20),
            indexing="ij",
        )
        delay = transport_delay(engine, rpm, map_kpa)
        assert delay.min() >= 0.05
        assert delay.max() <= 1.0


def test_analysis_alignment_undoes_sensor_delay(m8):
    # A fuel step at a held point: the analysis's default delay moves
    # the noise-free sensor trace back onto the burned lambda, except
    # for the sensor's 0.1 s lag.
    from dynoai_lab.sim import StepThrottle

    ecu = make_base_ecu(m8).with_features(accel_enrichment=False)
    step = StepThrottle(
        rpm=3000, start_throttle=30, end_throttle=31, duration_s=4.0
    )
    log, truth = simulate_plan(m8, ecu, [step], sample_rate_hz=1000.0)
    time = log["time"].values
    aligned = align_to_operating_point(
        time,
        truth["sensor_lambda_front"].values,
        truth["transport_delay"].values,
    )
    burned = truth["lambda_front"].values
    usable = np.isfinite(aligned)
    # Cross-correlate the two derivatives: the best lag is the sensor's
    # first-order lag time constant, not the transport delay.
    a = np.gradient(aligned[usable])
    b = np.gradient(burned[usable])
    lags = np.arange(-300, 301)
    scores = [np.dot(np.roll(b, lag), a) for lag in lags]
    best = lags[int(np.argmax(scores))] / 1000.0
    assert 0.0 <= best <= 0.15


def test_kernel_sensor_matches_vector_reference(m8, kilohertz_pull):
    from dynoai_lab.sim.sensor import WidebandSensor

    log, truth = kilohertz_pull
    sensor = WidebandSensor()
    reference = sensor.respond(
        log["time"].values,
        truth["lambda_front"].values,
        truth["transport_delay"].values,
        0.001,
    )
    np.testing.assert_allclose(
        truth["sensor_lambda_front"].values, reference, rtol=1e-12
    )
