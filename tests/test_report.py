"""Report templates run under papermill with a real Jupyter kernel."""

import json

import nbformat
from conftest import DATA

from dynoai_lab.report import run_report, template_path


def test_templates_have_one_parameters_cell():
    for name in ("report_pull", "report_tuning"):
        nb = nbformat.read(template_path(name), as_version=4)
        tagged = [
            c for c in nb.cells if "parameters" in c.metadata.get("tags", [])
        ]
        assert len(tagged) == 1, name


def test_pull_report_offline_html(tmp_path):
    notebook, html = run_report(
        "report_pull",
        tmp_path,
        "pull",
        {
            "log_path": str(DATA / "5TH GEAR.txt"),
            "tune_path": str(DATA / "base.pvv"),
            "out_dir": str(tmp_path),
        },
    )
    assert notebook.is_file()
    text = html.read_text(encoding="utf-8")
    # plotly.js is embedded, not loaded from a CDN, so the report's
    # plots work in a dyno room without internet.
    assert 'src="https://cdn.plot.ly' not in text
    assert "plotly.js v" in text
    assert text.count("Plotly.newPlot") >= 3
    assert len(text) > 3_000_000, "plotly.js bundle missing from the HTML"
    # The report states the wideband used and why the others were not.
    assert "afr_lc2" in text
    assert "stuck at 7.38" in text
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["wideband_channel"]["used"] == "afr_lc2"
    # No half-written files left behind.
    assert not list(tmp_path.glob(".*.tmp"))


def test_unknown_template_lists_available():
    import pytest

    with pytest.raises(ValueError, match="report_pull"):
        template_path("nope")
