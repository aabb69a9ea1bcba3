"""Closed-loop tuning on the virtual dyno: pull, analyze, correct, repeat.

A :class:`TuningSession` owns an ECU and an engine. Each iteration
runs the test plan on the virtual dyno, analyzes the log exactly as a
real log would be analyzed, and applies the bounded VE correction to
the ECU. It stops when the lambda error over the visited cells is
inside the tolerance, or after ``max_iterations`` pulls; the last pull
always measures the table as it is, and no unverified correction
follows it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import xarray as xr

from dynoai_lab.analysis.correction import CorrectionSettings
from dynoai_lab.analysis.pull import analyze_pull
from dynoai_lab.history import TableHistory

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
    fraction_within_tolerance : float
        Fraction of visited cells with ``|ratio − 1|`` inside the
        tolerance [1].
    oscillating_cells : int
        Visited cells whose correction changed sign, each time beyond
        the tolerance, since the previous iteration.
    """

    iteration: int
    mean_abs_lambda_error_pct: float
    max_abs_lambda_error_pct: float
    visited_cells: int
    ve_error_vs_truth_pct: float
    applied: bool
    fraction_within_tolerance: float = float("nan")
    oscillating_cells: int = 0


class TuningSession:
    """Closed-loop VE tuning of a simulated engine.

    Parameters
    ----------
    engine : EngineParams
        Engine parameter set (``dynoai_lab.sim.get_engine(name)``).
    ecu : ECU
        Starting ECU; the session works on a copy.
    plan : list, optional
        Test plan run at each iteration; default every reachable cell
        of the ECU's VE table held in turn, driven from point to point
        (:func:`dynoai_lab.sim.steady_state_plan` with ``chained=True``).
    seed : int
        Seed of the whole session; iteration ``k`` draws its noise from
        ``numpy.random.SeedSequence([seed, k])``.
    max_iterations : int
        Largest number of pulls.
    tolerance_pct : float
        Band of lambda error that counts as tuned [%].
    converged_fraction : float
        Converged when at least this fraction of visited cells is
        inside ``tolerance_pct`` [1]; by default all of them, because
        the cells left outside are those whose first correction hit
        the per-pull limit, and one more pull fixes them. Unvisited
        cells never count.
    settings : CorrectionSettings, optional
        Limits per iteration and in total (against the starting
        table), minimum weight and smoothing.
    locked : dict, optional
        ``{"front": mask, "rear": mask}`` of cells never changed.
    delay_compensation : {"estimate", "model", "off"} or bool
        How wideband samples are aligned with the operating point that
        produced them. ``"estimate"`` (the default; True means the
        same) fits the transport delay to each pull's log
        (:func:`~dynoai_lab.analysis.delay.estimate_delay`) and falls
        back to the default model when the fit is not confident;
        ``"model"`` uses the default plug-flow model; ``"off"`` (or
        False) analyzes the samples as logged, for comparison. The
        delay belongs to the installation, so the first confident
        estimate is kept for the later pulls.
    max_oscillating_fraction : float
        Stop when more than this fraction of visited cells flips the
        sign of its correction in two iterations running [1].
    simulate_kwargs : dict, optional
        Passed to :func:`dynoai_lab.sim.simulate_plan` (dyno, weather,
        sample rate, sensor). The sensor defaults to
        :data:`dynoai_lab.sim.REALISTIC_SENSOR` (delay 0.4 to 1 s at
        part load).
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
        converged_fraction=1.0,
        settings=None,
        locked=None,
        delay_compensation="estimate",
        max_oscillating_fraction=0.1,
        simulate_kwargs=None,
    ):
        from dynoai_lab import sim

        if max_iterations < 1:
            raise ValueError(
                f"max_iterations must be at least 1, got {max_iterations}"
            )
        if not 0 < converged_fraction <= 1:
            raise ValueError(
                "converged_fraction must be in (0, 1], got "
                f"{converged_fraction!r}"
            )
        self.engine = engine
        self.ecu = ecu.with_ve()
        self.initial_ecu = ecu.with_ve()
        self.simulate_kwargs = {
            "sensor": sim.REALISTIC_SENSOR,
            **(simulate_kwargs or {}),
        }
        self.plan = plan
        if plan is None:
            self.plan = sim.steady_state_plan(
                ecu,
                engine,
                weather=self.simulate_kwargs.get("weather"),
                chained=True,
            )
        self.seed = int(seed)
        self.max_iterations = int(max_iterations)
        self.tolerance_pct = float(tolerance_pct)
        self.converged_fraction = float(converged_fraction)
        self.settings = settings or CorrectionSettings()
        self.min_weight = self.settings.min_weight
        self.locked = locked
        self.delay_compensation = _delay_mode(delay_compensation)
        self.delay_estimates = []
        self.max_oscillating_fraction = float(max_oscillating_fraction)
        self.records: list[IterationRecord] = []
        self.tables: list[xr.Dataset] = []
        self.table_history = TableHistory()
        self.last_analysis = None
        self.last_log = None
        self.converged = False
        self.stop_reason = ""
        self._last_signs = None
        self._oscillating_runs = 0

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
            delay=self._delay(log),
            settings=self.settings,
            reference=self.initial_ecu,
            locked=self.locked,
        )
        record = self._measure(iteration, analysis)
        self.tables.append(self._table_snapshot(iteration, analysis))

        self.stop_reason = self._stop_reason(record)
        if not self.stop_reason:
            self._apply(analysis.corrections, f"iteration {iteration}")
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

    def _delay(self, log):
        """Return the ``delay=`` argument of this pull's analysis."""
        if self.delay_compensation == "off":
            return 0.0
        if self.delay_compensation == "model":
            return None
        from dynoai_lab.analysis.delay import estimate_delay

        if self.delay_estimates and self.delay_estimates[-1].confident:
            return self.delay_estimates[-1].delay
        estimate = estimate_delay(log, "afr_front", seed=self.seed)
        self.delay_estimates.append(estimate)
        if estimate.confident:
            return estimate.delay
        logger.warning(
            "delay estimate not confident (%s); using the default model",
            estimate.reason,
        )
        return None

    def _stop_reason(self, record):
        """Return why the session stops after this record, or ''."""
        if record.visited_cells == 0:
            return "stopped: the pull visited no cell of the VE table"
        if record.fraction_within_tolerance >= self.converged_fraction:
            self.converged = True
            return (
                f"converged: {record.fraction_within_tolerance:.1%} of "
                f"{record.visited_cells} visited cells within "
                f"{self.tolerance_pct} % lambda"
            )
        limit = self.max_oscillating_fraction * record.visited_cells
        self._oscillating_runs = (
            self._oscillating_runs + 1
            if record.oscillating_cells > limit
            else 0
        )
        if self._oscillating_runs >= 2:
            return (
                f"stopped: {record.oscillating_cells} cells flipped the "
                "sign of their correction in two iterations running "
                "(oscillating); check the sensor delay and the limits"
            )
        if record.iteration >= self.max_iterations:
            return (
                f"stopped after {record.iteration} iterations: "
                f"{record.fraction_within_tolerance:.1%} of visited cells "
                f"within {self.tolerance_pct} % lambda, "
                f"{self.converged_fraction:.0%} needed"
            )
        return ""

    def _apply(self, corrections, label):
        """Apply a correction to both VE tables through the history."""
        tables = {}
        for cyl in ("front", "rear"):
            ratio = corrections["applied_ratio"].sel(cylinder=cyl).values
            tables[f"ve_{cyl}"] = self.table_history.apply(
                f"ve_{cyl}", getattr(self.ecu, f"ve_{cyl}"), ratio, label
            )
        self.ecu = self.ecu.with_ve(**tables)

    def rollback(self):
        """Undo the last applied correction, restoring the tables exactly.

        Returns
        -------
        ECU
            The ECU with the tables as they were before that correction.
        """
        tables = {
            f"ve_{cyl}": self.table_history.rollback(
                f"ve_{cyl}", getattr(self.ecu, f"ve_{cyl}")
            )
            for cyl in ("front", "rear")
        }
        self.ecu = self.ecu.with_ve(**tables)
        return self.ecu

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
            "fraction_within_tolerance": (
                "1",
                "visited cells within the lambda tolerance",
            ),
            "oscillating_cells": ("1", "cells whose correction flipped"),
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
            converged_fraction=self.converged_fraction,
            delay_compensation=self.delay_compensation,
        )
        return ds

    def summary(self):
        """Return the session's headline figures as a JSON-ready dict.

        The ``final`` figures describe the table as the last pull
        measured it. Covered cells are those with enough weight in that
        pull; the figures give the fraction of them within 1 % lambda
        and the 95th percentile of the table's VE error against the
        true VE over them. ``unvisited_cells_changed`` counts cells no
        pull ever visited that changed anyway, which must be 0.
        """
        final = self._final_figures()
        rejected = {}
        if self.last_analysis is not None:
            rejected = self.last_analysis.rejected
        return {
            "engine": self.engine.name,
            "seed": self.seed,
            "iterations": len(self.records),
            "converged": self.converged,
            "stop_reason": self.stop_reason,
            "delay_compensation": self.delay_compensation,
            "delay_estimate": self._delay_summary(),
            **final,
            "rejected": rejected,
            "per_iteration": [
                {
                    "iteration": r.iteration,
                    "mean_abs_lambda_error_pct": round(
                        r.mean_abs_lambda_error_pct, 4
                    ),
                    "max_abs_lambda_error_pct": round(
                        r.max_abs_lambda_error_pct, 4
                    ),
                    "fraction_within_tolerance": round(
                        r.fraction_within_tolerance, 4
                    ),
                    "visited_cells": r.visited_cells,
                    "oscillating_cells": r.oscillating_cells,
                    "ve_error_vs_truth_pct": round(r.ve_error_vs_truth_pct, 4),
                    "correction_applied": r.applied,
                }
                for r in self.records
            ],
        }

    def _delay_summary(self):
        """Return the last delay estimate as JSON-ready figures, or None."""
        if not self.delay_estimates:
            return None
        estimate = self.delay_estimates[-1]
        return {
            "pull": len(self.delay_estimates),
            "median_delay_s": round(estimate.median_delay, 4),
            "uncertainty_s": round(estimate.uncertainty, 4),
            "scale": round(estimate.scale, 3),
            "correlation": round(estimate.correlation, 3),
            "confident": estimate.confident,
            "reason": estimate.reason,
        }

    def _final_figures(self):
        if self.last_analysis is None:
            return {}
        corrections = self.last_analysis.corrections
        covered = (corrections["weight"] >= self.min_weight).values
        error = np.abs(corrections["ratio"].values - 1.0) * 100.0
        within = (
            float(np.mean(error[covered] <= 1.0)) if covered.any() else 0.0
        )
        measured = self.tables[-1]["ve"].isel(iteration=0).values
        truth_error = self._ve_error_vs_truth(measured)
        p95 = (
            float(np.percentile(truth_error[covered], 95))
            if covered.any()
            else float("nan")
        )
        ever = (self.history["weight"] > 0).any("iteration").values
        initial = np.stack(
            [self.initial_ecu.ve_front.values, self.initial_ecu.ve_rear.values]
        )
        final = np.stack([self.ecu.ve_front.values, self.ecu.ve_rear.values])
        changed = (final != initial) & ~ever
        return {
            "covered_cells": int(covered.sum()),
            "fraction_within_1pct_lambda": round(within, 4),
            "ve_error_vs_truth_pct_p95": round(p95, 4),
            "unvisited_cells_changed": int(changed.sum()),
        }

    def _measure(self, iteration, analysis):
        corrections = analysis.corrections
        visited = (corrections["weight"] >= self.min_weight).values
        error = np.abs(corrections["ratio"].values - 1.0) * 100.0
        error = np.where(visited, error, np.nan)
        tables = np.stack([self.ecu.ve_front.values, self.ecu.ve_rear.values])
        ve_error = np.where(visited, self._ve_error_vs_truth(tables), np.nan)
        count = int(visited.sum())
        within = float(np.mean(error[visited] <= self.tolerance_pct))

        # A cell oscillates when its correction, beyond the tolerance,
        # has the opposite sign of the previous iteration's.
        signed = np.where(
            error > self.tolerance_pct,
            np.sign(corrections["ratio"].values - 1.0),
            0.0,
        )
        flips = 0
        if self._last_signs is not None:
            flips = int(np.sum(signed * self._last_signs < 0))
        self._last_signs = signed
        return IterationRecord(
            iteration=iteration,
            mean_abs_lambda_error_pct=_nan_stat(np.nanmean, error),
            max_abs_lambda_error_pct=_nan_stat(np.nanmax, error),
            visited_cells=count,
            ve_error_vs_truth_pct=_nan_stat(np.nanmean, ve_error),
            applied=False,
            fraction_within_tolerance=within if count else 0.0,
            oscillating_cells=flips,
        )

    def _ve_error_vs_truth(self, tables):
        """Return ``|VE / VE_true − 1|`` [%] for stacked front/rear tables."""
        from dynoai_lab import sim

        errors = []
        for index, cyl in enumerate(("front", "rear")):
            table = getattr(self.ecu, f"ve_{cyl}")
            rpm, load = np.meshgrid(
                table["rpm"].values,
                table[table.dims[1]].values,
                indexing="ij",
            )
            truth = sim.true_ve(self.engine, cyl, rpm, load)
            errors.append(np.abs(tables[index] / truth - 1.0) * 100.0)
        return np.stack(errors)

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


def _delay_mode(value):
    """Normalize the ``delay_compensation`` argument."""
    if value is True:
        return "estimate"
    if value is False:
        return "off"
    if value in ("estimate", "model", "off"):
        return value
    raise ValueError(
        "delay_compensation must be 'estimate', 'model', 'off', True or "
        f"False, got {value!r}"
    )


def _nan_stat(func, values):
    array = np.asarray(values, dtype=float)
    if not np.isfinite(array).any():
        return float("nan")
    return float(func(array))


def _replace(record, **changes):
    fields = {**record.__dict__, **changes}
    return IterationRecord(**fields)
