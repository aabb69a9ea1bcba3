"""Paths of the real recordings bundled with the repository."""

from __future__ import annotations

from pathlib import Path

#: The repository's data folder, beside the package in a source checkout
#: or an editable install.
DATA_FOLDER = Path(__file__).resolve().parents[1] / "data"

#: The real Harley-Davidson pull and tune that the demo analyses.
DEMO_LOG = "5TH GEAR.txt"
DEMO_TUNE = "base.pvv"

#: Part-throttle riding on the same bike earlier in the session, with
#: closed-throttle fuel cuts, logged at 47 to 50 °C engine temperature.
PART_THROTTLE_LOG = "PV_Logfile_5.csv_18.txt"


def bundled_path(name):
    """Return the path of a file in the repository's ``data/`` folder.

    Raises
    ------
    FileNotFoundError
        When the file is missing, for example in an installation made
        from a wheel, which carries no ``data/`` folder.
    """
    path = DATA_FOLDER / name
    if not path.is_file():
        raise FileNotFoundError(
            f"bundled file {name!r} not found in {DATA_FOLDER}; run from "
            "a checkout of the repository or pass the file's path"
        )
    return path
