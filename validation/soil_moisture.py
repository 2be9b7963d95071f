"""Soil-moisture validation against ISMN stations (the QA4SM use case) for point-series products.

A point-series product is an ``xarray.Dataset`` with dims ``(location, time)`` and per-location
``lon``/``lat`` (e.g. time-series cells of SMAP L3, ESA CCI SM, C3S). Gridded products go through
:mod:`validation.sources` instead. Quality filters: the product family's flag rule from
``validation.yaml`` (SMAP ``retrieval_qual_flag`` bit 0, ESA CCI / C3S flag 0), ISMN flags
(``options.ismn_flags``), sensor depth (``options.depth``) and ``options.period``.
"""

from __future__ import annotations

import pandas as pd
import xarray as xr

from catalog import geo
from catalog.errors import InputError
from validation import series
from validation.analyses import SiteMatch
from validation.config import ValidationOptions


def nearest_point(product: xr.Dataset, lon: float, lat: float) -> tuple[xr.Dataset, dict]:
    """The location of a ``(location, time)`` product nearest to a station, and the pixel description."""
    if "location" not in product.dims:
        raise InputError(
            f"validation: point-series product needs a 'location' dimension, has {dict(product.sizes)}"
        )
    i, dist = geo.nearest_point(product["lon"].values, product["lat"].values, lon, lat)
    one = product.isel(location=i)
    pixel = {
        "method": "nearest",
        "pixel_lon": float(one["lon"]),
        "pixel_lat": float(one["lat"]),
        "distance_km": dist,
    }
    drop = [v for v in ("lon", "lat", "location") if v in one.coords or v in one.data_vars]
    return one.drop_vars(drop), pixel


def match_station(
    station_table: pd.DataFrame,
    station: dict,
    product: xr.Dataset,
    *,
    product_name: str,
    options: ValidationOptions,
    variable: str = "ssm",
    max_distance_km: float | None = None,
) -> SiteMatch:
    """An ISMN station (``station``: site_id, lon, lat) paired day by day with a point-series product.

    Station hours are averaged per day (``options.min_coverage`` of 24 hours), product values on the
    same UTC day averaged (e.g. SMAP AM and PM). ``max_distance_km``: ``InputError`` when the
    nearest product location is farther.
    """
    one, pixel = nearest_point(product, float(station["lon"]), float(station["lat"]))
    if max_distance_km is not None and pixel["distance_km"] > max_distance_km:
        raise InputError(
            f"validation: nearest {product_name} location is {pixel['distance_km']:.1f} km from station "
            f"{station['site_id']!r} (limit {max_distance_km} km)"
        )
    obs = series.station_series(station_table, variable, options)
    one.attrs["time_step"] = "day"
    pred = series.product_series(one, variable, product_name=product_name, options=options)
    return SiteMatch(
        site_id=str(station["site_id"]),
        variable=variable,
        product=product_name,
        obs_column=series.observed_column(station_table, variable, options),
        pairs=series.match_pairs(obs, pred, "day", options),
        time_step="day",
        pixel=pixel,
        station_table=station_table,
    )
