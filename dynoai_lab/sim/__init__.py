"""Simulated engine, ECU fuelling, wideband sensor and inertia dyno.

The simulator produces dyno logs with known truth, so that analysis and
tuning code can be tested against the known result:

>>> from dynoai_lab import sim
>>> from dynoai_lab.ecu import make_base_ecu
>>> engine = sim.get_engine("m8-114")
>>> ecu = make_base_ecu(engine, ve_error=-0.10)
>>> sweep = sim.Sweep(throttle=100, start_rpm=2000, end_rpm=5500)
>>> log, truth = sim.simulate_pull(engine, ecu, sweep, seed=1)
>>> round(float(truth["lambda_front"].median() / 0.89), 1)
1.1
"""

from dynoai_lab.sim.dyno import (
    DrumDyno,
    Weather,
    dyno_names,
    fit_coast_down,
    get_dyno,
)
from dynoai_lab.sim.engines import (
    Engine,
    calibration,
    engine_names,
    engine_record,
    get_engine,
    steady_state_torque,
    true_ve,
)
from dynoai_lab.sim.plans import (
    PLAN_NAMES,
    CoastDown,
    SteadyState,
    StepThrottle,
    Sweep,
    coast_down,
    covering_plan,
    named_plan,
    part_throttle_sweeps,
    reachable_cells,
    steady_state_plan,
    step_throttle,
    wot_sweep,
)
from dynoai_lab.sim.pull import (
    simulate_plan,
    simulate_pull,
    simulation_summary,
)
from dynoai_lab.sim.sensor import (
    REALISTIC_SENSOR,
    WidebandSensor,
    transport_delay,
)

__all__ = [
    "PLAN_NAMES",
    "REALISTIC_SENSOR",
    "CoastDown",
    "DrumDyno",
    "Engine",
    "SteadyState",
    "StepThrottle",
    "Sweep",
    "Weather",
    "WidebandSensor",
    "calibration",
    "coast_down",
    "covering_plan",
    "dyno_names",
    "engine_names",
    "engine_record",
    "fit_coast_down",
    "get_dyno",
    "get_engine",
    "named_plan",
    "part_throttle_sweeps",
    "reachable_cells",
    "simulate_plan",
    "simulate_pull",
    "simulation_summary",
    "steady_state_plan",
    "steady_state_torque",
    "step_throttle",
    "transport_delay",
    "true_ve",
    "wot_sweep",
]
