"""Inertia drum dynamometer and weather for the simulator.

An inertia dyno measures power from how fast the engine accelerates a
heavy drum, ``P = I·α·ω``. An eddy-current absorber on the same shaft
can hold a speed, hold a sweep rate or apply a set load; it can only
absorb, never drive. Bearings, drum windage and the tyre rolling on
the drum take a loss torque ``T0 + c·ω²``, which a coast-down measures
(:func:`fit_coast_down`). The drum inertia is not published by Dynojet,
so the presets carry an estimate and say how it was made.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from dynoai_lab.sim import physics
from dynoai_lab.units import INCH


@dataclass(frozen=True)
class DrumDyno:
    """Inertia chassis dyno with an optional eddy-current absorber.

    Attributes
    ----------
    name : str
        Preset name.
    inertia : float
        Drum moment of inertia [kg·m²].
    radius : float
        Drum radius [m].
    bearing_torque : float
        Speed-independent bearing drag of the drum [N·m].
    windage_coefficient : float
        Drum aerodynamic drag, torque per angular speed squared
        [N·m·s²].
    tyre_rolling_force : float
        Rolling resistance of the strapped-down tyre on the drum [N].
    absorber_max_torque : float
        Largest torque the eddy-current absorber can hold [N·m]; 0 for
        a pure inertia dyno.
    source : str
        Where the figures come from.
    absorber_knee_speed : float
        Drum speed below which the absorber's torque capacity falls in
        proportion to speed [rad/s]; eddy currents need motion.
    """

    name: str
    inertia: float
    radius: float
    bearing_torque: float
    windage_coefficient: float
    tyre_rolling_force: float
    absorber_max_torque: float
    source: str
    absorber_knee_speed: float = 20.0

    def loss_torque(self, drum_omega):
        """Compute drum bearing and windage torque [N·m] at [rad/s]."""
        return physics.drum_loss_torque(
            drum_omega,
            bearing_torque=self.bearing_torque,
            windage_coefficient=self.windage_coefficient,
        )

    def absorber_capacity(self, drum_omega):
        """Compute the largest absorber torque [N·m] at [rad/s].

        ``T_max · min(ω / ω_knee, 1)``: full capacity above the knee
        speed, proportional to speed below it.
        """
        omega = np.abs(np.asarray(drum_omega, float))
        share = np.minimum(omega / self.absorber_knee_speed, 1.0)
        return self.absorber_max_torque * share


def _hollow_drum_inertia(mass, outer_radius, wall):
    """Return the inertia [kg·m²] of a thin-walled hollow cylinder."""
    inner = outer_radius - wall
    return 0.5 * mass * (outer_radius**2 + inner**2)


_DRUM_RADIUS = 9.0 * INCH
# Loss coefficients shared by the presets, estimates: 1.5 N·m of
# bearing drag, windage of 2e-5 N·m·s² (0.8 N·m at 200 rad/s) and 40 N
# of tyre rolling resistance on the drum.
_BEARING_TORQUE = 1.5
_WINDAGE = 2.0e-5
_TYRE_ROLLING = 40.0

_DYNOS = {
    "dynojet-250i-motorcycle": DrumDyno(
        name="dynojet-250i-motorcycle",
        inertia=round(_hollow_drum_inertia(200.0, _DRUM_RADIUS, 0.025), 1),
        radius=_DRUM_RADIUS,
        bearing_torque=_BEARING_TORQUE,
        windage_coefficient=_WINDAGE,
        tyre_rolling_force=_TYRE_ROLLING,
        absorber_max_torque=1000.0,
        source=(
            "Drum 'hollow, weighs around 200 kg and is 18 inches in "
            "diameter' per Dynojet's UK importer (Fast Bikes, May 2013). "
            "Inertia 9.4 kg·m² is an estimate for a 200 kg shell with a "
            "25 mm wall, I = m (r_o² + r_i²)/2; Dynojet does not publish "
            "it. Loss coefficients and absorber limit are estimates."
        ),
    ),
    "inertia-only-18in": DrumDyno(
        name="inertia-only-18in",
        inertia=round(_hollow_drum_inertia(200.0, _DRUM_RADIUS, 0.025), 1),
        radius=_DRUM_RADIUS,
        bearing_torque=_BEARING_TORQUE,
        windage_coefficient=_WINDAGE,
        tyre_rolling_force=_TYRE_ROLLING,
        absorber_max_torque=0.0,
        source=(
            "The same 200 kg, 18 in hollow drum (9.4 kg·m², estimate) "
            "without an absorber: only free inertia pulls and "
            "coast-downs can run on it."
        ),
    ),
    "heavy-drum-454kg": DrumDyno(
        name="heavy-drum-454kg",
        inertia=round(_hollow_drum_inertia(454.0, _DRUM_RADIUS, 0.025), 1),
        radius=_DRUM_RADIUS,
        bearing_torque=2.0 * _BEARING_TORQUE,
        windage_coefficient=_WINDAGE,
        tyre_rolling_force=_TYRE_ROLLING,
        absorber_max_torque=1000.0,
        source=(
            "An 18 in drum of 'around 1000 lbs' (454 kg), as some shops "
            "describe their rollers; inertia 21.3 kg·m² by the same "
            "hollow-shell estimate with a 25 mm wall. Slower pulls, "
            "more samples per rpm. Loss figures are estimates."
        ),
    ),
}


def dyno_names() -> list[str]:
    """Return the names of the built-in dyno presets."""
    return sorted(_DYNOS)


def get_dyno(name: str = "dynojet-250i-motorcycle") -> DrumDyno:
    """Return the dyno preset called `name`.

    Raises
    ------
    ValueError
        If `name` is unknown; the message lists the valid names.
    """
    try:
        return _DYNOS[name]
    except KeyError:
        raise ValueError(
            f"unknown dyno {name!r}; valid names are {', '.join(dyno_names())}"
        ) from None


@dataclass(frozen=True)
class Weather:
    """Weather at the dyno.

    Attributes
    ----------
    pressure : float
        Barometric (total) pressure [kPa].
    temperature : float
        Air temperature [°C].
    relative_humidity : float
        Relative humidity [%].

    Notes
    -----
    Pressure sets the wide-open-throttle MAP, temperature the intake
    air temperature, and humidity the share of the intake charge that
    is water vapour. A speed-density ECU counts the vapour as air, so
    humid weather makes the mixture richer by the factor
    :func:`dry_air_fraction`. The default is dry air at 101.325 kPa and
    25 °C, so that a matched VE table gives exactly the target lambda.
    """

    pressure: float = 101.325
    temperature: float = 25.0
    relative_humidity: float = 0.0

    def __post_init__(self):
        if not 50.0 <= self.pressure <= 110.0:
            raise ValueError(
                f"pressure must be 50 to 110 kPa, got {self.pressure!r}"
            )
        if not -30.0 <= self.temperature <= 55.0:
            raise ValueError(
                f"temperature must be -30 to 55 °C, got {self.temperature!r}"
            )
        if not 0.0 <= self.relative_humidity <= 100.0:
            raise ValueError(
                "relative_humidity must be 0 to 100 %, got "
                f"{self.relative_humidity!r}"
            )

    def dry_air_fraction(self) -> float:
        """Return the dry-air mole fraction of the ambient air [1]."""
        return float(
            physics.dry_air_fraction(
                self.pressure, self.temperature, self.relative_humidity
            )
        )

    def air_density(self) -> float:
        """Return the density of the humid ambient air [kg/m³].

        Notes
        -----
        .. math:: \\rho = \\frac{p_d}{R_d T} + \\frac{p_v}{R_v T}

        with :math:`R_d` = 287.05 and :math:`R_v` = 461.5 J/(kg·K).
        """
        temperature_k = self.temperature + 273.15
        vapour_kpa = self.pressure * (1.0 - self.dry_air_fraction())
        dry_kpa = self.pressure - vapour_kpa
        return (
            1000.0 * (dry_kpa / 287.05 + vapour_kpa / 461.5) / (temperature_k)
        )


def drum_surface_speed(drum_omega, radius):
    """Convert drum angular speed [rad/s] to surface speed [m/s]."""
    return np.asarray(drum_omega, float) * radius


def drum_omega_for_engine_speed(rpm, engine, gear, radius):
    """Compute drum angular speed [rad/s] for engine speed [rpm].

    The tyre rolls on the drum without slip, so
    :math:`\\omega_d = \\omega_e r_t / (N r_d)` with overall ratio
    :math:`N` in `gear` and tyre radius :math:`r_t`.
    """
    omega_engine = np.asarray(rpm, float) * (2.0 * math.pi / 60.0)
    return (
        omega_engine
        * engine.tyre_radius
        / (engine.overall_ratio(gear) * radius)
    )


def fit_coast_down(time, drum_speed, inertia, radius):
    """Fit the loss model ``T0 + c·ω²`` to a coast-down.

    Parameters
    ----------
    time : array_like
        Sample times [s] of one coast-down, increasing.
    drum_speed : array_like
        Drum surface speed [m/s] while nothing drives or brakes the
        drum.
    inertia : float
        Everything that coasts, reflected to the drum [kg·m²]: drum
        plus rear wheel times the squared speed ratio.
    radius : float
        Drum radius [m].

    Returns
    -------
    dict
        ``constant_torque`` [N·m] (bearings plus tyre rolling
        resistance times the drum radius), ``windage_coefficient``
        [N·m·s²] and ``rms_residual`` [N·m].

    Raises
    ------
    ValueError
        If fewer than 10 samples are given or the speed does not fall.

    Notes
    -----
    The deceleration is the derivative of a quadratic fitted to speed
    against time in windows of 0.5 s; then least squares on

    .. math:: -I \\dot\\omega = T_0 + c \\, \\omega^2
    """
    t = np.asarray(time, float)
    omega = np.asarray(drum_speed, float) / radius
    if t.size < 10:
        raise ValueError(f"coast-down needs at least 10 samples, got {t.size}")
    if not omega[-1] < omega[0]:
        raise ValueError(
            "coast-down speed must fall, got "
            f"{omega[0] * radius:.2f} m/s to {omega[-1] * radius:.2f} m/s"
        )
    step = float(np.median(np.diff(t)))
    half = max(2, int(round(0.25 / step)))
    alpha = np.full(t.size, np.nan)
    for k in range(half, t.size - half):
        window = slice(k - half, k + half + 1)
        slope = np.polyfit(t[window] - t[k], omega[window], 2)[1]
        alpha[k] = slope
    keep = np.isfinite(alpha)
    design = np.column_stack([np.ones(keep.sum()), omega[keep] ** 2])
    target = -inertia * alpha[keep]
    coefficients, *_ = np.linalg.lstsq(design, target, rcond=None)
    residual = target - design @ coefficients
    return {
        "constant_torque": float(coefficients[0]),
        "windage_coefficient": float(coefficients[1]),
        "rms_residual": float(np.sqrt(np.mean(residual**2))),
    }
