"""Speed of bilinear binning of lambda ratios onto a VE table.

Bins one million seeded random samples onto the Harley Delphi VE axes
(21 rpm × 17 MAP breakpoints) with
:func:`dynoai_lab.analysis.correction.bin_ratios`, and, for comparison,
with the same bilinear weights accumulated by a pandas ``groupby``.
"""

from __future__ import annotations

import statistics
import time

import numpy as np


def run(samples: int = 1_000_000, repeats: int = 5, seed: int = 0) -> dict:
    """Measure binning throughput in samples per second.

    Returns
    -------
    dict
        ``samples_per_s`` (numpy ``bincount``), ``pandas_samples_per_s``
        (pandas ``groupby``), ``speedup``, ``samples``, ``repeats``; both
        methods are checked to agree before timing.
    """
    import pandas as pd

    from dynoai_lab.analysis.correction import bilinear_weights, bin_ratios
    from dynoai_lab.ecu import harley_delphi_axes

    (rpm_axis, map_axis), _ = harley_delphi_axes()
    rng = np.random.default_rng(seed)
    rpm = rng.uniform(rpm_axis[0], rpm_axis[-1], samples)
    kpa = rng.uniform(map_axis[0], map_axis[-1], samples)
    ratio = 1.0 + 0.05 * rng.standard_normal(samples)
    duration = np.full(samples, 0.02)

    def with_numpy():
        return bin_ratios(rpm, kpa, ratio, duration, rpm_axis, map_axis)

    def with_pandas():
        cells, weights, _ = bilinear_weights(rpm, kpa, rpm_axis, map_axis)
        frame = pd.DataFrame(
            {
                "cell": cells.ravel(),
                "w": (weights * duration[:, None]).ravel(),
                "r": np.repeat(ratio, 4),
            }
        )
        frame["wr"] = frame["w"] * frame["r"]
        sums = frame.groupby("cell")[["w", "wr"]].sum()
        return sums["wr"] / sums["w"]

    expected = with_numpy()["ratio"].ravel()
    check = with_pandas()
    np.testing.assert_allclose(
        expected[check.index.to_numpy()], check.to_numpy(), rtol=1e-9
    )

    def timed(func):
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            func()
            times.append(time.perf_counter() - started)
        return statistics.median(times)

    fast = timed(with_numpy)
    slow = timed(with_pandas)
    return {
        "samples": samples,
        "repeats": repeats,
        "samples_per_s": round(samples / fast),
        "pandas_samples_per_s": round(samples / slow),
        "speedup": round(slow / fast, 2),
    }
