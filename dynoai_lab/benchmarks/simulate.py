"""Simulator speed as a multiple of real time.

The benchmark runs a 10 s wide-open-throttle sweep of the M8 114 at
400 rpm/s, sampled and logged at 1 kHz, with every model on: all ECU
behaviours including closed loop and knock retard, the wideband with
warm-up and bias, and tyre slip. The process is pinned to one CPU core
for the measurement (``os.sched_setaffinity`` where the platform has
it), and the compiled step is single-threaded. The first run loads or
compiles the machine code and is reported apart as ``compile_s``.
"""

from __future__ import annotations

import logging
import os
import statistics
import time

logger = logging.getLogger(__name__)

#: Simulated time of the benchmark pull [s].
PULL_S = 10.0


def _pin_to_one_core():
    """Pin this process to one CPU; return the previous set or None."""
    if not hasattr(os, "sched_getaffinity"):
        return None
    previous = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(previous)})
    return previous


def run(repeats: int = 20, engine: str = "m8-114") -> dict:
    """Measure how many times faster than real time a pull simulates.

    Parameters
    ----------
    repeats : int
        Timed runs after the first; the median is reported.
    engine : str
        Engine parameter set.

    Returns
    -------
    dict
        ``realtime_factor`` (simulated seconds per wall-clock second,
        whole :func:`~dynoai_lab.sim.simulate_pull` call including the
        log Datasets), ``kernel_realtime_factor`` (the compiled step
        alone), ``seconds`` (median wall time of one run), ``steps``,
        ``samples``, ``simulated_s``, ``compile_s``, ``repeats`` and
        ``cores`` (CPUs the process was allowed during timing).
    """
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats!r}")
    from dynoai_lab import sim
    from dynoai_lab.ecu import make_base_ecu
    from dynoai_lab.sim import kernel
    from dynoai_lab.sim import pull as pull_module

    params = sim.get_engine(engine)
    ecu = make_base_ecu(params, ve_error=(0.08, 0.15), seed=1)
    ecu = ecu.with_features(closed_loop=True)
    sweep = sim.Sweep(
        throttle=100.0,
        start_rpm=1500.0,
        end_rpm=1500.0 + 400.0 * PULL_S,
        rpm_rate=400.0,
        settle_s=0.0,
    )
    sensor = sim.WidebandSensor(warmup_s=0.5, bias=0.005)
    options = {
        "seed": 1,
        "sample_rate_hz": 1000.0,
        "step_s": 0.001,
        "sensor": sensor,
        "tyre_slip": True,
    }

    previous = _pin_to_one_core()
    try:
        logger.info("first run: loading or compiling the time step")
        started = time.perf_counter()
        log, _ = sim.simulate_pull(params, ecu, sweep, **options)
        compile_s = time.perf_counter() - started

        durations = []
        for _ in range(repeats):
            started = time.perf_counter()
            log, _ = sim.simulate_pull(params, ecu, sweep, **options)
            durations.append(time.perf_counter() - started)

        # The compiled step alone, with the same inputs.
        dyno = sim.get_dyno()
        weather = sim.Weather()
        values = pull_module._plant_parameters(
            params, ecu, dyno, weather, sensor, True
        )
        run_values, throttle, _ = pull_module._run_parameters(
            sweep, params, dyno, weather, 0.001
        )
        values.update(run_values)
        values.update(TIME_OFFSET=0.0, ADAPT_FRONT=0.0, ADAPT_REAR=0.0)
        p = pull_module._parameter_array(values)
        tables = pull_module._tables(ecu, params, None)
        kernel_durations = []
        for _ in range(repeats):
            started = time.perf_counter()
            _, steps = kernel.integrate(p, throttle, tables)
            kernel_durations.append(time.perf_counter() - started)
        cores = len(os.sched_getaffinity(0)) if previous else os.cpu_count()
    finally:
        if previous is not None:
            os.sched_setaffinity(0, previous)

    simulated = float(log["time"].values[-1]) + 0.001
    seconds = statistics.median(durations)
    kernel_seconds = statistics.median(kernel_durations)
    figures = {
        "realtime_factor": round(simulated / seconds, 1),
        "kernel_realtime_factor": round(simulated / kernel_seconds, 1),
        "seconds": round(seconds, 6),
        "kernel_seconds": round(kernel_seconds, 6),
        "simulated_s": round(simulated, 3),
        "steps": int(steps),
        "samples": int(log.sizes["time"]),
        "compile_s": round(compile_s, 3),
        "repeats": int(repeats),
        "cores": int(cores),
        "engine": engine,
    }
    logger.info("simulate benchmark: %s", figures)
    return figures
