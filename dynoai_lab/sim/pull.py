"""Run test plans on the virtual dyno.

:func:`simulate_pull` runs one plan step (:mod:`dynoai_lab.sim.plans`)
and :func:`simulate_plan` a list of them. Each returns two
``xarray.Dataset`` objects on the same ``time`` axis: the log a tuner
would record, with the canonical channel names and units of
``docs/nomenclature.md``, and the hidden truth (true VE, burned lambda,
transport delay, knock, torque and powers).

Model in one paragraph: the ECU meters fuel by speed density from its
own VE and AFR-target tables and its transient, closed-loop and
limiter behaviours (:class:`dynoai_lab.ecu.EcuFeatures`); the injector
delivers it through its dead time, and a wall film (x-tau) delays part
of it. The engine traps air by its true VE and the manifold density,
so burned lambda is the target times ``VE_true / VE_ecu`` in steady
state (times the dry-air fraction in humid weather). Torque follows
from trapped air, lambda and spark, less friction and pumping
(:mod:`dynoai_lab.sim.physics`). MAP follows a manifold filling model.
The tyre drives the drum, with optional slip; an eddy-current absorber
can hold a speed or rate or apply a load. A wideband per cylinder sees
the burned lambda after a flow-dependent transport delay and a
first-order lag, then adds noise. The time step is compiled
(:mod:`dynoai_lab.sim.kernel`). Not modelled: heat soak between pulls,
cycle-to-cycle variation and crank-angle detail.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import math
import time as wall_clock

import numpy as np
import xarray as xr

from dynoai_lab.ecu import ECU
from dynoai_lab.sim import engines
from dynoai_lab.sim.dyno import DrumDyno, Weather, get_dyno
from dynoai_lab.sim.plans import (
    THROTTLE_STEPS,
    CoastDown,
    SteadyState,
    StepThrottle,
    Sweep,
    covering_plan,
    default_gear,
    throttle_for_map,
    wot_sweep,
)
from dynoai_lab.sim.sensor import WidebandSensor

logger = logging.getLogger(__name__)

__all__ = [
    "THROTTLE_STEPS",
    "Sweep",
    "covering_plan",
    "simulate_plan",
    "simulate_pull",
    "wot_sweep",
]

# Grid on which an engine's true VE is tabulated for the time step
# [rpm] and [kPa]; bilinear interpolation on it is within 1e-4 relative
# of engines.true_ve.
_TRUE_VE_RPM_STEP = 25.0
_TRUE_VE_MAP = np.arange(5.0, 110.01, 0.5)
# A sweep is over when the engine gains less than this many rpm per
# second for the stall time: the throttle cannot pull any higher.
_STALL_RPM_RATE = 20.0
_STALL_TIME_S = 1.0
# Speed-hold controller of the absorber: drum acceleration demanded per
# unit speed error, a 0.1 s time constant [1/s].
_HOLD_GAIN = 10.0


# ---------------------------------------------------------------------------
# Inputs of the compiled time step
# ---------------------------------------------------------------------------


def _table_arrays(table: xr.DataArray):
    return (
        np.ascontiguousarray(table["rpm"].values, dtype=float),
        np.ascontiguousarray(table[table.dims[1]].values, dtype=float),
        np.ascontiguousarray(table.values, dtype=float),
    )


@functools.lru_cache(maxsize=16)
def _true_ve_tables(engine: engines.Engine):
    """Tabulate an engine's true VE on a fine grid for the time step."""
    rpm = np.arange(
        min(500.0, engine.idle_rpm - 250.0),
        engine.rev_limit_rpm + 500.0 + 1e-9,
        _TRUE_VE_RPM_STEP,
    )
    grid_rpm, grid_map = np.meshgrid(rpm, _TRUE_VE_MAP, indexing="ij")
    tables = []
    for cylinder in ("front", "rear"):
        values = engines.true_ve(engine, cylinder, grid_rpm, grid_map)
        tables.append((rpm, _TRUE_VE_MAP.copy(), np.ascontiguousarray(values)))
    return tuple(tables)


def _tables(ecu: ECU, engine, true_ve):
    if true_ve is None:
        true_front, true_rear = _true_ve_tables(engine)
    else:
        true_front, true_rear = (_table_arrays(t) for t in true_ve)
    spark = ecu.spark if ecu.spark is not None else ecu.ve_front
    return (
        *_table_arrays(ecu.ve_front),
        *_table_arrays(ecu.ve_rear),
        *_table_arrays(ecu.afr_target),
        *_table_arrays(spark),
        *true_front,
        *true_rear,
    )


def _plant_parameters(engine, ecu, dyno, weather, sensor, tyre_slip):
    """Fill the engine, drum, sensor and ECU slots of the kernel."""
    wheel_ratio = dyno.radius / engine.tyre_radius
    features = ecu.features
    flow = ecu.injector_flow or engine.injector_flow
    dead = ecu.injector_dead_time
    if dead is None:
        dead = engine.injector_dead_time
    sensor_tau = sensor.time_constant if sensor else 0.1
    ready = sensor.warmup_s if sensor else 0.0
    delay_scale = sensor.delay_scale if sensor else 1.0
    values = {
        "CYLINDER_VOLUME": engine.cylinder_volume,
        "CYLINDERS_PER_SIDE": engine.n_cylinders / 2.0,
        "DISPLACEMENT": engine.displacement,
        "STROKE": engine.stroke,
        "EFFICIENCY": engines.calibration(engine).indicated_efficiency,
        "STOICHIOMETRIC_AFR": ecu.stoichiometric_afr,
        "THROTTLE_FLOW_RPM": engine.throttle_flow_rpm,
        "LEAK_FRACTION": engine.throttle_leak_fraction,
        "MANIFOLD_VOLUME": engine.manifold_volume,
        "AMBIENT_KPA": weather.pressure,
        "INTAKE_C": weather.temperature + engine.intake_heating,
        "DRY_FRACTION": weather.dry_air_fraction(),
        "COOLANT_C": engine.engine_temperature_c,
        "IDLE_RPM": engine.idle_rpm,
        "RATED_POWER_RPM": engine.rated_power_rpm,
        "BACK_PRESSURE": engine.exhaust_back_pressure,
        "INJECTOR_FLOW": engine.injector_flow,
        "INJECTOR_DEAD_TIME": engine.injector_dead_time,
        "FILM_FRACTION": engine.wall_film_fraction,
        "FILM_TIME_CONSTANT": engine.wall_film_time_constant,
        "KNOCK_MARGIN": engine.knock_margin,
        "REAR_KNOCK_OFFSET": engine.rear_knock_offset,
        "WHEEL_RATIO": wheel_ratio,
        "DRIVELINE_EFFICIENCY": engine.driveline_efficiency,
        "ENGINE_INERTIA": engine.engine_inertia,
        "WHEEL_INERTIA": engine.wheel_inertia,
        "DRUM_INERTIA": dyno.inertia,
        "DRUM_RADIUS": dyno.radius,
        "BEARING_TORQUE": dyno.bearing_torque,
        "WINDAGE": dyno.windage_coefficient,
        "ROLLING_FORCE": dyno.tyre_rolling_force,
        "ABSORBER_MAX": dyno.absorber_max_torque,
        "ABSORBER_KNEE": dyno.absorber_knee_speed,
        "SLIP_STIFFNESS": engine.tyre_slip_stiffness if tyre_slip else 0.0,
        "DELAY_VOLUME_RATIO": delay_scale
        * engine.exhaust_delay_volume
        / engine.cylinder_volume,
        "SENSOR_TIME_CONSTANT": sensor_tau,
        "SENSOR_READY_S": ready,
        "ECU_INJECTOR_FLOW": flow,
        "ECU_DEAD_TIME": dead,
        "HAS_SPARK_TABLE": float(ecu.spark is not None),
        "AE_ON": float(features.accel_enrichment),
        "AE_THRESHOLD": features.accel_threshold,
        "AE_GAIN": features.accel_gain,
        "AE_LIMIT": features.accel_limit,
        "AE_DECAY": features.accel_decay,
        "DC_ON": float(features.decel_fuel_cut),
        "DC_THRESHOLD": features.decel_threshold,
        "DC_GAIN": features.decel_gain,
        "DC_DECAY": features.decel_decay,
        "DC_CUT_RPM": features.decel_cut_rpm,
        "CLOSED_THROTTLE": features.closed_throttle,
        "CL_ON": float(features.closed_loop),
        "CL_WINDOW": features.closed_loop_window,
        "CL_MAX_MAP": features.closed_loop_max_map,
        "CL_MAX_RPM": features.closed_loop_max_rpm,
        "CL_MIN_COOLANT": features.closed_loop_min_coolant,
        "CL_GAIN": features.closed_loop_gain,
        "CL_LIMIT": features.closed_loop_limit,
        "AD_ON": float(features.adaptive),
        "AD_TIME_CONSTANT": features.adaptive_time_constant,
        "AD_LIMIT": features.adaptive_limit,
        "KR_ON": float(features.knock_retard),
        "KR_STEP": features.knock_step,
        "KR_RECOVERY": features.knock_recovery,
        "KR_MAX": features.knock_max_retard,
        "RL_ON": float(features.rev_limiter),
        "RL_RPM": features.rev_limit_rpm,
        "RL_HYSTERESIS": features.rev_limit_hysteresis,
        "HOLD_GAIN": _HOLD_GAIN,
    }
    return values


def _run_parameters(step, engine, dyno, weather, step_s):
    """Return (slot values, throttle per step, gear) of one plan step."""
    from dynoai_lab.sim import kernel

    rad_per_rpm = 2.0 * math.pi / 60.0
    gear = getattr(step, "gear", None)
    if gear is None and not isinstance(step, Sweep):
        gear = default_gear(engine)
    engine_ratio = (
        dyno.radius / engine.tyre_radius * engine.overall_ratio(gear)
    )
    values = {
        "STEP": step_s,
        "ENGINE_RATIO": engine_ratio,
        "SWEEP_ALPHA": 0.0,
        "SETTLE_STEPS": 0,
        "STALL_STEPS": int(round(_STALL_TIME_S / step_s)),
        "MIN_ALPHA": _STALL_RPM_RATE * rad_per_rpm / engine_ratio,
        "END_RPM": 0.0,
        "HOLD_OMEGA": 0.0,
        "LOAD_TORQUE": 0.0,
        "END_OMEGA": 0.0,
    }
    if isinstance(step, Sweep):
        settle = int(round(step.settle_s / step_s))
        duration = int(math.ceil(step.duration_limit() / step_s))
        alpha = math.inf
        if step.rpm_rate is not None:
            alpha = step.rpm_rate * rad_per_rpm / engine_ratio
        values.update(
            MODE=kernel.MODE_SWEEP,
            START_RPM=step.start_rpm,
            END_RPM=step.end_rpm,
            SWEEP_ALPHA=alpha,
            SETTLE_STEPS=settle,
            MAX_STEPS=settle + duration,
        )
        throttle = np.full(settle + duration + 1, step.throttle)
    elif isinstance(step, SteadyState):
        steps = int(round((step.settle_s + step.hold_s) / step_s))
        position = step.throttle
        if position is None:
            position = float(
                throttle_for_map(
                    engine, step.rpm, step.map_kpa, weather.pressure
                )
            )
            if not math.isfinite(position):
                raise ValueError(
                    f"MAP {step.map_kpa} kPa cannot be held at "
                    f"{step.rpm} rpm and {weather.pressure} kPa "
                    "barometric pressure; see sim.reachable_cells"
                )
        start_rpm = step.rpm
        throttle = np.full(steps + 1, position)
        if step.from_rpm is not None:
            start_rpm = step.from_rpm
            t = np.arange(steps + 1) * step_s
            share = np.clip(t / max(step.transition_s, step_s), 0.0, 1.0)
            throttle = step.from_throttle + share * (
                position - step.from_throttle
            )
        values.update(
            MODE=kernel.MODE_HOLD,
            START_RPM=start_rpm,
            HOLD_OMEGA=step.rpm * rad_per_rpm / engine_ratio,
            MAX_STEPS=steps,
        )
    elif isinstance(step, StepThrottle):
        steps = int(round(step.duration_s / step_s))
        t = np.arange(steps + 1) * step_s
        ramp = max(step.ramp_s, step_s)
        share = np.clip((t - step.step_at_s) / ramp, 0.0, 1.0)
        throttle = step.start_throttle + share * (
            step.end_throttle - step.start_throttle
        )
        values.update(
            MODE=kernel.MODE_HOLD,
            START_RPM=step.rpm,
            HOLD_OMEGA=step.rpm * rad_per_rpm / engine_ratio,
            MAX_STEPS=steps,
        )
    elif isinstance(step, CoastDown):
        steps = int(math.ceil(step.max_duration_s / step_s))
        values.update(
            MODE=kernel.MODE_COAST,
            START_RPM=engine.idle_rpm,
            HOLD_OMEGA=step.start_speed / dyno.radius,
            END_OMEGA=step.end_speed / dyno.radius,
            MAX_STEPS=steps,
        )
        throttle = np.zeros(steps + 1)
    else:
        raise TypeError(
            "plan steps must be Sweep, SteadyState, StepThrottle or "
            f"CoastDown, got {type(step).__name__}"
        )
    return values, throttle, gear


def _parameter_array(values):
    from dynoai_lab.sim import kernel

    p = np.full(kernel.N_PARAMETERS, np.nan)
    for name, value in values.items():
        p[kernel.PARAMETERS[name]] = value
    missing = [n for n, k in kernel.PARAMETERS.items() if np.isnan(p[k])]
    if missing:
        raise RuntimeError(f"kernel parameters not set: {missing}")
    return p


# ---------------------------------------------------------------------------
# Datasets
# ---------------------------------------------------------------------------


@dataclasses.dataclass
class _Parts:
    """A log or truth before it becomes a Dataset: cheap to join."""

    data: dict
    time: np.ndarray
    attrs: dict

    def dataset(self):
        coords = {
            "time": ("time", self.time, {"units": "s", "long_name": "time"})
        }
        return xr.Dataset(self.data, coords=coords, attrs=dict(self.attrs))

    @classmethod
    def join(cls, parts):
        """Concatenate on time; variable and global attrs of the first."""
        first = parts[0]
        data = {
            name: (
                dims,
                np.concatenate([p.data[name][1] for p in parts]),
                attrs,
            )
            for name, (dims, _, attrs) in first.data.items()
        }
        time = np.concatenate([p.time for p in parts])
        return cls(data, time, dict(first.attrs))


def _variable(values, units, long_name, **attrs):
    attrs = {"units": units, "long_name": long_name, **attrs}
    return ("time", values, attrs)


def _wideband(values, cylinder):
    return _variable(
        values,
        "1",
        f"wideband air-fuel ratio, {cylinder} cylinder",
        kind="wideband",
        cylinder=cylinder,
        stoichiometric_afr=14.7,
    )


def _constant(value, n):
    return np.full(n, float(value))


def _build_log(trace, time, afr, values, engine, weather, attrs):
    """Assemble the log Dataset from decimated traces."""
    n = time.size
    data = {
        "engine_speed": _variable(trace("rpm"), "rpm", "engine speed"),
        "manifold_pressure": _variable(
            trace("map"), "kPa", "manifold absolute pressure"
        ),
        "throttle_position": _variable(
            trace("throttle"), "%", "throttle position"
        ),
        "drum_speed": _variable(
            trace("drum_omega") * values["DRUM_RADIUS"],
            "m/s",
            "drum surface speed",
        ),
        "intake_air_temperature": _variable(
            _constant(values["INTAKE_C"], n), "°C", "intake air temperature"
        ),
        "coolant_temperature": _variable(
            _constant(engine.engine_temperature_c, n),
            "°C",
            "engine temperature",
        ),
        "afr_target": _variable(
            trace("afr_target"), "1", "air-fuel ratio target"
        ),
        "afr_front": _wideband(afr["front"], "front"),
        "afr_rear": _wideband(afr["rear"], "rear"),
        "ambient_pressure": _variable(
            _constant(weather.pressure, n), "kPa", "barometric pressure"
        ),
        "ambient_temperature": _variable(
            _constant(weather.temperature, n), "°C", "air temperature"
        ),
        "relative_humidity": _variable(
            _constant(weather.relative_humidity, n), "%", "relative humidity"
        ),
        "accel_enrichment": _variable(
            trace("accel_enrichment"),
            "1",
            "acceleration enrichment (0 when inactive)",
        ),
        "decel_enleanment": _variable(
            trace("decel_enleanment"),
            "1",
            "deceleration enleanment (0 when inactive)",
        ),
    }
    for side in ("front", "rear"):
        data[f"ve_{side}"] = _variable(
            trace(f"ve_ecu_{side}"), "%", f"ECU VE in use, {side}"
        )
        data[f"spark_advance_{side}"] = _variable(
            trace(f"spark_{side}"), "deg", f"spark advance, {side}"
        )
        data[f"knock_retard_{side}"] = _variable(
            trace(f"retard_{side}"), "deg", f"knock retard, {side}"
        )
        data[f"closed_loop_trim_{side}"] = _variable(
            trace(f"trim_{side}") * 100.0,
            "%",
            f"closed-loop integrator, {side}",
        )
        data[f"adaptive_fuel_factor_{side}"] = _variable(
            trace(f"adaptive_{side}") * 100.0,
            "%",
            f"adaptive fuel factor, {side}",
        )
        data[f"injector_time_{side}"] = _variable(
            trace(f"pulse_{side}"), "s", f"injector pulse width, {side}"
        )
    data["segment"] = _variable(
        np.zeros(n, dtype=np.int64), "1", "stretch of continuous running"
    )
    return _Parts(data, time, {"source_format": "simulated", **attrs})


def _build_truth(trace, time, values, attrs):
    """Assemble the truth Dataset from decimated traces."""
    omega_d = trace("drum_omega")
    alpha_d = trace("drum_alpha")
    torque = trace("torque")
    absorber = trace("absorber_torque")
    engine_ratio = values["ENGINE_RATIO"]
    omega_e = trace("rpm") * (math.pi / 30.0)
    coupled = values["MODE"] != 3
    engine_inertia_torque = (
        values["ENGINE_INERTIA"] * alpha_d * engine_ratio * coupled
    )
    wheel_power = (
        values["DRIVELINE_EFFICIENCY"]
        * (torque - engine_inertia_torque)
        * omega_e
        * coupled
    )
    drum_power = (
        values["DRUM_INERTIA"] * alpha_d + trace("drum_loss_torque") + absorber
    ) * omega_d
    n = time.size
    data = {
        "transport_delay": _variable(
            trace("delay"), "s", "exhaust transport delay to the wideband"
        ),
        "engine_torque": _variable(torque, "N m", "crankshaft brake torque"),
        "wheel_power": _variable(
            wheel_power, "W", "power at the rear axle after driveline losses"
        ),
        "drum_power": _variable(
            drum_power, "W", "power through the tyre into the drum"
        ),
        "absorber_power": _variable(
            absorber * omega_d, "W", "power taken by the eddy brake"
        ),
        "drum_loss_power": _variable(
            trace("drum_loss_torque") * omega_d,
            "W",
            "drum bearing and windage power",
        ),
        "drum_acceleration": _variable(
            alpha_d * values["DRUM_RADIUS"],
            "m/s2",
            "drum surface acceleration",
        ),
        "tyre_slip": _variable(trace("slip"), "1", "tyre slip on the drum"),
        "tyre_force": _variable(
            trace("tyre_force"), "N", "tyre force on the drum surface"
        ),
        "closed_loop_active": _variable(
            trace("closed_loop"), "1", "ECU closed loop active"
        ),
        "clutch_engaged": _variable(
            np.full(n, int(coupled), dtype=np.int64),
            "1",
            "1 when the engine drives the drum, 0 in a coast-down",
        ),
        "segment": _variable(
            np.zeros(n, dtype=np.int64), "1", "stretch of continuous running"
        ),
    }
    for side in ("front", "rear"):
        data[f"true_ve_{side}"] = _variable(
            trace(f"ve_true_{side}"), "%", f"true VE, {side}"
        )
        data[f"lambda_{side}"] = _variable(
            trace(f"lambda_{side}"), "1", f"burned lambda, {side}"
        )
        data[f"sensor_lambda_{side}"] = _variable(
            trace(f"sensor_{side}"),
            "1",
            f"wideband lambda before noise, {side}",
        )
        data[f"spark_advance_{side}"] = _variable(
            trace(f"spark_{side}"), "deg", f"spark advance, {side}"
        )
        data[f"knock_intensity_{side}"] = _variable(
            trace(f"knock_{side}"), "deg", f"spark beyond knock border, {side}"
        )
        data[f"wall_film_{side}"] = _variable(
            trace(f"film_{side}"), "kg", f"fuel film on the port wall, {side}"
        )
    return _Parts(data, time, {"source_format": "simulated", **attrs})


# ---------------------------------------------------------------------------
# Simulation
# ---------------------------------------------------------------------------


def _resolve_sensor(sensor):
    if sensor is True:
        return WidebandSensor()
    if sensor is False or sensor is None:
        return None
    if not isinstance(sensor, WidebandSensor):
        raise TypeError(
            "sensor must be True, False or a WidebandSensor, got "
            f"{type(sensor).__name__}"
        )
    return sensor


def _decimation(sample_rate_hz, step_s):
    decimation = 1.0 / (sample_rate_hz * step_s)
    if decimation < 1.0 or abs(decimation - round(decimation)) > 1e-9:
        raise ValueError(
            f"1 / (sample_rate_hz * step_s) must be a whole number >= 1, "
            f"got {decimation:.6g} for {sample_rate_hz} Hz and "
            f"{step_s} s"
        )
    return int(round(decimation))


def _simulate_step(
    engine,
    ecu,
    step,
    *,
    dyno,
    weather,
    seed,
    sample_rate_hz,
    step_s,
    sensor,
    true_ve,
    tyre_slip,
    time_offset,
    adaptive,
    start_rpm=None,
):
    """Run one plan step; return (log, truth, final adaptive factors).

    `start_rpm` [rpm] replaces the step's own start speed, so that a
    chained step starts where the previous one ended.

    Log and truth are :class:`_Parts`, turned into Datasets by the
    caller.
    """
    from dynoai_lab.sim import kernel

    decimation = _decimation(sample_rate_hz, step_s)
    values = _plant_parameters(engine, ecu, dyno, weather, sensor, tyre_slip)
    run, throttle, gear = _run_parameters(step, engine, dyno, weather, step_s)
    values.update(run)
    if start_rpm is not None:
        values["START_RPM"] = start_rpm
    values.update(
        TIME_OFFSET=time_offset,
        ADAPT_FRONT=adaptive[0],
        ADAPT_REAR=adaptive[1],
    )
    traces, steps = kernel.integrate(
        _parameter_array(values), throttle, _tables(ecu, engine, true_ve)
    )
    samples = slice(0, steps, decimation)
    time = np.arange(0, steps, decimation) * step_s

    def trace(name):
        # A strided view, not a copy: the log keeps the traces alive.
        return traces[kernel.TRACES[name], samples]

    rng = np.random.default_rng(seed)
    afr = {}
    for side in ("front", "rear"):
        if sensor is None:
            afr[side] = trace(f"lambda_{side}") * 14.7
        else:
            reading = sensor.read(
                trace(f"sensor_{side}"), rng, time=time + time_offset
            )
            afr[side] = reading * sensor.stoichiometric_afr

    attrs = {
        "engine": engine.name,
        "dyno": dyno.name,
        "seed": int(seed),
        "drum_inertia": dyno.inertia,
        "drum_inertia_units": "kg m2",
        "drum_radius": dyno.radius,
        "drum_radius_units": "m",
        "gear": int(gear or len(engine.gear_ratios)),
        "overall_ratio": engine.overall_ratio(gear),
        "tyre_radius": engine.tyre_radius,
        "sample_rate_hz": float(sample_rate_hz),
        "step_s": float(step_s),
        "plan_step": type(step).__name__,
    }
    log = _build_log(trace, time, afr, values, engine, weather, attrs)
    truth = _build_truth(trace, time, values, attrs)
    last = traces[:, steps - 1]
    final_adaptive = (
        float(last[kernel.TRACES["adaptive_front"]])
        if ecu.features.adaptive
        else 0.0,
        float(last[kernel.TRACES["adaptive_rear"]])
        if ecu.features.adaptive
        else 0.0,
    )
    return log, truth, final_adaptive


def _pace(started, simulated_s, realtime):
    """Sleep until `simulated_s` of wall time has passed since start."""
    if not realtime:
        return
    remaining = simulated_s - (wall_clock.perf_counter() - started)
    if remaining > 0:
        wall_clock.sleep(remaining)


def simulate_pull(
    engine,
    ecu: ECU,
    sweep,
    *,
    dyno: DrumDyno | None = None,
    weather: Weather | None = None,
    seed: int = 0,
    sample_rate_hz: float = 50.0,
    step_s: float = 0.001,
    sensor: bool | WidebandSensor = True,
    true_ve=None,
    tyre_slip: bool = False,
    realtime: bool = False,
):
    """Simulate one plan step and return the log and the truth.

    Parameters
    ----------
    engine : Engine or str
        Engine parameter set, or its name.
    ecu : ECU
        The ECU whose tables and features fuel the engine.
    sweep : Sweep, SteadyState, StepThrottle or CoastDown
        The plan step to run.
    dyno : DrumDyno, optional
        Defaults to the ``"dynojet-250i-motorcycle"`` preset.
    weather : Weather, optional
        Defaults to dry air at 101.325 kPa and 25 °C.
    seed : int
        Seed of the wideband noise; the same seed gives identical
        output.
    sample_rate_hz : float
        Log sample rate [Hz]; ``1 / (sample_rate_hz * step_s)`` must be
        a whole number.
    step_s : float
        Integration step [s].
    sensor : bool or WidebandSensor
        True for the default :class:`WidebandSensor`, a sensor instance
        for other settings, or False to log the burned AFR directly
        (no delay, lag, noise or clipping).
    true_ve : (DataArray, DataArray), optional
        Front and rear true VE tables [%] replacing the engine's own
        surface, for example the ECU's tables to make them exact.
    tyre_slip : bool
        Let the tyre slip on the drum in proportion to its force.
    realtime : bool
        Return no sooner than the simulated time has passed on the wall
        clock, for live displays.

    Returns
    -------
    log : xarray.Dataset
        Canonical log channels on ``time`` [s] from 0.
    truth : xarray.Dataset
        True VE, burned lambda, transport delay, knock, engine torque
        and powers on the same ``time``.
    """
    started = wall_clock.perf_counter()
    if isinstance(engine, str):
        engine = engines.get_engine(engine)
    log, truth, _ = _simulate_step(
        engine,
        ecu,
        sweep,
        dyno=get_dyno() if dyno is None else dyno,
        weather=Weather() if weather is None else weather,
        seed=seed,
        sample_rate_hz=sample_rate_hz,
        step_s=step_s,
        sensor=_resolve_sensor(sensor),
        true_ve=true_ve,
        tyre_slip=tyre_slip,
        time_offset=0.0,
        adaptive=(0.0, 0.0),
    )
    _pace(started, float(log.time[-1]), realtime)
    return log.dataset(), truth.dataset()


def simulate_plan(
    engine,
    ecu: ECU,
    plan,
    *,
    seed: int = 0,
    realtime: bool = False,
    on_step=None,
    **kwargs,
):
    """Simulate a list of plan steps into one log and one truth.

    Parameters
    ----------
    engine : Engine or str
        Engine parameter set, or its name.
    ecu : ECU
        The ECU whose tables fuel the engine.
    plan : sequence of Sweep, SteadyState, StepThrottle, CoastDown
        Steps in order.
    seed : int
        Seed from which every step's noise seed is derived.
    realtime : bool
        Pace each step to the wall clock, for live displays.
    on_step : callable, optional
        Called as ``on_step(number, log, truth)`` after each step, for
        example to update a live plot.
    **kwargs
        ``dyno``, ``weather``, ``sample_rate_hz``, ``step_s``,
        ``sensor``, ``true_ve`` and ``tyre_slip`` of
        :func:`simulate_pull`.

    Returns
    -------
    log, truth : xarray.Dataset
        Steps joined on one continuous ``time`` axis [s], each sample
        one sample period after the last of the previous step. The
        ``segment`` variable numbers the stretches of continuous
        running: each step starts a new segment, except a
        :class:`SteadyState` approached from the previous point
        (``from_rpm``), which continues it. Engine speed jumps between
        segments because the roll-off between them is not simulated.
        ECU adaptive fuel factors carry over from step to step; the
        sensor warm-up counts from the start of the plan.
    """
    plan = list(plan)
    if not plan:
        raise ValueError("plan is empty; pass at least one plan step")
    if isinstance(engine, str):
        engine = engines.get_engine(engine)
    unknown = set(kwargs) - {
        "dyno",
        "weather",
        "sample_rate_hz",
        "step_s",
        "sensor",
        "true_ve",
        "tyre_slip",
    }
    if unknown:
        raise TypeError(f"unexpected keyword arguments {sorted(unknown)}")
    options = {
        "dyno": kwargs.get("dyno") or get_dyno(),
        "weather": kwargs.get("weather") or Weather(),
        "sample_rate_hz": kwargs.get("sample_rate_hz", 50.0),
        "step_s": kwargs.get("step_s", 0.001),
        "sensor": _resolve_sensor(kwargs.get("sensor", True)),
        "true_ve": kwargs.get("true_ve"),
        "tyre_slip": kwargs.get("tyre_slip", False),
    }
    seeds = np.random.SeedSequence(seed).generate_state(len(plan))
    logs, truths = [], []
    offset = 0.0
    adaptive = (0.0, 0.0)
    started = wall_clock.perf_counter()
    segment = -1
    last_rpm = None
    for number, (step, child_seed) in enumerate(zip(plan, seeds, strict=True)):
        chained = getattr(step, "from_rpm", None) is not None and number > 0
        segment += not chained
        log, truth, adaptive = _simulate_step(
            engine,
            ecu,
            step,
            seed=int(child_seed),
            time_offset=offset,
            adaptive=adaptive,
            start_rpm=last_rpm if chained else None,
            **options,
        )
        last_rpm = float(log.data["engine_speed"][1][-1])
        period = 1.0 / log.attrs["sample_rate_hz"]
        for part in (log, truth):
            part.data["segment"][1][:] = segment
            part.time = part.time + offset
        offset = float(log.time[-1]) + period
        logs.append(log)
        truths.append(truth)
        _pace(started, offset, realtime)
        if on_step is not None:
            on_step(number, log.dataset(), truth.dataset())

    # Joining arrays and building one Dataset is several times faster
    # than xarray.concat over hundreds of short steps.
    log = _Parts.join(logs).dataset()
    truth = _Parts.join(truths).dataset()
    for ds in (log, truth):
        ds.attrs["seed"] = int(seed)
        ds.attrs["n_segments"] = len(plan)
        ds.attrs.pop("gear", None)
        ds.attrs.pop("overall_ratio", None)
        ds.attrs.pop("plan_step", None)
    return log, truth


def plan_summary(plan) -> list[dict]:
    """Return a plan's steps as JSON-ready dicts with their type names."""
    return [
        {"type": type(step).__name__, **dataclasses.asdict(step)}
        for step in plan
    ]


def simulation_summary(log, truth) -> dict:
    """Return the headline figures of a simulated log as a dict.

    Parameters
    ----------
    log, truth : xarray.Dataset
        Output of :func:`simulate_plan` or :func:`simulate_pull`.

    Returns
    -------
    dict
        ``peak_power_hp`` and ``peak_torque_lbft`` (crankshaft brake
        figures from the truth, uncorrected, in the log's weather) with
        their engine speeds ``peak_power_rpm`` and ``peak_torque_rpm``
        [rpm]; ``samples``; ``duration_s`` [s]; and the engine, dyno and
        seed from the log's attributes. Peaks are NaN for a plan that
        never couples the engine to the drum (a coast-down).
    """
    from dynoai_lab.units import HP, LBF_FT

    engaged = truth["clutch_engaged"].values == 1
    rpm = log["engine_speed"].values[engaged]
    torque = truth["engine_torque"].values[engaged]
    power = torque * rpm * (math.pi / 30.0)
    period = 1.0 / float(log.attrs["sample_rate_hz"])
    summary = {
        "engine": log.attrs.get("engine", ""),
        "dyno": log.attrs.get("dyno", ""),
        "seed": int(log.attrs.get("seed", 0)),
        "samples": int(log.sizes["time"]),
        "duration_s": round(float(log["time"].values[-1]) + period, 3),
        "peak_basis": "crankshaft brake torque from the simulator's truth",
    }
    if torque.size and np.isfinite(torque).any() and power.max() > 0:
        i = int(np.nanargmax(power))
        j = int(np.nanargmax(torque))
        summary.update(
            peak_power_hp=round(float(power[i] / HP), 2),
            peak_power_rpm=round(float(rpm[i])),
            peak_torque_lbft=round(float(torque[j] / LBF_FT), 2),
            peak_torque_rpm=round(float(rpm[j])),
        )
    else:
        summary.update(
            peak_power_hp=float("nan"),
            peak_power_rpm=float("nan"),
            peak_torque_lbft=float("nan"),
            peak_torque_rpm=float("nan"),
        )
    return summary
