"""Giovanni-style analyses of a catalog product, computed by the job worker and cached.

One :class:`AnalysisRequest` names the analysis, the product and variable, a lon/lat box (default: the
product's extent), a period and what the analysis needs besides (a second product for a correlation
map, a named region or an uploaded GeoJSON polygon for an area-averaged series). The computations are
the pure functions of :mod:`validation.hovmoller`, :mod:`validation.climatology`,
:mod:`validation.correlation_map` and :mod:`validation.regions`, run lazily on the product's Dask
chunks; the result is a small :class:`xarray.Dataset` cached as netCDF under its key (the request and
the stored versions of the products it read), written by atomic rename.

Analyses (:data:`ANALYSES`): ``hovmoller_lat`` / ``hovmoller_lon`` (time × latitude / longitude over
the box), ``climatology`` (monthly climatology maps), ``seasonal`` (DJF/MAM/JJA/SON means),
``anomaly`` (each step of the period minus its calendar month's climatology over the product's whole
record in the box), ``correlation`` (per-pixel Pearson R between two products on one grid over the
period) and ``region_series`` (area-weighted mean over a country, continent or polygon; each cell
weighted by its area inside the polygon, not the polygon's bounding box).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from catalog.errors import InputError
from validation import climatology, correlation_map, hovmoller, regions

CACHE_VERSION = 1
ANALYSES = {
    "hovmoller_lat": "Hovmöller diagram, time × latitude (mean over the box's longitudes)",
    "hovmoller_lon": "Hovmöller diagram, time × longitude (cos-lat weighted mean over the box's latitudes)",
    "climatology": "monthly climatology maps (each calendar month's mean over the years)",
    "seasonal": "seasonal mean maps (DJF, MAM, JJA, SON over the years)",
    "anomaly": "anomaly maps (each step minus its calendar month's climatology over the whole record)",
    "correlation": "per-pixel temporal correlation map of two products (Pearson R)",
    "region_series": "area-weighted mean series over a named region or an uploaded polygon",
}
FORMULAS = {
    "hovmoller_lat": hovmoller.__doc__.split("\n\n")[1],
    "hovmoller_lon": hovmoller.__doc__.split("\n\n")[1],
    "climatology": climatology.__doc__.split("\n\n")[1],
    "seasonal": climatology.__doc__.split("\n\n")[1],
    "anomaly": climatology.__doc__.split("\n\n")[1],
    "correlation": correlation_map.__doc__.split("\n\n")[1],
    "region_series": regions.__doc__.split("\n\n")[2],
}
MAPS = ("climatology", "seasonal", "anomaly", "correlation")
MAX_READ_VALUES = 500_000_000  # time steps × cells read (2 GB of float32)
MAX_MAP_CELLS = 4_000_000  # cells of one output map
MAX_OUTPUT_VALUES = 50_000_000  # values of the cached result


def _bbox(value) -> tuple[float, float, float, float] | None:
    if value is None or value == "":
        return None
    parts = value.split(",") if isinstance(value, str) else list(value)
    try:
        w, s, e, n = (float(v) for v in parts)
    except (TypeError, ValueError) as err:
        raise InputError(f"analysis: bbox must be four numbers W,S,E,N, got {value!r}") from err
    if not (-180 <= w < e <= 180 and -90 <= s < n <= 90):
        raise InputError(f"analysis: bbox {value!r} must have -180 ≤ W < E ≤ 180 and -90 ≤ S < N ≤ 90")
    return w, s, e, n


def _period(value) -> tuple[str, str] | None:
    if not value:
        return None
    try:
        start, end = (pd.Timestamp(v) for v in value)
    except (TypeError, ValueError) as err:
        raise InputError(f"analysis: period must be two ISO dates, got {value!r}") from err
    if end < start:
        raise InputError(f"analysis: period ends ({end:%Y-%m-%d}) before it starts ({start:%Y-%m-%d})")
    return f"{start:%Y-%m-%d}", f"{end:%Y-%m-%d}"


@dataclasses.dataclass(frozen=True)
class AnalysisRequest:
    """One analysis: see the module docstring. ``polygon``: (name, GeoJSON text)."""

    analysis: str
    product: str
    variable: str
    bbox: tuple[float, float, float, float] | None = None
    period: tuple[str, str] | None = None
    product_b: str | None = None
    variable_b: str | None = None
    region: str | None = None
    polygon: tuple[str, str] | None = None

    @classmethod
    def from_dict(cls, d: Mapping) -> AnalysisRequest:
        """The request of a plain dict (a job's request), checked against the catalog."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise InputError(f"analysis: unknown settings {sorted(unknown)}")
        missing = [k for k in ("analysis", "product", "variable") if not d.get(k)]
        if missing:
            raise InputError(f"analysis: {', '.join(missing)} required")
        polygon = d.get("polygon")
        if polygon:
            if isinstance(polygon, Mapping):
                polygon = (polygon.get("name") or "polygon", polygon.get("geojson") or "")
            name, text = polygon
            polygon = (str(name).strip() or "polygon", text if isinstance(text, str) else json.dumps(text))
        req = cls(
            analysis=str(d["analysis"]),
            product=str(d["product"]),
            variable=str(d["variable"]),
            bbox=_bbox(d.get("bbox")),
            period=_period(d.get("period")),
            product_b=str(d["product_b"]) if d.get("product_b") else None,
            variable_b=str(d["variable_b"]) if d.get("variable_b") else None,
            region=str(d["region"]).strip() if d.get("region") else None,
            polygon=polygon or None,
        )
        return req.checked()

    def as_dict(self) -> dict:
        """Plain JSON-able dict (job requests, cache keys)."""
        out = dataclasses.asdict(self)
        out["bbox"] = list(self.bbox) if self.bbox else None
        out["period"] = list(self.period) if self.period else None
        out["polygon"] = list(self.polygon) if self.polygon else None
        return out

    def described(self) -> dict:
        """:meth:`as_dict` with the polygon's GeoJSON replaced by its SHA-256 (for attributes)."""
        out = self.as_dict()
        if self.polygon:
            out["polygon"] = [
                self.polygon[0],
                "sha256:" + hashlib.sha256(self.polygon[1].encode()).hexdigest()[:16],
            ]
        return out

    # ----------------------------------------------------------------------------------------------

    def checked(self) -> AnalysisRequest:
        """The request with its box clipped to the product and its period to the record; ``InputError``
        for an unknown analysis, product, variable, region, for a box or period outside the data, a
        polygon that is not GeoJSON and a request too large to compute (no data are read)."""
        if self.analysis not in ANALYSES:
            raise InputError(f"analysis: unknown analysis {self.analysis!r}; known: {', '.join(ANALYSES)}")
        info = _product(self.product, self.variable)
        box = self.bbox or tuple(info.bbox)
        w, s, e, n = info.bbox
        clipped = (max(box[0], w), max(box[1], s), min(box[2], e), min(box[3], n))
        if clipped[0] >= clipped[2] or clipped[1] >= clipped[3]:
            raise InputError(
                f"analysis: the box {list(box)} lies outside {self.product!r} (W,S,E,N = {list(info.bbox)})"
            )
        start, end = pd.Timestamp(info.time_start), pd.Timestamp(info.time_end)
        period = self.period or (f"{start:%Y-%m-%d}", f"{end:%Y-%m-%d}")
        p0, p1 = max(pd.Timestamp(period[0]), start), min(pd.Timestamp(period[1]), end)
        if p1 < p0:
            raise InputError(
                f"analysis: the period {period[0]}…{period[1]} lies outside {self.product!r} "
                f"({start:%Y-%m-%d}…{end:%Y-%m-%d})"
            )
        period = (f"{p0:%Y-%m-%d}", f"{p1:%Y-%m-%d}")
        product_b = variable_b = None
        if self.analysis == "correlation":
            if not self.product_b:
                raise InputError("analysis: a correlation map needs a second product (product_b)")
            variable_b = self.variable_b or self.variable
            info_b = _product(self.product_b, variable_b)
            if not np.isclose(info_b.resolution, info.resolution):
                raise InputError(
                    f"analysis: {self.product!r} ({info.resolution:g}°) and {self.product_b!r} "
                    f"({info_b.resolution:g}°) are on different grids; regrid one first"
                )
            b0, b1 = pd.Timestamp(info_b.time_start), pd.Timestamp(info_b.time_end)
            if b1 < p0 or b0 > p1:
                raise InputError(
                    f"analysis: {self.product_b!r} ({b0:%Y-%m-%d}…{b1:%Y-%m-%d}) has no step in "
                    f"{period[0]}…{period[1]}"
                )
            product_b = self.product_b
        region, polygon = self.region, self.polygon
        if self.analysis == "region_series":
            if bool(region) == bool(polygon):
                raise InputError("analysis: an area-averaged series needs either a named region or a polygon")
            geometry = regions.region(region) if region else _polygon(polygon)
            gw, gs, ge, gn = geometry.bounds
            clipped = (max(gw, w), max(gs, s), min(ge, e), min(gn, n))
            if clipped[0] >= clipped[2] or clipped[1] >= clipped[3]:
                where = region or f"polygon {polygon[0]!r}"
                raise InputError(
                    f"analysis: {where} lies outside {self.product!r} (W,S,E,N = {list(info.bbox)})"
                )
        else:
            region = polygon = None
        req = dataclasses.replace(
            self, bbox=clipped, period=period, product_b=product_b, variable_b=variable_b,
            region=region, polygon=polygon,
        )  # fmt: skip
        req._check_size(info)
        return req

    def _check_size(self, info) -> None:
        w, s, e, n = self.bbox
        res = float(info.resolution)
        cells = max(1, round((e - w) / res)) * max(1, round((n - s) / res))
        steps = _steps(info, self.period)
        reads = cells * steps * (2 if self.analysis == "correlation" else 1)
        if self.analysis == "anomaly":
            reads += cells * int(info.n_time)  # the climatology over the whole record
        outputs = {
            "hovmoller_lat": steps * round((n - s) / res),
            "hovmoller_lon": steps * round((e - w) / res),
            "climatology": 12 * cells,
            "seasonal": 4 * cells,
            "anomaly": steps * cells,
            "correlation": 2 * cells,
            "region_series": steps,
        }[self.analysis]
        if self.analysis in MAPS and cells > MAX_MAP_CELLS:
            raise InputError(
                f"analysis: the box holds {cells:,} cells of {self.product!r}, more than {MAX_MAP_CELLS:,} "
                "per map; choose a smaller box"
            )
        if reads > MAX_READ_VALUES or outputs > MAX_OUTPUT_VALUES:
            raise InputError(
                f"analysis: {reads:,} values to read and {outputs:,} to keep, more than "
                f"{MAX_READ_VALUES:,} / {MAX_OUTPUT_VALUES:,}; choose a smaller box or a shorter period"
            )

    def geometry(self):
        """The polygon of an area-averaged series (None for the other analyses)."""
        if self.region:
            return regions.region(self.region)
        return _polygon(self.polygon) if self.polygon else None

    def where(self) -> str:
        """The region a result covers, in words."""
        if self.region:
            return self.region
        if self.polygon:
            return f"polygon {self.polygon[0]}"
        w, s, e, n = self.bbox
        return f"lon {w:g}…{e:g}, lat {s:g}…{n:g}"


def _product(name: str, variable: str):
    from catalog import api

    info = api.product_info(name)  # InputError for an unknown product
    if variable not in info.variables or variable == "flag":
        shown = ", ".join(v for v in info.variables if v != "flag")
        raise InputError(f"analysis: product {name!r} has no variable {variable!r}; it has {shown}")
    return info


def _polygon(polygon):
    name, text = polygon
    try:
        return regions.read_geojson(text)
    except InputError as err:
        raise InputError(f"analysis: polygon {name!r}: {err}") from err


def _steps(info, period) -> int:
    index = pd.date_range(info.time_start, info.time_end, freq="MS" if info.time_step == "month" else "D")
    return max(1, int(((index >= pd.Timestamp(period[0])) & (index <= pd.Timestamp(period[1]))).sum()))


# --------------------------------------------------------------------------------------------------
# computing


def _read(product: str, variable: str, bbox, period=None) -> xr.DataArray:
    from catalog import api

    da = api.open_product(product)[variable]
    w, s, e, n = bbox
    da = hovmoller.box(da, (w, e), (s, n))
    if period is not None:
        da = da.sel(time=slice(*period))
        if da.sizes["time"] == 0:
            raise InputError(f"analysis: {product!r} has no step in {period[0]}…{period[1]}")
    return da


def _with_margin(bbox, resolution: float) -> tuple[float, float, float, float]:
    w, s, e, n = bbox
    r = float(resolution)
    return max(w - r, -180.0), max(s - r, -90.0), min(e + r, 180.0), min(n + r, 90.0)


def compute(req: AnalysisRequest) -> xr.Dataset:
    """The analysis' result (loaded), attributes stating what it is and how it was computed."""
    from catalog import api

    info = api.product_info(req.product)
    if req.analysis in ("hovmoller_lat", "hovmoller_lon"):
        w, s, e, n = req.bbox
        along = req.analysis.removeprefix("hovmoller_")
        da = hovmoller.hovmoller(
            _read(req.product, req.variable, req.bbox, req.period), (w, e), (s, n), along=along
        )
        out = da.to_dataset(name=req.variable)
    elif req.analysis == "climatology":
        out = climatology.monthly_climatology(
            _read(req.product, req.variable, req.bbox, req.period)
        ).to_dataset(name=req.variable)
    elif req.analysis == "seasonal":
        out = climatology.seasonal_means(_read(req.product, req.variable, req.bbox, req.period)).to_dataset(
            name=req.variable
        )
    elif req.analysis == "anomaly":
        record = _read(req.product, req.variable, req.bbox)
        clim = climatology.monthly_climatology(record)
        out = climatology.anomalies(record.sel(time=slice(*req.period)), clim).to_dataset(name=req.variable)
    elif req.analysis == "correlation":
        a = _read(req.product, req.variable, req.bbox, req.period)
        b = _read(req.product_b, req.variable_b, req.bbox, req.period)
        out = correlation_map.correlation_map(a, b)
        if int(out["n"].max()) == 0:
            raise InputError(
                f"analysis: {req.product!r} and {req.product_b!r} have no common valid step in the box"
            )
    else:
        geometry = req.geometry()
        cropped = _read(req.product, req.variable, _with_margin(geometry.bounds, info.resolution), req.period)
        out = regions.polygon_mean(cropped, geometry).to_dataset(name=req.variable)
    out = out.compute()
    units = info.variables[req.variable].get("units", "")
    for name in out.data_vars:
        out[name].attrs = {"units": units} if name == req.variable else out[name].attrs
    if "r" in out:
        out["r"].attrs = {"units": "1", "long_name": "Pearson correlation over the common valid steps"}
        out["n"].attrs = {"units": "1", "long_name": "common valid time steps"}
    out.attrs = {
        "analysis": req.analysis,
        "description": ANALYSES[req.analysis],
        "formula": FORMULAS[req.analysis],
        "product": req.product,
        "product_title": info.title,
        "product_version": info.store_id,
        "variable": req.variable,
        "long_name": info.variables[req.variable].get("long_name", req.variable),
        "units": units,
        "where": req.where(),
        "bbox": json.dumps(list(req.bbox)),
        "period": json.dumps(list(req.period)),
        "time_step": info.time_step,
        "synthetic": int(bool(info.synthetic)),
        "request": json.dumps(req.described()),
    }
    if req.product_b:
        out.attrs["product_b"] = req.product_b
        out.attrs["variable_b"] = req.variable_b
    return out


# --------------------------------------------------------------------------------------------------
# cached


def analysis_key(req: AnalysisRequest) -> str:
    """The cache key: a hash of the request and the stored versions of the products it reads."""
    from catalog import api

    versions = []
    for name in filter(None, (req.product, req.product_b)):
        i = api.product_info(name)
        versions.append([name, i.store_id, i.time_start, i.time_end, i.n_time])
    payload = {"version": CACHE_VERSION, "request": req.as_dict(), "products": versions}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:32]


def cache_root() -> Path:
    """``<validation cache>/analysis`` (see :func:`validation.scoreboard.cache_dir`)."""
    from validation.scoreboard import cache_dir

    return cache_dir() / "analysis"


def cached_analysis(key: str) -> xr.Dataset | None:
    """The result cached under ``key`` (loaded, file closed), or None."""
    path = cache_root() / f"{key}.nc"
    if not path.exists():
        return None
    with xr.open_dataset(path) as ds:
        return ds.load()


def _store(ds: xr.Dataset, key: str) -> None:
    root = cache_root()
    root.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=root, prefix=".tmp-", suffix=".nc")
    os.close(fd)
    try:
        ds.to_netcdf(tmp)
        os.replace(tmp, root / f"{key}.nc")
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def compute_analysis(
    req: AnalysisRequest | Mapping,
    *,
    use_cache: bool = True,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[str, xr.Dataset]:
    """(key, result) of a request, from the cache when its inputs are unchanged; ``progress(done,
    total)`` before and after the computation (an exception it raises stops the run, nothing cached)."""
    req = req if isinstance(req, AnalysisRequest) else AnalysisRequest.from_dict(req)
    key = analysis_key(req)
    if use_cache and (hit := cached_analysis(key)) is not None:
        return key, hit
    if progress is not None:
        progress(0, 1)
    ds = compute(req)
    if progress is not None:
        progress(1, 1)
    _store(ds, key)
    return key, ds
