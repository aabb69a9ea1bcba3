"""Tests of the preflight checks on crafted logs and real recordings."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from conftest import REALDATA

from dynoai_lab.io import PreflightError, preflight, read_log
from dynoai_lab.io.preflight import looks_like_milliseconds


def _log(time=None, **variables):
    """Build a small canonical log; variables are (values, attrs)."""
    n = len(next(iter(variables.values()))[0])
    time = np.arange(n) * 0.05 if time is None else np.asarray(time)
    return xr.Dataset(
        {
            name: ("time", np.asarray(v, float), a)
            for name, (v, a) in variables.items()
        },
        coords={"time": time},
        attrs={"source_file": "crafted.csv", "source_format": "test"},
    )


WIDEBAND = {"kind": "wideband", "cylinder": "both", "stoichiometric_afr": 14.7}
RPM = np.linspace(2000.0, 6000.0, 40)
MAP = np.linspace(40.0, 100.0, 40)
AFR = 13.0 + 0.5 * np.sin(np.arange(40))


def _codes(report):
    return [(f.level, f.code, f.channel) for f in report.findings]


def test_clean_log_has_no_findings():
    log = _log(
        engine_speed=(RPM, {}),
        manifold_pressure=(MAP, {}),
        afr_lc2=(AFR, WIDEBAND),
    )
    report = preflight(log, "ve")
    assert report.findings == []
    # 0.05 s steps: 20 Hz.
    assert report.sample_rate == pytest.approx(20.0, rel=1e-9)
    assert report.rows == 40


def test_missing_channel_is_error():
    log = _log(engine_speed=(RPM, {}), afr_lc2=(AFR, WIDEBAND))
    report = preflight(log, "ve")
    assert ("error", "missing_channel", "manifold_pressure") in _codes(report)
    with pytest.raises(
        PreflightError,
        match=r"crafted\.csv: missing channel manifold_pressure or "
        r"throttle_position.*fix: log MAP",
    ):
        report.raise_for_errors()


def test_strict_raises_preflight_error():
    log = _log(engine_speed=(RPM, {}), manifold_pressure=(MAP, {}))
    with pytest.raises(PreflightError, match=r"crafted\.csv.*wideband"):
        preflight(log, "ve", strict=True)


def test_unknown_analysis_raises():
    with pytest.raises(ValueError, match=r"analysis='dyno'; expected one of"):
        preflight(_log(engine_speed=(RPM, {})), "dyno")


def test_time_going_back_is_reported():
    time = np.arange(40) * 0.05
    time[20:] -= 0.5
    report = preflight(_log(time, engine_speed=(RPM, {})))
    finding = report.findings[0]
    assert (finding.level, finding.code) == ("warning", "time_backwards")
    assert "row 20" in finding.message


@pytest.mark.parametrize("analysis", ["ve", "pull"])
def test_time_going_back_is_error_for_analysis(analysis):
    # Two recordings joined: time restarts at 0 halfway.
    time = np.concatenate([np.arange(20), np.arange(20)]) * 0.05
    log = _log(
        time,
        engine_speed=(RPM, {}),
        manifold_pressure=(MAP, {}),
        drum_speed=(RPM / 100.0, {}),
        afr_lc2=(AFR, WIDEBAND),
    )
    report = preflight(log, analysis)
    assert ("error", "time_backwards", "time") in _codes(report)
    with pytest.raises(PreflightError, match="time goes back 1 times"):
        report.raise_for_errors()


@pytest.mark.parametrize(
    ("time", "expected"),
    [
        (np.arange(40) * 0.05, False),
        (np.arange(40) * 50.0, True),
        (np.arange(40) * 1.0, False),
        # Ten steps are too few to judge.
        (np.arange(11) * 50.0, False),
        (np.arange(12) * 50.0, True),
    ],
)
def test_looks_like_milliseconds_cases(time, expected):
    assert looks_like_milliseconds(time) is expected


def test_gap_is_reported():
    time = np.arange(40) * 0.05
    time[30:] += 2.0
    report = preflight(_log(time, engine_speed=(RPM, {})))
    assert ("warning", "gap", "time") in _codes(report)


def test_ms_read_as_seconds_is_guessed():
    report = preflight(_log(np.arange(40) * 50.0, engine_speed=(RPM, {})))
    assert ("warning", "unit_guess", "time") in _codes(report)


def test_stuck_required_channel_is_error():
    log = _log(
        engine_speed=(np.full(40, 431.0), {}),
        manifold_pressure=(MAP, {}),
        afr_lc2=(AFR, WIDEBAND),
    )
    report = preflight(log, "ve")
    assert ("error", "stuck", "engine_speed") in _codes(report)


def test_stuck_wideband_with_good_one_is_warning():
    log = _log(
        engine_speed=(RPM, {}),
        manifold_pressure=(MAP, {}),
        afr_lc1=(np.full(40, 7.377), WIDEBAND),
        afr_lc2=(AFR, WIDEBAND),
    )
    report = preflight(log, "ve")
    assert ("warning", "stuck", "afr_lc1") in _codes(report)
    assert report.errors == []


def test_only_dead_widebands_is_error():
    log = _log(
        engine_speed=(RPM, {}),
        manifold_pressure=(MAP, {}),
        afr_front=(np.zeros(40), WIDEBAND),
    )
    report = preflight(log, "ve")
    assert ("error", "no_usable_wideband", "afr_front") in _codes(report)


def test_railed_wideband_is_reported():
    values = AFR.copy()
    values[:15] = 22.39
    log = _log(afr_lc2=(values, WIDEBAND))
    assert ("warning", "railed", "afr_lc2") in _codes(preflight(log))


def test_lambda_in_afr_channel_is_guessed():
    log = _log(afr_lc2=(AFR / 14.7, WIDEBAND))
    report = preflight(log)
    assert ("warning", "unit_guess", "afr_lc2") in _codes(report)
    assert "lambda read as AFR" in report.findings[0].message


def test_afr_in_lambda_channel_is_guessed():
    log = _log(lambda_lc2=(AFR, {"kind": "lambda"}))
    assert ("warning", "unit_guess", "lambda_lc2") in _codes(preflight(log))


def test_fahrenheit_in_celsius_channel_is_guessed():
    # 95 to 110 "°C" intake air is 35 to 43 °C read from °F.
    log = _log(intake_air_temperature=(np.linspace(95.0, 110.0, 40), {}))
    report = preflight(log)
    assert ("warning", "unit_guess", "intake_air_temperature") in _codes(
        report
    )
    assert "°F read as °C" in report.findings[-1].message


@pytest.mark.parametrize(
    ("values", "text"),
    [(MAP / 100.0, "bar read as kPa"), (MAP * 10.0, "mbar")],
)
def test_pressure_units_are_guessed(values, text):
    report = preflight(_log(manifold_pressure=(values, {})))
    guesses = [f.message for f in report.findings if f.code == "unit_guess"]
    assert any(text in message for message in guesses)


def test_krpm_is_guessed():
    report = preflight(_log(engine_speed=(RPM / 1000.0, {})))
    guesses = [f.message for f in report.findings if f.code == "unit_guess"]
    assert any("thousands of rpm" in message for message in guesses)


def test_out_of_range_is_reported():
    values = MAP.copy()
    values[0] = 900.0
    report = preflight(_log(manifold_pressure=(values, {})))
    assert ("warning", "out_of_range", "manifold_pressure") in _codes(report)


def test_report_to_dict_is_plain():
    report = preflight(_log(engine_speed=(RPM, {})), "pull")
    data = report.to_dict()
    assert data["source_file"] == "crafted.csv"
    assert data["findings"][0]["code"] == "missing_channel"


def test_fifth_gear_ready_for_ve_analysis(fifth_gear_path):
    report = preflight(read_log(fifth_gear_path), "ve")
    assert report.errors == []
    assert report.sample_rate == pytest.approx(20.0, rel=1e-6)
    codes = _codes(report)
    # LC1 is not connected: a constant near 7.38 is most of the log.
    assert ("warning", "railed", "afr_lc1") in codes
    # The ECU's WBO2 channels read 0 throughout.
    assert ("warning", "stuck", "afr_front") in codes


@pytest.mark.realdata
def test_jetdrive_log_has_no_wideband(realdata):
    log = read_log(realdata / "jetdrive" / "jetdrive_log_20251218_230024.csv")
    with pytest.raises(
        PreflightError,
        match=r"jetdrive_log_20251218_230024\.csv: missing channel wideband",
    ):
        preflight(log, "ve", strict=True)


@pytest.mark.realdata
def test_speeduino_log_is_clean(realdata):
    if not (REALDATA / "speeduino").is_dir():
        pytest.skip("speeduino folder absent")
    log = read_log(realdata / "speeduino" / "2025-12-02_10.47.33.mlg")
    report = preflight(log, "ve")
    assert report.findings == []
    assert report.sample_rate == pytest.approx(15.15, abs=0.05)
