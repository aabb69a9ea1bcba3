"""Compiled time step of the virtual dyno.

One function, :func:`integrate`, advances engine, manifold, ECU,
wideband sensor and drum through one test-plan step at a fixed time
step and returns every trace. It is compiled by numba to machine code
on plain float arrays, because a Python loop over 10 000 steps per
simulated second is too slow for real-time widgets and batch tuning.
The equations are the scalar forms of :mod:`dynoai_lab.sim.physics`;
``tests/test_sim_kernel.py`` checks one against the other.

Inputs are packed into one float array whose slots are the ``P_*``
constants below, and traces come back as rows ``T_*`` of a 2-D array.
:mod:`dynoai_lab.sim.pull` fills the one and unpacks the other.

Compiled code is cached on disk next to this file (numba
``cache=True``), so only the first run after an install or a change
pays the compile time (4.8 s on the machine of ``docs/benchmarks.md``).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

# ---------------------------------------------------------------------------
# Parameter slots
# ---------------------------------------------------------------------------

_PARAMETER_NAMES = (
    # Engine and weather
    "CYLINDER_VOLUME", "CYLINDERS_PER_SIDE", "DISPLACEMENT", "STROKE",
    "EFFICIENCY", "STOICHIOMETRIC_AFR", "THROTTLE_FLOW_RPM",
    "LEAK_FRACTION", "MANIFOLD_VOLUME", "AMBIENT_KPA", "INTAKE_C",
    "DRY_FRACTION", "COOLANT_C", "IDLE_RPM", "RATED_POWER_RPM",
    "BACK_PRESSURE", "INJECTOR_FLOW", "INJECTOR_DEAD_TIME",
    "FILM_FRACTION", "FILM_TIME_CONSTANT", "KNOCK_MARGIN",
    "REAR_KNOCK_OFFSET",
    # Driveline and drum
    "ENGINE_RATIO", "WHEEL_RATIO", "DRIVELINE_EFFICIENCY",
    "ENGINE_INERTIA", "WHEEL_INERTIA", "DRUM_INERTIA", "DRUM_RADIUS",
    "BEARING_TORQUE", "WINDAGE", "ROLLING_FORCE", "ABSORBER_MAX",
    "ABSORBER_KNEE", "SLIP_STIFFNESS",
    # Sensor
    "DELAY_VOLUME_RATIO", "SENSOR_TIME_CONSTANT", "SENSOR_READY_S",
    # ECU
    "ECU_INJECTOR_FLOW", "ECU_DEAD_TIME", "HAS_SPARK_TABLE",
    "AE_ON", "AE_THRESHOLD", "AE_GAIN", "AE_LIMIT", "AE_DECAY",
    "DC_ON", "DC_THRESHOLD", "DC_GAIN", "DC_DECAY", "DC_CUT_RPM",
    "CLOSED_THROTTLE", "CL_ON", "CL_WINDOW", "CL_MAX_MAP", "CL_MAX_RPM",
    "CL_MIN_COOLANT", "CL_GAIN", "CL_LIMIT", "AD_ON", "AD_TIME_CONSTANT",
    "AD_LIMIT", "KR_ON", "KR_STEP", "KR_RECOVERY", "KR_MAX", "RL_ON",
    "RL_RPM", "RL_HYSTERESIS",
    # Run
    "STEP", "MODE", "START_RPM", "END_RPM", "SWEEP_ALPHA",
    "SETTLE_STEPS", "MAX_STEPS", "STALL_STEPS", "MIN_ALPHA",
    "HOLD_OMEGA", "HOLD_GAIN", "LOAD_TORQUE", "END_OMEGA",
    "TIME_OFFSET", "ADAPT_FRONT", "ADAPT_REAR",
)  # fmt: skip

#: Run modes of :func:`integrate`: a sweep (free, or absorber-limited
#: to a rate), a held drum speed, a set absorber load, and a coast-down
#: with the clutch out.
MODE_SWEEP, MODE_HOLD, MODE_LOAD, MODE_COAST = 0, 1, 2, 3

_TRACE_NAMES = (
    "rpm", "map", "throttle", "drum_omega", "drum_alpha", "ve_ecu_front",
    "ve_ecu_rear", "afr_target", "ve_true_front", "ve_true_rear",
    "lambda_front", "lambda_rear", "sensor_front", "sensor_rear",
    "delay", "torque", "spark_front", "spark_rear", "retard_front",
    "retard_rear", "knock_front", "knock_rear", "accel_enrichment",
    "decel_enleanment", "trim_front", "trim_rear", "adaptive_front",
    "adaptive_rear", "pulse_front", "pulse_rear", "absorber_torque",
    "drum_loss_torque", "slip", "tyre_force", "film_front",
    "film_rear", "closed_loop",
)  # fmt: skip

PARAMETERS = {name: k for k, name in enumerate(_PARAMETER_NAMES)}
TRACES = {name: k for k, name in enumerate(_TRACE_NAMES)}
N_PARAMETERS = len(_PARAMETER_NAMES)
N_TRACES = len(_TRACE_NAMES)

# Numba reads module-level integers as compile-time constants.
(
    P_CYL_VOL,
    P_CYL_PER_SIDE,
    P_DISP,
    P_STROKE,
    P_EFF,
    P_STOICH,
    P_FLOW_RPM,
    P_LEAK,
    P_MAN_VOL,
    P_AMBIENT,
    P_INTAKE_C,
    P_DRY,
    P_COOLANT,
    P_IDLE,
    P_RATED_RPM,
    P_BACK_PRESSURE,
    P_INJ_FLOW,
    P_INJ_DEAD,
    P_FILM_X,
    P_FILM_TAU,
    P_KNOCK_MARGIN,
    P_REAR_KNOCK,
    P_ENGINE_RATIO,
    P_WHEEL_RATIO,
    P_DRIVELINE_EFF,
    P_ENGINE_INERTIA,
    P_WHEEL_INERTIA,
    P_DRUM_INERTIA,
    P_DRUM_RADIUS,
    P_BEARING,
    P_WINDAGE,
    P_ROLLING,
    P_ABS_MAX,
    P_ABS_KNEE,
    P_SLIP_STIFF,
    P_DELAY_RATIO,
    P_SENSOR_TAU,
    P_SENSOR_READY,
    P_ECU_FLOW,
    P_ECU_DEAD,
    P_HAS_SPARK,
    P_AE_ON,
    P_AE_THR,
    P_AE_GAIN,
    P_AE_LIMIT,
    P_AE_DECAY,
    P_DC_ON,
    P_DC_THR,
    P_DC_GAIN,
    P_DC_DECAY,
    P_DC_CUT_RPM,
    P_CLOSED_TPS,
    P_CL_ON,
    P_CL_WINDOW,
    P_CL_MAX_MAP,
    P_CL_MAX_RPM,
    P_CL_MIN_CLT,
    P_CL_GAIN,
    P_CL_LIMIT,
    P_AD_ON,
    P_AD_TAU,
    P_AD_LIMIT,
    P_KR_ON,
    P_KR_STEP,
    P_KR_RECOVERY,
    P_KR_MAX,
    P_RL_ON,
    P_RL_RPM,
    P_RL_HYST,
    P_STEP,
    P_MODE,
    P_START_RPM,
    P_END_RPM,
    P_SWEEP_ALPHA,
    P_SETTLE_STEPS,
    P_MAX_STEPS,
    P_STALL_STEPS,
    P_MIN_ALPHA,
    P_HOLD_OMEGA,
    P_HOLD_GAIN,
    P_LOAD_TORQUE,
    P_END_OMEGA,
    P_TIME_OFFSET,
    P_ADAPT_F,
    P_ADAPT_R,
) = range(N_PARAMETERS)
(
    T_RPM, T_MAP, T_THROTTLE, T_DRUM_OMEGA, T_DRUM_ALPHA, T_VE_ECU_F,
    T_VE_ECU_R, T_AFR, T_VE_TRUE_F, T_VE_TRUE_R, T_LAMBDA_F, T_LAMBDA_R,
    T_SENSOR_F, T_SENSOR_R, T_DELAY, T_TORQUE, T_SPARK_F, T_SPARK_R,
    T_RETARD_F, T_RETARD_R, T_KNOCK_F, T_KNOCK_R, T_AE, T_DECEL,
    T_TRIM_F, T_TRIM_R, T_ADAPT_F, T_ADAPT_R, T_PULSE_F, T_PULSE_R,
    T_ABSORBER, T_DRUM_LOSS, T_SLIP, T_TYRE_FORCE, T_FILM_F, T_FILM_R,
    T_CLOSED_LOOP,
) = range(N_TRACES)  # fmt: skip

# Constants repeated from physics, sensor and units so the compiled code
# sees plain numbers; tests compare them with their sources.
R_AIR = 287.05
ZERO_CELSIUS = 273.15
GASOLINE_LHV = 43.0e6
BEST_POWER_LAMBDA = 0.88
SPARK_LOSS_PER_DEG2 = 5.0e-4
SENSOR_DEAD_TIME = 0.08
EXHAUST_VOLUME_RATIO = 2.5
DELAY_MIN, DELAY_MAX = 0.05, 1.0
#: Burned lambda reported when a cylinder gets no fuel: the exhaust is
#: air, and 5 is far beyond any sensor's lean rail [1].
LAMBDA_NO_FUEL = 5.0
# Enrichment and enleanment below this are logged as exactly 0 [1].
_INACTIVE = 0.005
_RAD_PER_RPM = 2.0 * math.pi / 60.0


# ---------------------------------------------------------------------------
# Scalar physics
# ---------------------------------------------------------------------------


@njit(cache=True)
def lookup(xs, ys, z, x, y):
    """Bilinear lookup clamped at the edges, as ecu.bilinear_lookup."""
    nx = xs.size
    ny = ys.size
    x = min(max(x, xs[0]), xs[nx - 1])
    y = min(max(y, ys[0]), ys[ny - 1])
    i = min(max(np.searchsorted(xs, x, side="right") - 1, 0), nx - 2)
    j = min(max(np.searchsorted(ys, y, side="right") - 1, 0), ny - 2)
    t = (x - xs[i]) / (xs[i + 1] - xs[i])
    u = (y - ys[j]) / (ys[j + 1] - ys[j])
    return (
        (1.0 - t) * (1.0 - u) * z[i, j]
        + t * (1.0 - u) * z[i + 1, j]
        + (1.0 - t) * u * z[i, j + 1]
        + t * u * z[i + 1, j + 1]
    )


@njit(cache=True)
def lambda_factor(lam):
    """Scalar form of physics.lambda_torque_factor."""
    if lam < 0.5 or lam > 1.7:
        return 0.0
    delta = lam - BEST_POWER_LAMBDA
    curvature = 2.5 if delta > 0.0 else 1.5
    return min(max(1.0 - curvature * delta * delta, 0.0), 1.0)


@njit(cache=True)
def throttle_area(throttle, leak):
    """Scalar form of physics.throttle_area_fraction."""
    opening = min(max(throttle, 0.0), 100.0)
    return leak + (1.0 - leak) * (
        1.0 - math.cos(0.5 * math.pi * opening / 100.0)
    )


@njit(cache=True)
def static_map(throttle, rpm, p):
    """Scalar form of physics.static_manifold_pressure."""
    g = throttle_area(throttle, p[P_LEAK]) * p[P_FLOW_RPM] / max(rpm, 1.0)
    return p[P_AMBIENT] * g / math.sqrt(1.0 + g * g)


@njit(cache=True)
def mbt_advance(rpm, map_kpa):
    """Scalar form of physics.mbt_spark_advance."""
    load = min(max(map_kpa / 100.0, 0.0), 1.0)
    speed = min(max(rpm / 5000.0, 0.0), 1.0)
    return 15.0 + 15.0 * speed + 15.0 * (1.0 - load)


@njit(cache=True)
def knock_border(rpm, map_kpa, p, offset):
    """Scalar form of physics.knock_border_advance."""
    load = min(max(map_kpa / 100.0, 0.0), 1.2)
    margin = (
        p[P_KNOCK_MARGIN]
        + 40.0 * (1.0 - load)
        + 6.0 * rpm / p[P_RATED_RPM]
        - 0.1 * (p[P_INTAKE_C] - 35.0)
        + offset
    )
    return mbt_advance(rpm, map_kpa) + margin


@njit(cache=True)
def transport_delay(rpm, map_kpa, volume_ratio):
    """Scalar form of sensor.exhaust_transport_delay [s]."""
    flow = (
        (max(rpm, 100.0) / 120.0)
        * (max(map_kpa, 1.0) / 101.325)
        * EXHAUST_VOLUME_RATIO
    )
    delay = SENSOR_DEAD_TIME + volume_ratio / flow
    return min(max(delay, DELAY_MIN), DELAY_MAX)


@njit(cache=True)
def map_step(map_kpa, throttle, rpm, step, p):
    """Advance MAP one step along physics.manifold_pressure_rate.

    Exponential Euler: the rate is linearised about the current MAP, so
    the step stays stable at wide-open throttle, where the throttle
    flow's slope against MAP grows without bound.
    """
    ambient = p[P_AMBIENT]
    ratio = min(max(map_kpa / ambient, 0.0), 0.99999)
    root = math.sqrt(1.0 - ratio * ratio)
    flow = throttle_area(throttle, p[P_LEAK]) * p[P_FLOW_RPM]
    n = max(rpm, 1.0)
    scale = p[P_DISP] / (120.0 * p[P_MAN_VOL])
    rate = scale * (flow * ambient * root - n * map_kpa)
    slope = -scale * (flow * ratio / root + n)
    updated = map_kpa + rate * (1.0 - math.exp(slope * step)) / (-slope)
    return min(max(updated, 0.5), ambient)


# ---------------------------------------------------------------------------
# The time step
# ---------------------------------------------------------------------------


@njit(cache=True)
def integrate(p, throttle, tables):
    """Integrate one test-plan step; return (traces, number of steps).

    Parameters
    ----------
    p : numpy.ndarray
        Parameters in the slots of :data:`PARAMETERS`.
    throttle : numpy.ndarray
        Throttle position at each step [%], at least ``MAX_STEPS + 1``
        long.
    tables : tuple of numpy.ndarray
        ``(ve_front, ve_rear, afr, spark, true_front, true_rear)`` each
        as ``rpm axis, map axis, values``, 18 arrays in all. The spark
        arrays are ignored unless ``HAS_SPARK_TABLE`` is 1.

    Returns
    -------
    traces : numpy.ndarray
        Shape ``(N_TRACES, steps)``, rows in the order of
        :data:`TRACES`. Values at step k come from the state at step k,
        before the update to k + 1.
    steps : int
        Steps taken.

    Notes
    -----
    Drum speed advances by explicit Euler, ``ω += α Δt``; MAP by
    :func:`map_step`; the wall film, the sensor lag and the ECU's
    enrichment decays by their exact discrete forms for a constant
    input over the step.
    """
    (
        ve_f_x, ve_f_y, ve_f_z, ve_r_x, ve_r_y, ve_r_z, afr_x, afr_y,
        afr_z, spark_x, spark_y, spark_z, true_f_x, true_f_y, true_f_z,
        true_r_x, true_r_y, true_r_z,
    ) = tables  # fmt: skip
    step = p[P_STEP]
    mode = int(p[P_MODE])
    max_steps = int(p[P_MAX_STEPS])
    settle_steps = int(p[P_SETTLE_STEPS])
    stall_steps = int(p[P_STALL_STEPS])
    coupled = mode != MODE_COAST
    out = np.empty((N_TRACES, max_steps + 1))
    arrival = np.empty(max_steps + 1)

    # Equivalent inertia at the drum and fixed factors.
    inertia = p[P_DRUM_INERTIA] + p[P_WHEEL_INERTIA] * p[P_WHEEL_RATIO] ** 2
    if coupled:
        inertia += (
            p[P_DRIVELINE_EFF] * p[P_ENGINE_INERTIA] * p[P_ENGINE_RATIO] ** 2
        )
    air_per_ve = p[P_CYL_VOL] / (R_AIR * (p[P_INTAKE_C] + ZERO_CELSIUS))
    energy_per_air = GASOLINE_LHV / p[P_STOICH]
    sensor_gain = 1.0
    if p[P_SENSOR_TAU] > 0.0:
        sensor_gain = 1.0 - math.exp(-step / p[P_SENSOR_TAU])

    # State.
    if coupled:
        omega = p[P_START_RPM] * _RAD_PER_RPM / p[P_ENGINE_RATIO]
    else:
        omega = p[P_HOLD_OMEGA]
    start_engine_rpm = p[P_START_RPM] if coupled else p[P_IDLE]
    map_kpa = static_map(throttle[0], start_engine_rpm, p)
    film = np.full(2, -1.0)  # settled on the first step
    retard = np.zeros(2)
    trim = np.zeros(2)
    adaptive = np.array([p[P_ADAPT_F], p[P_ADAPT_R]])
    sensor = np.zeros(2)
    source = 0  # newest source sample that has reached the sensor
    accel = 0.0
    decel = 0.0
    rev_cut = False
    slip = 0.0
    slow_steps = 0
    previous_throttle = throttle[0]
    ae_decay = math.exp(-step / p[P_AE_DECAY])
    dc_decay = math.exp(-step / p[P_DC_DECAY])

    k = 0
    while True:
        time = k * step
        tps = throttle[k]
        if coupled:
            rpm = omega * p[P_ENGINE_RATIO] * (1.0 + slip) / _RAD_PER_RPM
        else:
            rpm = p[P_IDLE]
        rpm_safe = max(rpm, 1.0)
        cycles = rpm_safe / 120.0

        # ECU table lookups.
        ve_ecu_f = lookup(ve_f_x, ve_f_y, ve_f_z, rpm, map_kpa)
        ve_ecu_r = lookup(ve_r_x, ve_r_y, ve_r_z, rpm, map_kpa)
        afr = lookup(afr_x, afr_y, afr_z, rpm, map_kpa)
        mbt = mbt_advance(rpm, map_kpa)
        if p[P_HAS_SPARK] > 0.0:
            spark_table = lookup(spark_x, spark_y, spark_z, rpm, map_kpa)
        else:
            spark_table = mbt
        target_lambda = afr / p[P_STOICH]

        # ECU transient fuel: enrichment on opening, enleanment and cut
        # on closing, rev limiter.
        throttle_rate = (tps - previous_throttle) / step if k > 0 else 0.0
        # Small amounts are cut to zero only while nothing is added, so
        # that a slow opening (a few 0.001 per step) still builds up.
        accel *= ae_decay
        opening = p[P_AE_ON] > 0.0 and throttle_rate > p[P_AE_THR]
        if opening:
            accel += p[P_AE_GAIN] * (tps - previous_throttle)
        accel = min(accel, p[P_AE_LIMIT])
        if accel < _INACTIVE and not opening:
            accel = 0.0
        decel *= dc_decay
        closing = p[P_DC_ON] > 0.0 and throttle_rate < -p[P_DC_THR]
        if closing:
            decel += p[P_DC_GAIN] * (previous_throttle - tps)
        if (
            p[P_DC_ON] > 0.0
            and tps <= p[P_CLOSED_TPS]
            and rpm > p[P_DC_CUT_RPM]
        ):
            decel = 1.0
        decel = min(decel, 1.0)
        if decel < _INACTIVE and not closing:
            decel = 0.0
        if p[P_RL_ON] > 0.0:
            if rpm >= p[P_RL_RPM]:
                rev_cut = True
            elif rpm < p[P_RL_RPM] - p[P_RL_HYST]:
                rev_cut = False
        previous_throttle = tps

        # Closed loop on the ECU's own (noise-free) sensor signal.
        active = (
            p[P_CL_ON] > 0.0
            and time + p[P_TIME_OFFSET] >= p[P_SENSOR_READY]
            and k > 0
            and p[P_COOLANT] >= p[P_CL_MIN_CLT]
            and abs(target_lambda - 1.0) <= p[P_CL_WINDOW]
            and map_kpa <= p[P_CL_MAX_MAP]
            and rpm <= p[P_CL_MAX_RPM]
            and accel == 0.0
            and decel == 0.0
            and not rev_cut
        )
        for c in range(2):
            if active:
                error = sensor[c] / target_lambda - 1.0
                trim[c] += p[P_CL_GAIN] * error * step
                trim[c] = min(max(trim[c], -p[P_CL_LIMIT]), p[P_CL_LIMIT])
                if p[P_AD_ON] > 0.0:
                    moved = trim[c] * step / p[P_AD_TAU]
                    adaptive[c] += moved
                    trim[c] -= moved
                    adaptive[c] = min(
                        max(adaptive[c], -p[P_AD_LIMIT]), p[P_AD_LIMIT]
                    )
            else:
                trim[c] = 0.0

        # Per cylinder: injection, wall film, burned lambda, spark.
        ve_true_f = lookup(true_f_x, true_f_y, true_f_z, rpm, map_kpa)
        ve_true_r = lookup(true_r_x, true_r_y, true_r_z, rpm, map_kpa)
        film_x = p[P_FILM_X] * (0.5 + 0.5 * min(max(map_kpa / 100, 0), 1.2))
        film_tau = p[P_FILM_TAU] * math.sqrt(1000.0 / max(rpm, 100.0))
        film_decay = math.exp(-step / film_tau)
        work = 0.0
        for c in range(2):
            ve_ecu = ve_ecu_f if c == 0 else ve_ecu_r
            ve_true = ve_true_f if c == 0 else ve_true_r
            applied = adaptive[c] if active else 0.0
            fuel = ve_ecu / 100.0 * map_kpa * 1000.0 * air_per_ve / afr
            fuel *= (1.0 + trim[c]) * (1.0 + applied) * (1.0 + accel)
            fuel *= 1.0 - decel
            if rev_cut:
                fuel = 0.0
            pulse = 0.0
            if fuel > 0.0:
                pulse = min(fuel / p[P_ECU_FLOW] + p[P_ECU_DEAD], 1 / cycles)
            injected = p[P_INJ_FLOW] * max(pulse - p[P_INJ_DEAD], 0.0)
            injected_rate = injected * cycles
            if film[c] < 0.0:
                film[c] = film_x * injected_rate * film_tau
            delivered = ((1 - film_x) * injected_rate + film[c] / film_tau) / (
                cycles
            )
            settled = film_x * injected_rate * film_tau
            out[T_FILM_F + c, k] = film[c]
            film[c] = settled + (film[c] - settled) * film_decay

            air = ve_true / 100.0 * map_kpa * 1000.0 * air_per_ve * p[P_DRY]
            if delivered * p[P_STOICH] * LAMBDA_NO_FUEL > air:
                lam = air / (delivered * p[P_STOICH])
            else:
                lam = LAMBDA_NO_FUEL

            offset = p[P_REAR_KNOCK] if c == 1 else 0.0
            border = knock_border(rpm, map_kpa, p, offset)
            spark = spark_table - retard[c]
            knock = max(spark - border, 0.0) if lam <= 1.7 else 0.0
            if p[P_KR_ON] > 0.0:
                if knock > 0.0:
                    retard[c] += p[P_KR_STEP] * cycles * step
                else:
                    retard[c] -= p[P_KR_RECOVERY] * step
                retard[c] = min(max(retard[c], 0.0), p[P_KR_MAX])
            spark_factor = max(
                1.0 - SPARK_LOSS_PER_DEG2 * (spark - mbt) ** 2, 0.0
            )
            work += air * lambda_factor(lam) * spark_factor

            out[T_LAMBDA_F + c, k] = lam
            out[T_SPARK_F + c, k] = spark
            out[T_RETARD_F + c, k] = spark_table - spark
            out[T_KNOCK_F + c, k] = knock
            out[T_TRIM_F + c, k] = trim[c]
            out[T_ADAPT_F + c, k] = applied
            out[T_PULSE_F + c, k] = pulse

        # Brake torque: indicated work less friction and pumping.
        work *= p[P_CYL_PER_SIDE] * energy_per_air * p[P_EFF]
        piston_speed = 2.0 * p[P_STROKE] * rpm / 60.0
        fmep = 60.0 + 4.0 * piston_speed + 0.2 * piston_speed * piston_speed
        relative_flow = rpm * map_kpa / (p[P_RATED_RPM] * p[P_AMBIENT])
        exhaust = p[P_AMBIENT] + p[P_BACK_PRESSURE] * relative_flow**2
        pmep = exhaust - map_kpa
        torque = (work - (fmep + pmep) * 1000.0 * p[P_DISP]) / (4 * math.pi)

        # Wideband: gas leaving now arrives after the delay; the sensor
        # sees the newest gas that has arrived, then lags.
        delay = transport_delay(rpm, map_kpa, p[P_DELAY_RATIO])
        arrival[k] = time + delay
        while source < k and arrival[source + 1] <= time:
            source += 1
        for c in range(2):
            row = T_LAMBDA_F + c
            if arrival[source] > time:
                seen = out[row, 0]
            elif source < k and arrival[source + 1] > arrival[source]:
                share = (time - arrival[source]) / (
                    arrival[source + 1] - arrival[source]
                )
                share = min(max(share, 0.0), 1.0)
                seen = out[row, source] + share * (
                    out[row, source + 1] - out[row, source]
                )
            else:
                seen = out[row, source]
            if k == 0:
                sensor[c] = seen
            else:
                sensor[c] += sensor_gain * (seen - sensor[c])
            out[T_SENSOR_F + c, k] = sensor[c]

        # Drum: drive, losses and the absorber.
        drive = 0.0
        if coupled:
            drive = p[P_DRIVELINE_EFF] * torque * p[P_ENGINE_RATIO]
        drum_loss = p[P_BEARING] + p[P_WINDAGE] * omega * omega
        net = drive - drum_loss - p[P_ROLLING] * p[P_DRUM_RADIUS]
        capacity = p[P_ABS_MAX] * min(abs(omega) / p[P_ABS_KNEE], 1.0)
        absorber = 0.0
        if mode == MODE_SWEEP or mode == MODE_HOLD:
            if mode == MODE_HOLD:
                target = p[P_HOLD_GAIN] * (p[P_HOLD_OMEGA] - omega)
            elif k < settle_steps:
                target = 0.0
            else:
                target = p[P_SWEEP_ALPHA]
            if net > inertia * target:
                absorber = min(net - inertia * target, capacity)
        elif mode == MODE_LOAD:
            absorber = min(p[P_LOAD_TORQUE], capacity)
        alpha = (net - absorber) / inertia
        tyre_force = (p[P_DRUM_INERTIA] * alpha + drum_loss + absorber) / p[
            P_DRUM_RADIUS
        ]

        out[T_RPM, k] = rpm
        out[T_MAP, k] = map_kpa
        out[T_THROTTLE, k] = tps
        out[T_DRUM_OMEGA, k] = omega
        out[T_DRUM_ALPHA, k] = alpha
        out[T_VE_ECU_F, k] = ve_ecu_f
        out[T_VE_ECU_R, k] = ve_ecu_r
        out[T_AFR, k] = afr
        out[T_VE_TRUE_F, k] = ve_true_f
        out[T_VE_TRUE_R, k] = ve_true_r
        out[T_DELAY, k] = delay
        out[T_TORQUE, k] = torque
        out[T_AE, k] = accel
        out[T_DECEL, k] = decel
        out[T_ABSORBER, k] = absorber
        out[T_DRUM_LOSS, k] = drum_loss
        out[T_SLIP, k] = slip
        out[T_TYRE_FORCE, k] = tyre_force
        out[T_CLOSED_LOOP, k] = 1.0 if active else 0.0

        # End of the step?
        if k >= max_steps:
            break
        if mode == MODE_SWEEP and k >= settle_steps:
            if rpm >= p[P_END_RPM]:
                break
            slow_steps = slow_steps + 1 if alpha < p[P_MIN_ALPHA] else 0
            if slow_steps >= stall_steps:
                break
        if mode == MODE_COAST and omega <= p[P_END_OMEGA]:
            break

        # Advance the state.
        engine_rpm = rpm if coupled else p[P_IDLE]
        map_kpa = map_step(map_kpa, throttle[k + 1], engine_rpm, step, p)
        omega = max(omega + alpha * step, 0.0)
        if p[P_SLIP_STIFF] > 0.0 and coupled:
            slip = min(max(tyre_force / p[P_SLIP_STIFF], -0.2), 0.2)
        k += 1
    return out[:, : k + 1], k + 1
