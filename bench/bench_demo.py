"""Demo-world build benchmark: wall-clock and CPU seconds per step, and size on disk.

    .venv/bin/python bench/bench_demo.py                      # small world, median of 3 builds
    .venv/bin/python bench/bench_demo.py --full --repeats 1   # the full world once

Targets: small ≤ 20 s, full ≤ 2 min on 2 cores and ≤ 2 GB on disk. Each build goes to a fresh
directory under ``--workdir`` (deleted at the end unless ``--keep``). CPU seconds count every thread
of the process, so CPU > wall means the build used both cores; on a loaded machine wall-clock time
grows while CPU time stays put, so both are printed. The writing steps run on two threads (see
``data_prep.demo.build_demo``), so their wall times overlap; ``writes`` is the whole writing phase.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from data_prep import demo


def _size_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="the full-size world (default: small)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench-demo-"))
    workdir.mkdir(parents=True, exist_ok=True)
    runs = []
    try:
        for i in range(args.repeats):
            target = workdir / f"build{i}"
            shutil.rmtree(target, ignore_errors=True)
            wall, cpu = time.perf_counter(), time.process_time()
            steps = demo.build_demo(target, small=not args.full)
            steps["total"] = time.perf_counter() - wall
            steps["total_cpu"] = time.process_time() - cpu
            steps["disk_mb"] = _size_mb(target)
            steps["raw_mb"] = _size_mb(target / demo.RAW_DIR)
            runs.append(steps)
            print(f"build {i}: " + ", ".join(f"{k} {v:.1f}" for k, v in steps.items()), flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    size = "full" if args.full else "small"
    print(f"\n{size} demo world, median of {len(runs)} build(s):")
    for key in runs[0]:
        unit = "MB" if key.endswith("_mb") else "s"
        print(f"  {key:<14} {statistics.median(r[key] for r in runs):8.1f} {unit}")


if __name__ == "__main__":
    main()
