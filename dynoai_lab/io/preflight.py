"""Check a log before analysis: channels, sample rate, units, sensors.

:func:`preflight` looks at a Dataset returned by
:func:`dynoai_lab.io.read_log` and returns a :class:`PreflightReport`
of findings. Problems that make the requested analysis impossible (a
required channel missing, empty or stuck, or time going back, because
the analyses align samples in time) are errors:
:meth:`PreflightReport.raise_for_errors` raises one
:class:`~dynoai_lab.io.errors.PreflightError` naming the file, the
channel and the fix. Everything else is a warning: gaps, time going
back, stuck or railed channels, values outside the registry's plausible
range, and unit guesses (lambda read as AFR, °F in a °C channel, ms
read as s, bar or mbar read as kPa, thousands of rpm read as rpm).

Thresholds are judgement calls, stated where they are defined; they
flag files to look at and do not change the data.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field

import numpy as np
import xarray as xr

from dynoai_lab import channels as registry
from dynoai_lab.io.canonical import AFR_RANGE, LAMBDA_RANGE
from dynoai_lab.io.errors import PreflightError

logger = logging.getLogger(__name__)

#: Channels each analysis needs. Each entry is a tuple of alternatives;
#: ``"wideband"`` means any variable with ``attrs["kind"] == "wideband"``.
ANALYSES: dict[str, tuple[tuple[str, ...], ...]] = {
    "pull": (("engine_speed",), ("drum_speed", "power")),
    "ve": (
        ("engine_speed",),
        ("manifold_pressure", "throttle_position"),
        ("wideband",),
    ),
}

#: A step longer than this many times the median step is a gap.
GAP_FACTOR = 5.0
#: Share of samples at the maximum (or minimum) above which a varying
#: channel is reported as railed.
RAIL_SHARE = 0.2
#: Minimum number of finite samples for the stuck and rail checks.
MIN_SAMPLES = 10
#: A median time step above this [s] means milliseconds read as
#: seconds: dyno and ECU logs sample at 2 to 1000 Hz, so their steps
#: are 1 ms to 0.5 s, and the same numbers in ms step by 1 or more.
MS_STEP = 1.0

_FIXES = {
    "engine_speed": "log the ECU's engine speed or the dyno's Engine RPM",
    "drum_speed": "export the dyno's Speed channel with the run",
    "power": "export the dyno's Power channel with the run",
    "manifold_pressure": "log MAP (or throttle position for alpha-N)",
    "throttle_position": "log throttle position (or MAP)",
    "wideband": (
        "log a wideband AFR or lambda channel (a dyno analog input or the "
        "ECU's wideband)"
    ),
}


@dataclass
class Finding:
    """One preflight finding.

    Attributes
    ----------
    level : str
        ``"error"`` (analysis impossible) or ``"warning"``.
    code : str
        Short identifier: ``missing_channel``, ``empty_channel``,
        ``no_usable_wideband``, ``time_backwards``, ``gap``, ``stuck``,
        ``railed``, ``out_of_range`` or ``unit_guess``.
    channel : str
        Variable name, or ``"time"``.
    message : str
        What was found and what to do.
    """

    level: str
    code: str
    channel: str
    message: str


@dataclass
class PreflightReport:
    """Result of :func:`preflight`.

    Attributes
    ----------
    source_file, source_format : str
        From the Dataset's attrs.
    rows : int
        Number of samples.
    duration : float
        Last minus first time [s].
    sample_rate : float
        Median sample rate [Hz] (NaN with fewer than two samples).
    findings : list of Finding
    """

    source_file: str
    source_format: str
    rows: int
    duration: float
    sample_rate: float
    findings: list[Finding] = field(default_factory=list)

    @property
    def errors(self) -> list[Finding]:
        """Findings that make the requested analysis impossible."""
        return [f for f in self.findings if f.level == "error"]

    @property
    def warnings(self) -> list[Finding]:
        """Findings to look at; analysis can go on."""
        return [f for f in self.findings if f.level == "warning"]

    def to_dict(self) -> dict:
        """Return the report as plain data for JSON."""
        return asdict(self)

    def raise_for_errors(self) -> None:
        """Raise PreflightError for the first error finding, if any."""
        if self.errors:
            first = self.errors[0]
            more = len(self.errors) - 1
            suffix = f" (and {more} more errors)" if more else ""
            raise PreflightError(
                f"{self.source_file}: {first.message}{suffix}"
            )


def preflight(
    log: xr.Dataset, analysis: str | None = None, *, strict: bool = False
) -> PreflightReport:
    """Check a log for problems before analysis.

    Parameters
    ----------
    log : xarray.Dataset
        A log from :func:`dynoai_lab.io.read_log`.
    analysis : {"pull", "ve"}, optional
        The analysis to check required channels for (see
        :data:`ANALYSES`); None checks no requirements.
    strict : bool, default False
        Raise :class:`PreflightError` when there are error findings.

    Returns
    -------
    PreflightReport

    Raises
    ------
    ValueError
        If ``analysis`` is not a key of :data:`ANALYSES`.
    PreflightError
        With ``strict=True``, if a finding is an error.
    """
    if analysis is not None and analysis not in ANALYSES:
        raise ValueError(
            f"analysis={analysis!r}; expected one of {sorted(ANALYSES)}"
        )
    time = np.asarray(log["time"].values, dtype=float)
    steps = np.diff(time)
    positive = steps[steps > 0]
    median_step = float(np.median(positive)) if positive.size else np.nan
    report = PreflightReport(
        source_file=str(log.attrs.get("source_file", "<log>")),
        source_format=str(log.attrs.get("source_format", "unknown")),
        rows=int(time.size),
        duration=float(time[-1] - time[0]) if time.size else 0.0,
        sample_rate=1.0 / median_step if median_step > 0 else np.nan,
    )
    required = _required_channels(log, analysis, report)
    _check_time(steps, median_step, analysis, report)
    for name, variable in log.data_vars.items():
        if variable.dims != ("time",) or variable.dtype == object:
            continue
        values = np.asarray(variable.values, dtype=float)
        _check_channel(str(name), variable, values, name in required, report)
    _check_usable_wideband(log, analysis, report)
    for finding in report.findings:
        logger.info(
            "%s: %s: %s", report.source_file, finding.level, finding.message
        )
    if strict:
        report.raise_for_errors()
    return report


def _required_channels(log, analysis, report) -> set[str]:
    """Report missing required channels; return the names present.

    Widebands are not returned one by one: a log needs one usable
    wideband, which :func:`_check_usable_wideband` checks.
    """
    present: set[str] = set()
    if analysis is None:
        return present
    widebands = _widebands(log)
    for alternatives in ANALYSES[analysis]:
        found = [
            name
            for name in alternatives
            if (name == "wideband" and widebands) or name in log.data_vars
        ]
        if found:
            if found[0] != "wideband":
                present.add(found[0])
            continue
        label = " or ".join(alternatives)
        fix = _FIXES.get(alternatives[0], "log the channel")
        report.findings.append(
            Finding(
                "error",
                "missing_channel",
                alternatives[0],
                f"missing channel {label}, required for the {analysis!r} "
                f"analysis; fix: {fix}",
            )
        )
    return present


def _widebands(log) -> list[str]:
    return [
        str(name)
        for name, variable in log.data_vars.items()
        if variable.attrs.get("kind") == "wideband"
    ]


def _check_usable_wideband(log, analysis, report) -> None:
    """Raise an error finding when no wideband has varying values."""
    if analysis is None or ("wideband",) not in ANALYSES[analysis]:
        return
    names = _widebands(log)
    if not names:
        return
    for name in names:
        finite = log[name].values[np.isfinite(log[name].values)]
        if finite.size >= MIN_SAMPLES and finite.min() != finite.max():
            return
    report.findings.append(
        Finding(
            "error",
            "no_usable_wideband",
            names[0],
            f"no usable wideband: {', '.join(names)} are empty or stuck; "
            "fix: check the wideband sensors and which channel the export "
            "holds them in",
        )
    )


def looks_like_milliseconds(time: np.ndarray) -> bool:
    """Tell whether a time column [s] holds milliseconds.

    Parameters
    ----------
    time : numpy.ndarray
        Time of each row as read, taken to be seconds.

    Returns
    -------
    bool
        True when there are more than 10 steps forward and their median
        exceeds :data:`MS_STEP`.

    Notes
    -----
    A log at 1 kHz or more written in ms steps by 1 or less and is not
    detected; a log really sampled slower than 1 Hz is misread as ms.
    """
    steps = np.diff(np.asarray(time, dtype=float))
    forward = steps[steps > 0]
    return forward.size > 10 and float(np.median(forward)) > MS_STEP


def _check_time(
    steps: np.ndarray, median_step: float, analysis, report
) -> None:
    back = np.flatnonzero(steps < 0)
    if back.size:
        # Analyses interpolate and shift samples in time, which needs
        # time to increase; for them a restart is an error.
        level = "warning" if analysis is None else "error"
        report.findings.append(
            Finding(
                level,
                "time_backwards",
                "time",
                f"time goes back {back.size} times (first at row "
                f"{back[0] + 1}, by {-steps[back[0]]:.4g} s); the log may "
                "join several recordings, and analyses need increasing "
                "time: split it there",
            )
        )
    if not median_step > 0:
        return
    gaps = np.flatnonzero(steps > GAP_FACTOR * median_step)
    if gaps.size:
        largest = float(steps[gaps].max())
        report.findings.append(
            Finding(
                "warning",
                "gap",
                "time",
                f"{gaps.size} gaps longer than {GAP_FACTOR:g} samples "
                f"(largest {largest:.4g} s, median step {median_step:.4g} "
                "s); samples across a gap are not continuous",
            )
        )
    if median_step > MS_STEP and steps.size > 10:
        report.findings.append(
            Finding(
                "warning",
                "unit_guess",
                "time",
                f"median time step is {median_step:.4g} s; the time column "
                "may be in ms read as s",
            )
        )


def _check_channel(name, variable, values, required, report) -> None:
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        level = "error" if required else "warning"
        report.findings.append(
            Finding(
                level,
                "empty_channel",
                name,
                f"channel {name} ({variable.attrs.get('original_name', name)})"
                " has no values"
                + (
                    "; fix: check the sensor and the export"
                    if required
                    else ""
                ),
            )
        )
        return
    if finite.size >= MIN_SAMPLES:
        _check_stuck_or_railed(name, variable, finite, required, report)
    channel = registry.REGISTRY.get(name)
    if channel is not None:
        count = channel.count_implausible(finite)
        if count:
            low, high = channel.valid_range
            report.findings.append(
                Finding(
                    "warning",
                    "out_of_range",
                    name,
                    f"{count} of {finite.size} values of {name} lie outside "
                    f"the plausible {low:g} to {high:g} {channel.units}; "
                    "check the unit or the sensor",
                )
            )
    guess = guess_unit_problem(name, variable, finite)
    if guess:
        report.findings.append(Finding("warning", "unit_guess", name, guess))


def _check_stuck_or_railed(name, variable, finite, required, report) -> None:
    # Only measured quantities are checked: ECU flags, counters and the
    # weather station's values are constant by design in a short run.
    channel = registry.REGISTRY.get(name)
    kind = variable.attrs.get("kind") or getattr(channel, "kind", None)
    if channel is None or kind not in _STUCK_KINDS or name in _CONSTANT_OK:
        return
    low, high = float(finite.min()), float(finite.max())
    if low == high:
        report.findings.append(
            Finding(
                "error" if required else "warning",
                "stuck",
                name,
                f"channel {name} is stuck at {low:g} for all {finite.size} "
                "samples"
                + (
                    "; fix: check the sensor and its wiring"
                    if required
                    else ""
                ),
            )
        )
        return
    if kind != "wideband":
        return
    for label, value in (("maximum", high), ("minimum", low)):
        share = float(np.mean(finite == value))
        if share >= RAIL_SHARE and value != 0:
            report.findings.append(
                Finding(
                    "warning",
                    "railed",
                    name,
                    f"{share:.0%} of {name} samples sit at its {label} "
                    f"{value:g}; the sensor may be railed (lean or rich "
                    "limit, free air or warm-up) or not connected",
                )
            )


_STUCK_KINDS = ("engine", "wideband", "dyno")
_CONSTANT_OK = ("correction_factor",)


def guess_unit_problem(name: str, variable, finite: np.ndarray) -> str | None:
    """Return a message when a channel's values suggest a unit mix-up.

    Parameters
    ----------
    name : str
        Canonical variable name.
    variable : xarray.DataArray
        The variable (its attrs are used).
    finite : numpy.ndarray
        Its finite values, in the variable's units.

    Returns
    -------
    str or None
        What the values look like and the likely cause, or None.
    """
    median = float(np.median(finite))
    peak = float(np.max(np.abs(finite)))
    is_afr = name == "afr_target" or variable.attrs.get("kind") == "wideband"
    if is_afr and LAMBDA_RANGE[0] <= median <= LAMBDA_RANGE[1]:
        return (
            f"{name} has median {median:.3g}, a lambda, but is an AFR "
            "variable; the column holds lambda read as AFR"
        )
    if name.startswith("lambda_") and AFR_RANGE[0] <= median <= AFR_RANGE[1]:
        return (
            f"{name} has median {median:.3g}, an AFR, but is a lambda "
            "variable; the column holds AFR read as lambda"
        )
    # Intake air above 70 °C and coolant (or air-cooled head) above
    # 150 °C are rare in a running engine, so such values are more
    # likely °F. The message gives their Celsius equivalent.
    limits = {"intake_air_temperature": 70.0, "coolant_temperature": 150.0}
    if name in limits and median > limits[name]:
        as_celsius = (median - 32.0) * 5.0 / 9.0
        return (
            f"{name} has median {median:.4g} °C; it may be °F read as °C "
            f"({as_celsius:.3g} °C)"
        )
    if name == "manifold_pressure":
        if median < 5.0:
            return (
                f"manifold_pressure has median {median:.3g} kPa; it may be "
                "bar read as kPa"
            )
        if median > 400.0:
            return (
                f"manifold_pressure has median {median:.4g} kPa; it may be "
                "mbar (hPa) read as kPa"
            )
    if name == "engine_speed" and 0 < peak < 20.0:
        return (
            f"engine_speed peaks at {peak:.3g} rpm; it may be thousands of "
            "rpm read as rpm"
        )
    return None
