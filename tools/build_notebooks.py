"""Write the notebooks and report templates from the cell sources below.

Run ``python tools/build_notebooks.py`` after changing a cell here; the
notebooks are committed, and nbval runs them in ``make test``.
"""

import hashlib
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

ROOT = Path(__file__).resolve().parents[1]
KERNEL = {
    "kernelspec": {
        "display_name": "Python 3",
        "language": "python",
        "name": "python3",
    },
    "language_info": {"name": "python"},
}


def code(source, tags=()):
    cell = new_code_cell(source.strip("\n"))
    if tags:
        cell.metadata["tags"] = list(tags)
    return cell


def md(source):
    return new_markdown_cell(source.strip("\n"))


def write(path, cells):
    # Cell ids from the path and position, so that rebuilding a notebook
    # changes only the cells whose source changed.
    for index, cell in enumerate(cells):
        cell["id"] = hashlib.sha256(f"{path}:{index}".encode()).hexdigest()[:8]
    nb = new_notebook(cells=cells, metadata=KERNEL)
    path = ROOT / path
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    print("wrote", path)


REPORT_PULL = [
    md(
        "# Pull report\n\nPower, torque and VE corrections from one dyno "
        "pull. Run by `dynoai-lab demo` with papermill."
    ),
    code(
        """
log_path = ""  # empty: the bundled real Harley pull
tune_path = ""  # empty: the bundled base tune; None: no VE correction
out_dir = ""
wideband = None
""",
        tags=["parameters"],
    ),
    code("""
from pathlib import Path

import pandas as pd

import dynoai_lab as dl
from dynoai_lab import plotting

pd.set_option("display.max_colwidth", None)
plotting.use_offline_renderer()
log_path = log_path or dl.bundled_path(dl.DEMO_LOG)
if tune_path == "":
    tune_path = dl.bundled_path(dl.DEMO_TUNE)
log = dl.read_log(log_path)
tune = dl.read_tune(tune_path) if tune_path else None
analysis = dl.analyze_pull(log, tune, wideband=wideband)
summary = analysis.summary()
dl.summary_table(summary)
"""),
    md(
        "## Wideband channel\n\nWhich sensor fed each VE table, and why the "
        "others were not used."
    ),
    code("""
dl.wideband_table(analysis)
"""),
    md("## Notes"),
    code("""
dl.notes_table(analysis)
"""),
    md("## Power and torque"),
    code("""
plotting.power_torque_figure(analysis)
"""),
    md(
        "## Lambda\n\nMeasured lambda is moved back by the transport delay "
        "to the operating point that produced it; markers are the samples "
        "kept for VE correction."
    ),
    code("""
plotting.lambda_figure(analysis)
"""),
    md(
        "## VE corrections on the tune's own axes\n\n"
        "The ratio is measured lambda over target lambda: above 1 the "
        "cylinder ran lean, so its VE goes up by that ratio (the ECU then "
        "adds fuel); below 1 it ran rich. Only cells that gathered at least "
        "the minimum weight (0.05 s of bilinear-weighted samples) are "
        "corrected, by at most ±15 % in one pull; all other cells keep "
        "their VE exactly. Hover a cell for its ratio, hits and weight."
    ),
    code("""
figures = []
if analysis.corrections is not None:
    for cylinder in ("front", "rear"):
        figure = plotting.correction_heatmap(analysis.corrections, cylinder)
        figures.append(figure)
figures[0] if figures else "no tune given"
"""),
    code("""
figures[1] if len(figures) > 1 else None
"""),
    code("""
dl.rejection_table(analysis)
"""),
    code("""
if out_dir:
    inputs = {"log": str(log_path), "tune": str(tune_path)}
    dl.save_analysis(analysis, Path(out_dir), tune=tune, extra=inputs)
"""),
]

REPORT_TUNING = [
    md(
        "# Closed-loop tuning report\n\nThe virtual dyno pulls, the "
        "analysis corrects the ECU's VE, and the loop repeats until the "
        "lambda error over visited cells is inside the tolerance."
    ),
    code(
        """
engine = "m8-114"
seed = 1
iterations = 4
out_dir = ""
""",
        tags=["parameters"],
    ),
    code("""
from pathlib import Path

import dynoai_lab as dl
from dynoai_lab import plotting, sim
from dynoai_lab.ecu import make_base_ecu
from dynoai_lab.tuning import START_VE_ERROR

plotting.use_offline_renderer()
engine_params = sim.get_engine(engine)
ecu = make_base_ecu(engine_params, ve_error=START_VE_ERROR, seed=seed)
session = dl.TuningSession(
    engine_params, ecu, seed=seed, max_iterations=iterations
)
history = session.run()
summary = session.summary()
dl.iteration_table(summary)
"""),
    md("The session stopped for this reason:"),
    code("""
session.stop_reason
"""),
    code("""
plotting.tuning_error_figure(history)
"""),
    md(
        "## Last pull's measured error, front cylinder\n\n"
        "The last pull measures the table as it stands. When the session "
        "converged, this correction was not applied: the cells are already "
        "inside the tolerance."
    ),
    code("""
plotting.correction_heatmap(session.last_analysis.corrections, "front")
"""),
    code("""
if out_dir:
    dl.save_session(session, Path(out_dir))
"""),
]

VIRTUAL_DYNO = [
    md(
        "# Virtual dyno\n\nPick an engine, a dyno preset, the weather and "
        "a test plan, **Trigger Pull** to run it on the simulated inertia "
        "dyno, then **Analyze Pull** for lambda and the VE correction. The "
        "ECU starts with VE 8 to 15 % off, so the heatmap shows what a "
        "first pull on a new build looks like. Plans: `wot` (free "
        "wide-open-throttle pull), `part-throttle` (absorber-held sweeps), "
        "`covering` (sweeps across the VE table), `steady-state` (every "
        "reachable VE cell held), `step` (throttle steps at a held speed) "
        "and `coast-down` (the drum's losses)."
    ),
    code("""
from dynoai_lab import plotting, sim
from dynoai_lab.widgets import VirtualDynoPanel

plotting.use_offline_renderer()
panel = VirtualDynoPanel(engine="m8-114", seed=0, plan="wot")
panel.widget()
"""),
    md(
        "The cells below set the controls and press the buttons, so the "
        "notebook also runs unattended (and under nbval in the test suite)."
    ),
    code("""
panel.dyno.value = "dynojet-250i-motorcycle"
panel.temperature.value = 30.0
panel.humidity.value = 40.0
panel.trigger_button.click()
assert panel.log is not None, "Trigger Pull produced no log"
panel.status.value
"""),
    code("""
panel.analyze_button.click()
assert panel.analysis.corrections is not None, "Analyze Pull failed"
panel.status.value
"""),
    md(
        "## Truth beside measurement\n\nThe simulator keeps what a real "
        "dyno cannot know: the true lambda per cylinder beside the "
        "wideband reading, and the transport delay it used."
    ),
    code("""
plotting.truth_figure(panel.log, panel.truth)
"""),
    md(
        "## A throttle step\n\nAt a held speed the throttle snaps open: "
        "MAP lags the throttle, the wall film leaves the mixture lean for a "
        "moment although the ECU adds acceleration enrichment, and the "
        "wideband shows it only after the transport delay."
    ),
    code("""
panel.plan.value = "step"
panel.trigger_button.click()
plotting.truth_figure(panel.log, panel.truth, title="Throttle steps")
"""),
]

CLOSED_LOOP = [
    md(
        "# Closed-loop tuning\n\n**Start Closed-Loop Tuning** pulls, "
        "analyzes and corrects the ECU until the lambda error over the "
        "visited cells is inside 1 %, or the iterations run out."
    ),
    code("""
from dynoai_lab import plotting
from dynoai_lab.widgets import TuningPanel

plotting.use_offline_renderer()
panel = TuningPanel(engine="m8-114", seed=0, iterations=4)
panel.widget()
"""),
    code("""
panel.start_button.click()
history = panel.session.history
errors = history["mean_abs_lambda_error_pct"].values
assert errors[-1] < errors[0], f"error did not fall: {errors}"
panel.status.value
"""),
    code("""
import dynoai_lab as dl

dl.iteration_table(panel.session.summary())
"""),
]

WORKBENCH = [
    md(
        "# Dyno workbench\n\nOne screen for a dyno session: pick the engine, "
        "dyno, weather and test plan of the virtual dyno, or load a real "
        "log; pick the tune from `data/` or upload a `.pvv` or `.msq`. "
        "**Trigger Pull** runs the plan and plots power and lambda, "
        "**Analyze Pull** computes the VE correction on the tune's own axes "
        "(hover a cell for its ratio, hits, confidence and rejected "
        "samples), **Apply** writes it into the working tables (locked cells "
        "never change), **Roll Back** restores the tables bit for bit, and "
        "**Start Closed-Loop Tuning** repeats pull, analyze and correct in "
        "the background until **Stop**. `dynoai-lab app` serves this "
        "notebook as a web app."
    ),
    code("""
from dynoai_lab.workbench import Workbench, served_by_voila

bench = Workbench(engine="m8-114", seed=0, plan="wot", iterations=2)
bench.check_health()
bench.widget()
"""),
    md(
        "The cells below press the buttons through the same methods, so the "
        "notebook also runs unattended (and under nbval in the test suite). "
        "They do nothing when Voila serves the notebook, so the web app "
        "starts with an empty panel."
    ),
    code("""
walkthrough = not served_by_voila()
if walkthrough:
    bench.trigger_pull()
    assert bench.last_error is None, bench.last_error
    assert len(bench.power_figure.data) == 2, "no power and torque traces"
    bench.analyze_pull()
    assert bench.last_error is None, bench.last_error
    assert bench.heatmap_figure.data[0].type == "heatmap"
bench.status.value
"""),
    md(
        "Lock the low-speed, low-MAP cells, apply the correction, check that "
        "the locked cells kept their VE, then roll back to the exact tables."
    ),
    code("""
import numpy as np

if walkthrough:
    before = {cyl: table.copy() for cyl, table in bench.tables.items()}
    bench.lock_cells((750, 2000), (10, 40))
    bench.analyze_pull()
    bench.apply()
    assert bench.last_error is None, bench.last_error
    for cyl, table in bench.tables.items():
        locked = bench.locked[cyl]
        assert np.array_equal(table.values[locked], before[cyl].values[locked])
    bench.rollback()
    for cyl, table in bench.tables.items():
        assert np.array_equal(table.values, before[cyl].values)
    bench.unlock_cells((0, 10000), (0, 110))
bench.status.value
"""),
    md(
        "Two iterations of closed-loop tuning, run to the end in this cell "
        "(the button runs it in the background):"
    ),
    code("""
if walkthrough:
    bench.start_tuning(background=False)
    errors = bench.session.history["mean_abs_lambda_error_pct"].values
    assert bench.progress.value == bench.progress.max == 2
    assert errors[-1] < errors[0], f"error did not fall: {errors}"
bench.progress_text.value
"""),
    md(
        "Downloads: the corrected tune in the input's format and the "
        "analysis as NetCDF, JSON and CSV. A broken log gives one message."
    ),
    code("""
if walkthrough:
    files = bench.prepare_downloads()
    assert "m8-114_corrected.pvv" in files, sorted(files)
    bench.upload_log("broken.csv", b"time,engine_speed\\nnot a number,1\\n")
    assert bench.last_error and "broken.csv" in bench.last_error
bench.last_error
"""),
]

REAL_PULL = [
    md(
        "# Real pull: Harley-Davidson CVO Fat Boy, 5th gear\n\nA WinPEP 8 "
        "export of a roll-on into a wide-open-throttle pull, with the bike's "
        "base Power Vision tune (VE indexed by throttle position). See "
        "`data/README.md` for the source and licence."
    ),
    code("""
import dynoai_lab as dl
from dynoai_lab import plotting

plotting.use_offline_renderer()
log = dl.read_log(dl.bundled_path("5TH GEAR.txt"))
tune = dl.read_tune(dl.bundled_path("base.pvv"))
analysis = dl.analyze_pull(log, tune)
dl.summary_table(analysis.summary())
"""),
    md(
        "Two dyno widebands are logged; one is not connected. The analysis "
        "says which one it used:"
    ),
    code("""
dl.wideband_table(analysis)
"""),
    code("""
plotting.power_torque_figure(analysis, title="5th gear pull")
"""),
    code("""
plotting.lambda_figure(analysis)
"""),
    code("""
plotting.correction_heatmap(analysis.corrections, "front")
"""),
    code("""
dl.rejection_table(analysis)
"""),
    md(
        "## Part throttle, earlier in the same session\n\n22 s of part "
        "throttle with closed-throttle fuel cuts. The engine was still at "
        "47 to 50 °C, so a default analysis rejects every sample as a cold "
        "engine, and its notes give the reason:"
    ),
    code("""
part = dl.read_log(dl.bundled_path("PV_Logfile_5.csv_18.txt"))
cold = dl.analyze_pull(part, tune)
[note for note in cold.notes if "no samples kept" in note]
"""),
    md(
        "With the warm-engine limit lowered to 40 °C the log gives "
        "corrections on the tune's throttle-position axes. The collector "
        "wideband feeds both cylinders:"
    ),
    code("""
limits = dl.RejectionLimits(min_coolant_temperature=40.0)
warm = dl.analyze_pull(part, tune, limits=limits)
dl.wideband_table(warm)
"""),
    md(
        "During the fuel cuts the injector time is 0 and the LC-2 sits at "
        "its lean rail (AFR 22.39); those samples are rejected. The "
        "columns ending in `(any)` count every reason a sample has, so the "
        "railed sensor shows too:"
    ),
    code("""
dl.rejection_table(warm)
"""),
    code("""
plotting.correction_heatmap(warm.corrections, "front")
"""),
]


# Batch reports (dynoai-lab batch): per-run templates and the summary.

BATCH_LOG = [
    md(
        "# Batch log report\n\nOne log of a `dynoai-lab batch` run: "
        "power, torque and VE corrections. The log may be any format "
        "`read_log` reads or a simulated NetCDF log."
    ),
    code(
        """
log_path = ""  # empty: the bundled real Harley pull
tune_path = ""  # empty: the bundled base tune; None: no VE correction
wideband = None
out_dir = ""  # empty: save nothing
""",
        tags=["parameters"],
    ),
    code("""
import dynoai_lab as dl
from dynoai_lab import batch, plotting

plotting.use_offline_renderer()
if tune_path == "":
    tune_path = str(dl.bundled_path(dl.DEMO_TUNE))
parameters = {
    "log_path": log_path or str(dl.bundled_path(dl.DEMO_LOG)),
    "tune_path": tune_path,
    "wideband": wideband,
}
analysis = batch.run_log_item(parameters, out_dir or None)
dl.summary_table(analysis.summary())
"""),
    code("""
dl.wideband_table(analysis)
"""),
    code("""
dl.notes_table(analysis)
"""),
    code("""
if analysis.power is not None:
    figure = plotting.power_torque_figure(analysis)
else:
    figure = "no power curve: the log has no drum speed"
figure
"""),
    code("""
figures = []
if analysis.corrections is not None:
    for cylinder in ("front", "rear"):
        figures.append(
            plotting.correction_heatmap(analysis.corrections, cylinder)
        )
figures[0] if figures else "no tune given: no VE corrections"
"""),
    code("""
figures[1] if len(figures) > 1 else None
"""),
    code("""
dl.rejection_table(analysis)
"""),
]

BATCH_STUDY = [
    md(
        "# Study session report\n\nOne closed-loop tuning session of a "
        "`dynoai-lab batch --grid` study, with its sensor delay and "
        "starting VE error."
    ),
    code(
        """
engine = "m8-114"
seed = 0
ve_error_pct = [8.0, 15.0]  # uniform [%], or a smooth error range [%]
delay_scale = 1.0  # factor on the exhaust transport delay volume [1]
sensor_lag_s = 0.1  # sensor time constant [s]
plan = "part-throttle"
iterations = 4
delay_compensation = None  # None: the tuning session's default
out_dir = ""  # empty: save nothing
""",
        tags=["parameters"],
    ),
    code("""
import dynoai_lab as dl
from dynoai_lab import batch, plotting

plotting.use_offline_renderer()
parameters = {
    "engine": engine,
    "seed": seed,
    "ve_error_pct": ve_error_pct,
    "delay_scale": delay_scale,
    "sensor_lag_s": sensor_lag_s,
    "plan": plan,
    "iterations": iterations,
    "delay_compensation": delay_compensation,
}
session = batch.run_study_item(parameters, out_dir or None)
dl.iteration_table(session.summary())
"""),
    code("""
session.stop_reason
"""),
    code("""
plotting.tuning_error_figure(session.history)
"""),
    code("""
plotting.correction_heatmap(session.last_analysis.corrections, "front")
"""),
]

BATCH_SUMMARY = [
    md(
        "# Batch summary\n\nEvery run of a run store, read from its "
        "catalog: power curves per vehicle, VE changes cell by cell, "
        "coverage and, for tuning studies, iterations to converge "
        "against the sensor delay and the starting VE error."
    ),
    code(
        """
store = ""  # empty: a small example batch in the temporary folder
workers = 2
""",
        tags=["parameters"],
    ),
    md(
        "With no `store` given, the notebook runs a small example "
        "batch: three simulated pulls, the bundled real pull, and a "
        "study of 8 short tuning sessions. A second run finds them in "
        "the catalog and skips them."
    ),
    code("""
import tempfile
from pathlib import Path

import dynoai_lab as dl
from dynoai_lab import batch, plotting
from dynoai_lab.batch import figures, summary

plotting.use_offline_renderer()
if not store:
    store = Path(tempfile.gettempdir()) / "dynoai-lab-batch-summary"
    logs = batch.write_simulated_logs(store.with_name("sim-logs"), 3)
    items = batch.log_items([*logs, dl.bundled_path(dl.DEMO_LOG)])
    items += batch.study_items(
        {
            "seed": [0, 1],
            "delay_scale": [1.0, 3.0],
            "ve_error_pct": [[4, 8], [8, 15]],
            "iterations": 3,
            "delay_compensation": "model",
        }
    )
    batch.run_batch(items, store, workers=workers, reports="none")
catalog = batch.read_catalog(store)
catalog["status"].value_counts()
"""),
    code("""
catalog[["name", "kind", "status", "error", "peak_power_hp", "iterations"]]
"""),
    md("## Power curves per vehicle"),
    code("""
figures.power_curves_figure(summary.power_curves(catalog, store))
"""),
    md(
        "## VE change cell by cell\n\nMean change over the runs that "
        "covered each cell, and how many runs covered it."
    ),
    code("""
changes = summary.ve_changes(catalog, store)
list(changes)
"""),
    code("""
for group in list(changes)[:3]:
    figures.ve_change_figure(changes, group).show()
"""),
    md("## Coverage"),
    code("""
summary.coverage_table(changes)
"""),
    md("## Tuning studies: iterations to converge"),
    code("""
summary.convergence_table(catalog)
"""),
    code("""
figures.convergence_figure(catalog)
"""),
]

if __name__ == "__main__":
    write("notebooks/00_workbench.ipynb", WORKBENCH)
    write("dynoai_lab/data/workbench.ipynb", WORKBENCH)
    write("dynoai_lab/templates/report_pull.ipynb", REPORT_PULL)
    write("dynoai_lab/templates/report_tuning.ipynb", REPORT_TUNING)
    write("notebooks/01_virtual_dyno.ipynb", VIRTUAL_DYNO)
    write("notebooks/02_closed_loop_tuning.ipynb", CLOSED_LOOP)
    write("notebooks/03_real_pull_analysis.ipynb", REAL_PULL)
    write("dynoai_lab/templates/report_batch_log.ipynb", BATCH_LOG)
    write("dynoai_lab/templates/report_study.ipynb", BATCH_STUDY)
    write("notebooks/04_batch_summary.ipynb", BATCH_SUMMARY)
