"""Workbench handlers on real simulated pulls, real files and real tunes.

The handlers are the methods the panel's buttons call, so these tests
drive the panel as a tuner would, without a browser.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from conftest import REALDATA

from dynoai_lab import cells
from dynoai_lab.history import table_digest
from dynoai_lab.io import read_tune
from dynoai_lab.workbench import Workbench

MSQ = REALDATA / "speeduino" / "CurrentTune.msq"


@pytest.fixture(scope="module")
def analyzed(tmp_path_factory):
    """Return a workbench after one WOT pull and its analysis."""
    bench = Workbench(seed=3, workdir=tmp_path_factory.mktemp("bench"))
    bench.trigger_pull()
    bench.analyze_pull()
    assert bench.last_error is None, bench.last_error
    return bench


def test_trigger_pull_plots_power(analyzed):
    power = analyzed.power_figure
    assert [trace.name for trace in power.data] == [
        "power [hp]",
        "torque [lbf·ft]",
    ]
    assert "SAE J1349" in power.layout.title.text
    assert analyzed.timings["trigger_pull_s"] > 0
    assert len(analyzed.lambda_figure.data) >= 3


def test_analyze_pull_heatmap_on_tune_axes(analyzed):
    heatmap = analyzed.heatmap_figure.data[0]
    table = analyzed.tables["front"]
    assert heatmap.type == "heatmap"
    assert np.shape(heatmap.z) == table.shape
    assert list(heatmap.y) == [f"{v:g}" for v in table["rpm"].values]
    covered = np.argwhere(
        analyzed.analysis.corrections["hits"].sel(cylinder="front").values > 0
    )[0]
    hover = heatmap.text[covered[0]][covered[1]]
    for word in ("ratio", "hits", "confidence", "rejected", "VE"):
        assert word in hover
    assert "no samples kept" in heatmap.text[0][0]
    assert "VE correction computed" in analyzed.status.value


def test_heatmap_views_switch(analyzed):
    for view in ("ve_current", "ve_proposed", "difference", "confidence"):
        analyzed.view.value = view
        title = analyzed.heatmap_figure.layout.title.text
        assert title.endswith(cells_label(view))
    analyzed.view.value = "ratio"


def cells_label(view):
    from dynoai_lab.plotting import CELL_VIEWS

    return CELL_VIEWS[view]


def test_rejections_counted_per_cell(analyzed):
    counts = analyzed.rejected["front"]
    code = analyzed.analysis.samples["rejection_front"].values
    per_cylinder = analyzed.analysis.rejected["front"]
    in_cells = sum(per_cylinder[r] for r in cells.CELL_REASONS)
    assert counts.shape == analyzed.tables["front"].shape
    assert counts.sum() == in_cells
    assert counts.sum() <= int((code >= 0).sum())


def test_locked_cells_never_change(tmp_path):
    bench = Workbench(seed=1, workdir=tmp_path)
    bench.trigger_pull()
    bench.analyze_pull()
    corrections = bench.analysis.corrections
    changing = corrections["applied_ratio"].sel(cylinder="front").values != 1
    row, column = np.argwhere(changing)[0]
    table = bench.tables["front"]
    rpm = float(table["rpm"].values[row])
    load = float(table["map"].values[column])

    # Locked after the analysis ran: Apply must still keep the cell.
    assert bench.toggle_lock("front", rpm, load) == 1
    before = {cyl: t.copy(deep=True) for cyl, t in bench.tables.items()}
    bench.apply()
    assert bench.last_error is None, bench.last_error
    assert (
        bench.tables["front"].values[row, column]
        == (before["front"].values[row, column])
    )
    changed = bench.tables["front"].values != before["front"].values
    assert changed.sum() == changing.sum() - 1
    assert "1 locked cells" in bench.lock_table.value


def test_apply_twice_rejected(tmp_path):
    bench = Workbench(seed=1, workdir=tmp_path)
    bench.trigger_pull()
    bench.analyze_pull()
    bench.apply()
    bench.apply()
    assert "already applied" in bench.last_error
    assert bench.apply_button.disabled


def test_rollback_restores_tables_exactly(tmp_path):
    bench = Workbench(seed=2, workdir=tmp_path)
    digests = {c: table_digest(t) for c, t in bench.tables.items()}
    for _ in range(2):
        bench.trigger_pull()
        bench.analyze_pull()
        bench.apply()
    assert table_digest(bench.tables["front"]) != digests["front"]
    bench.rollback()
    bench.rollback()
    assert bench.last_error is None, bench.last_error
    assert {c: table_digest(t) for c, t in bench.tables.items()} == digests
    bench.rollback()
    assert bench.last_error == "Roll Back failed: nothing to roll back"


def test_lock_range_selects_cells(analyzed):
    table = analyzed.tables["rear"]
    mask = cells.lock_mask(table, (750, 1500), (10, 30))
    rpm = table["rpm"].values
    load = table["map"].values
    expected = ((rpm >= 750) & (rpm <= 1500))[:, None] & (
        (load >= 10) & (load <= 30)
    )[None, :]
    assert np.array_equal(mask, expected)
    with pytest.raises(ValueError, match="no cell lies"):
        cells.lock_mask(table, (9000, 9500), (10, 30))
    with pytest.raises(ValueError, match="reversed"):
        cells.lock_mask(table, (3000, 2000), (10, 30))


def test_stop_ends_session_after_pull(tmp_path):
    bench = Workbench(seed=4, iterations=6, workdir=tmp_path)
    bench.start_tuning()
    assert bench.busy
    assert not bench.stop_button.disabled

    # While the session runs, other work is rejected with a message.
    bench.trigger_pull()
    assert "tuning session is running" in bench.last_error
    bench.stop()
    session = bench.wait(60)
    assert not bench.busy
    assert session.stop_reason == "stopped by the user"
    # The session polls Stop before each pull, so at most the pull in
    # progress when Stop came finishes.
    assert len(session.records) <= 1
    assert bench.stop_button.disabled
    assert not bench.trigger_button.disabled
    assert "stopped by the user" in bench.status.value


def test_closed_loop_error_falls(tmp_path):
    bench = Workbench(seed=0, iterations=2, workdir=tmp_path)
    session = bench.start_tuning(background=False)
    errors = [r.mean_abs_lambda_error_pct for r in session.records]
    assert bench.progress.value == bench.progress.max == 2
    assert errors[1] < errors[0]
    assert "pull 2 of 2" in bench.progress_text.value
    assert len(bench.error_figure.data) == 2
    # The session's correction is the panel's: Roll Back undoes it.
    assert len(bench.history) == 2
    bench.rollback()
    initial = session.initial_ecu
    assert np.array_equal(bench.tables["front"], initial.ve_front)


def test_downloads_match_input_format(analyzed):
    analyzed.apply()
    files = analyzed.prepare_downloads()
    assert analyzed.last_error is None, analyzed.last_error
    tune = read_tune(files["m8-114_corrected.pvv"])
    np.testing.assert_allclose(
        tune.ve_front.values,
        analyzed.tables["front"].values,
        atol=0.005,  # .pvv stores VE with two decimals
    )
    frame = pd.read_csv(files["corrections.csv"])
    assert {"ratio [1]", "hits [1]", "rejected [1]"} <= set(frame.columns)
    with xr.open_dataset(files["corrections.nc"]) as ds:
        assert ds["ratio"].shape[0] == 2
    assert 'download="corrections.csv"' in analyzed.download_links.value
    analyzed.rollback()


def test_broken_log_gives_one_message(tmp_path):
    bench = Workbench(workdir=tmp_path)
    bench.upload_log("broken.csv", b"time,engine_speed\nabc,1\n")
    assert bench.last_error.startswith("Load log failed: ")
    assert "broken.csv" in bench.last_error
    assert "Traceback" not in bench.message.value
    assert bench.log is None


def _tunerstudio_log(path, columns, rows=200):
    """Write a TunerStudio CSV log: header, units row, one row per 20 ms."""
    names = ["Time", *columns]
    units = ["s", *(columns[name][0] for name in columns)]
    lines = [";".join(f'"{n}"' for n in names)]
    lines.append(";".join(f'"{u}"' for u in units))
    for i in range(rows):
        values = [f"{0.02 * i:.3f}"]
        # A wideband that never moves reads as not connected, so AFR
        # wobbles by 0.1.
        values += [
            f"{columns[name][1] + 0.1 * np.sin(i) * (name == 'AFR'):g}"
            for name in columns
        ]
        lines.append(";".join(values))
    path.write_text("\n".join(lines) + "\n")
    return path


def test_missing_channel_named(tmp_path):
    log = _tunerstudio_log(
        tmp_path / "no_map.csv",
        {"RPM": ("rpm", 3000), "TPS": ("%", 40), "AFR": ("O2", 13.5)},
    )
    bench = Workbench(workdir=tmp_path)
    bench.load_log(log)
    assert bench.last_error is None, bench.last_error
    bench.analyze_pull()
    assert bench.last_error.startswith("Analyze Pull failed: ")
    assert "manifold_pressure" in bench.last_error
    assert "Traceback" not in bench.message.value


def test_uncovered_table_is_reported(tmp_path):
    # 9500 rpm is above every rpm breakpoint of the m8-114 VE table.
    log = _tunerstudio_log(
        tmp_path / "high_rpm.csv",
        {
            "RPM": ("rpm", 9500),
            "MAP": ("kpa", 60),
            "TPS": ("%", 40),
            "AFR": ("O2", 13.5),
            "CLT": ("C", 90),
        },
    )
    bench = Workbench(workdir=tmp_path)
    bench.load_log(log)
    bench.analyze_pull()
    assert bench.last_error is None, bench.last_error
    assert "did not cover the VE table" in bench.message.value
    assert "the log spans 9500 to 9500 rpm" in bench.message.value
    assert bench.apply_button.disabled is False
    bench.apply()
    assert "0 cells changed" in bench.status.value


def test_tps_tune_refused_on_virtual_dyno(tmp_path, base_pvv_path):
    bench = Workbench(tune=str(base_pvv_path), workdir=tmp_path)
    assert bench.tables["front"].dims == ("rpm", "tps")
    bench.trigger_pull()
    assert "needs VE on MAP" in bench.last_error


def test_real_log_with_bundled_tune(tmp_path, base_pvv_path, fifth_gear_path):
    bench = Workbench(tune=str(base_pvv_path), workdir=tmp_path)
    bench.load_log(fifth_gear_path)
    bench.analyze_pull()
    assert bench.last_error is None, bench.last_error
    bench.apply()
    files = bench.prepare_downloads()
    assert "base_corrected.pvv" in files
    written = read_tune(files["base_corrected.pvv"])
    assert written.ve_front.dims == ("rpm", "tps")


def test_uploaded_msq_keeps_one_table(tmp_path):
    if not MSQ.is_file():
        pytest.skip(f"real tune not found at {MSQ}")
    bench = Workbench(workdir=tmp_path)
    bench.upload_tune("CurrentTune.msq", MSQ.read_bytes())
    assert bench.last_error is None, bench.last_error
    assert bench.tune_choice.label == "uploaded: CurrentTune.msq"
    bench.trigger_pull()
    bench.analyze_pull()
    bench.apply()
    assert np.array_equal(bench.tables["front"], bench.tables["rear"])
    files = bench.prepare_downloads()
    assert "CurrentTune_corrected.msq" in files
    bench.start_tuning(background=False)
    assert "one VE table for every cylinder" in bench.last_error


def test_upload_rejects_wrong_suffix(tmp_path):
    bench = Workbench(workdir=tmp_path)
    bench.upload_tune("tune.txt", b"not a tune")
    assert "not a tune file" in bench.last_error
