"""Analyze Pull on every real recording: no crash, no numeric warning."""

import json
import warnings

import numpy as np
import pytest

import dynoai_lab as dl

LOGS = [
    ("harley/5TH GEAR.txt", "harley/base.pvv"),
    ("harley/PV_Logfile_5.csv_18.txt", "harley/base.pvv"),
    ("winpep/RunFile_40.csv", None),
    ("winpep/134power.csv", None),
    ("jetdrive/jetdrive_log_20251218_230024.csv", None),
    ("speeduino/2025-12-02_10.47.33.csv", "speeduino/CurrentTune.msq"),
    ("speeduino/2025-12-02_10.47.33.mlg", "speeduino/CurrentTune.msq"),
    ("ecu_logs/romraiderlog_20251031_170713.csv", None),
    ("ecu_logs/haltech_2025-07-18_0215pm_Log1118.csv", None),
]


@pytest.mark.parametrize(("log_name", "tune_name"), LOGS)
def test_real_log_analyzes_cleanly(realdata, log_name, tune_name):
    log = dl.read_log(realdata / log_name)
    tune = dl.read_tune(realdata / tune_name) if tune_name else None
    with warnings.catch_warnings():
        # Numeric trouble (division by zero, NaN arithmetic) must be
        # handled, not leak out as a RuntimeWarning.
        warnings.simplefilter("error", RuntimeWarning)
        analysis = dl.analyze_pull(log, tune)
    summary = analysis.summary()
    json.dumps(summary, allow_nan=False, default=str)
    assert summary["samples"] == log.sizes["time"]
    if tune is not None:
        # Only visited cells move; every other cell keeps its VE.
        corrections = analysis.corrections
        unvisited = corrections["weight"] == 0
        same = corrections["ve_proposed"] == corrections["ve_current"]
        assert bool(same.where(unvisited, True).all())
        if sum(summary["cells_with_data"].values()) == 0:
            # A log can be rejected whole (the part-throttle Harley log
            # is from a cold engine); the notes must say why.
            assert any("no samples kept" in n for n in summary["notes"])
    if "peak_power_hp" in summary:
        assert np.isfinite(summary["peak_power_hp"])
