"""Unit conversions used at the edges of the library.

Inside the library every quantity is SI, except engine and drum speeds
in rpm and pressures in kPa where the ECU's own tables use them. These
helpers convert the units that dyno and ECU files write.

References
----------
.. [1] NIST SP 811 (2008), Guide for the Use of the International System
   of Units, appendix B: conversion factors.
"""

from __future__ import annotations

import numpy as np

#: 1 mile per hour [m/s], exact (NIST SP 811).
MPH = 0.44704
#: 1 pound-force [N] (NIST SP 811).
LBF = 4.4482216152605
#: 1 foot [m], exact.
FOOT = 0.3048
#: 1 inch [m], exact.
INCH = 0.0254
#: 1 pound-force foot [N·m].
LBF_FT = LBF * FOOT
#: 1 mechanical horsepower, 550 ft·lbf/s [W].
HP = 745.69987158227022
#: 1 cubic inch [m³].
CUBIC_INCH = INCH**3
#: 1 inch of mercury at 0 °C [kPa] (NIST SP 811).
INHG = 3.386389
#: 1 pound (avoirdupois) [kg], exact.
POUND = 0.45359237
#: Specific gas constant of dry air [J/(kg·K)].
R_AIR = 287.05
#: Zero Celsius [K].
ZERO_CELSIUS = 273.15


def rpm_to_rad_s(rpm):
    """Convert a rotational speed [rpm] to angular speed [rad/s]."""
    return np.asarray(rpm, dtype=float) * (2.0 * np.pi / 60.0)


def rad_s_to_rpm(omega):
    """Convert an angular speed [rad/s] to rotational speed [rpm]."""
    return np.asarray(omega, dtype=float) * (60.0 / (2.0 * np.pi))


def fahrenheit_to_celsius(temp_f):
    """Convert a temperature [°F] to [°C]."""
    return (np.asarray(temp_f, dtype=float) - 32.0) * (5.0 / 9.0)


def celsius_to_fahrenheit(temp_c):
    """Convert a temperature [°C] to [°F]."""
    return np.asarray(temp_c, dtype=float) * (9.0 / 5.0) + 32.0


def kw_to_hp(power_kw):
    """Convert power [kW] to mechanical horsepower [hp]."""
    return np.asarray(power_kw, dtype=float) * (1000.0 / HP)


def hp_to_kw(power_hp):
    """Convert mechanical horsepower [hp] to power [kW]."""
    return np.asarray(power_hp, dtype=float) * (HP / 1000.0)


def nm_to_lbft(torque_nm):
    """Convert torque [N·m] to [lbf·ft]."""
    return np.asarray(torque_nm, dtype=float) / LBF_FT


def lbft_to_nm(torque_lbft):
    """Convert torque [lbf·ft] to [N·m]."""
    return np.asarray(torque_lbft, dtype=float) * LBF_FT
