"""Tests of the channel registry: names, aliases and unit conversions."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from dynoai_lab import channels

NOMENCLATURE = Path(__file__).resolve().parents[1] / "docs" / "nomenclature.md"


def _nomenclature_units() -> dict[str, str]:
    """Parse variable names and units from the nomenclature table."""
    table = {}
    for line in NOMENCLATURE.read_text(encoding="utf-8").splitlines():
        cells = [cell.strip() for cell in line.split("|")[1:-1]]
        if len(cells) != 3 or not cells[0].startswith("`"):
            continue
        for name in re.findall(r"`([a-z_<>]+)`", cells[0]):
            table[name] = cells[1]
    return table


def test_registry_names_follow_nomenclature():
    documented = _nomenclature_units()
    for name, channel in channels.REGISTRY.items():
        if channel.kind == "wideband":
            assert name.startswith("afr_"), name
            assert documented["afr_<sensor>"] == channel.units, name
        else:
            assert name in documented, name
            assert documented[name] == channel.units, name


def test_registry_kinds_are_known():
    for channel in channels.REGISTRY.values():
        assert channel.kind in channels.KINDS, channel.name


def test_wideband_channels_carry_attrs():
    wideband = [c for c in channels.REGISTRY.values() if c.kind == "wideband"]
    assert {c.name for c in wideband} >= {"afr_front", "afr_rear", "afr_lc1"}
    for channel in wideband:
        assert channel.attrs["kind"] == "wideband"
        assert channel.attrs["cylinder"] in ("front", "rear", "unknown")
        assert channel.attrs["stoichiometric_afr"] == 14.7


def test_alias_priorities_unique_per_channel():
    for channel in channels.REGISTRY.values():
        priorities = [alias.priority for alias in channel.aliases]
        assert len(priorities) == len(set(priorities)), channel.name


def test_aliases_map_to_one_channel():
    seen = {}
    for channel in channels.REGISTRY.values():
        for alias in channel.aliases:
            key = (alias.source, alias.channel.casefold())
            assert key not in seen, (key, seen.get(key), channel.name)
            seen[key] = channel.name


@pytest.mark.parametrize(
    ("header", "group", "channel"),
    [
        ("(DWRT CPU) Speed", "DWRT CPU", "Speed"),
        ("(DWRT CPU) Power (uncorrected)", "DWRT CPU", "Power (uncorrected)"),
        (
            "(Harley - ECU Type 14 SW Level 141) Engine Speed",
            "Harley - ECU Type 14 SW Level 141",
            "Engine Speed",
        ),
        ("(PV) Warm-up Fuel AFR (Lambda)", "PV", "Warm-up Fuel AFR (Lambda)"),
        ("Time", "", "Time"),
        (" (Gen) Sampling ", "Gen", "Sampling"),
    ],
)
def test_split_header_cases(header, group, channel):
    assert channels.split_header(header) == (group, channel)


@pytest.mark.parametrize(
    ("group", "source"),
    [
        ("DWRT CPU", "dyno"),
        ("DWRT ATMO", "weather"),
        ("DWRT AFR", "dyno_afr"),
        ("PV", "pv"),
        ("Gen", "general"),
        ("Harley - ECU Type 14 SW Level 141", "ecu"),
        ("Harley - ECU Type 22 SW Level 621", "ecu"),
        ("Some Box 2", "some_box_2"),
    ],
)
def test_source_of_group_cases(group, source):
    assert channels.source_of_group(group) == source


@pytest.mark.parametrize(
    ("header", "name", "units", "priority"),
    [
        ("(Harley - ECU Type 14 SW Level 141) Engine Speed", "engine_speed",
         "krpm", 0),
        ("(Harley - ECU Type 22 SW Level 621) Engine Speed", "engine_speed",
         "krpm", 0),
        ("(PV) Engine Speed", "engine_speed", "krpm", 1),
        ("(DWRT CPU) Engine RPM", "engine_speed", "krpm", 2),
        ("(DWRT CPU) Power", "power_corrected", "hp", 0),
        ("(DWRT CPU) Power (uncorrected)", "power", "hp", 0),
        ("(DWRT CPU) Torque", "torque_corrected", "lbf·ft", 0),
        ("(DWRT ATMO) Temperature 1", "ambient_temperature", "°F", 0),
        ("(PV) Injector Time Front", "injector_time_front", "s", 1),
        ("(Harley - ECU Type 14 SW Level 141) Injector Time Front",
         "injector_time_front", "ms", 0),
        ("(Harley - ECU Type 14 SW Level 141) Engine Temperature",
         "coolant_temperature", "°F", 0),
        ("(Harley - ECU Type 14 SW Level 141) Front Closed Loop Integrator",
         "closed_loop_trim_front", "%", 0),
        ("(DWRT CPU) LC2 Volts Petrol AFR2", "afr_lc2", "1", 0),
        ("(DWRT AFR) Air/Fuel Ratio 1", "afr_1", "1", 0),
        ("(PV) WBO2 AFR Rear", "afr_rear", "1", 1),
    ],
)  # fmt: skip
def test_lookup_real_headers(header, name, units, priority):
    channel, alias = channels.lookup(header)
    assert channel.name == name
    assert alias.units == units
    assert alias.priority == priority


@pytest.mark.parametrize(
    "header",
    [
        "(DWRT CPU) User Analog 1",
        "(PV) Desired Lambda",
        "(DWRT CPU) " + "?" * 64,
        "Engine Speed",  # no group: source unknown
        "(Other) Engine Speed",
    ],
)
def test_lookup_unknown_headers(header):
    assert channels.lookup(header) is None


def test_lookup_ignores_channel_case():
    channel, _ = channels.lookup("(PV) ENGINE SPEED")
    assert channel.name == "engine_speed"


@pytest.mark.parametrize(
    ("value", "from_units", "to_units", "expected"),
    [
        # Exact scale factors: compare to 1e-12 relative.
        (5.488, "krpm", "rpm", 5488.0),
        (100.0, "mph", "m/s", 44.704),
        (12.0, "ms", "s", 0.012),
        (1000.0, "hPa", "kPa", 100.0),
        (212.0, "°F", "°C", 100.0),
        (71.6, "°F", "°C", 22.0),
        # NIST SP 811 factors.
        (1.0, "hp", "kW", 0.74569987158227022),
        (1.0, "lbf·ft", "N·m", 1.3558179483314004),
        (1.0, "lbf", "N", 4.4482216152605),
        (29.92, "inHg", "kPa", 101.3207589),
        (14.696, "psi", "kPa", 101.32535),
        (7.3, "%", "%", 7.3),
    ],
)
def test_convert_known_units(value, from_units, to_units, expected):
    result = channels.convert(value, from_units, to_units)
    assert float(result) == pytest.approx(expected, rel=1e-6)


def test_convert_keeps_nan():
    result = channels.convert([1.0, np.nan], "krpm", "rpm")
    assert result[0] == 1000.0
    assert np.isnan(result[1])


def test_convert_unknown_pair_raises():
    with pytest.raises(ValueError, match=r"no conversion from 'hp' to 'rpm'"):
        channels.convert(1.0, "hp", "rpm")


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([100.29, 100.3], "kPa"),
        ([24.29, 24.29], "inHg"),
        ([14.6], "psi"),
        ([1013.0], "hPa"),
        ([3.0], None),
        ([np.nan], None),
    ],
)
def test_guess_pressure_units_cases(values, expected):
    assert channels.guess_pressure_units(values) == expected


def test_count_implausible_ignores_nan():
    channel = channels.REGISTRY["engine_speed"]
    assert channel.count_implausible([np.nan, 1000.0, -5.0, 25000.0]) == 2


def test_slugify_cases():
    assert channels.slugify("Power Drum 1 (uncorrected)") == (
        "power_drum_1_uncorrected"
    )
    assert channels.slugify("?" * 64) == ""
    assert channels.slugify("TCP RX kB/s") == "tcp_rx_kb_s"
