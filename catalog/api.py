"""Read API of the catalog: the one way the app and the models reach data.

Everything is found through the intake 2 catalog ``<data_dir>/catalog.yaml`` (entries described in
``catalog.intake_catalog``). What is opened is kept by the :class:`Catalog` of the data directory
(the context object that owns the caches; :func:`catalog` gives the current settings' one) and
refreshed when ``catalog.yaml`` changes or a product is rewritten (each write gets a new
``store_id``). The module's functions are that object's methods, for the layers above.
"""

from __future__ import annotations

import dataclasses
import math
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from catalog import intake_catalog, packing, settings
from catalog.errors import InputError
from catalog.geo import cos_lat_mean, haversine_km, nearest_index

REGION_MAX_PIXELS = 1_000_000


@dataclass
class ProductInfo:
    """Description of one gridded product, as recorded in the catalog."""

    name: str
    title: str
    variables: dict[str, dict]  # {var: {units, long_name[, standard_name]}}
    resolution: float  # degrees (longitude step of level 0)
    time_start: str  # ISO date of the first time step
    time_end: str  # ISO date of the last time step
    n_time: int
    time_step: str  # "day" | "month"
    bbox: tuple[float, float, float, float]  # (west, south, east, north), outer cell edges
    levels: list[dict]  # [{level, n_lat, n_lon, resolution}]
    synthetic: bool
    provenance: dict
    kind: str
    chunking: dict = field(default_factory=dict)
    store_id: str = ""

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["bbox"] = list(self.bbox)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> ProductInfo:
        names = {f.name for f in dataclasses.fields(cls)}
        kw = {k: v for k, v in d.items() if k in names}
        kw["bbox"] = tuple(float(v) for v in kw["bbox"])
        return cls(**kw)

    @property
    def has_series(self) -> bool:
        """Whether a time-chunked copy of level 0 exists for whole-record pixel reads."""
        return bool(self.chunking.get("series"))


class Catalog:
    """The catalog of one data directory and what this process opened from it: the intake catalog
    (reloaded when ``catalog.yaml`` changes), datasets (kept per stored version: a rewrite gets a new
    ``store_id``) and site tables. One per data directory (:func:`catalog`); the module's functions
    ask the one of the current settings."""

    def __init__(self, data_dir: Path):
        self.data_dir = Path(data_dir)
        self._lock = threading.RLock()
        self._intake: tuple[tuple[int, int, int], object] | None = None
        self._datasets: dict[tuple[str, str], xr.Dataset] = {}
        self._tables: dict[tuple[str, str, str], pd.DataFrame] = {}

    def intake(self):
        """The loaded intake catalog, reloaded when the file changes."""
        path = intake_catalog.catalog_path(self.data_dir).resolve()
        try:
            st = path.stat()
        except FileNotFoundError:
            return intake_catalog.load(path.parent)
        stamp = (st.st_ino, st.st_mtime_ns, st.st_size)  # os.replace gives every update a new inode
        with self._lock:
            if self._intake is None or self._intake[0] != stamp:
                self._intake = (stamp, intake_catalog.load(path.parent))
            return self._intake[1]

    def _entries_of_kind(self, kind: str) -> dict[str, dict]:
        cat = self.intake()
        return {k: e.metadata for k, e in cat.entries.items() if e.metadata.get("entry_kind") == kind}

    def list_products(self) -> list[ProductInfo]:
        """All gridded products in the catalog, sorted by name."""
        infos = [ProductInfo.from_dict(m["info"]) for m in self._entries_of_kind("product").values()]
        return sorted(infos, key=lambda i: i.name)

    def product_info(self, name: str) -> ProductInfo:
        """Description of product ``name``; :class:`InputError` listing the known ones if unknown."""
        meta = self._entries_of_kind("product").get(name)
        if meta is None:
            known = ", ".join(sorted(self._entries_of_kind("product"))) or "none"
            raise InputError(f"unknown product {name!r}; known products: {known}")
        return ProductInfo.from_dict(meta["info"])

    def store_dir(self, name: str) -> Path:
        """The folder of the stored version of product ``name`` that the catalog names (for tools
        and tests that read the Zarr stores directly)."""
        meta = self._entries_of_kind("product").get(name)
        if meta is None:
            self.product_info(name)  # the unknown-product error
        return self.data_dir / (meta.get("store_dir") or f"products/{name}")

    def _read_entry(self, entry: str, store_id: str) -> xr.Dataset:
        with self._lock:
            ds = self._datasets.get((entry, store_id))
        if ds is None:
            ds = packing.as_float32(self.intake()[entry].read())
            with self._lock:
                for k in [k for k in self._datasets if k[0] == entry]:
                    del self._datasets[k]
                self._datasets[(entry, store_id)] = ds
        return ds

    def open_product(self, name: str, level: int = 0) -> xr.Dataset:
        """Product ``name`` at pyramid ``level`` as a lazy (dask) dataset with dims (time, lat, lon).

        The store is opened once; each call returns a shallow copy sharing its dask arrays.
        """
        info = self.product_info(name)
        if not 0 <= int(level) < len(info.levels):
            raise InputError(f"product {name!r} has levels 0..{len(info.levels) - 1}, not {level}")
        return self._read_entry(intake_catalog.level_entry(name, int(level)), info.store_id).copy(deep=False)

    def _open_series(self, info: ProductInfo) -> xr.Dataset:
        if info.has_series:
            return self._read_entry(intake_catalog.series_entry(info.name), info.store_id)
        return self.open_product(info.name, 0)

    def choose_level(self, name: str, lon_range, lat_range, width_px: int) -> int:
        """Coarsest level with at least ``width_px`` pixels across ``lon_range`` (level 0 if none has)."""
        info = self.product_info(name)
        lon0, lon1 = (float(v) for v in lon_range)
        lat0, lat1 = (float(v) for v in lat_range)
        if not (lon1 > lon0 and lat1 > lat0) or width_px < 1:
            raise InputError(f"bad view for {name!r}: lon {lon_range}, lat {lat_range}, width {width_px} px")
        for lev in reversed(info.levels):
            if (lon1 - lon0) / lev["resolution"] >= width_px:
                return int(lev["level"])
        return 0

    def point_series(self, name: str, lon: float, lat: float, variables=None) -> xr.Dataset:
        """Whole record at the pixel nearest to (lon, lat), loaded.

        attrs: ``pixel_lon``, ``pixel_lat`` (centre of that pixel), ``distance_km`` (haversine from
        the requested point), ``product``. Outside the product's bbox → :class:`InputError`.
        """
        info = self.product_info(name)
        lon, lat = float(lon), float(lat)
        if not (math.isfinite(lon) and math.isfinite(lat)) or not _inside(info, lon, lat):
            raise InputError(f"point ({lon}, {lat}) is outside product {name!r} (bbox W,S,E,N = {info.bbox})")
        ds = _select_vars(self._open_series(info), name, variables)
        i, j = int(nearest_index(ds.lat.values, lat)), int(nearest_index(ds.lon.values, lon))
        out = ds.isel(lat=i, lon=j).load()
        plon, plat = float(out.lon), float(out.lat)
        out = out.drop_vars(["lat", "lon"])
        out.attrs.update(
            product=name,
            pixel_lon=plon,
            pixel_lat=plat,
            distance_km=float(haversine_km(lon, lat, plon, plat)),
        )
        return out

    def region_series(self, name: str, bbox, variables=None) -> xr.Dataset:
        """cos(latitude)-weighted mean over the pixels whose centres lie in ``bbox`` (W, S, E, N),
        loaded.

        Missing pixels are left out of both the sum and the weights. The finest pyramid level with
        at most :data:`REGION_MAX_PIXELS` pixels in the box is used (attrs ``level``, ``n_pixels``). A
        box too small to hold a pixel centre uses the pixel under its centre. A box outside the data
        → :class:`InputError`.
        """
        info = self.product_info(name)
        w, s, e, n = (float(v) for v in bbox)
        if not (e > w and n > s):
            raise InputError(f"bad bbox {tuple(bbox)} for {name!r}: need west < east and south < north")
        pw, ps, pe, pn = info.bbox
        if e < pw or w > pe or n < ps or s > pn:
            raise InputError(f"bbox {tuple(bbox)} is outside product {name!r} (bbox W,S,E,N = {info.bbox})")
        level = len(info.levels) - 1
        for lev in info.levels:
            est = ((min(e, pe) - max(w, pw)) / lev["resolution"]) * (
                (min(n, pn) - max(s, ps)) / lev["resolution"]
            )
            if est <= REGION_MAX_PIXELS:
                level = int(lev["level"])
                break
        ds = self.open_product(name, level) if level else self._open_series(info)
        ds = _select_vars(ds, name, variables)
        sub = ds.sel(lat=slice(n, s), lon=slice(w, e))
        if sub.sizes["lat"] == 0 or sub.sizes["lon"] == 0:
            clon, clat = (max(w, pw) + min(e, pe)) / 2, (max(s, ps) + min(n, pn)) / 2
            sub = ds.isel(
                lat=[int(nearest_index(ds.lat.values, clat))], lon=[int(nearest_index(ds.lon.values, clon))]
            )
        out = cos_lat_mean(sub)
        for v in out.data_vars:
            out[v].attrs = dict(ds[v].attrs)
            out[v] = out[v].astype(np.float32)
        out = out.load()
        out.attrs.update(
            product=name, bbox=[w, s, e, n], level=level, n_pixels=int(sub.sizes["lat"] * sub.sizes["lon"])
        )
        return out

    def list_networks(self) -> list[str]:
        """Names of the station networks in the catalog."""
        return sorted({m["network"] for m in self._entries_of_kind("station_sites").values()})

    def network_info(self, network: str) -> dict:
        """Catalog metadata of a station network (n_sites, variables, time range, provenance,
        synthetic)."""
        meta = self._entries_of_kind("station_sites").get(intake_catalog.station_entry(network, "sites"))
        if meta is None:
            known = ", ".join(self.list_networks()) or "none"
            raise InputError(f"unknown station network {network!r}; known networks: {known}")
        return dict(meta)

    def network_dir(self, network: str) -> Path:
        """The folder of the stored version of a station network that the catalog names."""
        meta = self.network_info(network)
        return self.data_dir / (meta.get("store_dir") or f"stations/{network}")

    def _read_table(self, network: str, table: str, **kwargs) -> pd.DataFrame:
        return self.intake()[intake_catalog.station_entry(network, table)].read(**kwargs)

    def sites(self, network: str) -> pd.DataFrame:
        """Site table: site_id, name, lat, lon, igbp, start, end, network, synthetic (+ extra
        columns)."""
        meta = self.network_info(network)
        key = ("sites", network, meta.get("store_id", ""))
        with self._lock:
            df = self._tables.get(key)
        if df is None:
            df = self._read_table(network, "sites")
            with self._lock:
                self._tables[key] = df
        return df.copy()

    def site_observations(self, network: str, site_id: str) -> pd.DataFrame:
        """Observations of one site (one row per time step, ``time`` column), sorted by time."""
        known = self.sites(network)
        if site_id not in set(known["site_id"]):
            raise InputError(f"network {network!r} has no site {site_id!r}")
        df = self._read_table(network, "observations", filters=[("site_id", "==", site_id)])
        return df.sort_values("time").reset_index(drop=True)


def _select_vars(ds: xr.Dataset, name: str, variables) -> xr.Dataset:
    if variables is None:
        return ds
    variables = [variables] if isinstance(variables, str) else list(variables)
    missing = [v for v in variables if v not in ds.data_vars]
    if missing:
        raise InputError(f"product {name!r} has no variable(s) {missing}; it has {sorted(ds.data_vars)}")
    return ds[variables]


def _inside(info: ProductInfo, lon: float, lat: float) -> bool:
    w, s, e, n = info.bbox
    return w <= lon <= e and s <= lat <= n


_catalogs_lock = threading.Lock()
_catalogs: dict[Path, Catalog] = {}


def catalog(data_dir=None) -> Catalog:
    """The :class:`Catalog` of ``data_dir`` (default: the current settings'), one per directory."""
    path = settings.data_dir(data_dir).resolve()
    with _catalogs_lock:
        if path not in _catalogs:
            _catalogs[path] = Catalog(path)
        return _catalogs[path]


# The read API on the current settings' catalog (what the layers above call).


def list_products() -> list[ProductInfo]:
    return catalog().list_products()


def product_info(name: str) -> ProductInfo:
    return catalog().product_info(name)


def store_dir(name: str) -> Path:
    return catalog().store_dir(name)


def open_product(name: str, level: int = 0) -> xr.Dataset:
    return catalog().open_product(name, level)


def choose_level(name: str, lon_range, lat_range, width_px: int) -> int:
    return catalog().choose_level(name, lon_range, lat_range, width_px)


def point_series(name: str, lon: float, lat: float, variables=None) -> xr.Dataset:
    return catalog().point_series(name, lon, lat, variables)


def region_series(name: str, bbox, variables=None) -> xr.Dataset:
    return catalog().region_series(name, bbox, variables)


def list_networks() -> list[str]:
    return catalog().list_networks()


def network_info(network: str) -> dict:
    return catalog().network_info(network)


def network_dir(network: str) -> Path:
    return catalog().network_dir(network)


def sites(network: str) -> pd.DataFrame:
    return catalog().sites(network)


def site_observations(network: str, site_id: str) -> pd.DataFrame:
    return catalog().site_observations(network, site_id)
