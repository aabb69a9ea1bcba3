"""Batch items: logs found on disk, or the sessions of a study grid.

Each :class:`BatchItem` carries everything a worker needs and a run id
that changes whenever the result could change: the SHA-256 of the input
files' contents, the parameters, the report template and the package
version. Paths are not part of the id, so moving the inputs does not
rerun anything; two files with the same content are the same run.
"""

from __future__ import annotations

import glob
import hashlib
import itertools
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from dynoai_lab import __version__

#: Report template per kind of item, used with ``reports="all"``.
TEMPLATES = {"log": "report_batch_log", "study": "report_study"}

#: Keys of a study grid file and their defaults. Every value may be a
#: list; the grid is the Cartesian product of all lists.
GRID_DEFAULTS = {
    "engine": ["m8-114"],
    "seed": [0],
    "ve_error_pct": [[8.0, 15.0]],
    "delay_scale": [1.0],
    "sensor_lag_s": [0.1],
    "plan": ["part-throttle"],
    "iterations": [4],
    "delay_compensation": [None],
}

#: Values of ``delay_compensation`` in a grid, passed on to
#: :class:`~dynoai_lab.tuning.TuningSession`; None keeps its default.
DELAY_COMPENSATION = (None, True, False, "estimate", "model", "off")

#: File suffixes taken from a folder of logs.
LOG_SUFFIXES = (".txt", ".csv", ".msl", ".mlg", ".nc")


@dataclass(frozen=True)
class BatchItem:
    """One run of a batch.

    Attributes
    ----------
    kind : {"log", "study"}
        A log analysed against an optional tune, or one simulated
        closed-loop tuning session.
    name : str
        Readable label; the run folder is ``<name>-<run id[:12]>``.
    parameters : dict
        For a log: ``log_path``, ``tune_path``, ``wideband``. For a
        study: the keys of :data:`GRID_DEFAULTS` except ``seed``
        holding one value each, and ``seed``.
    input_sha256 : str
        SHA-256 of the log file; empty for a study.
    tune_sha256 : str
        SHA-256 of the tune file; empty without a tune.
    """

    kind: str
    name: str
    parameters: dict = field(hash=False)
    input_sha256: str = ""
    tune_sha256: str = ""

    def run_id(self, template):
        """Return the run id for this item run with ``template``.

        ``template`` is the report template's stem, or ``""`` when the
        item runs without a report notebook.
        """
        identity = {
            "kind": self.kind,
            "input_sha256": self.input_sha256,
            "tune_sha256": self.tune_sha256,
            "parameters": _identity_parameters(self),
            "template": template,
            "package_version": __version__,
        }
        text = json.dumps(identity, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()


def _identity_parameters(item):
    """Return the parameters that decide the result (not the paths)."""
    drop = {"log_path", "tune_path"}
    return {k: v for k, v in item.parameters.items() if k not in drop}


def file_sha256(path):
    """Return the SHA-256 hex digest of a file's content."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def find_logs(patterns):
    """Expand folders and glob patterns into a sorted list of log files.

    Parameters
    ----------
    patterns : iterable of str or path-like
        Files, folders (their files with a suffix in
        :data:`LOG_SUFFIXES`, recursively) or glob patterns (``**``
        allowed).

    Returns
    -------
    list of pathlib.Path
        Absolute paths, each once, sorted.

    Raises
    ------
    FileNotFoundError
        If a pattern matches no file.
    """
    found = set()
    for pattern in patterns:
        path = Path(pattern)
        if path.is_dir():
            matches = [
                p
                for p in path.rglob("*")
                if p.is_file() and p.suffix.lower() in LOG_SUFFIXES
            ]
        elif path.is_file():
            matches = [path]
        else:
            matches = [
                Path(p)
                for p in glob.glob(str(pattern), recursive=True)
                if Path(p).is_file()
            ]
        if not matches:
            raise FileNotFoundError(
                f"no log file matches {str(pattern)!r}; expected a file, "
                "a folder of logs or a glob pattern such as 'logs/*.csv'"
            )
        found.update(p.resolve() for p in matches)
    return sorted(found)


def log_items(patterns, tune=None, wideband=None):
    """Build one item per log file.

    Parameters
    ----------
    patterns : iterable of str or path-like
        Log files, folders or glob patterns, see :func:`find_logs`.
    tune : path-like, optional
        Tune whose VE tables every log is analysed against; None for
        power curves only.
    wideband : str, optional
        Wideband variable to use in every log, for example ``afr_lc2``.

    Returns
    -------
    list of BatchItem
    """
    tune_path = None if tune is None else Path(tune).resolve()
    if tune_path is not None and not tune_path.is_file():
        raise FileNotFoundError(f"tune not found: {tune}")
    tune_sha = "" if tune_path is None else file_sha256(tune_path)
    items = []
    for path in find_logs(patterns):
        items.append(
            BatchItem(
                kind="log",
                # The parent folder keeps the same file name in two
                # customers' folders apart.
                name=_slug(f"{path.parent.name}-{path.stem}"),
                parameters={
                    "log_path": str(path),
                    "tune_path": None if tune_path is None else str(tune_path),
                    "wideband": wideband,
                },
                input_sha256=file_sha256(path),
                tune_sha256=tune_sha,
            )
        )
    return items


def _slug(text):
    """Turn a relative path into a folder-name-safe label."""
    keep = [c if c.isalnum() or c in "-_." else "-" for c in text]
    return "".join(keep).strip("-.") or "run"


def read_grid(path):
    """Read a study grid from a YAML or JSON file.

    Parameters
    ----------
    path : path-like
        File with a mapping of :data:`GRID_DEFAULTS` keys to a value or
        a list of values. ``seed`` may also be a count ``n``, meaning
        seeds ``0`` to ``n - 1``, written ``{count: n}``.

    Returns
    -------
    dict
        The grid with every key present and every value a list.

    Raises
    ------
    ValueError
        If the file is not a mapping, has an unknown key, or a value is
        out of range. The message names the file and the key.
    """
    import yaml

    path = Path(path)
    text = path.read_text(encoding="utf-8")
    try:
        # JSON is a subset of YAML 1.2, so one parser reads both.
        raw = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ValueError(f"{path}: not valid YAML or JSON: {error}") from None
    if not isinstance(raw, dict):
        raise ValueError(
            f"{path}: a study grid must be a mapping such as "
            "'engine: [m8-114]\\nseed: {count: 10}', got "
            f"{type(raw).__name__}"
        )
    try:
        return normalise_grid(raw)
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from None


def normalise_grid(raw):
    """Check a study grid mapping and make every value a list."""
    unknown = sorted(set(raw) - set(GRID_DEFAULTS))
    if unknown:
        raise ValueError(
            f"unknown study grid keys {unknown}; valid keys are "
            f"{sorted(GRID_DEFAULTS)}"
        )
    grid = {}
    for key, default in GRID_DEFAULTS.items():
        value = raw.get(key, default)
        if key == "seed" and isinstance(value, dict):
            value = list(range(_count(value)))
        if not isinstance(value, list):
            value = [value]
        if not value:
            raise ValueError(f"{key} is an empty list; give at least one")
        grid[key] = [_check_value(key, v) for v in value]
    return grid


def _count(value):
    count = value.get("count")
    if set(value) != {"count"} or not isinstance(count, int) or count < 1:
        raise ValueError(
            f"seed must be a list of integers or {{count: n}} with n >= 1, "
            f"got {value!r}"
        )
    return count


def _is_pair(value):
    return (
        isinstance(value, list)
        and len(value) == 2
        and all(isinstance(v, (int, float)) for v in value)
        and value[0] >= 0
    )


def _check_value(key, value):
    from dynoai_lab import sim

    if key == "engine":
        sim.get_engine(value)
    elif key == "plan" and value not in sim.PLAN_NAMES:
        raise ValueError(
            f"plan {value!r} is unknown; valid names are "
            f"{', '.join(sim.PLAN_NAMES)}"
        )
    elif key in ("seed", "iterations"):
        if not isinstance(value, int) or isinstance(value, bool):
            raise ValueError(f"{key} must be an integer, got {value!r}")
        if value < (1 if key == "iterations" else 0):
            raise ValueError(f"{key} {value} is out of range")
    elif key == "ve_error_pct":
        return _check_ve_error(value)
    elif key == "delay_compensation" and value not in DELAY_COMPENSATION:
        raise ValueError(
            f"delay_compensation {value!r} is unknown; use one of "
            "estimate, model, off, true or false, or leave it out for "
            "the tuning session's default"
        )
    elif key in ("delay_scale", "sensor_lag_s"):
        if not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ValueError(f"{key} must be a number, got {value!r}")
        if value < 0 or (key == "delay_scale" and value == 0):
            raise ValueError(f"{key} {value} is out of range")
        return float(value)
    return value


def _check_ve_error(value):
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if not -90 < value < 90:
            raise ValueError(
                f"ve_error_pct {value} must lie between -90 and 90 %"
            )
        return float(value)
    if _is_pair(value) and value[0] <= value[1] < 100:
        return [float(value[0]), float(value[1])]
    raise ValueError(
        "ve_error_pct entries must be a uniform error such as -10 (10 % "
        "low) or an amplitude range such as [8, 15] (a smooth error of "
        f"8 to 15 %), got {value!r}"
    )


def study_items(grid):
    """Build one item per point of a study grid.

    Parameters
    ----------
    grid : dict
        A mapping as read by :func:`read_grid`; missing keys take
        :data:`GRID_DEFAULTS`.

    Returns
    -------
    list of BatchItem
        In the grid's order: engines outermost, seeds innermost.
    """
    grid = normalise_grid(grid)
    keys = [k for k in GRID_DEFAULTS if k != "seed"] + ["seed"]
    items = []
    for values in itertools.product(*(grid[k] for k in keys)):
        parameters = dict(zip(keys, values, strict=True))
        items.append(
            BatchItem(
                kind="study",
                name=_study_name(parameters),
                parameters=parameters,
            )
        )
    return items


def ve_error_label(value):
    """Return a short text for a ``ve_error_pct`` value: ``-10``, ``8-15``."""
    if isinstance(value, list):
        return f"{value[0]:g}-{value[1]:g}"
    return f"{value:g}"


def _study_name(parameters):
    return _slug(
        f"{parameters['engine']}_{parameters['plan']}_"
        f"ve{ve_error_label(parameters['ve_error_pct'])}_"
        f"d{parameters['delay_scale']:g}_s{parameters['seed']}"
    )
