"""Bilinear binning of correction ratios onto non-uniform table axes."""

import numpy as np
import pytest
import xarray as xr

from dynoai_lab.analysis import correction

RPM = np.array([1000.0, 2000.0, 3500.0, 5000.0])
MAP = np.array([20.0, 40.0, 70.0, 100.0])


def test_weights_sum_to_one_inside():
    x = np.array([1000.0, 1500.0, 4999.0, 3500.0])
    y = np.array([20.0, 55.0, 99.0, 40.0])
    cells, weights, inside = correction.bilinear_weights(x, y, RPM, MAP)
    assert inside.all()
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, rtol=1e-12)
    # A sample on a breakpoint puts all its weight on that cell.
    on_point = weights[3]
    assert on_point.max() == pytest.approx(1.0)
    assert cells[3][np.argmax(on_point)] == 2 * MAP.size + 1


def test_off_table_samples_get_no_weight():
    stats = correction.bin_ratios(
        [900.0, 6000.0, 2000.0, 2000.0],
        [40.0, 40.0, 10.0, 40.0],
        [0.5, 0.5, 0.5, 1.1],
        [0.1, 0.1, 0.1, 0.1],
        RPM,
        MAP,
    )
    # Only the last sample lies inside; edge cells are not filled from
    # the three outside samples.
    assert stats["weight"].sum() == pytest.approx(0.1)
    assert np.nanmax(stats["ratio"]) == pytest.approx(1.1)
    assert np.nanmin(stats["ratio"]) == pytest.approx(1.1)


def test_weighted_mean_and_spread():
    # Two samples at the same point, different durations.
    stats = correction.bin_ratios(
        [2000.0, 2000.0], [40.0, 40.0], [1.0, 1.2], [0.3, 0.1], RPM, MAP
    )
    ratio = stats["ratio"][1, 1]
    assert ratio == pytest.approx((0.3 * 1.0 + 0.1 * 1.2) / 0.4)
    spread = stats["spread"][1, 1]
    expected = np.sqrt(
        (0.3 * (1.0 - ratio) ** 2 + 0.1 * (1.2 - ratio) ** 2) / 0.4
    )
    assert spread == pytest.approx(expected, rel=1e-6)
    assert stats["hits"][1, 1] == 2


def test_nan_ratio_skipped():
    stats = correction.bin_ratios(
        [2000.0, 2000.0], [40.0, 40.0], [np.nan, 0.9], [0.1, 0.1], RPM, MAP
    )
    assert stats["weight"][1, 1] == pytest.approx(0.1)
    assert stats["ratio"][1, 1] == pytest.approx(0.9)


def test_bounded_ratio_limits_and_min_weight():
    ratio = np.array([1.3, 0.7, 1.05, 1.2, np.nan])
    weight = np.array([1.0, 1.0, 1.0, 0.01, 1.0])
    settings = correction.CorrectionSettings(
        min_weight=0.05, max_lean_step=0.1, max_rich_step=0.1
    )
    applied = correction.bounded_ratio(ratio, weight, settings)
    np.testing.assert_allclose(applied, [1.1, 0.9, 1.05, 1.0, 1.0])
    with pytest.raises(ValueError, match="max_lean_step"):
        correction.CorrectionSettings(max_lean_step=1.5)


def test_lean_cell_gains_fuel():
    # Lean (lambda measured > target) must raise VE, so the ECU adds
    # fuel; the inverted sign is a classic autotune bug.
    table = xr.DataArray(
        np.full((RPM.size, MAP.size), 80.0),
        dims=("rpm", "map"),
        coords={"rpm": RPM, "map": MAP},
    )
    stats = correction.bin_ratios([2000.0], [40.0], [1.08], [1.0], RPM, MAP)
    applied = correction.bounded_ratio(stats["ratio"], stats["weight"])
    ds = correction.correction_dataset(table, stats, applied)
    assert float(ds["ve_proposed"].sel(rpm=2000, map=40)) == pytest.approx(
        86.4
    )
    # Cells with no data keep their VE exactly.
    untouched = ds["weight"] == 0
    assert (ds["ve_proposed"].where(untouched) == 80.0).sum() == int(
        untouched.sum()
    )
    for name in ds.data_vars:
        assert "units" in ds[name].attrs


def test_axes_must_increase():
    with pytest.raises(ValueError, match="strictly increasing"):
        correction.bilinear_weights([1.0], [1.0], [1.0, 1.0], MAP)


def test_lookup_table_clamps_and_interpolates():
    table = xr.DataArray(
        np.add.outer(RPM / 1000.0, MAP / 10.0),
        dims=("rpm", "map"),
        coords={"rpm": RPM, "map": MAP},
    )
    values = correction.lookup_table(
        table, [1500.0, 500.0, 9000.0], [30.0, 20.0, 200.0]
    )
    np.testing.assert_allclose(values, [1.5 + 3.0, 1.0 + 2.0, 5.0 + 10.0])


def test_lean_and_rich_limits_separate():
    settings = correction.CorrectionSettings(
        max_lean_step=0.05, max_rich_step=0.02
    )
    applied = correction.bounded_ratio([1.2, 0.8], [1.0, 1.0], settings)
    np.testing.assert_allclose(applied, [1.05, 0.98])


def test_total_limit_against_reference():
    settings = correction.CorrectionSettings(max_lean_total=0.10)
    # The cell is already 8 % above the session's starting VE; a 15 %
    # lean step would take it to 24 %, so only 10 % in total is allowed.
    applied = correction.bounded_ratio(
        [1.15], [1.0], settings, current=[108.0], reference=[100.0]
    )
    assert applied[0] == pytest.approx(110.0 / 108.0)


def test_locked_cells_unchanged():
    applied = correction.bounded_ratio(
        [1.1, 1.1], [1.0, 1.0], locked=[True, False]
    )
    assert applied[0] == 1.0
    assert applied[1] == pytest.approx(1.1)


def test_smoothing_keeps_confident_large_correction():
    ratio = np.array([[1.12, 1.00, np.nan], [1.00, 1.00, 1.03]])
    weight = np.array([[5.0, 0.1, 0.0], [0.1, 0.1, 0.02]])
    smoothed = correction.smooth_ratio(ratio, weight, strength=1.0)
    # A well-measured 12 % correction barely moves ...
    assert smoothed[0, 0] == pytest.approx(1.12, abs=0.005)
    # ... while a thin cell is pulled toward its heavier neighbour.
    assert abs(smoothed[1, 2] - 1.0) < abs(ratio[1, 2] - 1.0)
    assert np.isnan(smoothed[0, 2])
    unchanged = correction.smooth_ratio(ratio, weight, strength=0.0)
    np.testing.assert_array_equal(unchanged, ratio)


def test_fill_proposal_only_in_unvisited():
    ratio = np.array([[1.1, np.nan, np.nan], [1.1, np.nan, 0.9]])
    weight = np.array([[1.0, 0.0, 0.0], [1.0, 0.0, 1.0]])
    proposal = correction.fill_proposal(ratio, weight, 0.05)
    assert np.isnan(proposal[0, 0])
    assert np.isnan(proposal[1, 2])
    assert 0.9 < proposal[0, 1] < 1.1
    # The cell next to the 0.9 cell leans toward it.
    assert proposal[1, 1] < proposal[0, 1] or proposal[1, 1] < 1.1
    empty = correction.fill_proposal(ratio * np.nan, weight * 0, 0.05)
    assert np.isnan(empty).all()


def test_binning_benchmark_checks_its_methods():
    from dynoai_lab.benchmarks import run_benchmark

    # The benchmark checks the compiled binning against numpy and the
    # pandas baseline against a numpy nearest-cell average first.
    figures = run_benchmark("binning", samples=5000, repeats=1)
    assert figures["samples"] == 5000
    assert figures["samples_per_s"] > 0
    assert figures["pandas_samples_per_s"] > 0
    assert figures["numpy_samples_per_s"] > 0


def _edge_samples(rng, n=20_000):
    """Random samples plus every breakpoint, the edges, NaN and outside."""
    x = rng.uniform(RPM[0] - 200.0, RPM[-1] + 200.0, n)
    y = rng.uniform(MAP[0] - 5.0, MAP[-1] + 5.0, n)
    grid_x, grid_y = np.meshgrid(RPM, MAP, indexing="ij")
    x = np.concatenate([x, grid_x.ravel(), np.nextafter(grid_x.ravel(), 0)])
    y = np.concatenate([y, grid_y.ravel(), np.nextafter(grid_y.ravel(), 0)])
    ratio = 1.0 + 0.05 * rng.standard_normal(x.size)
    duration = rng.uniform(0.0, 0.05, x.size)
    x[::97] = np.nan
    ratio[::89] = np.nan
    duration[::83] = np.nan
    return x, y, ratio, duration


def test_compiled_binning_matches_numpy():
    x, y, ratio, duration = _edge_samples(np.random.default_rng(5))
    fast = correction.bin_ratios(x, y, ratio, duration, RPM, MAP)
    reference = correction.bin_ratios_numpy(x, y, ratio, duration, RPM, MAP)
    for name in ("weight", "hits", "ratio", "spread"):
        np.testing.assert_allclose(
            fast[name], reference[name], rtol=1e-12, atol=0, err_msg=name
        )


def test_compiled_binning_on_the_harley_axes():
    from dynoai_lab.ecu import harley_delphi_axes

    (rpm_axis, map_axis), _ = harley_delphi_axes()
    rng = np.random.default_rng(6)
    # Random samples, then every speed breakpoint at MAP breakpoints.
    x = np.concatenate([rng.uniform(700, 8100, 50_000), rpm_axis])
    y = np.concatenate(
        [rng.uniform(10, 105, 50_000), np.resize(map_axis, rpm_axis.size)]
    )
    ratio = np.ones(x.size) * 1.02
    duration = np.full(x.size, 0.02)
    fast = correction.bin_ratios(x, y, ratio, duration, rpm_axis, map_axis)
    reference = correction.bin_ratios_numpy(
        x, y, ratio, duration, rpm_axis, map_axis
    )
    np.testing.assert_array_equal(fast["hits"], reference["hits"])
    np.testing.assert_allclose(fast["weight"], reference["weight"], rtol=1e-12)
