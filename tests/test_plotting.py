"""Figures: built from real results, and JSON-safe for widgets."""

import json

import numpy as np
import pytest
from conftest import DATA

import dynoai_lab as dl
from dynoai_lab import plotting


@pytest.fixture(scope="module")
def analysis():
    log = dl.read_log(DATA / "5TH GEAR.txt")
    return dl.analyze_pull(log, dl.read_tune(DATA / "base.pvv"))


def test_figures_are_strict_json(analysis):
    # A FigureWidget sends its data as JSON, which has no NaN; the
    # correction heatmap is mostly NaN (unvisited cells).
    figures = [
        plotting.power_torque_figure(analysis),
        plotting.lambda_figure(analysis),
        plotting.correction_heatmap(analysis.corrections, "front"),
        plotting.correction_heatmap(analysis.corrections, "rear", "weight"),
    ]
    for figure in figures:
        plain = _plain(figure.to_plotly_json())
        text = json.dumps(plain, allow_nan=False)
        assert len(text) > 100


def _plain(value):
    """Turn arrays into lists so json.dumps sees every number."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    return value


def test_heatmap_on_tune_axes(analysis):
    figure = plotting.correction_heatmap(analysis.corrections, "front")
    heatmap = figure.data[0]
    assert len(heatmap.x) == analysis.corrections.sizes["tps"]
    assert len(heatmap.y) == analysis.corrections.sizes["rpm"]
    assert figure.layout.xaxis.title.text == "throttle [%]"


def test_before_after_difference_views(analysis):
    corrections = analysis.corrections.sel(cylinder="front")
    before = plotting.correction_heatmap(
        analysis.corrections, "front", "ve_current"
    )
    after = plotting.correction_heatmap(
        analysis.corrections, "front", "ve_proposed"
    )
    difference = plotting.correction_heatmap(
        analysis.corrections, "front", "difference"
    )
    z_before = np.array(before.data[0].z, dtype=float)
    z_after = np.array(after.data[0].z, dtype=float)
    z_diff = np.array(difference.data[0].z, dtype=float)
    np.testing.assert_allclose(z_after - z_before, z_diff, atol=1e-12)
    changed = corrections["applied_ratio"].values != 1.0
    assert np.all(z_diff[~changed] == 0.0)
    assert np.any(z_diff[changed] != 0.0)
