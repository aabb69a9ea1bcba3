"""Small pandas tables of results, for notebooks and reports."""

from __future__ import annotations

import pandas as pd


def summary_table(summary):
    """Tabulate the scalar headline figures of a pull summary."""
    rows = [
        ("peak power", summary.get("peak_power_hp"), "hp"),
        ("at", summary.get("peak_power_rpm"), "rpm"),
        ("peak torque", summary.get("peak_torque_lbft"), "lbf·ft"),
        ("at", summary.get("peak_torque_rpm"), "rpm"),
        (
            f"{summary.get('correction_standard')} factor",
            summary.get("correction_factor"),
            "1",
        ),
        ("samples", summary.get("samples"), "1"),
    ]
    for cylinder, count in summary.get("cells_with_data", {}).items():
        rows.append((f"cells with data, {cylinder}", count, "1"))
    return pd.DataFrame(rows, columns=["quantity", "value", "unit"])


def wideband_table(analysis):
    """Tabulate every wideband channel: used or not, and why."""
    rows = []
    for status in analysis.wideband_status:
        feeds = [c for c, n in analysis.sensors.items() if n == status.name]
        rows.append(
            {
                "channel": status.name,
                "original name": analysis.source.get("wideband_names", {}).get(
                    status.name, ""
                ),
                "cylinder": status.cylinder,
                "feeds": ", ".join(feeds) or "nothing",
                "reason": status.reason,
            }
        )
    return pd.DataFrame(rows)


def rejection_table(analysis):
    """Tabulate rejected sample counts per reason and cylinder."""
    return pd.DataFrame(analysis.rejected)


def iteration_table(summary):
    """Tabulate the per-iteration figures of a tuning summary."""
    return pd.DataFrame(summary["per_iteration"]).set_index("iteration")
