"""Cube ingest benchmark: an ERA5-like hourly netCDF set (CDS layout) of ``--size-gb`` to daily cubes.

    .venv/bin/python bench/bench_cube_ingest.py --size-gb 2 --workdir /tmp/bench-cube

Writes one netCDF file per variable and month in the Climate Data Store's layout (``valid_time``,
``latitude``, ``longitude``, float32, zlib level 1, ``GRIB_stepType``): ``t2m``, ``d2m`` (K,
instant), ``ssrd`` (J m-2, accum), ``tp`` (m, accum) on a 0.25° grid, hourly, sized so the
uncompressed float32 fields add up to ``--size-gb``. Then runs ``fluxlens ingest cube … --recipe
era5`` in a child process (which converts, derives VPD, aggregates to daily means and writes the
pyramid and series copy) while sampling the RSS of that process tree, and prints the time, the
throughput in MB/s of uncompressed input and the peak RSS. Generated files are removed at the end
unless ``--keep``.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
import xarray as xr

REPO = Path(__file__).resolve().parents[1]
VARIABLES = {
    "t2m": ("K", "instant"),
    "d2m": ("K", "instant"),
    "ssrd": ("J m**-2", "accum"),
    "tp": ("m", "accum"),
}


class PeakRSS:
    """Samples the RSS of a process and its children every 0.2 s."""

    def __init__(self, pid: int):
        self.proc, self.peak, self._stop = psutil.Process(pid), 0, threading.Event()

    def _run(self):
        while not self._stop.is_set():
            try:
                procs = [self.proc, *self.proc.children(recursive=True)]
                self.peak = max(self.peak, sum(p.memory_info().rss for p in procs))
            except psutil.Error:
                pass
            time.sleep(0.2)

    def __enter__(self):
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()


def fields(name: str, times: pd.DatetimeIndex, lat: np.ndarray, lon: np.ndarray, rng) -> np.ndarray:
    hours = times.hour.values[:, None, None]
    base = np.cos(np.deg2rad(lat))[None, :, None] * np.ones((1, 1, lon.size))
    if name == "t2m":
        return (270 + 25 * base + 5 * np.sin(2 * np.pi * hours / 24)).astype("float32")
    if name == "d2m":
        return (265 + 22 * base + rng.normal(0, 1, (len(times), lat.size, lon.size))).astype("float32")
    if name == "ssrd":
        return (np.clip(np.sin(np.pi * (hours - 6) / 12), 0, None) * 3.0e6 * base).astype("float32")
    return (np.clip(rng.normal(0, 1e-4, (len(times), lat.size, lon.size)), 0, None)).astype("float32")


def write_set(folder: Path, size_gb: float, n_lat: int, n_lon: int) -> tuple[list[Path], int]:
    folder.mkdir(parents=True, exist_ok=True)
    lat = 70 - (np.arange(n_lat) + 0.5) * 0.25
    lon = -20 + (np.arange(n_lon) + 0.5) * 0.25
    hours = int(size_gb * 1e9 / (4 * n_lat * n_lon * len(VARIABLES)))
    times_all = pd.date_range("2019-01-01", periods=hours, freq="h")
    rng = np.random.default_rng(0)
    files, raw = [], 0
    for month, times in times_all.to_series().groupby(times_all.to_period("M")):
        times = pd.DatetimeIndex(times.values)
        for name, (units, step) in VARIABLES.items():
            values = fields(name, times, lat, lon, rng)
            raw += values.nbytes
            ds = xr.Dataset(
                {
                    name: (
                        ("valid_time", "latitude", "longitude"),
                        values,
                        {"units": units, "GRIB_stepType": step},
                    )
                },
                coords={"valid_time": times, "latitude": lat, "longitude": lon},
            )
            path = folder / f"era5_{name}_{month}.nc"
            ds.to_netcdf(
                path, encoding={name: {"zlib": True, "complevel": 1, "chunksizes": (24, n_lat, n_lon)}}
            )
            files.append(path)
    return files, raw


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size-gb", type=float, default=2.0)
    ap.add_argument("--lat", type=int, default=240, help="rows of the 0.25 deg grid")
    ap.add_argument("--lon", type=int, default=400, help="columns of the 0.25 deg grid")
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/bench-cube"))
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    shutil.rmtree(args.workdir, ignore_errors=True)
    t0 = time.perf_counter()
    files, raw = write_set(args.workdir / "in", args.size_gb, args.lat, args.lon)
    disk = sum(f.stat().st_size for f in files)
    print(f"wrote {len(files)} files: {raw / 1e9:.2f} GB as float32, {disk / 1e9:.2f} GB on disk "
          f"in {time.perf_counter() - t0:.0f} s")  # fmt: skip
    data_dir = args.workdir / "data"
    cmd = [str(REPO / ".venv" / "bin" / "fluxlens"), "--data-dir", str(data_dir), "ingest", "cube",
           str(args.workdir / "in"), "--recipe", "era5", "--name", "bench_era5"]  # fmt: skip
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd)
    with PeakRSS(proc.pid) as mon:
        rc = proc.wait()
    took = time.perf_counter() - t0
    if rc != 0:
        print(f"ingest failed with exit code {rc}")
        return 1
    print(
        f"ingest cube: {took:.1f} s, {raw / 1e6 / took:.1f} MB/s of float32 input "
        f"({disk / 1e6 / took:.1f} MB/s of netCDF on disk), peak RSS {mon.peak / 2**20:.0f} MiB"
    )
    if not args.keep:
        shutil.rmtree(args.workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
