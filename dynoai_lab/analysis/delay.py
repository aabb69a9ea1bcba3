"""Estimate a wideband sensor's transport delay from a log.

The default delay model
(:func:`dynoai_lab.sim.sensor.exhaust_transport_delay`) is a plug-flow
travel time through an assumed exhaust volume up to the sensor. An
installation with a longer or shorter pipe to the sensor has the same
shape with a different volume, so :func:`estimate_delay` fits one
factor on that volume: ``scale`` 2 means twice the default volume.

The fit predicts the lambda the sensor should show from what the ECU
commanded and finds the scale whose delay lines the prediction up best
with the measured lambda, around throttle steps where both move.
"""

from __future__ import annotations

import inspect
import logging
from dataclasses import dataclass

import numpy as np

from dynoai_lab.analysis.wideband import (
    STOICH_GASOLINE,
    recording_stretches,
    valid_afr_mask,
)
from dynoai_lab.sim.sensor import (
    DEAD_TIME,
    DELAY_RANGE,
    exhaust_transport_delay,
    first_order_lag,
    plug_flow_time,
)

logger = logging.getLogger(__name__)

#: ``V_exh / V_cyl`` of the default delay model [1].
DEFAULT_VOLUME_RATIO = (
    inspect.signature(exhaust_transport_delay)
    .parameters["volume_ratio"]
    .default
)
#: Scales on the default exhaust volume that are tried [1].
SCALES = np.exp(np.linspace(np.log(0.25), np.log(8.0), 141))
#: The grid search first tries every COARSE_STEP-th scale (about 10 %
#: apart), then every scale within COARSE_STEP of the best one [1].
COARSE_STEP = 4
#: Wall-film fractions tried [1]; 0 is no film.
FILM_FRACTIONS = (0.0, 0.15, 0.3, 0.45)
#: Wall-film time constants tried [s].
FILM_TIME_CONSTANTS = (0.05, 0.1, 0.2, 0.4)
#: Below this correlation the estimate is flagged as low confidence [1].
#: Sensor noise caps the correlation of sample-to-sample changes, so a
#: long log of small steps can fit well at 0.2 to 0.3; the bootstrap
#: interval (:data:`MAX_RELATIVE_INTERVAL`) then decides.
MIN_CORRELATION = 0.2
#: Widest central 68 % bootstrap interval of the median delay, as a
#: fraction of that delay, for a confident estimate [1].
MAX_RELATIVE_INTERVAL = 0.25
#: Injector dead time used when the log does not allow estimating it [s].
DEFAULT_DEAD_TIME = 1.0e-3

_CELSIUS_TO_KELVIN = 273.15


@dataclass(frozen=True)
class DelayEstimate:
    """A transport delay fitted to a log.

    Attributes
    ----------
    scale : float
        Factor on the default model's exhaust volume [1].
    median_delay : float
        Median fitted delay over the log's operating points [s].
    uncertainty : float
        Half the central 68 % interval of ``median_delay`` over a
        seeded block bootstrap [s]; NaN when no fit was possible.
    correlation : float
        Correlation of predicted and measured lambda changes at the
        best fit [1].
    samples : int
        Samples that entered the correlation.
    method : str
        Input signal and model behind the prediction.
    confident : bool
        False when the log cannot support the estimate; ``reason``
        gives the cause. Use the default model then.
    reason : str
        Plain-language basis of ``confident``.
    film_fraction : float
        Fitted wall-film fraction [1].
    film_time_constant : float
        Fitted wall-film time constant [s].
    scale_interval : tuple of float
        Central 68 % bootstrap interval of ``scale`` [1].
    """

    scale: float
    median_delay: float
    uncertainty: float
    correlation: float
    samples: int
    method: str
    confident: bool
    reason: str
    film_fraction: float = 0.0
    film_time_constant: float = 0.0
    scale_interval: tuple = (np.nan, np.nan)

    def delay(self, rpm, map_kpa):
        """Return the fitted delay [s] at engine speed [rpm] and MAP [kPa].

        Pass the bound method as ``analyze_pull(log, tune,
        delay=estimate.delay)``.
        """
        return exhaust_transport_delay(
            rpm, map_kpa, volume_ratio=self.scale * DEFAULT_VOLUME_RATIO
        )


def estimate_delay(
    log,
    sensor="afr_front",
    *,
    injector_dead_time=None,
    sensor_time_constant=0.1,
    difference_s=0.2,
    block_s=2.0,
    n_bootstrap=200,
    seed=0,
    min_correlation=MIN_CORRELATION,
):
    """Fit the wideband transport delay of a log.

    Parameters
    ----------
    log : xarray.Dataset
        Canonical log with ``engine_speed``, ``manifold_pressure`` and
        the wideband channel; best with ``injector_time_<cylinder>``,
        ``ve_<cylinder>`` and ``intake_air_temperature``.
    sensor : str
        Wideband variable to fit (``afr_front``, ``afr_rear``, ...).
    injector_dead_time : float, optional
        Injector dead time [s]. By default it is estimated from the
        log (:func:`estimate_dead_time`).
    sensor_time_constant : float
        First-order lag of sensor and controller [s], applied to the
        prediction so that it does not count as delay.
    difference_s : float
        Span of the lambda changes that are correlated [s].
    block_s : float
        Length of the bootstrap blocks [s].
    n_bootstrap : int
        Bootstrap resamples.
    seed : int
        Seed of the bootstrap.
    min_correlation : float
        Correlation below which the estimate is not confident [1].

    Returns
    -------
    DelayEstimate

    Raises
    ------
    ValueError
        When a needed channel is missing, naming it.

    Notes
    -----
    With injector channels the ECU's commanded lambda is rebuilt as

    .. math:: \\lambda_{cmd} \\propto \\frac{VE \\, p_{MAP}}
              {T_{intake} \\, (t_{inj} - t_{dead})}

    which includes acceleration enrichment and closed-loop trim. Fuel
    reaches the cylinder through a wall film (x-tau model: a fraction
    ``x`` of the injected fuel joins a film that evaporates with time
    constant ``tau``), which makes a lean dip on tip-in and a rich peak
    on tip-out. The prediction is this delivered lambda, moved later
    by ``scale`` times the default delay, through the sensor lag. For
    each ``(x, tau, scale)`` on a grid the correlation of changes of
    ``ln λ`` over ``difference_s`` between prediction and measurement
    is computed, and the best one wins. Unknown constant factors drop
    out of the changes. Without injector channels the prediction is
    ``afr_target`` alone, which throttle steps barely move, so such
    estimates are mostly flagged.

    The uncertainty comes from resampling blocks of ``block_s`` with
    replacement and repeating the grid search.

    .. warning:: A longer film time constant and a shorter delay shift
       the prediction the same way, so an error in the film fit moves
       the delay. On simulated m8-114 logs (throttle steps at 1500 to
       3500 rpm with delay scales 1 to 3, and held cells driven from
       point to point with scale 5) the fitted median delay was within
       -3 to +3 % of the truth. That is more than the bootstrap
       uncertainty of about 0.01 s, which excludes this bias.
       A real engine's film can differ from the x-tau form.
    """
    _check_channels(log, sensor)
    data = _prepare(log, sensor, injector_dead_time)
    segments = _segments(log, data)
    films = [(0.0, 0.0)] + [
        (x, tau) for x in FILM_FRACTIONS[1:] for tau in FILM_TIME_CONSTANTS
    ]
    if data["method"] == "afr_target":
        films = [(0.0, 0.0)]

    stats = _block_statistics(
        data, segments, films, sensor_time_constant, difference_s, block_s
    )
    if stats is None:
        return _no_fit(data, "too few valid samples to correlate")
    scores = _correlation(stats.sum(axis=2))
    best = np.unravel_index(np.nanargmax(scores), scores.shape)
    scale = float(SCALES[best[1]])
    correlation = float(scores[best])
    film = films[best[0]]

    rpm, map_kpa = data["rpm"], data["map"]
    operating = np.isfinite(rpm) & np.isfinite(map_kpa)
    medians = _median_delays(rpm[operating], map_kpa[operating])
    boot = _bootstrap(stats, n_bootstrap, seed)
    low, high = np.percentile(medians[boot], [16.0, 84.0])
    scale_low, scale_high = np.percentile(SCALES[boot], [16.0, 84.0])
    samples = int(stats[best][:, 0].sum())

    confident, reason = _judge(
        correlation, min_correlation, best[1], low, high, medians[best[1]]
    )
    method = data["method"]
    if method != "afr_target":
        method += f" with x-tau wall film (x={film[0]}, tau={film[1]} s)"
    estimate = DelayEstimate(
        scale=scale,
        median_delay=float(medians[best[1]]),
        uncertainty=float((high - low) / 2.0),
        correlation=correlation,
        samples=samples,
        method=method,
        confident=confident,
        reason=reason,
        film_fraction=float(film[0]),
        film_time_constant=float(film[1]),
        scale_interval=(float(scale_low), float(scale_high)),
    )
    logger.info("delay estimate for %s: %s", sensor, estimate)
    return estimate


def estimate_dead_time(pulse, fuel_demand, steady):
    """Estimate injector dead time by a line through steady samples.

    Parameters
    ----------
    pulse : array_like
        Injector pulse width [s].
    fuel_demand : array_like
        Anything proportional to the fuel the ECU meters without
        transient terms, ``VE · MAP / (T · AFR_target)``.
    steady : array_like of bool
        Samples without enrichment, enleanment or trim.

    Returns
    -------
    float or None
        The intercept of ``pulse = a · fuel_demand + t_dead`` [s], or
        None when fewer than 20 samples or too little spread in
        ``fuel_demand`` make it unreliable, or the intercept is outside
        0 to 3 ms.
    """
    pulse = np.asarray(pulse, float)
    demand = np.asarray(fuel_demand, float)
    use = np.asarray(steady, bool) & np.isfinite(pulse) & np.isfinite(demand)
    use &= pulse > 0.0
    if use.sum() < 20 or np.ptp(demand[use]) < 0.2 * np.median(demand[use]):
        return None
    slope, intercept = np.polyfit(demand[use], pulse[use], 1)
    if slope <= 0.0 or not 0.0 <= intercept <= 3e-3:
        return None
    return float(intercept)


def _check_channels(log, sensor):
    for name in ("engine_speed", "manifold_pressure", sensor):
        if name not in log:
            raise ValueError(
                f"log has no {name!r} channel, which the delay estimate "
                f"needs; wideband channels present: "
                f"{[n for n in log.data_vars if str(n).startswith('afr_')]}"
            )


def _cylinders(log, sensor):
    """Cylinders whose fuel the sensor sees."""
    cylinder = log[sensor].attrs.get("cylinder", "unknown")
    if cylinder in ("front", "rear"):
        return (cylinder,)
    return ("front", "rear")


def _prepare(log, sensor, dead_time):
    """Collect the measured and the commanded lambda inputs."""
    afr = np.asarray(log[sensor].values, float)
    stoich = float(
        log[sensor].attrs.get("stoichiometric_afr", STOICH_GASOLINE)
    )
    measured = np.where(
        valid_afr_mask(afr, stoich), np.log(afr / stoich), np.nan
    )
    data = {
        "time": np.asarray(log["time"].values, float),
        "rpm": np.asarray(log["engine_speed"].values, float),
        "map": np.asarray(log["manifold_pressure"].values, float),
        "measured": measured,
    }

    cylinders = _cylinders(log, sensor)
    needed = [f"injector_time_{c}" for c in cylinders]
    needed += [f"ve_{c}" for c in cylinders] + ["intake_air_temperature"]
    missing = [name for name in needed if name not in log]
    if missing:
        if "afr_target" not in log:
            raise ValueError(
                f"log has neither {missing[0]!r} (for the injector-pulse "
                "prediction) nor 'afr_target'; the delay estimate needs "
                "one of them"
            )
        logger.info("no %s: predicting lambda from afr_target", missing)
        data["predicted"] = np.log(np.asarray(log["afr_target"].values, float))
        data["method"] = "afr_target"
        return data

    kelvin = np.asarray(log["intake_air_temperature"].values, float)
    kelvin = kelvin + _CELSIUS_TO_KELVIN
    pulse = np.mean([log[f"injector_time_{c}"].values for c in cylinders], 0)
    ve = np.mean([log[f"ve_{c}"].values for c in cylinders], 0)
    air = ve * data["map"] / kelvin
    if dead_time is None:
        dead_time, dead_time_source = _dead_time_from_log(log, pulse, air)
    else:
        dead_time_source = "given"
    fuel = pulse - dead_time
    with np.errstate(divide="ignore", invalid="ignore"):
        data["air"] = air
        data["fuel"] = np.where(fuel > 0.0, fuel, np.nan)
    data["method"] = (
        f"injector pulse (dead time {dead_time * 1e3:.2f} ms, "
        f"{dead_time_source})"
    )
    return data


def _dead_time_from_log(log, pulse, air):
    if "afr_target" not in log:
        return DEFAULT_DEAD_TIME, "assumed"
    steady = np.ones(pulse.shape, bool)
    for name in log.data_vars:
        if name in ("accel_enrichment", "decel_enleanment") or str(
            name
        ).startswith("closed_loop_trim_"):
            steady &= np.asarray(log[name].values, float) == 0.0
    demand = air / np.asarray(log["afr_target"].values, float)
    dead_time = estimate_dead_time(pulse, demand, steady)
    if dead_time is None:
        return DEFAULT_DEAD_TIME, "assumed"
    return dead_time, "fitted"


def _segments(log, data):
    """Index ranges of continuous recording: split at segments and gaps."""
    time = data["time"]
    stretch = recording_stretches(log, time)
    breaks = np.flatnonzero(np.diff(stretch)) + 1
    edges = np.concatenate([[0], breaks, [time.size]])
    return [
        (a, b)
        for a, b in zip(edges[:-1], edges[1:], strict=True)
        if b - a > 10
    ]


def _uniform(time, values):
    """Resample a series on a uniform grid at its median step."""
    step = float(np.median(np.diff(time)))
    grid = np.arange(time[0], time[-1] + 0.5 * step, step)
    finite = np.isfinite(values)
    if finite.sum() < 2:
        return grid, np.full(grid.shape, np.nan), step
    out = np.interp(grid, time[finite], values[finite])
    gap = np.interp(grid, time, (~finite).astype(float)) > 0
    out[gap] = np.nan
    return grid, out, step


def _prediction(data, a, b, film, step_grid):
    """ln of the delivered lambda on a uniform grid, up to a constant."""
    time, grid, step = step_grid
    if data["method"] == "afr_target":
        return np.interp(grid, time, data["predicted"][a:b])
    fuel = np.interp(grid, time, _fill(data["fuel"][a:b]))
    air = np.interp(grid, time, _fill(data["air"][a:b]))

    # x-tau: the film passes on what it took with a first-order lag.
    fraction, time_constant = film
    if fraction > 0.0:
        lagged = first_order_lag(fuel, step, time_constant)
        fuel = (1.0 - fraction) * fuel + fraction * lagged
    return np.log(air / fuel)


def _fill(values):
    """Replace NaN by the nearest earlier value (the first if leading)."""
    values = np.asarray(values, float).copy()
    finite = np.isfinite(values)
    if not finite.any():
        return values
    index = np.where(finite, np.arange(values.size), 0)
    np.maximum.accumulate(index, out=index)
    values = values[index]
    values[: np.argmax(finite)] = values[np.argmax(finite)]
    return values


def _block_statistics(data, segments, films, lag, difference_s, block_s):
    """Per film, scale and block: n, Σx, Σy, Σxx, Σyy, Σxy of changes.

    The segments are put end to end on one time axis. Each is shifted
    so that a gap longer than any delay separates it from the previous
    one. Every film and scale is then one vectorized pass over the
    whole log instead of one pass per segment.
    """
    parts = []
    offset = 0.0
    blocks = 0
    for a, b in segments:
        time = data["time"][a:b]
        grid, measured, step = _uniform(time, data["measured"][a:b])
        span = max(1, int(round(difference_s / step)))
        if grid.size <= span + 1:
            continue
        block = ((grid - grid[0]) // block_s).astype(int)
        parts.append(
            {
                "grid": grid - grid[0] + offset,
                "measured": measured,
                "rpm": np.interp(grid, time, _fill(data["rpm"][a:b])),
                "map": np.interp(grid, time, _fill(data["map"][a:b])),
                "predicted": [
                    _prediction(data, a, b, film, (time, grid, step))
                    for film in films
                ],
                "block": block + blocks,
                "span": span,
                "first": grid.size,
            }
        )
        blocks += int(block.max()) + 1
        offset += grid[-1] - grid[0] + 2.0 * DELAY_RANGE[1] + 10.0 * lag
    if not parts:
        return None

    grid = np.concatenate([p["grid"] for p in parts])
    step = float(np.median(np.diff(parts[0]["grid"])))
    rpm = np.concatenate([p["rpm"] for p in parts])
    map_kpa = np.concatenate([p["map"] for p in parts])
    block = np.concatenate([p["block"] for p in parts])
    starts = np.cumsum([0] + [p["first"] for p in parts])[:-1]
    # Changes over `span` samples, never across a segment boundary.
    span = parts[0]["span"]
    same = np.zeros(grid.size, bool)
    for p, first in zip(parts, starts, strict=True):
        same[first + span : first + p["first"]] = True
    later = np.flatnonzero(same)
    measured = np.concatenate([p["measured"] for p in parts])
    dy = measured[later] - measured[later - span]
    plug = plug_flow_time(rpm, map_kpa, DEFAULT_VOLUME_RATIO)
    segment_start = np.repeat(grid[starts], [p["first"] for p in parts])

    predicted = [
        np.concatenate([p["predicted"][i] for p in parts])
        for i in range(len(films))
    ]
    # NaN marks a scale not evaluated; the correlation is NaN there.
    stats = np.full((len(films), SCALES.size, blocks, 6), np.nan)

    def evaluate(indices):
        for i in range(len(films)):
            for j in indices:
                if np.isfinite(stats[i, j, 0, 0]):
                    continue
                seen = _sensor_view(
                    grid, predicted[i], plug, SCALES[j], lag, step,
                    segment_start,
                )  # fmt: skip
                dx = seen[later] - seen[later - span]
                stats[i, j] = _sums(dx, dy, block[later], blocks)

    # Every COARSE_STEP-th scale first, then all scales around the best.
    last = SCALES.size - 1
    evaluate(sorted(set(range(0, last, COARSE_STEP)) | {last}))
    if np.nanmax(stats[..., 0].sum(axis=2)) < 50:
        return None
    scores = _correlation(stats.sum(axis=2))
    best = int(np.unravel_index(np.nanargmax(scores), scores.shape)[1])
    evaluate(
        range(max(0, best - COARSE_STEP), min(last, best + COARSE_STEP) + 1)
    )
    return stats


def _sensor_view(grid, predicted, plug, scale, lag, step, start):
    """Prediction as the sensor sees it: moved later, then lagged.

    `plug` is the default model's plug-flow time [s], which `scale`
    multiplies as a larger exhaust volume would. NaN until the first gas
    of each segment (starting at time `start`) has arrived and the lag
    has settled, so that segment starts do not count as events.
    """
    delay = np.clip(DEAD_TIME + scale * plug, *DELAY_RANGE)
    arrival = np.maximum.accumulate(grid + delay)
    seen = np.interp(grid, arrival, predicted)
    seen = first_order_lag(seen, step, lag)
    first_arrival = np.interp(start, grid, arrival)
    seen[grid < first_arrival + 5.0 * lag] = np.nan
    return seen


def _sums(dx, dy, block, size):
    ok = np.isfinite(dx) & np.isfinite(dy)
    x, y, b = dx[ok], dy[ok], block[ok]
    columns = (np.ones_like(x), x, y, x * x, y * y, x * y)
    return np.stack([np.bincount(b, c, size) for c in columns], axis=-1)


def _correlation(sums):
    """Pearson correlation from sums n, Σx, Σy, Σxx, Σyy, Σxy."""
    n, sx, sy, sxx, syy, sxy = np.moveaxis(sums, -1, 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        cov = sxy - sx * sy / n
        var_x = sxx - sx * sx / n
        var_y = syy - sy * sy / n
        return cov / np.sqrt(var_x * var_y)


def _bootstrap(stats, n_bootstrap, seed):
    """Best scale index for each block-bootstrap resample."""
    rng = np.random.default_rng(seed)
    blocks = stats.shape[2]
    best = np.empty(n_bootstrap, int)
    for r in range(n_bootstrap):
        counts = np.bincount(rng.integers(0, blocks, blocks), minlength=blocks)
        scores = _correlation(np.tensordot(stats, counts, axes=([2], [0])))
        scores = np.where(np.isfinite(scores), scores, -np.inf)
        best[r] = np.unravel_index(np.argmax(scores), scores.shape)[1]
    return best


def _median_delays(rpm, map_kpa):
    """Median delay over the operating points for every scale [s]."""
    return np.array(
        [
            np.median(
                exhaust_transport_delay(
                    rpm, map_kpa, volume_ratio=s * DEFAULT_VOLUME_RATIO
                )
            )
            for s in SCALES
        ]
    )


def _judge(correlation, min_correlation, index, low, high, median):
    if correlation < min_correlation:
        return False, (
            f"correlation {correlation:.2f} is below {min_correlation}: the "
            "log has too few fuel or throttle steps to time"
        )
    if index in (0, SCALES.size - 1):
        return False, (
            f"best scale {SCALES[index]:.2f} is at the end of the "
            f"{SCALES[0]:.2f} to {SCALES[-1]:.2f} range searched"
        )
    if high - low > MAX_RELATIVE_INTERVAL * median:
        return False, (
            f"bootstrap interval {low:.3f} to {high:.3f} s is wider than "
            f"{MAX_RELATIVE_INTERVAL:.0%} of the delay {median:.3f} s"
        )
    return True, (
        f"correlation {correlation:.2f} at the best fit, bootstrap "
        f"interval {low:.3f} to {high:.3f} s"
    )


def _no_fit(data, reason):
    rpm, map_kpa = data["rpm"], data["map"]
    operating = np.isfinite(rpm) & np.isfinite(map_kpa)
    median = float(
        np.median(exhaust_transport_delay(rpm[operating], map_kpa[operating]))
    )
    return DelayEstimate(
        scale=1.0,
        median_delay=median,
        uncertainty=np.nan,
        correlation=np.nan,
        samples=0,
        method=data["method"],
        confident=False,
        reason=f"{reason}; the scale is the default model's",
    )
