"""Simulated dyno logs on disk, as inputs for batches and benchmarks."""

from __future__ import annotations

from pathlib import Path


def write_simulated_logs(
    folder, count, *, engine="m8-114", plan="wot", seed=0, ve_error=True
):
    """Simulate pulls and write each log as NetCDF.

    Parameters
    ----------
    folder : path-like
        Folder for the logs; created when missing.
    count : int
        Number of logs; log ``k`` uses seed ``seed + k``.
    engine : str
        Engine parameter set name.
    plan : str
        Plan name, see :data:`dynoai_lab.sim.PLAN_NAMES`.
    seed : int
        First seed.
    ve_error : bool
        Start each ECU's VE 8 to 15 % off the truth, as ``dynoai-lab
        simulate --ve-error`` does, so the logs need VE corrections.

    Returns
    -------
    list of pathlib.Path
        ``<engine>_<plan>_seed<k>.nc`` for each log, the same bytes for
        the same arguments.
    """
    from dynoai_lab import sim
    from dynoai_lab.ecu import make_base_ecu
    from dynoai_lab.output import write_netcdf
    from dynoai_lab.tuning import START_VE_ERROR

    folder = Path(folder)
    params = sim.get_engine(engine)
    paths = []
    for k in range(count):
        run_seed = seed + k
        ecu = make_base_ecu(
            params,
            ve_error=START_VE_ERROR if ve_error else None,
            seed=run_seed,
        )
        log, _ = sim.simulate_plan(
            params, ecu, sim.named_plan(plan, params, ecu), seed=run_seed
        )
        path = folder / f"{engine}_{plan}_seed{run_seed}.nc"
        paths.append(write_netcdf(log, path))
    return paths
