"""The inspect subcommand and the read benchmark, run in process."""

from __future__ import annotations

import json

import pytest

from dynoai_lab import cli
from dynoai_lab.benchmarks import read as read_bench


@pytest.mark.realdata
def test_inspect_log_text(realdata, capsys):
    status = cli.main(
        [
            "inspect",
            str(realdata / "ecu_logs" / "romraiderlog_20251031_170713.csv"),
        ]
    )
    out = capsys.readouterr().out
    assert status == 0
    assert "romraider-csv" in out
    assert "5.05 Hz" in out
    assert "afr_plx" in out


@pytest.mark.realdata
def test_inspect_log_json(realdata, capsys):
    path = realdata / "jetdrive" / "jetdrive_log_20251218_230024.csv"
    status = cli.main(["inspect", str(path), "--json", "--analysis", "ve"])
    record = json.loads(capsys.readouterr().out)
    assert status == 0
    assert record["format"] == "jetdrive-csv"
    assert record["rows"] == 71
    channels = {c["name"]: c for c in record["channels"]}
    assert channels["engine_speed"]["max"] == 2712.0
    assert channels["engine_speed"]["units"] == "rpm"
    assert record["findings"][0]["code"] == "missing_channel"


@pytest.mark.realdata
def test_inspect_tune(realdata, capsys):
    path = realdata / "speeduino" / "CurrentTune.msq"
    status = cli.main(["inspect", str(path), "--json"])
    record = json.loads(capsys.readouterr().out)
    assert status == 0
    assert record["kind"] == "tune"
    assert record["shared_ve"] is True
    assert record["tables"]["ve_front"]["shape"] == [16, 16]


def test_inspect_unreadable_file_exits_2(tmp_path, capsys):
    path = tmp_path / "broken.mlg"
    path.write_bytes(b"MLVLG\x00\x00\x02")
    status = cli.main(["inspect", str(path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2
    assert len(err) == 1
    assert "broken.mlg" in err[0]
    assert "cut short" in err[0]


def test_inspect_missing_file_exits_2(tmp_path, capsys):
    status = cli.main(["inspect", str(tmp_path / "nope.csv")])
    assert status == 2
    assert "nope.csv" in capsys.readouterr().err


def test_read_benchmark_figures(realdata):
    figures = read_bench.run(repeats=1)
    assert figures["files"] == 15
    assert figures["rows"] > 10000
    assert figures["mb_per_s"] > 0


def test_read_benchmark_without_data(tmp_path):
    figures = read_bench.run(repeats=1, folder=tmp_path)
    assert figures["files"] == 0
    assert figures["rows"] == 0
