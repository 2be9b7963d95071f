"""On-demand job benchmark: submit-to-result time of a regional re-prediction, and the dashboard's
interaction latency while jobs run.

    .venv/bin/python bench/bench_jobs.py --data-dir /tmp/bench-jobs/fluxlens-data --small-demo
    .venv/bin/python bench/bench_jobs.py --data-dir … --px 500 --days 30 --latency --repeats 10

1. Builds the demo world if ``--data-dir`` has no catalog (``--small-demo`` for the small one) and
   trains a quick model version if there is none (both reported, not part of the figures).
2. Starts one ``fluxlens worker``, waits until it polls, submits a re-prediction of ``--px`` ×
   ``--px`` pixels (clipped to the model's domain; the real size is printed) × ``--days`` days
   through ``JobService`` (what the dashboard does) and prints queue wait, run time and
   submit-to-result time, with the progress timeline.
3. ``--latency``: starts ``fluxlens serve`` and a headless Chromium, clicks the sidebar's
   "step ▶" button ``--repeats`` times and times click → the server's answer (the date picker
   shows the next day), first with no job running, then while two workers run two re-predictions.
   Prints medians and the ratio.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FLUXLENS = [sys.executable, "-m", "fluxlens.cli"]


def ensure_world(data_dir: Path, small: bool) -> str:
    """Demo world and a model version in ``data_dir``; returns the newest version."""
    from catalog import settings
    from models import registry, training

    os.environ["FLUXLENS_DATA_DIR"] = str(data_dir)
    if not (settings.data_dir() / "catalog.yaml").is_file():
        from data_prep.demo import build_demo

        t0 = time.perf_counter()
        build_demo(data_dir, small=small)
        print(f"demo world ({'small' if small else 'full'}) built in {time.perf_counter() - t0:.1f} s")
    versions = registry.list_versions()
    if versions:
        return versions[0]["version"]
    t0 = time.perf_counter()
    version = training.train(
        training.TrainSettings(sites_source="fluxnet_demo", targets="raw", n_folds=2, num_boost_round=100)
    )
    print(f"model {version} trained in {time.perf_counter() - t0:.1f} s")
    return version


def request_of(version: str, px: int, days: int, corner: str = "nw") -> dict:
    from models.job_limits import prediction_domain

    d = prediction_domain(version)
    w, s, e, n = d["bbox"]
    res = d["grid"].resolution
    width, height = min(px * res, e - w), min(px * res, n - s)
    west = w if corner == "nw" else e - width
    start = d["start"]
    end = min(d["end"], start + dt.timedelta(days=days - 1))
    return {
        "version": version,
        "bbox": [west, n - height, west + width, n],
        "start": start.isoformat(),
        "end": end.isoformat(),
        "_pixels": (round(height / res), round(width / res), (end - start).days + 1),
    }


def start_workers(n: int, env: dict, log_dir: Path) -> list[subprocess.Popen]:
    procs = []
    for i in range(n):
        log = open(log_dir / f"worker-{i}.log", "w")  # noqa: SIM115 (lives as long as the process)
        procs.append(
            subprocess.Popen([*FLUXLENS, "worker", "--poll", "0.1"], env=env, stdout=log, stderr=log)
        )
    return procs


def stop(procs: list[subprocess.Popen]) -> None:
    for proc in procs:
        proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()


def submit(service, req: dict, user: str):
    body = {k: v for k, v in req.items() if not k.startswith("_")}
    return service.submit("repredict", body, user)


def bench_submit_to_result(version: str, px: int, days: int, env: dict, workdir: Path) -> None:
    from models.job_limits import JobLimits
    from models.jobs import JobService, JobStore

    store = JobStore(env["FLUXLENS_JOBS_DB"])
    service = JobService(store, JobLimits(max_pixel_days=10**12))
    workers = start_workers(1, env, workdir)
    try:
        time.sleep(8)  # let the worker import and start polling
        req = request_of(version, px, days)
        n_lat, n_lon, n_days = req["_pixels"]
        t0 = time.time()
        job = submit(service, req, "bench")
        timeline = []
        while (current := store.get(job.id)).is_active:
            if current.progress_total and (not timeline or timeline[-1][1] != current.progress_done):
                timeline.append((time.time() - t0, current.progress_done, current.progress_total))
            time.sleep(0.05)
        t_end = time.time()
    finally:
        stop(workers)
    print(f"\nre-prediction {n_lat} × {n_lon} px × {n_days} days = {n_lat * n_lon * n_days:,} pixel-days")
    print(f"  status {current.status} -> {current.output or current.error}")
    print(f"  queue wait (submit -> claimed)   {current.started_at - current.created_at:7.2f} s")
    print(f"  run (claimed -> registered)      {current.finished_at - current.started_at:7.2f} s")
    print(f"  submit -> result seen by client  {t_end - t0:7.2f} s")
    marks = timeline[:: max(1, len(timeline) // 8)] + timeline[-1:]
    print("  progress: " + ", ".join(f"{t:.1f}s {d}/{n}" for t, d, n in marks))


PICKER = "[...Bokeh.documents[0].all_models].find(m => m.title === 'Calendar' && 'value' in m)"


def click_next(page) -> float:
    """Milliseconds from clicking "step ▶" until the date picker shows the new day and the page is
    idle again (includes Playwright's click dispatch, a few ms)."""
    before = page.evaluate(f"() => String({PICKER}.value)")
    t0 = time.perf_counter()
    page.get_by_role("button", name="step ▶").click()
    page.wait_for_function(
        f"() => String({PICKER}.value) !== {before!r} && Bokeh.documents[0].is_idle",
        polling=5,
        timeout=60_000,
    )
    return (time.perf_counter() - t0) * 1000


def bench_latency(version: str, repeats: int, env: dict, workdir: Path) -> None:
    from playwright.sync_api import sync_playwright

    from models.job_limits import JobLimits
    from models.jobs import JobService, JobStore
    from tests.browser import BOKEH_IDLE, launch_chromium, serving

    workers: list[subprocess.Popen] = []
    try:
        with serving(env, workdir / "server.log", timeout_s=180) as base, sync_playwright() as p:
            browser = launch_chromium(p, workdir / "chromium", {"width": 1500, "height": 1000})
            page = browser.new_page()
            page.goto(base + "/", timeout=180_000)
            page.wait_for_function(BOKEH_IDLE)
            click_next(page)  # warm-up
            idle = [click_next(page) for _ in range(repeats)]

            store = JobStore(env["FLUXLENS_JOBS_DB"])
            service = JobService(store, JobLimits(max_pixel_days=10**12, max_active_per_user=10))
            workers = start_workers(2, env, workdir)
            jobs = [submit(service, request_of(version, 500, 30, corner), "bench") for corner in ("nw", "ne")]
            deadline = time.monotonic() + 120
            while sum(store.get(j.id).status == "running" for j in jobs) < 2 and time.monotonic() < deadline:
                time.sleep(0.2)
            busy = []
            for _ in range(repeats):
                if sum(store.get(j.id).status == "running" for j in jobs) < 2:
                    break
                busy.append(click_next(page))
            browser.close()
    finally:
        stop(workers)
    print(f"\ndashboard 'step ▶' click -> updated (ms), {repeats} repeats")
    print(f"  no job running         median {statistics.median(idle):7.0f}  max {max(idle):7.0f}")
    if busy:
        print(f"  two jobs running ({len(busy)}) median {statistics.median(busy):7.0f}  max {max(busy):7.0f}")
        print(f"  ratio busy / idle      {statistics.median(busy) / statistics.median(idle):7.2f}")
    else:
        print("  the two jobs finished before any busy measurement; use a larger --px")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--small-demo", action="store_true")
    parser.add_argument("--px", type=int, default=500)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--latency", action="store_true")
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()

    sys.path.insert(0, str(REPO))
    version = ensure_world(args.data_dir, args.small_demo)
    workdir = Path(tempfile.mkdtemp(prefix="bench-jobs-"))
    env = dict(
        os.environ, FLUXLENS_DATA_DIR=str(args.data_dir), FLUXLENS_JOBS_DB=str(workdir / "jobs.sqlite")
    )
    os.environ.update(FLUXLENS_JOBS_DB=env["FLUXLENS_JOBS_DB"])
    bench_submit_to_result(version, args.px, args.days, env, workdir)
    if args.latency:
        bench_latency(version, args.repeats, env, workdir)
    print(f"\nlogs in {workdir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
