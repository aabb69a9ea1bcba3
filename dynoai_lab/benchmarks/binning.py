"""Speed of bilinear binning of lambda ratios onto a VE table.

Bins ten million seeded random samples onto the Harley Delphi VE axes
(21 rpm × 17 MAP breakpoints) with
:func:`dynoai_lab.analysis.correction.bin_ratios`. The baseline is a
plain pandas ``groupby`` that averages each sample's ratio into its
nearest cell, a quarter of the work of bilinear binning. The numpy
reference (:func:`~dynoai_lab.analysis.correction.bin_ratios_numpy`)
is timed too.
"""

from __future__ import annotations

import statistics
import time

import numpy as np


def run(samples: int = 10_000_000, repeats: int = 5, seed: int = 0) -> dict:
    """Measure binning throughput in samples per second.

    Returns
    -------
    dict
        ``samples_per_s`` (compiled bilinear binning),
        ``pandas_samples_per_s`` (pandas nearest-cell average),
        ``numpy_samples_per_s`` (bilinear with ``numpy.bincount``),
        ``speedup`` over pandas, ``samples`` and ``repeats``. Before
        timing, the compiled result is checked against the numpy
        reference, and the pandas average against a numpy one.
    """
    import pandas as pd

    from dynoai_lab.analysis.correction import bin_ratios, bin_ratios_numpy
    from dynoai_lab.ecu import harley_delphi_axes

    (rpm_axis, map_axis), _ = harley_delphi_axes()
    rng = np.random.default_rng(seed)
    rpm = rng.uniform(rpm_axis[0], rpm_axis[-1], samples)
    kpa = rng.uniform(map_axis[0], map_axis[-1], samples)
    ratio = 1.0 + 0.05 * rng.standard_normal(samples)
    duration = np.full(samples, 0.02)

    def compiled():
        return bin_ratios(rpm, kpa, ratio, duration, rpm_axis, map_axis)

    def with_numpy():
        return bin_ratios_numpy(rpm, kpa, ratio, duration, rpm_axis, map_axis)

    def with_pandas():
        cell = _nearest(rpm, rpm_axis) * map_axis.size + _nearest(
            kpa, map_axis
        )
        frame = pd.DataFrame({"cell": cell, "ratio": ratio})
        return frame.groupby("cell")["ratio"].mean()

    reference = with_numpy()
    for name, values in compiled().items():
        np.testing.assert_allclose(values, reference[name], rtol=1e-9)
    nearest = with_pandas()
    cell = _nearest(rpm, rpm_axis) * map_axis.size + _nearest(kpa, map_axis)
    check = np.bincount(cell, ratio) / np.bincount(cell)
    np.testing.assert_allclose(
        nearest.to_numpy(), check[nearest.index.to_numpy()], rtol=1e-9
    )

    fast = _timed(compiled, repeats)
    slow = _timed(with_pandas, repeats)
    plain = _timed(with_numpy, max(1, repeats // 2))
    return {
        "samples": samples,
        "repeats": repeats,
        "samples_per_s": round(samples / fast),
        "pandas_samples_per_s": round(samples / slow),
        "numpy_samples_per_s": round(samples / plain),
        "speedup": round(slow / fast, 2),
    }


def _nearest(values, axis):
    """Index of the nearest breakpoint of `axis` for each value."""
    upper = np.clip(np.searchsorted(axis, values), 1, axis.size - 1)
    lower = upper - 1
    closer = values - axis[lower] <= axis[upper] - values
    return np.where(closer, lower, upper)


def _timed(func, repeats):
    """Median wall time of `repeats` calls [s]."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        func()
        times.append(time.perf_counter() - started)
    return statistics.median(times)
