"""Plotly figures over a batch's runs, for the batch summary notebook.

Takes the tables of :mod:`dynoai_lab.batch.summary`. Like
:mod:`dynoai_lab.plotting`, only this module of the batch package
imports plotly.
"""

from __future__ import annotations

import plotly.graph_objects as go
from plotly.subplots import make_subplots


def power_curves_figure(curves):
    """Overlay every run's power curve, one panel per vehicle.

    Parameters
    ----------
    curves : pandas.DataFrame
        Result of :func:`dynoai_lab.batch.summary.power_curves`.
    """
    vehicles = list(dict.fromkeys(curves["vehicle"]))
    figure = make_subplots(
        rows=max(len(vehicles), 1),
        cols=1,
        subplot_titles=vehicles or ["no log runs"],
        shared_xaxes=False,
    )
    for index, vehicle in enumerate(vehicles, start=1):
        runs = curves[curves["vehicle"] == vehicle]
        for run, frame in runs.groupby("run", sort=True):
            frame = frame.sort_values("engine_speed")
            figure.add_trace(
                go.Scatter(
                    x=frame["engine_speed"],
                    y=frame["power_hp"],
                    mode="lines",
                    name=str(run),
                    legendgroup=vehicle,
                ),
                row=index,
                col=1,
            )
        figure.update_xaxes(title_text="engine speed [rpm]", row=index)
        figure.update_yaxes(title_text="power [hp]", row=index)
    figure.update_layout(
        height=260 * max(len(vehicles), 1) + 80,
        title="Power curves per vehicle",
    )
    return figure


def ve_change_figure(changes, group, cylinder="front"):
    """Map the mean VE change and the runs covering each cell.

    Parameters
    ----------
    changes : dict
        Result of :func:`dynoai_lab.batch.summary.ve_changes`.
    group : str
        One of its keys.
    cylinder : {"front", "rear"}
        Cylinder to show.
    """
    ds = changes[group].sel(cylinder=cylinder)
    load = [d for d in ds["ve_change"].dims if d not in ("run", "rpm")][0]
    covered = ds["covered"].sum("run")
    mean_change = ds["ve_change"].where(ds["covered"] > 0).mean("run")
    figure = make_subplots(
        rows=1,
        cols=2,
        subplot_titles=[
            "mean VE change over covering runs [%]",
            "runs covering the cell",
        ],
    )
    for col, values, scale in (
        (1, mean_change, "RdBu_r"),
        (2, covered, "Viridis"),
    ):
        figure.add_trace(
            go.Heatmap(
                x=ds[load].values,
                y=ds["rpm"].values,
                z=values.transpose("rpm", load).values,
                colorscale=scale,
                zmid=0 if col == 1 else None,
                colorbar={"x": 0.45 if col == 1 else 1.0},
            ),
            row=1,
            col=col,
        )
        units = ds[load].attrs.get("units")
        label = f"{load} [{units}]" if units else load
        figure.update_xaxes(title_text=label, row=1, col=col)
        figure.update_yaxes(title_text="engine speed [rpm]", row=1, col=col)
    figure.update_layout(
        title=f"{group}, {cylinder} cylinder: {ds.sizes['run']} runs",
        height=420,
    )
    return figure


def convergence_figure(catalog):
    """Plot iterations to converge against sensor delay and VE error.

    Sessions that did not converge are drawn as open markers at their
    iteration count.
    """
    rows = catalog[
        (catalog["kind"] == "study") & (catalog["status"] == "succeeded")
    ]
    figure = go.Figure()
    for label, frame in rows.groupby("ve_error_pct", sort=True):
        converged = frame["converged"].fillna(False).astype(bool)
        for done, symbol in ((True, "circle"), (False, "circle-open")):
            part = frame[converged == done]
            if part.empty:
                continue
            figure.add_trace(
                go.Box(
                    x=part["delay_scale"].astype(float),
                    y=part["iterations"].astype(float),
                    name=f"VE error {label} %"
                    + ("" if done else ", not converged"),
                    boxpoints="all",
                    marker={"symbol": symbol},
                )
            )
    figure.update_layout(
        boxmode="group",
        title="Iterations to converge",
        xaxis_title="transport delay scale [1]",
        yaxis_title="iterations",
    )
    return figure
