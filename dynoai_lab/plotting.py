"""Plotly figures for pulls, VE corrections and tuning sessions.

Only this module (and the widgets built on it) imports plotly, so the
library itself imports without a browser stack. Every figure is a
``plotly.graph_objects.Figure``; in a notebook wrap it in
``go.FigureWidget`` to update it in place.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dynoai_lab.units import HP, LBF_FT


def power_torque_figure(analysis, title="Power and torque"):
    """Plot corrected power [hp] and torque [lbf·ft] against engine speed.

    Parameters
    ----------
    analysis : PullAnalysis
        Result of :func:`dynoai_lab.analyze_pull`.
    title : str
        Figure title.

    Returns
    -------
    plotly.graph_objects.Figure
    """
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    if analysis.power is not None:
        ds = analysis.power
        rpm = ds["engine_speed"].values
        order = np.argsort(rpm)
        fig.add_scatter(
            x=rpm[order],
            y=_json_safe(ds["power_corrected"].values[order] / HP),
            name="power [hp]",
            mode="lines",
        )
        fig.add_scatter(
            x=rpm[order],
            y=_json_safe(ds["torque_corrected"].values[order] / LBF_FT),
            name="torque [lbf·ft]",
            mode="lines",
            secondary_y=True,
        )
    standard = analysis.correction_standard
    factor = analysis.correction_factor
    fig.update_layout(
        title=f"{title} ({standard}, factor {factor:.3f})",
        xaxis_title="engine speed [rpm]",
        legend={"orientation": "h"},
        margin={"t": 60, "b": 40},
    )
    fig.update_yaxes(title_text="power [hp]", secondary_y=False)
    fig.update_yaxes(title_text="torque [lbf·ft]", secondary_y=True)
    return fig


def lambda_figure(analysis, title="Lambda, measured and target"):
    """Plot aligned measured lambda per cylinder and target against time.

    Parameters
    ----------
    analysis : PullAnalysis
        Result of :func:`dynoai_lab.analyze_pull`.
    title : str
        Figure title.

    Returns
    -------
    plotly.graph_objects.Figure
    """
    ds = analysis.samples
    time = ds["time"].values
    fig = go.Figure()
    if "lambda_target" in ds:
        fig.add_scatter(
            x=time,
            y=_json_safe(ds["lambda_target"].values),
            name="target",
            mode="lines",
        )
    for cyl, sensor in analysis.sensors.items():
        fig.add_scatter(
            x=time,
            y=_json_safe(ds[f"lambda_{cyl}"].values),
            name=f"{cyl} ({sensor}, aligned)",
            mode="lines",
        )
        kept = np.isfinite(ds[f"ratio_{cyl}"].values)
        fig.add_scatter(
            x=time[kept],
            y=ds[f"lambda_{cyl}"].values[kept],
            name=f"{cyl} samples used",
            mode="markers",
            marker={"size": 4},
        )
    fig.update_layout(
        title=title,
        xaxis_title="time [s]",
        yaxis_title="lambda [1]",
        legend={"orientation": "h"},
        margin={"t": 60, "b": 40},
    )
    return fig


def correction_heatmap(corrections, cylinder="front", variable="ratio"):
    """Plot a VE correction on the tune's own axes with hover values.

    Parameters
    ----------
    corrections : xarray.Dataset
        ``PullAnalysis.corrections`` or one iteration of a tuning
        history, with dims ``(cylinder, rpm, load)``.
    cylinder : str
        ``front`` or ``rear``.
    variable : str
        Variable shown as colour: ``ratio`` (the measured error, in %),
        ``ve_current`` (before), ``ve_proposed`` (after),
        ``difference`` (after − before), ``weight`` or ``confidence``.

    Returns
    -------
    plotly.graph_objects.Figure
    """
    ds = corrections.sel(cylinder=cylinder)
    load_dim = [d for d in ds["ratio"].dims if d != "rpm"][0]
    load = ds[load_dim].values
    rpm = ds["rpm"].values
    labels = {
        "ratio": "measured VE error [%]",
        "difference": "VE after − before [% points]",
        "ve_current": "VE before [%]",
        "ve_proposed": "VE after [%]",
        "weight": "weight [s]",
        "confidence": "confidence [1]",
    }
    if variable == "difference":
        z = ds["ve_proposed"].values - ds["ve_current"].values
    else:
        z = ds[variable].values
    if variable == "ratio":
        z = (z - 1.0) * 100.0
    label = labels.get(variable, variable)
    centred = variable in ("ratio", "difference")
    hover = np.dstack(
        [
            ds["ratio"].values,
            ds["hits"].values,
            ds["weight"].values,
            ds["ve_current"].values,
            ds["ve_proposed"].values,
        ]
    )
    load_label = "MAP [kPa]" if load_dim == "map" else "throttle [%]"
    fig = go.Figure(
        go.Heatmap(
            x=[f"{v:g}" for v in load],
            y=[f"{v:g}" for v in rpm],
            z=_json_safe(z),
            customdata=_json_safe(hover),
            colorscale="RdBu",
            zmid=0.0 if centred else None,
            colorbar={"title": label},
            hovertemplate=(
                "rpm %{y}, " + load_label + " %{x}<br>"
                "ratio %{customdata[0]:.3f}<br>"
                "hits %{customdata[1]:.0f}, weight %{customdata[2]:.2f} s"
                "<br>VE %{customdata[3]:.1f} → %{customdata[4]:.1f} %"
                "<extra></extra>"
            ),
        )
    )
    fig.update_layout(
        title=f"{cylinder} cylinder: {label}",
        xaxis_title=load_label,
        yaxis_title="engine speed [rpm]",
        margin={"t": 60, "b": 40},
    )
    return fig


def tuning_error_figure(history):
    """Plot mean and max lambda error over visited cells per iteration.

    Parameters
    ----------
    history : xarray.Dataset
        ``TuningSession.history``.

    Returns
    -------
    plotly.graph_objects.Figure
    """
    it = history["iteration"].values
    fig = go.Figure()
    for name, label in (
        ("mean_abs_lambda_error_pct", "mean |error|"),
        ("max_abs_lambda_error_pct", "max |error|"),
    ):
        fig.add_scatter(
            x=it, y=history[name].values, name=label, mode="lines+markers"
        )
    fig.update_layout(
        title="Lambda error over visited cells",
        xaxis_title="iteration",
        yaxis_title="lambda error [%]",
        yaxis_type="log",
        margin={"t": 60, "b": 40},
    )
    return fig


def use_offline_renderer():
    """Render figures with plotly.js embedded in the notebook.

    JupyterLab shows figures through plotly's own mimetype; the HTML
    export of an executed notebook takes the ``text/html`` output, which
    carries plotly.js inline, so reports work without internet.
    """
    import plotly.io as pio

    pio.renderers.default = "plotly_mimetype+notebook"


def truth_figure(log, truth, title="Simulated truth beside measurement"):
    """Plot true burned lambda and the wideband reading per cylinder.

    Parameters
    ----------
    log : xarray.Dataset
        Simulated log.
    truth : xarray.Dataset
        The simulator's truth on the same time axis.
    title : str
        Figure title.

    Returns
    -------
    plotly.graph_objects.Figure
        Lambda on the left axis; transport delay [s] on the right.
    """
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    time = log["time"].values
    for cyl in ("front", "rear"):
        stoich = log[f"afr_{cyl}"].attrs.get("stoichiometric_afr", 14.7)
        fig.add_scatter(
            x=time,
            y=truth[f"lambda_{cyl}"].values,
            name=f"true lambda {cyl}",
            mode="lines",
        )
        fig.add_scatter(
            x=time,
            y=log[f"afr_{cyl}"].values / stoich,
            name=f"wideband {cyl}",
            mode="lines",
            line={"dash": "dot"},
        )
    fig.add_scatter(
        x=time,
        y=truth["transport_delay"].values,
        name="transport delay [s]",
        mode="lines",
        secondary_y=True,
    )
    fig.update_layout(
        title=title,
        xaxis_title="time [s]",
        legend={"orientation": "h"},
        margin={"t": 60, "b": 40},
    )
    fig.update_yaxes(title_text="lambda [1]", secondary_y=False)
    fig.update_yaxes(title_text="delay [s]", secondary_y=True)
    return fig


def _json_safe(values):
    """Return a nested list with NaN and infinities replaced by None.

    Plotly draws None as a gap. A FigureWidget sends its data to the
    browser as JSON, which has no NaN, so NaN would fail to serialise.
    """
    array = np.asarray(values, dtype=float)
    cleaned = np.where(np.isfinite(array), array, np.nan).astype(object)
    cleaned[~np.isfinite(array)] = None
    return cleaned.tolist()


#: Views of :func:`cell_heatmap`: variable shown and colour-bar label.
CELL_VIEWS = {
    "ratio": "measured VE error [%]",
    "ve_current": "VE before [%]",
    "ve_proposed": "VE after [%]",
    "difference": "VE after − before [% points]",
    "confidence": "confidence [1]",
    "hits": "hits [1]",
}


def cell_heatmap(
    corrections, cylinder="front", view="ratio", rejected=None, locked=None
):
    """Plot one view of a VE correction with every cell figure on hover.

    Parameters
    ----------
    corrections : xarray.Dataset
        ``PullAnalysis.corrections`` with dims ``(cylinder, rpm, load)``.
    cylinder : str
        ``front`` or ``rear``.
    view : str
        One of :data:`CELL_VIEWS`: the measured error (``ratio``, in
        %), VE before, after, their difference, confidence or hits.
    rejected : numpy.ndarray, optional
        Rejected samples per cell, from
        :func:`dynoai_lab.cells.rejection_counts`.
    locked : numpy.ndarray, optional
        Boolean mask of locked cells, drawn as black crosses.

    Returns
    -------
    plotly.graph_objects.Figure
        The heatmap is trace 0; locked cells, when any, are trace 1.
    """
    if view not in CELL_VIEWS:
        raise ValueError(
            f"view {view!r} is not known; use one of {sorted(CELL_VIEWS)}"
        )
    ds = corrections.sel(cylinder=cylinder)
    load_dim = [d for d in ds["ratio"].dims if d != "rpm"][0]
    x = [f"{v:g}" for v in ds[load_dim].values]
    y = [f"{v:g}" for v in ds["rpm"].values]
    before = ds["ve_current"].values
    after = ds["ve_proposed"].values
    if view == "difference":
        z = after - before
    elif view == "ratio":
        z = (ds["ratio"].values - 1.0) * 100.0
    else:
        z = ds[view].values
    if rejected is None:
        rejected = np.zeros(before.shape, dtype=int)
    if locked is None:
        locked = np.zeros(before.shape, bool)
    load_label = "MAP [kPa]" if load_dim == "map" else "throttle [%]"
    label = CELL_VIEWS[view]
    text = _cell_hover_text(ds, rejected, locked)
    fig = go.Figure(
        go.Heatmap(
            x=x,
            y=y,
            z=_json_safe(z),
            text=text,
            colorscale="RdBu" if view in ("ratio", "difference") else None,
            zmid=0.0 if view in ("ratio", "difference") else None,
            colorbar={"title": label},
            hovertemplate=(
                "rpm %{y}, " + load_label + " %{x}<br>%{text}<extra></extra>"
            ),
        )
    )
    rows, columns = np.nonzero(np.asarray(locked, dtype=bool))
    if rows.size:
        fig.add_scatter(
            x=[x[c] for c in columns],
            y=[y[r] for r in rows],
            mode="markers",
            marker={"symbol": "x-thin", "size": 9, "line": {"width": 2}},
            marker_color="black",
            name="locked",
            hoverinfo="skip",
        )
    fig.update_layout(
        title=f"{cylinder} cylinder: {label}",
        xaxis_title=load_label,
        yaxis_title="engine speed [rpm]",
        margin={"t": 60, "b": 40},
    )
    return fig


def _cell_hover_text(ds, rejected, locked):
    """Return per-cell hover lines; cells without kept samples state it."""
    ratio = ds["ratio"].values
    hits = ds["hits"].values
    confidence = ds["confidence"].values
    before = ds["ve_current"].values
    after = ds["ve_proposed"].values
    text = []
    for i in range(ratio.shape[0]):
        row = []
        for j in range(ratio.shape[1]):
            if np.isfinite(ratio[i, j]):
                measured = (
                    f"ratio {ratio[i, j]:.3f}, hits {hits[i, j]:.0f}<br>"
                    f"confidence {confidence[i, j]:.2f}"
                )
            else:
                measured = "no samples kept<br>confidence 0"
            row.append(
                f"{measured}, rejected {int(rejected[i, j])} samples<br>"
                f"VE {before[i, j]:.1f} → {after[i, j]:.1f} %"
                + ("<br>locked" if locked[i, j] else "")
            )
        text.append(row)
    return text
