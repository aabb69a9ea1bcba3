"""Parameterised report notebooks: run with papermill, export to HTML.

The templates live in ``dynoai_lab/templates``; each has one cell
tagged ``parameters``. The HTML export embeds plotly.js, so a report
opens with working interactive plots on a machine without internet.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

logger = logging.getLogger(__name__)

TEMPLATES = Path(__file__).with_name("templates")


def template_path(name):
    """Return the path of a bundled report template by its stem."""
    path = TEMPLATES / f"{name}.ipynb"
    if not path.is_file():
        available = sorted(p.stem for p in TEMPLATES.glob("*.ipynb"))
        raise ValueError(
            f"unknown report template {name!r}; available: {available}"
        )
    return path


def run_report(template, out_dir, name, parameters, kernel_name=None):
    """Execute a report template and export it to offline HTML.

    Parameters
    ----------
    template : str
        Template stem, for example ``"report_pull"``.
    out_dir : path-like
        Folder for the executed notebook and its HTML.
    name : str
        Stem of the output files.
    parameters : dict
        Values injected into the ``parameters`` cell.
    kernel_name : str, optional
        Jupyter kernel; default: the template's own (``python3``).

    Returns
    -------
    tuple of pathlib.Path
        The executed notebook and the HTML report.
    """
    import papermill

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    notebook = out_dir / f"{name}.ipynb"
    partial = out_dir / f".{name}.partial.ipynb"
    logger.info("running %s into %s", template, notebook)
    try:
        papermill.execute_notebook(
            str(template_path(template)),
            str(partial),
            parameters=parameters,
            kernel_name=kernel_name,
            cwd=str(out_dir),
            progress_bar=False,
        )
        os.replace(partial, notebook)
    finally:
        partial.unlink(missing_ok=True)
    html = export_html(notebook)
    return notebook, html


def export_html(notebook):
    """Export an executed notebook to HTML next to it, atomically."""
    import nbformat
    from nbconvert import HTMLExporter

    notebook = Path(notebook)
    exporter = HTMLExporter()
    exporter.exclude_input_prompt = True
    exporter.exclude_output_prompt = True
    body, _ = exporter.from_notebook_node(
        nbformat.read(notebook, as_version=4)
    )
    html = notebook.with_suffix(".html")
    partial = html.with_name(f".{html.name}.tmp")
    partial.write_text(body, encoding="utf-8")
    os.replace(partial, html)
    return html
