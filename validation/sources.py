"""Reading what a validation needs through the catalog API (the only I/O of the validation)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from catalog import api
from catalog.errors import InputError
from validation import matching, series
from validation.analyses import SiteMatch
from validation.config import ValidationOptions


def product_at_site(
    product: str, variable: str, lon: float, lat: float, options: ValidationOptions, extra=()
) -> xr.Dataset:
    """The product's whole record at a station (``variable``, the ``extra`` variables, e.g. interval
    bounds, and ``flag`` when the product has one).

    ``nearest`` uses :func:`catalog.api.point_series`; ``bilinear`` interpolates level 0 with
    :func:`matching.grid_series`. attrs: ``method``, ``pixel_lon``, ``pixel_lat``, ``distance_km``,
    ``time_step``.
    """
    info = api.product_info(product)
    wanted = [variable, *extra] + (["flag"] if "flag" in info.variables and variable != "flag" else [])
    if options.spatial == "nearest":
        ds = api.point_series(product, lon, lat, wanted)
        ds.attrs["method"] = "nearest"
    else:
        ds = matching.grid_series(api.open_product(product)[wanted], lon, lat, "bilinear").load()
    ds.attrs["time_step"] = info.time_step
    return ds


def products_at_sites(
    product: str, variable: str, sites: pd.DataFrame, options: ValidationOptions
) -> dict[str, xr.Dataset | InputError]:
    """The product at every site of ``sites`` (site_id -> dataset as :func:`product_at_site`, or the
    ``InputError`` saying why not). Nearest pixels are read in one vectorised pass over the product.
    """
    info = api.product_info(product)
    ids = sites["site_id"].astype(str).tolist()
    if options.spatial != "nearest":
        out: dict[str, xr.Dataset | InputError] = {}
        for sid, (_, site) in zip(ids, sites.iterrows(), strict=True):
            try:
                out[sid] = product_at_site(product, variable, float(site["lon"]), float(site["lat"]), options)
            except InputError as exc:
                out[sid] = exc
        return out
    if variable not in info.variables:
        err = InputError(f"product {product!r} has no variable {variable!r}; it has {sorted(info.variables)}")
        return dict.fromkeys(ids, err)
    wanted = [variable] + (["flag"] if "flag" in info.variables and variable != "flag" else [])
    ds = api.open_product(product)[wanted]
    px = matching.grid_pixels_nearest(ds, sites["lon"].to_numpy(), sites["lat"].to_numpy())
    inside = px["inside"].to_numpy()
    out = {}
    if inside.any():
        picked = ds.isel(
            lat=xr.DataArray(px["ilat"].to_numpy()[inside], dims="site"),
            lon=xr.DataArray(px["ilon"].to_numpy()[inside], dims="site"),
        ).load()
        picked = picked.drop_vars([c for c in ("lat", "lon") if c in picked.coords])
        for k, row in enumerate(px[inside].itertuples()):
            one = picked.isel(site=k)
            one.attrs = {
                "method": "nearest",
                "pixel_lon": float(row.pixel_lon),
                "pixel_lat": float(row.pixel_lat),
                "distance_km": float(row.distance_km),
                "time_step": info.time_step,
            }
            out[ids[row.Index]] = one
    for i in np.flatnonzero(~inside):
        site = sites.iloc[i]
        out[ids[i]] = InputError(
            f"site {ids[i]!r} at ({float(site['lon'])}, {float(site['lat'])}) is outside product {product!r}"
            f" (bbox W,S,E,N = {info.bbox})"
        )
    return out


def match_site(
    network: str,
    site: pd.Series | dict,
    product: str,
    variable: str,
    options: ValidationOptions,
    *,
    station_table: pd.DataFrame | None = None,
    product_ds: xr.Dataset | None = None,
) -> SiteMatch:
    """Observations of one site paired with one product variable (see :func:`series.match_pairs`).

    ``product_ds``: the product at this site when already read (see :func:`products_at_sites`).
    """
    site_id = str(site["site_id"])
    table = station_table if station_table is not None else api.site_observations(network, site_id)
    obs = series.station_series(table, variable, options)
    if product_ds is None:
        product_ds = product_at_site(product, variable, float(site["lon"]), float(site["lat"]), options)
    ds = product_ds
    pred = series.product_series(ds, variable, product_name=product, options=options)
    pairs = series.match_pairs(obs, pred, ds.attrs["time_step"], options)
    return SiteMatch(
        site_id=site_id,
        variable=variable,
        product=product,
        obs_column=series.observed_column(table, variable, options),
        pairs=pairs,
        time_step=ds.attrs["time_step"],
        pixel={k: ds.attrs.get(k) for k in ("method", "pixel_lon", "pixel_lat", "distance_km")},
        station_table=table,
    )


def site_record(
    network: str, site: pd.Series | dict, products: list[str], variable: str, options: ValidationOptions
) -> tuple[pd.DataFrame, dict[str, pd.Series], dict[str, dict]]:
    """What the site view draws for one variable: the observed series (``value``, ``qc_pass``), each
    product's series at the site (on the same period), and each product's pixel description.

    Products that do not cover the site or lack the variable are left out of the returned dicts.
    """
    table = api.site_observations(network, str(site["site_id"]))
    obs = series.station_series(table, variable, options)
    preds: dict[str, pd.Series] = {}
    pixels: dict[str, dict] = {}
    for product in products:
        try:
            ds = product_at_site(product, variable, float(site["lon"]), float(site["lat"]), options)
        except InputError:
            continue
        preds[product] = series.product_series(ds, variable, product_name=product, options=options)
        pixels[product] = {k: ds.attrs.get(k) for k in ("method", "pixel_lon", "pixel_lat", "distance_km")}
        pixels[product]["time_step"] = ds.attrs["time_step"]
    return obs, preds, pixels
