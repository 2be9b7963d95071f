"""Explanation map and what-if re-prediction vs a plain re-prediction of the same box: wall time and
peak memory.

    .venv/bin/python bench/bench_explain.py --data-dir /tmp/bench-explain/fine [--px 500] [--days 30] \
        [--repeats 3] [--scenario "ta+2K"]

The data directory gets the fine demo world (regional 0.1° cubes, 500 × 500 px × 31 days) and a
quick model version if it has none (``bench/bench_jobs.py``'s ``ensure_world``; not timed). Then,
``--repeats`` times in turn, three runs over the same ``--px`` × ``--px`` px × ``--days`` days box,
each in a fresh child process (its peak RSS is the run's memory and its CPU seconds the work,
model loading and packing included): a plain :func:`models.predict.predict_region`, the same with
``--scenario``, and :func:`models.explain_map.explain_region`. Each prints the call's wall time
(blocks and the catalog write: pyramid, series copy, registration), the time when the last block
was done, pixel-days and blocks. Medians per kind at the end, with the load average: on a shared
machine wall time grows with the load while the CPU seconds stay about the same. The products are
removed after each run.

Measured on 2 shared cores (fine demo, 500 × 500 px × 30 days = 7.5 M pixel-days, 100-tree demo model,
scenario ``ta+2K``): plain 17.5 s (median of 3, 19 CPU-s, peak RSS 1.7 GB, load 1.4–2.3), scenario
35.2 s (median of 3, 35 CPU-s, 2.1 GB; the baseline features and A model are computed a second time
for the range flags), explanation map 1112 s (one run, 2007 CPU-s, 0.8 GB, load ≈ 2; 43 variables).
A 100 × 100 px × 30 days explanation took 189 s (median of 3 at load 6–9).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
KINDS = ("plain", "scenario", "explain")


def _cpu_s() -> float:
    """CPU seconds of this process, every thread (user + system)."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def child(data_dir: Path, kind: str, request: dict, scenario: str) -> None:
    os.environ["FLUXLENS_DATA_DIR"] = str(data_dir)
    from models import explain_map, predict

    marks: list[tuple[float, int, int]] = []
    t0, cpu0 = time.perf_counter(), _cpu_s()
    args = (request["version"], tuple(request["bbox"]), request["start"], request["end"])
    common = dict(
        product_name=f"bench-{kind}-{os.getpid()}",
        progress=lambda d, n: marks.append((time.perf_counter() - t0, d, n)),
    )
    if kind == "explain":
        name = explain_map.explain_region(*args, **common)
    else:
        name = predict.predict_region(*args, scenario=scenario if kind == "scenario" else None, **common)
    seconds = time.perf_counter() - t0
    from catalog import api

    info = api.product_info(name)
    out = {
        "kind": kind,
        "seconds": seconds,
        "blocks_seconds": marks[-1][0],
        "n_blocks": marks[-1][2],
        "pixel_days": int(info.levels[0]["n_lat"] * info.levels[0]["n_lon"] * info.n_time),
        "variables": len(info.variables),
        "cpu_seconds": _cpu_s() - cpu0,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "load_1min": os.getloadavg()[0],
    }
    if kind == "scenario":
        out["scenario_counts"] = info.provenance["scenario_counts"]
    from catalog.products import delete_product

    delete_product(name)
    print(json.dumps(out))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", type=Path, required=True)
    ap.add_argument("--px", type=int, default=500)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--scenario", default="ta+2K")
    ap.add_argument("--kinds", default=",".join(KINDS), help="comma-separated subset of " + ",".join(KINDS))
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--request", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.data_dir, args.child, json.loads(args.request), args.scenario)
        return
    sys.path.insert(0, str(REPO / "bench"))
    sys.path.insert(0, str(REPO))
    import bench_jobs

    version = bench_jobs.ensure_world(args.data_dir, "fine")
    request = bench_jobs.request_of(version, args.px, args.days)
    pixels = request.pop("_pixels")
    box = f"box {request['bbox']} {request['start']}..{request['end']}"
    print(f"model {version}; {box}: {pixels} (lat, lon, days)")
    print(f"{os.cpu_count()} cores, load average {os.getloadavg()} before the runs")
    runs: dict[str, list[dict]] = {k: [] for k in args.kinds.split(",")}
    for i in range(args.repeats):
        for kind in runs:
            done = subprocess.run(
                [sys.executable, __file__, "--data-dir", str(args.data_dir), "--child", kind,
                 "--request", json.dumps(request), "--scenario", args.scenario],
                capture_output=True, text=True, check=False,
            )  # fmt: skip
            if done.returncode:
                sys.exit(f"{kind} run failed:\n{done.stderr[-3000:]}")
            result = json.loads(done.stdout.strip().splitlines()[-1])
            runs[kind].append(result)
            print(f"run {i + 1} {json.dumps(result)}", flush=True)
    print("medians:")
    for kind, results in runs.items():
        keys = ("seconds", "blocks_seconds", "cpu_seconds", "peak_rss_mb")
        med = {k: statistics.median(r[k] for r in results) for k in keys}
        loads = ", ".join(f"{r['load_1min']:.1f}" for r in results)
        r0 = results[0]
        print(
            f"  {kind:<9} {r0['pixel_days']:,} pixel-days, {r0['n_blocks']} blocks, "
            f"{r0['variables']} variables: "
            f"{med['seconds']:.1f} s (blocks done at {med['blocks_seconds']:.1f} s, "
            f"{med['cpu_seconds']:.1f} CPU-s), "
            f"{r0['pixel_days'] / med['seconds']:,.0f} pixel-days/s, peak RSS {med['peak_rss_mb']:,.0f} MB; "
            f"load {loads}"
        )


if __name__ == "__main__":
    main()
