"""Closed-loop tuning on the virtual dyno: pull, analyze, correct, repeat.

A :class:`TuningSession` owns an ECU and an engine. Each iteration
runs the test plan on the virtual dyno, analyzes the log exactly as a
real log would be analyzed, and applies the bounded VE correction to
the ECU. It stops when the lambda error over the visited cells is
inside the tolerance, or after ``max_iterations`` pulls; the last pull
is always a measurement of the table as it stands, never followed by
an unverified correction.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import xarray as xr

from dynoai_lab.analysis.pull import analyze_pull

logger = logging.getLogger(__name__)

#: Amplitude range of the smooth VE error a new build's base tune starts
#: with on the virtual dyno: 8 to 15 % off in every cell [1].
START_VE_ERROR = (0.08, 0.15)


@dataclass(frozen=True)
class IterationRecord:
    """Figures of one tuning iteration, measured before its correction.

    Attributes
    ----------
    iteration : int
        1 for the first pull.
    mean_abs_lambda_error_pct : float
        Mean over visited cells of ``|ratio − 1|`` [%].
    max_abs_lambda_error_pct : float
        Largest ``|ratio − 1|`` over visited cells [%].
    visited_cells : int
        Cells, both cylinders counted, with at least the minimum weight.
    ve_error_vs_truth_pct : float
        Mean ``|VE_ecu / VE_true − 1|`` over visited cells [%]; known
        only on the virtual dyno.
    applied : bool
        Whether this iteration's correction was applied to the ECU.
    """

    iteration: int
    mean_abs_lambda_error_pct: float
    max_abs_lambda_error_pct: float
    visited_cells: int
    ve_error_vs_truth_pct: float
    applied: bool


class TuningSession:
    """Closed-loop VE tuning of a simulated engine.

    Parameters
    ----------
    engine : EngineParams
        Engine parameter set (``dynoai_lab.sim.get_engine(name)``).
    ecu : ECU
        Starting ECU; the session works on a copy.
    plan : list of Sweep, optional
        Test plan run at each iteration; default
        :func:`dynoai_lab.sim.covering_plan`.
    seed : int
        Seed of the whole session; iteration ``k`` draws its noise from
        ``numpy.random.SeedSequence([seed, k])``.
    max_iterations : int
        Largest number of pulls.
    tolerance_pct : float
        Converged when the mean absolute lambda error over visited
        cells is at most this [%].
    max_change : float
        Largest VE change per cell per iteration [1].
    min_weight : float
        Cells with less summed weight count as not visited [s].
    simulate_kwargs : dict, optional
        Passed to :func:`dynoai_lab.sim.simulate_plan` (dyno, weather,
        sample rate).
    """

    def __init__(
        self,
        engine,
        ecu,
        *,
        plan=None,
        seed=0,
        max_iterations=4,
        tolerance_pct=1.0,
        max_change=0.15,
        min_weight=0.05,
        simulate_kwargs=None,
    ):
        from dynoai_lab import sim

        if max_iterations < 1:
            raise ValueError(
                f"max_iterations must be at least 1, got {max_iterations}"
            )
        self.engine = engine
        self.ecu = ecu.with_ve()
        self.initial_ecu = ecu.with_ve()
        self.plan = (
            plan if plan is not None else sim.covering_plan(ecu, engine)
        )
        self.seed = int(seed)
        self.max_iterations = int(max_iterations)
        self.tolerance_pct = float(tolerance_pct)
        self.max_change = float(max_change)
        self.min_weight = float(min_weight)
        self.simulate_kwargs = dict(simulate_kwargs or {})
        self.records: list[IterationRecord] = []
        self.tables: list[xr.Dataset] = []
        self.last_analysis = None
        self.last_log = None
        self.converged = False
        self.stop_reason = ""

    def iteration_seed(self, iteration):
        """Return the simulator seed of one iteration (1-based)."""
        sequence = np.random.SeedSequence([self.seed, iteration])
        return int(sequence.generate_state(1)[0])

    def step(self):
        """Run one pull, analyze it and, unless done, correct the ECU.

        Returns
        -------
        IterationRecord
        """
        from dynoai_lab import sim

        iteration = len(self.records) + 1
        log, truth = sim.simulate_plan(
            self.engine,
            self.ecu,
            self.plan,
            seed=self.iteration_seed(iteration),
            **self.simulate_kwargs,
        )
        analysis = analyze_pull(
            log,
            self.ecu,
            min_weight=self.min_weight,
            max_change=self.max_change,
        )
        record = self._measure(iteration, analysis)
        self.tables.append(self._table_snapshot(iteration, analysis))

        done = record.mean_abs_lambda_error_pct <= self.tolerance_pct
        last = iteration >= self.max_iterations
        if done:
            self.converged = True
            self.stop_reason = (
                f"converged: mean lambda error "
                f"{record.mean_abs_lambda_error_pct:.2f} % <= "
                f"{self.tolerance_pct} %"
            )
        elif last:
            self.stop_reason = (
                f"stopped after {iteration} iterations with mean lambda "
                f"error {record.mean_abs_lambda_error_pct:.2f} %"
            )
        else:
            corrections = analysis.corrections
            self.ecu = self.ecu.with_ve(
                ve_front=corrections["ve_proposed"].sel(cylinder="front"),
                ve_rear=corrections["ve_proposed"].sel(cylinder="rear"),
            )
            record = _replace(record, applied=True)

        self.records.append(record)
        self.last_analysis = analysis
        self.last_log = log
        logger.info(
            "iteration %d: mean |lambda error| %.2f %%, max %.2f %%, %d cells",
            iteration,
            record.mean_abs_lambda_error_pct,
            record.max_abs_lambda_error_pct,
            record.visited_cells,
        )
        return record

    @property
    def finished(self):
        """True once the session converged or used all its iterations."""
        return bool(self.stop_reason)

    def run(self, progress=None, should_stop=None):
        """Iterate until converged, out of iterations, or asked to stop.

        Parameters
        ----------
        progress : callable, optional
            Called as ``progress(record, session)`` after each
            iteration.
        should_stop : callable, optional
            Polled before each pull; returning True ends the session
            after the current pull.

        Returns
        -------
        xarray.Dataset
            :attr:`history`.
        """
        while not self.finished:
            if should_stop is not None and should_stop():
                self.stop_reason = "stopped by the user"
                break
            record = self.step()
            if progress is not None:
                progress(record, self)
        return self.history

    @property
    def history(self):
        """Per-iteration figures and VE tables as an xarray Dataset."""
        if not self.records:
            return xr.Dataset()
        fields = {
            "mean_abs_lambda_error_pct": ("%", "mean |lambda error|"),
            "max_abs_lambda_error_pct": ("%", "max |lambda error|"),
            "visited_cells": ("1", "cells with enough weight"),
            "ve_error_vs_truth_pct": ("%", "mean |VE_ecu / VE_true - 1|"),
            "applied": ("1", "correction applied after this pull"),
        }
        data = {}
        for name, (units, long_name) in fields.items():
            values = [getattr(r, name) for r in self.records]
            data[name] = (
                "iteration",
                np.asarray(values),
                {"units": units, "long_name": long_name},
            )
        iterations = [r.iteration for r in self.records]
        ds = xr.Dataset(data, coords={"iteration": iterations})
        tables = xr.concat(self.tables, dim="iteration")
        ds = ds.merge(tables)
        ds.attrs.update(
            engine=self.engine.name,
            seed=self.seed,
            converged=int(self.converged),
            stop_reason=self.stop_reason,
            tolerance_pct=self.tolerance_pct,
            max_change=self.max_change,
        )
        return ds

    def summary(self):
        """Return the session's headline figures as a JSON-ready dict."""
        return {
            "engine": self.engine.name,
            "seed": self.seed,
            "iterations": len(self.records),
            "converged": self.converged,
            "stop_reason": self.stop_reason,
            "per_iteration": [
                {
                    "iteration": r.iteration,
                    "mean_abs_lambda_error_pct": round(
                        r.mean_abs_lambda_error_pct, 4
                    ),
                    "max_abs_lambda_error_pct": round(
                        r.max_abs_lambda_error_pct, 4
                    ),
                    "visited_cells": r.visited_cells,
                    "ve_error_vs_truth_pct": round(r.ve_error_vs_truth_pct, 4),
                    "correction_applied": r.applied,
                }
                for r in self.records
            ],
        }

    def _measure(self, iteration, analysis):
        corrections = analysis.corrections
        visited = corrections["weight"] >= self.min_weight
        error = np.abs(corrections["ratio"] - 1.0) * 100.0
        error = error.where(visited)
        ve_error = self._ve_error_vs_truth().where(visited)
        count = int(visited.sum())
        return IterationRecord(
            iteration=iteration,
            mean_abs_lambda_error_pct=_nan_stat(np.nanmean, error),
            max_abs_lambda_error_pct=_nan_stat(np.nanmax, error),
            visited_cells=count,
            ve_error_vs_truth_pct=_nan_stat(np.nanmean, ve_error),
            applied=False,
        )

    def _ve_error_vs_truth(self):
        from dynoai_lab import sim

        errors = []
        for cyl in ("front", "rear"):
            table = getattr(self.ecu, f"ve_{cyl}")
            rpm, load = xr.broadcast(table["rpm"], table[table.dims[1]])
            truth = sim.true_ve(self.engine, cyl, rpm.values, load.values)
            errors.append(np.abs(table.values / truth - 1.0) * 100.0)
        return xr.DataArray(
            np.stack(errors),
            dims=("cylinder",) + self.ecu.ve_front.dims,
            coords={"cylinder": ["front", "rear"]},
        )

    def _table_snapshot(self, iteration, analysis):
        tables = xr.concat(
            [self.ecu.ve_front, self.ecu.ve_rear], dim="cylinder"
        ).assign_coords(cylinder=["front", "rear"])
        tables = tables.drop_vars(
            [c for c in tables.coords if c not in tables.dims]
        )
        tables.attrs = {"units": "%", "long_name": "ECU VE table in use"}
        weight = analysis.corrections["weight"].drop_vars(
            [c for c in analysis.corrections.coords if c not in tables.dims]
        )
        snapshot = xr.Dataset({"ve": tables, "weight": weight})
        return snapshot.expand_dims(iteration=[iteration])


def _nan_stat(func, values):
    array = np.asarray(values, dtype=float)
    if not np.isfinite(array).any():
        return float("nan")
    return float(func(array))


def _replace(record, **changes):
    fields = {**record.__dict__, **changes}
    return IterationRecord(**fields)
