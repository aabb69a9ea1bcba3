"""The dyno control panel: one ipywidgets screen over the library.

A tuner picks the bike and the tune, triggers a pull on the virtual
dyno (or loads a real log), analyzes it, applies the VE correction,
rolls it back, and downloads the corrected tune and the analysis.
:class:`Workbench` contains no physics: each button calls one public
method, which calls library functions and draws their results as
plotly ``FigureWidget``s in fixed places of the panel. Tests and notebooks call
the same methods directly.

Every handler catches its errors and shows one plain message in the
panel; the traceback goes to the module logger. A closed-loop tuning
session runs in a background thread, so the panel stays responsive and
**Stop** ends the session after the pull in progress.
"""

from __future__ import annotations

import base64
import functools
import html
import logging
import os
import tempfile
import threading
import time
from pathlib import Path

import ipywidgets as widgets
import numpy as np
import plotly.graph_objects as go

from dynoai_lab import cells, plotting, sim
from dynoai_lab.analysis.pull import CYLINDERS, analyze_pull
from dynoai_lab.analysis.weather import CORRECTION_STANDARDS
from dynoai_lab.datasets import DATA_FOLDER, DEMO_LOG
from dynoai_lab.ecu import ECU, TEMPLATE_TUNE, make_base_ecu
from dynoai_lab.health import health
from dynoai_lab.history import TableHistory
from dynoai_lab.io import read_log, read_pvv, read_tune, write_tune
from dynoai_lab.output import save_analysis
from dynoai_lab.tuning import START_VE_ERROR, TuningSession

logger = logging.getLogger(__name__)

#: Tune choice that builds a tune from the engine's true VE.
SIMULATED_TUNE = "simulated"

#: Suffixes of tunes the panel lists and accepts as uploads.
TUNE_SUFFIXES = (".pvv", ".msq")

#: Height of each plot [px].
FIGURE_HEIGHT = 380


class WorkbenchError(ValueError):
    """A request the panel cannot carry out; shown as one message."""


def _handler(action):
    """Show a handler's errors as one message instead of raising them."""

    def decorate(method):
        @functools.wraps(method)
        def wrapper(self, *args, **kwargs):
            self.last_error = None
            try:
                return method(self, *args, **kwargs)
            except Exception as error:  # noqa: BLE001 - shown, and logged
                self._report_error(action, error)
                return None

        return wrapper

    return decorate


class Workbench:
    """Dyno control panel: pull, analyze, correct, repeat, roll back.

    Parameters
    ----------
    engine : str
        Engine parameter set of the virtual dyno.
    seed : int
        Seed of the simulated pulls and of the simulated base tune's
        VE error.
    dyno : str
        Dyno preset of the virtual dyno.
    plan : str
        Test plan of **Trigger Pull**, one of
        :data:`dynoai_lab.sim.PLAN_NAMES`.
    tune : str
        ``"simulated"`` for a base tune built from the engine's true VE
        (8 to 15 % off when the VE-error box is ticked), or the path of
        a ``.pvv`` or ``.msq`` file.
    iterations : int
        Largest number of pulls of a closed-loop tuning session.
    workdir : path-like, optional
        Folder for uploads and downloads; a new temporary folder by
        default.
    """

    def __init__(
        self,
        engine="m8-114",
        seed=0,
        dyno="dynojet-250i-motorcycle",
        plan="wot",
        tune=SIMULATED_TUNE,
        iterations=4,
        workdir=None,
    ):
        self.workdir = Path(
            workdir or tempfile.mkdtemp(prefix="dynoai-workbench-")
        )
        self.last_error = None
        self.log = None
        self.truth = None
        self.analysis = None
        self.rejected = None
        self.session = None
        self.tune = None
        self.tables = {}
        self.locked = {}
        self.history = TableHistory()
        self.timings = {}
        self.pull_count = 0
        self.downloads = {}
        self._applied = False
        self._running = False
        self._thread = None
        self._stop = threading.Event()
        self._loop = _kernel_loop()
        self._build_controls(engine, seed, dyno, plan, tune, iterations)
        self._build_outputs()
        self._connect()
        self.load_tune()

    # -- layout ----------------------------------------------------------

    def _build_controls(self, engine, seed, dyno, plan, tune, iterations):
        self.engine = widgets.Dropdown(
            options=sim.engine_names(), value=engine, description="Engine"
        )
        self.dyno = widgets.Dropdown(
            options=sim.dyno_names(), value=dyno, description="Dyno"
        )
        self.plan = widgets.Dropdown(
            options=list(sim.PLAN_NAMES), value=plan, description="Plan"
        )
        self.seed = widgets.BoundedIntText(
            value=seed, min=0, max=2**31 - 1, description="Seed"
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
        self.standard = widgets.Dropdown(
            options=list(CORRECTION_STANDARDS),
            value="SAE J1349",
            description="Standard",
        )
        self.ve_error = widgets.Checkbox(
            value=True, description="Simulated tune 8-15 % off"
        )
        options = [("simulated base tune", SIMULATED_TUNE)]
        options += [(path.name, str(path)) for path in bundled_tunes()]
        if tune not in [value for _, value in options]:
            options.append((Path(tune).name, str(tune)))
        self.tune_choice = widgets.Dropdown(
            options=options, value=str(tune), description="Tune"
        )
        self.tune_upload = widgets.FileUpload(
            accept=",".join(TUNE_SUFFIXES), description="Upload tune"
        )
        log_options = [("(none: use Trigger Pull)", "")]
        log_options += [(path.name, str(path)) for path in bundled_logs()]
        self.log_choice = widgets.Dropdown(
            options=log_options, value="", description="Real log"
        )
        self.log_upload = widgets.FileUpload(description="Upload log")
        self.log_upload.add_class("dynoai-log-upload")
        self.iterations = widgets.BoundedIntText(
            value=iterations, min=1, max=20, description="Iterations"
        )
        self.trigger_button = _button("Trigger Pull", "primary")
        self.analyze_button = _button("Analyze Pull", disabled=True)
        self.tune_button = _button("Start Closed-Loop Tuning", "primary")
        self.stop_button = _button("Stop", "danger", disabled=True)
        self.apply_button = _button("Apply", "success", disabled=True)
        self.rollback_button = _button("Roll Back", "warning", disabled=True)
        self.health_button = _button("Health Check")
        self.download_button = _button("Prepare Downloads", disabled=True)

        self.cylinder = widgets.ToggleButtons(
            options=list(CYLINDERS), value="front", description="Cylinder"
        )
        self.view = widgets.Dropdown(
            options=[
                (label, key) for key, label in plotting.CELL_VIEWS.items()
            ],
            value="ratio",
            description="View",
        )
        self.lock_rpm = widgets.FloatRangeSlider(
            value=(0.0, 2000.0),
            min=0.0,
            max=10000.0,
            step=250.0,
            description="rpm",
        )
        self.lock_load = widgets.FloatRangeSlider(
            value=(0.0, 40.0), min=0.0, max=110.0, step=1.0, description="load"
        )
        self.lock_both = widgets.Checkbox(value=True, description="both")
        self.lock_button = _button("Lock")
        self.unlock_button = _button("Unlock")
        self.click_locks = widgets.Checkbox(
            value=False, description="click a cell to lock or unlock it"
        )

    def _build_outputs(self):
        self.progress = widgets.IntProgress(
            value=0, min=0, max=self.iterations.value, description="Pull 0"
        )
        self.progress.add_class("dynoai-progress")
        self.progress_text = widgets.HTML("")
        self.progress_text.add_class("dynoai-progress-text")
        self.message = widgets.HTML("")
        self.message.add_class("dynoai-message")
        self.status = widgets.HTML("Pick a tune and trigger a pull.")
        self.status.add_class("dynoai-status")
        self.health_line = widgets.HTML("Health: not checked yet")
        self.health_line.add_class("dynoai-health")
        self.lock_table = widgets.HTML("")
        self.lock_table.add_class("dynoai-locks")
        self.download_links = widgets.HTML("")
        self.download_links.add_class("dynoai-downloads")
        self.plots = {
            name: widgets.Box(
                [_figure_widget(name, go.Figure())],
                layout=widgets.Layout(width="100%"),
            )
            for name in ("power", "lambda", "heatmap", "error")
        }

    def _connect(self):
        self.trigger_button.on_click(lambda _: self.trigger_pull())
        self.analyze_button.on_click(lambda _: self.analyze_pull())
        self.tune_button.on_click(lambda _: self.start_tuning())
        self.stop_button.on_click(lambda _: self.stop())
        self.apply_button.on_click(lambda _: self.apply())
        self.rollback_button.on_click(lambda _: self.rollback())
        self.health_button.on_click(lambda _: self.check_health())
        self.download_button.on_click(lambda _: self.prepare_downloads())
        self.lock_button.on_click(lambda _: self._lock_from_controls(True))
        self.unlock_button.on_click(lambda _: self._lock_from_controls(False))
        for control in (self.engine, self.ve_error, self.tune_choice):
            control.observe(lambda _: self.load_tune(), names="value")
        self.log_choice.observe(self._on_log_choice, names="value")
        self.tune_upload.observe(self._on_tune_upload, names="value")
        self.log_upload.observe(self._on_log_upload, names="value")
        for control in (self.cylinder, self.view):
            control.observe(lambda _: self._draw_heatmap(), names="value")

    def widget(self):
        """Return the panel's layout for display."""
        setup = widgets.VBox(
            [
                widgets.HBox([self.engine, self.dyno, self.plan, self.seed]),
                widgets.HBox(
                    [
                        self.pressure,
                        self.temperature,
                        self.humidity,
                        self.standard,
                    ]
                ),
                widgets.HBox(
                    [self.tune_choice, self.tune_upload, self.ve_error]
                ),
                widgets.HBox([self.log_choice, self.log_upload]),
            ]
        )
        buttons = widgets.HBox(
            [
                self.trigger_button,
                self.analyze_button,
                self.tune_button,
                self.iterations,
                self.stop_button,
                self.apply_button,
                self.rollback_button,
            ]
        )
        progress = widgets.HBox([self.progress, self.progress_text])
        cell_controls = widgets.VBox(
            [
                widgets.HBox([self.cylinder, self.view]),
                widgets.HBox(
                    [
                        self.lock_rpm,
                        self.lock_load,
                        self.lock_both,
                        self.lock_button,
                        self.unlock_button,
                    ]
                ),
                self.click_locks,
            ]
        )
        plots = widgets.GridBox(
            [
                self.plots["power"],
                self.plots["lambda"],
                widgets.VBox([self.plots["heatmap"], cell_controls]),
                widgets.VBox([self.plots["error"], self.lock_table]),
            ],
            layout=widgets.Layout(grid_template_columns="50% 50%"),
        )
        footer = widgets.HBox(
            [self.health_button, self.download_button, self.download_links]
        )
        return widgets.VBox(
            [
                setup,
                buttons,
                progress,
                self.message,
                self.status,
                self.health_line,
                plots,
                footer,
            ]
        )

    @property
    def power_figure(self):
        """The power and torque FigureWidget now shown."""
        return self.plots["power"].children[0]

    @property
    def lambda_figure(self):
        """The lambda FigureWidget now shown."""
        return self.plots["lambda"].children[0]

    @property
    def heatmap_figure(self):
        """The VE correction heatmap FigureWidget now shown."""
        return self.plots["heatmap"].children[0]

    @property
    def error_figure(self):
        """The error-per-iteration FigureWidget now shown."""
        return self.plots["error"].children[0]

    def _draw(self, name, figure):
        """Show ``figure`` in the plot slot ``name``; return its widget.

        Each update puts a new FigureWidget, built with all its data, in
        the slot and closes the old one. Restyling one FigureWidget sends
        its changes in several messages. The browser sometimes dropped
        them and kept an empty plot (plotly 7.1, anywidget 0.11, Voila
        0.5), but a new widget arrives with its data in one state.

        NOTE: each new FigureWidget also sends plotly's 5 MB front-end
        bundle, so a plot takes seconds to appear on a loaded machine.
        """
        widget = _figure_widget(name, figure)
        box = self.plots[name]
        old = box.children
        box.children = (widget,)
        for child in old:
            child.close()
        return widget

    # -- tune and log ----------------------------------------------------

    @_handler("Load tune")
    def load_tune(self, choice=None):
        """Load the chosen tune and start a fresh history and lock set.

        Parameters
        ----------
        choice : str, optional
            ``"simulated"`` or a tune file's path; default the tune
            selected in the panel.
        """
        if self.busy:
            raise WorkbenchError(
                "a tuning session is running; press Stop before loading "
                "another tune"
            )
        choice = self.tune_choice.value if choice is None else str(choice)
        self.tune = None if choice == SIMULATED_TUNE else read_tune(choice)
        if self.tune is None:
            ecu = self._base_ecu()
            tables = {"front": ecu.ve_front, "rear": ecu.ve_rear}
            label = f"simulated base tune of {self.engine.value}"
        else:
            tables = {"front": self.tune.ve_front, "rear": self.tune.ve_rear}
            label = Path(choice).name
        self.tables = {cyl: t.copy(deep=True) for cyl, t in tables.items()}
        self.locked = {
            cyl: np.zeros(t.shape, bool) for cyl, t in self.tables.items()
        }
        self.history = TableHistory()
        self.analysis = None
        self.rejected = None
        self._applied = False
        self._set_lock_ranges()
        self._draw_locks()
        self._refresh_buttons()
        table = self.tables["front"]
        self._say(
            f"Tune {label}: VE {table.shape[0]} × {table.shape[1]} on rpm "
            f"and {table.dims[1]}."
        )
        return self.tables

    @_handler("Upload tune")
    def upload_tune(self, name, content):
        """Store an uploaded tune file and load it.

        Parameters
        ----------
        name : str
            File name as uploaded; its suffix must be ``.pvv`` or
            ``.msq``.
        content : bytes
            The file's bytes.
        """
        path = self._store_upload(name, content, TUNE_SUFFIXES)
        read_tune(path)
        options = list(self.tune_choice.options)
        if str(path) not in [value for _, value in options]:
            options.append((f"uploaded: {path.name}", str(path)))
            self.tune_choice.options = options
        if self.tune_choice.value == str(path):
            return self.load_tune(path)
        self.tune_choice.value = str(path)
        return self.tables

    @_handler("Load log")
    def load_log(self, path):
        """Read a real log and show its power and lambda.

        Parameters
        ----------
        path : path-like
            A dyno or ECU log that :func:`dynoai_lab.read_log` reads.
        """
        log = read_log(path)
        analysis = analyze_pull(log, None, standard=self.standard.value)
        self.log, self.truth = log, None
        self.analysis = None
        self._applied = False
        self._draw_pull(analysis)
        self._refresh_buttons()
        self._say(
            f"Log {Path(path).name}: {log.sizes['time']} samples; press "
            "Analyze Pull for the VE correction."
        )
        return log

    @_handler("Upload log")
    def upload_log(self, name, content):
        """Store an uploaded log file and load it.

        Parameters
        ----------
        name : str
            File name as uploaded.
        content : bytes
            The file's bytes.
        """
        path = self._store_upload(name, content, None)
        return self.load_log(path)

    def _store_upload(self, name, content, suffixes):
        filename = Path(str(name)).name
        if not filename or filename in (".", ".."):
            raise WorkbenchError(f"upload name {name!r} is not a file name")
        if suffixes and Path(filename).suffix.lower() not in suffixes:
            raise WorkbenchError(
                f"{filename} is not a tune file; expected one of "
                + ", ".join(suffixes)
            )
        if not content:
            raise WorkbenchError(f"{filename} is empty")
        folder = self.workdir / "uploads"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / filename
        _write_atomic(path, bytes(content))
        return path

    def _on_tune_upload(self, change):
        if change["new"]:
            item = change["new"][0]
            self.upload_tune(item["name"], bytes(item["content"]))

    def _on_log_upload(self, change):
        if change["new"]:
            item = change["new"][0]
            self.upload_log(item["name"], bytes(item["content"]))

    def _on_log_choice(self, change):
        if change["new"]:
            self.load_log(change["new"])

    # -- pulls -----------------------------------------------------------

    @_handler("Trigger Pull")
    def trigger_pull(self):
        """Run the chosen plan on the virtual dyno; plot power and lambda.

        Returns
        -------
        xarray.Dataset
            The simulated log.
        """
        self._require_idle()
        started = time.perf_counter()
        engine = sim.get_engine(self.engine.value)
        ecu = self._sim_ecu()
        weather = self.weather()
        plan = sim.named_plan(self.plan.value, engine, ecu, weather)
        log, truth = sim.simulate_plan(
            engine,
            ecu,
            plan,
            seed=self.seed.value,
            dyno=sim.get_dyno(self.dyno.value),
            weather=weather,
        )
        analysis = analyze_pull(log, ecu, standard=self.standard.value)
        self.log, self.truth = log, truth
        self.analysis = None
        self._applied = False
        self._draw_pull(analysis)
        self.timings["trigger_pull_s"] = time.perf_counter() - started
        self.pull_count += 1
        self._refresh_buttons()
        self._say(
            f"Pull {self.pull_count}, {self.plan.value}: "
            f"{log.sizes['time']} samples, "
            f"{float(log['time'][-1] - log['time'][0]):.1f} s"
            + _peak_text(analysis)
        )
        return log

    @_handler("Analyze Pull")
    def analyze_pull(self):
        """Compute the VE correction of the last pull; draw the heatmap.

        Returns
        -------
        PullAnalysis
        """
        self._require_idle()
        if self.log is None:
            raise WorkbenchError(
                "no pull to analyze; press Trigger Pull or load a log first"
            )
        tune = self._working_tune()
        analysis = analyze_pull(
            self.log,
            tune,
            standard=self.standard.value,
            locked=self.locked,
        )
        self._show_analysis(analysis)
        return analysis

    def _show_analysis(self, analysis):
        self._take_analysis(analysis)
        self._draw_analysis()

    def _take_analysis(self, analysis):
        self.analysis = analysis
        self._applied = False
        self.rejected = {
            cyl: cells.rejection_counts(
                self.log, analysis.samples, self.tables[cyl], cyl
            )
            for cyl in CYLINDERS
        }

    def _draw_analysis(self):
        analysis = self.analysis
        self._draw_pull(analysis)
        self._draw_heatmap()
        self._refresh_buttons()
        if analysis.corrections is None:
            reason = "; ".join(analysis.notes) or "no usable wideband"
            self._warn(f"No VE correction: {reason}.")
            return
        coverage = self._coverage_text(analysis.corrections)
        if coverage is None:
            self._warn(
                "The pull did not cover the VE table: no cell gathered "
                f"enough samples. {self._span_text()} Run a plan that "
                "covers the table (covering or steady-state) or check that "
                "the tune matches the log."
            )
            return
        self._say(f"VE correction computed: {coverage}.")

    def _coverage_text(self, corrections):
        """Describe the cells covered per cylinder; None when none are."""
        min_weight = corrections.attrs.get("min_weight_s", 0.0)
        parts = []
        total = 0
        for cyl in CYLINDERS:
            weight = corrections["weight"].sel(cylinder=cyl).values
            covered = int((weight >= min_weight).sum())
            changed = int(
                (corrections["applied_ratio"].sel(cylinder=cyl) != 1).sum()
            )
            total += covered
            parts.append(
                f"{cyl} {covered} of {weight.size} cells covered, "
                f"{changed} to change"
            )
        return "; ".join(parts) if total else None

    def _span_text(self):
        table = self.tables["front"]
        load_dim = table.dims[1]
        channel = cells.LOAD_CHANNELS.get(load_dim)
        text = (
            f"The table spans {table['rpm'].values[0]:g} to "
            f"{table['rpm'].values[-1]:g} rpm and {load_dim} "
            f"{table[load_dim].values[0]:g} to "
            f"{table[load_dim].values[-1]:g}"
        )
        if channel in self.log and "engine_speed" in self.log:
            rpm = self.log["engine_speed"].values
            load = self.log[channel].values
            text += (
                f"; the log spans {np.nanmin(rpm):.0f} to "
                f"{np.nanmax(rpm):.0f} rpm and {channel} "
                f"{np.nanmin(load):.1f} to {np.nanmax(load):.1f}"
            )
        return text + "."

    # -- closed loop -----------------------------------------------------

    @property
    def busy(self):
        """True while a tuning session runs in the background."""
        return self._running

    @_handler("Start Closed-Loop Tuning")
    def start_tuning(self, background=True):
        """Run a closed-loop tuning session on the virtual dyno.

        Parameters
        ----------
        background : bool
            Run in a thread and return at once, so the panel stays
            responsive; False runs to the end before returning (for
            notebooks and tests).

        Returns
        -------
        TuningSession
        """
        self._require_idle()
        if getattr(self.tune, "shared_ve", False):
            raise WorkbenchError(
                f"{Path(self.tune.path).name} has one VE table for every "
                "cylinder, but closed-loop tuning corrects the front and "
                "rear tables apart; use Trigger Pull, Analyze Pull and "
                "Apply instead"
            )
        engine = sim.get_engine(self.engine.value)
        session = TuningSession(
            engine,
            self._sim_ecu(),
            seed=self.seed.value,
            max_iterations=self.iterations.value,
            locked={cyl: mask.copy() for cyl, mask in self.locked.items()},
            simulate_kwargs={
                "dyno": sim.get_dyno(self.dyno.value),
                "weather": self.weather(),
            },
        )
        self.session = session
        self._stop.clear()
        self.progress.max = session.max_iterations
        self.progress.value = 0
        self.progress.description = "Pull 0"
        self.progress_text.value = "starting"
        self._say("Closed-loop tuning started.")
        if not background:
            self._run_session(session)
            return session
        self._set_busy(True)
        self._thread = threading.Thread(
            target=self._run_session,
            args=(session,),
            name="dynoai-tuning",
            daemon=True,
        )
        self._thread.start()
        self._refresh_buttons()
        return session

    def _run_session(self, session):
        """Run a session; in a thread, widgets change on the main loop."""
        self._set_busy(True)
        try:
            session.run(
                progress=self._on_iteration, should_stop=self._stop.is_set
            )
            self._finish_session(session)
            self._post(self._show_session_end, session)
        except Exception as error:  # noqa: BLE001 - shown, and logged
            self._post(self._report_error, "Closed-loop tuning", error)
        finally:
            self._running = False
            self._post(self._set_busy, False)

    def _post(self, function, *args):
        """Call ``function`` on the kernel's main loop, or here without one.

        Widget messages sent from a background thread reached the
        browser late or not at all (ipykernel 7, Voila 0.5), so a
        session thread hands every widget change to the main loop.
        """
        loop = self._loop
        if (
            loop is None
            or threading.current_thread() is threading.main_thread()
        ):
            function(*args)
        else:
            loop.add_callback(function, *args)

    def _on_iteration(self, record, session):
        history = session.history
        self._post(self._show_iteration, record, session, history)

    def _show_iteration(self, record, session, history):
        self.progress.value = record.iteration
        self.progress.description = f"Pull {record.iteration}"
        errors = [r.mean_abs_lambda_error_pct for r in session.records]
        self.progress_text.value = html.escape(
            f"pull {record.iteration} of {session.max_iterations}, "
            f"iteration {record.iteration}: mean |lambda error| per "
            "iteration " + ", ".join(f"{e:.2f} %" for e in errors)
        )
        self._draw("error", plotting.tuning_error_figure(history))

    def _finish_session(self, session):
        """Take the session's tables and changes as the panel's own."""
        self.history.changes.extend(session.table_history.changes)
        self.tables = {
            "front": session.ecu.ve_front.copy(deep=True),
            "rear": session.ecu.ve_rear.copy(deep=True),
        }
        if session.last_log is not None:
            self.log, self.truth = session.last_log, None
            self._take_analysis(session.last_analysis)

    def _show_session_end(self, session):
        if session.last_log is not None:
            self._draw_analysis()
        self.progress.max = max(len(session.records), 1)
        self.progress.value = len(session.records)
        self._say(f"Closed-loop tuning {session.stop_reason}.")

    @_handler("Stop")
    def stop(self):
        """Ask the running session to end after the pull in progress."""
        if not self.busy:
            raise WorkbenchError("no tuning session is running")
        self._stop.set()
        self._say("Stopping after the pull in progress.")

    def wait(self, timeout=None):
        """Wait for a background tuning session to end [s]; return it."""
        if self._thread is not None:
            self._thread.join(timeout)
        return self.session

    # -- apply, roll back, locks -----------------------------------------

    @_handler("Apply")
    def apply(self):
        """Apply the last correction to the tune; locked cells stay.

        Returns
        -------
        dict
            The new tables, ``{"front": DataArray, "rear": DataArray}``.
        """
        self._require_idle()
        if self.analysis is None or self.analysis.corrections is None:
            raise WorkbenchError("no correction to apply; analyze a pull")
        if self._applied:
            raise WorkbenchError(
                "this correction is already applied; trigger and analyze "
                "a new pull, or Roll Back"
            )
        ratios = cells.applied_ratios(
            self.analysis.corrections,
            self.locked,
            shared_ve=getattr(self.tune, "shared_ve", False),
        )
        label = f"apply {len(self.history) // 2 + 1}"
        # NOTE: no decimals= here, so the recorded table keeps more
        # decimals than a .pvv stores; rolling back a .pvv that was saved
        # and loaded again would be rejected as edited.
        self.tables = {
            cyl: self.history.apply(
                f"ve_{cyl}", self.tables[cyl], ratios[cyl], label
            )
            for cyl in CYLINDERS
        }
        self._applied = True
        self._refresh_buttons()
        changed = sum(int((ratios[c] != 1.0).sum()) for c in CYLINDERS)
        self._say(
            f"Applied: {changed} cells changed, locked cells kept; "
            f"{len(self.history) // 2} change(s) can be rolled back."
        )
        return self.tables

    @_handler("Roll Back")
    def rollback(self):
        """Undo the last applied change of both tables, bit for bit.

        Returns
        -------
        dict
            The restored tables.
        """
        self._require_idle()
        if len(self.history) == 0:
            raise WorkbenchError("nothing to roll back")
        self.tables = {
            cyl: self.history.rollback(f"ve_{cyl}", self.tables[cyl])
            for cyl in CYLINDERS
        }
        self._applied = False
        self._refresh_buttons()
        self._say(
            f"Rolled back; {len(self.history) // 2} change(s) left in the "
            "history."
        )
        return self.tables

    @_handler("Lock cells")
    def lock_cells(self, rpm_range, load_range, cylinders=CYLINDERS):
        """Lock the cells inside an rpm and a load range.

        Parameters
        ----------
        rpm_range : (float, float)
            Engine speed range, inclusive [rpm].
        load_range : (float, float)
            Load range, inclusive, in the table's unit ([kPa] or [%]).
        cylinders : sequence of str
            Tables to lock in.

        Returns
        -------
        int
            Number of locked cells over both tables.
        """
        return self._set_locks(rpm_range, load_range, cylinders, True)

    @_handler("Unlock cells")
    def unlock_cells(self, rpm_range, load_range, cylinders=CYLINDERS):
        """Unlock the cells inside an rpm and a load range.

        Parameters are those of :meth:`lock_cells`.
        """
        return self._set_locks(rpm_range, load_range, cylinders, False)

    @_handler("Lock cell")
    def toggle_lock(self, cylinder, rpm, load):
        """Lock or unlock the one cell at a breakpoint pair.

        Parameters
        ----------
        cylinder : str
            ``front`` or ``rear``.
        rpm : float
            Engine speed breakpoint [rpm].
        load : float
            Load breakpoint [kPa] or [%].
        """
        mask = cells.lock_mask(self.tables[cylinder], (rpm, rpm), (load, load))
        self.locked[cylinder] = self.locked[cylinder] ^ mask
        self._draw_locks()
        self._draw_heatmap()
        return self.locked_count()

    def locked_count(self):
        """Return the number of locked cells over both tables."""
        return int(sum(mask.sum() for mask in self.locked.values()))

    def _set_locks(self, rpm_range, load_range, cylinders, value):
        for cyl in cylinders:
            mask = cells.lock_mask(self.tables[cyl], rpm_range, load_range)
            self.locked[cyl] = np.where(mask, value, self.locked[cyl])
        self._draw_locks()
        self._draw_heatmap()
        return self.locked_count()

    def _lock_from_controls(self, value):
        cylinders = (
            CYLINDERS if self.lock_both.value else (self.cylinder.value,)
        )
        method = self.lock_cells if value else self.unlock_cells
        method(self.lock_rpm.value, self.lock_load.value, cylinders)

    def _on_heatmap_click(self, trace, points, state):
        if not self.click_locks.value or not points.point_inds:
            return
        row, column = points.point_inds[0]
        table = self.tables[self.cylinder.value]
        self.toggle_lock(
            self.cylinder.value,
            float(table["rpm"].values[row]),
            float(table[table.dims[1]].values[column]),
        )

    # -- downloads and health --------------------------------------------

    @_handler("Prepare Downloads")
    def prepare_downloads(self):
        """Write the corrected tune and the analysis; show download links.

        The corrected tune has the input tune's format (``.pvv`` or
        ``.msq``). The simulated base tune is written into the bundled
        Power Vision template when the VE axes match. The analysis is
        NetCDF (power, samples, corrections), ``summary.json`` and a
        CSV of the corrections per cell.

        Returns
        -------
        dict
            ``{file name: path}`` of the written files.
        """
        self._require_idle()
        if self.analysis is None:
            raise WorkbenchError("no analysis to download; analyze a pull")
        folder = self.workdir / "downloads"
        files = {}
        tune_path = self._write_corrected_tune(folder)
        if tune_path is not None:
            files[tune_path.name] = tune_path
        analysis_folder = folder / "analysis"
        summary = save_analysis(self.analysis, analysis_folder)
        for name in summary["files"]:
            files[name] = analysis_folder / name
        if self.analysis.corrections is not None:
            frame = cells.corrections_frame(
                self.analysis.corrections, self.rejected
            )
            csv_path = analysis_folder / "corrections.csv"
            _write_atomic(csv_path, frame.to_csv(index=False).encode())
            files[csv_path.name] = csv_path
        if len(self.history):
            history_path = analysis_folder / "history.nc"
            self.history.save(history_path)
            files[history_path.name] = history_path
        self.downloads = files
        self.download_links.value = _download_html(files)
        skipped = "" if tune_path else " (no tune file for these VE axes)"
        self._say(f"Downloads ready: {len(files)} files{skipped}.")
        return files

    def _write_corrected_tune(self, folder):
        tune = self.tune
        if tune is None:
            template = read_pvv(TEMPLATE_TUNE)
            if not _same_axes(template.ve_front, self.tables["front"]):
                return None
            tune = template
            path = folder / f"{self.engine.value}_corrected.pvv"
        else:
            source = Path(tune.path)
            path = folder / f"{source.stem}_corrected{source.suffix}"
        folder.mkdir(parents=True, exist_ok=True)
        write_tune(
            tune,
            path,
            ve_front=self.tables["front"],
            ve_rear=self.tables["rear"],
        )
        return path

    @_handler("Health check")
    def check_health(self):
        """Run the health check and show each component's status."""
        report = health(self.engine.value, seed=self.seed.value)
        marks = {"ok": "✔", "fail": "✖", "skip": "–"}
        items = []
        for name, item in report["components"].items():
            title = html.escape(item["detail"], quote=True)
            mark = marks.get(item["status"], "?")
            items.append(
                f'<span title="{title}">{html.escape(name)} {mark} '
                f"{item['status']}</span>"
            )
        checked = time.strftime("%H:%M:%S")
        self.health_line.value = f"Health at {checked}: " + " · ".join(items)
        return report

    # -- helpers ---------------------------------------------------------

    def weather(self):
        """Return the chosen weather as a :class:`dynoai_lab.sim.Weather`."""
        return sim.Weather(
            pressure=self.pressure.value,
            temperature=self.temperature.value,
            relative_humidity=self.humidity.value,
        )

    def _base_ecu(self):
        engine = sim.get_engine(self.engine.value)
        ve_error = START_VE_ERROR if self.ve_error.value else None
        return make_base_ecu(engine, ve_error=ve_error, seed=self.seed.value)

    def _sim_ecu(self):
        """Build the virtual dyno's ECU around the working VE tables."""
        base = self._base_ecu()
        if self.tune is None:
            return base.with_ve(
                ve_front=self.tables["front"], ve_rear=self.tables["rear"]
            )
        load_dim = self.tables["front"].dims[1]
        if load_dim != "map":
            raise WorkbenchError(
                f"{Path(self.tune.path).name} has VE on {load_dim}, but "
                "the virtual dyno's ECU needs VE on MAP (speed density); "
                "load a real log to analyze this tune, or choose a "
                "MAP-based tune"
            )
        afr = getattr(self.tune, "afr_target", None)
        if afr is None or afr.dims != ("rpm", "map"):
            afr = base.afr_target
        return ECU(
            ve_front=self.tables["front"],
            ve_rear=self.tables["rear"],
            afr_target=afr,
            displacement=base.displacement,
            n_cylinders=base.n_cylinders,
            spark=base.spark,
            features=base.features,
        )

    def _working_tune(self):
        """Return the tune with the working VE tables, for the analysis."""
        if self.tune is None:
            return self._sim_ecu()
        return _WorkingTune(
            ve_front=self.tables["front"],
            ve_rear=self.tables["rear"],
            afr_target=self.tune.afr_target,
            path=self.tune.path,
        )

    def _require_idle(self):
        if self.busy:
            raise WorkbenchError(
                "a tuning session is running; wait for it or press Stop"
            )

    def _set_busy(self, busy):
        self._running = busy
        for button in (
            self.trigger_button,
            self.analyze_button,
            self.tune_button,
            self.apply_button,
            self.rollback_button,
            self.download_button,
        ):
            button.disabled = busy
        self.stop_button.disabled = not busy
        if not busy:
            self._refresh_buttons()

    def _refresh_buttons(self):
        busy = self.busy
        self.stop_button.disabled = not busy
        self.trigger_button.disabled = busy
        self.tune_button.disabled = busy
        self.analyze_button.disabled = busy or self.log is None
        has_correction = (
            self.analysis is not None and self.analysis.corrections is not None
        )
        self.apply_button.disabled = (
            busy or not has_correction or (self._applied)
        )
        self.rollback_button.disabled = busy or len(self.history) == 0
        self.download_button.disabled = busy or self.analysis is None

    def _set_lock_ranges(self):
        table = self.tables["front"]
        load = table[table.dims[1]].values
        rpm = table["rpm"].values
        self.lock_rpm.min, self.lock_rpm.max = 0.0, float(rpm[-1])
        self.lock_rpm.value = (float(rpm[0]), float(rpm[min(3, rpm.size - 1)]))
        self.lock_load.min, self.lock_load.max = 0.0, float(load[-1])
        self.lock_load.value = (float(load[0]), float(load[0]))
        self.lock_load.description = table.dims[1]

    def _draw_pull(self, analysis):
        self._draw("power", plotting.power_torque_figure(analysis))
        self._draw("lambda", plotting.lambda_figure(analysis))

    def _draw_heatmap(self):
        if self.analysis is None or self.analysis.corrections is None:
            return
        cylinder = self.cylinder.value
        figure = plotting.cell_heatmap(
            self.analysis.corrections,
            cylinder,
            self.view.value,
            rejected=None
            if self.rejected is None
            else self.rejected[cylinder],
            locked=self.locked[cylinder],
        )
        widget = self._draw("heatmap", figure)
        widget.data[0].on_click(self._on_heatmap_click)
        self.heatmap_figure.data[0].on_click(self._on_heatmap_click)

    def _draw_locks(self):
        rows = []
        for cyl in CYLINDERS:
            table = self.tables[cyl]
            load_dim = table.dims[1]
            for i, j in zip(*np.nonzero(self.locked[cyl]), strict=True):
                rows.append(
                    f"<tr><td>{cyl}</td><td>{table['rpm'].values[i]:g}</td>"
                    f"<td>{table[load_dim].values[j]:g}</td>"
                    f"<td>{table.values[i, j]:.1f}</td></tr>"
                )
        if not rows:
            self.lock_table.value = "No locked cells."
            return
        shown = rows[:40]
        more = len(rows) - len(shown)
        load_dim = self.tables["front"].dims[1]
        self.lock_table.value = (
            f"<b>{len(rows)} locked cells</b>"
            + (f" (first {len(shown)} listed)" if more else "")
            + "<table><tr><th>cylinder</th><th>rpm</th>"
            f"<th>{load_dim}</th><th>VE [%]</th></tr>"
            + "".join(shown)
            + "</table>"
        )

    def _say(self, text):
        self.status.value = html.escape(text)
        self.message.value = ""

    def _warn(self, text):
        self.message.value = (
            '<div style="color:#8a5300;font-weight:bold">'
            f"{html.escape(text)}</div>"
        )

    def _report_error(self, action, error):
        logger.error("%s failed", action, exc_info=error)
        if isinstance(error, (ValueError, OSError, KeyError)):
            text = str(error).strip() or type(error).__name__
        else:
            text = f"{type(error).__name__}: {error}"
        lines = text.splitlines()
        text = f"{action} failed: {lines[0] if lines else text}"
        self.last_error = text
        self.message.value = (
            '<div style="color:#b00020;font-weight:bold">'
            f"{html.escape(text)}</div>"
        )


class _WorkingTune:
    """A read tune with the panel's working VE tables in its place."""

    def __init__(self, ve_front, ve_rear, afr_target, path):
        self.ve_front = ve_front
        self.ve_rear = ve_rear
        self.afr_target = afr_target
        self.path = path


def _kernel_loop():
    """Return the IPython kernel's main event loop, or None outside one."""
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    kernel = getattr(get_ipython(), "kernel", None)
    return getattr(kernel, "io_loop", None)


def served_by_voila():
    """Return True in a kernel that Voila started (it sets the variable)."""
    return "VOILA_SERVER_URL" in os.environ


def bundled_tunes():
    """Return the tune files the panel lists: ``data/`` and the template."""
    found = []
    if DATA_FOLDER.is_dir():
        found = sorted(
            p for p in DATA_FOLDER.iterdir() if p.suffix in TUNE_SUFFIXES
        )
    return [*found, TEMPLATE_TUNE]


def bundled_logs():
    """Return the real logs in ``data/`` that the panel lists."""
    path = DATA_FOLDER / DEMO_LOG
    return [path] if path.is_file() else []


def _button(description, style="", disabled=False):
    return widgets.Button(
        description=description,
        button_style=style,
        disabled=disabled,
        layout=widgets.Layout(width="auto"),
    )


def _figure_widget(name, figure):
    """Return a FigureWidget of ``figure`` with the class dynoai-<name>."""
    figure.update_layout(
        height=FIGURE_HEIGHT,
        margin={"b": 90},
        legend={"orientation": "h", "y": -0.3},
    )
    widget = go.FigureWidget(figure)
    widget.add_class(f"dynoai-{name}")
    return widget


def _peak_text(analysis):
    peaks = analysis.peaks
    power = peaks.get("peak_power_hp")
    # A coast-down never drives the drum, so its peak is not a result.
    if power is None or not np.isfinite(power) or power <= 0:
        return ""
    return (
        f"; peak {power:.1f} hp at {peaks['peak_power_rpm']} rpm "
        f"({analysis.correction_standard})"
    )


def _same_axes(a, b):
    return a.dims == b.dims and all(
        np.array_equal(a[d].values, b[d].values) for d in a.dims
    )


def _write_atomic(path, data):
    """Write bytes through a temporary file in the same folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(
        prefix=f".{path.name}.", suffix=".tmp", dir=path.parent
    )
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
        os.replace(temp, path)
    finally:
        Path(temp).unlink(missing_ok=True)
    return path


#: Largest file offered as a ``data:`` link [bytes]; larger files are
#: listed by path, because the link travels inside the widget state.
MAX_LINK_BYTES = 4_000_000


def _download_html(files):
    """Return links that download each file from a ``data:`` URI."""
    links = []
    for name, path in files.items():
        data = Path(path).read_bytes()
        if len(data) > MAX_LINK_BYTES:
            links.append(
                f"{html.escape(name)} (on disk: {html.escape(str(path))})"
            )
            continue
        encoded = base64.b64encode(data).decode("ascii")
        links.append(
            f'<a download="{html.escape(name, quote=True)}" '
            f'href="data:application/octet-stream;base64,{encoded}">'
            f"{html.escape(name)}</a>"
        )
    return "Download: " + " · ".join(links)
