"""Area-weighted means of a ``(time, lat, lon)`` product over named regions and GeoJSON polygons.

Named regions: the Natural Earth 1:110m countries (by name or ISO 3166 alpha-3 code) and continents
(the union of their countries), shipped offline in ``static/natural_earth_110m_countries.json``
(public domain). Uploaded polygons: GeoJSON text or mapping (a geometry, Feature or
FeatureCollection of Polygons / MultiPolygons; all polygons are united), lon/lat in degrees.

Each grid cell counts with the part of its area inside the polygon, not the polygon's bounding box:

    mean(t) = Σ f_c A_c v_c(t) / Σ f_c A_c  over the cells c valid at t,

A_c ∝ Δλ (sin φ_n − sin φ_s) the cell's area on the sphere and f_c the fraction of it inside. Both
are computed in Lambert's cylindrical equal-area plane (x = λ, y = sin φ), where plane areas are
proportional to areas on the sphere; polygon edges are straight in lon/lat (RFC 7946), so they are
first divided into pieces of at most ``SEGMENT_DEG`` before the mapping. References: Snyder (1987),
Map Projections — A Working Manual, USGS PP 1395 (cylindrical equal-area); Butler et al. (2016),
RFC 7946 (GeoJSON).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import shapely
import xarray as xr
from shapely.geometry import shape

from catalog.errors import InputError

REGIONS_FILE = Path(__file__).parent / "static" / "natural_earth_110m_countries.json"
SEGMENT_DEG = 0.1
POLYGONS = ("Polygon", "MultiPolygon")


@functools.cache
def _countries() -> tuple[tuple[dict, shapely.Geometry], ...]:
    with open(REGIONS_FILE, encoding="utf-8") as fh:
        collection = json.load(fh)
    return tuple((f["properties"], shape(f["geometry"])) for f in collection["features"])


def region_names() -> dict[str, list[str]]:
    """``{"country": [...], "continent": [...]}``, sorted; the names :func:`region` accepts."""
    props = [p for p, _ in _countries()]
    return {
        "country": sorted(p["name"] for p in props),
        "continent": sorted({p["continent"] for p in props}),
    }


def region(name: str) -> shapely.Geometry:
    """The polygon of a country (name or ISO alpha-3 code, case-insensitive) or a continent."""
    key = str(name).strip().lower()
    hits = [g for p, g in _countries() if key in (p["name"].lower(), p["iso_a3"].lower())]
    if not hits:
        hits = [g for p, g in _countries() if p["continent"].lower() == key]
    if not hits:
        raise InputError(f"regions: no country or continent named {name!r} (Natural Earth 1:110m names)")
    return shapely.union_all(hits)


def read_geojson(source: str | bytes | Mapping) -> shapely.Geometry:
    """The union of the polygons of a GeoJSON geometry, Feature or FeatureCollection.

    ``InputError`` for text that is not JSON, objects without polygons, invalid or empty polygons,
    and coordinates outside lon −180…180, lat −90…90."""
    if isinstance(source, (str, bytes)):
        try:
            source = json.loads(source)
        except (ValueError, UnicodeDecodeError) as err:
            raise InputError(f"regions: the upload is not GeoJSON ({err})") from err
    if not isinstance(source, Mapping):
        raise InputError("regions: GeoJSON must be an object (a geometry, Feature or FeatureCollection)")
    kind = source.get("type")
    if kind == "FeatureCollection":
        geometries = [f.get("geometry") for f in source.get("features") or [] if isinstance(f, Mapping)]
    elif kind == "Feature":
        geometries = [source.get("geometry")]
    else:
        geometries = [source]
    polygons = []
    for g in geometries:
        if not isinstance(g, Mapping) or g.get("type") not in POLYGONS:
            got = g.get("type") if isinstance(g, Mapping) else type(g).__name__
            raise InputError(f"regions: GeoJSON geometry {got!r} is not a Polygon or MultiPolygon")
        try:
            polygons.append(shape(g))
        except (ValueError, TypeError, AttributeError, IndexError, shapely.errors.GEOSException) as err:
            raise InputError(f"regions: a GeoJSON polygon cannot be read ({err})") from err
    if not polygons:
        raise InputError("regions: the GeoJSON holds no polygon")
    merged = shapely.union_all([shapely.make_valid(p) for p in polygons])
    if merged.is_empty or merged.area == 0:
        raise InputError("regions: the GeoJSON polygons enclose no area")
    w, s, e, n = merged.bounds
    if w < -180 or e > 180 or s < -90 or n > 90:
        raise InputError(f"regions: coordinates outside lon -180…180, lat -90…90 (bounds {merged.bounds})")
    return merged


def _edges(centres: np.ndarray, name: str) -> np.ndarray:
    """Cell edges of a regular axis of centres (any direction), in ascending order of the centres given."""
    if centres.size < 2:
        raise InputError(f"regions: the grid needs at least 2 cells along {name}")
    step = np.diff(centres)
    if not np.allclose(step, step[0], rtol=1e-6, atol=1e-9):
        raise InputError(f"regions: the {name} axis is not regular")
    half = abs(step[0]) / 2
    return np.stack([centres - half, centres + half], axis=-1)


def _equal_area(geometry: shapely.Geometry) -> shapely.Geometry:
    dense = shapely.segmentize(geometry, SEGMENT_DEG)
    return shapely.transform(dense, lambda xy: np.column_stack([xy[:, 0], np.sin(np.deg2rad(xy[:, 1]))]))


def cell_weights(geometry: shapely.Geometry, lat, lon) -> xr.DataArray:
    """f_c A_c per cell of the grid (``lat``, ``lon`` centres): the area of the cell inside the polygon,
    in steradians (Δλ in radians × Δ sin φ); dims ``(lat, lon)``, 0 outside."""
    lat, lon = np.asarray(lat, dtype="float64"), np.asarray(lon, dtype="float64")
    lat_edges, lon_edges = _edges(lat, "lat"), _edges(lon, "lon")
    sin_lo = np.sin(np.deg2rad(np.clip(lat_edges.min(axis=1), -90, 90)))
    sin_hi = np.sin(np.deg2rad(np.clip(lat_edges.max(axis=1), -90, 90)))
    flat = _equal_area(geometry)
    w, s, e, n = flat.bounds
    rows = np.flatnonzero((sin_hi > s) & (sin_lo < n))
    cols = np.flatnonzero((lon_edges.max(axis=1) > w) & (lon_edges.min(axis=1) < e))
    out = np.zeros((lat.size, lon.size))
    if rows.size and cols.size:
        ii, jj = np.meshgrid(rows, cols, indexing="ij")
        boxes = shapely.box(lon_edges[jj, 0], sin_lo[ii], lon_edges[jj, 1], sin_hi[ii])
        shapely.prepare(flat)
        inside = shapely.area(shapely.intersection(boxes, flat))
        out[ii, jj] = np.deg2rad(inside)  # Δλ from degrees to radians
    return xr.DataArray(out, dims=("lat", "lon"), coords={"lat": lat, "lon": lon}, attrs={"units": "sr"})


def cell_fractions(geometry: shapely.Geometry, lat, lon) -> xr.DataArray:
    """f_c: the fraction (0–1) of each cell's area on the sphere that lies inside the polygon."""
    weights = cell_weights(geometry, lat, lon)
    lat_edges, lon_edges = _edges(weights["lat"].values, "lat"), _edges(weights["lon"].values, "lon")
    band = np.abs(np.diff(np.sin(np.deg2rad(np.clip(lat_edges, -90, 90))), axis=1))[:, 0]
    width = np.deg2rad(np.abs(lon_edges[:, 1] - lon_edges[:, 0]))
    area = band[:, None] * width[None, :]
    return (weights / area).clip(0.0, 1.0).assign_attrs(units="1")


def polygon_mean(da: xr.DataArray, geometry: shapely.Geometry) -> xr.DataArray:
    """Σ f A v / Σ f A over the valid cells of ``da`` (dims ``lat``, ``lon`` and e.g. ``time``); NaN
    where no cell inside the polygon is valid. ``InputError`` when the polygon covers no cell."""
    for dim in ("lat", "lon"):
        if dim not in da.dims:
            raise InputError(f"regions: the product has no dimension {dim!r} (has {da.dims})")
    lon = da["lon"].values
    if lon.min() < -180 or lon.max() > 180:
        raise InputError("regions: the product's longitudes must lie in -180…180")
    weights = cell_weights(geometry, da["lat"].values, lon)
    if float(weights.sum()) == 0.0:
        raise InputError("regions: the polygon covers no cell of the product's grid")
    out = da.weighted(weights).mean(("lat", "lon"), skipna=True)
    covered = da.notnull().weighted(weights).sum(("lat", "lon")) > 0
    return out.where(covered).assign_attrs(da.attrs)


def region_mean(da: xr.DataArray, name: str) -> xr.DataArray:
    """:func:`polygon_mean` over a named country or continent (:func:`region`)."""
    return polygon_mean(da, region(name)).assign_attrs(region=name)
