"""Command-line interface: ``dynoai-lab COMMAND``.

Every command that writes results writes ``summary.json`` and the
Datasets as NetCDF into ``--out``. Bad input ends the program with
status 2 and one line on standard error naming the file and the
problem.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import warnings
from pathlib import Path

from dynoai_lab import __version__

logger = logging.getLogger("dynoai_lab")


#: Weather correction standards the analysis knows.
STANDARDS = ("SAE J1349", "SAE J607", "DIN 70020", "none")
OUT_HELP = "folder for summary.json and the NetCDF results (created)"


class CommandError(Exception):
    """An input problem reported as one line, exit status 2."""


class _Subparsers:
    """Add subcommands that share the common options and show defaults."""

    def __init__(self, action, common):
        self.action = action
        self.common = common

    def add_parser(self, name, **kwargs):
        kwargs.setdefault("parents", [self.common])
        kwargs.setdefault(
            "formatter_class", argparse.ArgumentDefaultsHelpFormatter
        )
        if "help" in kwargs:
            kwargs.setdefault("description", kwargs["help"])
        return self.action.add_parser(name, **kwargs)


def main(argv=None):
    """Run the command line; return the process exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    warnings.showwarning = _log_warning
    try:
        return args.func(args) or 0
    except CommandError as error:
        print(f"dynoai-lab: error: {error}", file=sys.stderr)
        return 2
    except (OSError, ValueError, KeyError, RuntimeError) as error:
        # RuntimeError: the netCDF library's errors (a full disk, say).
        message = str(error).strip().splitlines()
        text = message[0] if message else type(error).__name__
        print(f"dynoai-lab: error: {text}", file=sys.stderr)
        return 2


def _log_warning(message, category, filename, lineno, file=None, line=None):
    """Show a library warning as one log line, without source code."""
    logger.warning("%s: %s", category.__name__, message)


def _parser():
    # -v is accepted before or after the command name.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        default=argparse.SUPPRESS,
        help="log progress",
    )
    parser = argparse.ArgumentParser(
        prog="dynoai-lab",
        description="Tune VE tables on an inertia chassis dyno.",
        parents=[common],
    )
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {__version__}"
    )
    parser.set_defaults(verbose=False)
    sub = _Subparsers(
        parser.add_subparsers(dest="command", required=True), common
    )

    analyze = sub.add_parser("analyze", help="analyze a real or simulated log")
    analyze.add_argument("log", type=Path, help="log file (WinPEP 8 export)")
    analyze.add_argument("--tune", type=Path, help="tune (.pvv) to correct")
    analyze.add_argument("--out", type=Path, required=True, help=OUT_HELP)
    analyze.add_argument(
        "--wideband", help="wideband variable to use, e.g. afr_lc2"
    )
    analyze.add_argument(
        "--standard",
        default="SAE J1349",
        help="weather correction standard: " + ", ".join(STANDARDS),
    )
    analyze.set_defaults(func=cmd_analyze)

    tune = sub.add_parser("tune", help="closed-loop tuning on the simulator")
    tune.add_argument(
        "--engine",
        required=True,
        help="engine parameter set (dynoai-lab engines lists them)",
    )
    tune.add_argument("--seed", type=int, default=0, help="random seed, >= 0")
    tune.add_argument(
        "--iterations", type=int, default=4, help="maximum pulls, >= 1"
    )
    tune.add_argument(
        "--delay-compensation",
        choices=("on", "off"),
        default="on",
        help="align wideband samples with the transport delay, estimated "
        "from the first pull that allows it (the default model until "
        "then); off analyzes them as logged",
    )
    tune.add_argument(
        "--plan",
        choices=("steady-state", "covering"),
        default="steady-state",
        help="steady-state holds every reachable cell, driven from point "
        "to point; covering runs part- and full-throttle sweeps",
    )
    tune.add_argument("--out", type=Path, required=True, help=OUT_HELP)
    tune.set_defaults(func=cmd_tune)

    simulate = sub.add_parser(
        "simulate", help="run a test plan on the virtual dyno"
    )
    simulate.add_argument("--engine", required=True, help="engine set name")
    simulate.add_argument(
        "--plan",
        default="wot",
        help="plan name: wot, part-throttle, covering, steady-state, "
        "step or coast-down",
    )
    simulate.add_argument("--seed", type=int, default=0, help="random seed")
    simulate.add_argument("--out", type=Path, required=True, help=OUT_HELP)
    simulate.add_argument(
        "--dyno", default="dynojet-250i-motorcycle", help="dyno preset name"
    )
    simulate.add_argument(
        "--pressure", type=float, default=101.325, help="barometer [kPa]"
    )
    simulate.add_argument(
        "--temperature", type=float, default=25.0, help="air [°C]"
    )
    simulate.add_argument(
        "--humidity", type=float, default=0.0, help="relative humidity [%%]"
    )
    simulate.add_argument(
        "--ve-error",
        action="store_true",
        help="start the ECU's VE 8 to 15 %% off the truth",
    )
    simulate.add_argument(
        "--sample-rate", type=float, default=50.0, help="log rate [Hz]"
    )
    simulate.set_defaults(func=cmd_simulate)

    batch = sub.add_parser(
        "batch",
        help="run many logs, or a tuning study grid, in parallel on Dask",
    )
    batch.add_argument(
        "logs",
        nargs="*",
        help="log files, folders or glob patterns (quote the pattern)",
    )
    batch.add_argument("--tune", type=Path, help="tune to correct each log")
    batch.add_argument(
        "--wideband", help="wideband variable to use in each log"
    )
    batch.add_argument(
        "--grid",
        type=Path,
        help="study grid (YAML or JSON) instead of logs; see docs/batch.md",
    )
    batch.add_argument(
        "--store",
        type=Path,
        required=True,
        help="run store: runs/ folders and catalog.parquet (created)",
    )
    batch.add_argument(
        "--workers",
        type=int,
        default=2,
        help="worker processes of the local Dask cluster",
    )
    batch.add_argument(
        "--scheduler",
        help="address of a running Dask scheduler, e.g. "
        "tcp://127.0.0.1:8786, instead of a local cluster",
    )
    batch.add_argument(
        "--reports",
        choices=("all", "none"),
        default="all",
        help="all: papermill notebook and HTML per run; none: the same "
        "analysis without a notebook (no kernel start per run)",
    )
    batch.add_argument(
        "--retry-failed",
        action="store_true",
        help="run again the items whose last run failed",
    )
    batch.add_argument(
        "--no-progress", action="store_true", help="hide the progress bar"
    )
    batch.set_defaults(func=cmd_batch)

    engines = sub.add_parser("engines", help="list engine parameter sets")
    engines.add_argument("--json", action="store_true", help="JSON output")
    engines.set_defaults(func=cmd_engines)

    health = sub.add_parser("health", help="check every component")
    health.add_argument("--json", action="store_true", help="JSON output")
    health.set_defaults(func=cmd_health)

    bench = sub.add_parser(
        "bench", help="run a speed benchmark; prints JSON as the last line"
    )
    bench.add_argument("name", help="benchmark name, e.g. simulate")
    bench.set_defaults(func=cmd_bench)

    inspect = sub.add_parser(
        "inspect",
        help="show a log's or tune's format, channels and preflight findings",
    )
    inspect.add_argument("file", type=Path, help="log or tune file")
    inspect.add_argument(
        "--analysis",
        choices=("pull", "ve"),
        default=None,
        help="also check the channels this analysis needs",
    )
    inspect.add_argument("--json", action="store_true", help="JSON output")
    inspect.set_defaults(func=cmd_inspect)

    app = sub.add_parser(
        "app",
        help="serve the workbench (dyno control panel) as a web app on "
        "127.0.0.1 with Voila",
    )
    app.add_argument(
        "--port", type=int, default=None, help="TCP port (default: a free one)"
    )
    app.set_defaults(func=cmd_app)

    demo = sub.add_parser("demo", help="run the main job into reports/")
    demo.add_argument(
        "--out",
        type=Path,
        default=Path("reports"),
        help="folder for the executed notebooks and HTML reports",
    )
    demo.add_argument(
        "--data",
        type=Path,
        default=None,
        help="folder with the bundled pull and tune (default: data/)",
    )
    demo.set_defaults(func=cmd_demo)
    return parser


def cmd_analyze(args):
    """Analyze a log, optionally against a tune; write the results."""
    import dynoai_lab as dl
    from dynoai_lab.io import FileFormatError
    from dynoai_lab.output import save_analysis

    _require_file(args.log, "log")
    if args.tune is not None:
        _require_file(args.tune, "tune")
    _require_output_folder(args.out)
    if args.standard not in STANDARDS:
        raise CommandError(
            f"--standard {args.standard!r} is not supported; use one of "
            + ", ".join(repr(name) for name in STANDARDS)
        )
    log = dl.read_log(args.log)
    tune = dl.read_tune(args.tune) if args.tune is not None else None
    try:
        analysis = dl.analyze_pull(
            log, tune, wideband=args.wideband, standard=args.standard
        )
    except ValueError as error:
        message = str(error)
        names_a_file = isinstance(error, FileFormatError) or any(
            str(p) in message for p in (args.log, args.tune) if p
        )
        if not names_a_file:
            message = f"{args.log}: {message}"
        raise CommandError(message) from None

    out = args.out
    summary = save_analysis(
        analysis,
        out,
        tune=tune,
        extra={
            "log": str(args.log),
            "tune": None if args.tune is None else str(args.tune),
        },
        inputs=[args.log, args.tune],
    )
    _print_headline(summary, out)
    return 0


def cmd_tune(args):
    """Run a closed-loop tuning session on the virtual dyno."""
    from dynoai_lab import sim
    from dynoai_lab.ecu import make_base_ecu
    from dynoai_lab.output import save_session
    from dynoai_lab.tuning import START_VE_ERROR, TuningSession

    if args.seed < 0:
        raise CommandError(
            f"--seed must be a non-negative integer, got {args.seed}"
        )
    if args.iterations < 1:
        raise CommandError(
            f"--iterations must be at least 1, got {args.iterations}"
        )
    _require_output_folder(args.out)
    engine = sim.get_engine(args.engine)
    ecu = make_base_ecu(engine, ve_error=START_VE_ERROR, seed=args.seed)
    session = TuningSession(
        engine,
        ecu,
        plan=sim.named_plan(args.plan, engine, ecu),
        seed=args.seed,
        max_iterations=args.iterations,
        delay_compensation=args.delay_compensation == "on",
    )
    session.run()
    summary = save_session(session, args.out)
    for record in summary["per_iteration"]:
        print(
            f"iteration {record['iteration']}: mean |lambda error| "
            f"{record['mean_abs_lambda_error_pct']:.2f} %, max "
            f"{record['max_abs_lambda_error_pct']:.2f} %"
        )
    print(summary["stop_reason"])
    print(f"wrote {args.out / 'summary.json'}")
    return 0


def cmd_simulate(args):
    """Run a plan on the virtual dyno; write log, truth and summary."""
    import math

    from dynoai_lab import sim
    from dynoai_lab.ecu import make_base_ecu
    from dynoai_lab.output import write_json, write_netcdf
    from dynoai_lab.tuning import START_VE_ERROR

    _require_output_folder(args.out)
    engine = sim.get_engine(args.engine)
    dyno = sim.get_dyno(args.dyno)
    weather = sim.Weather(args.pressure, args.temperature, args.humidity)
    ve_error = START_VE_ERROR if args.ve_error else None
    ecu = make_base_ecu(engine, ve_error=ve_error, seed=args.seed)
    plan = sim.named_plan(args.plan, engine, ecu, weather)
    log, truth = sim.simulate_plan(
        engine,
        ecu,
        plan,
        seed=args.seed,
        dyno=dyno,
        weather=weather,
        sample_rate_hz=args.sample_rate,
    )
    summary = sim.simulation_summary(log, truth)
    summary.update(plan=args.plan, plan_steps=len(plan))
    out = args.out
    write_netcdf(log, out / "log.nc")
    write_netcdf(truth, out / "truth.nc")
    write_json(summary, out / "summary.json")
    print(f"{summary['samples']} samples, {summary['duration_s']:.1f} s")
    # A coast-down never couples the engine, so it has no peaks (NaN).
    if math.isfinite(summary["peak_power_hp"]):
        print(
            f"peak {summary['peak_power_hp']:.1f} hp at "
            f"{summary['peak_power_rpm']} rpm, "
            f"{summary['peak_torque_lbft']:.1f} lbf·ft at "
            f"{summary['peak_torque_rpm']} rpm (crankshaft)"
        )
    print(f"wrote {out / 'summary.json'}")
    return 0


def cmd_batch(args):
    """Run a batch of logs or a study grid into a run store."""
    from dynoai_lab import batch

    if bool(args.logs) == (args.grid is not None):
        raise CommandError(
            "give either log files, folders or patterns, or --grid FILE "
            "for a tuning study, not both and not neither"
        )
    if args.grid is not None:
        _require_file(args.grid, "study grid")
        items = batch.study_items(batch.read_grid(args.grid))
    else:
        if args.tune is not None:
            _require_file(args.tune, "tune")
        items = batch.log_items(args.logs, args.tune, args.wideband)
    _require_output_folder(args.store)
    try:
        result = batch.run_batch(
            items,
            args.store,
            workers=args.workers,
            scheduler=args.scheduler,
            reports=args.reports,
            retry_failed=args.retry_failed,
            progress=not args.no_progress,
        )
    except KeyboardInterrupt:
        print(
            f"interrupted; finished runs are in {args.store}; run the same "
            "command again to resume",
            file=sys.stderr,
        )
        return 130
    except batch.StoreLockedError as error:
        raise CommandError(str(error)) from None
    rows = result.rows
    failed = rows[rows["status"] == "failed"]
    print(
        f"{result.succeeded} succeeded, {result.failed} failed, "
        f"{result.skipped} skipped (already in the catalog)"
    )
    for row in failed.itertuples():
        print(f"failed: {row.name}: {row.error}")
    print(f"catalog: {result.store / 'catalog.parquet'}")
    return 1 if len(failed) else 0


def cmd_engines(args):
    """List the engine parameter sets."""
    from dynoai_lab import sim

    rows = [sim.engine_record(sim.get_engine(n)) for n in sim.engine_names()]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for row in rows:
        wheel = (
            " at the wheel" if row["rated_power_basis"] != "crankshaft" else ""
        )
        print(
            f"{row['name']:<12} {row['description']} "
            f"({row['rated_power_hp']:.0f} hp{wheel}, "
            f"{row['rated_torque_lbft']:.0f} lbf·ft)"
        )
    return 0


def cmd_health(args):
    """Run a tiny pull through every component and report each status."""
    import dynoai_lab as dl

    report = dl.health()
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for name, item in report["components"].items():
            print(f"{name:<12} {item['status']:<5} {item['detail']}")
    return 0 if report["ok"] else 1


def cmd_bench(args):
    """Run one benchmark and print its figures as the last line."""
    from dynoai_lab.benchmarks import run_benchmark

    figures = run_benchmark(args.name)
    print(json.dumps(figures, sort_keys=True))
    return 0


def cmd_inspect(args):
    """Print a file's format, channels or tables, and preflight findings."""
    from dynoai_lab import io

    _require_file(args.file, "file")
    if io.detect_log_format(args.file) is None and (
        io.detect_tune_format(args.file) is not None
    ):
        record = _tune_record(io.read_tune(args.file))
    else:
        log = io.read_log(args.file)
        report = io.preflight(log, args.analysis)
        record = _log_record(log, report)
    if args.json:
        print(json.dumps(record, indent=2, default=float))
        return 0
    for line in _inspect_lines(record):
        print(line)
    return 0


def _log_record(log, report):
    import numpy as np

    channels = []
    for name, variable in log.data_vars.items():
        values = np.asarray(variable.values)
        finite = values[np.isfinite(values)] if values.dtype != object else []
        channels.append(
            {
                "name": str(name),
                "units": variable.attrs.get("units", "unknown"),
                "original_name": variable.attrs.get("original_name", ""),
                "min": float(finite.min()) if len(finite) else None,
                "max": float(finite.max()) if len(finite) else None,
            }
        )
    return {
        "kind": "log",
        "file": report.source_file,
        "format": report.source_format,
        "rows": report.rows,
        "duration_s": report.duration,
        "sample_rate_hz": report.sample_rate,
        "channels": channels,
        "findings": [vars(f) for f in report.findings],
    }


def _tune_record(tune):
    tables = {}
    for name in ("ve_front", "ve_rear", "afr_target"):
        table = getattr(tune, name, None)
        if table is None:
            continue
        tables[name] = {
            "dims": list(table.dims),
            "shape": list(table.shape),
            "units": table.attrs.get("units", ""),
            "min": float(table.min()),
            "max": float(table.max()),
        }
    return {
        "kind": "tune",
        "file": str(tune.path),
        "format": type(tune).__name__,
        "shared_ve": bool(getattr(tune, "shared_ve", False)),
        "tables": tables,
    }


def _inspect_lines(record):
    yield f"{record['file']}: {record['format']}"
    if record["kind"] == "tune":
        for name, table in record["tables"].items():
            yield (
                f"  {name:<12} {' x '.join(map(str, table['shape']))} on "
                f"{', '.join(table['dims'])}, {table['min']:g} to "
                f"{table['max']:g} {table['units']}"
            )
        return
    yield (
        f"  {record['rows']} rows, {record['duration_s']:.3f} s, "
        f"{record['sample_rate_hz']:.2f} Hz"
    )
    for channel in record["channels"]:
        span = (
            "no values"
            if channel["min"] is None
            else f"{channel['min']:g} to {channel['max']:g}"
        )
        yield (
            f"  {channel['name']:<28} {channel['units']:<8} {span}"
            f"  ({channel['original_name']})"
        )
    for finding in record["findings"]:
        yield f"  {finding['level']}: {finding['message']}"


def cmd_app(args):
    """Serve notebooks/00_workbench.ipynb with Voila until Ctrl-C."""
    from dynoai_lab.app import AppError, serve

    try:
        return serve(port=args.port)
    except AppError as error:
        raise CommandError(str(error)) from None


def cmd_demo(args):
    """Run the report notebooks on the bundled pull and a tuning session."""
    from dynoai_lab.datasets import DATA_FOLDER, DEMO_LOG, DEMO_TUNE
    from dynoai_lab.report import run_report

    _require_output_folder(args.out)
    data = args.data or DATA_FOLDER
    log_path = (data / DEMO_LOG).resolve()
    tune_path = (data / DEMO_TUNE).resolve()
    _require_file(log_path, "bundled log")
    _require_file(tune_path, "bundled tune")
    out = args.out.resolve()

    pull_dir = out / "real_pull"
    pull_nb, pull_html = run_report(
        "report_pull",
        pull_dir,
        "real_pull",
        {
            "log_path": str(log_path),
            "tune_path": str(tune_path),
            "out_dir": str(pull_dir),
        },
    )
    tuning_dir = out / "tuning"
    tuning_nb, tuning_html = run_report(
        "report_tuning",
        tuning_dir,
        "tuning",
        {
            "engine": "m8-114",
            "seed": 1,
            "iterations": 4,
            "out_dir": str(tuning_dir),
        },
    )

    pull = json.loads((pull_dir / "summary.json").read_text())
    tuning = json.loads((tuning_dir / "summary.json").read_text())
    print(f"real pull report:  {pull_html}")
    print(f"                   {pull_nb}")
    print(
        f"  peak power {pull['peak_power_hp']:.1f} hp at "
        f"{pull['peak_power_rpm']} rpm, peak torque "
        f"{pull['peak_torque_lbft']:.1f} lbf·ft at "
        f"{pull['peak_torque_rpm']} rpm "
        f"({pull['correction_standard']} factor "
        f"{pull['correction_factor']:.3f})"
    )
    print(f"  wideband used: {pull['wideband_channel']['used']}")
    print(f"tuning report:     {tuning_html}")
    print(f"                   {tuning_nb}")
    errors = [r["mean_abs_lambda_error_pct"] for r in tuning["per_iteration"]]
    print(
        "  mean |lambda error| per iteration: "
        + ", ".join(f"{e:.2f} %" for e in errors)
    )
    return 0


def _require_file(path, what):
    path = Path(path)
    if path.is_dir():
        raise CommandError(f"{what} {path} is a folder; expected a file")
    if path.exists() and not path.is_file():
        raise CommandError(
            f"{what} {path} is not a regular file (a pipe or device); "
            "expected a file"
        )
    if not path.is_file():
        raise CommandError(f"{what} not found: {path}")


def _require_output_folder(path):
    """Reject an --out that cannot be a folder, before any work."""
    if str(path).strip() in ("", "."):
        raise CommandError(
            f"--out {str(path)!r} is empty or the current folder; name a "
            "folder for the results"
        )
    path = Path(path)
    for parent in (path, *path.parents):
        if parent.exists() and not parent.is_dir():
            raise CommandError(
                f"--out {path}: {parent} is a file; expected a folder"
            )


def _print_headline(summary, out):
    if "peak_power_hp" in summary:
        print(
            f"peak power {summary['peak_power_hp']:.1f} hp at "
            f"{summary['peak_power_rpm']} rpm; peak torque "
            f"{summary['peak_torque_lbft']:.1f} lbf·ft at "
            f"{summary['peak_torque_rpm']} rpm"
        )
    print(f"wideband: {summary['wideband_channel']['used']}")
    print(f"wrote {out / 'summary.json'}")


if __name__ == "__main__":
    sys.exit(main())
