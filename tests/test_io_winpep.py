"""Tests of the WinPEP 8 export reader against real and malformed files.

Tolerances: WinPEP writes 3 decimals, so values read back in file units
match to 5e-4; after a unit conversion the same absolute rounding is
compared relative to the value (rtol 1e-5 at the magnitudes used).
"""

from __future__ import annotations

import logging
import os
import signal

import numpy as np
import pytest

from dynoai_lab import units
from dynoai_lab.io import FileFormatError, preflight, read_log, read_winpep
from dynoai_lab.io.errors import LogFormatError

ECU = "(Harley - ECU Type 14 SW Level 141)"


@pytest.fixture
def fifth_gear(fifth_gear_path):
    return read_winpep(fifth_gear_path)


@pytest.fixture
def part_throttle(realdata):
    return read_winpep(realdata / "harley" / "PV_Logfile_5.csv_18.txt")


@pytest.fixture
def runfile_40(realdata):
    return read_winpep(realdata / "winpep" / "RunFile_40.csv")


@pytest.fixture
def power_134(realdata):
    return read_winpep(realdata / "winpep" / "134power.csv")


def _first_valid(array) -> float:
    values = array.values
    return float(values[np.isfinite(values)][0])


# -- 5TH GEAR.txt: WOT pull, Harley ECU and Power Vision channels


def test_fifth_gear_time_coordinate(fifth_gear):
    time = fifth_gear.time.values
    assert fifth_gear.sizes["time"] == 155
    assert time[0] == 0.0
    # 20 Hz logging: every step is 0.05 s, to the 3 decimals written.
    np.testing.assert_allclose(np.diff(time), 0.05, atol=5e-4)
    assert fifth_gear.time.attrs["units"] == "s"


def test_fifth_gear_dataset_attrs(fifth_gear, fifth_gear_path):
    assert fifth_gear.attrs["source_format"] == "winpep8-csv"
    assert fifth_gear.attrs["source_file"] == str(fifth_gear_path)


def test_fifth_gear_engine_speed_from_ecu(fifth_gear):
    speed = fifth_gear.engine_speed
    assert speed.attrs["units"] == "rpm"
    assert speed.attrs["original_name"] == f"{ECU} Engine Speed"
    assert _first_valid(speed) == pytest.approx(2993.0, abs=0.5)
    assert float(speed.max()) == pytest.approx(6149.0, abs=0.5)


def test_fifth_gear_keeps_lower_priority_copies(fifth_gear):
    pv = fifth_gear.pv_engine_speed
    dyno = fifth_gear.dwrt_cpu_engine_rpm
    assert pv.attrs["duplicate_of"] == "engine_speed"
    assert pv.attrs["units"] == "rpm"
    assert pv.attrs["original_name"] == "(PV) Engine Speed"
    assert dyno.attrs["duplicate_of"] == "engine_speed"
    # All three log the same crank speed in this pull: equal to the
    # 1 rpm resolution of values written as thousands with 3 decimals.
    np.testing.assert_allclose(pv, fifth_gear.engine_speed, atol=0.5)
    assert "kind" not in pv.attrs


def test_fifth_gear_nan_not_filled(fifth_gear):
    # Row 0 holds only Time and the (Gen) channels; dyno channels start
    # later. Blank cells stay NaN.
    assert np.isnan(fifth_gear.engine_speed.values[0])
    assert np.isnan(fifth_gear.ambient_pressure.values[:10]).all()
    assert np.isfinite(fifth_gear.ambient_pressure.values[10])


def test_fifth_gear_weather(fifth_gear):
    pressure = fifth_gear.ambient_pressure
    temperature = fifth_gear.ambient_temperature
    assert pressure.attrs["units"] == "kPa"
    assert float(pressure.median()) == pytest.approx(100.3, abs=5e-3)
    assert temperature.attrs["units"] == "°C"
    # 71.6 °F is exactly 22.0 °C.
    assert float(temperature.median()) == pytest.approx(22.0, abs=1e-6)
    assert float(fifth_gear.correction_factor.median()) == pytest.approx(
        0.985, abs=5e-4
    )
    assert float(fifth_gear.relative_humidity.median()) == pytest.approx(
        19.7, abs=5e-3
    )


def test_fifth_gear_power_in_kw(fifth_gear):
    power = fifth_gear.power_corrected
    assert power.attrs["units"] == "kW"
    assert power.attrs["original_name"] == "(DWRT CPU) Power"
    expected = 93.924 * units.HP / 1000.0
    assert float(power.max()) == pytest.approx(expected, rel=1e-9)
    uncorrected = 95.373 * units.HP / 1000.0
    assert float(fifth_gear.power.max()) == pytest.approx(
        uncorrected, rel=1e-9
    )


def test_fifth_gear_peak_torque(fifth_gear):
    torque = fifth_gear.torque_corrected
    assert torque.attrs["units"] == "N·m"
    expected = 99.218 * units.LBF_FT
    assert float(torque.max()) == pytest.approx(expected, rel=1e-9)


def test_fifth_gear_power_equals_torque_times_speed(fifth_gear):
    # hp = lbf·ft · rpm / 5252 is P = T · ω in SI. The dyno smooths
    # power, torque and rpm separately, so row by row they agree to
    # about 1.5 % under load (measured on this file); as power falls off
    # at the end of the pull they part by up to 45 %.
    omega = units.rpm_to_rad_s(fifth_gear.dwrt_cpu_engine_rpm.values)
    power = fifth_gear.power_corrected.values * 1000.0
    torque = fifth_gear.torque_corrected.values
    mask = np.isfinite(omega * power * torque) & (power > 50e3)
    assert mask.sum() > 80
    np.testing.assert_allclose(
        power[mask], torque[mask] * omega[mask], rtol=0.02
    )


def test_fifth_gear_power_equals_force_times_speed(fifth_gear):
    # hp = lbf · mph / 375, i.e. P = F · v in SI; 0.2 % covers rounding
    # of the written values above 50 kW.
    force = fifth_gear.drum_force.values
    speed = fifth_gear.drum_speed.values
    power = fifth_gear.power_corrected.values * 1000.0
    uncorrected = fifth_gear.power.values * 1000.0
    mask = np.isfinite(force * speed * power) & (power > 50e3)
    assert mask.sum() > 50
    np.testing.assert_allclose(
        uncorrected[mask], force[mask] * speed[mask], rtol=2e-3
    )


def test_fifth_gear_drum_units(fifth_gear):
    assert fifth_gear.drum_speed.attrs["units"] == "m/s"
    assert float(fifth_gear.drum_speed.max()) == pytest.approx(
        144.35 * units.MPH, rel=1e-9
    )
    assert fifth_gear.drum_force.attrs["units"] == "N"
    assert fifth_gear.drum_acceleration.attrs["units"] == "m/s²"
    assert float(fifth_gear.drum_acceleration.max()) == pytest.approx(
        12.71 * units.MPH, rel=1e-9
    )


def test_fifth_gear_widebands(fifth_gear):
    lc1 = fifth_gear.afr_lc1
    lc2 = fifth_gear.afr_lc2
    for array in (lc1, lc2, fifth_gear.afr_front, fifth_gear.afr_rear):
        assert array.attrs["kind"] == "wideband"
        assert array.attrs["stoichiometric_afr"] == 14.7
        assert array.attrs["units"] == "1"
    assert lc1.attrs["cylinder"] == "unknown"
    assert lc2.attrs["cylinder"] == "unknown"
    assert fifth_gear.afr_front.attrs["cylinder"] == "front"
    assert fifth_gear.afr_rear.attrs["cylinder"] == "rear"
    assert lc1.attrs["original_name"] == "(DWRT CPU) LC1 Volts Petrol AFR"
    # LC1 is not connected and reads a near-constant 7.38.
    assert float(lc1.min()) == pytest.approx(7.38, abs=0.01)
    assert float(lc1.max()) == pytest.approx(7.38, abs=0.015)
    assert float(lc2.max()) == pytest.approx(17.62, abs=5e-4)
    # The ECU's own wideband inputs read 0 throughout this session.
    assert float(np.nanmax(np.abs(fifth_gear.afr_front))) == 0.0


def test_fifth_gear_wideband_cylinder_override(fifth_gear_path):
    dataset = read_winpep(
        fifth_gear_path,
        wideband_cylinder={"afr_lc2": "both"},
    )
    assert dataset.afr_lc2.attrs["cylinder"] == "both"
    assert dataset.afr_lc1.attrs["cylinder"] == "unknown"


def test_wideband_cylinder_invalid_raises(fifth_gear_path):
    with pytest.raises(ValueError, match="expected one of front, rear"):
        read_winpep(
            fifth_gear_path,
            wideband_cylinder={"afr_lc2": "left"},
        )


def test_fifth_gear_user_analog_kept(fifth_gear):
    analog = fifth_gear.dwrt_cpu_user_analog_1
    assert analog.attrs["units"] == "unknown"
    assert analog.attrs["original_name"] == "(DWRT CPU) User Analog 1"
    # User Analog 1 and 2 duplicate the LC1 and LC2 values exactly.
    np.testing.assert_array_equal(analog.values, fifth_gear.afr_lc1.values)
    np.testing.assert_array_equal(
        fifth_gear.dwrt_cpu_user_analog_2.values, fifth_gear.afr_lc2.values
    )


def test_fifth_gear_empty_columns_kept(fifth_gear):
    for name in (
        "dwrt_cpu_unnamed_5",
        "dwrt_cpu_user_analog_3",
        "dwrt_cpu_user_analog_4",
    ):
        assert np.isnan(fifth_gear[name].values).all(), name
    assert fifth_gear.dwrt_cpu_unnamed_5.attrs["original_name"] == (
        "(DWRT CPU) " + "?" * 64
    )


def test_fifth_gear_keeps_every_column(fifth_gear):
    # 105 headers, one of them Time.
    assert len(fifth_gear.data_vars) == 104
    names = {v.attrs["original_name"] for v in fifth_gear.data_vars.values()}
    assert len(names) == 104


def test_fifth_gear_ecu_channels(fifth_gear):
    head = fifth_gear.coolant_temperature
    assert head.attrs["units"] == "°C"
    assert head.attrs["original_name"] == f"{ECU} Engine Temperature"
    # 178 to 181 °F.
    assert float(head.min()) == pytest.approx((178 - 32) / 1.8, abs=1e-9)
    assert float(head.max()) == pytest.approx((181 - 32) / 1.8, abs=1e-9)
    trim = fifth_gear.closed_loop_trim_front
    assert trim.attrs["original_name"] == f"{ECU} Front Closed Loop Integrator"
    assert trim.attrs["units"] == "%"
    assert float(fifth_gear.manifold_pressure.max()) == pytest.approx(
        99.933, abs=5e-4
    )
    assert float(fifth_gear.throttle_position.max()) == pytest.approx(
        100.0, abs=5e-4
    )
    assert float(fifth_gear.afr_target.min()) == pytest.approx(12.5, abs=5e-4)
    assert float(fifth_gear.ve_front.max()) == pytest.approx(108.962, abs=5e-4)
    assert float(fifth_gear.vehicle_speed.max()) == pytest.approx(
        146.284 * units.MPH, rel=1e-9
    )


def test_fifth_gear_injector_time_in_seconds(fifth_gear):
    ecu = fifth_gear.injector_time_front
    pv = fifth_gear.pv_injector_time_front
    assert ecu.attrs["units"] == "s"
    assert ecu.attrs["source_units"] == "ms"
    assert pv.attrs["source_units"] == "s"
    assert float(ecu.max()) == pytest.approx(0.019, abs=5e-7)
    # PV writes seconds with 3 decimals and samples the ECU at slightly
    # other instants, so the two agree to 1 ms, not to 0.5 ms.
    np.testing.assert_allclose(pv, ecu, atol=1e-3)


# -- PV_Logfile_5.csv_18.txt: part throttle, dyno rpm unreliable


@pytest.mark.realdata
def test_part_throttle_uses_ecu_rpm(part_throttle):
    speed = part_throttle.engine_speed
    assert speed.attrs["original_name"] == f"{ECU} Engine Speed"
    assert float(speed.min()) == pytest.approx(2194.0, abs=0.5)
    assert float(speed.max()) == pytest.approx(5477.0, abs=0.5)
    dyno = part_throttle.dwrt_cpu_engine_rpm
    assert float(dyno.min()) == 0.0
    assert float(dyno.max()) == pytest.approx(4507.0, abs=0.5)


@pytest.mark.realdata
def test_part_throttle_ranges(part_throttle):
    assert float(part_throttle.throttle_position.max()) == pytest.approx(
        54.325, abs=5e-4
    )
    assert float(part_throttle.manifold_pressure.min()) == pytest.approx(
        14.193, abs=5e-4
    )
    assert float(part_throttle.manifold_pressure.max()) == pytest.approx(
        77.357, abs=5e-4
    )
    # LC2 sits at its lean rail of 22.39 on overrun.
    assert float(part_throttle.afr_lc2.max()) == pytest.approx(22.39, abs=5e-4)
    assert float(part_throttle.time[-1]) == pytest.approx(22.1, abs=5e-4)


@pytest.mark.realdata
def test_part_throttle_warns_on_torque_spikes(realdata, caplog):
    with caplog.at_level(logging.WARNING, logger="dynoai_lab.io.winpep"):
        read_winpep(realdata / "harley" / "PV_Logfile_5.csv_18.txt")
    assert "torque_corrected" in caplog.text
    assert "plausible range" in caplog.text


# -- car exports: other groups, pressure in inHg, LF line ends


@pytest.mark.realdata
def test_runfile_40_peak_power(runfile_40):
    power = runfile_40.power_corrected
    peak = int(np.nanargmax(power.values))
    assert float(power[peak]) == pytest.approx(
        274.341 * units.HP / 1000.0, rel=1e-9
    )
    assert float(runfile_40.engine_speed[peak]) == pytest.approx(
        7569.0, abs=0.5
    )
    assert runfile_40.engine_speed.attrs["original_name"] == (
        "(DWRT CPU) Engine RPM"
    )
    assert float(runfile_40.engine_speed.max()) == pytest.approx(
        8159.0, abs=0.5
    )


@pytest.mark.realdata
def test_runfile_40_pressure_in_inhg(runfile_40):
    pressure = runfile_40.ambient_pressure
    assert pressure.attrs["source_units"] == "inHg"
    assert pressure.attrs["units"] == "kPa"
    assert float(pressure.median()) == pytest.approx(
        24.29 * units.INHG, rel=1e-9
    )
    # Consistent with the dyno's SAE J1349 factor of 1.238 at altitude:
    # 1.18 · (990 / Pd[mbar]) · sqrt((T + 273) / 298) − 0.18, with the
    # small vapour pressure ignored, gives about 1.23.
    temperature = float(runfile_40.ambient_temperature.median())
    factor = (
        1.18
        * (990.0 / (10.0 * float(pressure.median())))
        * np.sqrt((temperature + 273.0) / 298.0)
        - 0.18
    )
    assert factor == pytest.approx(1.238, abs=0.02)


@pytest.mark.realdata
def test_runfile_40_wideband_and_time(runfile_40):
    afr = runfile_40.afr_wb
    assert afr.attrs["kind"] == "wideband"
    assert afr.attrs["original_name"] == "(DWRT CPU) WB Volts Petrol AFR"
    assert float(afr.max()) == pytest.approx(8.5, abs=5e-4)
    assert float(runfile_40.time[-1]) == pytest.approx(15.55, abs=5e-4)
    assert np.isnan(runfile_40.dwrt_cpu_distance_2.values).all()


@pytest.mark.realdata
def test_power_134_dyno_afr_module(power_134):
    afr = power_134.afr_1
    assert afr.attrs["kind"] == "wideband"
    assert afr.attrs["original_name"] == "(DWRT AFR) Air/Fuel Ratio 1"
    assert float(afr.min()) == pytest.approx(13.399, abs=5e-4)
    assert float(afr.max()) == pytest.approx(19.0, abs=5e-4)
    assert np.isnan(power_134.afr_2.values).all()
    assert power_134.dwrt_afr_sensor_ready_1.attrs["units"] == "unknown"


@pytest.mark.realdata
def test_power_134_peak_power(power_134):
    assert float(power_134.power_corrected.max()) == pytest.approx(
        277.856 * units.HP / 1000.0, rel=1e-9
    )
    assert float(power_134.ambient_pressure.median()) == pytest.approx(
        24.45 * units.INHG, rel=1e-9
    )
    assert len(power_134.data_vars) == 38


def test_read_log_picks_winpep(fifth_gear_path):
    dataset = read_log(fifth_gear_path)
    assert dataset.attrs["source_format"] == "winpep8-csv"


@pytest.mark.realdata
def test_bundled_copy_matches(bundled, realdata):
    shared = realdata / "harley" / "5TH GEAR.txt"
    assert (bundled / "5TH GEAR.txt").read_bytes() == shared.read_bytes()


# -- small files written here

HEADER = (
    "Time, (DWRT CPU) Engine RPM, (PV) Engine Speed, "
    f"{ECU} Engine Speed, (DWRT CPU) Mystery Channel, (Gen) Note, "
)


def _write(tmp_path, text, name="run.csv", newline="\r\n"):
    path = tmp_path / name
    path.write_bytes(newline.join(text.split("\n")).encode("utf-8"))
    return path


@pytest.mark.parametrize("newline", ["\r\n", "\n"])
def test_small_file_priority_and_units(tmp_path, newline):
    text = (
        HEADER + "\n"
        "0, , , , , , \n"
        "0.05,3.001,3.002, ,1.5, , \n"
        "0.1,3.101,3.102, , ,a, \n"
    )
    dataset = read_winpep(_write(tmp_path, text, newline=newline))
    # The ECU column is empty, so Power Vision is the next choice.
    speed = dataset.engine_speed
    assert speed.attrs["original_name"] == "(PV) Engine Speed"
    np.testing.assert_allclose(speed.values[1:], [3002.0, 3102.0], atol=1e-9)
    assert np.isnan(speed.values[0])
    assert dataset.dwrt_cpu_engine_rpm.attrs["duplicate_of"] == "engine_speed"
    assert np.isnan(dataset.ecu_engine_speed.values).all()
    mystery = dataset.dwrt_cpu_mystery_channel
    assert mystery.attrs["units"] == "unknown"
    assert mystery.values[1] == 1.5
    # A text column is kept as text.
    assert list(dataset.gen_note.values) == ["", "", "a"]


def test_small_file_unit_override(tmp_path):
    text = "Time, (DWRT ATMO) Temperature 1, \n0, 20, \n0.05, 21, \n"
    path = _write(tmp_path, text)
    dataset = read_winpep(path, units={"(DWRT ATMO) Temperature 1": "°C"})
    np.testing.assert_allclose(
        dataset.ambient_temperature.values, [20.0, 21.0], atol=1e-12
    )


def test_small_file_bad_unit_override(tmp_path):
    path = _write(tmp_path, "Time, (DWRT ATMO) Temperature 1, \n0, 20, \n")
    with pytest.raises(ValueError, match=r"run\.csv.*no conversion"):
        read_winpep(path, units={"(DWRT ATMO) Temperature 1": "bar"})


def test_small_file_plain_rpm_detected(tmp_path):
    path = _write(tmp_path, "Time, (DWRT CPU) Engine RPM, \n0, 3500, \n")
    dataset = read_winpep(path)
    assert float(dataset.engine_speed[0]) == 3500.0
    assert dataset.engine_speed.attrs["source_units"] == "rpm"


def test_small_file_short_last_line(tmp_path):
    text = (
        "Time, (DWRT CPU) Speed, (DWRT CPU) Force, \n0, 10, 20, \n0.05, 11\n"
    )
    dataset = read_winpep(_write(tmp_path, text))
    assert dataset.sizes["time"] == 2
    assert np.isnan(dataset.drum_force.values[1])


def test_small_file_time_starts_at_zero(tmp_path):
    text = "Time, (DWRT CPU) Speed, \n12.5, 10, \n12.55, 11, \n"
    dataset = read_winpep(_write(tmp_path, text))
    np.testing.assert_allclose(dataset.time.values, [0.0, 0.05], atol=1e-12)


def test_small_file_utf16_bom(tmp_path):
    path = tmp_path / "run.txt"
    text = "Time, (DWRT CPU) Speed, \r\n0, 10, \r\n"
    path.write_bytes(text.encode("utf-16"))
    dataset = read_winpep(path)
    assert float(dataset.drum_speed[0]) == pytest.approx(4.4704, rel=1e-12)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", r"empty\.csv is empty"),
        ("Date, Speed, \n1, 2, \n", r"empty\.csv is not a WinPEP 8 export"),
        (
            "Time, (DWRT CPU) Speed, \n0, 1, 2, 3, \n0.05, 1, \n",
            r"empty\.csv, line 2: 4 fields, but the header has 2",
        ),
        (
            "Time, (DWRT CPU) Speed, (DWRT CPU) Force, \n0\n0.05, 1, 2, \n",
            r"empty\.csv, line 2: 1 fields.*only the last line",
        ),
        (
            "Time, (DWRT CPU) Speed, \nnoon, 1, \n",
            r"empty\.csv: invalid Time value 'noon'",
        ),
    ],
)
def test_malformed_files_raise(tmp_path, text, message):
    path = _write(tmp_path, text, name="empty.csv")
    with pytest.raises(LogFormatError, match=message):
        read_winpep(path)


def test_missing_file_raises(tmp_path):
    with pytest.raises(FileFormatError, match=r"missing\.csv"):
        read_winpep(tmp_path / "missing.csv")


def test_read_log_unknown_format(tmp_path):
    path = _write(tmp_path, "a;b;c\n1;2;3\n", name="other.csv")
    with pytest.raises(
        FileFormatError, match=r"other\.csv.*supported:.*WinPEP"
    ):
        read_log(path)


def test_errors_are_value_errors():
    assert issubclass(LogFormatError, FileFormatError)
    assert issubclass(FileFormatError, ValueError)


# -- malformed copies of 5TH GEAR.txt, built here

SPEED = "(DWRT CPU) Speed"
ECU_RPM = f"{ECU} Engine Speed"


def _export_lines(path) -> list[str]:
    """Return the export's lines; WinPEP ends each with a separator."""
    return path.read_bytes().decode("utf-8").split("\r\n")


def _save(tmp_path, lines, name="edited.txt"):
    path = tmp_path / name
    path.write_bytes("\r\n".join(lines).encode("utf-8"))
    return path


def _headers(lines) -> list[str]:
    return [field.strip() for field in lines[0].split(",")]


def _set_cell(lines, data_row, header, value) -> list[str]:
    """Replace one cell; ``data_row`` counts data rows from 0."""
    column = _headers(lines).index(header)
    lines = list(lines)
    fields = lines[data_row + 1].split(",")
    fields[column] = f" {value}" if column else value
    lines[data_row + 1] = ",".join(fields)
    return lines


def _drop_columns(lines, headers) -> list[str]:
    drop = {i for i, h in enumerate(_headers(lines)) if h in headers}
    return [
        ",".join(f for i, f in enumerate(line.split(",")) if i not in drop)
        for line in lines
    ]


def _map_column(lines, header, change, new_header=None) -> list[str]:
    """Rewrite every non-blank cell of a column with ``change(text)``."""
    column = _headers(lines).index(header)
    out = []
    for number, line in enumerate(lines):
        fields = line.split(",")
        if number == 0 and new_header is not None:
            fields[column] = f" {new_header}" if column else new_header
        elif number > 0 and column < len(fields) and fields[column].strip():
            text = change(fields[column].strip())
            fields[column] = f" {text}" if column else text
        out.append(",".join(fields))
    return out


@pytest.mark.parametrize("value", ["nan", "NaN", "inf", "On"])
def test_time_cell_not_number_raises(fifth_gear_path, tmp_path, value):
    lines = _set_cell(_export_lines(fifth_gear_path), 80, "Time", value)
    path = _save(tmp_path, lines)
    with pytest.raises(
        LogFormatError,
        match=rf"edited\.txt: invalid Time value '{value}' on line 82",
    ):
        read_log(path)


def test_blank_time_cell_drops_row(fifth_gear_path, tmp_path, caplog):
    lines = _set_cell(_export_lines(fifth_gear_path), 80, "Time", "")
    with caplog.at_level(logging.WARNING, logger="dynoai_lab.io.winpep"):
        dataset = read_winpep(_save(tmp_path, lines))
    assert dataset.sizes["time"] == 154
    assert "dropping 1 rows without a Time value (first on line 82)" in (
        caplog.text
    )


def test_duplicate_channel_different_values_raises(fifth_gear_path, tmp_path):
    # A second "(DWRT CPU) Speed" column holding twice the drum speed,
    # placed first, used to win silently and give 373.6 hp.
    lines = _export_lines(fifth_gear_path)
    speed = _headers(lines).index(SPEED)
    doubled = []
    for number, line in enumerate(lines):
        fields = line.split(",")
        if number == 0:
            extra = f" {SPEED}"
        elif len(fields) > speed and fields[speed].strip():
            extra = f" {2 * float(fields[speed]):.3f}"
        else:
            extra = " "
        doubled.append(",".join(fields[:1] + [extra] + fields[1:]))
    path = _save(tmp_path, doubled)
    with pytest.raises(
        LogFormatError,
        match=r"edited\.txt: columns 2 and 29 are both named "
        r"'\(DWRT CPU\) Speed' but hold different values "
        r"\(first difference on line \d+: '[\d.]+' and '[\d.]+'\)",
    ):
        read_log(path)


def test_duplicate_channel_same_values_kept_once(
    fifth_gear_path, fifth_gear, tmp_path
):
    lines = _map_column(
        _export_lines(fifth_gear_path), "(DWRT CPU) Speed 1", str, SPEED
    )
    dataset = read_winpep(_save(tmp_path, lines))
    # "Speed 1" contains the same values as "Speed" in this file, so the
    # renamed copy is dropped and one column fewer remains.
    assert len(dataset.data_vars) == len(fifth_gear.data_vars) - 1
    np.testing.assert_array_equal(dataset.drum_speed, fifth_gear.drum_speed)


def test_duplicate_unknown_column_kept_with_warning(tmp_path, caplog):
    text = (
        "Time, (DWRT CPU) Mystery, (DWRT CPU) Mystery, \n"
        "0, 1, 5, \n0.05, 2, 6, \n"
    )
    with caplog.at_level(logging.WARNING, logger="dynoai_lab.io.winpep"):
        dataset = read_winpep(_write(tmp_path, text))
    assert "columns 2 and 3 are both named '(DWRT CPU) Mystery'" in (
        caplog.text
    )
    np.testing.assert_array_equal(dataset.dwrt_cpu_mystery, [1.0, 2.0])
    np.testing.assert_array_equal(dataset.dwrt_cpu_mystery_2, [5.0, 6.0])


def test_second_time_column_raises(fifth_gear_path, tmp_path):
    lines = _map_column(
        _export_lines(fifth_gear_path), "(DWRT CPU) Speed 1", str, "Time"
    )
    with pytest.raises(
        LogFormatError,
        match=r"edited\.txt: columns 1 and 29 are both named 'Time' but "
        r"hold different values",
    ):
        read_log(_save(tmp_path, lines))


def test_second_time_column_same_values_dropped(tmp_path):
    text = "Time, (DWRT CPU) Speed, Time, \n0, 10, 0, \n0.05, 11, 0.05, \n"
    dataset = read_winpep(_write(tmp_path, text))
    assert list(dataset.data_vars) == ["drum_speed"]
    np.testing.assert_allclose(dataset.time, [0.0, 0.05], atol=1e-12)


@pytest.mark.parametrize(
    "tail",
    [
        pytest.param([], id="header-no-newline"),
        pytest.param([""], id="header-crlf"),
        pytest.param(["", "  ", ""], id="blank-lines"),
        pytest.param(["0, "], id="row-cut-after-time"),
    ],
)
def test_header_without_data_raises(fifth_gear_path, tmp_path, tail):
    header = _export_lines(fifth_gear_path)[0]
    path = _save(tmp_path, [header, *tail])
    with pytest.raises(LogFormatError, match=r"edited\.txt has no data rows"):
        read_log(path)


def test_all_time_cells_blank_raises(fifth_gear_path, tmp_path):
    lines = _map_column(_export_lines(fifth_gear_path), "Time", lambda _: "")
    with pytest.raises(LogFormatError, match=r"edited\.txt has no data rows"):
        read_winpep(_save(tmp_path, lines))


@pytest.mark.parametrize("value", ["On", "nan", "---", "inf", "1_0"])
def test_text_cell_in_only_engine_speed(
    fifth_gear_path, fifth_gear, tmp_path, caplog, value
):
    lines = _drop_columns(
        _export_lines(fifth_gear_path),
        {"(PV) Engine Speed", "(DWRT CPU) Engine RPM"},
    )
    lines = _set_cell(lines, 40, ECU_RPM, value)
    with caplog.at_level(logging.WARNING, logger="dynoai_lab.io.winpep"):
        dataset = read_log(_save(tmp_path, lines))
    speed = dataset.engine_speed.values
    assert np.isnan(speed[40])
    expected = fifth_gear.engine_speed.values.copy()
    expected[40] = np.nan
    np.testing.assert_array_equal(speed, expected)
    assert f"column '{ECU_RPM}' has 1 cell(s)" in caplog.text
    assert f"(first '{value}' on line 42); reading them as NaN" in (
        caplog.text
    )


def test_mostly_text_column_stays_text(tmp_path, caplog):
    text = (
        "Time, (DWRT CPU) Speed, \n0, On, \n0.05, Off, \n0.1, On, \n"
        "0.15, 12, \n"
    )
    with caplog.at_level(logging.WARNING, logger="dynoai_lab.io.winpep"):
        dataset = read_winpep(_write(tmp_path, text))
    assert "drum_speed" not in dataset
    assert list(dataset.dwrt_cpu_speed.values) == ["On", "Off", "On", "12"]
    assert "has 3 of 4 cells that are not numbers" in caplog.text


def test_time_in_milliseconds_detected(
    fifth_gear_path, fifth_gear, tmp_path, caplog
):
    lines = _map_column(
        _export_lines(fifth_gear_path),
        "Time",
        lambda text: f"{float(text) * 1000:g}",
    )
    path = _save(tmp_path, lines)
    with caplog.at_level(logging.WARNING, logger="dynoai_lab.io.winpep"):
        dataset = read_log(path)
    assert "reading Time as milliseconds" in caplog.text
    # Times written with 3 decimals in s are whole ms, so the converted
    # axis equals the original to float rounding.
    np.testing.assert_allclose(dataset.time, fifth_gear.time, atol=1e-9)
    assert float(dataset.time[-1]) == pytest.approx(7.7, abs=1e-9)
    np.testing.assert_array_equal(dataset.power, fifth_gear.power)


def test_time_units_override(fifth_gear_path, tmp_path):
    lines = _map_column(
        _export_lines(fifth_gear_path),
        "Time",
        lambda text: f"{float(text) * 1000:g}",
    )
    dataset = read_winpep(_save(tmp_path, lines), time_units="s")
    assert float(dataset.time[-1]) == pytest.approx(7700.0, abs=1e-6)
    with pytest.raises(ValueError, match="time_units='h'; expected"):
        read_winpep(_save(tmp_path, lines), time_units="h")


def _restarted(fifth_gear_path) -> list[str]:
    """Return the export with its data rows written twice."""
    lines = _export_lines(fifth_gear_path)
    body = [line for line in lines[1:] if line]
    return [lines[0], *body, *body, ""]


def test_time_restart_raises(fifth_gear_path, tmp_path):
    path = _save(tmp_path, _restarted(fifth_gear_path))
    with pytest.raises(
        LogFormatError,
        match=r"edited\.txt: on line 157 Time goes back from 7\.7 s to 0 s "
        r".*time_restart='keep'",
    ):
        read_log(path)


def test_time_restart_kept_on_request(fifth_gear_path, tmp_path, caplog):
    path = _save(tmp_path, _restarted(fifth_gear_path))
    with caplog.at_level(logging.WARNING, logger="dynoai_lab.io.winpep"):
        dataset = read_winpep(path, time_restart="keep")
    assert dataset.sizes["time"] == 310
    assert "on line 157 Time goes back" in caplog.text
    report = preflight(dataset, "ve")
    codes = [(f.level, f.code) for f in report.findings]
    assert ("error", "time_backwards") in codes
    with pytest.raises(ValueError, match="time_restart='split'; expected"):
        read_winpep(path, time_restart="split")


def test_fifo_rejected_without_blocking(tmp_path):
    fifo = tmp_path / "log.txt"
    os.mkfifo(fifo)
    # Opening a FIFO for reading blocks until a writer appears; the
    # alarm turns a regression into a failure instead of a hang.
    signal.alarm(10)
    try:
        for reader in (read_log, read_winpep):
            with pytest.raises(
                LogFormatError, match=r"log\.txt is a FIFO .*not a regular"
            ):
                reader(fifo)
    finally:
        signal.alarm(0)


def test_directory_and_device_rejected(tmp_path):
    with pytest.raises(LogFormatError, match="is a directory"):
        read_log(tmp_path)
    with pytest.raises(LogFormatError, match="/dev/zero is a character"):
        read_log("/dev/zero")
