"""Real ``kill -9`` during ``fluxlens ingest gssm --replace``, at random times, with the crash checks.

    .venv/bin/python bench/kill_ingest.py --kills 20 --workdir /tmp/kill-ingest

Writes two GSSM1km-style GeoTIFFs (A and B, same grid, different values) and an unrelated product,
ingests A, then ``--kills`` times starts ``fluxlens ingest gssm <A or B> --replace`` in a child
process and sends it SIGKILL after a random delay drawn uniformly from 0 to 1.1 × the measured
duration of an unkilled replace (so some kills land in the commit window and a few after the end).
After each kill it checks, reading the files directly:

* the catalog opens and lists both products (none missing);
* the store the catalog names exists, its ``product.json`` has the catalog's ``store_id`` and its
  values equal those of A or B at every pixel of the first and last day (old or new, never a mix);
* the next write (ingesting the other input) succeeds and leaves nothing in ``products/`` but one
  named version per product.

Prints one line per kill (delay, which product survived) and a summary; exits 1 if any check failed.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from catalog import commit, intake_catalog  # noqa: E402
from data_prep.gssm import write_gssm_geotiff  # noqa: E402


def make_input(path: Path, seed: int, n_time: int, n: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    values = np.round(rng.uniform(0.05, 0.5, (n_time, n, n)), 3).astype("float32")
    lat = 40 - (np.arange(n) + 0.5) * 0.01
    lon = -100 + (np.arange(n) + 0.5) * 0.01
    da = xr.DataArray(
        values,
        dims=("time", "lat", "lon"),
        coords={"time": pd.date_range("2018-07-01", periods=n_time), "lat": lat, "lon": lon},
    )
    write_gssm_geotiff(path, da)
    return values


def fluxlens(data_dir: Path, *args: str) -> subprocess.Popen:
    env = {**os.environ, "FLUXLENS_DATA_DIR": str(data_dir)}
    return subprocess.Popen(
        [str(REPO / ".venv" / "bin" / "fluxlens"), *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def run(data_dir: Path, *args: str) -> None:
    proc = fluxlens(data_dir, *args)
    _, err = proc.communicate()
    if proc.returncode != 0:
        raise SystemExit(f"fluxlens {' '.join(args)} failed ({proc.returncode}): {err}")


def survivor(data_dir: Path, inputs: dict[str, np.ndarray]) -> str:
    """Which input the catalog's product 'k' holds ('A' or 'B'); raises AssertionError otherwise."""
    cat = intake_catalog.load(data_dir)
    named = commit.named_store_dirs(data_dir, "products")
    assert set(named) == {"k", "keep"}, f"products listed: {sorted(named)}"
    meta = json.loads((named["k"] / "product.json").read_text())
    assert meta["info"]["store_id"] == cat["k"].metadata["store_id"], "product.json disagrees with catalog"
    level0 = xr.open_zarr(named["k"] / "levels" / "0.zarr", consolidated=False)
    first, last = level0.ssm[0].values, level0.ssm[-1].values
    for label, values in inputs.items():
        if np.allclose(first, values[0], atol=6e-4) and np.allclose(last, values[-1], atol=6e-4):
            return label
    raise AssertionError("product 'k' holds neither input")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kills", type=int, default=20)
    ap.add_argument("--pixels", type=int, default=1200, help="grid is PIXELS x PIXELS at 0.01 deg")
    ap.add_argument("--days", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/kill-ingest"))
    args = ap.parse_args()
    shutil.rmtree(args.workdir, ignore_errors=True)
    args.workdir.mkdir(parents=True)
    data_dir = args.workdir / "data"
    files = {label: args.workdir / f"{label}.tif" for label in ("A", "B")}
    inputs = {label: make_input(p, i, args.days, args.pixels) for i, (label, p) in enumerate(files.items())}
    make_input(args.workdir / "keep.tif", 7, 2, 64)
    run(data_dir, "ingest", "gssm", str(args.workdir / "keep.tif"), "--name", "keep")
    run(data_dir, "ingest", "gssm", str(files["A"]), "--name", "k")
    t0 = time.perf_counter()
    run(data_dir, "ingest", "gssm", str(files["B"]), "--name", "k", "--replace")
    full = time.perf_counter() - t0
    print(f"grid {args.pixels} x {args.pixels} px x {args.days} days; unkilled replace {full:.2f} s")

    rng = random.Random(args.seed)
    current, failures, outcomes = "B", 0, {"old": 0, "new": 0, "finished": 0}
    for k in range(args.kills):
        target = "A" if current == "B" else "B"
        delay = rng.uniform(0, 1.1 * full)
        proc = fluxlens(data_dir, "ingest", "gssm", str(files[target]), "--name", "k", "--replace")
        time.sleep(delay)
        finished = proc.poll() is not None
        if not finished:
            proc.send_signal(signal.SIGKILL)
        proc.wait()
        try:
            got = survivor(data_dir, inputs)
            outcome = "finished" if finished else ("new" if got == target else "old")
            assert not finished or got == target, "a finished replace left the old product"
            outcomes[outcome] += 1
            current = got
            # the next write: ingest the other input; then nothing stray may remain
            other = "A" if current == "B" else "B"
            run(data_dir, "ingest", "gssm", str(files[other]), "--name", "k", "--replace")
            assert survivor(data_dir, inputs) == other
            current = other
            strays = [
                f"{o.name}/{p.name}"
                for o in (data_dir / "products").iterdir()
                for p in (o.iterdir() if o.is_dir() else [o])
                if o.name.startswith(".") or p != commit.current_store_dir(data_dir, "products", o.name)
            ]
            assert not strays, f"stray folders after the next write: {strays}"
            print(f"kill {k + 1:2d}: after {delay:5.2f} s -> {outcome:8s} (holds {got}); next write clean")
        except AssertionError as exc:
            failures += 1
            print(f"kill {k + 1:2d}: after {delay:5.2f} s -> CHECK FAILED: {exc}")
    print(
        f"{args.kills} kills: {outcomes['old']} left the old product, {outcomes['new']} the new one, "
        f"{outcomes['finished']} finished before the kill; {failures} check(s) failed"
    )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
