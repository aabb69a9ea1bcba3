"""Analyze Pull: power, torque, weather correction and VE corrections.

:func:`analyze_pull` takes a canonical log (from a reader or the
simulator) and, optionally, a tune, and returns a :class:`PullAnalysis`
with every intermediate result as xarray objects with units.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import xarray as xr

from dynoai_lab.analysis import correction as corr
from dynoai_lab.analysis.power import (
    DrumModel,
    drum_acceleration,
    drum_power,
    engine_torque,
    estimate_drum_model,
)
from dynoai_lab.analysis.weather import (
    CORRECTION_STANDARDS,
    correction_factor,
)
from dynoai_lab.analysis.wideband import (
    STOICH_GASOLINE,
    WidebandStatus,
    align_to_operating_point,
    assign_sensors,
    recording_stretches,
    transport_delay,
    valid_afr_mask,
)
from dynoai_lab.units import HP, LBF_FT

logger = logging.getLogger(__name__)

CYLINDERS = ("front", "rear")

#: Rejection reasons in the order they are tested; a sample is counted
#: under the first reason that applies.
REJECTION_REASONS = (
    "missing_operating_point",
    "after_start",
    "cold_engine",
    "decel_fuel_cut",
    "accel_enrichment",
    "fuel_cut",
    "unsteady_throttle",
    "unsteady_map",
    "log_break",
    "sensor_dead",
    "sensor_railed",
    "off_table",
    "user_expression",
)


class AnalysisError(ValueError):
    """A log that lacks what the requested analysis needs."""


@dataclass(frozen=True)
class RejectionLimits:
    """Thresholds for leaving samples out of the VE correction.

    Attributes
    ----------
    min_coolant_temperature : float
        Samples of a colder engine are rejected [°C].
    accel_holdoff : float
        Time after acceleration enrichment ends during which samples
        are still rejected, because wall wetting settles [s].
    max_throttle_rate : float
        Largest steady throttle rate [%/s].
    max_map_rate : float
        Largest steady MAP rate [kPa/s].
    unsteady_holdoff : float
        Time after the throttle or MAP last moved faster than those
        rates during which samples are still rejected, because the
        port wall film settles with a time constant of roughly 0.1 to
        0.3 s (an estimate; the simulator uses 0.2 to 0.25 s) [s].
    closed_throttle : float
        Throttle below this with the engine above idle is a
        deceleration with fuel cut [%].
    fuel_cut_fraction : float
        An injector pulse below this fraction of its 1 s running
        median is a fuel cut (rev limiter) [1].
    after_start : float
        Time after an engine start seen in the log during which the
        ECU's after-start enrichment is active [s].
    running_speed : float
        Engine speed above which the engine counts as running [rpm].
    """

    min_coolant_temperature: float = 60.0
    accel_holdoff: float = 0.3
    max_throttle_rate: float = 60.0
    max_map_rate: float = 150.0
    unsteady_holdoff: float = 0.5
    closed_throttle: float = 1.0
    fuel_cut_fraction: float = 0.75
    after_start: float = 30.0
    running_speed: float = 400.0


@dataclass
class PullAnalysis:
    """Everything Analyze Pull computed from one log.

    Attributes
    ----------
    power : xarray.Dataset
        On ``time``: ``engine_speed`` [rpm], ``drum_speed`` [m/s],
        ``drum_acceleration`` [m/s²], ``power`` and ``power_corrected``
        [W], ``torque`` and ``torque_corrected`` [N·m].
    peaks : dict
        Peak corrected power and torque with their engine speeds.
    correction_factor : float
        Weather correction factor applied to power [1].
    correction_standard : str
        Name of the standard behind ``correction_factor``.
    drum : DrumModel
        Equivalent mass and losses used for power.
    samples : xarray.Dataset
        Per sample and cylinder: aligned lambda, target lambda, ratio,
        delay and the rejection reason code.
    corrections : xarray.Dataset or None
        VE corrections with dims ``(cylinder, rpm, load)``; None
        without a tune.
    sensors : dict
        Which wideband variable fed each cylinder.
    wideband_status : list of WidebandStatus
        The check of every wideband channel in the log.
    rejected : dict
        Per cylinder, sample counts per rejection reason, each sample
        under the first reason that applies, and ``accepted``.
    notes : list of str
        Plain-language remarks for the report.
    source : dict
        File name, wideband names and weather inputs of the log.
    flagged : dict
        Per cylinder, sample counts per rejection reason, each sample
        under every reason that applies: a fuel cut on a cold engine
        counts as both.
    """

    power: xr.Dataset | None
    peaks: dict
    correction_factor: float
    correction_standard: str
    drum: DrumModel | None
    samples: xr.Dataset
    corrections: xr.Dataset | None
    sensors: dict
    wideband_status: list[WidebandStatus]
    rejected: dict
    notes: list[str] = field(default_factory=list)
    source: dict = field(default_factory=dict)
    flagged: dict = field(default_factory=dict)

    def summary(self):
        """Return the headline figures as a JSON-ready dict."""
        cells, corrected = {}, {}
        if self.corrections is not None:
            for cyl in self.corrections["cylinder"].values:
                ds = self.corrections.sel(cylinder=cyl)
                cells[str(cyl)] = int((ds["weight"] > 0).sum())
                corrected[str(cyl)] = int((ds["applied_ratio"] != 1.0).sum())
        used = sorted(set(self.sensors.values()))
        status = {s.name: s.reason for s in self.wideband_status}
        return {
            **self.peaks,
            "samples": int(self.samples.sizes["time"]),
            "cells_with_data": cells,
            "cells_corrected": corrected,
            "wideband_channel": {
                "used": used[0] if len(used) == 1 else used,
                "feeds": dict(self.sensors),
                "original_names": self.source.get("wideband_names", {}),
                "reasons": status,
            },
            "correction_factor": round(self.correction_factor, 4),
            "correction_standard": self.correction_standard,
            "weather": self.source.get("weather", {}),
            "drum_equivalent_mass_kg": (
                None if self.drum is None else self.drum.equivalent_mass
            ),
            "rejected": self.rejected,
            "flagged": self.flagged,
            "notes": self.notes,
        }


def analyze_pull(
    log,
    tune=None,
    *,
    drum=None,
    delay=None,
    standard="SAE J1349",
    wideband=None,
    limits=None,
    settings=None,
    reference=None,
    locked=None,
    reject=None,
):
    """Analyze one dyno pull.

    Parameters
    ----------
    log : xarray.Dataset
        Canonical log (see ``docs/nomenclature.md``).
    tune : object, optional
        Anything with ``ve_front``, ``ve_rear`` and ``afr_target``
        DataArrays (a read ``.pvv`` tune or an :class:`~dynoai_lab.ecu.ECU`).
        VE corrections are binned on its VE axes.
    drum : DrumModel, optional
        Drum equivalent mass and losses. By default it is fitted to the
        log's own force and acceleration channels, or built from the
        ``drum_inertia`` [kg·m²] and ``drum_radius`` [m] attributes of
        a simulated log.
    delay : float or callable, optional
        Wideband transport delay [s], or ``f(engine_speed [rpm],
        manifold_pressure [kPa]) -> delay [s]``. Default:
        :func:`~dynoai_lab.analysis.wideband.transport_delay`.
    standard : str
        Weather correction standard, see
        :func:`~dynoai_lab.analysis.weather.correction_factor`.
    wideband : str, optional
        Force one wideband variable for both cylinders.
    limits : RejectionLimits, optional
        Thresholds for rejecting samples.
    settings : CorrectionSettings, optional
        Limits, minimum weight and smoothing of the correction.
    reference : object, optional
        The tune before a tuning session (``ve_front``, ``ve_rear``);
        the total limits of ``settings`` apply against it.
    locked : dict, optional
        ``{"front": mask, "rear": mask}`` of cells that must not change
        (boolean arrays shaped like the VE tables).
    reject : str, optional
        A pandas expression over the log's variables; samples where it
        is true are rejected as ``user_expression``, for example
        ``"throttle_position < 5 or engine_speed > 6000"``.

    Returns
    -------
    PullAnalysis
    """
    limits = limits or RejectionLimits()
    notes = []
    _check_time(log)
    if tune is not None:
        check_tune(tune)
    power, peaks, factor, drum = _power_part(log, drum, standard, notes)

    sensors, statuses = assign_sensors(log, preferred=wideband)
    for status in statuses:
        if not status.usable:
            notes.append(f"wideband {status.name} ignored: {status.reason}")
    if not sensors:
        notes.append("no usable wideband channel: no VE correction")
    elif len(set(sensors.values())) == 1 and len(sensors) == 2:
        name = next(iter(sensors.values()))
        notes.append(
            f"one wideband ({name}) feeds both cylinders, so both tables "
            "get the average correction of the two cylinders"
        )

    missing = _missing_for_lambda(log, tune)
    if missing and tune is not None:
        raise AnalysisError(
            f"{_label(log)}: VE analysis needs {', '.join(missing)}, which "
            "the log does not have; analyze without a tune for power only"
        )
    if missing:
        notes.append(
            f"no lambda analysis: the log has no {', '.join(missing)}"
        )
        sensors = {}
        samples = xr.Dataset(coords={"time": log["time"]})
        rejected, flagged = {}, {}
    else:
        samples, rejected, flagged = _lambda_part(
            log, tune, sensors, delay, limits, reject
        )
        for cylinder, counts in rejected.items():
            if counts["accepted"] == 0:
                reason = max(REJECTION_REASONS, key=counts.get)
                notes.append(
                    f"no samples kept for the {cylinder} cylinder: "
                    f"{counts[reason]} rejected as {reason}, the most "
                    "common reason" + _cold_hint(log, reason, limits)
                )

    corrections = None
    if tune is not None and sensors:
        corrections = _correction_part(
            log, tune, samples, sensors, settings, reference, locked
        )

    source = {
        "wideband_names": {
            status.name: log[status.name].attrs.get("original_name", "")
            for status in statuses
        },
        "file": log.attrs.get("source_file", ""),
        "weather": _weather_inputs(log),
    }
    return PullAnalysis(
        power,
        peaks,
        factor,
        standard,
        drum,
        samples,
        corrections,
        sensors,
        statuses,
        rejected,
        notes,
        source,
        flagged,
    )


def _cold_hint(log, reason, limits):
    """Explain a log rejected as a cold engine, with its temperatures."""
    if reason != "cold_engine" or "coolant_temperature" not in log:
        return ""
    temperature = np.asarray(log["coolant_temperature"].values, float)
    return (
        f" (engine temperature {np.nanmin(temperature):.0f} to "
        f"{np.nanmax(temperature):.0f} °C, below the "
        f"{limits.min_coolant_temperature:.0f} °C of "
        "RejectionLimits.min_coolant_temperature; log again with the "
        "engine warm, or lower that limit once the ECU's warm-up "
        "enrichment has ended)"
    )


#: Plausible VE table values [%] and AFR targets [1]; outside them a
#: table is misread (wrong units, a blank read as 0) or corrupt.
VE_RANGE = (1.0, 250.0)
AFR_TARGET_RANGE = (6.0, 20.0)


def check_tune(tune):
    """Check that a tune's VE and AFR tables can be analyzed.

    Parameters
    ----------
    tune : object
        Anything with ``ve_front``, ``ve_rear`` and ``afr_target``.

    Raises
    ------
    AnalysisError
        Naming the tune file, the table and the problem: fewer than
        2 × 2 cells, an axis that does not increase, non-finite values,
        values outside ``VE_RANGE`` or ``AFR_TARGET_RANGE``, or front
        and rear VE tables on different axes.
    """
    label = str(getattr(tune, "path", None) or "tune")
    tables = {"ve_front": VE_RANGE, "ve_rear": VE_RANGE}
    if getattr(tune, "afr_target", None) is not None:
        tables["afr_target"] = AFR_TARGET_RANGE
    for attribute, (low, high) in tables.items():
        table = getattr(tune, attribute)
        name = table.attrs.get("source_name", attribute)
        where = f"{label}, table {name!r}"
        if table.ndim != 2 or min(table.shape) < 2:
            raise AnalysisError(
                f"{where} has shape {table.shape}; expected at least 2 × 2"
            )
        for dim in table.dims:
            axis = np.asarray(table[dim].values, dtype=float)
            if not np.all(np.isfinite(axis)) or np.any(np.diff(axis) <= 0):
                raise AnalysisError(
                    f"{where}: the {dim} axis {axis.tolist()} must be "
                    "finite and strictly increasing"
                )
        values = np.asarray(table.values, dtype=float)
        bad = ~np.isfinite(values) | (values < low) | (values > high)
        if bad.any():
            raise AnalysisError(
                f"{where}: {int(bad.sum())} cell(s) outside {low}..{high}, "
                f"for example {values[bad].ravel()[0]!r}; check the "
                "table's units"
            )
    front, rear = tune.ve_front, tune.ve_rear
    if front.dims != rear.dims or any(
        not np.array_equal(front[d].values, rear[d].values) for d in front.dims
    ):
        raise AnalysisError(
            f"{label}: front and rear VE tables are on different axes; "
            "both must share the same rpm and load breakpoints"
        )


def _check_time(log):
    """Reject a log whose time goes back, which would corrupt alignment."""
    time = np.asarray(log["time"].values, dtype=float)
    steps = np.diff(time)
    back = np.flatnonzero(steps < 0)
    if back.size:
        i = int(back[0])
        raise AnalysisError(
            f"{_label(log)}: time goes back from {time[i]} s to "
            f"{time[i + 1]} s at sample {i + 1} (a logger restart); split "
            "the log there and analyze the parts separately"
        )


def _label(log):
    return log.attrs.get("source_file") or "log"


def _missing_for_lambda(log, tune):
    """Return the channels a lambda analysis needs that the log lacks."""
    needed = ["engine_speed", "manifold_pressure"]
    if tune is not None:
        needed += [
            {"map": "manifold_pressure", "tps": "throttle_position"}.get(
                tune.ve_front.dims[1], "manifold_pressure"
            )
        ]
    has_target = "afr_target" in log or (
        tune is not None and getattr(tune, "afr_target", None) is not None
    )
    missing = [name for name in dict.fromkeys(needed) if name not in log]
    if not has_target:
        missing.append("afr_target (and no tune to take it from)")
    return missing


def _weather_inputs(log):
    """Median weather of the log, and the dyno's own factor if logged."""
    names = {
        "ambient_pressure": "pressure_kpa",
        "ambient_temperature": "temperature_c",
        "relative_humidity": "relative_humidity_pct",
        "correction_factor": "logged_correction_factor",
    }
    weather = {}
    for name, key in names.items():
        if name in log and np.isfinite(log[name].values).any():
            weather[key] = round(float(log[name].median(skipna=True)), 4)
    return weather


def _power_part(log, drum, standard, notes):
    """Power and torque from the drum speed trace, and their peaks."""
    if "drum_speed" not in log or "engine_speed" not in log:
        notes.append("no drum_speed or engine_speed: power not computed")
        return None, {}, 1.0, None
    drum = drum or _drum_from_log(log)
    time = log["time"].values
    speed = log["drum_speed"].values
    rpm = log["engine_speed"].values

    accel = _segment_acceleration(log, time, speed)
    power = drum_power(drum, speed, accel)
    torque = engine_torque(power, rpm)

    factor = 1.0
    weather = ("ambient_pressure", "ambient_temperature", "relative_humidity")
    if all(name in log for name in weather):
        p, t, rh = (float(log[name].median(skipna=True)) for name in weather)
        try:
            factor = float(correction_factor(standard, p, t, rh))
        except ValueError as error:
            if standard not in CORRECTION_STANDARDS:
                raise
            notes.append(
                f"weather channels unusable ({error}): power is not corrected"
            )
    else:
        standard_note = f"no weather channels: {standard} factor set to 1"
        notes.append(standard_note)

    ds = xr.Dataset(
        {
            "engine_speed": ("time", rpm, {"units": "rpm"}),
            "drum_speed": ("time", speed, {"units": "m/s"}),
            "drum_acceleration": ("time", accel, {"units": "m/s²"}),
            "power": ("time", power, {"units": "W"}),
            "power_corrected": ("time", power * factor, {"units": "W"}),
            "torque": ("time", torque, {"units": "N·m"}),
            "torque_corrected": ("time", torque * factor, {"units": "N·m"}),
        },
        coords={"time": log["time"]},
    )
    ds["power"].attrs["long_name"] = "wheel power, uncorrected"
    ds["power_corrected"].attrs["long_name"] = f"wheel power, {standard}"
    ds["torque"].attrs["long_name"] = "engine torque, uncorrected"
    ds["torque_corrected"].attrs["long_name"] = f"engine torque, {standard}"
    for name in ("engine_speed", "drum_speed", "drum_acceleration"):
        ds[name].attrs["long_name"] = name.replace("_", " ")
    return ds, _peaks(ds), factor, drum


def _segment_acceleration(log, time, speed):
    """Differentiate drum speed within each pull of a multi-pull log.

    A simulated test plan joins several sweeps in one log; its
    ``segment`` variable numbers them, and speed jumps between them.
    """
    if "segment" not in log:
        return drum_acceleration(time, speed)
    segments = np.asarray(log["segment"].values)
    accel = np.full(time.shape, np.nan)
    for value in np.unique(segments):
        part = segments == value
        accel[part] = drum_acceleration(time[part], speed[part])
    return accel


def _drum_from_log(log):
    if "drum_force" in log and "drum_acceleration" in log:
        return estimate_drum_model(
            log["drum_force"].values, log["drum_acceleration"].values
        )
    inertia = log.attrs.get("drum_inertia")
    radius = log.attrs.get("drum_radius")
    if inertia is not None and radius is not None:
        return DrumModel.from_inertia(
            float(inertia),
            float(radius),
            source=f"log attributes: {inertia} kg·m², radius {radius} m",
        )
    raise AnalysisError(
        f"cannot compute power for {log.attrs.get('source_file', 'log')}: "
        "it has no drum_force/drum_acceleration channels to fit the drum "
        "and no drum_inertia/drum_radius attributes; pass drum=DrumModel"
        "(equivalent_mass_kg)"
    )


def _peaks(ds):
    power = ds["power_corrected"].values
    torque = ds["torque_corrected"].values
    rpm = ds["engine_speed"].values
    if not np.isfinite(power).any():
        return {}
    i = int(np.nanargmax(power))
    j = int(np.nanargmax(torque))
    return {
        "peak_power_hp": round(float(power[i] / HP), 2),
        "peak_power_rpm": round(float(rpm[i])),
        "peak_torque_lbft": round(float(torque[j] / LBF_FT), 2),
        "peak_torque_rpm": round(float(rpm[j])),
    }


def _lambda_part(log, tune, sensors, delay, limits, reject=None):
    """Per-sample aligned lambda, target, ratio and rejection reasons."""
    time = log["time"].values
    rpm = _channel(log, "engine_speed")
    map_kpa = _channel(log, "manifold_pressure")

    if delay is None:
        delays = transport_delay(rpm, map_kpa)
    elif callable(delay):
        delays = np.asarray(delay(rpm, map_kpa), dtype=float)
    else:
        delays = np.full(time.shape, float(delay))

    target_afr = _target_afr(log, tune, rpm, map_kpa)
    shared = _shared_rejections(log, time, rpm, map_kpa, limits)
    if reject:
        shared["user_expression"] = _user_rejections(log, reject)

    shared["log_break"] = _crosses_break(log, time, delays)

    data = {"transport_delay": ("time", delays, {"units": "s"})}
    data["lambda_target"] = (
        "time",
        target_afr / STOICH_GASOLINE,
        {"units": "1", "long_name": "target lambda"},
    )
    rejected, flagged = {}, {}
    for cyl, name in sensors.items():
        var = log[name]
        stoich = float(var.attrs.get("stoichiometric_afr", STOICH_GASOLINE))
        aligned = align_to_operating_point(time, var.values, delays)
        measured = aligned / stoich
        ratio = measured / (target_afr / STOICH_GASOLINE)

        # Fuel the ECU actually commanded was (1 + trim) times the
        # table's; remove that so the ratio speaks for the table alone.
        trim_name = f"closed_loop_trim_{cyl}"
        if trim_name in log:
            ratio = ratio * trim_factor(log[trim_name].values)

        reasons = dict(shared)
        # A sensor in the collector sees a fuel cut on either cylinder.
        seen = (cyl,)
        if var.attrs.get("cylinder", "unknown") in ("both", "unknown"):
            seen = CYLINDERS
        reasons["fuel_cut"] = np.logical_or.reduce(
            [_fuel_cut(log, c, time, limits) for c in seen]
        )
        dead, railed = _sensor_faults(aligned, stoich)
        reasons["sensor_dead"] = dead
        reasons["sensor_railed"] = railed
        reasons["off_table"] = _off_table(log, tune, rpm, cyl)
        code = _first_reason(reasons, time.size)
        rejected[cyl] = {
            reason: int((code == k).sum())
            for k, reason in enumerate(REJECTION_REASONS)
        }
        rejected[cyl]["accepted"] = int((code < 0).sum())
        flagged[cyl] = {
            reason: int(np.count_nonzero(reasons.get(reason, False)))
            for reason in REJECTION_REASONS
        }

        data[f"lambda_{cyl}"] = (
            "time",
            measured,
            {"units": "1", "long_name": f"lambda from {name}, aligned"},
        )
        data[f"ratio_{cyl}"] = (
            "time",
            np.where(code < 0, ratio, np.nan),
            {"units": "1", "long_name": "lambda measured / target, kept"},
        )
        data[f"rejection_{cyl}"] = (
            "time",
            code,
            {
                "units": "1",
                "long_name": "rejection reason code, -1 when kept",
                "reasons": ", ".join(REJECTION_REASONS),
            },
        )
    samples = xr.Dataset(data, coords={"time": log["time"]})
    return samples, rejected, flagged


def _channel(log, name):
    if name not in log:
        raise AnalysisError(
            f"{_label(log)} has no {name} channel, which VE analysis needs"
        )
    return np.asarray(log[name].values, dtype=float)


def _target_afr(log, tune, rpm, map_kpa):
    """Target AFR: the ECU's logged target, else the tune's table."""
    if "afr_target" in log:
        logged = np.asarray(log["afr_target"].values, dtype=float)
        if np.nanmax(logged, initial=0) > 0:
            return np.where(logged > 0, logged, np.nan)
    if tune is None or getattr(tune, "afr_target", None) is None:
        raise AnalysisError(
            "no afr_target channel in the log and no tune with an AFR "
            "target table: lambda error cannot be computed"
        )
    return corr.lookup_table(tune.afr_target, rpm, map_kpa)


def _shared_rejections(log, time, rpm, map_kpa, limits):
    reasons = {}
    reasons["missing_operating_point"] = ~(
        np.isfinite(rpm) & np.isfinite(map_kpa)
    )
    cold = np.zeros(time.shape, bool)
    if "coolant_temperature" in log:
        temp = log["coolant_temperature"].values
        with np.errstate(invalid="ignore"):
            cold = temp < limits.min_coolant_temperature
    reasons["cold_engine"] = cold
    reasons["after_start"] = _after_start(time, rpm, limits)

    throttle = (
        log["throttle_position"].values
        if "throttle_position" in log
        else np.full(time.shape, np.nan)
    )
    decel = np.zeros(time.shape, bool)
    with np.errstate(invalid="ignore"):
        decel |= (throttle < limits.closed_throttle) & (rpm > 1200)
        if "decel_enleanment" in log:
            decel |= log["decel_enleanment"].values > 0
    reasons["decel_fuel_cut"] = decel

    enrich = np.zeros(time.shape, bool)
    if "accel_enrichment" in log:
        with np.errstate(invalid="ignore"):
            active = log["accel_enrichment"].values > 0
        enrich = _hold(time, active, limits.accel_holdoff)
    reasons["accel_enrichment"] = enrich

    reasons["unsteady_throttle"] = _hold(
        time,
        _rate_above(time, throttle, limits.max_throttle_rate),
        limits.unsteady_holdoff,
    )
    reasons["unsteady_map"] = _hold(
        time,
        _rate_above(time, map_kpa, limits.max_map_rate),
        limits.unsteady_holdoff,
    )
    return reasons


def trim_factor(trim):
    """Return the fuel multiplier a logged closed-loop trim applied.

    Parameters
    ----------
    trim : array_like
        Closed-loop trim as logged [%].

    Returns
    -------
    numpy.ndarray
        Multiplier on the table's fuel [1]; 1 where the trim is NaN.

    Notes
    -----
    Loggers write the trim in two conventions: 0 % meaning no trim
    (a WinPEP export of a Harley ECU) and 100 % meaning no trim
    (JetDrive and Power Vision logs of the same ECU). The median of
    the channel decides: within 50 to 150 the trim is read as
    ``value / 100``, within -50 to 50 as ``1 + value / 100``. Anything
    else is not a trim, so the multiplier is 1.
    """
    values = np.asarray(trim, dtype=float)
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return np.ones(values.shape)
    median = float(np.median(finite))
    if 50.0 <= median <= 150.0:
        factor = values / 100.0
    elif -50.0 <= median <= 50.0:
        factor = 1.0 + values / 100.0
    else:
        return np.ones(values.shape)
    return np.where(np.isfinite(factor) & (factor > 0), factor, 1.0)


def _after_start(time, rpm, limits):
    """Mark samples within ``after_start`` seconds of an engine start."""
    # A start is a logged stop followed by running; samples without an
    # engine speed (a logger not yet connected) are neither.
    known = pd.Series(rpm).ffill().to_numpy()
    with np.errstate(invalid="ignore"):
        stopped = known < limits.running_speed
        running = rpm >= limits.running_speed
    starts = np.flatnonzero(stopped[:-1] & running[1:]) + 1
    marked = np.zeros(time.shape, bool)
    for start in starts:
        marked |= (time >= time[start]) & (
            time < time[start] + limits.after_start
        )
    return marked


def _crosses_break(log, time, delays):
    """Samples whose delayed reading lies past a break in the recording.

    The reading that belongs to the operating point at ``t`` arrives at
    ``t + delay``. No reading of this operating point was recorded
    where that time is past the end of the log, across a gap of more
    than five sample periods, or in another ``segment``. Segments are
    a simulated plan's steps that do not continue from each other.
    """
    if time.size == 0:
        return np.zeros(0, dtype=bool)
    arrival = time + np.where(np.isfinite(delays), delays, 0.0)
    later = np.searchsorted(time, arrival, side="right") - 1
    later = np.clip(later, 0, time.size - 1)
    stretch = recording_stretches(log, time)
    return (arrival > time[-1]) | (stretch[later] != stretch)


def _sensor_faults(afr, stoichiometric_afr):
    """Split unusable wideband readings into dead and railed.

    Dead: no reading, or 0 (a controller warming up or unplugged).
    Railed: at or beyond the ends of the measuring range, including a
    lean rail below lambda 1.6 that the channel repeats (an Innovate
    LC-2 rails at AFR 22.39).
    """
    afr = np.asarray(afr, dtype=float)
    with np.errstate(invalid="ignore"):
        dead = ~np.isfinite(afr) | (afr <= 0)
    valid = valid_afr_mask(afr, stoichiometric_afr)
    railed = ~dead & ~valid
    live = afr[~dead]
    if live.size:
        top = np.max(live)
        at_top = np.isclose(afr, top, rtol=0, atol=1e-6) & ~dead
        if at_top.sum() >= 3 and top / stoichiometric_afr > 1.3:
            railed |= at_top
    return dead, railed


def _user_rejections(log, expression):
    """Evaluate a user expression over the log's variables."""
    frame = log.drop_vars(
        [n for n in log.data_vars if log[n].dims != ("time",)]
    ).to_dataframe()
    try:
        result = frame.eval(expression)
    except Exception as error:  # noqa: BLE001 - any parse or name error
        raise AnalysisError(
            f"reject expression {expression!r} failed: {error}; use the "
            "log's variable names, for example "
            "'throttle_position < 5 or engine_speed > 6000'"
        ) from None
    values = np.asarray(result)
    if values.dtype != bool or values.shape != (frame.shape[0],):
        raise AnalysisError(
            f"reject expression {expression!r} must give one True/False "
            "per sample"
        )
    return values


def _hold(time, active, holdoff):
    """Extend each active sample by ``holdoff`` seconds."""
    if not active.any():
        return active
    last_active = np.maximum.accumulate(np.where(active, time, -np.inf))
    return (time - last_active) <= holdoff


def _rate_above(time, values, limit):
    """Mark samples next to an interval whose rate exceeds ``limit``.

    Intervals with repeated time stamps, or a NaN at either end, have
    no rate and mark nothing.
    """
    values = np.asarray(values, dtype=float)
    if values.size < 2:
        return np.zeros(time.shape, bool)
    dt = np.diff(time)
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = np.abs(np.where(dt > 0, np.diff(values) / dt, np.nan))
    before = np.concatenate([[np.nan], rate])
    after = np.concatenate([rate, [np.nan]])
    with np.errstate(invalid="ignore"):
        return (before > limit) | (after > limit)


def _fuel_cut(log, cyl, time, limits):
    """Injector pulse collapsing while the throttle is open: a fuel cut."""
    name = f"injector_time_{cyl}"
    if name not in log:
        return np.zeros(time.shape, bool)
    pulse = log[name].to_series().astype(float)
    step = float(np.nanmedian(np.diff(time))) if time.size > 1 else 1.0
    window = max(3, int(round(1.0 / step)))
    median = pulse.rolling(window, min_periods=1).median().values
    with np.errstate(invalid="ignore"):
        return pulse.values < limits.fuel_cut_fraction * median


def _off_table(log, tune, rpm, cyl):
    if tune is None:
        return np.zeros(rpm.shape, bool)
    table = getattr(tune, f"ve_{cyl}")
    load = _load_values(log, table)
    x_axis = table["rpm"].values
    y_axis = table[table.dims[1]].values
    with np.errstate(invalid="ignore"):
        inside = (
            (rpm >= x_axis[0])
            & (rpm <= x_axis[-1])
            & (load >= y_axis[0])
            & (load <= y_axis[-1])
        )
    return ~inside


def _load_values(log, table):
    load_dim = table.dims[1]
    channel = {"map": "manifold_pressure", "tps": "throttle_position"}
    if load_dim not in channel:
        raise AnalysisError(
            f"VE table load axis {load_dim!r} is not supported; expected "
            "'map' [kPa] or 'tps' [%]"
        )
    return _channel(log, channel[load_dim])


def _first_reason(reasons, size):
    code = np.full(size, -1, dtype=int)
    for k, reason in enumerate(REJECTION_REASONS):
        flagged = reasons.get(reason, np.zeros(size, bool)) & (code < 0)
        code[flagged] = k
    return code


def _correction_part(log, tune, samples, sensors, settings, reference, locked):
    settings = settings or corr.CorrectionSettings()
    time = log["time"].values
    duration = _sample_durations(time)
    per_cylinder = []
    for cyl in CYLINDERS:
        table = getattr(tune, f"ve_{cyl}")
        if cyl not in sensors:
            stats = {
                "weight": np.zeros(table.shape),
                "hits": np.zeros(table.shape),
                "ratio": np.full(table.shape, np.nan),
                "spread": np.full(table.shape, np.nan),
            }
        else:
            stats = corr.bin_ratios(
                log["engine_speed"].values,
                _load_values(log, table),
                samples[f"ratio_{cyl}"].values,
                duration,
                table["rpm"].values,
                table[table.dims[1]].values,
            )
        mask = np.zeros(table.shape, bool)
        if locked is not None and cyl in locked:
            mask = np.asarray(locked[cyl], dtype=bool)
            if mask.shape != table.shape:
                raise AnalysisError(
                    f"locked cells for the {cyl} cylinder have shape "
                    f"{mask.shape}; the VE table is {table.shape}"
                )
        smoothed = corr.smooth_ratio(
            stats["ratio"], stats["weight"], settings.smoothing
        )
        ref_table = None
        if reference is not None:
            ref_table = getattr(reference, f"ve_{cyl}").values
        applied = corr.bounded_ratio(
            smoothed,
            stats["weight"],
            settings,
            current=table.values,
            reference=ref_table,
            locked=mask,
        )
        extra = {
            "confidence": corr.confidence(
                stats["weight"], stats["spread"], settings
            ),
            "locked": mask.astype(np.int8),
            "fill_proposal": corr.fill_proposal(
                stats["ratio"], stats["weight"], settings.min_weight
            ),
        }
        ds = corr.correction_dataset(table, stats, applied, extra)
        ds.attrs["sensor"] = sensors.get(cyl, "none")
        per_cylinder.append(ds)

    result = xr.concat(per_cylinder, dim="cylinder")
    result = result.assign_coords(cylinder=list(CYLINDERS))
    result.attrs["sensors"] = ", ".join(
        f"{cyl}: {sensors.get(cyl, 'none')}" for cyl in CYLINDERS
    )
    result.attrs["min_weight_s"] = settings.min_weight
    result.attrs["max_lean_step"] = settings.max_lean_step
    result.attrs["max_rich_step"] = settings.max_rich_step
    return result


def _sample_durations(time):
    """Time each sample represents, with log gaps capped at 2 steps."""
    if time.size < 2:
        return np.ones_like(time, dtype=float)
    dt = np.gradient(time)
    step = float(np.median(np.diff(time)))
    return np.clip(dt, 0.0, 2.0 * step)
