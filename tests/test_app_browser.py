"""The workbench web app in headless Chromium, clicked as a tuner would.

The module starts ``dynoai-lab app`` on a free loopback port, drives
Debian's ``chromium`` with Playwright, and stops the server at the end.
The tests share one page, so one kernel and one panel, in file order.
Each saves a 1280 × 500 screenshot to ``DYNOAI_SCREENSHOTS`` or a
temporary folder.
"""

from __future__ import annotations

import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from dynoai_lab.app import free_port

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1280, "height": 900}

#: Time for Voila to start a kernel and run the notebook [ms]; a cold
#: start on 2 cores took about 20 s (imports and the health check).
PAGE_TIMEOUT = 180_000

#: Time for a plot or message to appear after a click [ms]; generous,
#: because a loaded 2-core machine may take long to run plotly.js.
DRAW_TIMEOUT = 120_000

#: Time for one tuning session of 2 pulls [ms]; it took about 6 s.
TUNING_TIMEOUT = 180_000


def _chromium():
    """Return Chromium's path; skip outside CI when it is missing."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path:
        return path
    reason = (
        "chromium not found; `make test` installs Debian's chromium "
        "package, which needs root and the Debian archive"
    )
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


def _app_command(port):
    script = Path(sys.executable).with_name("dynoai-lab")
    if script.is_file():
        return [str(script), "app", "--port", str(port)]
    return [sys.executable, "-m", "dynoai_lab.cli", "app", "--port", str(port)]


def _read_lines(stream, lines):
    for line in stream:
        lines.put(line)


@pytest.fixture(scope="module")
def app_url():
    """Start ``dynoai-lab app`` on a free port; stop it afterwards."""
    _chromium()
    port = free_port()
    process = subprocess.Popen(
        _app_command(port),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    lines = queue.Queue()
    threading.Thread(
        target=_read_lines, args=(process.stdout, lines), daemon=True
    ).start()
    try:
        url = None
        deadline = time.monotonic() + 120
        while url is None and time.monotonic() < deadline:
            try:
                line = lines.get(timeout=1)
            except queue.Empty:
                if process.poll() is not None:
                    break
                continue
            match = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
            if match:
                url = match.group(0)
        assert url is not None, "dynoai-lab app printed no address"
        assert url == f"http://127.0.0.1:{port}/"
        yield url
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    # The app stops Voila before it exits, so the port is closed now.
    assert process.returncode == 0, process.returncode
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


@pytest.fixture(scope="module")
def browser_context(tmp_path_factory):
    """Return a Chromium context with a fresh user data dir."""
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),
            executable_path=_chromium(),
            args=CHROMIUM_FLAGS,
            headless=True,
            viewport=VIEWPORT,
            accept_downloads=True,
        )
        try:
            yield context
        finally:
            context.close()


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory):
    """Return the folder for the tests' screenshots."""
    folder = os.environ.get("DYNOAI_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        return Path(folder)
    return tmp_path_factory.mktemp("screenshots")


@pytest.fixture(scope="module")
def page(app_url, browser_context):
    """Open the app once and wait for the panel; the tests share it.

    A page costs a kernel start, the imports and a health check (about
    20 s on a loaded 2-core machine), so the tests run in file order on
    one panel: pull, analyze, tune, then a broken upload.
    """
    page = browser_context.new_page()
    page.goto(app_url, timeout=PAGE_TIMEOUT)
    page.get_by_role("button", name="Trigger Pull").wait_for(
        timeout=PAGE_TIMEOUT
    )
    page.locator(".dynoai-health", has_text="io").wait_for(
        timeout=PAGE_TIMEOUT
    )
    yield page
    page.close()


def _shoot(page, locator, path, above=160):
    """Save the viewport's width from ``above`` px over ``locator``."""
    locator.scroll_into_view_if_needed()
    box = locator.bounding_box()
    top = max(0.0, min(box["y"] - above, VIEWPORT["height"] - 500))
    clip = {"x": 0, "y": top, "width": VIEWPORT["width"], "height": 500}
    page.screenshot(path=str(path), clip=clip)
    return path


def _trigger_and_wait(page):
    """Click Trigger Pull; return the seconds until the power plot drew."""
    traces = page.locator(".dynoai-power .scatterlayer .trace")
    status = page.locator(".dynoai-status")
    before = status.inner_text()
    started = time.perf_counter()
    page.get_by_role("button", name="Trigger Pull").click()
    page.wait_for_function(
        """([before]) => {
            const s = document.querySelector(".dynoai-status");
            const t = document.querySelectorAll(
                ".dynoai-power .scatterlayer .trace");
            return s && s.innerText !== before && t.length > 0;
        }""",
        arg=[before],
        timeout=DRAW_TIMEOUT,
    )
    traces.first.wait_for(timeout=DRAW_TIMEOUT)
    return time.perf_counter() - started


def _texts(locator):
    return " ".join(locator.all_text_contents())


def test_trigger_pull_draws_power(page, screenshots, capsys):
    assert page.locator(".dynoai-power .scatterlayer .trace").count() == 0
    elapsed = _trigger_and_wait(page)
    title = page.locator(".dynoai-power .gtitle").text_content()
    assert "SAE J1349" in title
    assert page.locator(".dynoai-power .scatterlayer .trace").count() == 2
    assert "Pull 1, wot" in page.locator(".dynoai-status").inner_text()
    _shoot(page, page.locator(".dynoai-status"), screenshots / "pull.png")
    with capsys.disabled():
        print(f"\nTrigger Pull to power plot, WOT pull: {elapsed:.2f} s")


def test_analyze_pull_draws_heatmap(page, screenshots, tmp_path):
    _trigger_and_wait(page)
    page.get_by_role("button", name="Analyze Pull").click()
    heatmap = page.locator(".dynoai-heatmap .heatmaplayer .hm")
    heatmap.first.wait_for(timeout=DRAW_TIMEOUT)
    status = page.locator(".dynoai-status").inner_text()
    assert "VE correction computed" in status
    title = page.locator(".dynoai-heatmap .gtitle").text_content()
    assert title == "front cylinder: measured VE error [%]"

    # Hovering a covered cell shows its figures.
    drag = page.locator(".dynoai-heatmap .nsewdrag").first
    page.locator(".dynoai-heatmap").scroll_into_view_if_needed()
    box = drag.bounding_box()
    hover = page.locator(".dynoai-heatmap .hoverlayer .hovertext")
    for fy in (0.2, 0.3, 0.4, 0.5, 0.6):
        for fx in (0.97, 0.9, 0.8, 0.7):
            page.mouse.move(
                box["x"] + box["width"] * fx, box["y"] + box["height"] * fy
            )
            page.wait_for_timeout(200)
            if "ratio" in _texts(hover):
                break
        if "ratio" in _texts(hover):
            break
    assert "confidence" in _texts(hover)
    assert "ratio" in _texts(hover)
    _shoot(
        page, page.locator(".dynoai-heatmap"), screenshots / "heatmap.png", 20
    )

    # The analysis downloads as a real file.
    page.get_by_role("button", name="Prepare Downloads").click()
    link = page.locator(".dynoai-downloads a", has_text="corrections.csv")
    link.wait_for(timeout=DRAW_TIMEOUT)
    with page.expect_download() as download:
        link.click()
    path = tmp_path / "corrections.csv"
    download.value.save_as(path)
    assert path.read_text().startswith("cylinder,rpm [rpm],map [kPa]")


def test_closed_loop_reaches_end(page, screenshots):
    from playwright.sync_api import expect

    health = page.locator(".dynoai-health")
    checked = health.inner_text()
    page.get_by_role("button", name="Start Closed-Loop Tuning").click()
    stop = page.get_by_role("button", name="Stop")
    expect(stop).to_be_enabled(timeout=DRAW_TIMEOUT)

    # The kernel still responds while the session runs in its thread.
    page.get_by_role("button", name="Health Check").click()
    page.wait_for_function(
        "([before]) => document.querySelector('.dynoai-health').innerText"
        " !== before",
        arg=[checked],
        timeout=DRAW_TIMEOUT,
    )
    finished = re.compile(r"Closed-loop tuning (stopped|converged)")
    page.locator(".dynoai-status", has_text=finished).wait_for(
        timeout=TUNING_TIMEOUT
    )
    progress = page.locator(".dynoai-progress-text").inner_text()
    assert "pull 2 of 2" in progress
    errors = [float(e) for e in re.findall(r"([\d.]+) %", progress)]
    assert len(errors) == 2
    assert errors[1] < errors[0]
    bar = page.locator(".dynoai-progress .progress-bar")
    assert "100%" in bar.get_attribute("style").replace(" ", "")
    assert stop.is_disabled()
    traces = page.locator(".dynoai-error .scatterlayer .trace")
    traces.nth(1).wait_for(timeout=DRAW_TIMEOUT)
    assert traces.count() == 2
    # The last pull's correction is drawn after the session ends.
    page.locator(".dynoai-heatmap .heatmaplayer .hm").first.wait_for(
        timeout=DRAW_TIMEOUT
    )
    _shoot(page, page.locator(".dynoai-error"), screenshots / "tuning.png")


def test_broken_log_shows_message(page, screenshots):
    with page.expect_file_chooser() as chooser:
        page.locator(".dynoai-log-upload").click()
    chooser.value.set_files(
        {
            "name": "broken.csv",
            "mimeType": "text/csv",
            "buffer": b"time,engine_speed\nnot a number,1\n",
        }
    )
    message = page.locator(".dynoai-message", has_text="failed")
    message.wait_for(timeout=DRAW_TIMEOUT)
    text = message.inner_text()
    assert text.startswith("Load log failed: ")
    assert "broken.csv" in text
    assert "Traceback" not in page.content()
    _shoot(page, message, screenshots / "broken_log.png")
