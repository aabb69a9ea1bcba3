"""ECU model: speed-density fuelling from VE and AFR-target tables.

The ECU reads manifold pressure (MAP), engine speed and intake air
temperature. It looks up volumetric efficiency (VE) in one table per
cylinder and the desired air-fuel ratio in the AFR-target table, then
meters fuel for the air it computes is trapped.

Tables are ``xarray.DataArray`` objects with dims ``("rpm", load)``,
where the load dim is ``map`` [kPa] for speed-density tables. Axes may
be non-uniform; lookups interpolate bilinearly and clamp at the table
edges, as a Delphi ECM does.

Besides the tables the ECU has the behaviours of a production ECM,
each of which can be switched off in :class:`EcuFeatures`:
acceleration enrichment, deceleration fuel cut, closed-loop lambda trim
with adaptive factors, knock retard and a rev limiter. The simulator
runs them in its time step (:mod:`dynoai_lab.sim.kernel`) and logs
their channels.

Cylinder naming: on a V-twin ``"front"`` and ``"rear"`` are the two
cylinders. On a four-cylinder engine the front table serves cylinders
1-2 and the rear table cylinders 3-4; a tune with one VE table for all
cylinders passes the same table as both.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr

from dynoai_lab.units import R_AIR, ZERO_CELSIUS

logger = logging.getLogger(__name__)

#: Stoichiometric air-fuel mass ratio of gasoline without ethanol [1].
STOICHIOMETRIC_AFR_GASOLINE = 14.7

#: Cylinder names accepted by the ECU methods.
CYLINDERS = ("front", "rear")

#: A full Power Vision tune of a 2016 110 CID Harley-Davidson Delphi
#: ECM with MAP-based VE tables (MIT, see data/README.md); the
#: simulator's ECU uses its axes.
TEMPLATE_TUNE = Path(__file__).with_name("data") / "pvv_template.pvv"

# AFR-target blend of make_base_ecu: cruise AFR below the lower MAP
# bound, power enrichment above the upper one [1] and [kPa].
_CRUISE_AFR = 14.6
_WOT_AFR_LOW_RPM = 13.2
_WOT_AFR_HIGH_RPM = 13.0
_ENRICHMENT_MAP_START = 65.0
_ENRICHMENT_MAP_FULL = 95.0


# ---------------------------------------------------------------------------
# Table lookup
# ---------------------------------------------------------------------------


def _check_axis(axis: np.ndarray, name: str) -> None:
    if axis.ndim != 1 or axis.size < 2:
        raise ValueError(
            f"table axis {name!r} must be 1-D with at least 2 breakpoints,"
            f" got shape {axis.shape}"
        )
    if not np.all(np.diff(axis) > 0):
        raise ValueError(
            f"table axis {name!r} must be strictly increasing, got "
            f"{axis.tolist()}; drop padding repeats before the lookup"
        )


def _axis_weights(axis: np.ndarray, x: np.ndarray):
    """Return lower indices and fractions for clamped linear lookup."""
    x = np.clip(x, axis[0], axis[-1])
    index = np.searchsorted(axis, x, side="right") - 1
    index = np.clip(index, 0, axis.size - 2)
    fraction = (x - axis[index]) / (axis[index + 1] - axis[index])
    return index, fraction


def bilinear_lookup(table: xr.DataArray, rpm, load) -> np.ndarray:
    """Interpolate a 2-D ECU table bilinearly, clamped at its edges.

    Parameters
    ----------
    table : xarray.DataArray
        Table with dims ``("rpm", load_dim)``; both axes strictly
        increasing but not necessarily uniform.
    rpm : array_like
        Engine speed [rpm].
    load : array_like
        Load in the units of the table's second axis, for example
        MAP [kPa] for a speed-density table. Broadcast against `rpm`.

    Returns
    -------
    numpy.ndarray
        Interpolated values in the table's units, shape of the
        broadcast inputs. Points outside the table take the value at the
        nearest edge, as an ECU does.

    Notes
    -----
    With :math:`t = (x - x_i)/(x_{i+1} - x_i)` and
    :math:`u = (y - y_j)/(y_{j+1} - y_j)` the result is

    .. math::

        z = (1-t)(1-u) z_{ij} + t(1-u) z_{i+1,j}
            + (1-t) u z_{i,j+1} + t u z_{i+1,j+1}

    Examples
    --------
    >>> import xarray as xr
    >>> t = xr.DataArray([[0.0, 10.0], [100.0, 110.0]],
    ...                  coords={"rpm": [1000, 2000], "map": [20, 100]},
    ...                  dims=("rpm", "map"))
    >>> float(bilinear_lookup(t, 1500, 60))
    55.0
    """
    if table.ndim != 2 or table.dims[0] != "rpm":
        raise ValueError(
            f"table must have dims ('rpm', load), got {table.dims}"
        )
    rpm_axis = np.asarray(table["rpm"].values, dtype=float)
    load_axis = np.asarray(table[table.dims[1]].values, dtype=float)
    _check_axis(rpm_axis, "rpm")
    _check_axis(load_axis, table.dims[1])
    values = np.asarray(table.values, dtype=float)

    rpm, load = np.broadcast_arrays(
        np.asarray(rpm, dtype=float), np.asarray(load, dtype=float)
    )
    i, t = _axis_weights(rpm_axis, rpm)
    j, u = _axis_weights(load_axis, load)

    return (
        (1 - t) * (1 - u) * values[i, j]
        + t * (1 - u) * values[i + 1, j]
        + (1 - t) * u * values[i, j + 1]
        + t * u * values[i + 1, j + 1]
    )


# ---------------------------------------------------------------------------
# Speed density
# ---------------------------------------------------------------------------


def speed_density_air_mass(
    ve_percent, map_kpa, cylinder_volume, intake_temperature_c
):
    """Compute the air mass per cylinder per cycle by speed density.

    Parameters
    ----------
    ve_percent : array_like
        Volumetric efficiency [%].
    map_kpa : array_like
        Manifold absolute pressure [kPa].
    cylinder_volume : float
        Swept volume of one cylinder [m³].
    intake_temperature_c : array_like
        Intake air temperature [°C].

    Returns
    -------
    numpy.ndarray
        Air mass trapped per cylinder per cycle [kg].

    Notes
    -----
    .. math:: m_{air} = \\frac{VE \\cdot p_{MAP} \\cdot V_{cyl}}
              {R_{air} \\cdot T_{intake}}

    with :math:`R_{air} = 287.05` J/(kg·K).
    """
    temperature_k = np.asarray(intake_temperature_c, float) + ZERO_CELSIUS
    pressure_pa = np.asarray(map_kpa, dtype=float) * 1000.0
    ve = np.asarray(ve_percent, dtype=float) / 100.0
    return ve * pressure_pa * cylinder_volume / (R_AIR * temperature_k)


# ---------------------------------------------------------------------------
# ECU behaviours
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class EcuFeatures:
    """Switches and settings of the ECU's fuel and spark behaviours.

    Defaults suit a dyno tuning session: acceleration enrichment,
    deceleration fuel cut, knock retard and the rev limiter on, and the
    closed loop off, as a tuner runs open loop while a dyno wideband
    reads. Every setting is an estimate of typical calibrations, not
    read from a Delphi ECM.

    Attributes
    ----------
    accel_enrichment : bool
        Add fuel while the throttle opens.
    accel_threshold : float
        Throttle rate above which enrichment starts [%/s].
    accel_gain : float
        Extra fuel per percent of throttle opened [1/%].
    accel_limit : float
        Largest extra fuel [1], 0.5 for 50 % more.
    accel_decay : float
        Time constant of the enrichment's decay [s].
    decel_fuel_cut : bool
        Remove fuel while the throttle closes, and cut it entirely on a
        closed throttle above `decel_cut_rpm`.
    decel_threshold : float
        Throttle closing rate above which enleanment starts [%/s].
    decel_gain : float
        Fuel removed per percent of throttle closed [1/%].
    decel_decay : float
        Time constant of the enleanment's decay [s].
    decel_cut_rpm : float
        Closed-throttle fuel cut above this speed [rpm].
    closed_throttle : float
        Throttle at or below which the throttle counts as closed [%].
    closed_loop : bool
        Trim fuel toward the target from the ECU's own lambda sensor
        where the target is near stoichiometric.
    closed_loop_window : float
        Largest ``|target lambda − 1|`` with closed loop active [1].
    closed_loop_max_map : float
        Closed loop only at or below this MAP [kPa].
    closed_loop_max_rpm : float
        Closed loop only at or below this speed [rpm].
    closed_loop_min_coolant : float
        Closed loop only on an engine at least this warm [°C].
    closed_loop_gain : float
        Integral gain, trim rate per unit lambda error [1/s].
    closed_loop_limit : float
        Trim authority, ± [1].
    adaptive : bool
        Move a lasting closed-loop trim into the adaptive factor.
    adaptive_time_constant : float
        Time over which the adaptive factor takes over the trim [s].
    adaptive_limit : float
        Adaptive factor authority, ± [1].
    knock_retard : bool
        Retard spark on knock and restore it slowly.
    knock_step : float
        Retard added per engine cycle with knock [deg].
    knock_recovery : float
        Rate at which retard is removed without knock [deg/s].
    knock_max_retard : float
        Largest retard [deg].
    rev_limiter : bool
        Cut fuel above `rev_limit_rpm`.
    rev_limit_rpm : float
        Fuel-cut speed [rpm].
    rev_limit_hysteresis : float
        Fuel returns this far below `rev_limit_rpm` [rpm].
    """

    accel_enrichment: bool = True
    accel_threshold: float = 20.0
    accel_gain: float = 0.005
    accel_limit: float = 0.5
    accel_decay: float = 0.3
    decel_fuel_cut: bool = True
    decel_threshold: float = 20.0
    decel_gain: float = 0.005
    decel_decay: float = 0.3
    decel_cut_rpm: float = 1500.0
    closed_throttle: float = 1.0
    closed_loop: bool = False
    closed_loop_window: float = 0.03
    closed_loop_max_map: float = 80.0
    closed_loop_max_rpm: float = 4000.0
    closed_loop_min_coolant: float = 60.0
    closed_loop_gain: float = 0.5
    closed_loop_limit: float = 0.25
    adaptive: bool = True
    adaptive_time_constant: float = 10.0
    adaptive_limit: float = 0.20
    knock_retard: bool = True
    knock_step: float = 1.5
    knock_recovery: float = 2.0
    knock_max_retard: float = 12.0
    rev_limiter: bool = True
    rev_limit_rpm: float = 5600.0
    rev_limit_hysteresis: float = 100.0

    def __post_init__(self):
        for name in (
            "accel_threshold",
            "accel_decay",
            "decel_threshold",
            "decel_decay",
            "closed_loop_gain",
            "adaptive_time_constant",
            "knock_recovery",
            "rev_limit_rpm",
        ):
            value = getattr(self, name)
            if not value > 0.0:
                raise ValueError(f"{name} must be positive, got {value!r}")
        for name in ("closed_loop_limit", "adaptive_limit", "accel_limit"):
            value = getattr(self, name)
            if not 0.0 <= value < 1.0:
                raise ValueError(
                    f"{name} must be a fraction from 0 to below 1, got "
                    f"{value!r}; 0.25 means ±25 %"
                )

    def only(self, *names: str) -> EcuFeatures:
        """Return a copy with every switch off except `names`.

        Valid names are ``accel_enrichment``, ``decel_fuel_cut``,
        ``closed_loop``, ``adaptive``, ``knock_retard`` and
        ``rev_limiter``.
        """
        unknown = set(names) - set(FEATURE_SWITCHES)
        if unknown:
            raise ValueError(
                f"unknown ECU features {sorted(unknown)}; valid names "
                f"are {', '.join(FEATURE_SWITCHES)}"
            )
        switches = {name: name in names for name in FEATURE_SWITCHES}
        return dataclasses.replace(self, **switches)


#: The on/off switches of :class:`EcuFeatures`.
FEATURE_SWITCHES = (
    "accel_enrichment",
    "decel_fuel_cut",
    "closed_loop",
    "adaptive",
    "knock_retard",
    "rev_limiter",
)


# ---------------------------------------------------------------------------
# ECU class
# ---------------------------------------------------------------------------


def _check_table(table: xr.DataArray, name: str) -> xr.DataArray:
    if not isinstance(table, xr.DataArray):
        raise TypeError(
            f"{name} must be an xarray.DataArray with dims ('rpm', 'map'),"
            f" got {type(table).__name__}"
        )
    if table.dims != ("rpm", "map"):
        raise ValueError(
            f"{name} must have dims ('rpm', 'map'), got {table.dims}"
        )
    _check_axis(np.asarray(table["rpm"].values, float), f"{name}.rpm")
    _check_axis(np.asarray(table["map"].values, float), f"{name}.map")
    if not np.all(np.isfinite(table.values)):
        raise ValueError(
            f"{name} contains NaN or infinite cells; fill them before "
            "building an ECU"
        )
    return table.copy(deep=True)


class ECU:
    """Speed-density ECU holding VE and AFR-target tables.

    Parameters
    ----------
    ve_front, ve_rear : xarray.DataArray
        VE tables [%] with dims ``("rpm", "map")``, coordinates rpm
        [rpm] and map [kPa]. On a four-cylinder engine the front table
        serves cylinders 1-2 and the rear table cylinders 3-4.
    afr_target : xarray.DataArray
        Desired air-fuel ratio [1] with dims ``("rpm", "map")``; its
        axes may differ from the VE tables'.
    displacement : float
        Total swept volume of the engine [m³].
    n_cylinders : int
        Number of cylinders, 2 or 4.
    stoichiometric_afr : float
        Stoichiometric air-fuel mass ratio of the fuel [1]; 14.7 for
        gasoline.
    spark : xarray.DataArray, optional
        Spark advance table [deg] on ("rpm", "map"); None means the
        simulator fires at MBT.
    features : EcuFeatures, optional
        Behaviours beyond the tables; default :class:`EcuFeatures()`.
    injector_flow : float, optional
        Injector static flow the ECU assumes [kg/s]; None for the
        engine's true value.
    injector_dead_time : float, optional
        Injector dead time the ECU assumes [s]; None for the engine's
        true value.

    Notes
    -----
    Tables are deep-copied on construction, so an ECU never shares a
    table with its caller or with another ECU.
    """

    def __init__(
        self,
        ve_front: xr.DataArray,
        ve_rear: xr.DataArray,
        afr_target: xr.DataArray,
        displacement: float,
        n_cylinders: int = 2,
        stoichiometric_afr: float = STOICHIOMETRIC_AFR_GASOLINE,
        spark: xr.DataArray | None = None,
        features: EcuFeatures | None = None,
        injector_flow: float | None = None,
        injector_dead_time: float | None = None,
    ) -> None:
        if n_cylinders not in (2, 4):
            raise ValueError(
                f"n_cylinders must be 2 or 4, got {n_cylinders!r}"
            )
        if not 1e-5 < displacement < 1e-2:
            raise ValueError(
                f"displacement must be in m³ (1e-5 to 1e-2), got "
                f"{displacement!r}; 1868 cm³ is 1.868e-3 m³"
            )
        if not 5.0 < stoichiometric_afr < 20.0:
            raise ValueError(
                "stoichiometric_afr must be between 5 and 20, got "
                f"{stoichiometric_afr!r}"
            )
        self.ve_front = _check_table(ve_front, "ve_front")
        self.ve_rear = _check_table(ve_rear, "ve_rear")
        self.afr_target = _check_table(afr_target, "afr_target")
        self.displacement = float(displacement)
        self.n_cylinders = int(n_cylinders)
        self.stoichiometric_afr = float(stoichiometric_afr)
        self.spark = None if spark is None else _check_table(spark, "spark")
        self.features = EcuFeatures() if features is None else features
        if not isinstance(self.features, EcuFeatures):
            raise TypeError(
                "features must be an EcuFeatures, got "
                f"{type(self.features).__name__}"
            )
        if injector_flow is not None and not 1e-4 < injector_flow < 0.1:
            raise ValueError(
                "injector_flow must be in kg/s (1e-4 to 0.1), got "
                f"{injector_flow!r}; 4.5 g/s is 4.5e-3"
            )
        if injector_dead_time is not None and not (
            0.0 <= injector_dead_time < 0.01
        ):
            raise ValueError(
                "injector_dead_time must be in s (0 to 0.01), got "
                f"{injector_dead_time!r}; 0.9 ms is 9e-4"
            )
        self.injector_flow = injector_flow
        self.injector_dead_time = injector_dead_time

    def __repr__(self) -> str:
        return (
            f"ECU(displacement={self.displacement:.4g} m³, "
            f"n_cylinders={self.n_cylinders}, VE table "
            f"{self.ve_front.shape}, AFR table {self.afr_target.shape})"
        )

    @property
    def cylinder_volume(self) -> float:
        """Swept volume of one cylinder [m³]."""
        return self.displacement / self.n_cylinders

    def ve_table(self, cylinder: str) -> xr.DataArray:
        """Return the VE table [%] of ``"front"`` or ``"rear"``."""
        if cylinder == "front":
            return self.ve_front
        if cylinder == "rear":
            return self.ve_rear
        raise ValueError(
            f"cylinder must be one of {CYLINDERS}, got {cylinder!r}"
        )

    def ve(self, cylinder: str, rpm, map_kpa) -> np.ndarray:
        """Look up the VE [%] the ECU uses at engine speed [rpm], MAP [kPa]."""
        return bilinear_lookup(self.ve_table(cylinder), rpm, map_kpa)

    def target_afr(self, rpm, map_kpa) -> np.ndarray:
        """Look up the commanded air-fuel ratio [1]."""
        return bilinear_lookup(self.afr_target, rpm, map_kpa)

    def target_lambda(self, rpm, map_kpa) -> np.ndarray:
        """Look up the commanded lambda [1], AFR target over stoichiometric."""
        return self.target_afr(rpm, map_kpa) / self.stoichiometric_afr

    def air_mass_per_cycle(
        self, cylinder: str, rpm, map_kpa, intake_temperature_c
    ) -> np.ndarray:
        """Compute the air mass [kg] per cylinder per cycle the ECU assumes.

        Uses :func:`speed_density_air_mass` with the table VE of
        `cylinder` at engine speed `rpm` [rpm], MAP `map_kpa` [kPa] and
        intake air temperature `intake_temperature_c` [°C].
        """
        ve = self.ve(cylinder, rpm, map_kpa)
        return speed_density_air_mass(
            ve, map_kpa, self.cylinder_volume, intake_temperature_c
        )

    def fuel_mass_per_cycle(
        self, cylinder: str, rpm, map_kpa, intake_temperature_c
    ) -> np.ndarray:
        """Compute the fuel mass the ECU injects per cylinder per cycle.

        Parameters
        ----------
        cylinder : {"front", "rear"}
            Cylinder (or cylinder pair on a four-cylinder engine).
        rpm : array_like
            Engine speed [rpm].
        map_kpa : array_like
            Manifold absolute pressure [kPa].
        intake_temperature_c : array_like
            Intake air temperature [°C].

        Returns
        -------
        numpy.ndarray
            Fuel mass per cylinder per cycle [kg].

        Notes
        -----
        .. math:: m_{fuel} = \\frac{VE_{table} \\cdot p_{MAP}
                  \\cdot V_{cyl}}{R_{air} T_{intake} \\cdot AFR_{target}}

        No closed-loop trim, acceleration enrichment or deceleration
        fuel cut is modelled.
        """
        air = self.air_mass_per_cycle(
            cylinder, rpm, map_kpa, intake_temperature_c
        )
        return air / self.target_afr(rpm, map_kpa)

    def with_ve(
        self,
        ve_front: xr.DataArray | None = None,
        ve_rear: xr.DataArray | None = None,
    ) -> ECU:
        """Return a new ECU with the given VE tables, copying the others."""
        return ECU(
            ve_front=self.ve_front if ve_front is None else ve_front,
            ve_rear=self.ve_rear if ve_rear is None else ve_rear,
            afr_target=self.afr_target,
            displacement=self.displacement,
            n_cylinders=self.n_cylinders,
            stoichiometric_afr=self.stoichiometric_afr,
            spark=self.spark,
            features=self.features,
            injector_flow=self.injector_flow,
            injector_dead_time=self.injector_dead_time,
        )

    def with_features(self, features=None, **changes) -> ECU:
        """Return a copy with other behaviours.

        Parameters
        ----------
        features : EcuFeatures, optional
            Replaces the whole set; default the current one.
        **changes
            Fields of :class:`EcuFeatures` to change, for example
            ``closed_loop=True``.
        """
        base = self.features if features is None else features
        copy = self.with_ve()
        copy.features = dataclasses.replace(base, **changes)
        return copy

    def spark_advance(self, rpm, map_kpa) -> np.ndarray:
        """Look up the spark advance [deg]; NaN when the ECU has no table."""
        if self.spark is None:
            return np.full(np.shape(rpm), np.nan)
        return bilinear_lookup(self.spark, rpm, map_kpa)

    @classmethod
    def from_tune(
        cls,
        tune,
        *,
        n_cylinders: int = 2,
        stoichiometric_afr: float = STOICHIOMETRIC_AFR_GASOLINE,
    ) -> ECU:
        """Build an ECU from a tune object.

        Parameters
        ----------
        tune : object
            Any object with attributes ``ve_front``, ``ve_rear`` [%],
            ``afr_target`` [1] (DataArrays with dims ``("rpm", "map")``)
            and ``displacement`` [m³]. An ``n_cylinders`` attribute, if
            present, overrides the argument.
        n_cylinders : int
            Number of cylinders when the tune has no ``n_cylinders``.
        stoichiometric_afr : float
            Stoichiometric air-fuel ratio of the fuel [1].
        """
        missing = [
            name
            for name in ("ve_front", "ve_rear", "afr_target", "displacement")
            if getattr(tune, name, None) is None
        ]
        if missing:
            raise ValueError(
                f"tune of type {type(tune).__name__} lacks {missing}; an "
                "ECU needs ve_front, ve_rear, afr_target and displacement"
            )
        return cls(
            ve_front=tune.ve_front,
            ve_rear=tune.ve_rear,
            afr_target=tune.afr_target,
            displacement=float(tune.displacement),
            n_cylinders=int(getattr(tune, "n_cylinders", n_cylinders)),
            stoichiometric_afr=stoichiometric_afr,
        )


# ---------------------------------------------------------------------------
# Base tables for simulation
# ---------------------------------------------------------------------------


def harley_delphi_axes():
    """Return the VE and AFR-target axes of a Harley Delphi tune.

    The axes come from a 2016 110 CID Harley-Davidson tune with
    MAP-based VE tables; padding repeats at the end of each axis are
    removed.

    Returns
    -------
    ve_axes : tuple of numpy.ndarray
        ``(rpm [rpm], map [kPa])`` of the VE tables, 21 × 17.
    afr_axes : tuple of numpy.ndarray
        ``(rpm [rpm], map [kPa])`` of the AFR-target table, 17 × 11.
    """
    ve_rpm, ve_map, afr_rpm, afr_map = _template_axes()
    return (
        (np.array(ve_rpm, float), np.array(ve_map, float)),
        (np.array(afr_rpm, float), np.array(afr_map, float)),
    )


@functools.cache
def _template_axes():
    """Read the axes once from the bundled template tune."""
    from dynoai_lab.io.pvv import read_pvv

    tune = read_pvv(TEMPLATE_TUNE)
    ve = tune.ve_front
    if tune.ve_load != "map":
        raise ValueError(
            f"{TEMPLATE_TUNE} must have MAP-based VE tables, got "
            f"{tune.ve_load!r}"
        )
    afr = tune.afr_target
    return (
        tuple(ve["rpm"].values),
        tuple(ve["map"].values),
        tuple(afr["rpm"].values),
        tuple(afr["map"].values),
    )


def _scaled_axes(rev_limit_rpm: float):
    """Stretch the Harley rpm axes to cover a higher rev limit."""
    ve_axes, afr_axes = harley_delphi_axes()
    if rev_limit_rpm <= ve_axes[0][-1]:
        return ve_axes, afr_axes
    scale = rev_limit_rpm / ve_axes[0][-1]
    logger.debug("stretching the rpm axes by %.3f", scale)

    def stretch(rpm):
        return np.round(rpm * scale / 50.0) * 50.0

    return (stretch(ve_axes[0]), ve_axes[1]), (
        stretch(afr_axes[0]),
        afr_axes[1],
    )


def _table(values, rpm, map_kpa, *, units, long_name, source_name):
    return xr.DataArray(
        np.asarray(values, dtype=float),
        coords={
            "rpm": ("rpm", rpm, {"units": "rpm", "long_name": "engine speed"}),
            "map": (
                "map",
                map_kpa,
                {"units": "kPa", "long_name": "manifold absolute pressure"},
            ),
        },
        dims=("rpm", "map"),
        attrs={
            "units": units,
            "long_name": long_name,
            "source_name": source_name,
        },
    )


def _smoothstep(x):
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def default_afr_target(rpm, map_kpa, *, rev_limit_rpm: float = 6000.0):
    """Compute a typical AFR target [1] for a gasoline V-twin.

    Parameters
    ----------
    rpm : array_like
        Engine speed [rpm].
    map_kpa : array_like
        Manifold absolute pressure [kPa].
    rev_limit_rpm : float
        Engine speed [rpm] at which the enrichment reaches its richest.

    Returns
    -------
    numpy.ndarray
        Air-fuel ratio [1]: 14.6 at light load and cruise, blending to
        13.2 at wide-open throttle and low rpm or 13.0 at high rpm.

    Notes
    -----
    Between MAP :math:`p_0` = 65 kPa and :math:`p_1` = 95 kPa the
    blend is the smoothstep :math:`s(x) = 3x^2 - 2x^3` of
    :math:`x = (p - p_0)/(p_1 - p_0)`:

    .. math:: AFR = 14.6 - (14.6 - AFR_{WOT}(n)) \\cdot s(x)

    The values are typical of factory Harley-Davidson tunes, not read
    from one.
    """
    rpm = np.asarray(rpm, dtype=float)
    map_kpa = np.asarray(map_kpa, dtype=float)
    rpm_fraction = np.clip((rpm - 750.0) / (rev_limit_rpm - 750.0), 0, 1)
    wot_afr = (
        _WOT_AFR_LOW_RPM
        + (_WOT_AFR_HIGH_RPM - _WOT_AFR_LOW_RPM) * rpm_fraction
    )
    blend = _smoothstep(
        (map_kpa - _ENRICHMENT_MAP_START)
        / (_ENRICHMENT_MAP_FULL - _ENRICHMENT_MAP_START)
    )
    return _CRUISE_AFR - (_CRUISE_AFR - wot_afr) * blend


def smooth_ve_error(
    rpm,
    map_kpa,
    *,
    amplitude_range: tuple[float, float] = (0.08, 0.15),
    sign: int | None = None,
    seed: int,
) -> np.ndarray:
    """Draw a smooth fractional VE error field on a table grid.

    Parameters
    ----------
    rpm : array_like
        Engine-speed axis [rpm], 1-D.
    map_kpa : array_like
        MAP axis [kPa], 1-D.
    amplitude_range : (float, float)
        Smallest and largest absolute error [1], 0.08 and 0.15 for an
        error of 8 to 15 %.
    sign : {1, -1, None}
        Sign of the error: +1 makes the table VE too high (rich), -1 too
        low (lean), None draws it from `seed`.
    seed : int
        Seed of ``numpy.random.default_rng``.

    Returns
    -------
    numpy.ndarray
        Error ``e`` [1] of shape ``(len(rpm), len(map_kpa))`` with
        ``amplitude_range[0] <= |e| <= amplitude_range[1]``; a table
        with this error contains ``VE_true · (1 + e)``.

    Notes
    -----
    A continuous field whose magnitude never falls below the lower
    bound cannot change sign, so the sign is one value per field. The
    magnitude is a sum of three random low-frequency cosines over the
    normalised axes, rescaled to fill `amplitude_range`.
    """
    low, high = amplitude_range
    if not 0.0 <= low <= high < 1.0:
        raise ValueError(
            "amplitude_range must satisfy 0 <= low <= high < 1, got "
            f"{amplitude_range!r}"
        )
    if sign not in (1, -1, None):
        raise ValueError(f"sign must be 1, -1 or None, got {sign!r}")
    rng = np.random.default_rng(seed)
    rpm = np.asarray(rpm, dtype=float)
    map_kpa = np.asarray(map_kpa, dtype=float)

    # Normalised coordinates on [0, 1] so the pattern suits any axis.
    x = (rpm - rpm.min()) / max(np.ptp(rpm), 1e-12)
    y = (map_kpa - map_kpa.min()) / max(np.ptp(map_kpa), 1e-12)
    xx, yy = np.meshgrid(x, y, indexing="ij")

    field = np.zeros_like(xx)
    for _ in range(3):
        kx, ky = rng.uniform(0.3, 1.5, size=2)
        phase = rng.uniform(0.0, 2.0 * np.pi)
        field += np.cos(np.pi * (kx * xx + ky * yy) + phase)

    # Rescale to [0, 1], then into the amplitude range.
    span = np.ptp(field)
    unit = (field - field.min()) / span if span > 0 else np.zeros_like(xx)
    magnitude = low + (high - low) * unit
    if sign is None:
        sign = 1 if rng.uniform() < 0.5 else -1
    return sign * magnitude


def make_base_ecu(
    engine,
    *,
    ve_error=None,
    seed: int = 0,
    true_ve: Callable | None = None,
    axes=None,
) -> ECU:
    """Build an ECU whose tables follow an engine's true VE.

    Parameters
    ----------
    engine : dynoai_lab.sim.engines.Engine
        Engine parameter set.
    ve_error : None, float or (float, float)
        None gives VE tables equal to the true VE. A float ``e`` scales
        both tables by ``1 + e`` (for example -0.10 for 10 % lean). A
        pair is an amplitude range for :func:`smooth_ve_error`, drawn
        independently for the front and rear tables.
    seed : int
        Seed for the smooth error fields.
    true_ve : callable, optional
        ``f(engine, cylinder, rpm, map_kpa) -> VE [%]``; defaults to
        :func:`dynoai_lab.sim.engines.true_ve`.
    axes : ((rpm, map), (rpm, map)), optional
        VE and AFR-target axes [rpm], [kPa]. Defaults to
        :func:`harley_delphi_axes`, with the rpm axes stretched to the
        engine's rev limit when it exceeds 8000 rpm.

    Returns
    -------
    ECU
        Tables on the chosen axes; the AFR target follows
        :func:`default_afr_target` and spark is at MBT or just below the
        knock border (:func:`dynoai_lab.sim.engines.base_spark_advance`).
        Features are the defaults of :class:`EcuFeatures`, with the rev
        limit, closed-throttle fuel-cut speed and closed-loop speed range
        set from the engine.
    """
    if true_ve is None:
        from dynoai_lab.sim.engines import true_ve

    if axes is None:
        axes = _scaled_axes(engine.rev_limit_rpm)
    (ve_rpm, ve_map), (afr_rpm, afr_map) = axes
    ve_rpm = np.asarray(ve_rpm, float)
    ve_map = np.asarray(ve_map, float)
    grid_rpm, grid_map = np.meshgrid(ve_rpm, ve_map, indexing="ij")

    errors = _ve_errors(ve_error, ve_rpm, ve_map, seed)
    tables = {}
    for cylinder, error in zip(CYLINDERS, errors, strict=True):
        values = true_ve(engine, cylinder, grid_rpm, grid_map) * (1 + error)
        tables[cylinder] = _table(
            values,
            ve_rpm,
            ve_map,
            units="%",
            long_name=f"volumetric efficiency, {cylinder} cylinder",
            source_name=f"VE {cylinder} (simulated base tune)",
        )

    afr_rpm = np.asarray(afr_rpm, float)
    afr_map = np.asarray(afr_map, float)
    afr_grid_rpm, afr_grid_map = np.meshgrid(afr_rpm, afr_map, indexing="ij")
    afr = default_afr_target(
        afr_grid_rpm, afr_grid_map, rev_limit_rpm=afr_rpm[-1]
    )
    afr_table = _table(
        afr,
        afr_rpm,
        afr_map,
        units="1",
        long_name="air-fuel ratio target",
        source_name="AFR target (simulated base tune)",
    )
    from dynoai_lab.sim.engines import base_spark_advance

    spark_table = _table(
        base_spark_advance(engine, grid_rpm, grid_map),
        ve_rpm,
        ve_map,
        units="deg",
        long_name="spark advance before top dead centre",
        source_name="spark advance (simulated base tune, MBT or knock "
        "limited)",
    )
    return ECU(
        ve_front=tables["front"],
        ve_rear=tables["rear"],
        afr_target=afr_table,
        displacement=engine.displacement,
        n_cylinders=engine.n_cylinders,
        spark=spark_table,
        features=base_features(engine),
    )


def base_features(engine) -> EcuFeatures:
    """Return default ECU behaviours scaled to an engine's speed range.

    The rev limiter sits at the engine's rev limit, the closed-throttle
    fuel cut starts 600 rpm above idle, and closed loop runs up to 70 %
    of the rev limit.
    """
    return EcuFeatures(
        rev_limit_rpm=float(engine.rev_limit_rpm),
        decel_cut_rpm=float(engine.idle_rpm) + 600.0,
        closed_loop_max_rpm=0.7 * float(engine.rev_limit_rpm),
    )


def _ve_errors(ve_error, rpm, map_kpa, seed):
    """Return the (front, rear) fractional error arrays or scalars."""
    if ve_error is None:
        return 0.0, 0.0
    if np.isscalar(ve_error):
        error = float(ve_error)
        if not -0.9 < error < 0.9:
            raise ValueError(
                f"ve_error must be a fraction between -0.9 and 0.9, got "
                f"{ve_error!r}; -0.10 means 10 % low"
            )
        return error, error
    if len(ve_error) == 2:
        seeds = np.random.SeedSequence(seed).generate_state(2)
        return tuple(
            smooth_ve_error(
                rpm,
                map_kpa,
                amplitude_range=tuple(ve_error),
                seed=int(s),
            )
            for s in seeds
        )
    raise ValueError(
        "ve_error must be None, a fraction such as -0.1 or an amplitude "
        f"range such as (0.08, 0.15), got {ve_error!r}"
    )
