"""Tests of the TunerStudio .msq/.table and grid CSV tune readers/writers.

Tune values are decimal text read with float(), so they compare
exactly; writes are compared byte for byte.
"""

from __future__ import annotations

import difflib
import os
import signal

import numpy as np
import pytest
import xarray as xr
from conftest import REALDATA

from dynoai_lab.io import (
    FileFormatError,
    GridTable,
    MsqTune,
    TableFile,
    read_grid,
    read_msq,
    read_table_file,
    read_tune,
    write_msq,
    write_tune,
)
from dynoai_lab.io.msq import format_value

MSQ = REALDATA / "speeduino" / "CurrentTune.msq"
TABLE = REALDATA / "speeduino" / "Current.table"


@pytest.fixture(scope="module")
def msq():
    if not MSQ.is_file():
        pytest.skip(f"real tune not found at {MSQ}")
    return read_msq(MSQ)


@pytest.fixture(scope="module")
def table():
    if not TABLE.is_file():
        pytest.skip(f"real table not found at {TABLE}")
    return read_table_file(TABLE)


def _changed_lines(before: bytes, after: bytes) -> list[str]:
    a = before.decode("latin-1").splitlines()
    b = after.decode("latin-1").splitlines()
    return [
        line
        for line in difflib.unified_diff(a, b, lineterm="", n=0)
        if line.startswith(("-", "+")) and not line.startswith(("---", "+++"))
    ]


# -- CurrentTune.msq ------------------------------------------------------


@pytest.mark.realdata
def test_msq_ve_axes(msq):
    ve = msq.ve_front
    assert ve.dims == ("rpm", "map")
    assert ve.shape == (16, 16)
    np.testing.assert_array_equal(ve.rpm[[0, -1]], [500.0, 6200.0])
    np.testing.assert_array_equal(ve.map[[0, -1]], [16.0, 100.0])
    assert ve.attrs["units"] == "%"


@pytest.mark.realdata
def test_msq_ve_values_transposed(msq):
    ve = msq.ve
    # File row 1 (16 kPa) starts 40.0 40.0 ... and ends 37.0; row 16
    # (100 kPa) starts 89.0 and ends 78.0.
    assert float(ve.sel(rpm=500, map=16)) == 40.0
    assert float(ve.sel(rpm=6200, map=16)) == 37.0
    assert float(ve.sel(rpm=500, map=100)) == 89.0
    assert float(ve.sel(rpm=6200, map=100)) == 78.0
    assert float(ve.sel(rpm=1300, map=86)) == 82.0


@pytest.mark.realdata
def test_msq_shared_ve(msq):
    assert msq.shared_ve is True
    assert msq.ve_front is msq.ve_rear
    assert msq.displacement is None
    assert msq.signature == "speeduino 202501"
    assert msq.stoichiometric_afr == 14.7
    assert msq.load_axis == ("map", "kPa")


@pytest.mark.realdata
def test_msq_afr_and_lambda_targets(msq):
    afr = msq.afr_target
    assert afr.dims == ("rpm", "map")
    np.testing.assert_array_equal(afr.rpm[[3, -1]], [1200.0, 6200.0])
    assert float(afr.sel(rpm=500, map=16)) == 14.7
    assert float(afr.sel(rpm=500, map=100)) == 12.2
    assert float(msq.lambda_target.sel(rpm=500, map=100)) == 0.829932


@pytest.mark.realdata
def test_msq_round_trip_byte_identical(msq, tmp_path):
    target = tmp_path / "same.msq"
    write_msq(msq, target)
    assert target.read_bytes() == MSQ.read_bytes()
    write_tune(msq, tmp_path / "same2.msq", ve_front=msq.ve, ve_rear=msq.ve)
    assert (tmp_path / "same2.msq").read_bytes() == MSQ.read_bytes()


@pytest.mark.realdata
def test_msq_correction_changes_only_ve_cells(msq, tmp_path):
    ve = msq.ve.copy()
    ve.loc[{"rpm": 1100, "map": 40}] += 2.6
    ve.loc[{"rpm": 6200, "map": 100}] -= 5.0
    target = tmp_path / "corrected.msq"
    write_tune(msq, target, ve_front=ve, ve_rear=ve)
    changed = _changed_lines(MSQ.read_bytes(), target.read_bytes())
    # Two cells on two veTable rows: one line out, one line in, each.
    assert len(changed) == 4
    assert (
        changed[0].split()
        == (
            "- 42.0 45.0 47.0 49.0 50.0 51.0 52.0 53.0 53.0 53.0 52.0 52.0 "
            "50.0 49.0 48.0 47.0"
        ).split()
    )
    assert "52.0" in changed[1].split()[4]
    back = read_msq(target)
    # VE has digits="0": 49 + 2.6 is stored as 52.0.
    assert float(back.ve.sel(rpm=1100, map=40)) == 52.0
    assert float(back.ve.sel(rpm=6200, map=100)) == 73.0
    assert len(target.read_bytes()) == len(MSQ.read_bytes())


@pytest.mark.realdata
def test_msq_differing_cylinders_rejected(msq, tmp_path):
    rear = msq.ve + 1.0
    with pytest.raises(ValueError, match=r"shared_ve=True.*differ"):
        write_tune(msq, tmp_path / "x.msq", ve_front=msq.ve, ve_rear=rear)
    assert not (tmp_path / "x.msq").exists()


@pytest.mark.realdata
def test_msq_wrong_axes_rejected(msq, tmp_path):
    wrong = msq.ve.assign_coords(map=msq.ve.map + 1.0)
    with pytest.raises(ValueError, match=r"map coordinates"):
        write_msq(msq, tmp_path / "x.msq", ve=wrong)


@pytest.mark.realdata
def test_read_tune_dispatch_tunerstudio(msq, table):
    assert isinstance(read_tune(MSQ), MsqTune)
    assert isinstance(read_tune(TABLE), TableFile)


# -- Current.table ----------------------------------------------------------


@pytest.mark.realdata
def test_table_values(table):
    ve = table.ve_front
    assert ve.dims == ("rpm", "map")
    assert float(ve.sel(rpm=500, map=16)) == 40.0
    # The .table export predates the .msq: row 7 (50 kPa) starts 46.0
    # here and 47.0 in the tune.
    assert float(ve.sel(rpm=500, map=50)) == 46.0
    assert float(ve.sel(rpm=6200, map=100)) == 70.0


@pytest.mark.realdata
def test_table_round_trip_and_edit(table, tmp_path):
    write_tune(table, tmp_path / "same.table")
    assert (tmp_path / "same.table").read_bytes() == TABLE.read_bytes()
    ve = table.ve.copy()
    ve.loc[{"rpm": 500, "map": 16}] = 41.0
    write_tune(table, tmp_path / "edit.table", ve_front=ve)
    changed = _changed_lines(
        TABLE.read_bytes(), (tmp_path / "edit.table").read_bytes()
    )
    assert len(changed) == 2
    assert changed[1].split()[1] == "41.0"


# -- grid CSV -----------------------------------------------------------------

GRID = "RPM,35,50,65\n1500,'+60.5,62.0,\n2000,64.0,66.25,70.0\n"


def test_grid_reads_rpm_rows(tmp_path):
    path = tmp_path / "ve.csv"
    path.write_text(GRID)
    grid = read_tune(path)
    assert isinstance(grid, GridTable)
    assert grid.ve.dims == ("rpm", "map")
    np.testing.assert_array_equal(grid.ve.map, [35.0, 50.0, 65.0])
    assert float(grid.ve.sel(rpm=1500, map=35)) == 60.5
    # A blank cell is NaN, never a VE of 0.
    assert np.isnan(float(grid.ve.sel(rpm=1500, map=65)))


def test_grid_transposed(tmp_path):
    path = tmp_path / "ve.csv"
    path.write_text("MAP_kPa,1500,2000\n35,60,64\n50,62,66\n")
    grid = read_grid(path)
    np.testing.assert_array_equal(grid.ve.rpm, [1500.0, 2000.0])
    assert float(grid.ve.sel(rpm=2000, map=35)) == 64.0


def test_grid_round_trip_and_edit(tmp_path):
    path = tmp_path / "ve.csv"
    path.write_text(GRID)
    grid = read_grid(path)
    write_tune(grid, tmp_path / "same.csv")
    assert (tmp_path / "same.csv").read_text() == GRID
    ve = grid.ve.copy()
    ve.loc[{"rpm": 2000, "map": 50}] = 67.0
    write_tune(grid, tmp_path / "edit.csv", ve_front=ve, ve_rear=ve)
    assert (tmp_path / "edit.csv").read_text() == GRID.replace(
        "66.25", "67.00"
    )
    assert path.read_text() == GRID


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("one.csv", "RPM,35,50\n", r"one\.csv: 1 table lines"),
        ("bad.csv", "RPM,35,50\n1500,abc,2\n", r"bad\.csv: a cell"),
        ("short.csv", "RPM,35,50\n1500,1\n", r"short\.csv, line 2"),
        ("t.msq", "<msq><page/>", r"t\.msq is not valid XML"),
        (
            "t.msq",
            '<?xml version="1.0"?><!DOCTYPE msq [<!ENTITY a "b">]>'
            "<msq>&a;</msq>",
            r"t\.msq uses a forbidden XML feature",
        ),
        ("t.table", "<tableData></tableData>", r"t\.table has no <xAxis>"),
        ("t.msq", "<notmsq/>", r"t\.msq is not a tune format"),
    ],
)
def test_malformed_tunes_raise(tmp_path, name, text, message):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(FileFormatError, match=message):
        read_tune(path)


def test_msq_cell_count_mismatch_raises(tmp_path):
    path = tmp_path / "t.msq"
    path.write_text(
        '<msq><page><constant cols="2" name="veTable" rows="2">1 2 3'
        "</constant></page></msq>"
    )
    with pytest.raises(FileFormatError, match=r"t\.msq, 'veTable': 3 values"):
        read_msq(path)


def test_write_tune_rejects_other_objects(tmp_path):
    with pytest.raises(TypeError, match=r"write_tune got a dict"):
        write_tune({}, tmp_path / "x")


@pytest.mark.parametrize(
    ("value", "digits", "text"),
    [
        (41.4, 0, "41.0"),
        (41.5, 1, "41.5"),
        (0.9727891, 3, "0.973"),
        (-0.0, 0, "0.0"),
    ],
)
def test_format_value_cases(value, digits, text):
    assert format_value(value, digits) == text


def test_write_tune_pvv_round_trip(base_pvv_path, tmp_path):
    tune = read_tune(base_pvv_path)
    written = tmp_path / "base.pvv"
    write_tune(tune, written)
    assert written.read_bytes() == base_pvv_path.read_bytes()


# -- small malformed tunes, built here

SMALL_MSQ = """<?xml version="1.0" encoding="ISO-8859-1"?>
<msq xmlns="http://www.msefi.com/:msq">
<page number="0">
<constant cols="3" digits="0" name="veTable" rows="2" units="%">
 50.0 52.0 54.0
 60.0 62.0 {cell}
</constant>
<constant cols="1" digits="0" name="rpmBins" rows="3" units="RPM">
 1000.0 {rpm} 3000.0
</constant>
<constant cols="1" digits="0" name="fuelLoadBins" rows="2" units="kPa">
 40.0 100.0
</constant>
</page>
</msq>
"""


def _small_msq(tmp_path, cell="64.0", rpm="2000.0"):
    path = tmp_path / "small.msq"
    path.write_text(SMALL_MSQ.format(cell=cell, rpm=rpm))
    return path


def test_small_msq_reads(tmp_path):
    tune = read_tune(_small_msq(tmp_path))
    assert tune.ve.dims == ("rpm", "map")
    np.testing.assert_array_equal(tune.ve.sel(map=100.0), [60.0, 62.0, 64.0])


@pytest.mark.parametrize("cell", ["6_4", "nan", "inf", "0x40"])
def test_msq_value_not_decimal_rejected(tmp_path, cell):
    with pytest.raises(
        FileFormatError,
        match=rf"small\.msq, 'veTable': value 5 is '{cell}'; expected a "
        "decimal number",
    ):
        read_msq(_small_msq(tmp_path, cell=cell))


def test_msq_rpm_axis_not_increasing(tmp_path):
    tune = read_msq(_small_msq(tmp_path, rpm="500.0"))
    with pytest.raises(
        FileFormatError,
        match=r"small\.msq, 'veTable' on rpmBins x fuelLoadBins: the rpm "
        r"axis is not strictly increasing: 500 follows 1000",
    ):
        _ = tune.ve_front


def test_msq_transposed_values_rejected(tmp_path):
    tune = read_msq(_small_msq(tmp_path))
    out = tmp_path / "out.msq"
    with pytest.raises(ValueError, match=r"shape \(2, 3\) \(the transpose"):
        write_msq(tune, out, ve=tune.ve.values.T)
    with pytest.raises(ValueError, match=r"dims \('map', 'rpm'\)"):
        write_msq(tune, out, ve=tune.ve.T)
    without_coords = xr.DataArray(tune.ve.values, dims=("rpm", "map"))
    with pytest.raises(ValueError, match="rpm coordinates None"):
        write_tune(tune, out, ve_front=without_coords)
    assert not out.exists()


def test_msq_readonly_and_missing_folder(tmp_path):
    path = _small_msq(tmp_path)
    tune = read_msq(path)
    with pytest.raises(FileNotFoundError, match=r"folder .*nope does not"):
        write_msq(tune, tmp_path / "nope" / "out.msq")
    path.chmod(0o444)
    with pytest.raises(PermissionError, match="read-only"):
        write_msq(tune, path, ve=tune.ve + 1.0)
    written = write_msq(tune, path, ve=tune.ve + 1.0, overwrite_readonly=True)
    np.testing.assert_array_equal(read_msq(path).ve, written.ve)


def test_grid_not_decimal_rejected(tmp_path):
    path = tmp_path / "ve.csv"
    path.write_text(GRID.replace("66.25", "6_6"))
    with pytest.raises(FileFormatError, match=r"ve\.csv: a cell .*'6_6'"):
        read_grid(path)


def test_grid_transposed_values_rejected(tmp_path):
    path = tmp_path / "ve.csv"
    path.write_text(GRID)
    grid = read_grid(path)
    with pytest.raises(ValueError, match=r"shape \(3, 2\) \(the transpose"):
        write_tune(grid, tmp_path / "out.csv", ve_front=grid.ve.values.T)
    with pytest.raises(ValueError, match=r"dims \('map', 'rpm'\)"):
        write_tune(grid, tmp_path / "out.csv", ve_front=grid.ve.T)


def test_grid_axis_not_increasing(tmp_path):
    path = tmp_path / "ve.csv"
    path.write_text(GRID.replace("RPM,35,50,65", "RPM,35,65,50"))
    with pytest.raises(
        FileFormatError,
        match=r"ve\.csv, table 'RPM': the map axis is not strictly "
        r"increasing: 50 follows 65",
    ):
        _ = read_grid(path).ve


def test_table_fifo_rejected(tmp_path):
    fifo = tmp_path / "ve.table"
    os.mkfifo(fifo)
    signal.alarm(10)
    try:
        for reader in (read_table_file, read_grid, read_msq):
            with pytest.raises(FileFormatError, match="is a FIFO"):
                reader(fifo)
    finally:
        signal.alarm(0)
