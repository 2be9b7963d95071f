"""Speed a person feels: the dashboard in a real Chromium against a real ``fluxlens serve`` on the demo.

    .venv/bin/python bench/bench_browser_speed.py                       # small demo, built in a tmp dir
    .venv/bin/python bench/bench_browser_speed.py --data-dir fluxlens-data --repeats 7
    .venv/bin/python bench/bench_browser_speed.py --data-dir D --profile-models   # + cProfile of Models
    .venv/bin/python bench/bench_browser_speed.py --data-dir D --compare HEAD~1   # old vs new, in turn

Measures, each ``--repeats`` times (a fresh browser context, i.e. a new visitor with an empty cache,
per page load; one page for the date steps):

* **page → first map**: from ``page.goto`` to the map's image drawn (the ``main_map`` figure's image
  has finite values and two animation frames have passed since, so it is painted);
* **first open of Validation / Models**: from the click on the tab to its content present (a plot
  of the tab is drawn and nothing in it is still loading), in a page whose tab was never opened;
* **date step**: from the click on the sidebar's "step ▶" to the map's new image drawn.

``--compare COMMIT`` serves that commit too (a ``git worktree`` of it, beside the working tree) and
takes the two servers in turn for every measurement, then prints the ratios old/new of the medians.
``--screenshots DIR`` saves the page at the first measured moment of each, to see what "drawn" and
"present" were.

Prints median, min and max, the first (cold: server caches empty) value apart, and the issue's
targets (≤ 1.5 s, ≤ 1.5 s, ≤ 0.4 s). The server runs with ``--workers 0`` (no job runs during the
measurement). ``--profile-models`` also profiles ``app.model_panel.panel(state)`` in this process on
the same data directory: the tab and its Bokeh models, as when a session opens it (cProfile, top
functions by cumulative time).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.app.conftest import HAS_FINITE, MAP_DRAWN, MAP_IMAGE, PAINTED, TAB_READY  # noqa: E402
from tests.browser import BOKEH_IDLE, FLUXLENS, launch_chromium, serving  # noqa: E402

TARGETS_S = {"page → first map": 1.5, "first open of Validation": 1.5, "first open of Models": 1.5,
             "date step": 0.4}  # fmt: skip

FIRST_IMAGE = f"() => ({MAP_DRAWN})('main_map')"
REMEMBER_IMAGE = f"() => {{ window.__benchImage = {MAP_IMAGE}('main_map'); }}"
NEW_IMAGE = f"""() => {{ const img = {MAP_IMAGE}('main_map');
  return img !== window.__benchImage && {HAS_FINITE}(img); }}"""


def summary(name: str, values: list[float]) -> str:
    target = TARGETS_S[name]
    med = statistics.median(values)
    verdict = "meets" if med <= target else "MISSES"
    return (
        f"{name:26s} median {med:6.2f} s  min {min(values):5.2f}  max {max(values):5.2f}  "
        f"first (cold) {values[0]:5.2f} s  n={len(values)}  target ≤ {target} s: {verdict}"
    )


def _click_tab(page, title: str) -> None:
    page.locator(".bk-tab").filter(has_text=title).first.click()


def _visit(p, url: str, tab: str | None, profile: Path, viewport: dict, shot: Path | None) -> float:
    """One new visitor: the page's first map (``tab`` None) or the first open of ``tab``, in s."""
    ctx = launch_chromium(p, profile, viewport)
    page = ctx.new_page()
    t0 = time.perf_counter()
    page.goto(url, timeout=120_000)
    page.wait_for_function(FIRST_IMAGE, polling="raf", timeout=120_000)
    page.evaluate(PAINTED)
    if tab is not None:
        page.wait_for_function(BOKEH_IDLE, timeout=60_000)
        page.wait_for_timeout(500)  # let the first page settle before the click
        t0 = time.perf_counter()
        _click_tab(page, tab)
        page.wait_for_function(TAB_READY, arg={"title": tab, "plots": True}, polling="raf", timeout=120_000)
        page.evaluate(PAINTED)
    elapsed = time.perf_counter() - t0
    if shot is not None:
        page.screenshot(path=str(shot))
    ctx.close()
    return elapsed


def _steps(p, url: str, repeats: int, profile: Path, viewport: dict, shot: Path | None) -> list[float]:
    """``repeats`` date steps in one page, in s."""
    out = []
    ctx = launch_chromium(p, profile, viewport)
    page = ctx.new_page()
    page.goto(url, timeout=120_000)
    page.wait_for_function(FIRST_IMAGE, timeout=120_000)
    page.wait_for_function(BOKEH_IDLE, timeout=60_000)
    step = page.get_by_role("button", name="step ▶")
    for _ in range(repeats):
        page.wait_for_timeout(300)
        page.evaluate(REMEMBER_IMAGE)
        t0 = time.perf_counter()
        step.click()
        page.wait_for_function(NEW_IMAGE, polling="raf", timeout=60_000)
        page.evaluate(PAINTED)
        out.append(time.perf_counter() - t0)
        if shot is not None and len(out) == 1:
            page.screenshot(path=str(shot))
        page.wait_for_function(BOKEH_IDLE, timeout=60_000)
    ctx.close()
    return out


def measure(urls: dict[str, str], repeats: int, viewport: dict, profile_root: Path,
            shots: Path | None = None) -> dict[str, dict[str, list[float]]]:  # fmt: skip
    """Per served code (``urls``: label → app URL) the figures of each measure, the servers taken in
    turn for every single measurement (old, new, old, new …) so that both see the same machine."""
    from playwright.sync_api import sync_playwright

    out = {label: {name: [] for name in TARGETS_S} for label in urls}
    with sync_playwright() as p:
        for i in range(repeats):
            for tab in (None, "Validation", "Models"):
                name = "page → first map" if tab is None else f"first open of {tab}"
                for label, url in urls.items():
                    first = shots is not None and i == 0
                    shot = shots / f"{label}-ready-{tab or 'Map'}.png" if first else None
                    profile = profile_root / f"{label}-visit-{i}-{tab}"
                    out[label][name].append(_visit(p, url, tab, profile, viewport, shot))
        for label, url in urls.items():
            shot = shots / f"{label}-ready-step.png" if shots is not None else None
            out[label]["date step"] = _steps(p, url, repeats, profile_root / f"{label}-steps", viewport, shot)
    return out


def profile_models(top: int) -> str:
    """cProfile of what the server does when a session first opens the Models tab: build the tab
    (``app.model_panel.panel(state)``) and its Bokeh models (``get_root``, where the plots are
    rendered). Measured twice: the first in a fresh process (imports, registry reads), then again."""
    import panel as pn
    from bokeh.document import Document

    from app import model_panel
    from app.state import AppState

    pn.extension("tabulator")

    def open_tab() -> None:
        model_panel.panel(AppState()).get_root(Document())

    prof = cProfile.Profile()
    t0 = time.perf_counter()
    prof.runcall(open_tab)
    cold = time.perf_counter() - t0
    prof_again = cProfile.Profile()
    t1 = time.perf_counter()
    prof_again.runcall(open_tab)
    again = time.perf_counter() - t1
    text = io.StringIO()
    text.write(f"Models tab, server side (panel + get_root): {cold:.2f} s cold, {again:.2f} s again\n")
    for title, p in (("cold", prof), ("again", prof_again)):
        text.write(f"--- {title}, top {top} by cumulative time\n")
        pstats.Stats(p, stream=text).sort_stats("cumulative").print_stats(top)
    return text.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-dir", type=Path, help="a data directory with a catalog (default: build the "
                        "small demo world into a temporary one)")  # fmt: skip
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--width", type=int, default=1400)
    parser.add_argument("--height", type=int, default=900)
    parser.add_argument("--profile-models", action="store_true")
    parser.add_argument("--top", type=int, default=25, help="functions listed by --profile-models")
    parser.add_argument("--compare", metavar="COMMIT", help="also serve COMMIT (a git worktree of it) and "
                        "measure both in turn: old, new, old, new …, with the ratios")  # fmt: skip
    parser.add_argument(
        "--screenshots", type=Path, help="folder for a screenshot at each first measured moment"
    )
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error("--repeats: at least 1")
    work = Path(tempfile.mkdtemp(prefix="bench-browser-speed-"))
    data_dir = args.data_dir
    if data_dir is None:
        data_dir = work / "fluxlens-data"
        t0 = time.perf_counter()
        subprocess.run([*FLUXLENS, "--data-dir", str(data_dir), "demo", "--small"], check=True,
                       stdout=subprocess.DEVNULL)  # fmt: skip
        print(f"small demo world built in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    elif not (data_dir / "catalog.yaml").is_file():
        parser.error(f"--data-dir {data_dir}: no catalog.yaml (run `fluxlens demo` first)")
    viewport = {"width": args.width, "height": args.height}
    if args.screenshots:
        args.screenshots.mkdir(parents=True, exist_ok=True)
    checkouts = {"new": None}
    if args.compare:
        old = work / "old-checkout"
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(old), args.compare],
                       check=True, stdout=subprocess.DEVNULL)  # fmt: skip
        checkouts = {"old": old, "new": None}
    try:
        with ExitStack() as stack:
            urls, envs = {}, {}
            for label, cwd in checkouts.items():
                cache = work / f"validation-cache-{label}"
                envs[label] = dict(os.environ, FLUXLENS_DATA_DIR=str(data_dir.resolve()),
                                   FLUXLENS_VALIDATION_CACHE=str(cache))  # fmt: skip
                base = stack.enter_context(
                    serving(envs[label], work / f"serve-{label}.log", "--workers", "0", cwd=cwd)
                )
                urls[label] = f"{base}/app"
            out = measure(urls, args.repeats, viewport, work / "profiles", args.screenshots)
    finally:
        if args.compare:
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(old)], check=False)
    print(f"browser speed on {data_dir} at {args.width}×{args.height}, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f}")  # fmt: skip
    for label, figures in out.items():
        if args.compare:
            print(f"--- {label}: {args.compare if label == 'old' else 'working tree'}")
        for name, values in figures.items():
            print(summary(name, values))
    if args.compare:
        print("--- ratio old/new of the medians (> 1: the new code is faster)")
        for name in TARGETS_S:
            old_med, new_med = (statistics.median(out[k][name]) for k in ("old", "new"))
            print(f"{name:26s} {old_med:6.2f} s / {new_med:6.2f} s = {old_med / new_med:5.2f}")
    env = envs["new"]
    if args.profile_models:
        from catalog import settings

        settings.configure(settings.from_environment(env))
        print(profile_models(args.top))


if __name__ == "__main__":
    main()
