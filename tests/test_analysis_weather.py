"""Weather correction factors against published forms and a real dyno."""

import numpy as np
import pytest

from dynoai_lab.analysis import weather
from dynoai_lab.io import read_log


def test_j1349_standard_day_is_one():
    # SAE J1349 standard: 99 kPa dry air at 25 °C; with 0 % humidity the
    # factor is 1.18 - 0.18 exactly.
    factor = weather.sae_j1349(99.0, 25.0, 0.0)
    assert factor == pytest.approx(1.0, abs=1e-12)


def test_j1349_2004_constants():
    factor = weather.sae_j1349(99.0, 25.0, 0.0, revision="2004")
    assert factor == pytest.approx(1.0, abs=1e-12)
    with pytest.raises(ValueError, match="revision '1985'"):
        weather.sae_j1349(99.0, 25.0, 0.0, revision="1985")


def test_j1349_rises_with_heat_and_altitude():
    base = weather.sae_j1349(100.0, 20.0, 30.0)
    assert weather.sae_j1349(100.0, 35.0, 30.0) > base
    assert weather.sae_j1349(95.0, 20.0, 30.0) > base
    # More humidity means less dry air, so a larger factor.
    assert weather.sae_j1349(100.0, 20.0, 80.0) > base


def test_saturation_pressure_known_points():
    # Reference values (WMO, over water): 2.339 kPa at 20 °C and
    # 7.384 kPa at 40 °C; Buck's equation is within 0.1 % there.
    values = weather.saturation_vapour_pressure([20.0, 40.0])
    np.testing.assert_allclose(values, [2.339, 7.384], rtol=1e-3)


def test_humidity_as_fraction_rejected():
    with pytest.raises(ValueError, match="0..100 %"):
        weather.dry_air_pressure(100.0, 20.0, 150.0)


def test_din_and_j607_standard_days():
    assert weather.din_70020(101.3, 20.0) == pytest.approx(1.0, abs=1e-12)
    # J607: 29.92 inHg dry at 60 °F.
    pressure = 29.92 * 3.386389
    factor = weather.sae_j607(pressure, (60 - 32) / 1.8, 0.0)
    assert factor == pytest.approx(1.0, abs=1e-9)


def test_implausible_factor_warns():
    # 60 kPa is a unit slip (for example inHg read as kPa).
    with pytest.warns(
        weather.WeatherWarning, match=r"60.0 kPa.*outside 0.9..1.09"
    ):
        weather.sae_j1349(60.0, 20.0, 30.0)


def test_unknown_standard_lists_valid():
    with pytest.raises(ValueError, match="SAE J1349"):
        weather.correction_factor("EEC 80/1269", 100.0, 20.0, 30.0)


def test_j1349_matches_winpep_factor(bundled):
    # WinPEP 8 prints its SAE correction factor beside the weather
    # channels; ours from the same channels must agree within 0.5 %.
    log = read_log(bundled / "5TH GEAR.txt")
    pressure = float(log["ambient_pressure"].median())
    temperature = float(log["ambient_temperature"].median())
    humidity = float(log["relative_humidity"].median())
    ours = weather.sae_j1349(pressure, temperature, humidity)
    theirs = float(log["correction_factor"].median())
    assert theirs == pytest.approx(0.985, abs=1e-3)
    assert ours == pytest.approx(theirs, rel=0.005)


def test_nonpositive_pressure_rejected():
    with pytest.raises(ValueError, match="positive number of kPa"):
        weather.sae_j1349(0.0, 20.0, 30.0)


def test_fahrenheit_temperature_rejected():
    with pytest.raises(ValueError, match="-60..70 °C"):
        weather.sae_j1349(100.0, 95.0, 30.0)
