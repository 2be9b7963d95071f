"""On-demand job benchmark: submit-to-result time of a regional re-prediction, and the dashboard's
interaction latency while jobs run.

    .venv/bin/python bench/bench_jobs.py --data-dir /tmp/bench-jobs/fluxlens-data --small-demo
    .venv/bin/python bench/bench_jobs.py --data-dir … --px 500 --days 30 --latency --repeats 10
    .venv/bin/python bench/bench_jobs.py --data-dir /tmp/bench-jobs/fine --fine-demo --runs 2 \
        [--model-from /tmp/bench-jobs/fluxlens-data]

1. Builds the demo world if ``--data-dir`` has no catalog (``--small-demo`` for the small one,
   ``--fine-demo`` for regional 0.1° cubes of 500 × 500 px × 31 days, the only one where a
   500 × 500 px job fits) and trains a quick model version if there is none (both reported, not part
   of the figures).
   ``--model-from DIR`` uses the newest model version of another data directory instead (the full
   demo's emulator, trained on a year of 56 towers, on the fine world's cubes).
2. Starts one ``fluxlens worker``, waits until it polls, submits ``--runs`` re-predictions one after
   the other of ``--px`` × ``--px`` pixels (clipped to the model's domain; the real size is printed)
   × ``--days`` days through ``JobService`` (what the dashboard does) and prints queue wait, run time
   and submit-to-result time of each, with the progress timeline, then the worker's peak RSS. The
   first run in a worker includes loading and packing the model version's forests, and compiling
   the prediction kernel if the machine has none yet (set ``FLUXLENS_CACHE_DIR`` to an empty folder
   to include it).
3. ``--latency``: starts ``fluxlens serve`` and a headless Chromium, clicks the sidebar's
   "step ▶" button ``--repeats`` times and times click → the server's answer (the date picker
   shows the next day), first with no job running, then while two workers run two re-predictions.
   Prints medians and the ratio.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FLUXLENS = [sys.executable, "-m", "fluxlens.cli"]


def ensure_world(data_dir: Path, size: str, model_from: Path | None = None) -> str:
    """Demo world of ``size`` (full, small, fine) and a model version in ``data_dir``; returns the
    newest version, or the newest of ``model_from`` (another data directory), copied in without its
    compiled code when it is not there yet."""
    from catalog import settings
    from data_prep import demo_world
    from models import registry, training

    os.environ["FLUXLENS_DATA_DIR"] = str(data_dir)
    if not (settings.data_dir() / "catalog.yaml").is_file():
        from data_prep.demo import build_demo

        t0 = time.perf_counter()
        steps = build_demo(
            data_dir, spec={"full": demo_world.FULL, "small": demo_world.SMALL, "fine": demo_world.FINE}[size]
        )
        print(f"demo world ({size}) built in {time.perf_counter() - t0:.1f} s; steps (s): {steps}")
    if model_from is not None:
        source = max(p.parent for p in (model_from / "models").glob("*/meta.json"))
        target = registry.models_dir() / source.name
        if not target.exists():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("compiled"))
            print(f"model {source.name} copied from {model_from}")
        return source.name
    versions = registry.list_versions()
    if versions:
        return versions[0]["version"]
    t0 = time.perf_counter()
    # the fine world holds one month: no temporal cross-validation split
    splits = ("random", "spatial") if size == "fine" else training.TrainSettings.splits
    version = training.train(
        training.TrainSettings(
            sites_source="fluxnet_demo", targets="raw", n_folds=2, num_boost_round=100, splits=splits
        )
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


def peak_rss_mb(pid: int) -> float:
    """Peak resident set size (VmHWM) of a live process, MB (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM for process {pid}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time so far of a live process, its threads and its finished children (e.g.
    the compiler building the prediction kernel), s (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(v) for v in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def _loads(load: tuple[float, float, float]) -> str:
    return " ".join(f"{v:.2f}" for v in load)


def bench_submit_to_result(version: str, px: int, days: int, runs: int, env: dict, workdir: Path) -> None:
    from models.job_limits import JobLimits
    from models.jobs import JobService, JobStore

    store = JobStore(env["FLUXLENS_JOBS_DB"])
    service = JobService(store, JobLimits(max_pixel_days=10**12))
    workers = start_workers(1, env, workdir)
    try:
        time.sleep(8)  # let the worker import and start polling
        idle_rss = peak_rss_mb(workers[0].pid)
        for run in range(1, runs + 1):
            req = request_of(version, px, days)
            n_lat, n_lon, n_days = req["_pixels"]
            load = os.getloadavg()
            cpu0 = cpu_seconds(workers[0].pid)
            t0 = time.time()
            job = submit(service, req, "bench")
            timeline = []
            while (current := store.get(job.id)).is_active:
                if current.progress_total and (not timeline or timeline[-1][1] != current.progress_done):
                    timeline.append((time.time() - t0, current.progress_done, current.progress_total))
                time.sleep(0.05)
            t_end = time.time()
            cpu = cpu_seconds(workers[0].pid) - cpu0
            print(
                f"\nrun {run}: re-prediction {n_lat} × {n_lon} px × {n_days} days = "
                f"{n_lat * n_lon * n_days:,} pixel-days (load average at submit {_loads(load)}, "
                f"at result {_loads(os.getloadavg())})"
            )
            print(f"  status {current.status} -> {current.output or current.error}")
            print(f"  queue wait (submit -> claimed)   {current.started_at - current.created_at:7.2f} s")
            print(f"  run (claimed -> registered)      {current.finished_at - current.started_at:7.2f} s")
            print(f"  submit -> result seen by client  {t_end - t0:7.2f} s")
            print(f"  worker CPU time (user + system)  {cpu:7.2f} s")
            marks = timeline[:: max(1, len(timeline) // 8)] + timeline[-1:]
            print("  progress: " + ", ".join(f"{t:.1f}s {d}/{n}" for t, d, n in marks))
        print(f"\nworker peak RSS {peak_rss_mb(workers[0].pid):.0f} MB (after start-up {idle_rss:.0f} MB)")
    finally:
        stop(workers)


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
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--small-demo", action="store_true")
    size.add_argument("--fine-demo", action="store_true", help="regional 0.1° cubes, 500 × 500 px × 31 days")
    parser.add_argument("--px", type=int, default=500)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument(
        "--model-from",
        type=Path,
        help="data directory whose newest model version is used (the full demo emulator on the fine cubes)",
    )
    parser.add_argument("--runs", type=int, default=1, help="re-predictions one after the other")
    parser.add_argument("--latency", action="store_true")
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()

    sys.path.insert(0, str(REPO))
    size = "small" if args.small_demo else "fine" if args.fine_demo else "full"
    version = ensure_world(args.data_dir, size, args.model_from)
    workdir = Path(tempfile.mkdtemp(prefix="bench-jobs-"))
    env = dict(
        os.environ, FLUXLENS_DATA_DIR=str(args.data_dir), FLUXLENS_JOBS_DB=str(workdir / "jobs.sqlite")
    )
    os.environ.update(FLUXLENS_JOBS_DB=env["FLUXLENS_JOBS_DB"])
    bench_submit_to_result(version, args.px, args.days, args.runs, env, workdir)
    if args.latency:
        bench_latency(version, args.repeats, env, workdir)
    print(f"\nlogs in {workdir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
