"""Prediction speed of the LE/H emulator: the packed forest (``models.forest``) vs ``Booster.predict``.

1. Throughput (pixel-days/s, 2 threads) of the EF model — one prediction per pixel-day when A comes
   from a radiation product — and of EF + A model (A predicted too), for the fast path and
   ``Booster.predict`` in the same run, medians of repeats, and their ratio. The model has 400 trees
   (31 leaves) trained on the FLUXNET2015 monthly set when ``--fluxnet`` is given, else on a
   synthetic table. Two input sets: "random" = bootstrap rows of the training table with noise, in
   random order; "cube" = rows in the order a regional prediction builds them (time × lat × lon) from
   the smooth synthetic cubes of part 2 (neighbouring rows alike, as in real fields).
2. End to end: :func:`models.predict.predict_region` over a ``--size`` × ``--size`` pixel ×
   ``--days``-day region (default 1000 × 1000 × 365) of generated feature cubes (written once
   through ``catalog.store``), in a child process whose peak RSS is reported.

Usage: ``python bench/bench_predict.py --data-dir /tmp/bench-predict [--fluxnet DIR] [--size 1000]
[--days 365] [--repeats 3] [--skip-region]``.
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

import numpy as np


def _timed(fn, repeats: int) -> tuple[float, float]:
    """Median wall time and median CPU time (all threads of the process) of ``fn()``."""
    wall, cpu = [], []
    for _ in range(repeats):
        c0, t0 = time.process_time(), time.perf_counter()
        fn()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return statistics.median(wall), statistics.median(cpu)


def train_model(data_dir: Path, fluxnet: str | None, trees: int) -> tuple[str, object]:
    os.environ["FLUXLENS_DATA_DIR"] = str(data_dir)
    from models import emulator as E
    from models import features as F
    from models import registry
    from models import training_table as T

    if fluxnet:
        from fluxlens.train_sources import network_of

        table = T.build(network_of(fluxnet, name="bench_towers"))
    else:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
        from tests.models.emulator_tables import synthetic_table

        table = synthetic_table(n_sites=60)
    feats = list(F.FLUXNET_FEATURES)
    t0 = time.perf_counter()
    emu = E.fit_emulator(table, feats, num_boost_round=trees)
    print(f"trained 4 boosters x {trees} trees on {len(table)} rows in {time.perf_counter() - t0:.1f} s")
    meta = {
        "features": [F.spec(f).to_dict() for f in feats],
        "a_features": F.available_energy_features(feats),
        "constrained": True,
        "a_min": emu.a_min,
        "targets": {"set": "corrected"},
        "training_data": {
            "fingerprint_sha256": T.fingerprint(table),
            "synthetic": not fluxnet,
            "source": table.attrs.get("source"),
        },
    }
    version = registry.new_version(T.fingerprint(table))
    registry.save(emu, meta, {}, version=version)
    return version, table


def cube_rows(feature_lists: list[list[str]], n_rows: int) -> list[np.ndarray]:
    """``n_rows`` rows in predict_region's order from the synthetic cubes of part 2, one matrix per
    list of features."""
    from models import features as F
    from models import predict

    size = 1000
    days = max(1, n_rows // size**2)
    forcing, static, radiation = _cube(size, days)
    block = {v: forcing[v].values for v in forcing.data_vars}
    block.update({v: static[v].values for v in static.data_vars})
    block["a"] = (radiation["rn"] - radiation["g"]).values
    means = {v: forcing[v].values.mean(axis=0) for v in forcing.data_vars}
    for c, v in F.CLIMATOLOGY.items():  # record means: here the mean over these days
        block[c] = means[v]
    block["dryness"] = F.dryness(means["sw_in"], means["precip"])
    lats = forcing.lat.values.astype(float)
    return [
        predict._block_matrix(block, features, forcing.time.values, lats, "day")[:n_rows]
        for features in feature_lists
    ]


def throughput(version: str, table, repeats: int, n_fast: int, n_slow: int) -> None:
    from models import compiled, registry
    from models import features as F

    emu = registry.load(version)
    for m in ("ef", "a"):
        t0 = time.perf_counter()
        compiled.compiled_model(version, m)
        print(f"pack {m} (and build the kernel on first use): {time.perf_counter() - t0:.2f} s")
    print(f"trees per model: {emu.boosters['ef'].num_trees()} (EF), {emu.boosters['a'].num_trees()} (A)")
    rng = np.random.default_rng(0)
    rows = table.iloc[rng.integers(0, len(table), n_fast)]
    x = F.feature_matrix(rows, emu.features)
    xa = F.feature_matrix(rows, emu.a_features)
    x += rng.normal(0, 0.01, x.shape) * np.isfinite(x)
    measure(version, emu, "random", x, xa, repeats, n_slow)
    x, xa = cube_rows([emu.features, emu.a_features], n_fast)
    measure(version, emu, "cube", x, xa, repeats, n_slow)


def measure(version, emu, label: str, x, xa, repeats: int, n_slow: int) -> None:
    from models import compiled

    n_fast = len(x)
    xs, xas = x[:n_slow], xa[:n_slow]
    runs = {
        "fast EF": (n_fast, lambda: compiled.predict(version, "ef", x, n_jobs=2)),
        "Booster EF": (n_slow, lambda: emu.boosters["ef"].predict(xs, num_threads=2)),
        "fast EF+A": (
            n_fast,
            lambda: (
                compiled.predict(version, "ef", x, n_jobs=2),
                compiled.predict(version, "a", xa, n_jobs=2),
            ),
        ),
        "Booster EF+A": (
            n_slow,
            lambda: (
                emu.boosters["ef"].predict(xs, num_threads=2),
                emu.boosters["a"].predict(xas, num_threads=2),
            ),
        ),
    }
    wall, cpu = {}, {}
    for key, (n, fn) in runs.items():
        w, c = _timed(fn, repeats)
        wall[key], cpu[key] = n / w, 2 * n / c
    ref = emu.boosters["ef"].predict(xs)
    same = np.max(np.abs(compiled.predict(version, "ef", xs) - ref) / np.abs(ref))
    print(
        f"{label} rows: pixel-days/s, 2 threads, median of {repeats} "
        f"(fast path on {n_fast:,} rows, Booster on {n_slow:,}); "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    )
    print("  wall clock:          " + "  ".join(f"{k} {v:,.0f}" for k, v in wall.items()))
    print(
        "  2 x rows / CPU-second (two dedicated cores): " + "  ".join(f"{k} {v:,.0f}" for k, v in cpu.items())
    )
    for clock, src in (("wall", wall), ("CPU", cpu)):
        print(
            f"  fast / Booster ({clock}): EF {src['fast EF'] / src['Booster EF']:.1f}x, "
            f"EF+A {src['fast EF+A'] / src['Booster EF+A']:.1f}x"
        )
    print(f"  max relative difference fast vs Booster (EF): {same:.1e}")


def _cube(size: int, days: int):
    """Lazy synthetic forcing/static/radiation cubes on a size × size 0.01° grid from 2018-01-01."""
    import dask.array as da
    import pandas as pd
    import xarray as xr

    from models import features as F

    time_ = pd.date_range("2018-01-01", periods=days, freq="D")
    lat = 45.0 - 0.01 * (np.arange(size) + 0.5)
    lon = -105.0 + 0.01 * (np.arange(size) + 0.5)
    chunks = (1, size, size)
    doy = da.from_array(time_.day_of_year.to_numpy().astype(float), chunks=1)[:, None, None]
    la = da.from_array(lat, chunks=size)[None, :, None]
    lo = da.from_array(lon, chunks=size)[None, None, :]
    shape = (days, size, size)

    def q(x):  # quantise to 1/16 for compact, exact storage
        return (da.round(da.broadcast_to(x, shape, chunks=chunks) * 16) / 16).astype(np.float32)

    pot = da.map_blocks(lambda d, y: F.daily_sw_in_pot(y, d), doy, la, dtype=float)
    cloud = 0.5 + 0.3 * da.sin(doy / 7.0 + lo / 3.0) * da.cos(la / 2.0)
    sw = pot * (0.76 - 0.52 * cloud)
    season = -da.cos(2 * np.pi * (doy - 15) / 365.0)
    ta = 12 + 14 * season - 0.6 * (la - 40) + 3 * da.sin(doy / 5.0 + lo)
    forcing = xr.Dataset(
        {
            "sw_in": (("time", "lat", "lon"), q(sw)),
            "lw_in": (("time", "lat", "lon"), q(300 + 2.5 * ta + 40 * cloud)),
            "ta": (("time", "lat", "lon"), q(ta)),
            "vpd": (("time", "lat", "lon"), q(da.maximum(0.2, 6 + 0.6 * ta - 8 * cloud))),
            "precip": (
                ("time", "lat", "lon"),
                q(da.maximum(0.0, 6 * (cloud - 0.55)) * (1 + (lo + 105) / 10)),
            ),
            "ws": (("time", "lat", "lon"), q(3 + da.sin(doy / 3.0 + la))),
        },
        coords={"time": time_, "lat": lat, "lon": lon},
    )
    rn = 0.62 * sw - 28 + 0.3 * ta
    radiation = xr.Dataset(
        {"rn": (("time", "lat", "lon"), q(rn)), "g": (("time", "lat", "lon"), q(0.08 * rn))},
        coords={"time": time_, "lat": lat, "lon": lon},
    )
    codes = np.array([1.0, 4.0, 10.0, 12.0, 7.0])
    lon2, lat2 = np.meshgrid(lon, lat)
    igbp = codes[((lon2 + 105) * 2 + (lat2 - 35)).astype(int) % len(codes)]
    static = xr.Dataset(
        {
            "igbp": (("time", "lat", "lon"), igbp[None].astype(np.float32)),
            "elevation": (("time", "lat", "lon"), (1500 - 50 * (lon2 + 105))[None].astype(np.float32)),
        },
        coords={"time": time_[:1], "lat": lat, "lon": lon},
    )
    for ds, units in (
        (
            forcing,
            {
                "sw_in": "W m-2",
                "lw_in": "W m-2",
                "ta": "degC",
                "vpd": "hPa",
                "precip": "mm d-1",
                "ws": "m s-1",
            },
        ),
        (radiation, {"rn": "W m-2", "g": "W m-2"}),
        (static, {"igbp": "1", "elevation": "m"}),
    ):
        for v, u in units.items():
            ds[v].attrs.update(units=u, long_name=v)
    return forcing, static, radiation


def write_cubes(data_dir: Path, size: int, days: int) -> None:
    os.environ["FLUXLENS_DATA_DIR"] = str(data_dir)
    from catalog import api, store

    have = {p.name for p in api.list_products()} if (data_dir / "catalog.yaml").exists() else set()
    forcing, static, radiation = _cube(size, days)
    prov = {"generator": "bench/bench_predict.py", "size": size, "days": days}
    for name, ds in (("bench_forcing", forcing), ("bench_static", static), ("bench_radiation", radiation)):
        if (
            name in have
            and api.product_info(name).n_time == ds.sizes["time"]
            and api.product_info(name).levels[0]["n_lat"] == size
        ):
            continue
        t0 = time.perf_counter()
        store.write_product(ds, name, provenance=prov, synthetic=True, mode="replace")
        print(f"wrote {name} in {time.perf_counter() - t0:.0f} s")


def region_child(data_dir: Path, version: str, size: int, days: int, workers: int) -> None:
    """One end-to-end prediction, on the threaded scheduler (``workers`` 0) or on a LocalCluster of
    ``workers`` worker processes sharing the machine's cores."""
    import contextlib

    os.environ["FLUXLENS_DATA_DIR"] = str(data_dir)
    with contextlib.ExitStack() as stack:
        n_jobs = 2
        if workers:
            from distributed import LocalCluster

            from models.cluster import dask_scheduler

            threads = max(1, (os.cpu_count() or 2) // workers)
            cluster = stack.enter_context(
                LocalCluster(n_workers=workers, threads_per_worker=threads, dashboard_address=None)
            )
            stack.enter_context(dask_scheduler(cluster.scheduler_address))
            n_jobs = threads
        _region(version, size, days, n_jobs)


def _region(version: str, size: int, days: int, n_jobs: int) -> None:
    import pandas as pd

    from models import predict

    bbox = (-105.0, 45.0 - 0.01 * size, -105.0 + 0.01 * size, 45.0)
    end = (pd.Timestamp("2018-01-01") + pd.Timedelta(days=days - 1)).date()
    t0 = time.perf_counter()
    blocks = []
    name = predict.predict_region(
        version,
        bbox,
        "2018-01-01",
        str(end),
        product_name=f"bench-out-{int(time.time())}",
        inputs={
            "forcing": "bench_forcing",
            "static": "bench_static",
            "radiation": "bench_radiation",
            "ssm": None,
        },
        progress=lambda d, n: blocks.append((time.perf_counter() - t0, d, n)),
        n_jobs=n_jobs,
    )
    total = time.perf_counter() - t0
    predict_s = blocks[-1][0]
    print(
        json.dumps(
            {
                "product": name,
                "seconds": total,
                "blocks_seconds": predict_s,
                "n_blocks": blocks[-1][2],
                "pixel_days": size * size * days,
            }
        )
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--fluxnet", help="FLUXNET2015 monthly folder (default: synthetic training table)")
    ap.add_argument("--trees", type=int, default=400)
    ap.add_argument("--size", type=int, default=1000)
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--n-fast", type=int, default=2_000_000)
    ap.add_argument("--n-slow", type=int, default=200_000)
    ap.add_argument("--skip-region", action="store_true")
    ap.add_argument("--region-repeats", type=int, default=1)
    ap.add_argument("--phase", choices=("all", "region-child"), default="all")
    ap.add_argument("--version")
    ap.add_argument(
        "--workers",
        default="0",
        help="comma-separated: 0 = threaded scheduler, N = LocalCluster of N worker processes (e.g. 0,1,2)",
    )
    args = ap.parse_args()
    data_dir = Path(args.data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    if args.phase == "region-child":
        region_child(data_dir, args.version, args.size, args.days, int(args.workers))
        return
    version, table = train_model(data_dir, args.fluxnet, args.trees)
    throughput(version, table, args.repeats, args.n_fast, args.n_slow)
    if args.skip_region:
        return
    write_cubes(data_dir, args.size, args.days)
    results = {}
    for workers in (int(w) for w in args.workers.split(",")):
        cmd = [
            sys.executable, __file__, "--phase", "region-child", "--data-dir", str(data_dir),
            "--version", version, "--size", str(args.size), "--days", str(args.days),
            "--workers", str(workers),
        ]  # fmt: skip
        runs = []
        for _ in range(args.region_repeats):
            out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
            runs.append(json.loads(out.strip().splitlines()[-1]))
        res = (
            min(runs, key=lambda r: r["seconds"])
            if len(runs) == 1
            else sorted(runs, key=lambda r: r["seconds"])[len(runs) // 2]
        )
        results[workers] = res
        peak_gb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20  # KiB → GiB, largest so far
        where = "threaded scheduler" if workers == 0 else f"LocalCluster of {workers} worker process(es)"
        print(
            f"region {args.size} x {args.size} px x {args.days} d = {res['pixel_days']:,} pixel-days "
            f"on the {where}: {res['seconds']:.0f} s end to end (median of {len(runs)}; "
            f"{res['n_blocks']} blocks predicted and written in "
            f"{res['blocks_seconds']:.0f} s, {res['pixel_days'] / res['blocks_seconds']:,.0f} pixel-days/s; "
            f"then pyramid + registration); peak RSS of the largest process so far {peak_gb:.2f} GiB"
        )
    base = results.get(min(results))
    for workers, res in results.items():
        print(
            f"  workers={workers}: {res['seconds']:.1f} s, ratio to workers={min(results)}: "
            f"{res['seconds'] / base['seconds']:.2f}"
        )


if __name__ == "__main__":
    main()
