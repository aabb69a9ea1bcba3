"""Figures: built from real results, and JSON-safe for widgets."""

import json

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
        text = json.dumps(
            figure.to_plotly_json(), allow_nan=False, default=str
        )
        assert len(text) > 100


def test_heatmap_on_tune_axes(analysis):
    figure = plotting.correction_heatmap(analysis.corrections, "front")
    heatmap = figure.data[0]
    assert len(heatmap.x) == analysis.corrections.sizes["tps"]
    assert len(heatmap.y) == analysis.corrections.sizes["rpm"]
    assert figure.layout.xaxis.title.text == "throttle [%]"
