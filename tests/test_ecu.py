"""Tests of the ECU model: table lookup, speed density, base tables."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import xarray as xr

from dynoai_lab.ecu import (
    ECU,
    bilinear_lookup,
    default_afr_target,
    harley_delphi_axes,
    make_base_ecu,
    smooth_ve_error,
    speed_density_air_mass,
)
from dynoai_lab.sim.engines import get_engine, true_ve
from dynoai_lab.units import R_AIR, ZERO_CELSIUS

# Round-off of a handful of float operations on values near 100.
EXACT = 1e-12


def _table(values, rpm, map_kpa):
    return xr.DataArray(
        np.asarray(values, float),
        coords={"rpm": rpm, "map": map_kpa},
        dims=("rpm", "map"),
    )


@pytest.fixture
def axes():
    (rpm, map_kpa), _ = harley_delphi_axes()
    return rpm, map_kpa


@pytest.fixture
def random_table(axes):
    rpm, map_kpa = axes
    rng = np.random.default_rng(3)
    return _table(rng.uniform(30, 110, (rpm.size, map_kpa.size)), *axes)


@pytest.fixture
def ecu(axes):
    rpm, map_kpa = axes
    grid_rpm, grid_map = np.meshgrid(rpm, map_kpa, indexing="ij")
    ve = 40.0 + 0.01 * grid_rpm + 0.4 * grid_map
    _, (afr_rpm, afr_map) = harley_delphi_axes()
    afr_rpm_grid, afr_map_grid = np.meshgrid(afr_rpm, afr_map, indexing="ij")
    afr = default_afr_target(afr_rpm_grid, afr_map_grid)
    return ECU(
        _table(ve, rpm, map_kpa),
        _table(ve * 1.02, rpm, map_kpa),
        _table(afr, afr_rpm, afr_map),
        displacement=1.868e-3,
    )


# ---------------------------------------------------------------------------
# bilinear_lookup
# ---------------------------------------------------------------------------


def test_lookup_exact_at_breakpoints(random_table):
    rpm = random_table["rpm"].values
    map_kpa = random_table["map"].values
    grid_rpm, grid_map = np.meshgrid(rpm, map_kpa, indexing="ij")
    result = bilinear_lookup(random_table, grid_rpm, grid_map)
    np.testing.assert_allclose(result, random_table.values, rtol=EXACT)


def test_lookup_linear_between_breakpoints(random_table):
    rpm = random_table["rpm"].values
    map_kpa = random_table["map"].values
    values = random_table.values
    # Along rpm on a MAP breakpoint, a point at fraction 0.3 of a cell
    # lies on the straight line between the two cell values.
    i, j = 7, 4
    x = rpm[i] + 0.3 * (rpm[i + 1] - rpm[i])
    expected = values[i, j] + 0.3 * (values[i + 1, j] - values[i, j])
    assert bilinear_lookup(random_table, x, map_kpa[j]) == pytest.approx(
        expected, rel=EXACT
    )
    # Along MAP on an rpm breakpoint.
    y = map_kpa[j] + 0.8 * (map_kpa[j + 1] - map_kpa[j])
    expected = values[i, j] + 0.8 * (values[i, j + 1] - values[i, j])
    assert bilinear_lookup(random_table, rpm[i], y) == pytest.approx(
        expected, rel=EXACT
    )


def test_lookup_reproduces_bilinear_function(axes):
    # A function of the form a + b x + c y + d x y is reproduced exactly
    # inside every cell of a non-uniform grid.
    rpm, map_kpa = axes

    def f(x, y):
        return 3.0 + 0.002 * x - 0.5 * y + 1e-4 * x * y

    grid_rpm, grid_map = np.meshgrid(rpm, map_kpa, indexing="ij")
    table = _table(f(grid_rpm, grid_map), rpm, map_kpa)
    rng = np.random.default_rng(0)
    x = rng.uniform(rpm[0], rpm[-1], 500)
    y = rng.uniform(map_kpa[0], map_kpa[-1], 500)
    np.testing.assert_allclose(
        bilinear_lookup(table, x, y), f(x, y), rtol=1e-10
    )


def test_lookup_clamps_outside(random_table):
    rpm = random_table["rpm"].values
    map_kpa = random_table["map"].values
    values = random_table.values
    assert bilinear_lookup(random_table, 100.0, 5.0) == pytest.approx(
        values[0, 0], rel=EXACT
    )
    assert bilinear_lookup(random_table, 12000.0, 200.0) == pytest.approx(
        values[-1, -1], rel=EXACT
    )
    # Beyond the rpm axis only, the lookup follows the last row.
    inside = bilinear_lookup(random_table, rpm[-1], 47.0)
    assert bilinear_lookup(random_table, 9000.0, 47.0) == pytest.approx(
        inside, rel=EXACT
    )
    assert bilinear_lookup(random_table, rpm[3], 0.0) == pytest.approx(
        values[3, 0], rel=EXACT
    )
    assert map_kpa[0] > 0.0


def test_lookup_broadcasts_shapes(random_table):
    out = bilinear_lookup(random_table, np.full((3, 4), 2000.0), 50.0)
    assert out.shape == (3, 4)


def test_lookup_rejects_unsorted_axis():
    table = _table([[1, 2], [3, 4], [5, 6]], [1000, 3000, 2000], [20, 100])
    with pytest.raises(ValueError, match="strictly increasing"):
        bilinear_lookup(table, 1500, 50)


def test_lookup_rejects_wrong_dims():
    table = xr.DataArray(np.ones((2, 2)), dims=("map", "rpm"))
    with pytest.raises(ValueError, match="dims"):
        bilinear_lookup(table, 1500, 50)


# ---------------------------------------------------------------------------
# ECU
# ---------------------------------------------------------------------------


def test_fuel_mass_matches_speed_density(ecu):
    rpm, map_kpa, iat = 2600.0, 63.0, 35.0
    ve = ecu.ve("front", rpm, map_kpa)
    afr = ecu.target_afr(rpm, map_kpa)
    by_hand = (
        ve / 100 * map_kpa * 1000 * (1.868e-3 / 2)
        / (R_AIR * (iat + ZERO_CELSIUS)) / afr
    )  # fmt: skip
    fuel = ecu.fuel_mass_per_cycle("front", rpm, map_kpa, iat)
    assert fuel == pytest.approx(by_hand, rel=EXACT)
    # About 0.04 g of fuel per cylinder per cycle at this load.
    assert 2e-5 < fuel < 8e-5


def test_fuel_mass_monotonic_in_table_ve(ecu):
    rpm, map_kpa = np.array([1300.0, 3100.0]), np.array([33.0, 88.0])
    previous = None
    for scale in (0.8, 0.9, 1.0, 1.1, 1.2):
        scaled = ecu.with_ve(ve_front=ecu.ve_front * scale)
        fuel = scaled.fuel_mass_per_cycle("front", rpm, map_kpa, 30.0)
        if previous is not None:
            assert np.all(fuel > previous)
        previous = fuel
    # Fuel is proportional to table VE.
    base = ecu.fuel_mass_per_cycle("front", rpm, map_kpa, 30.0)
    doubled = ecu.with_ve(ve_front=ecu.ve_front * 2.0)
    np.testing.assert_allclose(
        doubled.fuel_mass_per_cycle("front", rpm, map_kpa, 30.0),
        2.0 * base,
        rtol=EXACT,
    )


def test_target_lambda_is_afr_over_stoichiometric(ecu):
    assert ecu.target_lambda(2500, 50) == pytest.approx(
        ecu.target_afr(2500, 50) / 14.7, rel=EXACT
    )


def test_rear_table_is_separate(ecu):
    ratio = ecu.ve("rear", 3000, 60) / ecu.ve("front", 3000, 60)
    assert ratio == pytest.approx(1.02, rel=EXACT)


def test_with_ve_copies_tables(ecu):
    new = ecu.with_ve(ve_front=ecu.ve_front + 5.0)
    assert new is not ecu
    assert new.ve_rear is not ecu.ve_rear
    new.ve_rear.values[0, 0] = -1.0
    assert ecu.ve_rear.values[0, 0] != -1.0
    assert new.ve("front", 3000, 60) == pytest.approx(
        ecu.ve("front", 3000, 60) + 5.0, rel=EXACT
    )


def test_constructor_copies_caller_table(axes):
    rpm, map_kpa = axes
    table = _table(np.full((rpm.size, map_kpa.size), 80.0), rpm, map_kpa)
    ecu = ECU(table, table, table * 0 + 13.0, displacement=1.868e-3)
    table.values[:] = 10.0
    assert ecu.ve("front", 2000, 50) == pytest.approx(80.0)


def test_unknown_cylinder_raises(ecu):
    with pytest.raises(ValueError, match="'front', 'rear'"):
        ecu.ve("middle", 2000, 50)


def test_displacement_in_cm3_raises(ecu):
    with pytest.raises(ValueError, match="m³"):
        ECU(ecu.ve_front, ecu.ve_rear, ecu.afr_target, displacement=1868)


def test_nan_cell_raises(ecu):
    broken = ecu.ve_front.copy()
    broken.values[2, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        ecu.with_ve(ve_front=broken)


def test_from_tune_reads_attributes(ecu):
    tune = SimpleNamespace(
        ve_front=ecu.ve_front,
        ve_rear=ecu.ve_rear,
        afr_target=ecu.afr_target,
        displacement=1.868e-3,
    )
    built = ECU.from_tune(tune)
    assert built.ve("rear", 2222, 44) == pytest.approx(
        ecu.ve("rear", 2222, 44), rel=EXACT
    )
    assert built.ve_front is not tune.ve_front


def test_from_tune_missing_table_raises(ecu):
    tune = SimpleNamespace(ve_front=ecu.ve_front, displacement=1.8e-3)
    with pytest.raises(ValueError, match="ve_rear"):
        ECU.from_tune(tune)


def test_speed_density_air_mass_at_standard_air():
    # 1 L of air at 101.325 kPa and 15 °C weighs 1.225 g (ISA sea level).
    mass = speed_density_air_mass(100.0, 101.325, 1e-3, 15.0)
    assert mass == pytest.approx(1.225e-3, rel=1e-3)


# ---------------------------------------------------------------------------
# Base tables
# ---------------------------------------------------------------------------


def test_harley_axes_sizes():
    (ve_rpm, ve_map), (afr_rpm, afr_map) = harley_delphi_axes()
    assert (ve_rpm.size, ve_map.size) == (21, 17)
    assert (afr_rpm.size, afr_map.size) == (17, 11)
    assert ve_map[0] == 10.3
    assert ve_map[-1] == 104.4


def test_base_ecu_equals_true_ve():
    engine = get_engine("m8-114")
    ecu = make_base_ecu(engine)
    grid_rpm, grid_map = np.meshgrid(
        ecu.ve_front["rpm"], ecu.ve_front["map"], indexing="ij"
    )
    for cylinder in ("front", "rear"):
        np.testing.assert_allclose(
            ecu.ve_table(cylinder).values,
            true_ve(engine, cylinder, grid_rpm, grid_map),
            rtol=EXACT,
        )
    assert ecu.ve_front.attrs["units"] == "%"


def test_base_ecu_uniform_error():
    engine = get_engine("m8-114")
    exact = make_base_ecu(engine)
    lean = make_base_ecu(engine, ve_error=-0.1)
    np.testing.assert_allclose(
        lean.ve_rear.values, 0.9 * exact.ve_rear.values, rtol=EXACT
    )


def test_base_ecu_smooth_error_bounds_and_seed():
    engine = get_engine("m8-114")
    exact = make_base_ecu(engine)
    one = make_base_ecu(engine, ve_error=(0.08, 0.15), seed=7)
    again = make_base_ecu(engine, ve_error=(0.08, 0.15), seed=7)
    other = make_base_ecu(engine, ve_error=(0.08, 0.15), seed=8)
    error = one.ve_front.values / exact.ve_front.values - 1.0
    assert np.abs(error).min() >= 0.08 - 1e-12
    assert np.abs(error).max() <= 0.15 + 1e-12
    np.testing.assert_array_equal(one.ve_front.values, again.ve_front.values)
    assert not np.array_equal(one.ve_front.values, other.ve_front.values)
    assert not np.array_equal(one.ve_front.values, one.ve_rear.values)


def test_smooth_error_is_smooth(axes):
    error = smooth_ve_error(*axes, seed=1)
    # Neighbouring cells differ by far less than the 7 % span.
    assert np.abs(np.diff(error, axis=0)).max() < 0.03
    assert np.abs(np.diff(error, axis=1)).max() < 0.03
    assert np.all(np.sign(error) == np.sign(error[0, 0]))


def test_smooth_error_sign_argument(axes):
    assert np.all(smooth_ve_error(*axes, sign=-1, seed=1) < 0)
    with pytest.raises(ValueError, match="sign"):
        smooth_ve_error(*axes, sign=0, seed=1)


def test_base_afr_target_is_realistic():
    ecu = make_base_ecu(get_engine("m8-114"))
    assert ecu.target_afr(2500, 40) == pytest.approx(14.6, abs=1e-9)
    wot = ecu.target_afr(np.array([2000.0, 5500.0]), 100.0)
    assert np.all((wot >= 13.0) & (wot <= 13.2))
    # Richer as load rises, never leaner.
    afr = ecu.target_afr(3000, np.linspace(20, 100, 50))
    assert np.all(np.diff(afr) <= 1e-12)


def test_base_ecu_four_cylinder_stretches_axes():
    engine = get_engine("i4-1000")
    ecu = make_base_ecu(engine)
    assert ecu.n_cylinders == 4
    assert ecu.ve_front["rpm"].values[-1] == pytest.approx(14200, abs=50)
    assert ecu.cylinder_volume == pytest.approx(engine.displacement / 4)
