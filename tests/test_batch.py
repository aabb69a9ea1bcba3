"""Batches on Dask: items, run ids, the run store and the catalog."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from test_analysis_realdata import LOGS as REAL_LOGS

from dynoai_lab import batch
from dynoai_lab.batch.work import execute_item
from dynoai_lab.catalog import COLUMNS, read_catalog, write_catalog
from dynoai_lab.cli import main


@pytest.fixture(scope="module")
def simulated_logs(tmp_path_factory):
    """Write ten simulated WOT pulls as NetCDF logs."""
    folder = tmp_path_factory.mktemp("simulated")
    return batch.write_simulated_logs(folder, 10)


@pytest.fixture
def broken_log(tmp_path):
    """Write a text file that no log reader accepts."""
    path = tmp_path / "broken" / "not_a_log.csv"
    path.parent.mkdir()
    path.write_text("this is,not a\ndyno,log\n")
    return path


def test_grid_expands_to_the_cartesian_product(tmp_path):
    grid = tmp_path / "grid.yaml"
    grid.write_text(
        "engine: [m8-114, tc-103]\n"
        "seed: {count: 3}\n"
        "ve_error_pct: [[8, 15], -10]\n"
        "delay_scale: [1, 2]\n"
    )
    items = batch.study_items(batch.read_grid(grid))

    assert len(items) == 2 * 3 * 2 * 2
    assert len({item.run_id("") for item in items}) == len(items)
    first = items[0].parameters
    assert first["ve_error_pct"] == [8.0, 15.0]
    assert first["plan"] == "part-throttle"


def test_grid_reads_json_too(tmp_path):
    grid = tmp_path / "grid.json"
    grid.write_text(json.dumps({"seed": [4, 5], "iterations": 2}))
    items = batch.study_items(batch.read_grid(grid))
    assert [item.parameters["seed"] for item in items] == [4, 5]


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("engines: [m8-114]", "unknown study grid keys"),
        ("plan: [sideways]", "plan 'sideways' is unknown"),
        ("engine: [v12]", "v12"),
        ("seed: {count: 0}", "count: n"),
        ("ve_error_pct: [[15, 8]]", "amplitude range"),
        ("delay_scale: [0]", "out of range"),
        ("delay_compensation: [sometimes]", "delay_compensation"),
        ("- 1\n- 2", "must be a mapping"),
    ],
)
def test_bad_grid_names_file_and_problem(tmp_path, text, match):
    grid = tmp_path / "grid.yaml"
    grid.write_text(text)
    with pytest.raises(ValueError, match=match) as info:
        batch.read_grid(grid)
    assert str(grid) in str(info.value)


def test_run_id_follows_content_parameters_and_template(tmp_path, bundled):
    copy = tmp_path / "copy.txt"
    copy.write_bytes((bundled / "5TH GEAR.txt").read_bytes())
    original, moved = batch.log_items([bundled / "5TH GEAR.txt", copy])
    tuned = batch.log_items([copy], tune=bundled / "base.pvv")[0]

    # Same content at another path is the same run.
    assert original.run_id("") == moved.run_id("")
    assert tuned.run_id("") != moved.run_id("")
    assert moved.run_id("") != moved.run_id("report_batch_log")

    copy.write_bytes(copy.read_bytes() + b"\n")
    changed = batch.log_items([copy])[0]
    assert changed.run_id("") != moved.run_id("")


def test_missing_logs_are_reported(tmp_path):
    with pytest.raises(FileNotFoundError, match="no log file matches"):
        batch.log_items([str(tmp_path / "*.csv")])


def test_catalog_is_typed_parquet_written_atomically(tmp_path):
    rows = [
        {"run_id": "b", "kind": "log", "name": "x", "status": "failed"},
        {"run_id": "a", "kind": "log", "name": "x", "status": "succeeded"},
    ]
    path = write_catalog(rows, tmp_path)

    frame = pd.read_parquet(path)
    assert list(frame.columns) == list(COLUMNS)
    assert list(frame["run_id"]) == ["a", "b"]
    assert [p.name for p in tmp_path.iterdir()] == ["catalog.parquet"]
    assert read_catalog(tmp_path)["peak_power_hp"].isna().all()


def test_store_adds_unrecorded_runs_and_removes_staging(
    tmp_path, simulated_logs
):
    """A run renamed into place just before an interrupt is recorded."""
    store = tmp_path / "store"
    item = batch.log_items(simulated_logs[:1])[0]
    row = execute_item(item, store, "")
    leftover = store / ".staging" / "half-run.1234"
    leftover.mkdir(parents=True)
    (leftover / "power.nc").write_bytes(b"partial")

    with batch.RunStore(store) as run_store:
        assert run_store.is_done(row["run_id"])
        assert not leftover.exists()
    catalog = read_catalog(store)
    assert list(catalog["run_id"]) == [row["run_id"]]
    assert catalog["status"].iloc[0] == "succeeded"


def test_store_drops_rows_whose_folder_is_gone(tmp_path, simulated_logs):
    store = tmp_path / "store"
    item = batch.log_items(simulated_logs[:1])[0]
    row = execute_item(item, store, "")
    write_catalog([row], store)
    for path in (store / row["run_dir"]).iterdir():
        path.unlink()
    (store / row["run_dir"]).rmdir()

    with batch.RunStore(store) as run_store:
        assert not run_store.is_done(row["run_id"])
    assert read_catalog(store).empty


def test_second_batch_on_a_locked_store_is_rejected(tmp_path):
    with batch.RunStore(tmp_path):
        with pytest.raises(batch.StoreLockedError, match="in use"):
            with batch.RunStore(tmp_path):
                pass


def test_failed_item_leaves_no_folder(tmp_path, broken_log):
    store = tmp_path / "store"
    item = batch.log_items([broken_log])[0]
    row = execute_item(item, store, "")

    assert row["status"] == "failed"
    assert row["error"].startswith("LogFormatError: ")
    assert str(broken_log) in row["error"]
    assert not (store / "runs").exists()
    assert list((store / ".staging").iterdir()) == []


@pytest.mark.realdata
@pytest.mark.slow
def test_twenty_logs_real_simulated_and_broken(
    realdata, simulated_logs, broken_log, tmp_path, capsys
):
    # The real pull and ECU logs that test_analysis_realdata analyses.
    real = [realdata / name for name, _ in REAL_LOGS]
    logs = [*real, *simulated_logs, broken_log]
    assert len(logs) == 20
    store = tmp_path / "store"
    argv = ["batch", *map(str, logs), "--store", str(store)]
    argv += ["--reports", "none", "--workers", "2", "--no-progress"]

    assert main(argv) == 1
    catalog = read_catalog(store)
    assert len(catalog) == 20
    assert catalog["run_id"].is_unique
    failed = catalog[catalog["status"] == "failed"]
    assert list(failed["input_path"]) == [str(broken_log.resolve())]
    assert "is not a log format" in failed["error"].iloc[0]
    assert (catalog["status"] == "succeeded").sum() == 19
    folders = sorted(p.name for p in (store / "runs").iterdir())
    assert len(folders) == 19
    harley = catalog[catalog["name"] == "harley-5TH-GEAR"]
    assert harley["peak_power_hp"].iloc[0] == pytest.approx(93.9, abs=0.5)
    assert "1 failed" in capsys.readouterr().out

    # Unchanged inputs: nothing runs and the catalog keeps its bytes.
    before = (store / "catalog.parquet").read_bytes()
    assert main(argv) == 1
    assert "0 succeeded, 0 failed, 20 skipped" in capsys.readouterr().out
    assert (store / "catalog.parquet").read_bytes() == before

    # --retry-failed runs the broken log again, and only it.
    assert main([*argv, "--retry-failed"]) == 1
    assert "0 succeeded, 1 failed, 19 skipped" in capsys.readouterr().out
    assert len(read_catalog(store)) == 20


@pytest.mark.slow
def test_reports_are_executed_notebooks_and_html(
    tmp_path, bundled, broken_log
):
    store = tmp_path / "store"
    items = batch.log_items(
        [bundled / "5TH GEAR.txt", broken_log], tune=bundled / "base.pvv"
    )
    result = batch.run_batch(
        items, store, workers=2, reports="all", progress=False
    )

    assert (result.succeeded, result.failed) == (1, 1)
    row = result.catalog[result.catalog["status"] == "succeeded"].iloc[0]
    assert row["template"] == "report_batch_log"
    folder = store / row["run_dir"]
    names = {p.name for p in folder.iterdir()}
    assert {"report.ipynb", "report.html", "summary.json"} <= names
    assert {"power.nc", "corrections.nc", "run.json"} <= names
    assert "plotly" in (folder / "report.html").read_text()
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["peak_power_hp"] == pytest.approx(row["peak_power_hp"])
    failed = result.catalog[result.catalog["status"] == "failed"].iloc[0]
    # papermill reports the notebook cell's exception by name.
    assert failed["error"].startswith("LogFormatError: ")


def test_cli_needs_logs_or_a_grid(tmp_path, capsys):
    assert main(["batch", "--store", str(tmp_path / "store")]) == 2
    assert "either log files" in capsys.readouterr().err


def test_cli_reports_a_bad_grid_with_its_file(tmp_path, capsys):
    grid = tmp_path / "grid.yaml"
    grid.write_text("plan: [sideways]\n")
    argv = ["batch", "--grid", str(grid), "--store", str(tmp_path / "s")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert str(grid) in err
    assert "plan 'sideways' is unknown" in err
    assert not (tmp_path / "s").exists()


def test_cli_reports_a_pattern_without_matches(tmp_path, capsys):
    argv = ["batch", str(tmp_path / "*.csv"), "--store", str(tmp_path / "s")]
    assert main(argv) == 2
    assert "no log file matches" in capsys.readouterr().err
