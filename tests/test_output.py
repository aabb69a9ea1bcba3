"""Result writers: staging, stale files, input clashes, JSON."""

import json

import pytest

from dynoai_lab.output import (
    OutputClashError,
    result_folder,
    write_json,
)


def test_json_nonfinite_becomes_null(tmp_path):
    path = write_json(
        {"a": float("inf"), "b": [float("nan"), 1.5]}, tmp_path / "s.json"
    )
    text = path.read_text()
    assert "Infinity" not in text
    assert json.loads(text) == {"a": None, "b": [None, 1.5]}


def test_failed_run_leaves_folder_untouched(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "summary.json").write_text('{"files": ["summary.json"]}')
    with pytest.raises(RuntimeError, match="disk full"):
        with result_folder(out) as target:
            target("power.nc").write_text("half")
            raise RuntimeError("disk full")
    assert sorted(p.name for p in out.iterdir()) == ["summary.json"]
    assert (out / "summary.json").read_text() == '{"files": ["summary.json"]}'


def test_stale_results_removed(tmp_path):
    out = tmp_path / "out"
    with result_folder(out) as target:
        target("corrections.nc").write_text("old")
        write_json(
            {"files": ["corrections.nc", "summary.json"]},
            target("summary.json"),
        )
    (out / "notes.txt").write_text("the user's own file")
    with result_folder(out) as target:
        write_json({"files": ["summary.json"]}, target("summary.json"))
    names = sorted(p.name for p in out.iterdir())
    # The earlier run's result is gone; the user's own file is kept.
    assert names == ["notes.txt", "summary.json"]


def test_result_may_not_overwrite_input(tmp_path):
    source = tmp_path / "summary.json"
    source.write_text("the log")
    with pytest.raises(OutputClashError, match="overwrite an input"):
        with result_folder(tmp_path, inputs=[source]) as target:
            target("summary.json")
    assert source.read_text() == "the log"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
