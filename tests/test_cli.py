"""The dynoai-lab command line, run as a subprocess."""

import json
import subprocess
import sys

import pytest
import xarray as xr
from conftest import DATA

CLI = [sys.executable, "-m", "dynoai_lab.cli"]


def run(*args, cwd=None):
    return subprocess.run(
        [*CLI, *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=600,
    )


def test_analyze_real_pull(tmp_path):
    result = run(
        "analyze",
        DATA / "5TH GEAR.txt",
        "--tune",
        DATA / "base.pvv",
        "--out",
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads((tmp_path / "summary.json").read_text())
    for key in (
        "peak_power_hp",
        "peak_power_rpm",
        "peak_torque_lbft",
        "peak_torque_rpm",
        "samples",
        "cells_with_data",
        "wideband_channel",
        "correction_factor",
    ):
        assert key in summary, key
    # WinPEP's own corrected peaks: 93.924 hp at 5488 rpm, 99.218
    # lbf·ft at 4477 rpm.
    assert summary["peak_power_hp"] == pytest.approx(93.924, rel=0.01)
    assert abs(summary["peak_power_rpm"] - 5488) <= 100
    assert summary["peak_torque_lbft"] == pytest.approx(99.218, rel=0.01)
    assert abs(summary["peak_torque_rpm"] - 4477) <= 100
    assert summary["correction_factor"] == pytest.approx(0.985, rel=0.005)
    assert summary["wideband_channel"]["used"] == "afr_lc2"
    assert set(summary["cells_with_data"]) == {"front", "rear"}

    corrections = xr.open_dataset(tmp_path / "corrections.nc")
    assert corrections["ve_proposed"].attrs["units"] == "%"
    assert (tmp_path / "base_proposed.pvv").is_file()
    assert "peak power" in result.stdout


def test_analyze_without_tune(tmp_path):
    result = run("analyze", DATA / "5TH GEAR.txt", "--out", tmp_path)
    assert result.returncode == 0, result.stderr
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["cells_with_data"] == {}
    assert not (tmp_path / "corrections.nc").exists()


def test_missing_log_one_line(tmp_path):
    result = run("analyze", tmp_path / "nope.csv", "--out", tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "nope.csv" in lines[0]
    assert "not found" in lines[0]


def test_garbage_log_one_line(tmp_path):
    bad = tmp_path / "broken.txt"
    bad.write_bytes(b"\x00\x01 this is not a dyno log\n1,2,3\n")
    result = run("analyze", bad, "--out", tmp_path / "out")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "broken.txt" in lines[0]
    assert not (tmp_path / "out" / "summary.json").exists()


def test_broken_tune_one_line(tmp_path):
    bad = tmp_path / "bad.pvv"
    bad.write_text("<PVV><Item name='x'>")
    result = run(
        "analyze", DATA / "5TH GEAR.txt", "--tune", bad, "--out", tmp_path
    )
    assert result.returncode == 2
    assert "bad.pvv" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_engines_lists_m8():
    result = run("engines", "--json")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    names = [row["name"] for row in rows]
    assert "m8-114" in names
    for row in rows:
        assert row["rated_power_hp"] > 0
        assert row["source"]


def test_unknown_engine_lists_valid(tmp_path):
    result = run("tune", "--engine", "v12-9000", "--out", tmp_path)
    assert result.returncode == 2
    assert "m8-114" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_health_all_ok():
    result = run("health", "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] is True
    assert set(report["components"]) == {
        "engine",
        "ecu",
        "simulator",
        "wideband",
        "analysis",
        "io",
    }


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["analyze", DATA, "--out", "OUT"], "is a folder; expected a file"),
        (
            ["analyze", DATA / "5TH GEAR.txt", "--out", "FILE"],
            "is a file; expected a folder",
        ),
        (
            ["analyze", DATA / "5TH GEAR.txt", "--standard", "EEC", "--out",
             "OUT"],
            "--standard 'EEC' is not supported",
        ),
        (
            ["tune", "--engine", "m8-114", "--seed", "-1", "--out", "OUT"],
            "--seed must be a non-negative integer, got -1",
        ),
        (
            ["tune", "--engine", "m8-114", "--iterations", "0", "--out",
             "OUT"],
            "--iterations must be at least 1, got 0",
        ),
        (
            ["analyze", DATA / "5TH GEAR.txt", "--out", ""],
            "name a folder for the results",
        ),
    ],
)  # fmt: skip
def test_bad_arguments_one_line(tmp_path, args, expected):
    existing_file = tmp_path / "file.txt"
    existing_file.write_text("keep me")
    swap = {"OUT": tmp_path / "out", "FILE": existing_file}
    result = run(*[swap.get(a, a) for a in args])
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert expected in lines[0]
    assert existing_file.read_text() == "keep me"
    assert not (tmp_path / "out").exists()


def test_results_get_umask_permissions(tmp_path):
    result = run("analyze", DATA / "5TH GEAR.txt", "--out", tmp_path / "out")
    assert result.returncode == 0, result.stderr
    mode = (tmp_path / "out" / "summary.json").stat().st_mode & 0o777
    # Files are created with 0o666 less the umask (0o022 by default).
    assert mode & 0o044 == 0o044


def test_version_flag():
    result = run("--version")
    assert result.returncode == 0
    assert result.stdout.startswith("dynoai-lab ")
