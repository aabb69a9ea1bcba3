"""Tests of the ECU and logger readers on real and malformed files.

Real files are read from ../shared/realdata (skipped when absent).
Tolerances: values that the file writes as decimal text are compared
to half a unit of the last printed digit; unit conversions by exact
factors (ms to s, bar to kPa, lambda x 14.7) to 1e-9 relative.
"""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from conftest import REALDATA

from dynoai_lab import channels
from dynoai_lab.io import (
    FileFormatError,
    LogFormatError,
    detect_log_format,
    read_haltech,
    read_jetdrive,
    read_log,
    read_mlg,
    read_romraider,
    read_tunerstudio,
)

SPEEDUINO_CSV = REALDATA / "speeduino" / "2025-12-02_10.47.33.csv"
SPEEDUINO_MLG = REALDATA / "speeduino" / "2025-12-02_10.47.33.mlg"
ROMRAIDER = REALDATA / "ecu_logs" / "romraiderlog_20251031_170713.csv"
HALTECH = REALDATA / "ecu_logs" / "haltech_2025-07-18_0215pm_Log1118.csv"
JETDRIVE = REALDATA / "jetdrive" / "jetdrive_log_20251218_230024.csv"


def _read_or_skip(reader, path):
    if not path.is_file():
        pytest.skip(f"real recording not found at {path}")
    return reader(path)


@pytest.fixture(scope="module")
def speeduino_csv():
    return _read_or_skip(read_tunerstudio, SPEEDUINO_CSV)


@pytest.fixture(scope="module")
def speeduino_mlg():
    return _read_or_skip(read_mlg, SPEEDUINO_MLG)


@pytest.fixture(scope="module")
def romraider():
    return _read_or_skip(read_romraider, ROMRAIDER)


@pytest.fixture(scope="module")
def haltech():
    return _read_or_skip(read_haltech, HALTECH)


@pytest.fixture(scope="module")
def jetdrive():
    return _read_or_skip(read_jetdrive, JETDRIVE)


def _sample_rate(dataset) -> float:
    return 1.0 / float(np.median(np.diff(dataset.time.values)))


# -- detection through the one entry point ----------------------------------


@pytest.mark.realdata
@pytest.mark.parametrize(
    ("relative", "fmt"),
    [
        ("speeduino/2025-12-02_10.47.33.csv", "tunerstudio-text"),
        ("speeduino/2025-12-02_10.47.33.mlg", "mlg-v2"),
        ("mlg/short.mlg", "mlg-v1"),
        ("mlg/markers.mlg", "mlg-v1"),
        ("ecu_logs/romraiderlog_20251031_170713.csv", "romraider-csv"),
        ("ecu_logs/haltech_2025-07-18_0215pm_Log1118.csv", "haltech-nsp-csv"),
        ("jetdrive/jetdrive_log_20251218_230024.csv", "jetdrive-csv"),
        ("harley/5TH GEAR.txt", "winpep8-csv"),
        ("harley/PV_Logfile_5.csv_18.txt", "winpep8-csv"),
        ("winpep/RunFile_40.csv", "winpep8-csv"),
        ("winpep/134power.csv", "winpep8-csv"),
    ],
)
def test_read_log_detects_format(realdata, relative, fmt):
    dataset = read_log(realdata / relative)
    assert dataset.attrs["source_format"] == fmt
    assert dataset.time.attrs["units"] == "s"
    assert float(dataset.time[0]) == 0.0
    assert "engine_speed" in dataset
    assert dataset.engine_speed.attrs["units"] == "rpm"


@pytest.mark.realdata
def test_detection_ignores_extension(realdata, tmp_path):
    renamed = tmp_path / "log.txt"
    renamed.write_bytes((realdata / "mlg" / "short.mlg").read_bytes())
    assert detect_log_format(renamed) == "mlg"
    copy = tmp_path / "log.dat"
    copy.write_bytes(ROMRAIDER.read_bytes())
    assert read_log(copy).attrs["source_format"] == "romraider-csv"


# -- TunerStudio CSV and MLG of the same Speeduino drive -------------------


@pytest.mark.realdata
def test_speeduino_csv_first_rows(speeduino_csv):
    # The stale first record (536.937 s) is dropped; the next is 0.001 s.
    assert speeduino_csv.sizes["time"] == 2699
    assert speeduino_csv.attrs["time_offset"] == pytest.approx(0.001)
    assert float(speeduino_csv.manifold_pressure[0]) == 99.0
    assert float(speeduino_csv.afr_ecu[0]) == pytest.approx(15.4, abs=5e-4)
    assert float(speeduino_csv.lambda_ecu[0]) == pytest.approx(1.048, abs=5e-4)
    assert float(speeduino_csv.coolant_temperature[0]) == 101.0


@pytest.mark.realdata
def test_speeduino_csv_ranges_and_rate(speeduino_csv):
    assert float(speeduino_csv.engine_speed.max()) == 5163.0
    assert float(speeduino_csv.manifold_pressure.min()) == 14.0
    assert float(speeduino_csv.afr_ecu.min()) == pytest.approx(10.7, abs=5e-4)
    assert float(speeduino_csv.afr_ecu.max()) == pytest.approx(19.7, abs=5e-4)
    # About 15 Hz per the folder's README; 179.948 s over 2698 steps.
    assert _sample_rate(speeduino_csv) == pytest.approx(15.15, abs=0.05)
    # Last time 179.949 s less the first kept 0.001 s.
    assert float(speeduino_csv.time[-1]) == pytest.approx(179.948, abs=1e-6)


@pytest.mark.realdata
def test_speeduino_afr_and_lambda_both_original(speeduino_csv):
    afr, lam = speeduino_csv.afr_ecu, speeduino_csv.lambda_ecu
    assert afr.attrs["kind"] == "wideband"
    assert afr.attrs["original"] == "afr"
    assert lam.attrs["original"] == "lambda"
    assert lam.attrs["kind"] == "lambda"
    assert speeduino_csv.afr_target.attrs["original"] == "afr"
    assert "lambda_target" in speeduino_csv
    # Both logged at 3 decimals from one sensor: AFR / 14.7 matches the
    # lambda to 1e-3 plus the AFR's own rounding (0.05 / 14.7).
    ratio = afr.values / 14.7 - lam.values
    assert np.nanmax(np.abs(ratio)) < 1e-3 + 0.05 / 14.7


@pytest.mark.realdata
def test_speeduino_unknown_channels_kept(speeduino_csv):
    assert speeduino_csv.ve1.attrs["original_name"] == "VE1"
    assert speeduino_csv.ve1.attrs["units"] == "%"
    assert speeduino_csv.unnamed_69.attrs["original_name"] == ""
    assert len(speeduino_csv.data_vars) == 75


def _csv_decimals(path):
    """Decimals printed per column in the CSV (max over the rows)."""
    with open(path, newline="") as file:
        reader = csv.reader(file, delimiter=";")
        headers = next(reader)
        next(reader)
        decimals = [0] * len(headers)
        for row in reader:
            for index, text in enumerate(row):
                if "." in text:
                    decimals[index] = max(
                        decimals[index], len(text.split(".")[1])
                    )
    return dict(zip(headers, decimals, strict=True))


@pytest.mark.realdata
def test_mlg_equals_csv_export(speeduino_csv, speeduino_mlg):
    decimals = _csv_decimals(SPEEDUINO_CSV)
    assert speeduino_mlg.sizes == speeduino_csv.sizes
    assert set(speeduino_mlg.data_vars) == set(speeduino_csv.data_vars)
    compared = 0
    for name, variable in speeduino_csv.data_vars.items():
        header = variable.attrs["original_name"]
        # The CSV prints each value rounded to its column's decimals, so
        # the binary value must lie within half a unit of that digit.
        tolerance = 0.5 * 10.0 ** -decimals[header] + 1e-9
        np.testing.assert_allclose(
            speeduino_mlg[name].values,
            variable.values,
            rtol=0,
            atol=tolerance,
            err_msg=name,
        )
        compared += 1
    np.testing.assert_allclose(
        speeduino_mlg.time.values,
        speeduino_csv.time.values,
        rtol=0,
        atol=0.5e-3 + 1e-7,
    )
    assert compared == 75


@pytest.mark.realdata
def test_mlg_v2_header(speeduino_mlg):
    assert speeduino_mlg.attrs["source_format"] == "mlg-v2"
    assert "speeduino 202501" in speeduino_mlg.attrs["info"]
    assert speeduino_mlg.attrs["log_start"] == 1764672458
    assert json.loads(speeduino_mlg.attrs["markers"]) == []


@pytest.mark.realdata
def test_mlg_v1_short(realdata):
    dataset = read_mlg(realdata / "mlg" / "short.mlg")
    assert dataset.sizes["time"] == 66
    assert float(dataset.engine_speed[0]) == 431.0
    assert float(dataset.afr_ecu[0]) == pytest.approx(11.4, abs=1e-5)
    # F32 time field: 2.288 s over 65 steps, about 30 Hz.
    assert float(dataset.time[-1]) == pytest.approx(2.288, abs=1e-6)
    assert _sample_rate(dataset) == pytest.approx(30.3, abs=0.1)
    assert "Speeduino 2020.09-dev" in dataset.attrs["info"]


@pytest.mark.realdata
def test_mlg_markers(realdata):
    dataset = read_mlg(realdata / "mlg" / "markers.mlg")
    markers = json.loads(dataset.attrs["markers"])
    assert dataset.sizes["time"] == 43
    assert len(markers) == 9
    assert markers[0]["text"].startswith("MARK 000 - Manual")
    assert markers[-1]["text"].startswith("MARK 008 - Manual")
    times = [m["time"] for m in markers]
    assert times == sorted(times)
    assert times[-1] <= float(dataset.time[-1])


# -- RomRaider: semicolons, decimal commas, ms, bar, lambda ----------------


@pytest.mark.realdata
def test_romraider_first_row(romraider):
    assert float(romraider.engine_speed[0]) == 860.0
    # 0,38 bar is 38 kPa; bar to kPa is an exact factor.
    assert float(romraider.manifold_pressure[0]) == pytest.approx(38.0)
    assert float(romraider.lambda_plx[0]) == pytest.approx(0.98)
    assert float(romraider.afr_plx[0]) == pytest.approx(0.98 * 14.7)
    assert float(romraider.timing_advance[0]) == pytest.approx(14.0)


@pytest.mark.realdata
def test_romraider_ranges_and_rate(romraider):
    assert romraider.sizes["time"] == 4235
    # Time (msec) 827203 in the last row.
    assert float(romraider.time[-1]) == pytest.approx(827.203)
    assert _sample_rate(romraider) == pytest.approx(5.05, abs=0.05)
    assert float(romraider.engine_speed.max()) == 6686.0
    assert float(romraider.manifold_pressure.max()) == pytest.approx(201.0)
    assert float(romraider.lambda_plx.min()) == pytest.approx(0.68)


@pytest.mark.realdata
def test_romraider_lambda_is_original(romraider):
    afr = romraider.afr_plx
    assert afr.attrs["kind"] == "wideband"
    assert afr.attrs["original"] == "lambda"
    assert afr.attrs["derived_from"] == "lambda_plx"
    assert afr.attrs["stoichiometric_afr"] == 14.7
    assert romraider.lambda_plx.attrs["kind"] == "lambda"
    assert romraider.manifold_pressure.attrs["source_units"] == "bar"


# -- Haltech NSP: header block, raw integers scaled by type -----------------


@pytest.mark.realdata
def test_haltech_first_row(haltech):
    assert float(haltech.engine_speed[0]) == 1225.0
    assert float(haltech.manifold_pressure[0]) == pytest.approx(76.7)
    assert float(haltech.throttle_position[0]) == pytest.approx(30.1)
    assert float(haltech.lambda_wb1[0]) == pytest.approx(0.974)
    # 3166 raw is 316.6 K, 43.45 °C.
    assert float(haltech.intake_air_temperature[0]) == pytest.approx(43.45)
    assert float(haltech.lambda_target[0]) == pytest.approx(0.937)
    assert float(haltech.afr_target[0]) == pytest.approx(0.937 * 14.7)


@pytest.mark.realdata
def test_haltech_rate_and_ranges(haltech):
    assert haltech.sizes["time"] == 879
    assert _sample_rate(haltech) == pytest.approx(50.0, rel=1e-6)
    assert float(haltech.engine_speed.max()) == 3516.0
    assert float(haltech.coolant_temperature.min()) == pytest.approx(70.25)
    assert haltech.attrs["Software"] == "Haltech NSP"
    assert haltech.afr_wb1.attrs["haltech_type"] == "AFR"


@pytest.mark.realdata
def test_haltech_sentinel_read_as_missing(haltech):
    # Two samples of -2147483637 raw (no reading) become NaN.
    assert int(haltech.lambda_wb1.isnull().sum()) == 2
    assert float(haltech.lambda_wb1.min()) == pytest.approx(0.42)


# -- JetDrive: quoted fields, cut names, Desired Lambda holding AFR --------


@pytest.mark.realdata
def test_jetdrive_first_row_and_rate(jetdrive):
    assert jetdrive.sizes["time"] == 71
    assert float(jetdrive.engine_speed[0]) == 1033.0
    assert float(jetdrive.ve_front[0]) == 86.0
    # Injector Time Front 3.390000104904175 ms.
    assert float(jetdrive.injector_time_front[0]) == pytest.approx(3.39e-3)
    assert float(jetdrive.time[-1]) == pytest.approx(18.624)
    assert _sample_rate(jetdrive) == pytest.approx(3.79, abs=0.05)


@pytest.mark.realdata
def test_jetdrive_desired_lambda_is_afr(jetdrive, caplog):
    target = jetdrive.afr_target
    assert target.attrs["original_name"] == "Desired Lambda"
    assert float(target[0]) == pytest.approx(14.2884, abs=1e-4)
    assert "lambda_target" not in jetdrive


@pytest.mark.realdata
def test_jetdrive_unnamed_channels_kept(jetdrive):
    assert jetdrive.chan_15.attrs["units"] == "unknown"
    assert jetdrive.idle_air_control_motor_positio.attrs["original_name"] == (
        "Idle Air Control Motor Positio"
    )


# -- crafted files ----------------------------------------------------------

TS_TEXT = (
    '"Time";"RPM";"MAP";"Lambda";"Fan"\n'
    '"s";"rpm";"bar";"";""\n'
    "0,000;1000;1,01;0,95;Off\n"
    "0,100;1500;0,99;1,05;On\n"
)


def test_semicolon_decimal_comma_units_row(tmp_path):
    path = tmp_path / "ts.csv"
    path.write_text(TS_TEXT)
    dataset = read_log(path)
    assert dataset.attrs["source_format"] == "tunerstudio-text"
    # A units row of bar overrides the alias' kPa: 1.01 bar = 101 kPa.
    np.testing.assert_allclose(dataset.manifold_pressure, [101.0, 99.0])
    np.testing.assert_allclose(dataset.afr_ecu, [0.95 * 14.7, 1.05 * 14.7])
    np.testing.assert_array_equal(dataset.fan, [0.0, 1.0])


def test_msl_with_info_and_markers(tmp_path):
    path = tmp_path / "log.msl"
    path.write_text(
        '"speeduino 202501"\n"Capture Date: today"\n'
        "Time\tRPM\tAFR\n"
        "s\trpm\tAFR\n"
        "0.0\t900\t14.7\n"
        "MARK 000 - Manual\n"
        "0.1\t950\t14.5\n"
    )
    dataset = read_log(path)
    assert dataset.attrs["info"].startswith("speeduino 202501")
    markers = json.loads(dataset.attrs["markers"])
    assert markers == [{"time": 0.0, "text": "MARK 000 - Manual"}]
    np.testing.assert_allclose(dataset.engine_speed, [900.0, 950.0])


def test_afr_column_holding_lambda_is_converted(tmp_path, caplog):
    path = tmp_path / "ts.csv"
    path.write_text(
        "Time,RPM,AFR\ns,rpm,AFR\n0,1000,0.9\n0.1,1000,1.1\n0.2,1000,1.0\n"
    )
    dataset = read_log(path)
    assert "lambda_ecu" in dataset
    np.testing.assert_allclose(dataset.afr_ecu, [13.23, 16.17, 14.7])
    assert "lambda" in caplog.text


def _mlg_bytes(records=2, version=1, magic=b"MLVLG\x00"):
    """Build a small MLG file: Time (F32) and RPM (U16)."""
    import struct

    size, descriptor = (22, 55) if version == 1 else (24, 89)
    fields = b""
    for kind, name, unit in ((7, b"Time", b"s"), (2, b"RPM", b"rpm")):
        entry = bytes([kind]) + name.ljust(34, b"\0") + unit.ljust(10, b"\0")
        entry += b"\0" + struct.pack(">ff", 1.0, 0.0) + b"\0"
        fields += entry.ljust(descriptor, b"\0")
    info_start = size + len(fields)
    info = b"test\0"
    data_start = info_start + len(info)
    layout = ">hiHiHH" if version == 1 else ">hiIIHH"
    header = magic + struct.pack(
        layout, version, 0, info_start, data_start, 6, 2
    )
    blocks = b""
    for index in range(records):
        values = struct.pack(">fH", index * 0.1, 1000 + index)
        blocks += bytes([0, index, 0, 0]) + values + bytes([sum(values) & 255])
    return header + fields + info + blocks


@pytest.mark.parametrize("version", [1, 2])
def test_small_mlg_both_versions(tmp_path, version):
    path = tmp_path / "small.mlg"
    path.write_bytes(_mlg_bytes(3, version))
    dataset = read_log(path)
    assert dataset.attrs["source_format"] == f"mlg-v{version}"
    np.testing.assert_array_equal(dataset.engine_speed, [1000, 1001, 1002])


def test_truncated_mlg_drops_last_record(tmp_path, caplog):
    path = tmp_path / "cut.mlg"
    path.write_bytes(_mlg_bytes(3)[:-4])
    dataset = read_mlg(path)
    assert dataset.sizes["time"] == 2
    assert "cut short" in caplog.text


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"MLVLX\x00\x00\x01", r"bad\.mlg.*expected the MLG magic"),
        (b"MLVLG\x00\x00\x07" + bytes(20), r"bad\.mlg.*version 7"),
        (b"MLVLG\x00\x00\x01\x00", r"bad\.mlg.*cut short"),
    ],
)
def test_malformed_mlg_raises(tmp_path, data, message):
    path = tmp_path / "bad.mlg"
    path.write_bytes(data)
    with pytest.raises(FileFormatError, match=message):
        read_mlg(path)


def test_mlg_bad_block_type_raises(tmp_path):
    data = bytearray(_mlg_bytes(2))
    data[-11] = 7
    path = tmp_path / "bad.mlg"
    path.write_bytes(bytes(data))
    with pytest.raises(LogFormatError, match=r"bad\.mlg.*block type 7"):
        read_mlg(path)


@pytest.mark.parametrize(
    ("name", "text", "reader", "message"),
    [
        ("empty.csv", "", read_log, r"empty\.csv is empty"),
        (
            "ragged.csv",
            "Time;RPM\ns;rpm\n0;1;2\n0.1;2\n",
            read_log,
            r"ragged\.csv, line 3: 3 fields.*header has 2",
        ),
        (
            "short.csv",
            "Time;RPM;MAP\ns;rpm;kpa\n0;1\n0.1;2;3\n",
            read_log,
            r"short\.csv, line 3: 2 fields",
        ),
        (
            "rr.csv",
            "Time (msec);RPM (rpm)\n0;1\n1;2;3\n",
            read_romraider,
            r"rr\.csv, line 3",
        ),
        (
            "rr.csv",
            "Time (s);RPM (rpm)\n0;1\n",
            read_romraider,
            r"rr\.csv is not a RomRaider log.*Time \(msec\)",
        ),
        (
            "hal.csv",
            "%DataLog%\nChannel : RPM\nID : 1\n",
            read_haltech,
            r"hal\.csv: no data rows",
        ),
        (
            "hal.csv",
            "%DataLog%\nChannel : RPM\nID : 1\n12:00:00.000,5\n",
            read_haltech,
            r"hal\.csv: channel 'RPM' has no 'Type'",
        ),
        (
            "jd.csv",
            '"Timestamp","Engine Speed"\n"yesterday","1000"\n',
            read_jetdrive,
            r"jd\.csv: invalid Timestamp 'yesterday'",
        ),
        (
            "notes.txt",
            "hello\nworld\n",
            read_log,
            r"notes\.txt is not a log format.*supported",
        ),
    ],
)
def test_malformed_logs_raise(tmp_path, name, text, reader, message):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(FileFormatError, match=message):
        reader(path)


def test_source_file_not_modified(tmp_path):
    path = tmp_path / "ts.csv"
    path.write_text(TS_TEXT)
    before = path.read_bytes()
    read_log(path)
    assert path.read_bytes() == before


def test_lookup_name_cases():
    channel, alias = channels.lookup_name("romraider", "PLX O2 - Wideband")
    assert channel.name == "afr_plx"
    assert alias.units == "lambda"
    channel, _ = channels.lookup_name("haltech", "  Manifold Pressure ")
    assert channel.name == "manifold_pressure"
    assert channels.lookup_name("tunerstudio", "Aux0") is None


@pytest.mark.parametrize(
    ("text", "unit"),
    [("kpa", "kPa"), ("msec", "ms"), ("degrees", "deg"), ("O2", None)],
)
def test_normalize_units_cases(text, unit):
    assert channels.normalize_units(text) == unit
