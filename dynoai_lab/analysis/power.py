"""Power and torque on an inertia dyno from the drum speed trace.

An inertia dyno measures no force: the engine accelerates a drum of
known inertia, so the power reaching the drum is
``P = I_eq · α · ω = m_eq · a · v`` with ``m_eq = I_eq / r²`` the drum's
equivalent mass at its surface, ``a`` the surface acceleration and ``v``
the surface speed. Losses in the drum bearings and air add a force
``F_loss`` that the engine also overcomes, so wheel power is
``(m_eq · a + F_loss) · v``. Engine torque is power over engine angular
speed, so the gear ratio cancels.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass

import numpy as np
from scipy.ndimage import median_filter
from scipy.signal import savgol_filter

from dynoai_lab.units import rpm_to_rad_s

logger = logging.getLogger(__name__)

#: Engine speeds below this are not a running engine [rpm].
MIN_ENGINE_SPEED = 300.0


class PowerWarning(UserWarning):
    """A drum speed trace that the power calculation cannot trust."""


@dataclass(frozen=True)
class DrumModel:
    """An inertia drum reduced to its surface.

    Attributes
    ----------
    equivalent_mass : float
        Every rotating inertia reflected to the drum surface,
        ``I_eq / r²`` [kg].
    loss_force : float
        Constant force that bearing and air losses take at the drum
        surface [N]; 0 gives drum power rather than wheel power.
    source : str
        How the figures were obtained.
    """

    equivalent_mass: float
    loss_force: float = 0.0
    source: str = ""

    def __post_init__(self):
        if not np.isfinite(self.equivalent_mass) or self.equivalent_mass <= 0:
            raise ValueError(
                "equivalent_mass must be a positive mass in kg, got "
                f"{self.equivalent_mass!r}"
            )

    @classmethod
    def from_inertia(cls, inertia, radius, loss_force=0.0, source=""):
        """Build a drum model from its inertia [kg·m²] and radius [m]."""
        if radius <= 0:
            raise ValueError(f"drum radius must be > 0 m, got {radius!r}")
        return cls(inertia / radius**2, loss_force, source)


def estimate_drum_model(force, acceleration, min_acceleration=0.5):
    """Fit a drum model to a dyno's own force and acceleration channels.

    Parameters
    ----------
    force : array_like
        Tractive force at the drum surface that the dyno reports [N].
    acceleration : array_like
        Drum surface acceleration that the dyno reports [m/s²].
    min_acceleration : float
        Samples with smaller ``|acceleration|`` are left out, because
        the loss term dominates there [m/s²].

    Returns
    -------
    DrumModel
        Least-squares fit of ``force = m_eq · acceleration + F_loss``.

    Notes
    -----
    A dyno computes its force from its own inertia, so this recovers
    the inertia the manufacturer configured without opening the dyno.
    """
    f = np.asarray(force, dtype=float)
    a = np.asarray(acceleration, dtype=float)
    use = np.isfinite(f) & np.isfinite(a) & (np.abs(a) >= min_acceleration)
    if use.sum() < 3:
        raise ValueError(
            "need at least 3 samples with |acceleration| >= "
            f"{min_acceleration} m/s² and finite force to fit the drum, "
            f"got {int(use.sum())}"
        )
    design = np.column_stack([a[use], np.ones(use.sum())])
    (mass, loss), *_ = np.linalg.lstsq(design, f[use], rcond=None)
    return DrumModel(
        float(mass),
        float(loss),
        f"least-squares fit of force on acceleration, {int(use.sum())} "
        "samples",
    )


def drum_acceleration(time, drum_speed, window=0.45, polyorder=2, max_gap=2):
    """Differentiate drum speed, robust to logger timing slips.

    Parameters
    ----------
    time : array_like
        Sample times [s], increasing.
    drum_speed : array_like
        Drum surface speed [m/s]; NaN outside the recorded span.
    window : float
        Length of the Savitzky-Golay smoothing window [s].
    polyorder : int
        Order of the local polynomial.
    max_gap : int
        Interior gaps of at most this many missing or non-finite
        samples are bridged by linear interpolation; longer gaps split
        the trace into runs that are differentiated separately.

    Returns
    -------
    numpy.ndarray
        Drum surface acceleration [m/s²], NaN where speed is missing.

    Notes
    -----
    Steps, on each run of finite samples:

    1. Speed increments ``Δv/Δt`` between samples.
    2. Increments more than 3 scaled median absolute deviations from
       their 7-sample running median are replaced by that median. A
       20 Hz dyno export shows these as single steps in speed: the
       speed sampler drifts against the time stamps and catches up by
       one late sample (WinPEP 8 exports show a step about every
       second).
    3. A Savitzky-Golay filter smooths the increments. Smoothing the
       derivative, not power afterwards, keeps peaks at their rpm.
    4. When steps were replaced, the acceleration is scaled so that
       its integral equals the measured speed change over the run,
       which spreads the catch-up evenly instead of dropping it. The
       scale is applied only within ±3 %; beyond that the trace has
       real transients and a warning is raised.
    """
    t = np.asarray(time, dtype=float)
    v = np.asarray(drum_speed, dtype=float)
    v = np.where(np.isfinite(v), v, np.nan)
    v = _bridge_gaps(t, v, max_gap)
    out = np.full_like(v, np.nan)

    runs = [r for r in _finite_runs(v) if r[1] - r[0] >= polyorder + 3]
    if not runs:
        longest = max((b - a for a, b in _finite_runs(v)), default=0)
        raise ValueError(
            f"drum speed has only {longest} consecutive valid samples; "
            f"need at least {polyorder + 3} to differentiate"
        )
    if len(runs) > 1:
        warnings.warn(
            f"drum speed has {len(runs) - 1} gap(s) longer than {max_gap} "
            "samples; each part is differentiated on its own and power "
            "is missing in the gaps",
            PowerWarning,
            stacklevel=2,
        )
    for start, stop in runs:
        out[start:stop] = _differentiate_run(
            t[start:stop], v[start:stop], window, polyorder
        )
    return out


def _bridge_gaps(t, v, max_gap):
    """Interpolate interior runs of at most ``max_gap`` NaN samples."""
    missing = ~np.isfinite(v)
    if not missing.any() or max_gap < 1:
        return v
    # Runs of missing samples are the finite runs of this indicator.
    runs = _finite_runs(np.where(missing, 1.0, np.nan))
    filled = v.copy()
    finite = ~missing
    bridged = 0
    for start, stop in runs:
        interior = start > 0 and stop < v.size
        if interior and stop - start <= max_gap:
            filled[start:stop] = np.interp(t[start:stop], t[finite], v[finite])
            bridged += stop - start
    if bridged:
        warnings.warn(
            f"drum speed: {bridged} missing or non-finite sample(s) "
            "bridged by linear interpolation",
            PowerWarning,
            stacklevel=3,
        )
    return filled


def _differentiate_run(t_run, v_run, window, polyorder):
    """Differentiate one gap-free run of drum speed (steps 1 to 4)."""
    dt = np.diff(t_run)
    if np.any(dt <= 0):
        raise ValueError(
            "time must increase through the drum speed trace; it does not "
            f"between {t_run[:-1][dt <= 0][0]} s and the next sample"
        )

    # Increments at interval midpoints, with isolated steps replaced.
    increments = np.diff(v_run) / dt
    cleaned, replaced = _replace_outliers(increments, half_width=3)

    # Smooth over about `window` seconds of increments.
    step = float(np.median(dt))
    length = max(int(round(window / step)), polyorder + 1)
    length = min(length | 1, increments.size - (1 - increments.size % 2))
    if length > polyorder:
        cleaned = savgol_filter(cleaned, length, polyorder, mode="interp")

    if replaced.any():
        cleaned = cleaned * _catch_up_scale(cleaned, dt, v_run)
    return _midpoints_to_samples(t_run, cleaned)


def _midpoints_to_samples(t, values):
    """Interpolate interval-midpoint values onto the sample times.

    The first and last samples lie half a step outside the midpoints;
    they are extrapolated along the nearest two midpoints.
    """
    midpoints = 0.5 * (t[1:] + t[:-1])
    result = np.interp(t, midpoints, values)
    if values.size >= 2:
        for end, (a, b) in ((0, (0, 1)), (-1, (-2, -1))):
            slope = (values[b] - values[a]) / (midpoints[b] - midpoints[a])
            result[end] = values[a] + slope * (t[end] - midpoints[a])
    return result


def _replace_outliers(values, half_width=3, threshold=3.0):
    """Replace values far from their running median by that median."""
    size = 2 * half_width + 1
    median = median_filter(values, size=size, mode="nearest")
    spread = 1.4826 * median_filter(
        np.abs(values - median), size=size, mode="nearest"
    )

    # A floor on the spread keeps a noise-free trace from flagging
    # rounding-level differences.
    floor = 1e-6 * max(float(np.max(np.abs(values))), 1.0)
    outlier = np.abs(values - median) > threshold * np.maximum(spread, floor)
    return np.where(outlier, median, values), outlier


def _catch_up_scale(acceleration, dt, speed, limit=0.03):
    """Return the factor that makes ∫a·dt match the measured speed gain."""
    integral = float(np.sum(acceleration * dt))
    gain = float(speed[-1] - speed[0])
    if abs(integral) < 1e-9:
        return 1.0
    scale = gain / integral
    if abs(scale - 1.0) > limit:
        warnings.warn(
            f"drum speed gain {gain:.3f} m/s differs from the integrated "
            f"acceleration {integral:.3f} m/s by more than {limit:.0%}; "
            "the trace has transients beyond timing slips, so the "
            "acceleration is left unscaled",
            PowerWarning,
            stacklevel=3,
        )
        return 1.0
    logger.debug("timing-slip scale on drum acceleration: %.4f", scale)
    return scale


def drum_power(drum, drum_speed, acceleration):
    """Compute power into the drum and its losses.

    Parameters
    ----------
    drum : DrumModel
        Equivalent mass and loss force of the drum.
    drum_speed : array_like
        Drum surface speed [m/s].
    acceleration : array_like
        Drum surface acceleration [m/s²].

    Returns
    -------
    numpy.ndarray
        ``(m_eq · a + F_loss) · v`` [W].
    """
    v = np.asarray(drum_speed, dtype=float)
    a = np.asarray(acceleration, dtype=float)
    return (drum.equivalent_mass * a + drum.loss_force) * v


def engine_torque(power, engine_speed):
    """Compute engine torque from power and engine speed.

    Parameters
    ----------
    power : array_like
        Power [W].
    engine_speed : array_like
        Crankshaft speed [rpm]; below ``MIN_ENGINE_SPEED`` the torque
        is NaN, because P / ω blows up as ω goes to 0.

    Returns
    -------
    numpy.ndarray
        Torque [N·m], ``P / ω``.
    """
    rpm = np.asarray(engine_speed, dtype=float)
    omega = rpm_to_rad_s(rpm)
    with np.errstate(divide="ignore", invalid="ignore"):
        torque = np.asarray(power, dtype=float) / omega
    return np.where(rpm >= MIN_ENGINE_SPEED, torque, np.nan)


def _finite_runs(values):
    """Return ``(start, stop)`` of each run of finite values."""
    finite = np.concatenate([[False], np.isfinite(values), [False]])
    edges = np.flatnonzero(np.diff(finite.astype(int)))
    return list(zip(edges[::2], edges[1::2], strict=True))
