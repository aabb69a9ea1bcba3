"""Weather correction factors for engine power.

Each factor multiplies power measured in the day's weather to give power
in a standard atmosphere. Inputs are SI plus kPa and °C; the published
formulas use mbar, inHg and °F, and the conversion happens here.
"""

from __future__ import annotations

import warnings

import numpy as np

from dynoai_lab.units import INHG, celsius_to_fahrenheit

#: Range of plausible correction factors; outside it, the weather inputs
#: are probably wrong (a unit mix-up or a dead sensor).
PLAUSIBLE_FACTOR = (0.9, 1.09)


class WeatherWarning(UserWarning):
    """A correction factor outside the plausible range."""


def saturation_vapour_pressure(temperature):
    """Compute the saturation vapour pressure of water over liquid water.

    Parameters
    ----------
    temperature : array_like
        Air temperature [°C].

    Returns
    -------
    numpy.ndarray
        Saturation vapour pressure [kPa].

    Notes
    -----
    Buck's equation,
    ``e_s = 0.61121 · exp((18.678 − T/234.5) · T / (257.14 + T))``, good
    to about 0.05 % between −40 and 50 °C.

    References
    ----------
    .. [1] A. L. Buck (1981), "New equations for computing vapor pressure
       and enhancement factor", J. Appl. Meteor. 20, 1527-1532; the
       constants are those of Buck's 1996 revision.
    """
    t = np.asarray(temperature, dtype=float)
    return 0.61121 * np.exp((18.678 - t / 234.5) * (t / (257.14 + t)))


def dry_air_pressure(pressure, temperature, relative_humidity):
    """Compute dry-air pressure: barometric less water vapour pressure.

    Parameters
    ----------
    pressure : array_like
        Barometric (total) pressure [kPa].
    temperature : array_like
        Air temperature [°C].
    relative_humidity : array_like
        Relative humidity [%], 0 to 100.

    Returns
    -------
    numpy.ndarray
        Partial pressure of dry air [kPa].
    """
    rh = np.asarray(relative_humidity, dtype=float)
    if np.any((rh < 0) | (rh > 100)):
        raise ValueError(
            f"relative_humidity must lie in 0..100 %, got {rh!r}; a "
            "fraction (0..1) must be multiplied by 100"
        )
    p = np.asarray(pressure, dtype=float)
    t = np.asarray(temperature, dtype=float)
    if np.any(~np.isfinite(p) | (p <= 0)):
        raise ValueError(
            f"barometric pressure must be a positive number of kPa, got {p!r}"
        )
    if np.any(~np.isfinite(t) | (t < -60) | (t > 70)):
        raise ValueError(
            f"air temperature must lie in -60..70 °C, got {t!r}; a value "
            "in °F must be converted first"
        )
    vapour = rh / 100.0 * saturation_vapour_pressure(t)
    return p - vapour


def sae_j1349(pressure, temperature, relative_humidity, revision="1990"):
    """Compute the SAE J1349 power correction factor.

    Parameters
    ----------
    pressure : array_like
        Barometric pressure [kPa].
    temperature : array_like
        Intake air temperature [°C].
    relative_humidity : array_like
        Relative humidity [%].
    revision : {"1990", "2004"}
        Which revision's constants to use.

    Returns
    -------
    numpy.ndarray
        Correction factor [1]; corrected power = factor × measured power.

    Notes
    -----
    ``CF = a · (990 / Pd) · sqrt((T + 273) / 298) − b`` with ``Pd`` the
    dry-air pressure in mbar and ``T`` in °C; ``a, b = 1.18, 0.18``
    (1990) or ``1.176, 0.176`` (2004). Dynojet's WinPEP reports this
    factor as "Correction Factor".

    References
    ----------
    .. [1] SAE J1349 (June 1990), Engine Power Test Code, Spark Ignition
       and Compression Ignition, Net Power Rating.
    """
    constants = {"1990": (1.18, 0.18), "2004": (1.176, 0.176)}
    if revision not in constants:
        raise ValueError(
            f"unknown SAE J1349 revision {revision!r}; use one of "
            f"{sorted(constants)}"
        )
    a, b = constants[revision]

    # Dry pressure in mbar; 1 kPa is 10 mbar.
    dry_mbar = dry_air_pressure(pressure, temperature, relative_humidity)
    dry_mbar = dry_mbar * 10.0
    t = np.asarray(temperature, dtype=float)
    factor = a * (990.0 / dry_mbar) * np.sqrt((t + 273.0) / 298.0) - b

    _warn_if_implausible(
        factor,
        "SAE J1349",
        _describe(pressure, temperature, relative_humidity),
    )
    return factor


def sae_j607(pressure, temperature, relative_humidity):
    """Compute the SAE J607 (small engine) power correction factor.

    Parameters
    ----------
    pressure : array_like
        Barometric pressure [kPa].
    temperature : array_like
        Air temperature [°C].
    relative_humidity : array_like
        Relative humidity [%].

    Returns
    -------
    numpy.ndarray
        Correction factor [1].

    Notes
    -----
    ``CF = (29.92 / Pd) · sqrt((T_F + 460) / 520)`` with ``Pd`` the
    dry-air pressure in inHg and ``T_F`` in °F.
    """
    dry_inhg = dry_air_pressure(pressure, temperature, relative_humidity)
    dry_inhg = dry_inhg / INHG
    t_f = celsius_to_fahrenheit(temperature)
    factor = (29.92 / dry_inhg) * np.sqrt((t_f + 460.0) / 520.0)

    _warn_if_implausible(
        factor, "SAE J607", _describe(pressure, temperature, relative_humidity)
    )
    return factor


def din_70020(pressure, temperature):
    """Compute the DIN 70020 power correction factor.

    Parameters
    ----------
    pressure : array_like
        Barometric (total, not dry) pressure [kPa].
    temperature : array_like
        Air temperature [°C].

    Returns
    -------
    numpy.ndarray
        Correction factor [1].

    Notes
    -----
    ``CF = (1013 / p) · sqrt((273 + T) / 293)`` with ``p`` in mbar.
    """
    p_mbar = np.asarray(pressure, dtype=float) * 10.0
    t = np.asarray(temperature, dtype=float)
    factor = (1013.0 / p_mbar) * np.sqrt((273.0 + t) / 293.0)

    _warn_if_implausible(factor, "DIN 70020", _describe(pressure, temperature))
    return factor


CORRECTION_STANDARDS = {
    "SAE J1349": lambda p, t, rh: sae_j1349(p, t, rh),
    "SAE J607": sae_j607,
    "DIN 70020": lambda p, t, rh: din_70020(p, t),
    "none": lambda p, t, rh: np.ones_like(np.asarray(p, dtype=float)),
}


def correction_factor(standard, pressure, temperature, relative_humidity):
    """Compute the correction factor of a named standard.

    Parameters
    ----------
    standard : str
        One of ``CORRECTION_STANDARDS``: "SAE J1349", "SAE J607",
        "DIN 70020" or "none".
    pressure : array_like
        Barometric pressure [kPa].
    temperature : array_like
        Air temperature [°C].
    relative_humidity : array_like
        Relative humidity [%].

    Returns
    -------
    numpy.ndarray
        Correction factor [1].
    """
    try:
        formula = CORRECTION_STANDARDS[standard]
    except KeyError:
        raise ValueError(
            f"unknown correction standard {standard!r}; use one of "
            f"{sorted(CORRECTION_STANDARDS)}"
        ) from None
    return formula(pressure, temperature, relative_humidity)


def _warn_if_implausible(factor, name, inputs=""):
    low, high = PLAUSIBLE_FACTOR
    finite = factor[np.isfinite(factor)] if np.ndim(factor) else factor
    if np.any((finite < low) | (finite > high)):
        warnings.warn(
            f"{name} correction factor {np.round(finite, 4)}{inputs} is "
            f"outside {low}..{high}, which is normal only at high "
            "altitude or in extreme heat; check the weather inputs' units "
            "(pressure in kPa, temperature in °C, humidity in %)",
            WeatherWarning,
            stacklevel=3,
        )


def _describe(pressure, temperature, relative_humidity=None):
    """Describe scalar weather inputs for a warning; empty for arrays."""
    if np.ndim(pressure) or np.ndim(temperature):
        return ""
    text = f" (from {float(pressure):.1f} kPa, {float(temperature):.1f} °C"
    if relative_humidity is not None and not np.ndim(relative_humidity):
        text += f", {float(relative_humidity):.0f} % humidity"
    return text + ")"
