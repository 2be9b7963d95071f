"""QA4SM-style soil-moisture validation: point-series products against every ISMN sensor or station.

The options of :class:`Qa4smOptions`, next to FluxLens's defaults:

- ``pairing``: ``daily_mean`` (FluxLens: the UTC daily mean of the station, kept when it covers
  ``min_coverage`` of the day's records, against the product's mean of that day) or ``nearest``
  (QA4SM: :func:`validation.matching.pair_nearest_in_time` within ``window_hours``, station or product
  as the ``temporal_reference``);
- ``scaling``: the product scaled to the station on the pairs before the metrics
  (:data:`validation.scaling.METHODS`), stated in every row;
- ``per``: ``sensor`` (one row per probe) or ``station`` (probes at the depth averaged per time stamp);
- ``quality``: the product's flag rule ``on`` (its family's rule in ``validation.yaml``), ``off``, or a
  custom rule (``{"variable": "flag", "rule": "equals", "values": [0]}`` or ``"bit_clear"`` with
  ``bit``; see :func:`validation.config.flag_keep_mask`);
- ``seasons``: metrics also per DJF, MAM, JJA, SON (scaling fitted on all pairs first).

Conventions (:data:`CONVENTIONS`): the metric columns are computed after scaling; ``bias`` is
product − reference, the opposite sign of QA4SM's ``BIAS``; ``ubrmse`` after scaling is QA4SM's
``urmsd``, while ``ubrmse_unscaled`` is FluxLens's usual ubRMSE of the product as delivered.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import numpy as np
import pandas as pd
import xarray as xr

from catalog import geo
from catalog.errors import InputError
from validation import config, matching, metrics, scaling, seasons, series
from validation import triple_collocation as tc
from validation.config import ValidationOptions
from validation.soil_moisture import nearest_point

PER = ("sensor", "station")
QUALITY_SWITCH = ("on", "off")
RULE_KINDS = ("bit_clear", "equals")

CONVENTIONS = {
    "bias": "mean(product − reference) after scaling; QA4SM's BIAS is reference − product",
    "bias_unscaled": "mean(product − reference) of the product as delivered",
    "rmse": "after scaling; QA4SM's RMSD",
    "ubrmse": "std(product − reference) after scaling; QA4SM's urmsd (always after scaling)",
    "ubrmse_unscaled": "std(product − reference) of the product as delivered (FluxLens's ubrmse)",
    "r": "Pearson R (unchanged by mean_std and linreg scaling); QA4SM's R",
    "rho": "Spearman rho; QA4SM's rho",
    "n": "number of pairs; QA4SM's n_obs",
}
"""What each result column means, and how it relates to QA4SM's output names."""


@dataclasses.dataclass(frozen=True)
class Qa4smOptions:
    """One QA4SM-style run; ``base`` carries depth, ISMN flags, coverage, ``min_pairs`` and period."""

    base: ValidationOptions = dataclasses.field(default_factory=ValidationOptions.from_config)
    pairing: str = "daily_mean"
    window_hours: float = 12.0
    temporal_reference: str = "station"
    scaling: str = "none"
    per: str = "sensor"
    quality: str | Mapping = "on"
    seasons: bool = False
    max_distance_km: float | None = None

    def __post_init__(self):
        self.base.check()
        checks = {
            "pairing": (self.pairing, matching.PAIRINGS),
            "temporal_reference": (self.temporal_reference, matching.TEMPORAL_REFERENCES),
            "scaling": (self.scaling, scaling.METHODS),
            "per": (self.per, PER),
        }
        for name, (value, allowed) in checks.items():
            if value not in allowed:
                raise InputError(f"qa4sm: {name} {value!r} is not one of {allowed}")
        if not 0 < self.window_hours <= 48:
            raise InputError(f"qa4sm: window_hours {self.window_hours} must be in (0, 48]")
        if isinstance(self.quality, str) and self.quality not in QUALITY_SWITCH:
            raise InputError(f"qa4sm: quality {self.quality!r} is 'on', 'off' or a custom rule (a mapping)")
        if not isinstance(self.quality, str):
            custom_rule(self.quality)

    def described(self) -> dict:
        """The options as stated in every result row."""
        quality = self.quality if isinstance(self.quality, str) else f"custom {dict(self.quality)}"
        return {
            "pairing": self.pairing,
            "window_hours": self.window_hours if self.pairing == "nearest" else np.nan,
            "temporal_reference": self.temporal_reference if self.pairing == "nearest" else "",
            "scaling": self.scaling,
            "quality": quality,
        }


def custom_rule(rule: Mapping) -> dict:
    """A user's product-flag rule, checked: ``variable``, ``rule`` (``bit_clear`` with ``bit``, or
    ``equals`` with ``values``) and optional ``fill`` values never kept."""
    rule = dict(rule)
    if rule.get("rule") not in RULE_KINDS:
        raise InputError(f"qa4sm: custom quality rule needs 'rule' in {RULE_KINDS}, got {rule.get('rule')!r}")
    if not isinstance(rule.get("variable"), str):
        raise InputError("qa4sm: custom quality rule needs 'variable', the product's flag variable")
    if rule["rule"] == "bit_clear" and not (isinstance(rule.get("bit"), int) and 0 <= rule["bit"] < 63):
        raise InputError(f"qa4sm: 'bit_clear' needs an integer 'bit' in 0…62, got {rule.get('bit')!r}")
    if rule["rule"] == "equals" and not rule.get("values"):
        raise InputError("qa4sm: 'equals' needs the flag 'values' to keep")
    return rule


def quality_rule(product_name: str, quality: str | Mapping) -> dict | None:
    """The flag rule a run applies to ``product_name``: ``on`` its family's rule (None when there is
    none), ``off`` None, or the custom rule."""
    if isinstance(quality, str):
        if quality not in QUALITY_SWITCH:
            raise InputError(f"qa4sm: quality {quality!r} is 'on', 'off' or a custom rule (a mapping)")
        return config.quality_rule(product_name) if quality == "on" else None
    return custom_rule(quality)


def product_records(
    one: xr.Dataset, variable: str, rule: dict | None, *, product_name: str = ""
) -> pd.Series:
    """The product's records at one location (dim ``time``, stamps as stored), NaN where the flag of
    ``rule`` (its ``variable``, else ``flag``) fails the rule."""
    if variable not in one:
        raise InputError(
            f"qa4sm: product {product_name!r} has no variable {variable!r} (has {list(one.data_vars)})"
        )
    values = np.asarray(one[variable].values, dtype="float64")
    if rule is not None:
        flag_name = next((f for f in (rule.get("variable"), "flag") if f and f in one), None)
        if flag_name is None:
            raise InputError(
                f"qa4sm: product {product_name!r} has no flag variable {rule.get('variable')!r} "
                "for its quality rule"
            )
        values = np.where(config.flag_keep_mask(one[flag_name].values, rule), values, np.nan)
    return pd.Series(values, index=pd.DatetimeIndex(one["time"].values), name=variable).sort_index()


def station_records(
    table: pd.DataFrame, options: ValidationOptions, per: str = "sensor"
) -> dict[str, pd.Series]:
    """An ISMN station's soil moisture at ``options.depth`` with flags in ``options.ismn_flags``.

    ``per="sensor"``: one series per probe, keyed ``"<sensor> <from>-<to> m"``; ``"station"``: one
    series (key ``"station"``), the mean of the probes' valid values per time stamp.
    """
    if per not in PER:
        raise InputError(f"qa4sm: per {per!r} is not one of {PER}")
    lo, hi = options.depth
    t = table[(table["depth_from"] >= lo - 1e-9) & (table["depth_to"] <= hi + 1e-9)]
    if t.empty:
        raise InputError(f"qa4sm: no ISMN sensor between {lo} and {hi} m depth")
    raw = "soil_moisture_raw" if "soil_moisture_raw" in t.columns else "soil_moisture"
    good = t["flag"].astype(str).map(lambda f: all(p.strip() in options.ismn_flags for p in f.split(",")))
    values = t[raw].astype("float64").where(good.to_numpy())
    sensor = t["sensor"].fillna("unknown") if "sensor" in t.columns else pd.Series("unknown", index=t.index)
    label = sensor.astype(str) + [
        f" {a:g}-{b:g} m" for a, b in zip(t["depth_from"], t["depth_to"], strict=True)
    ]
    frame = pd.DataFrame({"time": pd.DatetimeIndex(t["time"]), "label": label.to_numpy(), "value": values})
    if per == "station":
        out = {"station": frame.groupby("time")["value"].mean()}
    else:
        out = {k: g.set_index("time")["value"].sort_index() for k, g in frame.groupby("label", sort=True)}
    return {k: series._in_period(s.rename("obs"), options) for k, s in out.items()}


def paired(obs: pd.Series, pred: pd.Series, options: Qa4smOptions) -> pd.DataFrame:
    """Station and product records paired by ``options.pairing``; columns ``obs``, ``pred``."""
    if options.pairing == "nearest":
        out = matching.pair_nearest_in_time(
            obs,
            pred,
            reference=options.temporal_reference,
            window=pd.Timedelta(hours=options.window_hours),
        )
        return out[["obs", "pred"]]
    daily_obs = matching.to_daily(obs, min_coverage=options.base.min_coverage)
    return matching.pair(daily_obs, daily_records(pred))


def daily_records(pred: pd.Series) -> pd.Series:
    """The mean of a product's valid records on each UTC day (e.g. SMAP's AM and PM overpasses)."""
    pred = pred.dropna()
    return pred.groupby(pred.index.normalize()).mean()


def _row(o: np.ndarray, scaled: np.ndarray, p: np.ndarray, min_n: int) -> dict[str, float]:
    out = metrics.all_metrics(o, scaled, min_n=min_n)
    out["bias_unscaled"] = metrics.bias(o, p, min_n=min_n)
    out["ubrmse_unscaled"] = metrics.ubrmse(o, p, min_n=min_n)
    return out


def pair_metrics(
    pairs: pd.DataFrame, method: str, *, min_n: int = metrics.MIN_PAIRS, by_season: bool = False
) -> dict[str, dict[str, float]]:
    """:func:`validation.metrics.all_metrics` of ``obs`` against ``pred`` scaled by ``method``, with
    ``bias_unscaled`` and ``ubrmse_unscaled`` of the product as delivered (see :data:`CONVENTIONS`).

    Keyed ``"all"``, and with ``by_season`` also per season of :data:`validation.seasons.SEASONS`;
    the scaling is fitted once on all pairs (no scaling below ``min_n`` pairs, where metrics are NaN).
    """
    o, p = pairs["obs"].to_numpy("float64"), pairs["pred"].to_numpy("float64")
    scaled = scaling.scale(p, o, method) if o.size >= min_n else p
    out = {"all": _row(o, scaled, p, min_n)}
    if by_season:
        label = seasons.season_of(pairs.index)
        for season in seasons.SEASONS:
            part = label == season
            out[season] = _row(o[part], scaled[part], p[part], min_n)
    return out


def validate(
    products: Mapping[str, xr.Dataset],
    sites: pd.DataFrame,
    observations: pd.DataFrame,
    options: Qa4smOptions | None = None,
    *,
    variable: str = "ssm",
) -> pd.DataFrame:
    """Several point-series products (``(location, time)``) against one ISMN network in one run.

    ``sites``: ``site_id``, ``lon``, ``lat``; ``observations``: the ISMN table with ``site_id``. One row
    per product, station, sensor (or ``station``) and season (``all`` unless ``options.seasons``),
    with the options stated, the product location's ``distance_km`` and the metrics. Stations with
    no sensor at the depth, or farther than ``max_distance_km`` from every product location, are
    left out and listed in ``attrs["skipped"]``.
    """
    options = options or Qa4smOptions()
    rows, skipped = [], []
    for _, site in sites.iterrows():
        table = observations[observations["site_id"] == site["site_id"]]
        try:
            records = station_records(table, options.base, options.per)
        except InputError as err:
            skipped.append((str(site["site_id"]), str(err)))
            continue
        for name, product in products.items():
            one, pixel = nearest_point(product, float(site["lon"]), float(site["lat"]))
            if options.max_distance_km is not None and pixel["distance_km"] > options.max_distance_km:
                skipped.append(
                    (str(site["site_id"]), f"{name}: nearest location {pixel['distance_km']:.1f} km")
                )
                continue
            pred = product_records(one, variable, quality_rule(name, options.quality), product_name=name)
            pred = series._in_period(pred, options.base)
            for sensor, obs in records.items():
                pairs = paired(obs, pred, options)
                by_season = pair_metrics(
                    pairs, options.scaling, min_n=options.base.min_pairs, by_season=options.seasons
                )
                for season, values in by_season.items():
                    rows.append(
                        {
                            "product": name,
                            "site_id": str(site["site_id"]),
                            "sensor": sensor,
                            "season": season,
                            **options.described(),
                            "distance_km": pixel["distance_km"],
                            **values,
                        }
                    )
    out = pd.DataFrame(rows)
    out.attrs["skipped"] = skipped
    out.attrs["conventions"] = CONVENTIONS
    return out


def _location_records(product: xr.Dataset, i: int, name: str, options: Qa4smOptions, variable: str):
    one = product.isel(location=i).drop_vars([c for c in ("lon", "lat", "location") if c in product.coords])
    records = product_records(one, variable, quality_rule(name, options.quality), product_name=name)
    return daily_records(series._in_period(records, options.base))


def station_triple_collocation(
    products: Mapping[str, xr.Dataset],
    sites: pd.DataFrame,
    observations: pd.DataFrame,
    options: Qa4smOptions | None = None,
    *,
    variable: str = "ssm",
    min_n: int = tc.MIN_TRIPLETS,
) -> pd.DataFrame:
    """Triple collocation of the station (``ismn``) and two products at each station (and sensor, by
    ``options.per``) on the UTC days where all three have a daily value (the daily-mean pairing of
    the station); one row per station with :func:`validation.triple_collocation.triple_collocation`'s
    estimates named ``<quantity>_ismn`` and ``<quantity>_<product>``."""
    options = options or Qa4smOptions()
    if len(products) != 2:
        raise InputError(f"qa4sm: triple collocation takes the station and two products, got {len(products)}")
    names = ("ismn", *products)
    rows = []
    for _, site in sites.iterrows():
        table = observations[observations["site_id"] == site["site_id"]]
        try:
            records = station_records(table, options.base, options.per)
        except InputError:
            continue
        daily = {}
        distances = {}
        for name, product in products.items():
            i, distance = geo.nearest_point(
                product["lon"].values, product["lat"].values, site["lon"], site["lat"]
            )
            daily[name] = _location_records(product, i, name, options, variable)
            distances[f"distance_km_{name}"] = distance
        for sensor, obs in records.items():
            station = matching.to_daily(obs, min_coverage=options.base.min_coverage)
            frame = pd.concat({"ismn": station, **daily}, axis=1, join="inner").dropna()
            estimates = tc.triple_collocation(*(frame[n] for n in names), names=names, min_n=min_n)
            rows.append({"site_id": str(site["site_id"]), "sensor": sensor, **distances, **estimates})
    return pd.DataFrame(rows)


def product_triple_collocation_map(
    products: Mapping[str, xr.Dataset],
    options: Qa4smOptions | None = None,
    *,
    variable: str = "ssm",
    min_n: int = tc.MIN_TRIPLETS,
) -> xr.Dataset:
    """Triple collocation of three point-series products at every location of the first, each other
    product taken at its nearest location, on the UTC days where all three have a daily value;
    dims ``location`` with ``lon``/``lat`` of the first product (a map of scattered points)."""
    options = options or Qa4smOptions()
    if len(products) != 3:
        raise InputError(f"qa4sm: triple collocation takes three products, got {len(products)}")
    names = tuple(products)
    first = products[names[0]]
    columns = {n: [] for n in names}
    for k in range(first.sizes["location"]):
        lon, lat = float(first["lon"][k]), float(first["lat"][k])
        for name, product in products.items():
            i = (
                k
                if name == names[0]
                else geo.nearest_point(product["lon"].values, product["lat"].values, lon, lat)[0]
            )
            columns[name].append(_location_records(product, i, name, options, variable))
    days = pd.DatetimeIndex(sorted(set().union(*(s.index for c in columns.values() for s in c))), name="time")
    arrays = {
        n: xr.DataArray(
            np.stack([s.reindex(days).to_numpy() for s in columns[n]]),
            dims=("location", "time"),
            coords={"location": first["location"].values, "time": days},
        )
        for n in names
    }
    out = tc.triple_collocation_map(*(arrays[n] for n in names), names=names, min_n=min_n)
    return out.assign_coords(lon=("location", first["lon"].values), lat=("location", first["lat"].values))


def as_qa4sm(results: pd.DataFrame) -> pd.DataFrame:
    """Result rows under QA4SM's names and signs: ``n_obs``, ``R``, ``p_R``, ``rho``, ``RMSD``,
    ``BIAS`` (= −bias, reference − product) and ``urmsd`` (NaN for rows computed without scaling)."""
    out = results[["product", "site_id", "sensor", "season", "scaling"]].copy()
    out["n_obs"] = results["n"]
    out["R"], out["p_R"], out["rho"] = results["r"], results["r_p_value"], results["rho"]
    out["RMSD"], out["BIAS"] = results["rmse"], -results["bias"]
    out["urmsd"] = results["ubrmse"].where(results["scaling"] != "none")
    return out


# --------------------------------------------------------------------------------------------------
# through the catalog

FLAG_VARIABLES = ("flag", "retrieval_qual_flag")


def catalog_points(product: str, sites: pd.DataFrame, *, variable: str = "ssm") -> tuple[xr.Dataset, list]:
    """A gridded catalog product at the stations as a point-series product: dims ``(location, time)``,
    one location per station inside the grid (its nearest cell; ``lon``/``lat`` the cell centre), the
    variable and the product's flag variables; the ``site_id`` of each location is kept as a
    coordinate. Returns (product, [(site_id, why) left out])."""
    from catalog import api

    info = api.product_info(product)
    if variable not in info.variables:
        raise InputError(
            f"qa4sm: product {product!r} has no variable {variable!r}; it has {sorted(info.variables)}"
        )
    wanted = [variable, *[f for f in FLAG_VARIABLES if f in info.variables]]
    ds = api.open_product(product)[wanted]
    px = matching.grid_pixels_nearest(ds, sites["lon"].to_numpy(), sites["lat"].to_numpy())
    inside = px["inside"].to_numpy()
    skipped = [(str(s), f"{product}: outside the product's grid") for s in sites["site_id"][~inside]]
    if not inside.any():
        raise InputError(f"qa4sm: none of the {len(sites)} stations lies inside product {product!r}")
    ilat, ilon = px["ilat"].to_numpy()[inside], px["ilon"].to_numpy()[inside]
    picked = ds.isel(lat=xr.DataArray(ilat, dims="location"), lon=xr.DataArray(ilon, dims="location")).load()
    picked = picked.drop_vars([c for c in ("lat", "lon") if c in picked.coords])
    points = picked.assign_coords(
        location=np.arange(int(inside.sum())),
        lon=("location", px["pixel_lon"].to_numpy()[inside]),
        lat=("location", px["pixel_lat"].to_numpy()[inside]),
        site_id=("location", sites["site_id"].astype(str).to_numpy()[inside]),
    )
    return points.transpose("location", "time"), skipped


def validate_catalog(
    products, network: str, options: Qa4smOptions | None = None, *, variable: str = "ssm"
) -> pd.DataFrame:
    """:func:`validate` of catalog products (gridded, taken at the stations' nearest cells) against a
    catalog station network (ISMN-like sub-daily observations with ``sensor``, depths and flags)."""
    from catalog import api

    options = options or Qa4smOptions()
    products = [products] if isinstance(products, str) else list(products)
    if not products:
        raise InputError("qa4sm: at least one product is needed")
    sites = api.sites(network)  # InputError for an unknown network
    tables = []
    for sid in sites["site_id"].astype(str):
        table = api.site_observations(network, sid)
        if "sensor" not in table.columns:
            raise InputError(f"qa4sm: network {network!r} has no sensor column (not an ISMN-like network)")
        tables.append(table.assign(site_id=sid))
    observations = pd.concat(tables, ignore_index=True)
    results, skipped = [], []
    for name in products:  # each product with the stations inside its grid
        points, left = catalog_points(name, sites, variable=variable)
        inside = sites[sites["site_id"].astype(str).isin(points["site_id"].values)]
        part = validate({name: points.drop_vars("site_id")}, inside, observations, options, variable=variable)
        skipped += left + list(part.attrs.get("skipped", []))
        results.append(part)
    out = pd.concat(results, ignore_index=True)
    out.attrs["conventions"] = CONVENTIONS
    out.attrs["skipped"] = skipped
    return out
