"""Plumbing for driving a real Chromium against a real ``fluxlens serve``: the browser's path and
flags, a free port, a served dashboard, the Bokeh-idle wait and screenshots.

Plain functions (no pytest), so benchmarks use them too; the pytest fixtures built on them are in
``tests/app/conftest.py``.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
README_SERVE = ["bash", str(REPO / "dev.sh"), "serve"]  # the README's one command
SCREENSHOTS = REPO / "artifacts" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
FLUXLENS = [sys.executable, "-m", "fluxlens.cli"]
BOKEH_IDLE = "window.Bokeh && Bokeh.documents.length > 0 && Bokeh.documents[0].is_idle"
# ``(name) => …``: the named map figure's plotting frame on the page (left, top, width, height), its
# axis ranges, how many values of its image are finite, whether it is laid out (``visible``), its
# canvas box, title and tile layers; null while the figure is not rendered.
MAP_FRAME = """(name) => { const m = Bokeh.documents[0].get_model_by_name(name);
  const v = m && Bokeh.index.find_one(m);
  if (!v || !v.canvas_view) return null;
  const r = v.canvas_view.el.getBoundingClientRect();
  const img = m.renderers.find(r => r.glyph && r.glyph.type === 'Image').data_source.data.image[0];
  let finite = 0; for (let i = 0; i < img.length; i++) { if (Number.isFinite(img[i])) finite++; }
  const tiles = m.renderers.filter(r => r.type === 'TileRenderer').map(
    r => ({url: r.tile_source.url, attribution: r.tile_source.attribution}));
  return {left: r.x + v.frame.bbox.x, top: r.y + v.frame.bbox.y, width: v.frame.bbox.width,
          height: v.frame.bbox.height, x0: m.x_range.start, x1: m.x_range.end, y0: m.y_range.start,
          y1: m.y_range.end, finite: finite, visible: r.width > 0, tiles: tiles,
          title: m.title ? String(m.title.text) : '',
          canvas: {left: r.x, right: r.x + r.width, top: r.y, bottom: r.y + r.height}}; }"""


class ServerDidNotStart(RuntimeError):
    """``fluxlens serve`` exited or did not answer in time; the message ends with its log's tail."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serving(
    env: dict,
    log_path: Path,
    *serve_args: str,
    timeout_s: float = 600,
    cwd: Path | None = None,
    command: list[str] | None = None,
) -> Iterator[str]:
    """Run ``fluxlens serve`` on a free port with ``env``, output to ``log_path``; yields the base URL
    (``http://localhost:<port>``) once ``/app`` answers, and stops the server (its whole process
    group) on exit. Raises :class:`ServerDidNotStart` with the log's tail when it exits or stays
    silent for ``timeout_s``. ``cwd``: the folder it runs in (a checkout there is the code served,
    e.g. a ``git worktree`` of an older commit). ``command``: what serves, instead of ``fluxlens serve``
    (e.g. the README's ``bash dev.sh serve``); it is given ``--port <port>`` and ``serve_args``."""
    port = free_port()
    base = f"http://localhost:{port}"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [*(command or [*FLUXLENS, "serve"]), "--port", str(port), *serve_args],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=cwd,
        )
        try:
            _wait_answering(proc, f"{base}/app", log_path, timeout_s)
            yield base
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def _wait_answering(proc: subprocess.Popen, url: str, log_path: Path, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        if proc.poll() is not None:
            raise ServerDidNotStart(f"fluxlens serve exited ({proc.returncode}):\n{_tail(log_path)}")
        try:
            urllib.request.urlopen(url, timeout=5)
            return
        except OSError as exc:
            if time.monotonic() > deadline:
                msg = f"fluxlens serve did not answer {url} within {timeout_s:.0f} s:\n{_tail(log_path)}"
                raise ServerDidNotStart(msg) from exc
            time.sleep(0.5)


def _tail(log_path: Path, chars: int = 4000) -> str:
    return Path(log_path).read_text(errors="replace")[-chars:]


def launch_chromium(playwright, profile_dir: Path, viewport: dict, **options):
    """A persistent Chromium context (fresh profile in ``profile_dir``) on the Debian browser."""
    return playwright.chromium.launch_persistent_context(
        str(profile_dir),
        executable_path=CHROMIUM,
        args=CHROMIUM_ARGS,
        headless=True,
        viewport=viewport,
        **options,
    )


def drag(page, start: tuple[float, float], end: tuple[float, float]) -> None:
    """A real mouse drag from ``start`` to ``end`` (page pixels), moving in small steps like a hand."""
    page.mouse.move(*start)
    page.mouse.down()
    page.mouse.move((start[0] + end[0]) / 2, (start[1] + end[1]) / 2, steps=5)
    page.mouse.move(*end, steps=5)
    page.mouse.up()


def wait_idle(page, timeout: float = 60_000) -> None:
    """Let a just-sent event reach the server, then wait until the Bokeh document is idle."""
    page.wait_for_timeout(300)
    page.wait_for_function(BOKEH_IDLE, timeout=timeout)


def save_screenshot(page, name: str, *, full_page: bool = True) -> Path:
    """``artifacts/screenshots/<name>.png``."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path


def choose(page, option_text: str, *, exact: bool = False, timeout_s: float = 60) -> None:
    """In the visible select offering ``option_text`` (a substring of the label unless ``exact``),
    pick that option (a tab is built on first open: its selects may arrive a moment later)."""
    deadline = time.monotonic() + timeout_s
    while True:
        for sel in page.locator("select").all():
            labels = sel.locator("option").all_inner_texts()
            match = [t for t in labels if (t == option_text if exact else option_text in t)]
            if match and sel.is_visible():
                sel.select_option(label=match[0])
                return
        if time.monotonic() > deadline:
            raise AssertionError(f"no visible select offers {option_text!r}")
        page.wait_for_timeout(250)
