"""Everything the site view shows for one site and variable, computed off the request thread."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from catalog import api
from catalog.errors import InputError
from validation import bands, matching, metrics, series
from validation.config import ValidationOptions
from validation.sources import product_at_site

SITE_METRICS = ("n", "bias", "rmse", "ubrmse", "r", "r_ci_low", "r_ci_high", "rho", "kge", "nse")


@dataclasses.dataclass
class SiteView:
    """Observed series, every product at the site, matched pairs, metrics and closure."""

    network: str
    site: dict
    variable: str
    options: ValidationOptions
    obs_column: str
    obs: pd.DataFrame  # value, qc_pass on the station's own time step
    preds: dict[str, pd.Series]  # product -> series at the site
    pixels: dict[str, dict]  # product -> method, pixel_lon, pixel_lat, distance_km, time_step
    pairs: dict[str, pd.DataFrame]  # product -> obs, pred (anomalies when options.anomaly)
    metrics: pd.DataFrame  # one row per product
    closure: dict | None  # energy_balance_closure of the tower (flux networks)
    closure_points: pd.DataFrame | None  # available (Rn - G), turbulent (LE + H)
    # product -> lower, upper (its prediction interval, validation.bands) and obs (the QC-passed
    # observations on the product's steps, absolute values), indexed like preds[product]
    bands: dict[str, pd.DataFrame] = dataclasses.field(default_factory=dict)
    band_notes: dict[str, str] = dataclasses.field(default_factory=dict)  # product -> what its band is
    band_levels: dict[str, float] = dataclasses.field(default_factory=dict)  # product -> e.g. 0.9


def products_for(variable: str) -> list[str]:
    """Catalog products that hold ``variable``."""
    return [p.name for p in api.list_products() if variable in p.variables]


def load_site_view(
    network: str, site_id: str, variable: str, options: ValidationOptions, products: list[str] | None = None
) -> SiteView:
    """Read and match one site against every product holding ``variable`` (or ``products``).

    Products that do not cover the site are left out. In anomaly mode the pairs (hence the
    metrics and scatter) are anomalies from each series' mean seasonal cycle.
    """
    sites = api.sites(network)
    row = sites[sites["site_id"].astype(str) == str(site_id)]
    if row.empty:
        raise InputError(f"network {network!r} has no site {site_id!r}")
    site = row.iloc[0].to_dict()
    table = api.site_observations(network, str(site_id))
    obs = series.station_series(table, variable, options)
    preds, pixels, pairs, rows = {}, {}, {}, []
    banded, band_notes, band_levels = {}, {}, {}
    for product in products if products is not None else products_for(variable):
        info = api.product_info(product)
        bounds = bands.bound_variables(info.variables, variable)
        try:
            ds = product_at_site(
                product, variable, float(site["lon"]), float(site["lat"]), options, extra=bounds or ()
            )
        except InputError:
            continue
        pred = series.product_series(ds, variable, product_name=product, options=options)
        preds[product] = pred
        pixels[product] = {k: ds.attrs.get(k) for k in ("method", "pixel_lon", "pixel_lat", "distance_km")}
        pixels[product]["time_step"] = ds.attrs["time_step"]
        p = series.match_pairs(obs, pred, ds.attrs["time_step"], options)
        if bounds:
            banded[product] = band_frame(ds, bounds, product, options, pred.index, p["obs"])
            band_notes[product] = bands.describe(info.title, *bounds, ds[bounds[0]].attrs, info.provenance)
            band_levels[product] = bands.level_of(bounds[0], ds[bounds[0]].attrs)
        if options.anomaly:
            p = matching.paired_anomalies(p, window_days=options.anomaly_window_days)
        pairs[product] = p
        m = metrics.all_metrics(p["obs"], p["pred"], min_n=options.min_pairs)
        distance = pixels[product]["distance_km"]
        rows.append({"product": product, **{k: m[k] for k in SITE_METRICS}, "distance_km": distance})
    closure, points = _closure(table, options)
    return SiteView(
        network=network,
        site=site,
        variable=variable,
        options=options,
        obs_column=series.observed_column(table, variable, options),
        obs=obs,
        preds=preds,
        pixels=pixels,
        pairs=pairs,
        metrics=pd.DataFrame(rows, columns=["product", *SITE_METRICS, "distance_km"]),
        closure=closure,
        closure_points=points,
        bands=banded,
        band_notes=band_notes,
        band_levels=band_levels,
    )


def band_frame(ds, bounds: tuple[str, str], product: str, options, index, paired_obs) -> pd.DataFrame:
    """A product's interval at the site: ``lower``, ``upper`` (its bound variables read as its series,
    :func:`validation.series.product_series`) and ``obs`` (the paired observations, NaN on steps
    without one) on ``index``, the product series' steps."""
    lo, hi = (series.product_series(ds, b, product_name=product, options=options) for b in bounds)
    columns = {"lower": lo.reindex(index), "upper": hi.reindex(index), "obs": paired_obs.reindex(index)}
    return pd.DataFrame(columns, index=index)


def band_coverage(view: SiteView, product: str) -> tuple[int, int]:
    """``(n inside, n)``: the tower observations inside ``product``'s band
    (:func:`validation.bands.coverage`)."""
    b = view.bands[product]
    return bands.coverage(b["obs"], b["lower"], b["upper"])


def _closure(table: pd.DataFrame, options: ValidationOptions) -> tuple[dict | None, pd.DataFrame | None]:
    if not {"LE", "H", "NETRAD"} <= set(table.columns):
        return None, None
    cols = {}
    for name in ("LE", "H", "NETRAD", "G"):
        if name not in table.columns:
            cols[name] = np.zeros(len(table))
            continue
        values = table[name].astype("float64")
        qc = table.get(f"{name}_QC")
        if options.qc_min is not None and qc is not None:
            values = values.where(~(qc.astype("float64") < options.qc_min))
        cols[name] = values.to_numpy()
    closure = matching.energy_balance_closure(
        cols["LE"], cols["H"], cols["NETRAD"], cols["G"], min_n=options.min_pairs
    )
    points = pd.DataFrame(
        {"available": cols["NETRAD"] - cols["G"], "turbulent": cols["LE"] + cols["H"]},
        index=pd.DatetimeIndex(table["time"]),
    ).dropna()
    return closure, points
