"""Build the FluxLens demo world into a data directory (``fluxlens demo``): files, then ingest.

The synthetic world (``data_prep.demo_world``) and its sensors (``data_prep.demo_sensors``) are
written the way real data arrive and go through the real readers:

* ``gssm1km_demo`` — GSSM1km GeoTIFF (``write_gssm_geotiff`` → ``read_gssm_geotiff``);
* ``esacci_demo`` — one ESA CCI SM netCDF image per day (``write_esacci`` → ``read_esacci``);
* ``smap_demo`` — one SMAP L3 HDF5 granule per day of the GSSM month (``write_smap_l3`` → ``read_smap_l3``);
* networks ``fluxnet_demo`` (FLUXNET2015 DD CSV + site list) and ``ismn_demo`` (ISMN files);
* ``ssm_global_demo``, ``fluxes_demo``, ``forcing_demo``, ``static_demo`` — the precomputed cubes,
  written with ``catalog.store.write_product`` directly.

The raw files stay under ``<data_dir>/raw/demo/`` so they can be inspected or re-ingested. Every
entry is ``synthetic: true`` and its provenance says "FluxLens demo world, synthetic".

The fine world (``fluxlens demo --fine``, ``demo_world.FINE``) has regional 0.1° cubes of one month
and the two station networks only: feature cubes big enough for re-prediction benchmarks.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import dask
import dask.array as da
import numpy as np
import pandas as pd
import xarray as xr

from catalog import store
from catalog.igbp import IGBP_NAMES
from data_prep import demo_sensors as sensors
from data_prep import demo_world as w

log = logging.getLogger(__name__)

DESCRIPTION = "FluxLens demo world, synthetic"
PRODUCTS = (
    "gssm1km_demo",
    "ssm_global_demo",
    "fluxes_demo",
    "forcing_demo",
    "static_demo",
    "esacci_demo",
    "smap_demo",
)
NETWORKS = ("fluxnet_demo", "ismn_demo")
ISMN_NETWORK = "FLUXLENS-DEMO"
RAW_DIR = Path("raw") / "demo"

_ATTRS = {
    "ssm": ("m3 m-3", "surface soil moisture (0-5 cm)"),
    "le": ("W m-2", "latent heat flux (positive upward)"),
    "h": ("W m-2", "sensible heat flux (positive upward)"),
    "rn": ("W m-2", "net radiation"),
    "g": ("W m-2", "ground heat flux (positive into the soil)"),
    "sw_in": ("W m-2", "incoming shortwave radiation"),
    "lw_in": ("W m-2", "incoming longwave radiation"),
    "ta": ("degC", "air temperature"),
    "vpd": ("hPa", "vapour pressure deficit"),
    "precip": ("mm d-1", "precipitation"),
    "ws": ("m s-1", "wind speed"),
    "lai": ("m2 m-2", "leaf area index"),
    "ndvi": ("1", "normalized difference vegetation index"),
    "elevation": ("m", "elevation above sea level"),
    "igbp": ("1", "IGBP land cover class (1-17)"),
}


def _provenance(spec: w.DemoSpec, what: str, files=(), reader: str | None = None) -> dict:
    base = {
        "description": DESCRIPTION,
        "synthetic": True,
        "generator": "data_prep.demo",
        "world": spec.label,
        "seed": w.SEED,
        "contents": what,
    }
    if files:
        base.update(store.source_provenance(files, reader=reader or "", options={}))
    return base


def _var_attrs(name: str) -> dict:
    units, long_name = _ATTRS[name]
    return {"units": units, "long_name": long_name}


def _lazy_grid(world: w.GridWorld, values: np.ndarray, block: int = 31) -> da.Array:
    """(time, point) → lazy (time, lat, lon) float32 with NaN over the ocean, built per time block."""
    n_time = values.shape[0]
    shape = world.land.shape

    def one(t0: int, t1: int) -> np.ndarray:
        return world.grid(values[t0:t1].astype(np.float32))

    blocks = [
        da.from_delayed(
            dask.delayed(one)(t0, min(t0 + block, n_time)), (min(block, n_time - t0), *shape), np.float32
        )
        for t0 in range(0, n_time, block)
    ]
    return da.concatenate(blocks, axis=0)


def _cube(world: w.GridWorld, spec: w.DemoSpec, names) -> xr.Dataset:
    pts = world.points.period(*spec.period)
    coords = {"time": pts.time, "lat": world.lat, "lon": world.lon}
    data = {n: (("time", "lat", "lon"), _lazy_grid(world, pts.series[n]), _var_attrs(n)) for n in names}
    return xr.Dataset(data, coords=coords)


def _write_cubes(world: w.GridWorld, spec: w.DemoSpec, data_dir: Path) -> None:
    res = f"{spec.global_res:g} degree"
    area = "global" if spec.bbox == w.GLOBE else "regional"
    cubes = {
        "ssm_global_demo": (("ssm",), f"Demo {area} surface soil moisture ({res}, synthetic truth)"),
        "fluxes_demo": (w.FLUX_VARS, f"Demo land fluxes LE, H, Rn, G ({res}, synthetic, Rn - G = LE + H)"),
        "forcing_demo": (w.FORCING_VARS, f"Demo meteorological and vegetation forcing ({res}, synthetic)"),
    }
    for name, (names, title) in cubes.items():
        store.write_product(
            _cube(world, spec, names),
            name,
            provenance=_provenance(spec, title),
            synthetic=True,
            mode="replace",
            title=title,
            data_dir=data_dir,
        )
    static = world.points.static
    ds = xr.Dataset(
        {
            n: (("time", "lat", "lon"), world.grid(static[n].astype(np.float32)[None]), _var_attrs(n))
            for n in ("elevation", "igbp")
        },
        coords={"time": pd.DatetimeIndex([spec.period[0]]).as_unit("ns"), "lat": world.lat, "lon": world.lon},
    )
    title = f"Demo elevation and IGBP land cover ({res}, synthetic)"
    provenance = _provenance(spec, title)
    store.write_product(
        ds,
        "static_demo",
        provenance=provenance,
        synthetic=True,
        mode="replace",
        title=title,
        kind="static",
        data_dir=data_dir,
    )


def _write_gssm(world: w.GridWorld, spec: w.DemoSpec, data_dir: Path) -> None:
    from data_prep import gssm

    folder = data_dir / RAW_DIR / "gssm"
    folder.mkdir(parents=True, exist_ok=True)
    ssm = w.gssm_region(world, spec)
    start = pd.Timestamp(spec.gssm_period[0])
    path = gssm.write_gssm_geotiff(folder / f"GSSM1km_demo_{start:%Y_%m}.tif", ssm)
    del ssm
    ds = gssm.read_gssm_geotiff([path])
    title = "Demo GSSM1km-like surface soil moisture (0.01 degree, synthetic)"
    store.write_product(
        ds,
        "gssm1km_demo",
        provenance=_provenance(spec, title, [path], "data_prep.gssm.read_gssm_geotiff"),
        synthetic=True,
        mode="replace",
        title=title,
        packed=gssm.PACKING,
        kind="soil_moisture",
        data_dir=data_dir,
    )


def _product_grid(spec: w.DemoSpec):
    lat, lon = w.grid_centres(spec.cci_res)
    return lat, lon, w.land_mask(lat, lon)


def _write_esacci(world: w.GridWorld, spec: w.DemoSpec, data_dir: Path, grid) -> None:
    from data_prep import esacci

    lat, lon, land = grid
    folder = data_dir / RAW_DIR / "esacci"
    folder.mkdir(parents=True, exist_ok=True)
    product = sensors.esacci_like(world, spec.comparison_period, lat, lon, land)
    paths = []
    for i, day in enumerate(product["time"]):
        ds = xr.Dataset(
            {
                "ssm": (("time", "lat", "lon"), product["ssm"][i : i + 1]),
                "ssm_uncertainty": (("time", "lat", "lon"), product["ssm_uncertainty"][i : i + 1]),
                "flag": (
                    ("time", "lat", "lon"),
                    np.where(product["flag"][i : i + 1] < 0, np.nan, product["flag"][i : i + 1]),
                ),
            },
            coords={"time": [day], "lat": lat, "lon": lon},
        )
        name = f"ESACCI-SOILMOISTURE-L3S-SSMV-COMBINED-{day:%Y%m%d}000000-fv08.1.nc"
        paths.append(esacci.write_esacci(folder / name, ds))
    del product
    ds = esacci.read_esacci(paths, keep_flags=(0,))
    title = "Demo ESA CCI SM-like combined soil moisture (synthetic; flagged retrievals masked)"
    store.write_product(
        ds,
        "esacci_demo",
        provenance=_provenance(spec, title, paths, "data_prep.esacci.read_esacci"),
        synthetic=True,
        mode="replace",
        title=title,
        kind="soil_moisture",
        data_dir=data_dir,
    )


def _write_smap(world: w.GridWorld, spec: w.DemoSpec, data_dir: Path, grid) -> None:
    from data_prep import smap

    lat, lon, land = grid
    folder = data_dir / RAW_DIR / "smap"
    folder.mkdir(parents=True, exist_ok=True)
    product = sensors.smap_like(world, spec.smap_period, lat, lon, land)
    paths = []

    def field(key, i):
        return xr.DataArray(product[key][i], dims=("lat", "lon"), coords={"lat": lat, "lon": lon})

    for i, day in enumerate(product["time"]):
        path = folder / smap.smap_l3_file_name(day)
        paths.append(
            smap.write_smap_l3(
                path,
                field("ssm_am", i),
                field("ssm_pm", i),
                qual_am=field("qual_am", i),
                qual_pm=field("qual_pm", i),
            )
        )
    ds = smap.read_smap_l3(paths, resolution=spec.cci_res)
    title = "Demo SMAP L3-like radiometer soil moisture (synthetic; AM/PM, recommended quality)"
    store.write_product(
        ds,
        "smap_demo",
        provenance=_provenance(spec, title, paths, "data_prep.smap.read_smap_l3"),
        synthetic=True,
        mode="replace",
        title=title,
        kind="soil_moisture",
        data_dir=data_dir,
    )


def _write_towers(world: w.GridWorld, spec: w.DemoSpec, data_dir: Path) -> None:
    from data_prep import fluxnet

    folder = data_dir / RAW_DIR / "fluxnet"
    folder.mkdir(parents=True, exist_ok=True)
    sites = sensors.tower_sites(world, spec)
    site_list = pd.DataFrame(
        {
            "SITE_ID": sites["site_id"],
            "SITE_NAME": sites["name"],
            "LOCATION_LAT": sites["lat"],
            "LOCATION_LONG": sites["lon"],
            "LOCATION_ELEV": sites["elevation"].round(0),
            "IGBP": sites["igbp"],
        }
    )
    site_list.to_csv(folder / "FluxNET_sites.csv", index=False, lineterminator="\n")
    paths = [
        fluxnet.write_fluxnet(folder, sensors.tower_table(world, site, spec.period, i))
        for i, site in sites.iterrows()
    ]
    table = fluxnet.read_site_table(folder)
    observations = []
    for path in paths:
        df = fluxnet.read_fluxnet(path)
        df.attrs = {}
        observations.append(df)
    obs = pd.concat(observations, ignore_index=True)
    title = "Demo flux towers (FLUXNET2015 DD format, synthetic)"
    sources = [*paths, folder / "FluxNET_sites.csv"]
    provenance = _provenance(spec, title, sources, "data_prep.fluxnet.read_fluxnet")
    store.write_stations(
        "fluxnet_demo", table, obs, synthetic=True, mode="replace", provenance=provenance, data_dir=data_dir
    )


def _write_ismn(world: w.GridWorld, spec: w.DemoSpec, data_dir: Path) -> None:
    from data_prep import ismn

    folder = data_dir / RAW_DIR / "ismn" / ISMN_NETWORK
    folder.mkdir(parents=True, exist_ok=True)
    stations = sensors.ismn_stations(world, spec)
    paths = []
    for i, st in stations.iterrows():
        meta = {
            "network": ISMN_NETWORK,
            "station": st["station"],
            "lat": float(st["lat"]),
            "lon": float(st["lon"]),
            "elevation": float(st["elevation"]),
            "depth_from": 0.0,
            "depth_to": 0.05,
            "sensor": "DemoProbe",
        }
        station_dir = folder / st["station"]
        station_dir.mkdir(exist_ok=True)
        paths.append(ismn.write_ismn(station_dir, meta, sensors.ismn_table(world, st, spec.period, i)))
    sites, obs = ismn.read_ismn_folder(folder)
    sites["igbp"] = sites["station"].map(
        dict(zip(stations["station"], stations["igbp"].map(IGBP_NAMES), strict=True))
    )
    obs.attrs = {}
    title = "Demo in-situ soil moisture stations (ISMN format, synthetic)"
    store.write_stations(
        "ismn_demo",
        sites,
        obs,
        synthetic=True,
        mode="replace",
        provenance=_provenance(spec, title, paths, "data_prep.ismn.read_ismn"),
        data_dir=data_dir,
    )


STEP_NAMES = {
    "cubes": "forcing, static and soil-moisture cubes",
    "towers": "FLUXNET-like towers",
    "ismn": "ISMN-like soil-moisture stations",
    "gssm": "GSSM1km-like GeoTIFF product",
    "esacci": "ESA CCI-like product",
    "smap": "SMAP-like product",
}


def build_demo(
    data_dir,
    *,
    small: bool = False,
    spec: w.DemoSpec | None = None,
    report: Callable[[str], None] | None = None,
    after_stations: Callable[[], object] | None = None,
) -> dict[str, float]:
    """Build the demo world into ``data_dir`` (products, networks, raw files).

    Returns seconds: ``world`` / ``world_cpu`` for the simulation, then the wall-clock time of each
    writing step and ``writes`` / ``writes_cpu`` for all of them. The steps run on two threads (the
    global cubes and the stations on one, the raw-file products on the other: compression, file I/O
    and numpy release the GIL), so their wall times overlap.

    Deterministic: the same call gives the same values and raw files. ``small`` builds the same
    world on a coarser grid, a smaller 1 km region and a shorter period (for tests); ``spec`` any
    other size (``demo_world.FINE``). A regional world (``spec.bbox`` not the globe) keeps only the
    days of ``spec.period``; without ``spec.satellite_products`` only cubes and stations are written.
    ``report(text)`` is told each step as it ends (the command line prints them with the elapsed time).
    ``after_stations()`` runs on the cubes-and-stations thread once the cubes and both networks are
    in the catalog, beside the remaining raw-file products (``fluxlens demo`` trains the demo emulator
    there); ``timings["after_stations"]`` is its wall time and the writes include it.
    """
    say = report or (lambda _text: None)
    spec = spec or (w.SMALL if small else w.FULL)
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(data_dir / RAW_DIR, ignore_errors=True)
    timings: dict[str, float] = {}

    def timed(step: str, write, *args) -> None:
        t0 = time.perf_counter()
        write(*args)
        timings[step] = round(time.perf_counter() - t0, 2)
        log.info("demo %s: %s %.1f s", spec.label, step, timings[step])
        say(f"{STEP_NAMES.get(step, step)} written ({timings[step]:.1f} s)")

    def cubes_and_stations(world: w.GridWorld) -> None:
        timed("cubes", _write_cubes, world, spec, data_dir)
        timed("towers", _write_towers, world, spec, data_dir)
        timed("ismn", _write_ismn, world, spec, data_dir)
        if after_stations is not None:
            t0 = time.perf_counter()
            after_stations()
            timings["after_stations"] = round(time.perf_counter() - t0, 2)

    t0, c0 = time.perf_counter(), time.process_time()
    say(f"simulating the {spec.label} demo world (land, climate, surface model)")
    static = w.reference_static()
    keep = None if spec.bbox == w.GLOBE else spec.period
    world = w.simulate_grid(static, spec.global_res, spec.year, spec.bbox, keep)
    timings["world"], timings["world_cpu"] = (
        round(time.perf_counter() - t0, 2),
        round(time.process_time() - c0, 2),
    )
    log.info("demo %s: world %.1f s (CPU %.1f s)", spec.label, timings["world"], timings["world_cpu"])
    say(f"world simulated ({timings['world']:.1f} s); writing products and stations")
    t0, c0 = time.perf_counter(), time.process_time()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="demo-cubes") as pool:
        background = pool.submit(cubes_and_stations, world)
        if spec.satellite_products:
            timed("gssm", _write_gssm, world, spec, data_dir)
            grid = _product_grid(spec)
            timed("esacci", _write_esacci, world, spec, data_dir, grid)
            timed("smap", _write_smap, world, spec, data_dir, grid)
        background.result()
    timings["writes"], timings["writes_cpu"] = (
        round(time.perf_counter() - t0, 2),
        round(time.process_time() - c0, 2),
    )
    log.info("demo %s: writes %.1f s (CPU %.1f s)", spec.label, timings["writes"], timings["writes_cpu"])
    return timings
