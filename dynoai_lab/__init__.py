"""dynoai-lab: tune engine VE tables on an inertia chassis dyno.

>>> import dynoai_lab as dl
>>> log = dl.read_log("data/5TH GEAR.txt")
>>> analysis = dl.analyze_pull(log, dl.read_tune("data/base.pvv"))
>>> round(analysis.summary()["peak_power_hp"])
94
"""

from dynoai_lab.analysis.pull import (
    AnalysisError,
    RejectionLimits,
    analyze_pull,
)
from dynoai_lab.datasets import DEMO_LOG, DEMO_TUNE, bundled_path
from dynoai_lab.health import health
from dynoai_lab.io import (
    preflight,
    read_log,
    read_tune,
    write_pvv,
    write_tune,
)
from dynoai_lab.output import save_analysis, save_session
from dynoai_lab.tables import (
    iteration_table,
    notes_table,
    rejection_table,
    summary_table,
    wideband_table,
)
from dynoai_lab.tuning import TuningSession

__version__ = "0.1.0"

__all__ = [
    "DEMO_LOG",
    "DEMO_TUNE",
    "AnalysisError",
    "RejectionLimits",
    "bundled_path",
    "TuningSession",
    "analyze_pull",
    "health",
    "iteration_table",
    "notes_table",
    "preflight",
    "read_log",
    "read_tune",
    "rejection_table",
    "save_analysis",
    "save_session",
    "summary_table",
    "wideband_table",
    "write_pvv",
    "write_tune",
]
