"""Data-layer benchmark: GSSM1km GeoTIFF ingest throughput and memory, then catalog read times.

    .venv/bin/python bench/bench_data_layer.py --size-gb 5 --workdir /tmp/bench-data
    .venv/bin/python bench/bench_data_layer.py --chunk-study --workdir /tmp/bench-chunks

Ingest mode: writes a synthetic GSSM1km GeoTIFF set (UInt16, 0.01°, ``--size-gb`` of uncompressed
band data, one file per ``--days-per-file`` days) with ``data_prep.gssm.write_gssm_geotiff``, runs
``fluxlens ingest gssm`` in a child process while sampling the RSS of that process tree with psutil,
and prints throughput (MB/s of uncompressed input) and peak memory; then, through ``catalog.api``,
the read time (median of repeats) of one full-resolution day, one 1600 × 800 px window of a pyramid
level and one pixel's whole record. Chunk-study mode: writes a float32 cube (default
365 × 2000 × 2000) with several chunk shapes and prints write time, size, one-day map read and
one-pixel whole-record read for each. Generated files are deleted at the end unless ``--keep``.

Last full run (--size-gb 5, 2 cores shared with other work, load average about 10): 313 days of
2000 x 4000 px (5.01 GB UInt16, 10.02 GB as float32, 2.79 GB of GeoTIFF); ingest 504 s = 9.9 MB/s of
UInt16 input (19.9 MB/s as float32), of which level 0 263 s, levels 1-2 99 s, series copy 134 s;
peak RSS 936 MiB; store 7.48 GB. Reads (median of 7): one full-resolution day 0.63 s, a 1600 x 800
window of level 1 0.069 s, one pixel's 313-day record 0.020 s. (That run opened levels with the
stored (1, 256, 256) dask chunks; the catalog now opens them with 1024 x 1024 chunks, which read a
2000 x 4000 day in 0.11 s instead of 0.19 s on a quieter machine.)

CF packing and block writes (--size-gb 1, 63 days of 2000 x 4000 px, quiet machine, one run each an
hour apart): float32 store with one write task per (1, 256, 256) chunk: ingest 146.8 s = 6.9 MB/s
(level 0 88.6 s, levels 1-2 25.3 s, series copy 26.4 s), store 2.04 GB = 2.02x the UInt16 input,
peak RSS 663 MiB; uint16 x 0.001 store written in 1024 x 1024 px blocks: 95.2 s = 10.6 MB/s (1.54x;
level 0 44.5 s, levels 1-2 22.3 s, series 21.7 s), store 1.29 GB = 1.28x, peak RSS 474 MiB. Reads:
a full day 0.160 -> 0.198 s, a level-1 window 0.039 -> 0.048 s, a 63-day pixel record 0.012 ->
0.015 s (medians of 3; the packed values are decoded through float64).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import dask
import dask.array as da
import numpy as np
import pandas as pd
import psutil
import xarray as xr

RES = 0.01
WEST, NORTH = -105.0, 50.0
STUDY_SHAPES = [
    (1, 256, 256),
    (1, 1000, 1000),
    (1, 2000, 2000),
    (8, 500, 500),
    (32, 256, 256),
    (73, 250, 250),
    (365, 64, 64),
]


def synthetic_ssm(
    n_time: int, n_lat: int, n_lon: int, start="2018-01-01", chunks=(8, 500, 500)
) -> xr.DataArray:
    """Soil-moisture-like cube (m3 m-3, 0.001 steps, ~7 % missing), lazy, deterministic per block."""

    def block(block_info=None):
        info = block_info[None]
        (t0, t1), (i0, i1), (j0, j1) = info["array-location"]
        rng = np.random.default_rng(hash((t0, i0, j0)) % 2**32)
        t = np.arange(t0, t1)[:, None, None]
        i = np.arange(i0, i1)[None, :, None]
        j = np.arange(j0, j1)[None, None, :]
        base = 0.22 + 0.1 * np.sin(j / 400.0) * np.cos(i / 300.0) + 0.06 * np.sin(2 * np.pi * t / 365.0)
        v = base + rng.normal(0, 0.02, (t1 - t0, i1 - i0, j1 - j0))
        v = np.round(np.clip(v, 0.01, 0.6), 3).astype(np.float32)
        v[:, (np.sin(i * 0.05) * np.cos(j * 0.07) > 0.93)[0]] = np.nan  # "water bodies"
        return v

    data = da.map_blocks(
        block, chunks=da.core.normalize_chunks(chunks, (n_time, n_lat, n_lon)), dtype=np.float32
    )
    return xr.DataArray(
        data,
        dims=("time", "lat", "lon"),
        coords={
            "time": pd.date_range(start, periods=n_time, freq="D"),
            "lat": NORTH - (np.arange(n_lat) + 0.5) * RES,
            "lon": WEST + (np.arange(n_lon) + 0.5) * RES,
        },
        name="ssm",
        attrs={"units": "m3 m-3"},
    )


def median_time(fn, args_list) -> float:
    times = []
    for a in args_list:
        t0 = time.perf_counter()
        fn(*a)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def dir_size(path: Path) -> int:
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())


class PeakRSS:
    """Samples the RSS of a process and its children every ``interval`` seconds."""

    def __init__(self, pid: int, interval: float = 0.1):
        self.proc = psutil.Process(pid)
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            try:
                procs = [self.proc, *self.proc.children(recursive=True)]
                rss = sum(p.memory_info().rss for p in procs if p.is_running())
                self.peak = max(self.peak, rss)
            except psutil.Error:
                pass
            self._stop.wait(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def chunk_study(workdir: Path, shape: tuple[int, int, int], repeats: int) -> None:
    n_time, n_lat, n_lon = shape
    gb = n_time * n_lat * n_lon * 4 / 1e9
    print(
        f"chunk study: float32 cube {n_time} x {n_lat} x {n_lon} ({gb:.1f} GB uncompressed), "
        "zstd (zarr 3 default)"
    )
    print(
        f"{'chunk (t, lat, lon)':>22} {'write s':>8} {'size GB':>8} {'day map s':>10} {'pixel series s':>15}"
    )
    rng = np.random.default_rng(1)
    days = [(int(d),) for d in rng.integers(0, n_time, repeats)]
    pixels = [
        (int(i), int(j))
        for i, j in zip(rng.integers(0, n_lat, repeats), rng.integers(0, n_lon, repeats), strict=True)
    ]
    for chunks in STUDY_SHAPES:
        chunks = tuple(min(c, n) for c, n in zip(chunks, shape, strict=True))
        path = workdir / f"study_{'_'.join(map(str, chunks))}.zarr"
        shutil.rmtree(path, ignore_errors=True)
        src = synthetic_ssm(*shape, chunks=chunks).to_dataset()
        t0 = time.perf_counter()
        with dask.config.set(scheduler="threads"):
            src.to_zarr(path, zarr_format=3, consolidated=False, encoding={"ssm": {"chunks": chunks}})
        t_write = time.perf_counter() - t0
        ssm = xr.open_zarr(path, consolidated=False).ssm
        t_day = median_time(lambda d, a=ssm: a.isel(time=d).values, days)
        t_pix = median_time(lambda i, j, a=ssm: a.isel(lat=i, lon=j).values, pixels)
        print(
            f"{str(chunks):>22} {t_write:8.1f} {dir_size(path) / 1e9:8.2f} {t_day:10.3f} {t_pix:15.3f}",
            flush=True,
        )
        shutil.rmtree(path)


def make_geotiffs(workdir: Path, size_gb: float, n_lat: int, n_lon: int, days_per_file: int) -> list[Path]:
    from data_prep.gssm import write_gssm_geotiff

    n_days = max(2, int(np.ceil(size_gb * 1e9 / (n_lat * n_lon * 2))))
    cube = synthetic_ssm(n_days, n_lat, n_lon, chunks=(8, 512, n_lon))
    paths = []
    for k0 in range(0, n_days, days_per_file):
        part = cube.isel(time=slice(k0, k0 + days_per_file))
        p = workdir / f"GSSM1km_{pd.Timestamp(part.time.values[0]):%Y%m%d}.tif"
        with dask.config.set(scheduler="threads"):
            paths.append(Path(write_gssm_geotiff(p, part)))
    return paths


def ingest_bench(
    workdir: Path, size_gb: float, n_lat: int, n_lon: int, days_per_file: int, repeats: int
) -> None:
    tif_dir = workdir / "geotiff"
    data_dir = workdir / "fluxlens-data"
    shutil.rmtree(data_dir, ignore_errors=True)
    tif_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    paths = make_geotiffs(tif_dir, size_gb, n_lat, n_lon, days_per_file)
    import rasterio

    n_days = 0
    for p in paths:
        with rasterio.open(p) as src:
            n_days += src.count
    raw_bytes = n_days * n_lat * n_lon * 2
    print(
        f"input: {len(paths)} GeoTIFFs, {n_days} days x {n_lat} x {n_lon} px, "
        f"{raw_bytes / 1e9:.2f} GB uncompressed UInt16 ({raw_bytes * 2 / 1e9:.2f} GB as float32), "
        f"{dir_size(tif_dir) / 1e9:.2f} GB on disk; generated in {time.perf_counter() - t0:.0f} s"
    )

    exe = Path(sys.executable).with_name("fluxlens")
    cmd = [str(exe), "-v", "--data-dir", str(data_dir), "ingest", "gssm", *map(str, paths)]
    cmd += ["--name", "bench_gssm"]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd)
    with PeakRSS(proc.pid) as mon:
        rc = proc.wait()
    t_ingest = time.perf_counter() - t0
    if rc != 0:
        raise SystemExit(f"ingest failed with exit code {rc}")
    store = data_dir / "products" / "bench_gssm"
    print(
        f"ingest: {t_ingest:.1f} s, {raw_bytes / 1e6 / t_ingest:.1f} MB/s of UInt16 input "
        f"({raw_bytes * 2 / 1e6 / t_ingest:.1f} MB/s as float32), peak RSS {mon.peak / 2**20:.0f} MiB "
        f"(process tree), store {dir_size(store) / 1e9:.2f} GB"
    )

    os.environ["FLUXLENS_DATA_DIR"] = str(data_dir)
    from catalog import api

    info = api.product_info("bench_gssm")
    print(
        "levels:",
        [(lev["level"], lev["n_lat"], lev["n_lon"]) for lev in info.levels],
        "chunking:",
        info.chunking,
    )
    rng = np.random.default_rng(2)
    ds0 = api.open_product("bench_gssm", 0)
    days = [(int(d),) for d in rng.integers(0, info.n_time, repeats)]
    t_day = median_time(lambda d: ds0.ssm.isel(time=d).values, days)
    w, s, e, n = info.bbox
    level = api.choose_level("bench_gssm", (w, e), (s, n), 1600)
    lev = info.levels[level]
    dsk = api.open_product("bench_gssm", level)
    win_w, win_h = min(1600, lev["n_lon"]), min(800, lev["n_lat"])
    t_view = median_time(
        lambda d: dsk.ssm.isel(time=d, lat=slice(0, win_h), lon=slice(0, win_w)).values, days
    )
    points = [
        (float(lon), float(lat))
        for lon, lat in zip(
            rng.uniform(w + 0.1, e - 0.1, repeats), rng.uniform(s + 0.1, n - 0.1, repeats), strict=True
        )
    ]
    t_pix = median_time(lambda lon, lat: api.point_series("bench_gssm", lon, lat), points)
    print(
        f"read one full-resolution day ({info.levels[0]['n_lat']} x {info.levels[0]['n_lon']} px): "
        f"{t_day:.3f} s"
    )
    print(
        f"read a {win_w} x {win_h} px window of level {level} (chosen for a 1600 px wide full view): "
        f"{t_view:.3f} s"
    )
    print(f"read one pixel's whole record ({info.n_time} days, point_series): {t_pix:.3f} s")
    print(f"(medians of {repeats} repeats)")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--workdir", required=True, type=Path, help="scratch directory (created, emptied at the end)"
    )
    p.add_argument("--size-gb", type=float, default=5.0, help="uncompressed UInt16 input size (default 5)")
    p.add_argument("--width", type=int, default=4000, help="GeoTIFF width in px (0.01°)")
    p.add_argument("--height", type=int, default=2000, help="GeoTIFF height in px")
    p.add_argument("--days-per-file", type=int, default=64)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--chunk-study", action="store_true", help="compare chunk shapes instead")
    p.add_argument("--study-shape", type=int, nargs=3, default=(365, 2000, 2000), metavar=("T", "LAT", "LON"))
    p.add_argument("--keep", action="store_true", help="keep generated files")
    args = p.parse_args(argv)
    args.workdir.mkdir(parents=True, exist_ok=True)
    try:
        if args.chunk_study:
            chunk_study(args.workdir, tuple(args.study_shape), args.repeats)
        else:
            ingest_bench(
                args.workdir, args.size_gb, args.height, args.width, args.days_per_file, args.repeats
            )
    finally:
        if not args.keep:
            shutil.rmtree(args.workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
