"""ipywidgets front ends: Trigger Pull, Analyze Pull, closed-loop tuning.

The panels hold no physics: every button calls one library function
and puts the result into plotly ``FigureWidget``s, which update in
place. Each handler is a public method, so tests and notebooks can run
it directly or through ``button.click()``.
"""

from __future__ import annotations

import html
import logging

import ipywidgets as widgets
import plotly.graph_objects as go

from dynoai_lab import plotting, sim
from dynoai_lab.analysis.pull import analyze_pull
from dynoai_lab.ecu import make_base_ecu
from dynoai_lab.tuning import START_VE_ERROR, TuningSession

logger = logging.getLogger(__name__)


class VirtualDynoPanel:
    """Trigger a simulated pull and analyze it.

    Parameters
    ----------
    engine : str
        Initial engine parameter set.
    seed : int
        Initial seed.
    dyno : str
        Initial dyno preset.
    plan : str
        Initial plan name, one of :data:`dynoai_lab.sim.PLAN_NAMES`.
    """

    def __init__(
        self,
        engine="m8-114",
        seed=0,
        dyno="dynojet-250i-motorcycle",
        plan="wot",
    ):
        self.engine = widgets.Dropdown(
            options=sim.engine_names(), value=engine, description="Engine"
        )
        self.dyno = widgets.Dropdown(
            options=sim.dyno_names(), value=dyno, description="Dyno"
        )
        self.seed = widgets.IntText(value=seed, description="Seed")
        self.ve_error = widgets.Checkbox(
            value=True, description="ECU VE 8-15 % off"
        )
        self.plan = widgets.Dropdown(
            options=list(sim.PLAN_NAMES), value=plan, description="Plan"
        )
        self.pressure = widgets.BoundedFloatText(
            value=101.325, min=50.0, max=110.0, description="Baro [kPa]"
        )
        self.temperature = widgets.BoundedFloatText(
            value=25.0, min=-30.0, max=55.0, description="Air [°C]"
        )
        self.humidity = widgets.BoundedFloatText(
            value=0.0, min=0.0, max=100.0, description="RH [%]"
        )
        self.trigger_button = widgets.Button(
            description="Trigger Pull", button_style="primary"
        )
        self.analyze_button = widgets.Button(
            description="Analyze Pull", disabled=True
        )
        self.status = widgets.HTML("Pick an engine and trigger a pull.")
        self.power_figure = go.FigureWidget()
        self.truth_figure = go.FigureWidget()
        self.lambda_figure = go.FigureWidget()
        self.heatmap_figure = go.FigureWidget()
        self.trigger_button.on_click(self.trigger_pull)
        self.analyze_button.on_click(self.analyze_pull)
        self.log = None
        self.truth = None
        self.ecu = None
        self.analysis = None

    def widget(self):
        """Return the panel's layout for display."""
        controls = widgets.HBox(
            [self.engine, self.dyno, self.plan, self.seed, self.ve_error]
        )
        weather = widgets.HBox(
            [self.pressure, self.temperature, self.humidity]
        )
        buttons = widgets.HBox([self.trigger_button, self.analyze_button])
        return widgets.VBox(
            [
                controls,
                weather,
                buttons,
                self.status,
                self.power_figure,
                self.truth_figure,
                self.lambda_figure,
                self.heatmap_figure,
            ]
        )

    def weather(self):
        """Return the chosen weather as a :class:`dynoai_lab.sim.Weather`."""
        return sim.Weather(
            pressure=self.pressure.value,
            temperature=self.temperature.value,
            relative_humidity=self.humidity.value,
        )

    def trigger_pull(self, _button=None):
        """Run the chosen plan on the virtual dyno; plot power and truth."""
        engine = sim.get_engine(self.engine.value)
        ve_error = START_VE_ERROR if self.ve_error.value else None
        self.ecu = make_base_ecu(
            engine, ve_error=ve_error, seed=self.seed.value
        )
        weather = self.weather()
        plan = sim.named_plan(self.plan.value, engine, self.ecu, weather)
        self.log, self.truth = sim.simulate_plan(
            engine,
            self.ecu,
            plan,
            seed=self.seed.value,
            dyno=sim.get_dyno(self.dyno.value),
            weather=weather,
        )
        self.analysis = analyze_pull(self.log, self.ecu)
        _replace_figure(
            self.power_figure, plotting.power_torque_figure(self.analysis)
        )
        _replace_figure(
            self.truth_figure, plotting.truth_figure(self.log, self.truth)
        )
        summary = sim.simulation_summary(self.log, self.truth)
        text = f"{summary['samples']} samples, {summary['duration_s']:.1f} s"
        if summary["peak_power_hp"] == summary["peak_power_hp"]:
            text += (
                f"; crank peak {summary['peak_power_hp']:.1f} hp at "
                f"{summary['peak_power_rpm']} rpm (truth)"
            )
        self.status.value = html.escape(text)
        self.analyze_button.disabled = False
        return self.log

    def analyze_pull(self, _button=None):
        """Analyze the last pull: lambda plot and VE correction heatmap."""
        if self.log is None:
            self.status.value = "Trigger a pull first."
            return None
        self.analysis = analyze_pull(self.log, self.ecu)
        _replace_figure(
            self.lambda_figure, plotting.lambda_figure(self.analysis)
        )
        _replace_figure(
            self.heatmap_figure,
            plotting.correction_heatmap(self.analysis.corrections, "front"),
        )
        cells = self.analysis.summary()["cells_with_data"]
        self.status.value = html.escape(
            f"VE correction computed: {cells} cells with data"
        )
        return self.analysis


class TuningPanel:
    """Start closed-loop tuning and watch the error fall per iteration.

    Parameters
    ----------
    engine : str
        Engine parameter set.
    seed : int
        Session seed.
    iterations : int
        Largest number of pulls.
    """

    def __init__(self, engine="m8-114", seed=0, iterations=4):
        self.engine = widgets.Dropdown(
            options=sim.engine_names(), value=engine, description="Engine"
        )
        self.seed = widgets.IntText(value=seed, description="Seed")
        self.iterations = widgets.BoundedIntText(
            value=iterations, min=1, max=20, description="Iterations"
        )
        self.start_button = widgets.Button(
            description="Start Closed-Loop Tuning", button_style="primary"
        )
        self.progress = widgets.IntProgress(
            value=0, min=0, max=iterations, description="Pull 0"
        )
        self.status = widgets.HTML("")
        self.error_figure = go.FigureWidget()
        self.start_button.on_click(self.start)
        self.session = None

    def widget(self):
        """Return the panel's layout for display."""
        controls = widgets.HBox([self.engine, self.seed, self.iterations])
        return widgets.VBox(
            [
                controls,
                self.start_button,
                self.progress,
                self.status,
                self.error_figure,
            ]
        )

    def start(self, _button=None):
        """Run a tuning session, updating progress after each pull."""
        engine = sim.get_engine(self.engine.value)
        ecu = make_base_ecu(
            engine, ve_error=START_VE_ERROR, seed=self.seed.value
        )
        self.session = TuningSession(
            engine,
            ecu,
            seed=self.seed.value,
            max_iterations=self.iterations.value,
        )
        self.progress.max = self.iterations.value
        self.progress.value = 0
        self.start_button.disabled = True
        try:
            self.session.run(progress=self._on_iteration)
        finally:
            self.start_button.disabled = False
        self.status.value = html.escape(self.session.stop_reason)
        return self.session

    def _on_iteration(self, record, session):
        self.progress.value = record.iteration
        self.progress.description = f"Pull {record.iteration}"
        self.status.value = html.escape(
            f"iteration {record.iteration}: mean |lambda error| "
            f"{record.mean_abs_lambda_error_pct:.2f} %"
        )
        _replace_figure(
            self.error_figure, plotting.tuning_error_figure(session.history)
        )


def _replace_figure(widget, figure):
    """Swap a FigureWidget's traces and layout for those of ``figure``."""
    with widget.batch_update():
        widget.data = []
        for trace in figure.data:
            widget.add_trace(trace)
        widget.layout = figure.layout
