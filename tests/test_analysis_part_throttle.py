"""VE corrections from the real part-throttle Harley log.

``PV_Logfile_5.csv_18.txt`` is 22 s of part throttle with closed-throttle
fuel cuts, logged while the engine was at 47 to 50 °C. The collector
wideband (an Innovate LC-2 logged as ``afr_lc2``) sees both cylinders;
during a fuel cut the injector time is 0 and the LC-2 sits at its lean
rail, AFR 22.39.
"""

import numpy as np
import pytest

import dynoai_lab as dl
from dynoai_lab.analysis.pull import REJECTION_REASONS, RejectionLimits

LOG = "harley/PV_Logfile_5.csv_18.txt"
TUNE = "harley/base.pvv"


@pytest.fixture(scope="module")
def log_and_tune():
    from conftest import REALDATA

    if not REALDATA.is_dir():
        pytest.skip(f"real recordings not found at {REALDATA}")
    return dl.read_log(REALDATA / LOG), dl.read_tune(REALDATA / TUNE)


@pytest.fixture(scope="module")
def warm_limit_analysis(log_and_tune):
    log, tune = log_and_tune
    limits = RejectionLimits(min_coolant_temperature=40.0)
    return dl.analyze_pull(log, tune, limits=limits)


def test_cold_engine_rejected_with_reason(log_and_tune):
    log, tune = log_and_tune
    summary = dl.analyze_pull(log, tune).summary()

    assert summary["rejected"]["front"]["accepted"] == 0
    assert summary["rejected"]["front"]["cold_engine"] > 400
    note = next(n for n in summary["notes"] if "no samples kept" in n)
    assert "47 to 50 °C" in note
    assert "min_coolant_temperature" in note


def test_corrections_on_the_tune_axes(log_and_tune, warm_limit_analysis):
    _, tune = log_and_tune
    corrections = warm_limit_analysis.corrections
    summary = warm_limit_analysis.summary()

    # The tune's VE tables are indexed by throttle position and rpm.
    assert corrections["ve_current"].sel(cylinder="front").dims == (
        tune.ve_front.dims
    )
    for dim in tune.ve_front.dims:
        np.testing.assert_array_equal(
            corrections[dim].values, tune.ve_front[dim].values
        )
    assert summary["cells_corrected"]["front"] > 5
    assert summary["cells_corrected"]["rear"] > 5


def test_collector_wideband_feeds_both(warm_limit_analysis):
    summary = warm_limit_analysis.summary()
    channel = summary["wideband_channel"]

    assert channel["feeds"] == {"front": "afr_lc2", "rear": "afr_lc2"}
    assert any("feeds both cylinders" in n for n in summary["notes"])


def test_fuel_cut_samples_rejected_and_counted(
    log_and_tune, warm_limit_analysis
):
    log, _ = log_and_tune
    samples = warm_limit_analysis.samples
    summary = warm_limit_analysis.summary()
    cut = log["injector_time_front"].values <= 0.0
    code = samples["rejection_front"].values

    assert cut.sum() >= 30
    assert np.all(log["afr_lc2"].values[cut] == pytest.approx(22.39))
    # Every fuel-cut sample is left out, under a fuel-cut reason.
    reasons = {REJECTION_REASONS[c] for c in code[cut]}
    assert reasons <= {"decel_fuel_cut", "fuel_cut"}
    assert np.all(np.isnan(samples["ratio_front"].values[cut]))
    rejected = summary["rejected"]["front"]
    assert rejected["decel_fuel_cut"] + rejected["fuel_cut"] >= cut.sum()
    # The sensor's lean rail is counted as well, among all reasons.
    assert summary["flagged"]["front"]["sensor_railed"] >= cut.sum()
