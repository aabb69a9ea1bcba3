"""Power from drum speed: invariants and the real pull."""

import numpy as np
import pytest

from dynoai_lab.analysis import power
from dynoai_lab.io import read_log
from dynoai_lab.units import HP


def test_drum_model_from_inertia():
    drum = power.DrumModel.from_inertia(9.4, 0.2286)
    assert drum.equivalent_mass == pytest.approx(9.4 / 0.2286**2)
    with pytest.raises(ValueError, match="positive mass"):
        power.DrumModel(-1.0)
    with pytest.raises(ValueError, match="radius"):
        power.DrumModel.from_inertia(9.4, 0.0)


def test_constant_acceleration_recovered():
    # v = v0 + a·t sampled at 20 Hz: the derivative is exact for a
    # polynomial of order <= polyorder, up to float rounding.
    t = np.arange(0, 5, 0.05)
    v = 20.0 + 3.0 * t
    accel = power.drum_acceleration(t, v)
    np.testing.assert_allclose(accel, 3.0, rtol=1e-9)


def test_power_equals_inertia_alpha_omega():
    # P = I·α·ω at the drum: with m_eq = I / r², v = ω r, a = α r.
    inertia, radius = 9.4, 0.2286
    drum = power.DrumModel.from_inertia(inertia, radius)
    t = np.arange(0, 6, 0.01)
    omega = 50.0 + 8.0 * t - 0.4 * t**2
    alpha = 8.0 - 0.8 * t
    accel = power.drum_acceleration(t, omega * radius)
    p = power.drum_power(drum, omega * radius, accel)
    np.testing.assert_allclose(p, inertia * alpha * omega, rtol=1e-6)


def test_timing_slip_keeps_speed_gain():
    # A 20 Hz trace whose sampler catches up one step every second: the
    # acceleration must stay smooth and its integral must equal the
    # measured speed gain.
    t = np.arange(0, 6, 0.05)
    true_accel = 5.0
    slips = np.floor(t).astype(float) * 0.065
    v = 30.0 + true_accel * t + slips
    accel = power.drum_acceleration(t, v)
    gain = v[-1] - v[0]
    integral = np.sum(0.5 * (accel[1:] + accel[:-1]) * np.diff(t))
    assert integral == pytest.approx(gain, rel=2e-3)
    # Without slips the mean slope would be 5.0; with them 5.0 + 0.065/s.
    assert np.std(accel[10:-10]) < 0.05


def test_nan_edges_and_short_trace():
    t = np.arange(0, 2, 0.05)
    v = 10 + 2 * t
    v[:5] = np.nan
    accel = power.drum_acceleration(t, v)
    assert np.all(np.isnan(accel[:5]))
    np.testing.assert_allclose(accel[5:], 2.0, rtol=1e-9)
    with pytest.raises(ValueError, match="consecutive valid"):
        power.drum_acceleration(t[:3], v[5:8])


def test_estimate_drum_model_recovers_fit():
    a = np.linspace(1, 12, 50)
    force = 240.0 * a + 12.0
    drum = power.estimate_drum_model(force, a)
    assert drum.equivalent_mass == pytest.approx(240.0, rel=1e-9)
    assert drum.loss_force == pytest.approx(12.0, rel=1e-9)
    with pytest.raises(ValueError, match="at least 3 samples"):
        power.estimate_drum_model([1.0], [0.1])


def test_torque_below_running_speed_is_nan():
    torque = power.engine_torque([1000.0] * 3, [0.0, 1.0, 3000.0])
    assert np.isnan(torque[0])
    # 1 rpm is a logging glitch, not an engine: P / ω would be huge.
    assert np.isnan(torque[1])
    assert torque[2] == pytest.approx(1000.0 / (3000.0 * 2 * np.pi / 60))


def test_short_gap_bridged():
    t = np.arange(0, 4, 0.05)
    v = 20.0 + 3.0 * t
    v[40] = np.inf
    v[41] = np.nan
    with pytest.warns(power.PowerWarning, match="2 missing or non-finite"):
        accel = power.drum_acceleration(t, v)
    np.testing.assert_allclose(accel, 3.0, rtol=1e-9)


def test_long_gap_splits_runs():
    t = np.arange(0, 4, 0.05)
    v = 20.0 + 3.0 * t
    v[30:40] = np.nan
    with pytest.warns(power.PowerWarning, match="1 gap"):
        accel = power.drum_acceleration(t, v)
    # Both sides of the gap keep their acceleration; the gap has none.
    np.testing.assert_allclose(accel[:30], 3.0, rtol=1e-9)
    np.testing.assert_allclose(accel[40:], 3.0, rtol=1e-9)
    assert np.all(np.isnan(accel[30:40]))


def test_real_pull_power_from_drum_speed(bundled):
    # Power from the drum speed trace alone (the file's power column is
    # not used) against WinPEP's uncorrected power, over wide-open
    # throttle: median within 2 % of peak, 90th percentile within 5 %.
    log = read_log(bundled / "5TH GEAR.txt")
    drum = power.estimate_drum_model(
        log["drum_force"].values, log["drum_acceleration"].values
    )
    speed = log["drum_speed"].values
    accel = power.drum_acceleration(log["time"].values, speed)
    ours = power.drum_power(drum, speed, accel)
    theirs = log["power"].values * 1000.0
    wot = log["throttle_position"].values > 95.0
    error = np.abs(ours - theirs)[wot] / np.nanmax(theirs) * 100.0
    assert np.isfinite(error).sum() >= 50
    assert np.nanmedian(error) <= 2.0
    assert np.nanpercentile(error, 90) <= 5.0
    # Equivalent mass of the fit, documented in data/README.md.
    assert drum.equivalent_mass == pytest.approx(236.8, abs=0.1)
    assert np.nanmax(ours) / HP == pytest.approx(95.37, rel=0.01)
