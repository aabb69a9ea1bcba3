"""dynoai-lab app: port checks and the notebook it serves."""

from __future__ import annotations

import socket
import subprocess
import sys

import nbformat
import pytest

from dynoai_lab import app


def _cells(path):
    notebook = nbformat.read(path, as_version=4)
    return [(cell.cell_type, cell.source) for cell in notebook.cells]


def test_package_copy_matches_notebook():
    assert app.REPO_NOTEBOOK.is_file()
    assert _cells(app.PACKAGE_NOTEBOOK) == _cells(app.REPO_NOTEBOOK)


def test_voila_command_binds_loopback():
    command = app.voila_command(app.REPO_NOTEBOOK, 8123)
    assert "--Voila.ip=127.0.0.1" in command
    assert "--port=8123" in command
    assert "--no-browser" in command


def test_free_port_is_bindable():
    port = app.free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


def test_taken_port_rejected():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        with pytest.raises(app.AppError, match=f"port {port} .* not free"):
            app.check_port(port)
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "dynoai_lab.cli",
                "app",
                "--port",
                str(port),
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 2
    assert f"port {port} on 127.0.0.1 is not free" in result.stderr
    assert "Traceback" not in result.stderr


def test_invalid_port_rejected():
    with pytest.raises(app.AppError, match="expected 1 to 65535"):
        app.check_port(70000)
