"""Tests of the Power Vision .pvv reader and writer.

Values in .pvv files are decimal text, so values read back compare
exactly after the same float conversion; rpm axes multiplied by 1000
compare to 1e-9 relative.
"""

from __future__ import annotations

import logging
import os
import re
import signal

import numpy as np
import pytest
import xarray as xr

from dynoai_lab.io import (
    FileFormatError,
    PvvTune,
    read_pvv,
    read_tune,
    write_pvv,
    write_tune,
)
from dynoai_lab.io.errors import TuneFormatError
from dynoai_lab.io.pvv import count_breakpoints, format_value


@pytest.fixture
def base_path(base_pvv_path):
    return base_pvv_path


@pytest.fixture
def template_path(template_pvv_path):
    return template_pvv_path


@pytest.fixture
def base(base_path):
    return read_pvv(base_path)


@pytest.fixture
def template(template_path):
    return read_pvv(template_path)


def _changed_lines(before: bytes, after: bytes) -> list[tuple[int, bytes]]:
    """Return (line number, new line) for every line that differs."""
    old_lines = before.split(b"\n")
    new_lines = after.split(b"\n")
    assert len(old_lines) == len(new_lines)
    return [
        (number, new)
        for number, (old, new) in enumerate(
            zip(old_lines, new_lines, strict=True)
        )
        if old != new
    ]


# -- base.pvv: TPS-based VE, padding on both axes ------------------------


def test_base_items(base):
    assert len(base.items) == 35
    assert base.items[0].name == "Acceleration Enrichment"
    assert base.items[0].id == "tbl_accel_enrichment"


def test_base_ve_front_axes(base):
    ve = base.ve_front
    assert base.ve_load == "tps"
    assert ve.dims == ("rpm", "tps")
    # 27 x 17 cells as written; 8 rows repeat 6.5 and 4 columns repeat
    # 100, which leaves 19 rpm by 13 TPS breakpoints.
    assert ve.shape == (19, 13)
    np.testing.assert_allclose(ve.rpm[[0, -1]], [500.0, 6500.0], rtol=1e-9)
    np.testing.assert_allclose(ve.tps[[0, -1]], [0.0, 100.0], rtol=1e-9)
    assert ve.rpm.attrs["units"] == "rpm"
    assert ve.tps.attrs["units"] == "%"
    assert np.all(np.diff(ve.rpm) > 0)
    assert np.all(np.diff(ve.tps) > 0)


def test_base_ve_values_keep_first_occurrence(base):
    ve = base.ve_front
    assert ve.attrs["units"] == "%"
    assert ve.attrs["source_name"] == "VE (TPS based/Front Cyl)"
    assert ve.name == "ve_front"
    assert float(ve.sel(rpm=500, tps=0)) == 86.0
    # The first "100" column contains 115 at 6500 rpm. Its padding copies
    # contain 102, and the padding rows below contain 108.5 to 102.
    assert float(ve.sel(rpm=6500, tps=100)) == 115.0
    assert float(ve.sel(rpm=6500, tps=0)) == 115.5


def test_base_ve_rear_differs(base):
    assert base.ve_rear.shape == (19, 13)
    assert base.ve_rear.attrs["source_name"] == "VE (TPS based/Rear Cyl)"


def test_base_padding_is_logged(base, caplog):
    with caplog.at_level(logging.INFO, logger="dynoai_lab.io.pvv"):
        base.table("VE (TPS based/Front Cyl)")
    assert "dropped 8 padding row(s) repeating label '6.5'" in caplog.text
    assert "dropped 4 padding column(s) repeating label '100'" in caplog.text


def test_base_scalars(base):
    assert base.displacement_cid == pytest.approx(94.6, abs=1e-12)
    # 94.6 in³ · (0.0254 m/in)³.
    assert base.displacement == pytest.approx(94.6 * 0.0254**3, rel=1e-12)
    assert base.injector_size_lb_h == pytest.approx(31.07, abs=1e-12)
    assert base.injector_flow_rate == pytest.approx(
        31.07 * 0.45359237 / 3600.0, rel=1e-12
    )
    assert base.calibration_id == "141NY103-001"
    assert base.scalar("RPM Limit Threshold") == pytest.approx(
        5700.0, rel=1e-9
    )


def test_base_afr_target(base):
    afr = base.afr_target
    assert afr.dims == ("rpm", "map")
    # 17 rows; 17 columns of which 5 repeat 100 kPa.
    assert afr.shape == (17, 12)
    np.testing.assert_allclose(afr.map[[0, -1]], [20.0, 100.0], rtol=1e-12)
    np.testing.assert_allclose(afr.rpm[[0, -1]], [750.0, 6000.0], rtol=1e-9)
    assert afr.attrs["units"] == "1"


def test_base_vector_and_temperature_axis(base):
    idle = base.table("Idle RPM")
    assert idle.dims == ("temperature",)
    assert idle.attrs["units"] == "rpm"
    assert float(idle[0]) == pytest.approx(1496.0, rel=1e-9)
    # 3 °F is -16.1 °C.
    assert float(idle.temperature[0]) == pytest.approx(-16.111111, abs=1e-6)


def test_scalar_of_table_raises(base):
    with pytest.raises(ValueError, match="expected a 1 x 1 scalar"):
        base.scalar("VE (TPS based/Front Cyl)")


def test_missing_item_lists_similar(base):
    with pytest.raises(KeyError, match="Spark Advance"):
        base.table("Spark Advance (Middle Cyl)")


# -- pvv_template.pvv: MAP- and TPS-based VE, duplicate names, no ids ---


def test_template_items(template):
    assert len(template.items) == 129
    assert all(item.id is None for item in template.items)


def test_template_prefers_map_ve(template):
    assert template.ve_load == "map"
    ve = template.ve_front
    assert ve.dims == ("rpm", "map")
    # 27 rows as written, the last 6 repeating 8 (x1000 rpm).
    assert ve.shape == (21, 17)
    np.testing.assert_allclose(ve.rpm[[0, -1]], [750.0, 8000.0], rtol=1e-9)
    np.testing.assert_allclose(ve.map[[0, -1]], [10.3, 104.4], rtol=1e-12)
    assert ve.attrs["source_name"] == "VE (MAP based/Front Cyl)"
    assert template.ve_rear.attrs["source_name"] == "VE (MAP based/Rear Cyl)"


def test_template_tps_ve_still_available(template):
    tps = template.table("VE (TPS based/Front Cyl)")
    assert tps.dims == ("rpm", "tps")
    assert tps.shape == (21, 13)


def test_template_scalars(template):
    assert template.displacement_cid == pytest.approx(110.0, abs=1e-12)
    assert template.injector_size_lb_h == pytest.approx(34.52, abs=1e-12)
    assert template.calibration_id == "16D110002401"


def test_template_duplicate_names(template):
    indices = template.find("MAP Tooth IVC (Front Cyl)")
    assert len(indices) == 2
    assert template.item("MAP Tooth IVC (Front Cyl)", 1).index == indices[1]
    assert template.scalar("MAP Tooth IVC (Front Cyl)", 1) == 29.0
    with pytest.raises(KeyError, match="occurrence 2 does not exist"):
        template.item("MAP Tooth IVC (Front Cyl)", 2)


def test_template_axis_with_fahrenheit_rows(template):
    table = template.table("Spark Adjust By Head Temp")
    assert table.dims == ("temperature", "map")
    # -40 °F is -40 °C.
    assert float(table.temperature[0]) == pytest.approx(-40.0, abs=1e-9)


# -- writing ------------------------------------------------------------


@pytest.mark.parametrize("name", ["base", "template"])
def test_round_trip_byte_identical(name, request, tmp_path):
    tune = request.getfixturevalue(name)
    source = tune.path.read_bytes()
    out = write_pvv(tune, tmp_path / "out.pvv")
    assert (tmp_path / "out.pvv").read_bytes() == source
    assert out.data == source


@pytest.mark.parametrize("name", ["base", "template"])
def test_same_ve_written_back_identical(name, request, tmp_path):
    tune = request.getfixturevalue(name)
    write_pvv(tune, tmp_path / "out.pvv", tune.ve_front, tune.ve_rear)
    assert (tmp_path / "out.pvv").read_bytes() == tune.path.read_bytes()


@pytest.mark.parametrize("name", ["base", "template"])
def test_one_cell_change_one_line(name, request, tmp_path):
    tune = request.getfixturevalue(name)
    ve = tune.ve_front.copy()
    ve[3, 2] = 104.25
    write_pvv(tune, tmp_path / "out.pvv", ve_front=ve)
    after = (tmp_path / "out.pvv").read_bytes()
    changed = _changed_lines(tune.data, after)
    assert len(changed) == 1
    assert changed[0][1].strip() == b'<Cell value="104.25" />'
    # Reading the result back gives the new value there and the old
    # values everywhere else, on the same axes.
    again = read_pvv(tmp_path / "out.pvv")
    expected = tune.ve_front.values.copy()
    expected[3, 2] = 104.25
    np.testing.assert_array_equal(again.ve_front.values, expected)
    np.testing.assert_array_equal(again.ve_rear.values, tune.ve_rear.values)


def test_change_lands_in_right_item(base, tmp_path):
    ve = base.ve_rear.copy()
    ve.loc[{"rpm": 3000, "tps": 40}] = 99.125
    written = write_pvv(base, tmp_path / "out.pvv", ve_rear=ve)
    assert float(written.ve_rear.sel(rpm=3000, tps=40)) == 99.125
    np.testing.assert_array_equal(written.ve_front, base.ve_front)


def test_values_rounded_like_file(base, tmp_path):
    ve = base.ve_front.copy()
    ve[0, 0] = 86.0000001  # formats as "86": unchanged text
    ve[0, 1] = 90.123456  # 3 decimals at most
    ve[0, 2] = 91.5  # no trailing zeros
    written = base.with_tables(ve_front=ve)
    changed = [
        line.strip() for _, line in _changed_lines(base.data, written.data)
    ]
    assert changed == [b'<Cell value="90.123" />', b'<Cell value="91.5" />']


def test_padding_kept_by_default(base, tmp_path):
    ve = base.ve_front.copy()
    ve.loc[{"rpm": 6500, "tps": 0}] = 110.0
    written = base.with_tables(ve_front=ve)
    assert len(_changed_lines(base.data, written.data)) == 1
    padding = written.item("VE (TPS based/Front Cyl)").values[19:, 0]
    np.testing.assert_array_equal(padding, 108.5)


def test_padding_copy_follows_last_row(base, tmp_path):
    ve = base.ve_front.copy()
    ve.loc[{"rpm": 6500, "tps": 0}] = 110.0
    written = base.with_tables(ve_front=ve, padding="copy")
    # The real cell plus its 8 padding rows.
    assert len(_changed_lines(base.data, written.data)) == 9
    cells = written.item("VE (TPS based/Front Cyl)").values
    np.testing.assert_array_equal(cells[18:, 0], 110.0)
    # Cells whose source did not change keep their own padding values.
    np.testing.assert_array_equal(cells[19:, 1], 108.5)


def test_padding_copy_follows_last_column(base):
    ve = base.ve_front.copy()
    ve.loc[{"rpm": 500, "tps": 100}] = 93.0
    written = base.with_tables(ve_front=ve, padding="copy")
    cells = written.item("VE (TPS based/Front Cyl)").values
    np.testing.assert_array_equal(cells[0, 12:], 93.0)
    assert len(_changed_lines(base.data, written.data)) == 5


def test_write_over_source_atomically(base_path, tmp_path):
    path = tmp_path / "tune.pvv"
    path.write_bytes(base_path.read_bytes())
    tune = read_pvv(path)
    ve = tune.ve_front + 1.0
    write_pvv(tune, path, ve_front=ve)
    np.testing.assert_array_equal(read_pvv(path).ve_front, ve)
    assert sorted(os.listdir(tmp_path)) == ["tune.pvv"]


def test_source_not_modified(base, base_path, tmp_path):
    before = base_path.read_bytes()
    write_pvv(base, tmp_path / "out.pvv", ve_front=base.ve_front + 2.0)
    assert base_path.read_bytes() == before


def test_wrong_axes_rejected(base, template):
    with pytest.raises(ValueError, match="expected .*'rpm', 'tps'"):
        base.with_tables(ve_front=template.ve_front)
    shifted = base.ve_front.assign_coords(rpm=base.ve_front.rpm + 10.0)
    with pytest.raises(ValueError, match="rpm coordinates"):
        base.with_tables(ve_front=shifted)


def test_wrong_shape_rejected(base):
    with pytest.raises(ValueError, match=r"expected \(19, 13\)"):
        base.with_tables(ve_front=np.ones((27, 17)))


def test_plain_array_accepted(base):
    values = base.ve_front.values.copy()
    values[1, 1] = 95.0
    written = base.with_tables(ve_front=values)
    assert float(written.ve_front[1, 1]) == 95.0


def test_nan_rejected(base):
    ve = base.ve_front.copy()
    ve[2, 3] = np.nan
    with pytest.raises(ValueError, match="1 NaN or infinite cells"):
        base.with_tables(ve_front=ve)


def test_bad_padding_mode_rejected(base):
    with pytest.raises(ValueError, match="expected 'keep' or 'copy'"):
        base.with_tables(ve_front=base.ve_front, padding="fill")


def test_rpm_cells_written_in_thousands(base):
    limit = base.table("RPM Limit") + 100.0
    written = base.with_table("RPM Limit", limit)
    changed = _changed_lines(base.data, written.data)
    assert len(changed) == 9
    assert changed[0][1].strip() == b'<Cell value="6.3" />'


def test_read_tune_dispatch(base_path, tmp_path):
    assert isinstance(read_tune(base_path), PvvTune)
    other = tmp_path / "tune.bin"
    other.write_text("not a tune at all\n")
    with pytest.raises(FileFormatError, match=r"tune\.bin.*supported"):
        read_tune(other)
    empty_msq = tmp_path / "tune.msq"
    empty_msq.write_text("<msq></msq>")
    with pytest.raises(FileFormatError, match=r"tune\.msq.*veTable"):
        read_tune(empty_msq)


@pytest.mark.realdata
def test_bundled_copies_match(bundled, realdata, template_path):
    shared = realdata / "harley" / "base.pvv"
    assert (bundled / "base.pvv").read_bytes() == shared.read_bytes()
    template = realdata / "powervision" / "pvv_template.pvv"
    assert template_path.read_bytes() == template.read_bytes()


# -- helpers -----------------------------------------------------------


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        (["1", "2", "3"], 3),
        (["1", "2", "2", "2"], 2),
        (["6.5", "6.50"], 1),
        (["0"], 1),
        (["2", "2", "3"], 3),
    ],
)
def test_count_breakpoints_cases(labels, expected):
    assert count_breakpoints(labels) == expected


@pytest.mark.parametrize(
    ("value", "decimals", "text"),
    [
        (104.25, 3, "104.25"),
        (98.0, 3, "98"),
        (-0.0001, 3, "0"),
        (0.12345, 5, "0.12345"),
        (100.0005, 3, "100.001"),
        (-3.5, 3, "-3.5"),
    ],
)
def test_format_value_cases(value, decimals, text):
    assert format_value(value, decimals) == text


# -- malformed files ------------------------------------------------------

GOOD_ITEM = """  <Item name="T" units="%">
    <Columns units="Kilopascals">
      <Col label="20" />
      <Col label="40" />
    </Columns>
    <Rows units="RPMx1000">
      <Row label="1">
        <Cell value="{a}" />
        <Cell value="2" />
      </Row>
      <Row label="2">
        <Cell value="3" />
        {last}
      </Row>
    </Rows>
  </Item>
"""


def _tune_text(a="1", last='<Cell value="4" />', root="PVV"):
    return f"<{root}>\n" + GOOD_ITEM.format(a=a, last=last) + f"</{root}>"


def test_small_tune_reads(tmp_path):
    path = tmp_path / "small.pvv"
    path.write_text(_tune_text())
    table = read_pvv(path).table("T")
    assert table.dims == ("rpm", "map")
    np.testing.assert_array_equal(table.values, [[1.0, 2.0], [3.0, 4.0]])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not xml at all", r"bad\.pvv is not valid XML"),
        (_tune_text()[:-3], r"bad\.pvv is not valid XML"),
        (_tune_text(root="Tune"), r"bad\.pvv has root element <Tune>"),
        (
            _tune_text(last=""),
            r"bad\.pvv, item 0 'T', row '2' has 1 cells; expected 2",
        ),
        (
            _tune_text(a="On"),
            r"bad\.pvv, item 0 'T', row '1' has cell value 'On'",
        ),
        (_tune_text(a=""), r"bad\.pvv, item 0 'T', row '1' has cell value ''"),
        (
            "<PVV><Item name='X'><Columns /></Item></PVV>",
            r"bad\.pvv, item 0 'X' has no <Columns> or no <Rows>",
        ),
        (
            '<!DOCTYPE PVV [<!ENTITY x "1">]><PVV>&x;</PVV>',
            r"bad\.pvv uses a forbidden XML feature",
        ),
    ],
)
def test_malformed_tunes_raise(tmp_path, text, message):
    path = tmp_path / "bad.pvv"
    path.write_text(text)
    with pytest.raises(TuneFormatError, match=message):
        read_pvv(path)


def test_missing_tune_raises(tmp_path):
    with pytest.raises(FileFormatError, match=r"nothing\.pvv"):
        read_pvv(tmp_path / "nothing.pvv")


def test_tune_errors_are_file_format_errors():
    assert issubclass(TuneFormatError, FileFormatError)


# -- malformed copies of base.pvv, built here

FRONT = "VE (TPS based/Front Cyl)"


def _item_block(text: str, name: str) -> tuple[int, int]:
    """Return the start and end offsets of the first item named ``name``."""
    start = text.index(f'<Item name="{name}"')
    end = text.index("</Item>", start) + len("</Item>")
    return start, end


def _edit_item(text: str, name: str, change) -> str:
    start, end = _item_block(text, name)
    return text[:start] + change(text[start:end]) + text[end:]


def _save_tune(tmp_path, text, name="edited.pvv"):
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8"))
    return path


@pytest.mark.parametrize("cell", ["6_5", "1_0", "nan", "inf", "0x40"])
def test_cell_underscore_rejected(base_path, tmp_path, cell):
    text = _edit_item(
        base_path.read_text(),
        FRONT,
        lambda block: block.replace(
            '<Cell value="86"', f'<Cell value="{cell}"', 1
        ),
    )
    with pytest.raises(
        TuneFormatError,
        match=rf"edited\.pvv, item 33 '{re.escape(FRONT)}', row '0\.5' has "
        rf"cell value '{cell}'; expected a decimal number",
    ):
        read_pvv(_save_tune(tmp_path, text))


def test_transposed_array_rejected(base, tmp_path):
    values = base.ve_front.values.copy()
    values[0, :] = 11.0
    with pytest.raises(ValueError, match=r"shape \(13, 19\) \(the transpose"):
        write_pvv(base, tmp_path / "out.pvv", ve_front=values.T)
    with pytest.raises(
        ValueError, match=r"shape \(247,\); expected \(19, 13\)"
    ):
        write_pvv(base, tmp_path / "out.pvv", ve_front=values.ravel())
    with pytest.raises(ValueError, match=r"dims \('tps', 'rpm'\)"):
        write_tune(base, tmp_path / "out.pvv", ve_front=base.ve_front.T)
    without_coords = xr.DataArray(values, dims=("rpm", "tps"))
    with pytest.raises(ValueError, match="rpm coordinates None"):
        write_tune(base, tmp_path / "out.pvv", ve_front=without_coords)
    assert not (tmp_path / "out.pvv").exists()


def _with_bad_first_copy(base_path) -> str:
    """Return base.pvv with a 150 % copy of the front VE placed first."""
    text = base_path.read_text()
    start, end = _item_block(text, FRONT)
    bad = re.sub(r'<Cell value="[^"]*"', '<Cell value="150"', text[start:end])
    return text[:start] + bad + "\n  " + text[start:]


def test_duplicate_ve_items_warned(base_path, base, tmp_path, caplog):
    path = _save_tune(tmp_path, _with_bad_first_copy(base_path))
    tune = read_pvv(path)
    with caplog.at_level(logging.WARNING, logger="dynoai_lab.io.pvv"):
        ve = tune.ve_front
    assert float(ve.max()) == 150.0
    assert (
        f"2 items are named '{FRONT}' (items 33, 34) and differ; using "
        "item 33 (occurrence 0); pass ve_occurrence=N" in caplog.text
    )


def test_duplicate_ve_item_chosen(base_path, base, tmp_path):
    path = _save_tune(tmp_path, _with_bad_first_copy(base_path))
    tune = read_pvv(path, ve_occurrence=1)
    np.testing.assert_array_equal(tune.ve_front, base.ve_front)
    # The writer edits the chosen copy and leaves the other alone.
    ve = tune.ve_front.copy()
    ve[3, 2] = 104.25
    write_pvv(tune, tmp_path / "out.pvv", ve_front=ve)
    first = read_pvv(tmp_path / "out.pvv")
    second = read_pvv(tmp_path / "out.pvv", ve_occurrence=1)
    assert float(second.ve_front[3, 2]) == 104.25
    assert float(first.table(FRONT).max()) == 150.0
    assert float(first.table(FRONT).min()) == 150.0


def test_fifo_and_device_rejected(tmp_path):
    fifo = tmp_path / "tune.pvv"
    os.mkfifo(fifo)
    # The alarm turns a blocking open into a failure instead of a hang.
    signal.alarm(10)
    try:
        for reader in (read_pvv, read_tune):
            with pytest.raises(TuneFormatError, match=r"tune\.pvv is a FIFO"):
                reader(fifo)
        with pytest.raises(TuneFormatError, match="is a character device"):
            read_pvv("/dev/zero")
        with pytest.raises(TuneFormatError, match="is a directory"):
            read_tune(tmp_path)
    finally:
        signal.alarm(0)


def test_empty_rows_raise_at_read(base_path, tmp_path):
    text = _edit_item(
        base_path.read_text(),
        FRONT,
        lambda block: re.sub(
            r"(<Rows[^>]*>).*?(</Rows>)", r"\1\2", block, flags=re.S
        ),
    )
    with pytest.raises(
        TuneFormatError,
        match=rf"edited\.pvv, item 33 '{re.escape(FRONT)}' has an empty "
        "<Rows>",
    ):
        read_pvv(_save_tune(tmp_path, text))


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            '<Col label="5" />\n      <Col label="7.3" />',
            '<Col label="7.3" />\n      <Col label="5" />',
            r"the tps axis is not strictly increasing: 5 follows 7\.3",
        ),
        (
            '<Row label="1.5">',
            '<Row label="1.25">',
            r"the rpm axis is not strictly increasing: 1250 follows 1250",
        ),
        (
            '<Rows units="RPMx1000">',
            '<Rows units="RPM">',
            r"rpm breakpoints end at 6\.5 rpm \(axis units 'RPM'\)",
        ),
        (
            '<Columns units="%">',
            '<Columns units="Percent">',
            r"table has dims \('rpm', 'column'\).*'Percent'.*columns on tps",
        ),
    ],
)
def test_bad_ve_axis_names_tune_and_item(
    base_path, tmp_path, old, new, message
):
    text = _edit_item(
        base_path.read_text(), FRONT, lambda block: block.replace(old, new)
    )
    tune = read_pvv(_save_tune(tmp_path, text))
    with pytest.raises(
        TuneFormatError,
        match=rf"edited\.pvv, item 33 '{re.escape(FRONT)}': {message}",
    ):
        _ = tune.ve_front


def test_plain_rpm_axis_accepted(base_path, base, tmp_path):
    def to_rpm(block):
        block = block.replace('<Rows units="RPMx1000">', '<Rows units="RPM">')
        return re.sub(
            r'<Row label="([^"]*)"',
            lambda m: f'<Row label="{float(m[1]) * 1000:g}"',
            block,
        )

    tune = read_pvv(
        _save_tune(tmp_path, _edit_item(base_path.read_text(), FRONT, to_rpm))
    )
    np.testing.assert_allclose(
        tune.ve_front.rpm, base.ve_front.rpm, rtol=1e-12
    )
    np.testing.assert_array_equal(tune.ve_front, base.ve_front)


def test_entity_cell_message_names_cell(base_path, tmp_path):
    text = _edit_item(
        base_path.read_text(),
        FRONT,
        lambda block: block.replace(
            '<Cell value="86"', '<Cell value="&#56;6"', 1
        ),
    )
    with pytest.raises(
        TuneFormatError,
        match=rf"edited\.pvv: item 33 '{re.escape(FRONT)}', row '0\.5', "
        r"column '0' has value '86', but the raw text on line \d+ is "
        r"'&#56;6'",
    ):
        read_pvv(_save_tune(tmp_path, text))


def test_extra_cell_outside_items_message(base_path, tmp_path):
    text = base_path.read_text().replace(
        "</PVV>", '<Extra><Cell value="1" /></Extra></PVV>'
    )
    with pytest.raises(
        TuneFormatError,
        match=r"2288 raw <Cell value=\.\.\.> texts but 2287 cells inside "
        r"items; the first difference is at a cell after the last item",
    ):
        read_pvv(_save_tune(tmp_path, text))


def test_old_value_attribute_ignored(base_path, base, tmp_path):
    text = _edit_item(
        base_path.read_text(),
        FRONT,
        lambda block: block.replace(
            '<Cell value="86"', '<Cell old-value="9" value="86"', 1
        ),
    )
    tune = read_pvv(_save_tune(tmp_path, text))
    np.testing.assert_array_equal(tune.ve_front, base.ve_front)
    ve = tune.ve_front.copy()
    ve[0, 0] = 87.0
    written = tune.with_tables(ve_front=ve)
    assert b'<Cell old-value="9" value="87"' in written.data


@pytest.mark.parametrize(
    ("encoding", "bom"),
    [
        ("utf-16-le", b"\xff\xfe"),
        ("utf-16-be", b"\xfe\xff"),
        ("utf-16-le", b""),
    ],
)
def test_utf16_round_trip(base_path, base, tmp_path, encoding, bom):
    raw = bom + base_path.read_text().encode(encoding)
    path = tmp_path / "utf16.pvv"
    path.write_bytes(raw)
    tune = read_tune(path)
    np.testing.assert_array_equal(tune.ve_front, base.ve_front)
    write_pvv(tune, tmp_path / "same.pvv")
    assert (tmp_path / "same.pvv").read_bytes() == raw
    ve = tune.ve_front.copy()
    ve[3, 2] = 104.25
    write_pvv(tune, tmp_path / "edited.pvv", ve_front=ve)
    edited = (tmp_path / "edited.pvv").read_bytes()
    assert edited.startswith(bom + "<PVV".encode(encoding))
    again = read_pvv(tmp_path / "edited.pvv")
    assert float(again.ve_front[3, 2]) == 104.25
    assert int((again.ve_front != base.ve_front).sum()) == 1


def test_utf16_error_names_encoding(base_path, tmp_path):
    text = base_path.read_text().replace(
        '<Cell value="86"', '<Cell value="&#56;6"', 1
    )
    path = tmp_path / "utf16.pvv"
    path.write_bytes(text.encode("utf-16"))
    with pytest.raises(
        TuneFormatError, match=r"utf16\.pvv \(read as UTF-16-LE\): item 33"
    ):
        read_pvv(path)


@pytest.mark.parametrize(
    "prolog",
    [
        '<?xml version="1.0" encoding="utf-8"?>\n',
        '<?xml version="1.0"?>\n<!-- exported -->\n<!DOCTYPE PVV>\n',
    ],
)
def test_xml_declaration_and_suffix(base_path, base, tmp_path, prolog):
    path = tmp_path / "tune.xml"
    path.write_text(prolog + base_path.read_text())
    tune = read_tune(path)
    assert isinstance(tune, PvvTune)
    np.testing.assert_array_equal(tune.ve_front, base.ve_front)


def test_write_into_missing_folder_names_it(base, tmp_path):
    target = tmp_path / "nope" / "out.pvv"
    with pytest.raises(
        FileNotFoundError, match=r"folder .*nope does not exist"
    ):
        base.write(target)
    assert not (tmp_path / "nope").exists()


def test_write_through_symlink(base_path, tmp_path):
    real = tmp_path / "real.pvv"
    real.write_bytes(base_path.read_bytes())
    link = tmp_path / "link.pvv"
    link.symlink_to(real)
    tune = read_pvv(link)
    write_pvv(tune, link, ve_front=tune.ve_front + 1.0)
    assert link.is_symlink()
    np.testing.assert_array_equal(read_pvv(real).ve_front, tune.ve_front + 1.0)
    assert sorted(os.listdir(tmp_path)) == ["link.pvv", "real.pvv"]


def test_readonly_target_needs_flag(base_path, tmp_path):
    path = tmp_path / "tune.pvv"
    path.write_bytes(base_path.read_bytes())
    path.chmod(0o444)
    tune = read_pvv(path)
    with pytest.raises(PermissionError, match=r"tune\.pvv: the file is read"):
        write_pvv(tune, path, ve_front=tune.ve_front + 1.0)
    assert path.read_bytes() == base_path.read_bytes()
    write_pvv(
        tune, path, ve_front=tune.ve_front + 1.0, overwrite_readonly=True
    )
    np.testing.assert_array_equal(read_pvv(path).ve_front, tune.ve_front + 1.0)
    assert path.stat().st_mode & 0o777 == 0o444
