"""Analyze Pull on the real Harley pull and its base tune."""

import numpy as np
import pytest

import dynoai_lab as dl
from dynoai_lab.units import HP, LBF_FT


@pytest.fixture(scope="module")
def real_pull():
    from conftest import DATA

    log = dl.read_log(DATA / "5TH GEAR.txt")
    tune = dl.read_tune(DATA / "base.pvv")
    return log, tune, dl.analyze_pull(log, tune)


def test_peaks_match_dyno_channels(real_pull):
    # WinPEP's own corrected power and torque; ours is computed from
    # drum speed and our SAE J1349 factor. Agreement within 1 % and
    # 100 rpm.
    log, _, analysis = real_pull
    summary = analysis.summary()
    power = log["power_corrected"].values * 1000.0 / HP
    torque = log["torque_corrected"].values / LBF_FT
    rpm = log["engine_speed"].values
    i, j = np.nanargmax(power), np.nanargmax(torque)
    assert summary["peak_power_hp"] == pytest.approx(power[i], rel=0.01)
    assert abs(summary["peak_power_rpm"] - rpm[i]) <= 100
    assert summary["peak_torque_lbft"] == pytest.approx(torque[j], rel=0.01)
    assert abs(summary["peak_torque_rpm"] - rpm[j]) <= 100


def test_dead_wideband_detected(real_pull):
    _, _, analysis = real_pull
    summary = analysis.summary()
    channel = summary["wideband_channel"]
    assert channel["used"] == "afr_lc2"
    assert channel["feeds"] == {"front": "afr_lc2", "rear": "afr_lc2"}
    assert "stuck at 7.38" in channel["reasons"]["afr_lc1"]
    assert "reads 0" in channel["reasons"]["afr_front"]
    assert channel["original_names"]["afr_lc2"].endswith(
        "LC2 Volts Petrol AFR2"
    )
    assert any("feeds both cylinders" in note for note in summary["notes"])


def test_corrections_only_in_visited_cells(real_pull):
    _, tune, analysis = real_pull
    corrections = analysis.corrections
    assert corrections["ratio"].dims == ("cylinder", "rpm", "tps")
    np.testing.assert_array_equal(
        corrections["tps"].values, tune.ve_front["tps"].values
    )
    visited = corrections["weight"] > 0
    assert 0 < int(visited.sum()) < visited.size // 4
    unvisited = ~visited
    same = corrections["ve_proposed"] == corrections["ve_current"]
    assert bool(same.where(unvisited, True).all())
    # The pull ends at wide-open throttle: the corrected cells are in
    # the 100 % column, above 4000 rpm.
    rpm_visited = corrections["rpm"].where(visited.any(["cylinder", "tps"]))
    assert float(rpm_visited.min()) >= 4000


def test_rejections_counted(real_pull):
    _, _, analysis = real_pull
    front = analysis.rejected["front"]
    # Acceleration enrichment is active through the roll-on and the rev
    # limiter cuts fuel at the end; both must be left out.
    assert front["accel_enrichment"] > 40
    assert front["fuel_cut"] > 0
    total = sum(front.values())
    assert total == analysis.samples.sizes["time"]


def test_correction_ratio_in_sane_range(real_pull):
    _, _, analysis = real_pull
    ratio = analysis.corrections["ratio"].values
    finite = ratio[np.isfinite(ratio)]
    # The bike runs within a few percent of target at WOT.
    assert np.all((finite > 0.9) & (finite < 1.1))


def test_missing_channels(real_pull):
    import xarray as xr

    _, tune, _ = real_pull
    log = xr.Dataset(
        {"drum_speed": ("time", np.linspace(10, 20, 50))},
        coords={"time": np.arange(50) * 0.05},
        attrs={"source_file": "tiny.csv"},
    )
    # With a tune to correct, missing channels are an error naming them.
    with pytest.raises(dl.AnalysisError, match="tiny.csv: VE analysis needs"):
        dl.analyze_pull(log, tune)
    # Without one, the analysis says what it could not do.
    analysis = dl.analyze_pull(log)
    notes = " ".join(analysis.notes)
    assert "power not computed" in notes
    assert "no lambda analysis" in notes
    assert analysis.corrections is None


def test_summary_reports_weather_inputs(real_pull):
    _, _, analysis = real_pull
    weather = analysis.summary()["weather"]
    assert weather["pressure_kpa"] == pytest.approx(100.3, abs=0.01)
    assert weather["temperature_c"] == pytest.approx(22.0, abs=0.01)
    assert weather["logged_correction_factor"] == pytest.approx(0.985)
    corrected = analysis.summary()["cells_corrected"]
    with_data = analysis.summary()["cells_with_data"]
    # Cells below the minimum weight have data but are not corrected.
    assert 0 < corrected["front"] <= with_data["front"]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda t: t.ve_front * 0.0, "outside 1.0..250.0"),
        (lambda t: t.ve_front * 1e30, "outside 1.0..250.0"),
        (lambda t: t.ve_front.isel(tps=slice(0, 1)), "at least 2 × 2"),
        (
            lambda t: t.ve_front.assign_coords(
                rpm=t.ve_front["rpm"].values[::-1]
            ),
            "strictly increasing",
        ),
    ],
)
def test_implausible_tune_rejected(real_pull, change, expected):
    from types import SimpleNamespace

    log, tune, _ = real_pull
    bad = SimpleNamespace(
        ve_front=change(tune),
        ve_rear=tune.ve_rear,
        afr_target=tune.afr_target,
        path="broken.pvv",
    )
    with pytest.raises(dl.AnalysisError, match=expected) as info:
        dl.analyze_pull(log, bad)
    assert "broken.pvv" in str(info.value)


def test_afr_target_all_zero_rejected(real_pull):
    from types import SimpleNamespace

    log, tune, _ = real_pull
    bad = SimpleNamespace(
        ve_front=tune.ve_front,
        ve_rear=tune.ve_rear,
        afr_target=tune.afr_target * 0.0,
        path="zero_afr.pvv",
    )
    with pytest.raises(dl.AnalysisError, match="outside 6.0..20.0"):
        dl.analyze_pull(log, bad)


def test_time_going_back_rejected(real_pull):
    log, tune, _ = real_pull
    time = log["time"].values.copy()
    time[100:] -= 3.0
    restarted = log.assign_coords(time=time)
    with pytest.raises(dl.AnalysisError, match="time goes back"):
        dl.analyze_pull(restarted, tune)


def test_each_cylinder_corrected_from_its_own_sensor():
    from dynoai_lab import sim
    from dynoai_lab.ecu import make_base_ecu

    engine = sim.get_engine("m8-114")
    base = make_base_ecu(engine)
    # Front runs 10 % lean (VE 10 % low), rear 5 % rich (VE 5 % high).
    ecu = base.with_ve(
        ve_front=base.ve_front * 0.9, ve_rear=base.ve_rear * 1.05
    )
    plan = [sim.SteadyState(rpm=rpm, map_kpa=60.0) for rpm in (2500, 3000)]
    log, _ = sim.simulate_plan(engine, ecu, plan, seed=4)

    analysis = dl.analyze_pull(log, ecu)

    assert analysis.sensors == {"front": "afr_front", "rear": "afr_rear"}
    ratio = analysis.corrections["ratio"]
    weight = analysis.corrections["weight"]
    front = ratio.sel(cylinder="front").where(
        weight.sel(cylinder="front") > 0.5
    )
    rear = ratio.sel(cylinder="rear").where(weight.sel(cylinder="rear") > 0.5)
    # lambda measured / target is 1 / 0.9 lean and 1 / 1.05 rich.
    assert float(front.mean()) == pytest.approx(1 / 0.9, rel=0.01)
    assert float(rear.mean()) == pytest.approx(1 / 1.05, rel=0.01)
