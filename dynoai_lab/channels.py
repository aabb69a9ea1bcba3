"""Registry of canonical log channels and the names they have in files.

Each canonical channel of ``docs/nomenclature.md`` is one :class:`Channel`:
its unit, a long name, a kind, a plausible range and the aliases under
which dyno and ECU exports write it. An :class:`Alias` names the source
group of a header (``dyno``, ``weather``, ``ecu``, ``pv``, ...), the
channel text after the group, the unit the file uses, and a priority.
When a log contains the same quantity from several sources (the Harley ECU
and the Power Vision both log Engine Speed), the alias with the lowest
priority number becomes the canonical variable and the others are kept
as extra channels.

Headers in WinPEP 8 exports look like ``(GROUP) Channel``, for example
``(DWRT CPU) Speed`` or ``(Harley - ECU Type 14 SW Level 141) Engine
Speed``. :func:`split_header` separates group and channel, and
:func:`source_of_group` maps the group to a short source name.

Unit strings used here: ``rpm``, ``krpm`` (thousands of rpm, as WinPEP
writes engine speed), ``kPa``, ``inHg``, ``hPa``, ``psi``, ``°C``,
``°F``, ``hp``, ``kW``, ``lbf·ft``, ``N·m``, ``lbf``, ``N``, ``mph``,
``m/s``, ``mph/s``, ``m/s²``, ``ms``, ``s``, ``%``, ``deg`` and ``1``
(dimensionless), and at file boundaries ``bar``, ``K``, ``km/h``,
``µs`` and ``lambda`` (lambda is converted to AFR by the readers,
because that needs the stoichiometric ratio).

ECU and logger formats without ``(GROUP)`` prefixes (TunerStudio,
RomRaider, Haltech, JetDrive) use :data:`FLAT_ALIASES` and
:func:`lookup_name`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np

from dynoai_lab import units

logger = logging.getLogger(__name__)

#: Stoichiometric air-fuel ratio of gasoline (mass ratio).
STOICHIOMETRIC_AFR_GASOLINE = 14.7

#: 1 pound per square inch [kPa] (NIST SP 811).
PSI = 6.894757293168361

#: Kinds of channel, by what the value describes.
KINDS = ("engine", "ecu", "vehicle", "dyno", "weather", "wideband")


@dataclass(frozen=True)
class Alias:
    """One way a file names a canonical channel.

    Attributes
    ----------
    source : str
        Short source name of the header's group, as returned by
        :func:`source_of_group` (for example ``"ecu"``, ``"pv"``,
        ``"dyno"``, ``"weather"``).
    channel : str
        Channel text after the group, compared case-insensitively.
    units : str
        Unit the file writes this channel in.
    priority : int
        Lower numbers win when several aliases of one channel are present.
    """

    source: str
    channel: str
    units: str
    priority: int = 0


@dataclass(frozen=True)
class Channel:
    """A canonical log channel.

    Attributes
    ----------
    name : str
        Canonical variable name, as in ``docs/nomenclature.md``.
    units : str
        Canonical unit of the variable.
    long_name : str
        Human-readable description for ``attrs["long_name"]``.
    kind : str
        One of :data:`KINDS`.
    valid_range : tuple of float
        Plausible (minimum, maximum) in canonical units. Values outside
        usually mean a unit mix-up or a dead sensor.
    aliases : tuple of Alias
        Names under which files write this channel.
    attrs : dict
        Extra attributes for the variable (for wideband channels
        ``kind``, ``cylinder`` and ``stoichiometric_afr``).
    """

    name: str
    units: str
    long_name: str
    kind: str
    valid_range: tuple[float, float]
    aliases: tuple[Alias, ...] = ()
    attrs: dict = field(default_factory=dict)

    def count_implausible(self, values) -> int:
        """Count finite values outside :attr:`valid_range`.

        Parameters
        ----------
        values : array_like
            Values in the canonical unit of this channel.

        Returns
        -------
        int
            Number of finite values below the minimum or above the maximum.
        """
        array = np.asarray(values, dtype=float)
        low, high = self.valid_range
        finite = array[np.isfinite(array)]
        return int(np.count_nonzero((finite < low) | (finite > high)))


def _ecu_and_pv(channel: str, unit: str) -> tuple[Alias, Alias]:
    """Return aliases for a channel that the ECU and Power Vision both log.

    The ECU group's value wins over the Power Vision copy of it.
    """
    return (Alias("ecu", channel, unit, 0), Alias("pv", channel, unit, 1))


def _wideband(
    name: str, long_name: str, cylinder: str, aliases: tuple[Alias, ...]
) -> Channel:
    """Build a wideband AFR channel with the attributes it requires."""
    return Channel(
        name=name,
        units="1",
        long_name=long_name,
        kind="wideband",
        valid_range=(0.0, 30.0),
        aliases=aliases,
        attrs={
            "kind": "wideband",
            "cylinder": cylinder,
            "stoichiometric_afr": STOICHIOMETRIC_AFR_GASOLINE,
        },
    )


def _build_registry() -> dict[str, Channel]:
    """Build the registry, one entry per canonical channel."""
    channels = [
        Channel(
            "engine_speed",
            "rpm",
            "engine speed",
            "engine",
            (0.0, 20000.0),
            (
                *_ecu_and_pv("Engine Speed", "krpm"),
                Alias("dyno", "Engine RPM", "krpm", 2),
            ),
        ),
        Channel(
            "manifold_pressure",
            "kPa",
            "manifold absolute pressure",
            "engine",
            (5.0, 400.0),
            _ecu_and_pv("Manifold Absolute Pressure", "kPa"),
        ),
        Channel(
            "throttle_position",
            "%",
            "throttle position",
            "engine",
            (-5.0, 105.0),
            _ecu_and_pv("Throttle Position", "%"),
        ),
        Channel(
            "coolant_temperature",
            "°C",
            "engine temperature (cylinder head on air-cooled engines)",
            "engine",
            (-40.0, 300.0),
            _ecu_and_pv("Engine Temperature", "°F"),
        ),
        Channel(
            "intake_air_temperature",
            "°C",
            "intake air temperature",
            "engine",
            (-40.0, 150.0),
            _ecu_and_pv("Intake Air Temperature", "°F"),
        ),
        Channel(
            "afr_target",
            "1",
            "ECU desired air-fuel ratio",
            "ecu",
            (5.0, 25.0),
            _ecu_and_pv("Desired Air/Fuel", "1"),
        ),
        Channel(
            "ve_front",
            "%",
            "volumetric efficiency in use, front cylinder",
            "ecu",
            (0.0, 200.0),
            _ecu_and_pv("VE Front", "%"),
        ),
        Channel(
            "ve_rear",
            "%",
            "volumetric efficiency in use, rear cylinder",
            "ecu",
            (0.0, 200.0),
            _ecu_and_pv("VE Rear", "%"),
        ),
        Channel(
            "accel_enrichment",
            "1",
            "acceleration enrichment (0 when inactive)",
            "ecu",
            (0.0, 100.0),
            _ecu_and_pv("Accel Enrichment", "1"),
        ),
        Channel(
            "decel_enleanment",
            "1",
            "deceleration enleanment (0 when inactive)",
            "ecu",
            (0.0, 100.0),
            _ecu_and_pv("Decel Enleanment", "1"),
        ),
        Channel(
            "closed_loop_trim_front",
            "%",
            "closed-loop integrator, front cylinder",
            "ecu",
            (-100.0, 200.0),
            _ecu_and_pv("Front Closed Loop Integrator", "%"),
        ),
        Channel(
            "closed_loop_trim_rear",
            "%",
            "closed-loop integrator, rear cylinder",
            "ecu",
            (-100.0, 200.0),
            _ecu_and_pv("Rear Closed Loop Integrator", "%"),
        ),
        Channel(
            "adaptive_fuel_factor_front",
            "%",
            "adaptive fuel factor, front cylinder",
            "ecu",
            (-100.0, 200.0),
            _ecu_and_pv("Front Adaptive Fuel Factor", "%"),
        ),
        Channel(
            "adaptive_fuel_factor_rear",
            "%",
            "adaptive fuel factor, rear cylinder",
            "ecu",
            (-100.0, 200.0),
            _ecu_and_pv("Rear Adaptive Fuel Factor", "%"),
        ),
        Channel(
            "spark_advance_front",
            "deg",
            "spark advance before top dead centre, front cylinder",
            "ecu",
            (-30.0, 70.0),
            _ecu_and_pv("Spark Advance Front", "deg"),
        ),
        Channel(
            "spark_advance_rear",
            "deg",
            "spark advance before top dead centre, rear cylinder",
            "ecu",
            (-30.0, 70.0),
            _ecu_and_pv("Spark Advance Rear", "deg"),
        ),
        # The Power Vision group writes injector time in seconds with 1 ms
        # resolution; the ECU group writes it in ms with 1 µs resolution.
        Channel(
            "injector_time_front",
            "s",
            "injector pulse width, front cylinder",
            "ecu",
            (0.0, 0.1),
            (
                Alias("ecu", "Injector Time Front", "ms", 0),
                Alias("pv", "Injector Time Front", "s", 1),
            ),
        ),
        Channel(
            "injector_time_rear",
            "s",
            "injector pulse width, rear cylinder",
            "ecu",
            (0.0, 0.1),
            (
                Alias("ecu", "Injector Time Rear", "ms", 0),
                Alias("pv", "Injector Time Rear", "s", 1),
            ),
        ),
        Channel(
            "vehicle_speed",
            "m/s",
            "vehicle speed from the ECU's speed sensor",
            "vehicle",
            (0.0, 150.0),
            _ecu_and_pv("Vehicle Speed", "mph"),
        ),
        Channel(
            "drum_speed",
            "m/s",
            "surface speed of the dyno drum",
            "dyno",
            (-1.0, 150.0),
            (
                Alias("dyno", "Speed", "mph", 0),
                Alias("dyno", "Speed 1", "mph", 1),
            ),
        ),
        Channel(
            "drum_force",
            "N",
            "tractive force at the drum surface, as the dyno computed it",
            "dyno",
            (-20000.0, 20000.0),
            (
                Alias("dyno", "Force", "lbf", 0),
                Alias("dyno", "Force 1", "lbf", 1),
                Alias("dyno", "Force Drum 1", "lbf", 2),
            ),
        ),
        Channel(
            "drum_acceleration",
            "m/s²",
            "drum surface acceleration, as the dyno computed it",
            "dyno",
            (-50.0, 50.0),
            (Alias("dyno", "Acceleration", "mph/s", 0),),
        ),
        Channel(
            "power",
            "kW",
            "power at the drum, uncorrected, as the dyno computed it",
            "dyno",
            (-500.0, 2000.0),
            (
                Alias("dyno", "Power (uncorrected)", "hp", 0),
                Alias("dyno", "Power Drum 1 (uncorrected)", "hp", 1),
            ),
        ),
        Channel(
            "power_corrected",
            "kW",
            "power at the drum, weather-corrected by the dyno",
            "dyno",
            (-500.0, 2000.0),
            (
                Alias("dyno", "Power", "hp", 0),
                Alias("dyno", "Power Drum 1", "hp", 1),
            ),
        ),
        Channel(
            "torque",
            "N·m",
            "engine torque, uncorrected, as the dyno computed it",
            "dyno",
            (-2000.0, 3000.0),
            (
                Alias("dyno", "Torque (uncorrected)", "lbf·ft", 0),
                Alias("dyno", "Torque Drum 1 (uncorrected)", "lbf·ft", 1),
            ),
        ),
        Channel(
            "torque_corrected",
            "N·m",
            "engine torque, weather-corrected by the dyno",
            "dyno",
            (-2000.0, 3000.0),
            (
                Alias("dyno", "Torque", "lbf·ft", 0),
                Alias("dyno", "Torque Drum 1", "lbf·ft", 1),
            ),
        ),
        Channel(
            "correction_factor",
            "1",
            "the dyno's weather correction factor",
            "dyno",
            (0.7, 1.5),
            (Alias("dyno", "Correction Factor", "1", 0),),
        ),
        # WinPEP writes barometric pressure in the unit set in its options
        # (kPa in the Harley exports, inHg in the car exports), so a
        # reader must check the unit from the values, see
        # guess_pressure_units.
        Channel(
            "ambient_pressure",
            "kPa",
            "barometric pressure at the dyno",
            "weather",
            (50.0, 110.0),
            (Alias("weather", "Pressure", "kPa", 0),),
        ),
        Channel(
            "ambient_temperature",
            "°C",
            "air temperature at the weather station",
            "weather",
            (-30.0, 60.0),
            (
                Alias("weather", "Temperature 1", "°F", 0),
                Alias("weather", "Temperature 2", "°F", 1),
            ),
        ),
        Channel(
            "relative_humidity",
            "%",
            "relative humidity at the weather station",
            "weather",
            (0.0, 100.0),
            (Alias("weather", "Humidity", "%", 0),),
        ),
        _wideband(
            "afr_front",
            "wideband air-fuel ratio, front cylinder (ECU sensor)",
            "front",
            _ecu_and_pv("WBO2 AFR Front", "1"),
        ),
        _wideband(
            "afr_rear",
            "wideband air-fuel ratio, rear cylinder (ECU sensor)",
            "rear",
            _ecu_and_pv("WBO2 AFR Rear", "1"),
        ),
        _wideband(
            "afr_lc1",
            "wideband air-fuel ratio, dyno analog input LC1",
            "unknown",
            (Alias("dyno", "LC1 Volts Petrol AFR", "1", 0),),
        ),
        _wideband(
            "afr_lc2",
            "wideband air-fuel ratio, dyno analog input LC2",
            "unknown",
            (Alias("dyno", "LC2 Volts Petrol AFR2", "1", 0),),
        ),
        _wideband(
            "afr_wb",
            "wideband air-fuel ratio, dyno analog input WB",
            "unknown",
            (Alias("dyno", "WB Volts Petrol AFR", "1", 0),),
        ),
        _wideband(
            "afr_1",
            "wideband air-fuel ratio, dyno AFR module sensor 1",
            "unknown",
            (Alias("dyno_afr", "Air/Fuel Ratio 1", "1", 0),),
        ),
        _wideband(
            "afr_2",
            "wideband air-fuel ratio, dyno AFR module sensor 2",
            "unknown",
            (Alias("dyno_afr", "Air/Fuel Ratio 2", "1", 0),),
        ),
        _wideband(
            "afr_ecu",
            "wideband air-fuel ratio, the ECU's wideband input",
            "unknown",
            (),
        ),
        _wideband(
            "afr_plx",
            "wideband air-fuel ratio, PLX sensor module",
            "unknown",
            (),
        ),
        _wideband(
            "afr_wb1",
            "wideband air-fuel ratio, ECU wideband sensor 1",
            "unknown",
            (),
        ),
        _wideband(
            "afr_wb_overall",
            "wideband air-fuel ratio, ECU average of its sensors",
            "unknown",
            (),
        ),
    ]
    by_name = {channel.name: channel for channel in channels}
    for source, entries in FLAT_ALIASES.items():
        for name, text, unit in entries:
            channel = by_name[name]
            priority = 1 + max(
                (a.priority for a in channel.aliases), default=-1
            )
            by_name[name] = replace(
                channel,
                aliases=(
                    *channel.aliases,
                    Alias(source, text, unit, priority),
                ),
            )
    return by_name


#: Aliases of ECU and logger formats whose headers carry no group, by
#: source. Entries are (canonical name, header text, unit the format
#: writes when the file does not say). Within one source, earlier
#: entries of a channel win. The unit ``lambda`` on an AFR channel means
#: the file logs lambda: readers keep it as ``lambda_<sensor>`` and derive
#: the AFR variable from it.
#:
#: Sources: ``tunerstudio`` (TunerStudio and MegaLogViewer CSV/MSL and
#: MLG logs, channel names of the Speeduino firmware 2020.09 to
#: 2025.01), ``romraider`` (RomRaider logger CSV with a PLX module),
#: ``haltech`` (Haltech NSP CSV export), ``jetdrive`` (Power Core
#: JetDrive channel names, as a JetDrive logger writes them; names are
#: cut at 30 characters by the JetDrive ChannelInfo record).
FLAT_ALIASES: dict[str, list[tuple[str, str, str]]] = {
    "tunerstudio": [
        ("engine_speed", "RPM", "rpm"),
        ("manifold_pressure", "MAP", "kPa"),
        ("throttle_position", "TPS", "%"),
        ("intake_air_temperature", "IAT", "°C"),
        ("coolant_temperature", "CLT", "°C"),
        ("afr_ecu", "AFR", "1"),
        ("afr_ecu", "Lambda", "lambda"),
        ("afr_target", "AFR Target", "1"),
        ("afr_target", "Lambda Target", "lambda"),
        ("ambient_pressure", "Baro Pressure", "kPa"),
        ("vehicle_speed", "Vehicle Speed", "mph"),
    ],
    "romraider": [
        ("engine_speed", "PLX Engine Speed", "rpm"),
        ("engine_speed", "Engine Speed", "rpm"),
        ("manifold_pressure", "PLX Manifold Absolute Pressure", "bar"),
        ("manifold_pressure", "Manifold Absolute Pressure", "bar"),
        ("throttle_position", "Throttle Opening Angle", "%"),
        ("intake_air_temperature", "Intake Air Temperature", "°C"),
        ("coolant_temperature", "Coolant Temperature", "°C"),
        ("afr_plx", "PLX O2 - Wideband", "lambda"),
        ("vehicle_speed", "Vehicle Speed", "km/h"),
    ],
    "haltech": [
        ("engine_speed", "RPM", "rpm"),
        ("manifold_pressure", "Manifold Pressure", "kPa"),
        ("throttle_position", "Throttle Position", "%"),
        ("intake_air_temperature", "Intake Air Temperature", "°C"),
        ("coolant_temperature", "Coolant Temperature", "°C"),
        ("afr_wb1", "Wideband O2 1", "lambda"),
        ("afr_wb_overall", "Wideband O2 Overall", "lambda"),
        ("afr_target", "Target Lambda", "lambda"),
        ("vehicle_speed", "Vehicle Speed", "km/h"),
        ("ambient_pressure", "Barometric Pressure", "kPa"),
    ],
    # NOTE: the JetDrive specification (Dynojet, rev 2.1) gives SI unit
    # codes (°C, km/h, N·m, kW), but whether Power Core sends SI values
    # is unverified. The one real log has engine temperatures in steps
    # of 5/9 (whole °F converted to °C), which supports °C.
    "jetdrive": [
        ("engine_speed", "Engine Speed", "rpm"),
        ("engine_speed", "Engine RPM", "rpm"),
        ("manifold_pressure", "Manifold Absolute Pressure", "kPa"),
        ("manifold_pressure", "MAP kPa", "kPa"),
        ("throttle_position", "Throttle Position", "%"),
        ("coolant_temperature", "Engine Temperature", "°C"),
        ("intake_air_temperature", "Intake Air Temperature", "°C"),
        ("afr_target", "Desired Air/Fuel", "1"),
        ("afr_target", "Desired Lambda", "lambda"),
        ("ve_front", "VE Front", "%"),
        ("ve_rear", "VE Rear", "%"),
        ("closed_loop_trim_front", "Front Closed Loop Integrator", "%"),
        ("closed_loop_trim_rear", "Rear Closed Loop Integrator", "%"),
        ("adaptive_fuel_factor_front", "Front Adaptive Fuel Factor", "%"),
        ("adaptive_fuel_factor_rear", "Rear Adaptive Fuel Factor", "%"),
        ("spark_advance_front", "Spark Advance Front", "deg"),
        ("spark_advance_rear", "Spark Advance Rear", "deg"),
        ("injector_time_front", "Injector Time Front", "ms"),
        ("injector_time_rear", "Injector Time Rear", "ms"),
        ("vehicle_speed", "Vehicle Speed", "km/h"),
        ("drum_speed", "Speed", "km/h"),
        ("drum_speed", "Speed 1", "km/h"),
        ("drum_force", "Force Drum 1", "N"),
        ("power", "Power", "kW"),
        ("power", "Horsepower", "hp"),
        ("torque", "Torque", "N·m"),
        ("correction_factor", "Correction Factor", "1"),
        ("ambient_pressure", "Pressure", "kPa"),
        ("ambient_temperature", "Temperature 1", "°C"),
        ("relative_humidity", "Humidity", "%"),
        ("afr_1", "Air/Fuel Ratio 1", "1"),
        ("afr_1", "Lambda 1", "lambda"),
        ("afr_2", "Air/Fuel Ratio 2", "1"),
        ("afr_2", "Lambda 2", "lambda"),
        ("afr_front", "WBO2 AFR Front", "1"),
        ("afr_rear", "WBO2 AFR Rear", "1"),
    ],
}


#: Canonical channels by name.
REGISTRY: dict[str, Channel] = _build_registry()

_ALIAS_INDEX: dict[tuple[str, str], tuple[Channel, Alias]] = {
    (alias.source, alias.channel.casefold()): (channel, alias)
    for channel in REGISTRY.values()
    for alias in channel.aliases
}

_HEADER = re.compile(r"^\s*\((?P<group>[^()]*)\)\s*(?P<channel>.*?)\s*$")

# Dynojet WinPEP groups. Any group naming an ECU ("Harley - ECU Type 14
# SW Level 141", "Harley - ECU Type 22 SW Level 621") is the ECU.
_KNOWN_GROUPS = {
    "dwrt cpu": "dyno",
    "dwrt atmo": "weather",
    "dwrt afr": "dyno_afr",
    "pv": "pv",
    "gen": "general",
}


def split_header(header: str) -> tuple[str, str]:
    """Split a ``(GROUP) Channel`` header into group and channel.

    Parameters
    ----------
    header : str
        Column header as written in the file.

    Returns
    -------
    group : str
        Text inside the leading brackets, or ``""`` when there is none.
    channel : str
        The rest of the header, stripped.

    Examples
    --------
    >>> split_header("(DWRT CPU) Power (uncorrected)")
    ('DWRT CPU', 'Power (uncorrected)')
    >>> split_header("Time")
    ('', 'Time')
    """
    match = _HEADER.match(header)
    if match is None:
        return "", header.strip()
    return match["group"].strip(), match["channel"]


def source_of_group(group: str) -> str:
    """Map a header group to a short source name.

    Parameters
    ----------
    group : str
        Group text from :func:`split_header`.

    Returns
    -------
    str
        ``"dyno"``, ``"weather"``, ``"dyno_afr"``, ``"pv"``,
        ``"general"``, ``"ecu"`` for any group naming an ECU, ``""`` for
        no group, or else the group made lower case with runs of other
        characters replaced by ``_``.
    """
    key = group.strip().casefold()
    if key in _KNOWN_GROUPS:
        return _KNOWN_GROUPS[key]
    if re.search(r"\becu\b", key):
        return "ecu"
    return slugify(group)


def slugify(text: str) -> str:
    """Make a lower-case identifier from text (``"Speed 1"`` -> ``speed_1``).

    Runs of characters other than ASCII letters and digits become one
    ``_``; leading and trailing ``_`` are removed, so text without
    letters or digits gives ``""``.
    """
    return re.sub(r"[^a-z0-9]+", "_", text.casefold()).strip("_")


def lookup(header: str) -> tuple[Channel, Alias] | None:
    """Find the canonical channel that a file header stands for.

    Parameters
    ----------
    header : str
        Column header as written in the file, such as
        ``"(Harley - ECU Type 14 SW Level 141) Engine Speed"``.

    Returns
    -------
    tuple of (Channel, Alias) or None
        The channel and the alias that matched, or None for a header the
        registry does not know.

    Examples
    --------
    >>> channel, alias = lookup("(PV) Engine Speed")
    >>> channel.name, alias.units, alias.priority
    ('engine_speed', 'krpm', 1)
    """
    group, channel = split_header(header)
    return _ALIAS_INDEX.get((source_of_group(group), channel.casefold()))


def lookup_name(source: str, name: str) -> tuple[Channel, Alias] | None:
    """Find the canonical channel of a header in a format without groups.

    Parameters
    ----------
    source : str
        A key of :data:`FLAT_ALIASES`, for example ``"tunerstudio"``.
    name : str
        Column header as written, without a unit suffix.

    Returns
    -------
    tuple of (Channel, Alias) or None
        The channel and the alias that matched, or None.

    Examples
    --------
    >>> channel, alias = lookup_name("tunerstudio", "Lambda")
    >>> channel.name, alias.units
    ('afr_ecu', 'lambda')
    """
    return _ALIAS_INDEX.get((source, name.strip().casefold()))


def normalize_units(text: str) -> str | None:
    """Map a unit as a log file writes it to a unit string of this module.

    Parameters
    ----------
    text : str
        Unit text from a units row, a header suffix or a descriptor,
        such as ``"kpa"``, ``"degrees"``, ``"msec"`` or ``"RPM"``.

    Returns
    -------
    str or None
        The unit string (``"kPa"``, ``"deg"``, ``"ms"``, ``"rpm"``...),
        or None when the text is empty or not a known unit.
    """
    return _UNIT_SPELLINGS.get(text.strip().casefold())


_UNIT_SPELLINGS = {
    "rpm": "rpm",
    "krpm": "krpm",
    "kpa": "kPa",
    "bar": "bar",
    "mbar": "hPa",
    "hpa": "hPa",
    "psi": "psi",
    "inhg": "inHg",
    "%": "%",
    "percent": "%",
    "c": "°C",
    "°c": "°C",
    "degc": "°C",
    "f": "°F",
    "°f": "°F",
    "degf": "°F",
    "k": "K",
    "s": "s",
    "sec": "s",
    "ms": "ms",
    "msec": "ms",
    "us": "µs",
    "µs": "µs",
    "deg": "deg",
    "degrees": "deg",
    "°": "deg",
    "mph": "mph",
    "km/h": "km/h",
    "kph": "km/h",
    "hp": "hp",
    "kw": "kW",
    "lbft": "lbf·ft",
    "ft-lb": "lbf·ft",
    "nm": "N·m",
    "n·m": "N·m",
    "lambda": "lambda",
    "λ": "lambda",
    "afr": "1",
}


def _scale(factor: float) -> Callable[[np.ndarray], np.ndarray]:
    return lambda values: values * factor


_CONVERSIONS: dict[tuple[str, str], Callable[[np.ndarray], np.ndarray]] = {
    ("krpm", "rpm"): _scale(1000.0),
    ("hp", "kW"): units.hp_to_kw,
    ("lbf·ft", "N·m"): units.lbft_to_nm,
    ("lbf", "N"): _scale(units.LBF),
    ("mph", "m/s"): _scale(units.MPH),
    ("mph/s", "m/s²"): _scale(units.MPH),
    ("inHg", "kPa"): _scale(units.INHG),
    ("hPa", "kPa"): _scale(0.1),
    ("psi", "kPa"): _scale(PSI),
    ("°F", "°C"): units.fahrenheit_to_celsius,
    ("ms", "s"): _scale(1e-3),
    ("µs", "s"): _scale(1e-6),
    ("µs", "ms"): _scale(1e-3),
    ("s", "ms"): _scale(1e3),
    ("bar", "kPa"): _scale(100.0),
    ("km/h", "m/s"): _scale(1.0 / 3.6),
    ("K", "°C"): lambda values: values - 273.15,
    ("rpm", "krpm"): _scale(1e-3),
}


def convert(values, from_units: str, to_units: str) -> np.ndarray:
    """Convert values between two of the unit strings this module uses.

    Parameters
    ----------
    values : array_like
        Values in ``from_units``.
    from_units, to_units : str
        Unit strings, for example ``"krpm"`` and ``"rpm"``.

    Returns
    -------
    numpy.ndarray
        Float values in ``to_units``. NaN stays NaN.

    Raises
    ------
    ValueError
        If no conversion between the two units is known.

    Examples
    --------
    >>> float(convert(5.488, "krpm", "rpm"))
    5488.0
    """
    array = np.asarray(values, dtype=float)
    if from_units == to_units:
        return array.copy()
    try:
        function = _CONVERSIONS[(from_units, to_units)]
    except KeyError:
        known = ", ".join(f"{a} -> {b}" for a, b in _CONVERSIONS)
        raise ValueError(
            f"no conversion from {from_units!r} to {to_units!r}; "
            f"known conversions: {known}"
        ) from None
    return np.asarray(function(array), dtype=float)


def guess_pressure_units(values) -> str | None:
    """Guess the unit of a barometric pressure from its values.

    Barometric pressure at the surface lies between about 50 and 108 kPa
    (sea level to about 5,500 m). The plausible ranges in the four units
    WinPEP offers do not overlap: psi 7 to 16, inHg 14 to 33, kPa 45 to
    110, hPa (mbar) 450 to 1,100.

    Parameters
    ----------
    values : array_like
        Pressure values in an unknown unit.

    Returns
    -------
    str or None
        ``"psi"``, ``"inHg"``, ``"kPa"`` or ``"hPa"``, or None when the
        median is outside all four ranges or there are no finite values.
    """
    array = np.asarray(values, dtype=float)
    finite = array[np.isfinite(array)]
    if finite.size == 0:
        return None
    median = float(np.median(finite))
    for unit, (low, high) in {
        "psi": (7.0, 16.0),
        "inHg": (14.0, 33.0),
        "kPa": (45.0, 110.0),
        "hPa": (450.0, 1100.0),
    }.items():
        if low <= median <= high:
            return unit
    return None
