"""Serve the workbench notebook as a web app with Voila, on loopback only.

``dynoai-lab app`` runs Voila on ``notebooks/00_workbench.ipynb`` (or
the copy shipped in the package) at ``http://127.0.0.1:PORT/``, opens
no browser, prints the address once the server accepts connections and
stops Voila on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import logging
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

logger = logging.getLogger(__name__)

#: The only interface the app listens on.
HOST = "127.0.0.1"

#: Notebook in a checkout of the repository.
REPO_NOTEBOOK = (
    Path(__file__).resolve().parents[1] / "notebooks" / "00_workbench.ipynb"
)

#: Copy of the same notebook in the package, for a wheel installation.
PACKAGE_NOTEBOOK = Path(__file__).with_name("data") / "workbench.ipynb"

#: Time Voila may take to start listening [s]; a cold start on a
#: 2-core machine took about 3 s.
READY_TIMEOUT = 120.0


class AppError(RuntimeError):
    """The web app could not start; the message gives the reason."""


def workbench_notebook():
    """Return the workbench notebook: the checkout's, else the package's."""
    return REPO_NOTEBOOK if REPO_NOTEBOOK.is_file() else PACKAGE_NOTEBOOK


def free_port():
    """Return a TCP port on 127.0.0.1 that is free now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def check_port(port):
    """Raise :class:`AppError` when ``port`` cannot be bound on loopback."""
    if not 1 <= port <= 65535:
        raise AppError(f"--port {port} is invalid; expected 1 to 65535")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((HOST, port))
        except OSError as error:
            raise AppError(
                f"port {port} on {HOST} is not free ({error.strerror}); "
                "choose another --port or omit it for a free one"
            ) from None


def voila_command(notebook, port):
    """Return the Voila command line that serves ``notebook`` on ``port``."""
    return [
        sys.executable,
        "-m",
        "voila",
        str(notebook),
        "--no-browser",
        f"--port={port}",
        f"--Voila.ip={HOST}",
        "--Voila.port_retries=0",
        "--VoilaConfiguration.show_tracebacks=False",
    ]


def serve(port=None, notebook=None, ready_timeout=READY_TIMEOUT):
    """Run Voila on the workbench notebook until interrupted.

    Parameters
    ----------
    port : int, optional
        TCP port on 127.0.0.1; a free one when None.
    notebook : path-like, optional
        Notebook to serve; default :func:`workbench_notebook`.
    ready_timeout : float
        Time Voila may take to accept connections [s].

    Returns
    -------
    int
        0 after Ctrl-C or SIGTERM, else Voila's exit status.

    Raises
    ------
    AppError
        When the port is taken, the notebook is missing, or Voila ends
        or times out before it listens.
    """
    notebook = Path(notebook or workbench_notebook()).resolve()
    if not notebook.is_file():
        raise AppError(f"workbench notebook not found: {notebook}")
    if port is None:
        port = free_port()
    check_port(port)
    # Voila gets its own session, so a Ctrl-C in the terminal reaches
    # only this process, which then stops Voila with SIGTERM.
    process = subprocess.Popen(
        voila_command(notebook, port),
        cwd=notebook.parent,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    # SIGINT is set too: a shell starts background jobs with it ignored.
    previous = {
        sig: signal.signal(sig, _raise_interrupt)
        for sig in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        _wait_until_listening(process, port, ready_timeout)
        print(
            f"dynoai-lab workbench: http://{HOST}:{port}/ (Ctrl-C stops it)",
            flush=True,
        )
        return process.wait()
    except KeyboardInterrupt:
        print("dynoai-lab workbench: stopping", flush=True)
        return 0
    finally:
        _stop(process)
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


def _wait_until_listening(process, port, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AppError(
                f"Voila exited with status {process.returncode} before "
                f"listening on {HOST}:{port}; see its messages above"
            )
        try:
            with socket.create_connection((HOST, port), timeout=1.0):
                return
        except OSError:
            time.sleep(0.2)
    raise AppError(
        f"Voila did not listen on {HOST}:{port} within {timeout:.0f} s"
    )


def _stop(process, timeout=15.0):
    """End Voila with SIGTERM, then SIGKILL if it does not exit in time."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        logger.warning(
            "Voila (pid %d) ignored SIGTERM for %.0f s; killing it",
            process.pid,
            timeout,
        )
        process.kill()
        process.wait()
