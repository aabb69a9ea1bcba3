"""Open input files safely and replace output files atomically.

Readers call :func:`read_regular_file`, which rejects directories,
FIFOs and devices before reading, so a FIFO or ``/dev/zero`` passed as
a log or tune raises instead of blocking or reading without end.
Writers call :func:`write_atomic`: the bytes go to a temporary file in
the destination's folder, which then replaces the destination with
``os.replace``.
"""

from __future__ import annotations

import logging
import os
import stat
import tempfile
from pathlib import Path

from dynoai_lab.io.errors import FileFormatError

logger = logging.getLogger(__name__)

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def _kind(mode: int) -> str:
    for check, name in _KINDS:
        if check(mode):
            return name
    return "not a regular file"


def read_regular_file(
    path: Path,
    error: type[FileFormatError],
    what: str,
    limit: int | None = None,
) -> bytes:
    """Read a regular file's bytes, or raise ``error`` naming the path.

    The file is opened without blocking and checked with ``fstat``
    before any read, so a FIFO, a device or a directory (also behind a
    symlink) is rejected at once.

    Parameters
    ----------
    path : pathlib.Path
        The file.
    error : type of FileFormatError
        Exception raised when the file is missing, unreadable or not a
        regular file.
    what : str
        What the file should be, for messages (``"log"``, ``"tune"``).
    limit : int, optional
        Read at most this many bytes [B] (for sniffing a format).

    Returns
    -------
    bytes
        The file's contents, or its first ``limit`` bytes.
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0)
    flags |= getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        descriptor = os.open(path, flags)
    except IsADirectoryError:
        raise error(f"{path} is a directory; expected a {what} file") from None
    except OSError as exc:
        raise error(
            f"failed to read {what} {path}: {exc.strerror or exc}"
        ) from None
    mode = os.fstat(descriptor).st_mode
    if not stat.S_ISREG(mode):
        os.close(descriptor)
        raise error(
            f"{path} is {_kind(mode)}, not a regular file; expected a "
            f"{what} file"
        )
    with os.fdopen(descriptor, "rb") as file:
        try:
            return file.read() if limit is None else file.read(limit)
        except OSError as exc:
            raise error(
                f"failed to read {what} {path}: {exc.strerror or exc}"
            ) from None


def write_atomic(
    path: str | os.PathLike, data: bytes, *, overwrite_readonly: bool = False
) -> Path:
    """Write bytes to a file atomically: temporary file, then rename.

    A symlink is followed, so the file it points to is replaced and the
    link stays. An existing destination keeps its permission bits; a
    new file gets mode 0644. A hard-linked destination is replaced by a
    new file, so its other names keep the old bytes.

    Parameters
    ----------
    path : str or path-like
        Destination file.
    data : bytes
        The new contents.
    overwrite_readonly : bool, default False
        Replace a destination that has no write permission bits.
        ``os.replace`` needs write permission only on the folder, so
        without this check a read-only file would be replaced silently.

    Returns
    -------
    pathlib.Path
        The file written: the destination with symlinks resolved.

    Raises
    ------
    FileNotFoundError
        If the destination's folder does not exist.
    NotADirectoryError
        If the destination's folder is not a directory.
    IsADirectoryError
        If the destination is a directory.
    PermissionError
        If the destination is read-only and ``overwrite_readonly`` is
        False.
    OSError
        If writing fails; the destination is then left as it was.
    """
    target = Path(os.path.realpath(path))
    folder = target.parent
    if not folder.exists():
        raise FileNotFoundError(
            f"cannot write {path}: folder {folder} does not exist; "
            "create it first"
        )
    if not folder.is_dir():
        raise NotADirectoryError(
            f"cannot write {path}: {folder} is not a directory"
        )
    if target.is_dir():
        raise IsADirectoryError(
            f"cannot write {path}: it is a directory; expected a file path"
        )
    mode = 0o644
    if target.exists():
        mode = target.stat().st_mode & 0o7777
        if not mode & 0o222 and not overwrite_readonly:
            raise PermissionError(
                f"cannot write {path}: the file is read-only (mode "
                f"{mode:04o}); pass overwrite_readonly=True to replace it"
            )

    try:
        descriptor, temporary = tempfile.mkstemp(
            prefix=f".{target.name}.", suffix=".tmp", dir=folder
        )
    except OSError as exc:
        raise type(exc)(
            exc.errno,
            f"cannot write {path} in folder {folder}: {exc.strerror}",
        ) from None
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, target)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise
    if target != Path(path).absolute():
        logger.info("wrote %s through %s", target, path)
    return target
