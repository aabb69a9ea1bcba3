"""Dyno test plans as typed data.

A plan is a list of steps, each one of:

- :class:`Sweep`: throttle held while engine speed rises, freely (a
  wide-open-throttle inertia pull) or at a rate the absorber holds;
- :class:`SteadyState`: the absorber holds one engine speed while the
  throttle holds one MAP (or one throttle position);
- :class:`StepThrottle`: the absorber holds a speed while the throttle
  steps from one position to another;
- :class:`CoastDown`: the clutch is out and the drum coasts from one
  speed to another, which measures the dyno's losses.

Builders make the usual plans in one call: :func:`wot_sweep`,
:func:`part_throttle_sweeps`, :func:`covering_plan` (sweeps across a
VE table), :func:`steady_state_plan` (every reachable cell of a VE
table held in turn), :func:`step_throttle` and :func:`coast_down`.
:func:`reachable_cells` says which cells of a table an engine can hold
on a dyno with an absorbing brake, and why the others cannot be held.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import xarray as xr

from dynoai_lab.ecu import ECU
from dynoai_lab.sim import engines, physics
from dynoai_lab.sim.dyno import Weather

#: Throttle positions [%] of :func:`covering_plan`, closer together at
#: small openings where MAP changes fastest with throttle. With these 14
#: sweeps an M8 log lands in about 77 % of the VE cells at 29 kPa and
#: above (nearest cell); 7 sweeps reach about 47 %.
THROTTLE_STEPS = (
    100.0, 85.0, 70.0, 58.0, 48.0, 40.0, 34.0, 29.0, 25.0, 21.0, 18.0,
    15.0, 12.0, 10.0,
)  # fmt: skip


@dataclass(frozen=True)
class Sweep:
    """One dyno pull at fixed throttle.

    Attributes
    ----------
    throttle : float
        Throttle position [%], 0 to 100.
    start_rpm, end_rpm : float
        Engine speeds [rpm] where the sweep starts and ends.
    rpm_rate : float or None
        Sweep rate [rpm/s] the absorber holds when the engine has the
        torque for it; None for a free inertia pull.
    gear : int or None
        Gear, 1-based; None for top gear.
    settle_s : float
        Time [s] the absorber keeps `start_rpm` at this throttle before
        the sweep begins, so MAP and the wideband settle.
    max_duration_s : float or None
        Longest sweep [s] after settling; None picks one from the rate.
    """

    throttle: float
    start_rpm: float
    end_rpm: float
    rpm_rate: float | None = None
    gear: int | None = None
    settle_s: float = 1.0
    max_duration_s: float | None = None

    def __post_init__(self):
        if not 0.0 <= self.throttle <= 100.0:
            raise ValueError(
                f"throttle must be 0 to 100 %, got {self.throttle!r}"
            )
        if not 0.0 < self.start_rpm < self.end_rpm:
            raise ValueError(
                "need 0 < start_rpm < end_rpm, got "
                f"{self.start_rpm!r} and {self.end_rpm!r}"
            )
        if self.rpm_rate is not None and self.rpm_rate <= 0.0:
            raise ValueError(
                f"rpm_rate must be positive or None, got {self.rpm_rate!r}"
            )
        if self.settle_s < 0.0:
            raise ValueError(
                f"settle_s must not be negative, got {self.settle_s!r}"
            )

    def duration_limit(self) -> float:
        """Return the longest sweep time after settling [s]."""
        if self.max_duration_s is not None:
            return self.max_duration_s
        if self.rpm_rate is None:
            return 30.0
        return 1.5 * (self.end_rpm - self.start_rpm) / self.rpm_rate + 3.0


def covering_plan(
    ecu_or_axes,
    engine: engines.Engine,
    *,
    throttles=THROTTLE_STEPS,
    gear: int | None = None,
) -> list[Sweep]:
    """Build sweeps that visit most reachable cells of a VE table.

    Parameters
    ----------
    ecu_or_axes : ECU or (rpm, map)
        The ECU whose front VE table's axes are to be covered, or the
        axes themselves [rpm], [kPa].
    engine : Engine
        Engine parameter set.
    throttles : sequence of float
        Throttle positions [%], one sweep each. Each fixed throttle
        traces one line of falling MAP over rising rpm, so several
        throttles spread the lines across the MAP axis.
    gear : int or None
        Gear for all sweeps; None picks two below top (4th of 6), where
        the drum's inertia reflected to the crank is about a third of
        top gear's, so part-throttle torque can keep up with the sweep
        rates.

    Returns
    -------
    list of Sweep
        Wide-open throttle as a free inertia pull, part throttle as
        absorber-held sweeps at 600 rpm/s down to 300 rpm/s for the
        smallest openings, scaled with the engine's rev range. Low-MAP
        cells at high rpm are only reached on deceleration, which the
        simulator does not model.
    """
    if isinstance(ecu_or_axes, ECU):
        rpm_axis = np.asarray(ecu_or_axes.ve_front["rpm"].values, float)
    else:
        rpm_axis = np.asarray(ecu_or_axes[0], float)
    start = max(float(rpm_axis[0]), engine.idle_rpm + 250.0)
    start = max(start, float(rpm_axis[rpm_axis <= start + 1e-9][-1]))
    end = min(float(rpm_axis[-1]), engine.rev_limit_rpm - 200.0)
    rev_scale = max(1.0, engine.rev_limit_rpm / 6000.0)
    if gear is None:
        gear = max(1, len(engine.gear_ratios) - 2)

    plan = []
    for throttle in throttles:
        if throttle >= 100.0:
            rate = None
        elif throttle >= 50.0:
            rate = 600.0 * rev_scale
        elif throttle >= 25.0:
            rate = 450.0 * rev_scale
        else:
            rate = 300.0 * rev_scale
        plan.append(
            Sweep(
                throttle=float(throttle),
                start_rpm=start,
                end_rpm=end,
                rpm_rate=rate,
                gear=gear,
            )
        )
    return plan


def _check_gear(gear):
    if gear is not None and (not isinstance(gear, int) or gear < 1):
        raise ValueError(f"gear must be a positive int or None, got {gear!r}")


def _check_throttle(name, value):
    if not 0.0 <= value <= 100.0:
        raise ValueError(f"{name} must be 0 to 100 %, got {value!r}")


@dataclass(frozen=True)
class SteadyState:
    """One operating point held by the absorber.

    Attributes
    ----------
    rpm : float
        Engine speed the absorber holds [rpm].
    map_kpa : float or None
        Manifold pressure to hold [kPa]; the throttle that gives it at
        this speed in steady state is found from the intake model.
    throttle : float or None
        Throttle position [%] instead of `map_kpa`; give exactly one.
    settle_s : float
        Time for MAP, wall film and wideband to settle [s].
    hold_s : float
        Time held after settling [s].
    gear : int or None
        Gear, 1-based; None for two below top.
    from_rpm : float or None
        Engine speed the point is approached from [rpm]: the previous
        point of a chained plan. None starts settled at this point,
        as if it had been held for a long time.
    from_throttle : float or None
        Throttle position the point is approached from [%]; with
        `from_rpm` the engine starts settled there, the throttle moves
        to this point's position over `transition_s` and the absorber
        brings the speed over. The wideband then still shows the
        previous point's mixture for its transport delay.
    transition_s : float
        Time the throttle takes to move from `from_throttle` [s].
    """

    rpm: float
    map_kpa: float | None = None
    throttle: float | None = None
    settle_s: float = 1.0
    hold_s: float = 1.0
    gear: int | None = None
    from_rpm: float | None = None
    from_throttle: float | None = None
    transition_s: float = 0.3

    def __post_init__(self):
        if (self.map_kpa is None) == (self.throttle is None):
            raise ValueError(
                "give exactly one of map_kpa and throttle, got "
                f"map_kpa={self.map_kpa!r}, throttle={self.throttle!r}"
            )
        if not self.rpm > 0.0:
            raise ValueError(f"rpm must be positive, got {self.rpm!r}")
        if self.throttle is not None:
            _check_throttle("throttle", self.throttle)
        if self.map_kpa is not None and not 0.0 < self.map_kpa < 150.0:
            raise ValueError(
                f"map_kpa must be 0 to 150 kPa, got {self.map_kpa!r}"
            )
        if self.settle_s < 0.0 or self.hold_s <= 0.0:
            raise ValueError(
                "settle_s must be >= 0 and hold_s > 0, got "
                f"{self.settle_s!r} and {self.hold_s!r}"
            )
        _check_gear(self.gear)
        if (self.from_rpm is None) != (self.from_throttle is None):
            raise ValueError(
                "give both from_rpm and from_throttle or neither, got "
                f"from_rpm={self.from_rpm!r}, "
                f"from_throttle={self.from_throttle!r}"
            )
        if self.from_rpm is not None:
            if not self.from_rpm > 0.0:
                raise ValueError(
                    f"from_rpm must be positive, got {self.from_rpm!r}"
                )
            _check_throttle("from_throttle", self.from_throttle)
        if not 0.0 <= self.transition_s <= self.settle_s + self.hold_s:
            raise ValueError(
                "transition_s must be 0 s to settle_s + hold_s, got "
                f"{self.transition_s!r}"
            )


@dataclass(frozen=True)
class StepThrottle:
    """A throttle step at a speed held by the absorber.

    Attributes
    ----------
    rpm : float
        Engine speed the absorber holds [rpm].
    start_throttle, end_throttle : float
        Throttle before and after the step [%].
    step_at_s : float
        Time of the step after the start [s].
    duration_s : float
        Length of the whole step [s].
    ramp_s : float
        Time the throttle takes to move [s]; a hand twist takes about
        0.05 to 0.1 s.
    gear : int or None
        Gear, 1-based; None for two below top.
    """

    rpm: float
    start_throttle: float
    end_throttle: float
    step_at_s: float = 1.0
    duration_s: float = 3.0
    ramp_s: float = 0.05
    gear: int | None = None

    def __post_init__(self):
        _check_throttle("start_throttle", self.start_throttle)
        _check_throttle("end_throttle", self.end_throttle)
        if not self.rpm > 0.0:
            raise ValueError(f"rpm must be positive, got {self.rpm!r}")
        if not 0.0 <= self.step_at_s < self.duration_s:
            raise ValueError(
                "need 0 <= step_at_s < duration_s, got "
                f"{self.step_at_s!r} and {self.duration_s!r}"
            )
        if self.ramp_s < 0.0:
            raise ValueError(f"ramp_s must be >= 0, got {self.ramp_s!r}")
        _check_gear(self.gear)


@dataclass(frozen=True)
class CoastDown:
    """The drum coasting with the clutch out, to measure its losses.

    Attributes
    ----------
    start_speed, end_speed : float
        Drum surface speeds [m/s] where the coast-down starts and ends.
    max_duration_s : float
        Longest coast-down [s].
    """

    start_speed: float = 40.0
    end_speed: float = 10.0
    max_duration_s: float = 300.0

    def __post_init__(self):
        if not 0.0 < self.end_speed < self.start_speed:
            raise ValueError(
                "need 0 < end_speed < start_speed, got "
                f"{self.end_speed!r} and {self.start_speed!r} m/s"
            )
        if self.max_duration_s <= 0.0:
            raise ValueError(
                f"max_duration_s must be positive, got {self.max_duration_s!r}"
            )


#: Types a plan may contain.
PLAN_STEP_TYPES = (Sweep, SteadyState, StepThrottle, CoastDown)


def default_gear(engine: engines.Engine) -> int:
    """Return the gear of part-load plans: two below top (4th of 6).

    The drum's inertia reflected to the crank is about a third of top
    gear's, so part-throttle torque can keep up with sweep rates, and
    the absorber's torque at the drum stays small.
    """
    return max(1, len(engine.gear_ratios) - 2)


def wot_sweep(
    engine: engines.Engine,
    gear: int | None = None,
    rpm_rate: float | None = None,
) -> Sweep:
    """Build a wide-open-throttle pull over the usable rpm range.

    Parameters
    ----------
    engine : Engine
        Engine parameter set.
    gear : int or None
        Gear, 1-based; None for top gear, as a dyno operator runs a
        power pull.
    rpm_rate : float or None
        Sweep rate the absorber holds [rpm/s]; None for a free inertia
        pull.

    Returns
    -------
    Sweep
        From 1000 rpm above idle to 200 rpm below the rev limit.
    """
    return Sweep(
        throttle=100.0,
        start_rpm=engine.idle_rpm + 1000.0,
        end_rpm=engine.rev_limit_rpm - 200.0,
        rpm_rate=rpm_rate,
        gear=gear,
    )


def part_throttle_sweeps(
    engine: engines.Engine,
    throttles=(20.0, 35.0, 50.0, 70.0),
    *,
    rpm_rate: float = 400.0,
    gear: int | None = None,
) -> list[Sweep]:
    """Build absorber-held sweeps at several throttle positions.

    Parameters
    ----------
    engine : Engine
        Engine parameter set.
    throttles : sequence of float
        Throttle positions [%], one sweep each.
    rpm_rate : float
        Sweep rate [rpm/s].
    gear : int or None
        Gear; None for :func:`default_gear`.

    Returns
    -------
    list of Sweep
        From 250 rpm above idle to 200 rpm below the rev limit.
    """
    gear = default_gear(engine) if gear is None else gear
    return [
        Sweep(
            throttle=float(throttle),
            start_rpm=engine.idle_rpm + 250.0,
            end_rpm=engine.rev_limit_rpm - 200.0,
            rpm_rate=rpm_rate,
            gear=gear,
        )
        for throttle in throttles
    ]


def step_throttle(
    engine: engines.Engine,
    rpm: float,
    start_throttle: float = 10.0,
    end_throttle: float = 60.0,
    **kwargs,
) -> StepThrottle:
    """Build a throttle step at a held speed; `kwargs` go to the class."""
    kwargs.setdefault("gear", default_gear(engine))
    return StepThrottle(
        rpm=float(rpm),
        start_throttle=float(start_throttle),
        end_throttle=float(end_throttle),
        **kwargs,
    )


def coast_down(start_speed: float = 40.0, end_speed: float = 10.0):
    """Build a coast-down from `start_speed` to `end_speed` [m/s]."""
    return CoastDown(start_speed=float(start_speed), end_speed=end_speed)


# ---------------------------------------------------------------------------
# Steady-state coverage of a table
# ---------------------------------------------------------------------------


def throttle_for_map(engine: engines.Engine, rpm, map_kpa, ambient_kpa):
    """Invert the steady intake model: throttle [%] for a MAP [kPa].

    Parameters
    ----------
    engine : Engine
        Engine parameter set.
    rpm : array_like
        Engine speed [rpm].
    map_kpa : array_like
        Wanted manifold pressure [kPa].
    ambient_kpa : float
        Barometric pressure [kPa].

    Returns
    -------
    numpy.ndarray
        Throttle [%]; NaN where the MAP is above what a wide-open
        throttle gives or below what a closed one gives.

    Notes
    -----
    Inverts :func:`dynoai_lab.sim.physics.static_manifold_pressure`:
    with :math:`r = p/p_a`, :math:`g = r/\\sqrt{1 - r^2}`, area
    :math:`a = g n / n_{flow}` and
    :math:`TPS = \\tfrac{200}{\\pi}\\arccos(1 - (a - a_0)/(1 - a_0))`.
    """
    ratio = np.asarray(map_kpa, float) / ambient_kpa
    rpm = np.asarray(rpm, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        g = ratio / np.sqrt(1.0 - ratio**2)
        area = g * rpm / engine.throttle_flow_rpm
        leak = engine.throttle_leak_fraction
        opening = (area - leak) / (1.0 - leak)
        throttle = 200.0 / math.pi * np.arccos(1.0 - opening)
    valid = (ratio > 0) & (ratio < 1) & (opening >= 0) & (opening <= 1)
    return np.where(valid, throttle, np.nan)


#: Reason codes of :func:`reachable_cells`, in the order tested.
UNREACHABLE_REASONS = (
    "below_idle",
    "at_or_above_rev_limit",
    "above_wot_map",
    "below_closed_throttle_map",
    "negative_torque",
    "beyond_absorber",
)


def reachable_cells(
    ecu_or_axes,
    engine: engines.Engine,
    *,
    weather: Weather | None = None,
    gear: int | None = None,
    dyno=None,
) -> xr.Dataset:
    """Tell which cells of a VE table an engine can hold on a dyno.

    Parameters
    ----------
    ecu_or_axes : ECU or (rpm, map)
        ECU whose front VE axes to check, or the axes [rpm], [kPa].
    engine : Engine
        Engine parameter set.
    weather : Weather, optional
        Barometric pressure sets the highest MAP; default
        :class:`Weather()`.
    gear : int or None
        Gear; None for :func:`default_gear`.
    dyno : DrumDyno, optional
        Default ``"dynojet-250i-motorcycle"``.

    Returns
    -------
    xarray.Dataset
        On ``(rpm, map)``: ``reachable`` (bool), ``reason`` (index into
        :data:`UNREACHABLE_REASONS`, -1 when reachable), ``throttle``
        [%] that holds the cell and ``brake_torque`` [N·m] there.

    Notes
    -----
    A cell cannot be held when its speed is below idle or above the rev
    limit; when its MAP is above the wide-open-throttle MAP at that
    speed (barometric pressure less the intake loss) or below the
    closed-throttle MAP (idle air alone); when the engine's brake
    torque there is negative, because an eddy-current absorber can
    only brake and a negative-torque point needs a motoring dyno (such
    points occur on a real road only while decelerating with fuel cut);
    or when holding it needs more than the absorber's torque.
    """
    from dynoai_lab.sim.dyno import get_dyno

    weather = Weather() if weather is None else weather
    dyno = get_dyno() if dyno is None else dyno
    gear = default_gear(engine) if gear is None else gear
    rpm_axis, map_axis = _axes(ecu_or_axes)
    rpm, map_kpa = np.meshgrid(rpm_axis, map_axis, indexing="ij")
    throttle = throttle_for_map(engine, rpm, map_kpa, weather.pressure)
    wot = physics.static_manifold_pressure(
        100.0,
        rpm,
        weather.pressure,
        throttle_flow_rpm=engine.throttle_flow_rpm,
        leak_fraction=engine.throttle_leak_fraction,
    )
    torque = engines.steady_state_torque(engine, rpm, map_kpa, weather)
    engine_ratio = (
        dyno.radius / engine.tyre_radius * engine.overall_ratio(gear)
    )
    drum_torque = engine.driveline_efficiency * torque * engine_ratio

    tests = (
        rpm < engine.idle_rpm,
        rpm >= engine.rev_limit_rpm,
        map_kpa > wot,
        ~np.isfinite(throttle) & (map_kpa <= wot),
        torque < 0.0,
        drum_torque > dyno.absorber_max_torque,
    )
    reason = np.full(rpm.shape, -1)
    for code, failed in enumerate(tests):
        reason[(reason < 0) & failed] = code
    coords = {"rpm": rpm_axis, "map": map_axis}
    dims = ("rpm", "map")
    return xr.Dataset(
        {
            "reachable": (dims, reason < 0),
            "reason": (
                dims,
                reason,
                {"reasons": ", ".join(UNREACHABLE_REASONS)},
            ),
            "throttle": (dims, throttle, {"units": "%"}),
            "brake_torque": (dims, torque, {"units": "N m"}),
        },
        coords=coords,
    )


def _axes(ecu_or_axes):
    if isinstance(ecu_or_axes, ECU):
        table = ecu_or_axes.ve_front
        return (
            np.asarray(table["rpm"].values, float),
            np.asarray(table["map"].values, float),
        )
    rpm, map_kpa = ecu_or_axes
    return np.asarray(rpm, float), np.asarray(map_kpa, float)


def steady_state_plan(
    ecu_or_axes,
    engine: engines.Engine,
    *,
    weather: Weather | None = None,
    gear: int | None = None,
    settle_s: float = 1.0,
    hold_s: float = 1.0,
    chained: bool = False,
    transition_s: float = 0.3,
) -> list[SteadyState]:
    """Build a plan that holds every reachable cell of a VE table.

    Parameters
    ----------
    ecu_or_axes : ECU or (rpm, map)
        ECU whose front VE axes to cover, or the axes [rpm], [kPa].
    engine : Engine
        Engine parameter set.
    weather : Weather, optional
        The weather the plan will run in; it sets the highest MAP.
    gear : int or None
        Gear; None for :func:`default_gear`.
    settle_s, hold_s : float
        Settling and holding time per cell [s].
    chained : bool
        Drive from point to point as on a real load-control dyno: each
        point starts where the previous one ended and the throttle and
        speed move over, so the wideband still shows the previous
        point's mixture for its transport delay. MAP then falls at
        each speed, and the step to the next speed opens the throttle,
        which gives the torque to speed up (at low MAP an engine near
        its rated speed has almost none). False starts every point
        settled.
    transition_s : float
        Throttle travel time between chained points [s].

    Returns
    -------
    list of SteadyState
        One point per cell that :func:`reachable_cells` accepts, by
        rising speed, then rising MAP (falling when chained).
    """
    gear = default_gear(engine) if gear is None else gear
    weather = weather or Weather()
    cells = reachable_cells(ecu_or_axes, engine, weather=weather, gear=gear)
    plan = []
    previous = None
    for i, rpm in enumerate(cells["rpm"].values):
        columns = range(cells["map"].size)
        if chained:
            columns = reversed(columns)
        for j in columns:
            map_kpa = cells["map"].values[j]
            if not bool(cells["reachable"].values[i, j]):
                continue
            start = {}
            if chained and previous is not None:
                start = {
                    "from_rpm": previous.rpm,
                    "from_throttle": float(
                        throttle_for_map(
                            engine,
                            previous.rpm,
                            previous.map_kpa,
                            weather.pressure,
                        )
                    ),
                    "transition_s": transition_s,
                }
            previous = SteadyState(
                rpm=float(rpm),
                map_kpa=float(map_kpa),
                settle_s=settle_s,
                hold_s=hold_s,
                gear=gear,
                **start,
            )
            plan.append(previous)
    return plan


#: Plan names of :func:`named_plan`, for the command line and widgets.
PLAN_NAMES = (
    "wot",
    "part-throttle",
    "covering",
    "steady-state",
    "step",
    "coast-down",
)


def named_plan(name: str, engine: engines.Engine, ecu, weather=None):
    """Build a plan by name.

    Parameters
    ----------
    name : str
        One of :data:`PLAN_NAMES`: ``"wot"`` a free wide-open-throttle
        pull in top gear, ``"part-throttle"`` four absorber-held sweeps
        (:func:`part_throttle_sweeps`), ``"covering"`` the sweeps of
        :func:`covering_plan`, ``"steady-state"`` every reachable VE
        cell held in turn, driven from point to point, ``"step"``
        throttle steps from 10 to 60 % at three speeds,
        ``"coast-down"`` a coast-down from 40 to 10 m/s.
    engine : Engine
        Engine parameter set.
    ecu : ECU
        ECU whose VE axes the covering and steady-state plans use.
    weather : Weather, optional
        Weather the plan will run in (steady-state plans need it).

    Returns
    -------
    list
        Plan steps.

    Raises
    ------
    ValueError
        If `name` is unknown; the message lists the valid names.
    """
    span = engine.rev_limit_rpm - engine.idle_rpm
    builders = {
        "wot": lambda: [wot_sweep(engine)],
        "part-throttle": lambda: part_throttle_sweeps(engine),
        "covering": lambda: covering_plan(ecu, engine),
        "steady-state": lambda: steady_state_plan(
            ecu, engine, weather=weather, chained=True
        ),
        "step": lambda: [
            step_throttle(engine, engine.idle_rpm + share * span)
            for share in (0.25, 0.5, 0.75)
        ],
        "coast-down": lambda: [coast_down()],
    }
    if name not in builders:
        raise ValueError(
            f"unknown plan {name!r}; valid names are {', '.join(PLAN_NAMES)}"
        )
    return builders[name]()
