"""Wideband lambda channels: which ones work, and aligning them in time.

A wideband sensor reports the mixture that passed it after a transport
delay from the exhaust valve (50 to 1000 ms, shorter at high exhaust
flow) plus a first-order lag of about 100 ms. A sample is only useful
for VE correction after it has been moved back to the operating point
that produced it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xarray as xr

#: Stoichiometric air-fuel ratio of gasoline (mass ratio).
STOICH_GASOLINE = 14.7
#: Lambda range a Bosch LSU 4.9 class sensor can measure.
LAMBDA_RANGE = (0.65, 1.6)
#: Channels whose spread is below this are stuck, not measuring [AFR].
STUCK_STD = 0.02


@dataclass(frozen=True)
class WidebandStatus:
    """Whether one wideband channel can be used, and why.

    Attributes
    ----------
    name : str
        Variable name in the log (``afr_<sensor>``).
    usable : bool
        True when the channel measures a mixture.
    reason : str
        Plain-language reason, for reports and ``summary.json``.
    cylinder : str
        ``front``, ``rear``, ``both`` or ``unknown``.
    valid_fraction : float
        Fraction of logged samples in the sensor's range [1].
    """

    name: str
    usable: bool
    reason: str
    cylinder: str
    valid_fraction: float


def wideband_channels(log):
    """Return the names of the wideband AFR variables of a log."""
    return [
        name
        for name, var in log.data_vars.items()
        if var.attrs.get("kind") == "wideband"
    ]


def valid_afr_mask(afr, stoichiometric_afr=STOICH_GASOLINE):
    """Mark AFR samples inside the sensor's measuring range.

    Parameters
    ----------
    afr : array_like
        Wideband air-fuel ratio [1].
    stoichiometric_afr : float
        Stoichiometric AFR the sensor's output assumes [1].

    Returns
    -------
    numpy.ndarray of bool
        False for NaN, zero (sensor off or warming up) and readings at
        or beyond the ends of the lambda range (rails).
    """
    lam = np.asarray(afr, dtype=float) / stoichiometric_afr
    low, high = LAMBDA_RANGE
    with np.errstate(invalid="ignore"):
        return np.isfinite(lam) & (lam > low) & (lam < high)


def assess_wideband(log, name):
    """Decide whether a wideband channel is measuring.

    Parameters
    ----------
    log : xarray.Dataset
        Canonical log.
    name : str
        Wideband variable to check.

    Returns
    -------
    WidebandStatus
        Unusable when the channel is empty, reads 0 or a rail most of
        the time, or is stuck at a constant (a sensor input with nothing
        connected reads a fixed voltage).
    """
    var = log[name]
    stoich = float(var.attrs.get("stoichiometric_afr", STOICH_GASOLINE))
    cylinder = var.attrs.get("cylinder", "unknown")
    values = np.asarray(var.values, dtype=float)
    logged = values[np.isfinite(values)]

    def status(usable, reason, fraction=0.0):
        return WidebandStatus(name, usable, reason, cylinder, fraction)

    if logged.size == 0:
        return status(False, "no samples logged")
    valid = valid_afr_mask(logged, stoich)
    fraction = float(valid.mean())
    if np.all(logged == 0):
        return status(False, "reads 0 throughout (sensor off or absent)")
    spread = float(np.std(logged))
    if spread < STUCK_STD:
        return status(
            False,
            f"stuck at {float(np.median(logged)):.2f} AFR (standard "
            f"deviation {spread:.3f} < {STUCK_STD}): not connected",
        )
    if fraction < 0.5:
        return status(
            False,
            f"only {fraction:.0%} of samples inside lambda "
            f"{LAMBDA_RANGE[0]}..{LAMBDA_RANGE[1]}: railed or warming up",
            fraction,
        )
    return status(
        True,
        f"measuring: {fraction:.0%} of samples in range, AFR "
        f"{np.min(logged[valid]):.2f} to {np.max(logged[valid]):.2f}",
        fraction,
    )


def assign_sensors(log, preferred=None):
    """Choose which wideband feeds each cylinder's VE table.

    Parameters
    ----------
    log : xarray.Dataset
        Canonical log.
    preferred : str, optional
        A wideband variable to use for both cylinders; it must be
        usable.

    Returns
    -------
    assignment : dict
        ``{"front": name, "rear": name}``; a cylinder is missing when
        no usable sensor sees it.
    statuses : list of WidebandStatus
        The check of every wideband channel.

    Notes
    -----
    A cylinder's own sensor is preferred. A sensor that sees both
    cylinders (in the collector), or whose position is unknown, feeds
    both tables only when a cylinder has no sensor of its own; such a
    correction is the average of the two cylinders and the result
    says so.
    """
    statuses = [assess_wideband(log, n) for n in wideband_channels(log)]
    usable = [s for s in statuses if s.usable]
    if preferred is not None:
        chosen = [s for s in statuses if s.name == preferred]
        if not chosen:
            raise ValueError(
                f"wideband channel {preferred!r} not found; the log has "
                f"{[s.name for s in statuses]}"
            )
        if not chosen[0].usable:
            raise ValueError(
                f"wideband channel {preferred!r} cannot be used: "
                f"{chosen[0].reason}"
            )
        return {"front": preferred, "rear": preferred}, statuses

    assignment = {}
    for cylinder in ("front", "rear"):
        own = [s for s in usable if s.cylinder == cylinder]
        shared = [s for s in usable if s.cylinder in ("both", "unknown")]
        pick = (own or shared or [None])[0]
        if pick is not None:
            assignment[cylinder] = pick.name
    return assignment, statuses


def align_to_operating_point(time, values, delay):
    """Move sensor samples back to the operating point that caused them.

    Parameters
    ----------
    time : array_like
        Sample times [s], increasing.
    values : array_like
        Sensor readings on those times.
    delay : float or array_like
        Transport delay from the cylinder to the reading [s], a scalar
        or one value per sample (the delay for the operating point at
        that sample); NaN where the delay is unknown.

    Returns
    -------
    numpy.ndarray
        ``values`` at ``time + delay``, linearly interpolated; NaN where
        that time is past the end of the log or the reading is NaN.
    """
    t = np.asarray(time, dtype=float)
    y = np.asarray(values, dtype=float)
    d = np.broadcast_to(np.asarray(delay, dtype=float), t.shape)
    if np.any(d < 0) or np.any(np.isinf(d)):
        raise ValueError(
            "transport delay must be finite and >= 0 s, got values from "
            f"{np.nanmin(d)} to {np.nanmax(d)}"
        )
    # A NaN delay (no operating point to compute it from) gives NaN.
    target = np.where(np.isfinite(d), t + d, np.inf)
    finite = np.isfinite(y)
    if finite.sum() < 2:
        return np.full_like(t, np.nan)
    out = np.interp(target, t[finite], y[finite])

    # No extrapolation, and no bridging of gaps in the sensor trace.
    nearest_gap = np.interp(target, t, (~finite).astype(float))
    out[(target > t[finite][-1]) | (nearest_gap > 0)] = np.nan
    return out


def lambda_dataarray(afr, stoichiometric_afr, name):
    """Wrap a lambda array with its attributes (helper for results)."""
    return xr.DataArray(
        np.asarray(afr, dtype=float) / stoichiometric_afr,
        dims="time",
        name=name,
        attrs={"units": "1", "long_name": f"lambda from {name}"},
    )


def transport_delay(engine_speed, manifold_pressure):
    """Estimate the exhaust transport delay to a wideband sensor.

    Parameters
    ----------
    engine_speed : array_like
        Engine speed [rpm].
    manifold_pressure : array_like
        Manifold absolute pressure [kPa].

    Returns
    -------
    numpy.ndarray
        Delay [s], 0.05 to 1.0 s: about 0.6 s at 1000 rpm and 30 kPa,
        0.11 s at 5500 rpm and 100 kPa.

    Notes
    -----
    The plug-flow model of
    :func:`dynoai_lab.sim.sensor.exhaust_transport_delay` with its
    default exhaust volume. It is an estimate inside the range
    measured on real vehicles, not a fit to any one exhaust; pass
    ``delay=`` to :func:`~dynoai_lab.analysis.pull.analyze_pull` when
    the installation's delay is known.
    """
    from dynoai_lab.sim.sensor import exhaust_transport_delay

    return exhaust_transport_delay(engine_speed, manifold_pressure)


def recording_stretches(log, time):
    """Number each sample's stretch of continuous recording.

    A new stretch starts after a gap of more than five sample periods
    and where a simulated log's ``segment`` changes (plan steps that do
    not continue from each other).

    Parameters
    ----------
    log : xarray.Dataset
        The log; only its ``segment`` variable is read, when present.
    time : array_like
        Sample times [s], one per sample of the log.

    Returns
    -------
    numpy.ndarray of int
        0 for the first stretch, rising by one at each break.
    """
    time = np.asarray(time, dtype=float)
    if time.size == 0:
        return np.zeros(0, dtype=int)
    breaks = np.zeros(time.size - 1, dtype=bool)
    if time.size > 1:
        step = np.diff(time)
        breaks |= step > 5.0 * np.median(step)
    if "segment" in log:
        segment = np.asarray(log["segment"].values)
        breaks |= segment[1:] != segment[:-1]
    return np.concatenate([[0], np.cumsum(breaks)])
