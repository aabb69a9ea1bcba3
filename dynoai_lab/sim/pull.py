"""Dyno test plans and the pull simulation.

A :class:`Sweep` is one pull: throttle held, engine speed swept from a
start to an end speed either freely (the engine accelerates the drum) or
at a rate an eddy-current absorber holds. :func:`simulate_pull` runs one
sweep and returns two ``xarray.Dataset`` objects on the same ``time``
axis: the log a tuner would record, with the canonical channel names of
``docs/nomenclature.md``, and the hidden truth (true VE, burned lambda,
transport delay, torque and powers).

Model in one paragraph: the ECU meters fuel by speed density from its
own VE and AFR-target tables, while the engine traps air by its true VE.
Burned lambda is therefore the target lambda times ``VE_true / VE_ecu``,
and in humid weather also times the dry-air fraction. Torque follows
from trapped air, lambda and friction (:mod:`dynoai_lab.sim.physics`).
The tyre rolls on the drum without slip, so one state, the drum angular
speed, carries the engine, wheel and drum inertias. MAP follows its
static value with a first-order manifold lag. Not modelled: wall wetting
and acceleration enrichment, deceleration fuel cut, closed-loop trims,
spark advance and knock, heat soak between pulls, and tyre slip.
"""

from __future__ import annotations

import functools
import logging
import math
from bisect import bisect_right
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import xarray as xr

from dynoai_lab.ecu import ECU
from dynoai_lab.sim import engines, physics
from dynoai_lab.sim.dyno import DrumDyno, Weather, get_dyno
from dynoai_lab.sim.sensor import WidebandSensor, transport_delay
from dynoai_lab.units import R_AIR, ZERO_CELSIUS

logger = logging.getLogger(__name__)

# Grid on which an engine's true VE is tabulated for the time step
# [rpm] and [kPa]; bilinear interpolation on it is within 1e-4 relative
# of engines.true_ve.
_TRUE_VE_RPM_STEP = 25.0
_TRUE_VE_MAP = np.arange(5.0, 110.01, 0.5)
# A sweep is over when the engine gains less than this many rpm per
# second for the stall time: the throttle cannot pull any higher.
_STALL_RPM_RATE = 20.0
_STALL_TIME_S = 1.0


# ---------------------------------------------------------------------------
# Test plans
# ---------------------------------------------------------------------------

#: Throttle positions [%] of :func:`covering_plan`, closer together at
#: small openings where MAP changes fastest with throttle. With these 14
#: sweeps an M8 log lands in about 77 % of the VE cells at 29 kPa and
#: above (nearest cell); 7 sweeps reach about 47 %.
THROTTLE_STEPS = (
    100.0, 85.0, 70.0, 58.0, 48.0, 40.0, 34.0, 29.0, 25.0, 21.0, 18.0,
    15.0, 12.0, 10.0,
)  # fmt: skip


@dataclass(frozen=True)
class Sweep:
    """One dyno pull at fixed throttle.

    Attributes
    ----------
    throttle : float
        Throttle position [%], 0 to 100.
    start_rpm, end_rpm : float
        Engine speeds [rpm] where the sweep starts and ends.
    rpm_rate : float or None
        Sweep rate [rpm/s] the absorber holds when the engine has the
        torque for it; None for a free inertia pull.
    gear : int or None
        Gear, 1-based; None for top gear.
    settle_s : float
        Time [s] the absorber keeps `start_rpm` at this throttle before
        the sweep begins, so MAP and the wideband settle.
    max_duration_s : float or None
        Longest sweep [s] after settling; None picks one from the rate.
    """

    throttle: float
    start_rpm: float
    end_rpm: float
    rpm_rate: float | None = None
    gear: int | None = None
    settle_s: float = 1.0
    max_duration_s: float | None = None

    def __post_init__(self):
        if not 0.0 <= self.throttle <= 100.0:
            raise ValueError(
                f"throttle must be 0 to 100 %, got {self.throttle!r}"
            )
        if not 0.0 < self.start_rpm < self.end_rpm:
            raise ValueError(
                "need 0 < start_rpm < end_rpm, got "
                f"{self.start_rpm!r} and {self.end_rpm!r}"
            )
        if self.rpm_rate is not None and self.rpm_rate <= 0.0:
            raise ValueError(
                f"rpm_rate must be positive or None, got {self.rpm_rate!r}"
            )
        if self.settle_s < 0.0:
            raise ValueError(
                f"settle_s must not be negative, got {self.settle_s!r}"
            )

    def duration_limit(self) -> float:
        """Return the longest sweep time after settling [s]."""
        if self.max_duration_s is not None:
            return self.max_duration_s
        if self.rpm_rate is None:
            return 30.0
        return 1.5 * (self.end_rpm - self.start_rpm) / self.rpm_rate + 3.0


def covering_plan(
    ecu_or_axes,
    engine: engines.Engine,
    *,
    throttles=THROTTLE_STEPS,
    gear: int | None = None,
) -> list[Sweep]:
    """Build sweeps that visit most reachable cells of a VE table.

    Parameters
    ----------
    ecu_or_axes : ECU or (rpm, map)
        The ECU whose front VE table's axes are to be covered, or the
        axes themselves [rpm], [kPa].
    engine : Engine
        Engine parameter set.
    throttles : sequence of float
        Throttle positions [%], one sweep each. Each fixed throttle
        traces one line of falling MAP over rising rpm, so several
        throttles spread the lines across the MAP axis.
    gear : int or None
        Gear for all sweeps; None picks two below top (4th of 6), where
        the drum's inertia reflected to the crank is about a third of
        top gear's, so part-throttle torque can keep up with the sweep
        rates.

    Returns
    -------
    list of Sweep
        Wide-open throttle as a free inertia pull, part throttle as
        absorber-held sweeps at 600 rpm/s down to 300 rpm/s for the
        smallest openings, scaled with the engine's rev range. Low-MAP
        cells at high rpm are only reached on deceleration, which the
        simulator does not model.
    """
    if isinstance(ecu_or_axes, ECU):
        rpm_axis = np.asarray(ecu_or_axes.ve_front["rpm"].values, float)
    else:
        rpm_axis = np.asarray(ecu_or_axes[0], float)
    start = max(float(rpm_axis[0]), engine.idle_rpm + 250.0)
    start = max(start, float(rpm_axis[rpm_axis <= start + 1e-9][-1]))
    end = min(float(rpm_axis[-1]), engine.rev_limit_rpm - 200.0)
    rev_scale = max(1.0, engine.rev_limit_rpm / 6000.0)
    if gear is None:
        gear = max(1, len(engine.gear_ratios) - 2)

    plan = []
    for throttle in throttles:
        if throttle >= 100.0:
            rate = None
        elif throttle >= 50.0:
            rate = 600.0 * rev_scale
        elif throttle >= 25.0:
            rate = 450.0 * rev_scale
        else:
            rate = 300.0 * rev_scale
        plan.append(
            Sweep(
                throttle=float(throttle),
                start_rpm=start,
                end_rpm=end,
                rpm_rate=rate,
                gear=gear,
            )
        )
    return plan


# ---------------------------------------------------------------------------
# Time step kernel (plain floats and lists)
# ---------------------------------------------------------------------------


class _Table(NamedTuple):
    rpm: list
    load: list
    values: list


def _table_from_dataarray(table: xr.DataArray) -> _Table:
    return _Table(
        [float(v) for v in table["rpm"].values],
        [float(v) for v in table[table.dims[1]].values],
        np.asarray(table.values, float).tolist(),
    )


def _lookup(table: _Table, x: float, y: float) -> float:
    """Bilinear lookup clamped at the edges, as ecu.bilinear_lookup."""
    xs, ys, z = table
    x = min(max(x, xs[0]), xs[-1])
    y = min(max(y, ys[0]), ys[-1])
    i = min(bisect_right(xs, x) - 1, len(xs) - 2)
    j = min(bisect_right(ys, y) - 1, len(ys) - 2)
    t = (x - xs[i]) / (xs[i + 1] - xs[i])
    u = (y - ys[j]) / (ys[j + 1] - ys[j])
    return (
        (1 - t) * (1 - u) * z[i][j]
        + t * (1 - u) * z[i + 1][j]
        + (1 - t) * u * z[i][j + 1]
        + t * u * z[i + 1][j + 1]
    )


class _Plant(NamedTuple):
    """Constants of one simulated pull, plain floats."""

    cylinder_volume: float
    cylinders_per_side: float
    displacement: float
    stroke: float
    efficiency: float
    stoichiometric_afr: float
    throttle_flow_rpm: float
    leak_fraction: float
    manifold_volume: float
    ambient_kpa: float
    intake_c: float
    dry_fraction: float
    engine_ratio: float  # engine rad/s per drum rad/s
    wheel_ratio: float  # wheel rad/s per drum rad/s
    driveline_efficiency: float
    engine_inertia: float
    wheel_inertia: float
    drum_inertia: float
    drum_radius: float
    bearing_torque: float
    windage_coefficient: float
    tyre_rolling_force: float
    absorber_max_torque: float


def _lambda_factor(lam: float) -> float:
    """Scalar twin of physics.lambda_torque_factor."""
    if lam < 0.5 or lam > 1.7:
        return 0.0
    delta = lam - physics.BEST_POWER_LAMBDA
    curvature = 2.5 if delta > 0 else 1.5
    return min(max(1.0 - curvature * delta * delta, 0.0), 1.0)


def _static_map(throttle: float, rpm: float, p: _Plant) -> float:
    """Scalar twin of physics.static_manifold_pressure."""
    opening = min(max(throttle, 0.0), 100.0)
    area = p.leak_fraction + (1.0 - p.leak_fraction) * (
        1.0 - math.cos(0.5 * math.pi * opening / 100.0)
    )
    g = area * p.throttle_flow_rpm / max(rpm, 1.0)
    return p.ambient_kpa * g / math.sqrt(1.0 + g * g)


def _engine_state(rpm, map_kpa, p: _Plant, ecu_tables, true_tables):
    """Compute fuelling, lambda and brake torque at one instant.

    Returns (ve_ecu_front, ve_ecu_rear, afr_target, ve_true_front,
    ve_true_rear, lambda_front, lambda_rear, torque [N·m], spark
    advance [deg]).
    """
    ve_front_table, ve_rear_table, afr_table, spark_table = ecu_tables
    ve_ecu_f = _lookup(ve_front_table, rpm, map_kpa)
    ve_ecu_r = _lookup(ve_rear_table, rpm, map_kpa)
    afr = _lookup(afr_table, rpm, map_kpa)
    ve_true_f = _lookup(true_tables[0], rpm, map_kpa)
    ve_true_r = _lookup(true_tables[1], rpm, map_kpa)

    # Speed density: air per unit VE [kg/%], the same for ECU and engine.
    air_per_ve = (
        map_kpa
        * 1000.0
        * p.cylinder_volume
        / (R_AIR * (p.intake_c + ZERO_CELSIUS) * 100.0)
    )
    # lambda = true dry air / (fuel * AFR_st), fuel = ECU air / AFR target.
    scale = p.dry_fraction * afr / p.stoichiometric_afr
    lam_f = scale * ve_true_f / ve_ecu_f
    lam_r = scale * ve_true_r / ve_ecu_r

    energy_per_air = physics.GASOLINE_LHV / p.stoichiometric_afr
    work = (
        p.cylinders_per_side
        * energy_per_air
        * p.efficiency
        * p.dry_fraction
        * air_per_ve
        * (
            ve_true_f * _lambda_factor(lam_f)
            + ve_true_r * _lambda_factor(lam_r)
        )
    )
    # Spark away from MBT costs torque (scalar twins of
    # physics.mbt_spark_advance and spark_torque_factor). An ECU
    # without a spark table fires at MBT.
    load = min(max(map_kpa / 100.0, 0.0), 1.0)
    mbt = 15.0 + 15.0 * min(max(rpm / 5000.0, 0.0), 1.0) + 15.0 * (1 - load)
    spark = mbt if spark_table is None else _lookup(spark_table, rpm, map_kpa)
    work *= max(1.0 - physics.SPARK_LOSS_PER_DEG2 * (spark - mbt) ** 2, 0.0)

    piston_speed = 2.0 * p.stroke * rpm / 60.0
    fmep = 60.0 + 4.0 * piston_speed + 0.2 * piston_speed * piston_speed
    pmep = p.ambient_kpa - map_kpa
    torque = (work - (fmep + pmep) * 1000.0 * p.displacement) / (4 * math.pi)
    return (
        ve_ecu_f, ve_ecu_r, afr, ve_true_f, ve_true_r, lam_f, lam_r, torque,
        spark,
    )  # fmt: skip


def _drum_step(torque, drum_omega, alpha_target, p: _Plant):
    """Resolve drum acceleration and absorber torque at one instant.

    Returns (drum alpha [rad/s²], absorber torque [N·m], drum loss
    torque [N·m], equivalent inertia [kg·m²]).
    """
    inertia = (
        p.drum_inertia
        + p.wheel_inertia * p.wheel_ratio**2
        + p.driveline_efficiency * p.engine_inertia * p.engine_ratio**2
    )
    drive = p.driveline_efficiency * torque * p.engine_ratio
    drum_loss = p.bearing_torque + p.windage_coefficient * drum_omega**2
    net = drive - drum_loss - p.tyre_rolling_force * p.drum_radius
    alpha = net / inertia
    absorber = 0.0
    if alpha > alpha_target:
        absorber = min(net - inertia * alpha_target, p.absorber_max_torque)
        alpha = (net - absorber) / inertia
    return alpha, absorber, drum_loss, inertia


# ---------------------------------------------------------------------------
# Integration
# ---------------------------------------------------------------------------


@functools.lru_cache(maxsize=16)
def _true_ve_tables(engine: engines.Engine):
    """Tabulate an engine's true VE on a fine grid for the time step."""
    rpm = np.arange(
        min(500.0, engine.idle_rpm - 250.0),
        engine.rev_limit_rpm + 500.0 + 1e-9,
        _TRUE_VE_RPM_STEP,
    )
    grid_rpm, grid_map = np.meshgrid(rpm, _TRUE_VE_MAP, indexing="ij")
    return tuple(
        _Table(
            rpm.tolist(),
            _TRUE_VE_MAP.tolist(),
            engines.true_ve(engine, cylinder, grid_rpm, grid_map).tolist(),
        )
        for cylinder in ("front", "rear")
    )


def _plant(engine, ecu, dyno, weather, gear) -> _Plant:
    wheel_ratio = dyno.radius / engine.tyre_radius
    return _Plant(
        cylinder_volume=engine.cylinder_volume,
        cylinders_per_side=engine.n_cylinders / 2.0,
        displacement=engine.displacement,
        stroke=engine.stroke,
        efficiency=engines.calibration(engine).indicated_efficiency,
        stoichiometric_afr=ecu.stoichiometric_afr,
        throttle_flow_rpm=engine.throttle_flow_rpm,
        leak_fraction=engine.throttle_leak_fraction,
        manifold_volume=engine.manifold_volume,
        ambient_kpa=weather.pressure,
        intake_c=weather.temperature + engine.intake_heating,
        dry_fraction=weather.dry_air_fraction(),
        engine_ratio=wheel_ratio * engine.overall_ratio(gear),
        wheel_ratio=wheel_ratio,
        driveline_efficiency=engine.driveline_efficiency,
        engine_inertia=engine.engine_inertia,
        wheel_inertia=engine.wheel_inertia,
        drum_inertia=dyno.inertia,
        drum_radius=dyno.radius,
        bearing_torque=dyno.bearing_torque,
        windage_coefficient=dyno.windage_coefficient,
        tyre_rolling_force=dyno.tyre_rolling_force,
        absorber_max_torque=dyno.absorber_max_torque,
    )


_TRACE_NAMES = (
    "rpm", "map", "drum_omega", "drum_alpha", "ve_ecu_front",
    "ve_ecu_rear", "afr_target", "ve_true_front", "ve_true_rear",
    "lambda_front", "lambda_rear", "torque", "spark",
    "absorber_torque", "drum_loss_torque",
)  # fmt: skip


def _integrate(sweep: Sweep, p: _Plant, ecu_tables, true_tables, step_s):
    """Integrate one sweep by explicit Euler; return per-step traces.

    The drum angular speed advances as ``omega += alpha * dt``; MAP
    follows its static value through the exact discrete first-order
    lag ``map += (1 - exp(-dt/tau)) (map_static - map)``. Outputs at
    step k are computed from the state at step k, before the update.
    """
    rad_per_rpm = 2.0 * math.pi / 60.0
    omega = sweep.start_rpm * rad_per_rpm / p.engine_ratio
    map_kpa = _static_map(sweep.throttle, sweep.start_rpm, p)
    if sweep.rpm_rate is None:
        sweep_alpha = math.inf
    else:
        sweep_alpha = sweep.rpm_rate * rad_per_rpm / p.engine_ratio
    settle_steps = int(round(sweep.settle_s / step_s))
    max_steps = settle_steps + int(math.ceil(sweep.duration_limit() / step_s))
    stall_steps = int(round(_STALL_TIME_S / step_s))
    min_alpha = _STALL_RPM_RATE * rad_per_rpm / p.engine_ratio

    traces = {name: [] for name in _TRACE_NAMES}
    slow_steps = 0
    for k in range(max_steps + 1):
        rpm = omega * p.engine_ratio / rad_per_rpm
        state = _engine_state(rpm, map_kpa, p, ecu_tables, true_tables)
        alpha_target = 0.0 if k < settle_steps else sweep_alpha
        alpha, absorber, drum_loss, _ = _drum_step(
            state[7], omega, alpha_target, p
        )
        for name, value in zip(
            _TRACE_NAMES,
            (rpm, map_kpa, omega, alpha, *state, absorber, drum_loss),
            strict=True,
        ):
            traces[name].append(value)

        if k >= settle_steps:
            if rpm >= sweep.end_rpm:
                break
            slow_steps = slow_steps + 1 if alpha < min_alpha else 0
            if slow_steps >= stall_steps:
                logger.info(
                    "sweep at %.0f %% throttle stalled at %.0f rpm",
                    sweep.throttle,
                    rpm,
                )
                break

        # Advance the state to the next step.
        tau = p.manifold_volume / p.displacement * 120.0 / max(rpm, 100.0)
        target = _static_map(sweep.throttle, rpm, p)
        map_kpa += (1.0 - math.exp(-step_s / tau)) * (target - map_kpa)
        omega = max(omega + alpha * step_s, 0.0)
    else:
        logger.info(
            "sweep at %.0f %% throttle reached its time limit at %.0f rpm",
            sweep.throttle,
            rpm,
        )
    return {name: np.asarray(v) for name, v in traces.items()}


# ---------------------------------------------------------------------------
# Datasets
# ---------------------------------------------------------------------------


def _variable(values, units, long_name, **attrs):
    attrs = {"units": units, "long_name": long_name, **attrs}
    return ("time", np.asarray(values), attrs)


def _wideband(values, cylinder):
    return _variable(
        values,
        "1",
        f"wideband air-fuel ratio, {cylinder} cylinder",
        kind="wideband",
        cylinder=cylinder,
        stoichiometric_afr=14.7,
    )


def _build_log(traces, idx, time, afr, sweep, p, engine, weather, attrs):
    n = time.size
    log = xr.Dataset(
        {
            "engine_speed": _variable(
                traces["rpm"][idx], "rpm", "engine speed"
            ),
            "manifold_pressure": _variable(
                traces["map"][idx], "kPa", "manifold absolute pressure"
            ),
            "throttle_position": _variable(
                np.full(n, sweep.throttle), "%", "throttle position"
            ),
            "drum_speed": _variable(
                traces["drum_omega"][idx] * p.drum_radius,
                "m/s",
                "drum surface speed",
            ),
            "intake_air_temperature": _variable(
                np.full(n, p.intake_c), "°C", "intake air temperature"
            ),
            "coolant_temperature": _variable(
                np.full(n, engine.engine_temperature_c),
                "°C",
                "engine temperature",
            ),
            "afr_target": _variable(
                traces["afr_target"][idx], "1", "air-fuel ratio target"
            ),
            "afr_front": _wideband(afr["front"], "front"),
            "afr_rear": _wideband(afr["rear"], "rear"),
            "ambient_pressure": _variable(
                np.full(n, weather.pressure), "kPa", "barometric pressure"
            ),
            "ambient_temperature": _variable(
                np.full(n, weather.temperature), "°C", "air temperature"
            ),
            "relative_humidity": _variable(
                np.full(n, weather.relative_humidity),
                "%",
                "relative humidity",
            ),
            "ve_front": _variable(
                traces["ve_ecu_front"][idx], "%", "ECU VE in use, front"
            ),
            "ve_rear": _variable(
                traces["ve_ecu_rear"][idx], "%", "ECU VE in use, rear"
            ),
            "spark_advance_front": _variable(
                traces["spark"][idx], "deg", "spark advance, front"
            ),
            "spark_advance_rear": _variable(
                traces["spark"][idx], "deg", "spark advance, rear"
            ),
            "segment": _variable(
                np.zeros(n, dtype=np.int64), "1", "sweep number in plan"
            ),
        },
        coords={"time": ("time", time, {"units": "s", "long_name": "time"})},
        attrs={"source_format": "simulated", **attrs},
    )
    return log


def _build_truth(traces, idx, time, delay, p, attrs):
    omega_d = traces["drum_omega"][idx]
    alpha_d = traces["drum_alpha"][idx]
    torque = traces["torque"][idx]
    absorber = traces["absorber_torque"][idx]
    omega_e = omega_d * p.engine_ratio
    wheel_power = (
        p.driveline_efficiency
        * (torque - p.engine_inertia * alpha_d * p.engine_ratio)
        * omega_e
    )
    drum_power = (
        p.drum_inertia * alpha_d + traces["drum_loss_torque"][idx] + absorber
    ) * omega_d
    n = time.size
    return xr.Dataset(
        {
            "true_ve_front": _variable(
                traces["ve_true_front"][idx], "%", "true VE, front"
            ),
            "true_ve_rear": _variable(
                traces["ve_true_rear"][idx], "%", "true VE, rear"
            ),
            "lambda_front": _variable(
                traces["lambda_front"][idx], "1", "burned lambda, front"
            ),
            "lambda_rear": _variable(
                traces["lambda_rear"][idx], "1", "burned lambda, rear"
            ),
            "transport_delay": _variable(
                delay[idx], "s", "exhaust transport delay to the wideband"
            ),
            "engine_torque": _variable(
                torque, "N m", "crankshaft brake torque"
            ),
            "wheel_power": _variable(
                wheel_power,
                "W",
                "power at the rear axle after driveline losses",
            ),
            "drum_power": _variable(
                drum_power,
                "W",
                "power through the tyre into the drum",
            ),
            "absorber_power": _variable(
                absorber * omega_d, "W", "power taken by the eddy brake"
            ),
            "drum_acceleration": _variable(
                alpha_d * p.drum_radius, "m/s2", "drum surface acceleration"
            ),
            "spark_advance_front": _variable(
                traces["spark"][idx], "deg", "spark advance, front"
            ),
            "spark_advance_rear": _variable(
                traces["spark"][idx], "deg", "spark advance, rear"
            ),
            "segment": _variable(
                np.zeros(n, dtype=np.int64), "1", "sweep number in plan"
            ),
        },
        coords={"time": ("time", time, {"units": "s", "long_name": "time"})},
        attrs={"source_format": "simulated", **attrs},
    )


def _true_tables_from(true_ve):
    if true_ve is None:
        return None
    front, rear = true_ve
    return (_table_from_dataarray(front), _table_from_dataarray(rear))


def simulate_pull(
    engine,
    ecu: ECU,
    sweep: Sweep,
    *,
    dyno: DrumDyno | None = None,
    weather: Weather | None = None,
    seed: int = 0,
    sample_rate_hz: float = 50.0,
    step_s: float = 0.001,
    sensor: bool | WidebandSensor = True,
    true_ve=None,
):
    """Simulate one dyno sweep and return the log and the truth.

    Parameters
    ----------
    engine : Engine or str
        Engine parameter set, or its name.
    ecu : ECU
        The ECU whose tables fuel the engine.
    sweep : Sweep
        Throttle, speed range and sweep rate.
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

    Returns
    -------
    log : xarray.Dataset
        Canonical log channels on ``time`` [s] from 0.
    truth : xarray.Dataset
        True VE, burned lambda, transport delay, engine torque and
        powers on the same ``time``.
    """
    if isinstance(engine, str):
        engine = engines.get_engine(engine)
    dyno = get_dyno() if dyno is None else dyno
    weather = Weather() if weather is None else weather
    if sensor is True:
        sensor = WidebandSensor()
    decimation = 1.0 / (sample_rate_hz * step_s)
    if decimation < 1.0 or abs(decimation - round(decimation)) > 1e-9:
        raise ValueError(
            f"1 / (sample_rate_hz * step_s) must be a whole number >= 1, "
            f"got {decimation:.6g} for {sample_rate_hz} Hz and "
            f"{step_s} s"
        )
    decimation = int(round(decimation))

    plant = _plant(engine, ecu, dyno, weather, sweep.gear)
    ecu_tables = tuple(
        _table_from_dataarray(t)
        for t in (ecu.ve_front, ecu.ve_rear, ecu.afr_target)
    ) + (None if ecu.spark is None else _table_from_dataarray(ecu.spark),)
    true_tables = _true_tables_from(true_ve) or _true_ve_tables(engine)
    traces = _integrate(sweep, plant, ecu_tables, true_tables, step_s)

    step_time = np.arange(traces["rpm"].size) * step_s
    delay = transport_delay(engine, traces["rpm"], traces["map"])
    idx = np.arange(0, step_time.size, decimation)
    time = idx * step_s
    rng = np.random.default_rng(seed)
    afr = {}
    for side in ("front", "rear"):
        lam = traces[f"lambda_{side}"]
        if sensor:
            at_sensor = sensor.respond(step_time, lam, delay, step_s)
            afr[side] = sensor.read(at_sensor[idx], rng) * 14.7
        else:
            afr[side] = lam[idx] * 14.7

    attrs = {
        "engine": engine.name,
        "dyno": dyno.name,
        "seed": int(seed),
        "drum_inertia": dyno.inertia,
        "drum_inertia_units": "kg m2",
        "drum_radius": dyno.radius,
        "drum_radius_units": "m",
        "gear": int(sweep.gear or len(engine.gear_ratios)),
        "overall_ratio": engine.overall_ratio(sweep.gear),
        "tyre_radius": engine.tyre_radius,
        "sample_rate_hz": float(sample_rate_hz),
        "step_s": float(step_s),
    }
    log = _build_log(
        traces, idx, time, afr, sweep, plant, engine, weather, attrs
    )
    truth = _build_truth(traces, idx, time, delay, plant, attrs)
    return log, truth


def simulate_plan(engine, ecu: ECU, plan, *, seed: int = 0, **kwargs):
    """Simulate a list of sweeps into one log and one truth.

    Parameters
    ----------
    engine : Engine or str
        Engine parameter set, or its name.
    ecu : ECU
        The ECU whose tables fuel the engine.
    plan : sequence of Sweep
        Sweeps in order.
    seed : int
        Seed from which every sweep's noise seed is derived.
    **kwargs
        Passed to :func:`simulate_pull`.

    Returns
    -------
    log, truth : xarray.Dataset
        Sweeps joined on one continuous ``time`` axis [s], each sample
        one sample period after the last of the previous sweep, with the
        sweep index in the ``segment`` variable. Engine speed jumps
        between segments because roll-off and coast-down are not
        simulated.
    """
    plan = list(plan)
    if not plan:
        raise ValueError("plan is empty; pass at least one Sweep")
    seeds = np.random.SeedSequence(seed).generate_state(len(plan))
    logs, truths = [], []
    offset = 0.0
    for number, (sweep, child_seed) in enumerate(
        zip(plan, seeds, strict=True)
    ):
        log, truth = simulate_pull(
            engine, ecu, sweep, seed=int(child_seed), **kwargs
        )
        period = 1.0 / log.attrs["sample_rate_hz"]
        for ds in (log, truth):
            ds["segment"].values[:] = number
            ds.coords["time"] = ds["time"].values + offset
            ds["time"].attrs.update(units="s", long_name="time")
        offset = float(log["time"].values[-1]) + period
        logs.append(log)
        truths.append(truth)

    log = xr.concat(logs, dim="time", combine_attrs="override")
    truth = xr.concat(truths, dim="time", combine_attrs="override")
    for ds in (log, truth):
        ds.attrs["seed"] = int(seed)
        ds.attrs["n_segments"] = len(plan)
        ds.attrs.pop("gear", None)
        ds.attrs.pop("overall_ratio", None)
    return log, truth


def wot_sweep(engine: engines.Engine, gear: int | None = None) -> Sweep:
    """Build a wide-open-throttle inertia pull over the usable rpm range.

    Parameters
    ----------
    engine : Engine
        Engine parameter set.
    gear : int or None
        Gear, 1-based; None for top gear, as a dyno operator runs a
        power pull.

    Returns
    -------
    Sweep
        From 1000 rpm above idle to 200 rpm below the rev limit.
    """
    return Sweep(
        throttle=100.0,
        start_rpm=engine.idle_rpm + 1000.0,
        end_rpm=engine.rev_limit_rpm - 200.0,
        gear=gear,
    )
