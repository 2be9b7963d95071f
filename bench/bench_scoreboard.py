"""Scoreboard timing: N synthetic towers x P daily LE products, cold (no validation cache) and cached.

Builds a scratch data directory (synthetic products and towers through ``catalog.store``), then
prints the median wall time of ``compute_scoreboard`` per product without and with the disk cache.

    .venv/bin/python bench/bench_scoreboard.py --sites 200 --products 3 --workdir /tmp/$USER/bench
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import time
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

BBOX = (-125.0, 25.0, -65.0, 50.0)  # W, S, E, N
RES = 0.25
DAYS = pd.date_range("2018-01-01", "2018-12-31", freq="D")


def build(workdir: Path, n_sites: int, n_products: int, seed: int = 0) -> list[str]:
    from catalog import store

    rng = np.random.default_rng(seed)
    w, s, e, n = BBOX
    lat = np.arange(n - RES / 2, s, -RES)
    lon = np.arange(w + RES / 2, e, RES)
    doy = DAYS.day_of_year.to_numpy()
    season = np.sin(2 * np.pi * (doy - 100) / 365.0)
    base = (60 + 50 * season)[:, None, None] * (1 + 0.3 * np.cos(np.radians(lat)))[None, :, None]
    names = []
    for k in range(n_products):
        noise = rng.normal(0, 12 + 4 * k, (len(DAYS), lat.size, lon.size))
        le = (base * (0.9 + 0.1 * k) + noise).astype("float32")
        ds = xr.Dataset(
            {"le": (("time", "lat", "lon"), le, {"units": "W m-2", "long_name": "latent heat flux"})},
            coords={"time": DAYS.values, "lat": lat, "lon": lon},
        )
        name = f"bench_le_{k}"
        store.write_product(ds, name, provenance={"bench": "scoreboard"}, synthetic=True, mode="replace")
        names.append(name)
    site_lat = rng.uniform(s + 0.5, n - 0.5, n_sites)
    site_lon = rng.uniform(w + 0.5, e - 0.5, n_sites)
    igbp = rng.choice(["GRA", "CRO", "ENF", "DBF", "OSH", "SAV"], n_sites)
    sites = pd.DataFrame(
        {
            "site_id": [f"BX-{i:04d}" for i in range(n_sites)],
            "name": [f"bench tower {i}" for i in range(n_sites)],
            "lat": site_lat,
            "lon": site_lon,
            "igbp": igbp,
        }
    )
    rows = []
    for i in range(n_sites):
        obs = 55 + 45 * season * (1 + 0.3 * np.cos(np.radians(site_lat[i]))) + rng.normal(0, 10, len(DAYS))
        qc = rng.uniform(0.5, 1.0, len(DAYS))
        rows.append(pd.DataFrame({"site_id": sites["site_id"][i], "time": DAYS, "LE": obs, "LE_QC": qc}))
    store.write_stations(
        "bench_towers",
        sites,
        pd.concat(rows, ignore_index=True),
        provenance={"bench": "scoreboard"},
        synthetic=True,
    )
    return names


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sites", type=int, default=200)
    parser.add_argument("--products", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--workdir", type=Path, default=Path("/tmp") / os.environ.get("USER", "bench") / "bench"
    )
    args = parser.parse_args()
    data_dir = args.workdir / "fluxlens-data"
    cache = args.workdir / "cache"
    os.environ["FLUXLENS_DATA_DIR"] = str(data_dir)
    os.environ["FLUXLENS_VALIDATION_CACHE"] = str(cache)
    from validation import scoreboard

    t0 = time.perf_counter()
    products = build(args.workdir, args.sites, args.products)
    print(f"built {args.products} products ({len(DAYS)} days, {RES} deg) and {args.sites} towers "
          f"in {time.perf_counter() - t0:.1f} s")  # fmt: skip
    cold, cached = [], []
    for _ in range(args.repeats):
        shutil.rmtree(cache, ignore_errors=True)
        t = time.perf_counter()
        boards = [scoreboard.compute_scoreboard(p, "le", "bench_towers") for p in products]
        cold.append(time.perf_counter() - t)
        assert not any(b.cached for b in boards)
        matched = sum(int((b.table["error"] == "").sum()) for b in boards)
        t = time.perf_counter()
        again = [scoreboard.compute_scoreboard(p, "le", "bench_towers") for p in products]
        cached.append(time.perf_counter() - t)
        assert all(b.cached for b in again)
    cold_med, cached_med = statistics.median(cold), statistics.median(cached)
    print(f"scoreboard {args.sites} sites x {args.products} products ({matched} site-product pairs matched)")
    print(f"  cold   median {cold_med:8.2f} s  ({cold_med / args.products:.2f} s per product)  runs {cold}")
    per = cached_med / args.products
    print(f"  cached median {cached_med:8.3f} s  ({per:.3f} s per product)  runs {cached}")
    print(f"  cold / cached = {cold_med / cached_med:.0f}x")
    r = boards[0].table["r"]
    pooled = boards[0].pooled["r"]
    print(f"  sanity: median per-site R of {products[0]} = {np.nanmedian(r):.3f}, pooled R = {pooled:.3f}")


if __name__ == "__main__":
    main()
