"""Small pandas tables of results, for notebooks and reports."""

from __future__ import annotations

import pandas as pd


def summary_table(summary):
    """Tabulate the headline figures of a pull summary as text."""
    rows = []

    def add(quantity, value, unit, fmt="{:.1f}"):
        if value is not None:
            rows.append((quantity, fmt.format(value), unit))

    add("peak power", summary.get("peak_power_hp"), "hp")
    add("peak power at", summary.get("peak_power_rpm"), "rpm", "{:.0f}")
    add("peak torque", summary.get("peak_torque_lbft"), "lbf·ft")
    add("peak torque at", summary.get("peak_torque_rpm"), "rpm", "{:.0f}")
    standard = summary.get("correction_standard", "")
    add(f"{standard} factor", summary.get("correction_factor"), "", "{:.4f}")
    weather = summary.get("weather", {})
    add("  from pressure", weather.get("pressure_kpa"), "kPa")
    add("  from temperature", weather.get("temperature_c"), "°C")
    add("  from humidity", weather.get("relative_humidity_pct"), "%")
    add(
        "factor the dyno logged",
        weather.get("logged_correction_factor"),
        "",
        "{:.4f}",
    )
    add("samples", summary.get("samples"), "", "{:d}")
    for cylinder, count in summary.get("cells_with_data", {}).items():
        add(f"cells with data, {cylinder}", count, "", "{:d}")
    for cylinder, count in summary.get("cells_corrected", {}).items():
        add(f"cells corrected, {cylinder}", count, "", "{:d}")
    return pd.DataFrame(rows, columns=["quantity", "value", "unit"])


def wideband_table(analysis):
    """Tabulate every wideband channel: used or not, and why."""
    names = analysis.source.get("wideband_names", {})
    rows = []
    for status in analysis.wideband_status:
        feeds = [c for c, n in analysis.sensors.items() if n == status.name]
        rows.append(
            {
                "channel": status.name,
                "original name": names.get(status.name, ""),
                "cylinder": status.cylinder,
                "feeds": ", ".join(feeds) or "nothing",
                "reason": status.reason,
            }
        )
    return _full_width(pd.DataFrame(rows))


def notes_table(analysis):
    """Tabulate the analysis notes, one sentence per row."""
    return _full_width(pd.DataFrame({"note": analysis.notes}))


def rejection_table(analysis):
    """Tabulate sample counts per rejection reason and cylinder.

    Columns named after a cylinder count each sample under the first
    reason that applies; columns ending in ``(any)`` count it under
    every reason that applies.
    """
    table = pd.DataFrame(analysis.rejected)
    flagged = pd.DataFrame(getattr(analysis, "flagged", {}))
    if not flagged.empty:
        flagged.columns = [f"{name} (any)" for name in flagged.columns]
        table = table.join(flagged).astype("Int64")
    table.index.name = "reason"
    return table


def iteration_table(summary):
    """Tabulate the per-iteration figures of a tuning summary."""
    table = pd.DataFrame(summary["per_iteration"]).set_index("iteration")
    return table.rename(
        columns={
            "mean_abs_lambda_error_pct": "mean |λ error| [%]",
            "max_abs_lambda_error_pct": "max |λ error| [%]",
            "visited_cells": "visited cells",
            "ve_error_vs_truth_pct": "mean |VE error| vs truth [%]",
            "correction_applied": "correction applied",
        }
    )


def _full_width(table):
    """Return a Styler that shows long text cells whole."""
    return table.style.hide(axis="index").set_properties(
        **{"text-align": "left", "white-space": "pre-wrap"}
    )
