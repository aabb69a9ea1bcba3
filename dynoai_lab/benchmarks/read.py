"""Benchmark: read every real log and tune through the one entry point.

Reads each file under ``../shared/realdata`` (beside the repository)
that :func:`dynoai_lab.io.read_log` or :func:`dynoai_lab.io.read_tune`
recognises, several times, and reports the throughput. Files that are
absent are skipped, so the benchmark runs (on nothing) elsewhere.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

logger = logging.getLogger(__name__)

#: Folder of the real recordings, beside the repository.
REALDATA = Path(__file__).resolve().parents[2].parent / "shared" / "realdata"


def run(repeats: int = 5, folder: str | Path | None = None) -> dict:
    """Read every real file ``repeats`` times; return the figures.

    Parameters
    ----------
    repeats : int, default 5
        Times each file is read; the figures use the total.
    folder : str or path-like, optional
        Folder searched recursively; default :data:`REALDATA`.

    Returns
    -------
    dict
        ``files`` (number read), ``bytes`` (their total size), ``rows``
        (log samples per pass), ``seconds`` (wall time of all passes),
        ``mb_per_s`` [MB/s, 10^6 bytes] and ``rows_per_s``.
    """
    from dynoai_lab import io

    # Reading logs logs a warning per quirk found; the benchmark measures
    # speed, so those messages are held back while it runs.
    quiet = logging.getLogger("dynoai_lab.io")
    previous = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        files = _real_files(Path(folder) if folder else REALDATA, io)
        size = sum(path.stat().st_size for path, _ in files)
        rows = 0
        start = time.perf_counter()
        for _ in range(repeats):
            rows = 0
            for path, kind in files:
                if kind == "log":
                    rows += io.read_log(path).sizes["time"]
                else:
                    io.read_tune(path)
        seconds = time.perf_counter() - start
    finally:
        quiet.setLevel(previous)
    logger.info(
        "read %d files %d times in %.3f s", len(files), repeats, seconds
    )
    return {
        "files": len(files),
        "bytes": size,
        "rows": rows,
        "repeats": repeats,
        "seconds": round(seconds, 4),
        "mb_per_s": round(size * repeats / seconds / 1e6, 3)
        if seconds
        else 0.0,
        "rows_per_s": round(rows * repeats / seconds) if seconds else 0,
    }


def _real_files(folder: Path, io) -> list[tuple[Path, str]]:
    """List (path, "log" or "tune") for every recognised file."""
    found = []
    if not folder.is_dir():
        logger.warning("no real recordings at %s; nothing to read", folder)
        return found
    for path in sorted(folder.rglob("*")):
        if not path.is_file() or path.suffix in (".md", ".json"):
            continue
        if io.detect_log_format(path) is not None:
            found.append((path, "log"))
        elif io.detect_tune_format(path) is not None:
            found.append((path, "tune"))
    return found
