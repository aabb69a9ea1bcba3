"""Named engine parameter sets and the engines' true VE surfaces.

Each set is a frozen :class:`Engine` with its published figures and the
source they come from. Figures marked "estimate" were not found in a
published source. The simulator derives two hidden constants from the
rated figures (see :func:`calibration`), so every set reproduces its
rated torque and power at wide-open throttle without hand tuning.

Cylinder naming: ``"front"`` and ``"rear"`` on a V-twin; on a
four-cylinder engine ``"front"`` is cylinders 1-2 and ``"rear"`` is
cylinders 3-4, matching :class:`dynoai_lab.ecu.ECU`.
"""

from __future__ import annotations

import functools
import logging
import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import brentq

from dynoai_lab.sim import physics
from dynoai_lab.units import HP, INCH, LBF_FT

logger = logging.getLogger(__name__)

#: Reference weather for rated figures: SAE J1349 dry pressure [kPa]
#: and temperature [°C].
RATING_PRESSURE_KPA = 99.0
RATING_TEMPERATURE_C = 25.0

# Front-rear VE difference: front = base (1 + d), rear = base (1 - d),
# with d a smooth pattern of this peak size [1].
_CYLINDER_SPLIT = 0.025
# Lowest VE shape factor, so extrapolation far off the table stays
# positive [1].
_MIN_SHAPE = 0.3


@dataclass(frozen=True)
class Engine:
    """Parameter set of a four-stroke gasoline motorcycle engine.

    Attributes
    ----------
    name : str
        Short key, for example ``"m8-114"``.
    description : str
        One-line description.
    displacement : float
        Total swept volume [m³].
    bore, stroke : float
        Cylinder bore and piston stroke [m].
    n_cylinders : int
        Number of cylinders.
    compression_ratio : float
        Geometric compression ratio [1].
    rated_power : float
        Crankshaft power the model is calibrated to [W]: the published
        figure, or where that was measured at the rear wheel
        (`wheel_power`), an estimate consistent with it.
    rated_power_rpm : float
        Engine speed of rated power [rpm].
    rated_torque : float
        Published crankshaft torque [N·m].
    rated_torque_rpm : float
        Engine speed of rated torque [rpm].
    rev_limit_rpm, idle_rpm : float
        Rev limiter and idle speed [rpm].
    primary_ratio, final_ratio : float
        Primary and final drive reductions [1].
    gear_ratios : tuple of float
        Gearbox ratios, first to top [1].
    tyre_radius : float
        Rolling radius of the rear tyre [m].
    engine_inertia : float
        Crank, clutch and gearbox inertia at crank speed [kg·m²].
    wheel_inertia : float
        Rear wheel, tyre and brake disc inertia [kg·m²].
    driveline_efficiency : float
        Crank-to-rear-axle efficiency [1].
    ve_peak : float
        True VE at wide-open throttle and `ve_peak_rpm` [%].
    ve_peak_rpm : float
        Engine speed of maximum VE [rpm].
    ve_idle_fraction : float
        Wide-open-throttle VE at idle speed relative to `ve_peak` [1].
    throttle_flow_rpm : float
        Intake flow capacity, see
        :func:`dynoai_lab.sim.physics.static_manifold_pressure` [rpm].
    throttle_leak_fraction : float
        Closed-throttle flow area relative to wide open [1].
    manifold_volume : float
        Intake volume between throttle and valves [m³].
    intake_heating : float
        Rise of intake air temperature above ambient [K].
    engine_temperature_c : float
        Cylinder-head or coolant temperature when warm [°C].
    exhaust_delay_volume : float
        Effective exhaust volume between valve and wideband sensor
        [m³], see :func:`dynoai_lab.sim.sensor.transport_delay`.
    source : str
        Where the published figures come from.
    validity : str
        Operating range in which the set is meant to be used.
    tyre_size : str
        Rear tyre size as commonly fitted, for example ``"240/40R18"``;
        `tyre_radius` is its loaded rolling radius.
    injector_flow : float
        Static flow of one injector [kg/s].
    injector_dead_time : float
        Injector opening delay at 13.5 V [s].
    wall_film_fraction : float
        Share of injected fuel that wets the port wall at 100 kPa, X of
        the x-tau model [1].
    wall_film_time_constant : float
        Evaporation time constant of the wall film at 1000 rpm [s].
    knock_margin : float
        Knock border minus MBT advance at wide-open throttle, zero
        speed and 35 °C intake air [deg], see
        :func:`dynoai_lab.sim.physics.knock_border_advance`.
    rear_knock_offset : float
        Rear cylinder's knock border relative to the front [deg].
    exhaust_back_pressure : float
        Back pressure above barometric at wide-open throttle and rated
        power speed [kPa].
    tyre_slip_stiffness : float
        Longitudinal force per unit slip of the strapped-down rear tyre
        [N].
    wheel_power : float or None
        Published power measured at the rear wheel on a chassis dyno
        [W], for a set with no published crankshaft power; it is then
        the cited power target, compared with the simulated power
        after the driveline.
    wheel_power_rpm : float or None
        Engine speed of `wheel_power` [rpm].
    """

    name: str
    description: str
    displacement: float
    bore: float
    stroke: float
    n_cylinders: int
    compression_ratio: float
    rated_power: float
    rated_power_rpm: float
    rated_torque: float
    rated_torque_rpm: float
    rev_limit_rpm: float
    idle_rpm: float
    primary_ratio: float
    final_ratio: float
    gear_ratios: tuple[float, ...]
    tyre_radius: float
    engine_inertia: float
    wheel_inertia: float
    driveline_efficiency: float
    ve_peak: float
    ve_peak_rpm: float
    ve_idle_fraction: float
    throttle_flow_rpm: float
    throttle_leak_fraction: float
    manifold_volume: float
    intake_heating: float
    engine_temperature_c: float
    exhaust_delay_volume: float
    source: str
    validity: str
    tyre_size: str = ""
    injector_flow: float = 4.5e-3
    injector_dead_time: float = 0.9e-3
    wall_film_fraction: float = 0.25
    wall_film_time_constant: float = 0.25
    knock_margin: float = -6.0
    rear_knock_offset: float = -1.5
    exhaust_back_pressure: float = 10.0
    tyre_slip_stiffness: float = 6.0e4
    wheel_power: float | None = None
    wheel_power_rpm: float | None = None

    @property
    def cylinder_volume(self) -> float:
        """Swept volume of one cylinder [m³]."""
        return self.displacement / self.n_cylinders

    def overall_ratio(self, gear: int | None = None) -> float:
        """Return crank-to-rear-wheel speed ratio in `gear` (1-based)."""
        if gear is None:
            gear = len(self.gear_ratios)
        if not 1 <= gear <= len(self.gear_ratios):
            raise ValueError(
                f"gear must be 1 to {len(self.gear_ratios)} for "
                f"{self.name}, got {gear!r}"
            )
        return (
            self.primary_ratio
            * self.gear_ratios[gear - 1]
            * (self.final_ratio)
        )


def _cylinder_volume(bore: float, stroke: float, n_cylinders: int) -> float:
    return math.pi / 4.0 * bore**2 * stroke * n_cylinders


_ENGINES: dict[str, Engine] = {}


def _register(engine: Engine) -> Engine:
    _ENGINES[engine.name] = engine
    return engine


_register(
    Engine(
        name="m8-114",
        description="Milwaukee-Eight 114 class 45° V-twin, 1868 cm³",
        displacement=_cylinder_volume(0.102, 0.1143, 2),
        bore=0.102,
        stroke=0.1143,
        n_cylinders=2,
        compression_ratio=10.5,
        rated_power=94.0 * HP,
        rated_power_rpm=5020.0,
        rated_torque=161.0,
        rated_torque_rpm=3000.0,
        rev_limit_rpm=5600.0,
        idle_rpm=850.0,
        primary_ratio=46.0 / 34.0,
        final_ratio=66.0 / 32.0,
        gear_ratios=(3.34, 2.31, 1.72, 1.39, 1.18, 1.00),
        tyre_radius=0.32,
        tyre_size="240/40R18",
        injector_flow=4.5e-3,
        knock_margin=-6.0,
        engine_inertia=0.12,
        wheel_inertia=0.9,
        driveline_efficiency=0.90,
        ve_peak=92.0,
        ve_peak_rpm=3000.0,
        ve_idle_fraction=0.72,
        throttle_flow_rpm=4.0 * 5020.0,
        throttle_leak_fraction=0.015,
        manifold_volume=1.2e-3,
        intake_heating=10.0,
        engine_temperature_c=110.0,
        exhaust_delay_volume=3.2 * _cylinder_volume(0.102, 0.1143, 1),
        source=(
            "Harley-Davidson Fat Boy 114 specification as listed at "
            "https://winenfood.com/a-look-at-the-harley-fat-boy-"
            "specifications: 1868 cm³, bore × stroke 102 × 114.3 mm, "
            "compression 10.5:1, 94 hp at 5020 rpm, 119 lbf·ft "
            "(161 N·m) at 3000 rpm. Autocar India (26 Aug 2016) gives "
            "165 N·m at 3250 rpm for the 2017 CVO version. Rev limit, "
            "idle, gear and drive ratios, tyre size and radius, inertias, "
            "driveline efficiency, VE, injector, wall-film, knock and "
            "exhaust figures are estimates."
        ),
        validity="750-5600 rpm, MAP 10-105 kPa, gasoline, warm engine",
    )
)

_register(
    Engine(
        name="tc-103",
        description="Twin Cam 103 45° V-twin, 1690 cm³",
        displacement=_cylinder_volume(3.875 * INCH, 4.375 * INCH, 2),
        bore=3.875 * INCH,
        stroke=4.375 * INCH,
        n_cylinders=2,
        compression_ratio=9.7,
        rated_power=60.0e3,
        rated_power_rpm=5000.0,
        rated_torque=104.7 * LBF_FT,
        rated_torque_rpm=3500.0,
        rev_limit_rpm=5600.0,
        idle_rpm=1000.0,
        primary_ratio=46.0 / 34.0,
        final_ratio=68.0 / 32.0,
        gear_ratios=(3.34, 2.31, 1.72, 1.39, 1.18, 1.00),
        tyre_radius=0.32,
        tyre_size="180/65B16",
        injector_flow=4.2e-3,
        knock_margin=-5.0,
        engine_inertia=0.12,
        wheel_inertia=0.9,
        driveline_efficiency=0.90,
        ve_peak=88.0,
        ve_peak_rpm=3500.0,
        ve_idle_fraction=0.72,
        throttle_flow_rpm=4.0 * 5000.0,
        throttle_leak_fraction=0.015,
        manifold_volume=1.1e-3,
        intake_heating=12.0,
        engine_temperature_c=120.0,
        exhaust_delay_volume=3.2
        * _cylinder_volume(3.875 * INCH, 4.375 * INCH, 1),
        wheel_power=72.8 * HP,
        wheel_power_rpm=5500.0,
        source=(
            "Bore 3 7/8 in and stroke 4 3/8 in for 1690 cm³: Cycle World, "
            "'Twin-Cam Monster', September 2001. Peak torque 104.7 lbf·ft "
            "(2014 air-cooled High Output Twin Cam 103): Asphalt & Rubber "
            "on the 2014 Project Rushmore models. Power 72.8 hp at the "
            "rear wheel at 5500 rpm: Motorcyclist's dyno test of the 2002 "
            "Screamin' Eagle Road King, the first factory 103 "
            "(98.4 x 111.1 mm, 9.0:1), 'Screamin' Eagle Road King'. "
            "Crankshaft power (60 kW at 5000 rpm, an estimate consistent "
            "with that at about 90 % driveline efficiency), torque rpm "
            "(3500), compression ratio 9.7:1 as reported for the 103, and "
            "all drive, tyre, VE, injector, wall-film, knock and exhaust "
            "figures are estimates."
        ),
        validity="750-5600 rpm, MAP 10-105 kPa, gasoline, warm engine",
    )
)

_register(
    Engine(
        name="i4-1000",
        description="Inline-four 999 cm³ sportbike (2010 BMW S 1000 RR)",
        displacement=_cylinder_volume(0.080, 0.0497, 4),
        bore=0.080,
        stroke=0.0497,
        n_cylinders=4,
        compression_ratio=13.0,
        rated_power=142.0e3,
        rated_power_rpm=13000.0,
        rated_torque=112.0,
        rated_torque_rpm=9750.0,
        rev_limit_rpm=14200.0,
        idle_rpm=1150.0,
        primary_ratio=1.652,
        final_ratio=44.0 / 17.0,
        gear_ratios=(2.647, 2.091, 1.727, 1.500, 1.360, 1.261),
        tyre_radius=0.32,
        tyre_size="190/55ZR17",
        injector_flow=4.0e-3,
        injector_dead_time=0.7e-3,
        wall_film_fraction=0.25,
        wall_film_time_constant=0.2,
        knock_margin=-4.0,
        rear_knock_offset=-0.5,
        exhaust_back_pressure=15.0,
        engine_inertia=0.05,
        wheel_inertia=0.7,
        driveline_efficiency=0.92,
        ve_peak=112.0,
        ve_peak_rpm=11500.0,
        ve_idle_fraction=0.65,
        throttle_flow_rpm=4.0 * 13000.0,
        throttle_leak_fraction=0.010,
        manifold_volume=1.5e-3,
        intake_heating=8.0,
        engine_temperature_c=90.0,
        exhaust_delay_volume=3.2 * _cylinder_volume(0.080, 0.0497, 1),
        source=(
            "BMW claims for the 2010 S 1000 RR: 142 kW at 13000 rpm, "
            "112 N·m at 9750 rpm (Australian launch report, "
            "autocargotransport.blogspot.com, May 2010); bore × stroke "
            "80 × 49.7 mm and compression 13.0:1 (Motorcyclist, Sept "
            "2009); red line 14200 rpm (John Cabot University course "
            "page on the S1000RR). Gear ratios, primary ratio, tyre, "
            "inertias, efficiency, VE, injector, wall-film, knock and "
            "exhaust figures are estimates. ECU tables share the "
            "Harley axes with the rpm axis stretched to 14200 rpm."
        ),
        validity="1150-14200 rpm, MAP 10-105 kPa, gasoline, warm engine",
    )
)


def engine_names() -> list[str]:
    """Return the names of the built-in engine parameter sets."""
    return sorted(_ENGINES)


def get_engine(name: str) -> Engine:
    """Return the engine parameter set called `name`.

    Raises
    ------
    ValueError
        If `name` is unknown; the message lists the valid names.
    """
    try:
        return _ENGINES[name]
    except KeyError:
        raise ValueError(
            f"unknown engine {name!r}; valid names are "
            f"{', '.join(engine_names())}"
        ) from None


# ---------------------------------------------------------------------------
# True VE surface
# ---------------------------------------------------------------------------


def _rpm_shape(engine: Engine, rpm, high_rpm_drop: float):
    """Return VE relative to its peak along engine speed [1].

    Two quadratics meeting with zero slope at ``ve_peak_rpm``: below it
    the factor falls to ``ve_idle_fraction`` at idle, above it by
    `high_rpm_drop` at the rev limit.
    """
    rpm = np.asarray(rpm, float)
    low_span = engine.ve_peak_rpm - engine.idle_rpm
    high_span = engine.rev_limit_rpm - engine.ve_peak_rpm
    below = (engine.ve_peak_rpm - rpm) / low_span
    above = (rpm - engine.ve_peak_rpm) / high_span
    shape = np.where(
        rpm <= engine.ve_peak_rpm,
        1.0 - (1.0 - engine.ve_idle_fraction) * below**2,
        1.0 - high_rpm_drop * above**2,
    )
    return np.maximum(shape, _MIN_SHAPE)


def _cylinder_split(engine: Engine, rpm, map_kpa):
    """Return the smooth front-rear split d [1], |d| <= 0.025."""
    rpm = np.asarray(rpm, float)
    map_kpa = np.asarray(map_kpa, float)
    phase = (rpm - engine.idle_rpm) / (engine.rev_limit_rpm - engine.idle_rpm)
    along_rpm = np.sin(np.pi * phase + 0.5)
    along_map = 0.6 + 0.4 * np.clip(map_kpa / 105.0, 0.0, 1.0)
    return _CYLINDER_SPLIT * along_rpm * along_map


def _true_ve(engine, cylinder, rpm, map_kpa, high_rpm_drop):
    if cylinder == "front":
        side = 1.0
    elif cylinder == "rear":
        side = -1.0
    else:
        raise ValueError(
            f"cylinder must be 'front' or 'rear', got {cylinder!r}"
        )
    residual = physics.residual_gas_factor(
        map_kpa, engine.compression_ratio
    ) / physics.residual_gas_factor(100.0, engine.compression_ratio)
    return (
        engine.ve_peak
        * _rpm_shape(engine, rpm, high_rpm_drop)
        * residual
        * (1.0 + side * _cylinder_split(engine, rpm, map_kpa))
    )


def true_ve(engine: Engine, cylinder: str, rpm, map_kpa) -> np.ndarray:
    """Compute an engine's true volumetric efficiency.

    Parameters
    ----------
    engine : Engine
        Engine parameter set.
    cylinder : {"front", "rear"}
        Cylinder, or cylinder pair 1-2 / 3-4 on a four-cylinder engine.
    rpm : array_like
        Engine speed [rpm].
    map_kpa : array_like
        Manifold absolute pressure [kPa].

    Returns
    -------
    numpy.ndarray
        VE [%] referred to manifold pressure and intake temperature, as
        a speed-density ECU defines it.

    Notes
    -----
    .. math:: VE = VE_{peak} \\, s(n) \\, \\frac{\\eta_r(p)}
              {\\eta_r(100\\,\\text{kPa})} \\, (1 \\pm d(n, p))

    :math:`s(n)` is 1 at ``ve_peak_rpm``, falls quadratically to
    ``ve_idle_fraction`` at idle and by a calibrated drop toward the
    rev limit (see :func:`calibration`). :math:`\\eta_r` is the
    residual-gas factor of
    :func:`dynoai_lab.sim.physics.residual_gas_factor`, which lowers VE
    at low MAP. :math:`d` is a smooth front-rear split of at most
    2.5 %, + for front and - for rear. The surface is smooth (the rpm
    shape has a continuous slope) and is an estimate of typical
    behaviour, not measured on any engine.
    """
    return _true_ve(
        engine, cylinder, rpm, map_kpa, calibration(engine).high_rpm_drop
    )


# ---------------------------------------------------------------------------
# Calibration to the rated figures
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Calibration:
    """Constants derived from an engine's rated figures.

    Attributes
    ----------
    indicated_efficiency : float
        Indicated fuel-conversion efficiency at best-power lambda [1].
    high_rpm_drop : float
        Fractional VE loss from ``ve_peak_rpm`` to the rev limit [1].
    """

    indicated_efficiency: float
    high_rpm_drop: float


def knock_border(
    engine: Engine, cylinder: str, rpm, map_kpa, intake_temperature_c
) -> np.ndarray:
    """Compute a cylinder's knock border spark advance [deg].

    See :func:`dynoai_lab.sim.physics.knock_border_advance`; the rear
    cylinder's border is ``rear_knock_offset`` lower.
    """
    if cylinder not in ("front", "rear"):
        raise ValueError(
            f"cylinder must be 'front' or 'rear', got {cylinder!r}"
        )
    offset = engine.rear_knock_offset if cylinder == "rear" else 0.0
    return physics.knock_border_advance(
        rpm,
        map_kpa,
        intake_temperature_c,
        rated_power_rpm=engine.rated_power_rpm,
        knock_margin=engine.knock_margin,
        cylinder_offset=offset,
    )


#: Safety margin of a base spark table below the lower knock border of
#: the two cylinders at reference weather [deg].
BASE_SPARK_KNOCK_MARGIN = 1.0


def base_spark_advance(engine: Engine, rpm, map_kpa) -> np.ndarray:
    """Compute the spark advance of a factory-style base table [deg].

    MBT where the engine allows it, else 1° below the knock border of
    the rear cylinder (the lower one) with intake air at SAE J1349
    reference temperature plus the engine's intake heating. A hotter
    day moves the border down, and the ECU's knock retard then acts.
    """
    intake_c = RATING_TEMPERATURE_C + engine.intake_heating
    border = np.minimum(
        knock_border(engine, "front", rpm, map_kpa, intake_c),
        knock_border(engine, "rear", rpm, map_kpa, intake_c),
    )
    mbt = physics.mbt_spark_advance(rpm, map_kpa)
    return np.minimum(mbt, border - BASE_SPARK_KNOCK_MARGIN)


def _wot_torque_terms(engine: Engine, rpm: float, high_rpm_drop: float):
    """Return (indicated torque per unit efficiency, loss torque) [N·m].

    Wide-open throttle at SAE J1349 reference weather, best-power
    lambda and the base spark table.
    """
    map_kpa = physics.static_manifold_pressure(
        100.0,
        rpm,
        RATING_PRESSURE_KPA,
        throttle_flow_rpm=engine.throttle_flow_rpm,
        leak_fraction=engine.throttle_leak_fraction,
    )
    intake_c = RATING_TEMPERATURE_C + engine.intake_heating
    spark_factor = physics.spark_torque_factor(
        base_spark_advance(engine, rpm, map_kpa),
        physics.mbt_spark_advance(rpm, map_kpa),
    )
    cylinders_per_side = engine.n_cylinders / 2
    work = 0.0
    for cylinder in ("front", "rear"):
        ve = _true_ve(engine, cylinder, rpm, map_kpa, high_rpm_drop)
        air = physics.trapped_air_mass(
            ve, map_kpa, engine.cylinder_volume, intake_c
        )
        work += cylinders_per_side * physics.indicated_work(
            air, physics.BEST_POWER_LAMBDA, 1.0
        )
    exhaust_kpa = physics.exhaust_back_pressure(
        RATING_PRESSURE_KPA,
        rpm,
        map_kpa,
        rated_power_rpm=engine.rated_power_rpm,
        rated_back_pressure=engine.exhaust_back_pressure,
    )
    loss = -physics.brake_torque(
        0.0,
        rpm,
        map_kpa,
        RATING_PRESSURE_KPA,
        displacement=engine.displacement,
        stroke=engine.stroke,
        exhaust_kpa=exhaust_kpa,
    )
    return float(work * spark_factor / (4.0 * np.pi)), float(loss)


@functools.cache
def calibration(engine: Engine) -> Calibration:
    """Derive indicated efficiency and high-rpm VE drop from rated figures.

    Parameters
    ----------
    engine : Engine
        Engine parameter set.

    Returns
    -------
    Calibration
        Constants that make the wide-open-throttle brake torque equal
        `rated_torque` at `rated_torque_rpm` and `rated_power` at
        `rated_power_rpm`, at SAE J1349 reference weather (99 kPa dry,
        25 °C) and best-power lambda.

    Raises
    ------
    ValueError
        If no VE drop between 0 and 1 reproduces the ratio of rated
        power torque to rated torque.

    Notes
    -----
    Brake torque is :math:`T(n) = \\eta_i A(n) s(n) - F(n)`, with
    :math:`A` the indicated torque per unit efficiency at unit VE shape
    and :math:`F` the friction and pumping torque. The ratio of the two
    rated conditions fixes the drop in :math:`s`; the rated torque
    then fixes :math:`\\eta_i`. The peaks of the resulting curve lie
    near, not exactly at, the rated speeds.
    """
    torque_at_power = engine.rated_power / (
        engine.rated_power_rpm * 2.0 * np.pi / 60.0
    )

    def mismatch(drop):
        a_t, f_t = _wot_torque_terms(engine, engine.rated_torque_rpm, drop)
        a_p, f_p = _wot_torque_terms(engine, engine.rated_power_rpm, drop)
        target = (engine.rated_torque + f_t) / (torque_at_power + f_p)
        return a_t / a_p - target

    if mismatch(0.0) * mismatch(0.99) > 0:
        raise ValueError(
            f"engine {engine.name!r}: rated torque {engine.rated_torque} "
            f"N·m at {engine.rated_torque_rpm} rpm and rated power "
            f"{engine.rated_power} W at {engine.rated_power_rpm} rpm "
            "cannot both be met; move ve_peak_rpm toward the power peak"
        )
    drop = brentq(mismatch, 0.0, 0.99, xtol=1e-12)
    a_t, f_t = _wot_torque_terms(engine, engine.rated_torque_rpm, drop)
    efficiency = (engine.rated_torque + f_t) / a_t
    logger.debug(
        "%s: indicated efficiency %.3f, high-rpm VE drop %.3f",
        engine.name,
        efficiency,
        drop,
    )
    return Calibration(indicated_efficiency=efficiency, high_rpm_drop=drop)


def _cited_power(engine: Engine) -> dict:
    """Return the cited power, its speed and where it was measured."""
    if engine.wheel_power is not None:
        return {
            "rated_power_hp": round(engine.wheel_power / HP, 1),
            "rated_power_rpm": engine.wheel_power_rpm,
            "rated_power_basis": "rear wheel",
        }
    return {
        "rated_power_hp": round(engine.rated_power / HP, 1),
        "rated_power_rpm": engine.rated_power_rpm,
        "rated_power_basis": "crankshaft",
    }


def engine_record(engine: Engine) -> dict:
    """Return an engine set's published figures as a JSON-ready dict.

    Parameters
    ----------
    engine : Engine
        Engine parameter set.

    Returns
    -------
    dict
        Name, description, displacement [cm³], cited power [hp] with
        its speed [rpm] and basis (``"crankshaft"`` or ``"rear
        wheel"``), rated torque [lbf·ft] with its speed [rpm], rev
        limit [rpm], bore
        and stroke [mm], gear and drive ratios [1], tyre size, the
        source and the validity range.
    """
    return {
        "name": engine.name,
        "description": engine.description,
        "displacement_cm3": round(engine.displacement * 1e6, 1),
        "n_cylinders": engine.n_cylinders,
        **_cited_power(engine),
        "rated_torque_lbft": round(engine.rated_torque / LBF_FT, 1),
        "rated_torque_rpm": engine.rated_torque_rpm,
        "rev_limit_rpm": engine.rev_limit_rpm,
        "bore_mm": round(engine.bore * 1e3, 2),
        "stroke_mm": round(engine.stroke * 1e3, 2),
        "gear_ratios": list(engine.gear_ratios),
        "primary_ratio": round(engine.primary_ratio, 4),
        "final_ratio": round(engine.final_ratio, 4),
        "tyre_size": engine.tyre_size,
        "source": engine.source,
        "validity": engine.validity,
    }


def steady_state_torque(
    engine: Engine, rpm, map_kpa, weather=None, lambda_=None
) -> np.ndarray:
    """Compute brake torque at a held operating point [N·m].

    Parameters
    ----------
    engine : Engine
        Engine parameter set.
    rpm : array_like
        Engine speed [rpm].
    map_kpa : array_like
        Manifold absolute pressure [kPa].
    weather : Weather, optional
        Default dry air at 101.325 kPa and 25 °C.
    lambda_ : array_like, optional
        Burned lambda [1]; default the target of
        :func:`dynoai_lab.ecu.default_afr_target` over 14.7 times the
        dry-air fraction, which an ECU with exact VE tables gives.

    Returns
    -------
    numpy.ndarray
        Brake torque with the base spark table (no knock retard) and the
        wall film settled, the same equations as the simulator's time
        step.
    """
    from dynoai_lab.ecu import default_afr_target
    from dynoai_lab.sim.dyno import Weather

    weather = Weather() if weather is None else weather
    rpm = np.asarray(rpm, float)
    map_kpa = np.asarray(map_kpa, float)
    intake_c = weather.temperature + engine.intake_heating
    if lambda_ is None:
        target = default_afr_target(
            rpm, map_kpa, rev_limit_rpm=engine.rev_limit_rpm
        )
        lambda_ = target / 14.7 * weather.dry_air_fraction()
    spark_factor = physics.spark_torque_factor(
        base_spark_advance(engine, rpm, map_kpa),
        physics.mbt_spark_advance(rpm, map_kpa),
    )
    efficiency = calibration(engine).indicated_efficiency
    work = 0.0
    for cylinder in ("front", "rear"):
        air = physics.trapped_air_mass(
            true_ve(engine, cylinder, rpm, map_kpa),
            map_kpa,
            engine.cylinder_volume,
            intake_c,
        )
        work = work + engine.n_cylinders / 2 * physics.indicated_work(
            air * weather.dry_air_fraction(), lambda_, efficiency
        )
    exhaust = physics.exhaust_back_pressure(
        weather.pressure,
        rpm,
        map_kpa,
        rated_power_rpm=engine.rated_power_rpm,
        rated_back_pressure=engine.exhaust_back_pressure,
    )
    return physics.brake_torque(
        work * spark_factor,
        rpm,
        map_kpa,
        weather.pressure,
        displacement=engine.displacement,
        stroke=engine.stroke,
        exhaust_kpa=exhaust,
    )
