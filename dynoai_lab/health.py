"""Health check: a tiny real pull through every component.

Each component is exercised for real (no mocks): the simulator runs a
short wide-open-throttle sweep, the ECU fuels it from its tables, the
wideband reads it, and the analysis computes power and a VE
correction. The report says which step failed and why.
"""

from __future__ import annotations

import logging
import time

import numpy as np

logger = logging.getLogger(__name__)


def health(engine="m8-114", seed=0):
    """Run a short pull through every component and report each status.

    Parameters
    ----------
    engine : str
        Engine parameter set for the test pull.
    seed : int
        Seed of the test pull.

    Returns
    -------
    dict
        ``{"ok": bool, "components": {name: {"status", "detail"}}}``;
        status is ``ok``, ``fail`` or ``skip`` (an earlier step failed).
    """
    components = {}
    state = {}
    steps = (
        ("engine", _check_engine),
        ("ecu", _check_ecu),
        ("simulator", _check_simulator),
        ("wideband", _check_wideband),
        ("analysis", _check_analysis),
        ("io", _check_io),
    )
    failed = False
    for name, check in steps:
        if failed and name != "io":
            components[name] = {"status": "skip", "detail": "earlier failure"}
            continue
        started = time.perf_counter()
        try:
            detail = check(state, engine, seed)
        except Exception as error:  # noqa: BLE001 - reported, not hidden
            logger.exception("health check %s failed", name)
            components[name] = {
                "status": "fail",
                "detail": f"{type(error).__name__}: {error}",
            }
            failed = True
            continue
        elapsed = time.perf_counter() - started
        components[name] = {
            "status": "ok",
            "detail": f"{detail} ({elapsed * 1000:.0f} ms)",
        }
    ok = all(c["status"] == "ok" for c in components.values())
    return {"ok": ok, "components": components}


def _check_engine(state, engine, seed):
    from dynoai_lab import sim

    state["engine"] = sim.get_engine(engine)
    return f"{state['engine'].name}: {state['engine'].description}"


def _check_ecu(state, engine, seed):
    from dynoai_lab.ecu import make_base_ecu
    from dynoai_lab.tuning import START_VE_ERROR

    ecu = make_base_ecu(state["engine"], ve_error=START_VE_ERROR, seed=seed)
    fuel_low = ecu.fuel_mass_per_cycle("front", 3000.0, 50.0, 25.0)
    fuel_high = ecu.fuel_mass_per_cycle("front", 3000.0, 90.0, 25.0)
    if not 0 < fuel_low < fuel_high:
        raise ValueError(
            f"fuel per cycle must rise with MAP: {fuel_low} at 50 kPa, "
            f"{fuel_high} at 90 kPa"
        )
    state["ecu"] = ecu
    shape = "x".join(str(n) for n in ecu.ve_front.shape)
    return f"VE tables {shape}, fuel rises with MAP"


def _check_simulator(state, engine, seed):
    from dynoai_lab import sim

    engine_params = state["engine"]
    sweep = sim.Sweep(throttle=100.0, start_rpm=2500.0, end_rpm=4500.0)
    log, truth = sim.simulate_pull(
        engine_params, state["ecu"], sweep, seed=seed
    )
    state["log"], state["truth"] = log, truth
    rpm = log["engine_speed"].values
    return f"{log.sizes['time']} samples, {rpm.min():.0f}-{rpm.max():.0f} rpm"


def _check_wideband(state, engine, seed):
    from dynoai_lab.analysis.wideband import assess_wideband

    statuses = [assess_wideband(state["log"], n) for n in ("afr_front",)]
    if not statuses[0].usable:
        raise ValueError(f"simulated wideband unusable: {statuses[0].reason}")
    return statuses[0].reason


def _check_analysis(state, engine, seed):
    from dynoai_lab.analysis.pull import analyze_pull

    analysis = analyze_pull(state["log"], state["ecu"])
    peak = analysis.summary().get("peak_power_hp")
    cells = int((analysis.corrections["weight"] > 0).sum())
    if peak is None or not np.isfinite(peak) or cells == 0:
        raise ValueError(
            f"analysis gave peak power {peak} hp and {cells} cells"
        )
    return f"peak {peak:.1f} hp, {cells} cells with data"


def _check_io(state, engine, seed):
    from dynoai_lab.ecu import TEMPLATE_TUNE
    from dynoai_lab.io import read_pvv

    tune = read_pvv(TEMPLATE_TUNE)
    shape = "x".join(str(n) for n in tune.ve_front.shape)
    return f"read {TEMPLATE_TUNE.name}: VE {tune.ve_load}-based {shape}"
