"""ILAMB-style scorecard: one or more products scored against a reference, per region and IGBP class.

The reference is a station network of the catalog (FLUXNET towers, ISMN stations) or a gridded
reference product. The scores are those of :mod:`validation.ilamb_scores` (Collier et al. 2018,
"The International Land Model Benchmarking (ILAMB) System: Design, Theory, and Implementation",
JAMES 10:2731, doi:10.1029/2018MS001354): bias, RMSE, seasonal-cycle phase, interannual variability
(IAV), spatial distribution and the overall score, each in [0, 1] (1 = the product equals the
reference). How a scorecard is made:

1. **Collocation** (:class:`Collocation`). Stations: each station is paired with the product at the
   product's time step as the scoreboard pairs it (nearest pixel, QC-passed observations, the daily
   mean of sub-daily records; :func:`validation.sources.match_site` or, for point-series products,
   :func:`validation.soil_moisture.match_station`). Gridded reference: the product is taken at the
   reference's cell centres (its nearest cell; NaN outside it). Both sides are then reduced to
   **monthly means over the paired time steps only** (the product is masked where the reference is
   missing, as ILAMB does; a month is kept when ``min_coverage`` of its days are paired), since
   ILAMB's scores are defined on monthly series (the phase on the mean annual cycle, the IAV on
   departures from it). A location takes part with at least ``min_months`` paired months.
2. **Per location** x (:func:`location_scores`): s_bias(x) = exp(−|v̄_mod − v̄_ref| / crms_ref),
   s_rmse(x) = exp(−crmse / crms_ref), s_phase(x) = ½ (1 + cos(2π Δ / 12)) with Δ the shift in months
   of the annual-cycle maxima, s_iav(x) = exp(−|iav_mod − iav_ref| / iav_ref).
3. **Per region** R (:func:`region_scores`): S = Σ_x w_x s(x) / Σ_x w_x over the locations in R with a
   valid s(x) — w = 1 for stations, w = the cell's area inside R for grid cells (f_c A_c of
   :func:`validation.regions.cell_weights`) — and S_dist = 2 (1 + R) / (σ + 1/σ)² of the period-mean
   values of the locations in R (Taylor 2001, JGR 106:7183; NaN with fewer than two). Overall:
   (S_bias + 2 S_rmse + S_phase + S_iav + S_dist) / 6 over the defined scores.

Regions: ``all`` (every location), the Natural Earth continents holding a location (``continents``),
named countries or continents (``regions``), uploaded GeoJSON polygons (``polygons``) and, where the
stations give one, each IGBP class (``igbp``). Units: the variable's canonical units of
``validation.yaml`` (soil moisture m3 m-3; LE, H, Rn, G W m-2, LE and H positive upward); the scores
themselves are unitless. Scorecards are cached by their inputs (:func:`scorecard_key`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd
import shapely
import xarray as xr

from catalog.errors import FluxLensError, InputError
from validation import config, ilamb_scores, matching, regions
from validation.analyses import SiteMatch
from validation.config import ValidationOptions

CACHE_VERSION = 1
SCORE_NAMES = (*ilamb_scores.SCORES, "overall")
LOCATION_SCORES = ("bias", "rmse", "phase", "iav")
REGION_KINDS = ("all", "continent", "country", "polygon", "igbp")
ALL = "all"
OPEN_OCEAN = "Seven seas (open ocean)"
TABLE_COLUMNS = ["product", "region_kind", "region", "n_locations", *SCORE_NAMES]
LOCATION_COLUMNS = ["product", "location", "lon", "lat", "igbp", "n_months", "mean_mod", "mean_ref"]
SCORE_DEFINITIONS = {
    "bias": "exp(-|mean_mod - mean_ref| / crms_ref) per location, area/station-weighted mean",
    "rmse": "exp(-crmse / crms_ref) per location (centred RMSE), weighted mean; counted twice in overall",
    "phase": "0.5 (1 + cos(2 pi dmonths / 12)), dmonths the shift of the annual-cycle maxima",
    "iav": "exp(-|iav_mod - iav_ref| / iav_ref), iav the RMS departure from the mean annual cycle",
    "dist": "2 (1 + R) / (sigma + 1/sigma)^2 of the period-mean values over the region's locations",
    "overall": "(bias + 2 rmse + phase + iav + dist) / 6 over the defined scores",
}
REFERENCE = "Collier et al. 2018, JAMES 10:2731 (ILAMB); Taylor 2001, JGR 106:7183"


def _section() -> dict:
    return dict(config.load_config().get("scorecard") or {})


@dataclasses.dataclass(frozen=True)
class ScorecardOptions:
    """One scorecard run; ``base`` carries the matching options (spatial, coverage, QC, ISMN depth and
    flags, period). Defaults of the other fields from the ``scorecard`` section of validation.yaml."""

    base: ValidationOptions = dataclasses.field(default_factory=ValidationOptions.from_config)
    regions: tuple[str, ...] = ()  # countries or continents (Natural Earth 1:110m names or ISO a3)
    polygons: tuple[tuple[str, str], ...] = ()  # (name, GeoJSON text)
    continents: bool = True
    igbp: bool = True
    min_months: int = 12

    @classmethod
    def from_config(cls, base: ValidationOptions | Mapping | None = None, **overrides) -> ScorecardOptions:
        """Defaults from validation.yaml with ``overrides`` (None values ignored); ``base``: matching
        options or their dict (``ValidationOptions.as_dict``)."""
        values = {k: v for k, v in _section().items() if k in {f.name for f in dataclasses.fields(cls)}}
        values.update({k: v for k, v in overrides.items() if v is not None})
        unknown = set(values) - {f.name for f in dataclasses.fields(cls)} - {"base"}
        if unknown:
            raise InputError(f"scorecard: unknown options {sorted(unknown)}")
        if base is None or isinstance(base, Mapping):
            base = ValidationOptions.from_config(**dict(base or {}))
        values["regions"] = tuple(str(r) for r in values.get("regions") or ())
        polygons = values.get("polygons") or ()
        if isinstance(polygons, Mapping):
            polygons = polygons.items()
        values["polygons"] = tuple((str(n), t if isinstance(t, str) else json.dumps(t)) for n, t in polygons)
        for flag in ("continents", "igbp"):
            if flag in values:
                values[flag] = bool(values[flag])
        if "min_months" in values:
            values["min_months"] = int(values["min_months"])
        opts = cls(base=base, **values)
        opts.check()
        return opts

    def check(self) -> None:
        """``InputError`` for an unknown region, an unreadable polygon, repeated names or too few months."""
        self.base.check()
        if self.min_months < 12:
            raise InputError(f"scorecard: min_months {self.min_months} must be at least 12 (an annual cycle)")
        for name in self.regions:
            regions.region(name)
        names = [n for n, _ in self.polygons]
        if len(set(names)) != len(names) or any(not n.strip() for n in names):
            raise InputError(f"scorecard: polygon names must be unique and not empty, got {names}")
        for name, text in self.polygons:
            try:
                regions.read_geojson(text)
            except InputError as err:
                raise InputError(f"scorecard: polygon {name!r}: {err}") from err

    def as_dict(self) -> dict:
        """Plain JSON-able dict (job requests, cache keys, CSV headers)."""
        return {
            "base": self.base.as_dict(),
            "regions": list(self.regions),
            "polygons": [[n, t] for n, t in self.polygons],
            "continents": self.continents,
            "igbp": self.igbp,
            "min_months": self.min_months,
        }

    def described(self) -> dict:
        """:meth:`as_dict` with each polygon's GeoJSON replaced by its SHA-256 (for headers)."""
        out = self.as_dict()
        out["polygons"] = [
            [n, "sha256:" + hashlib.sha256(t.encode()).hexdigest()[:16]] for n, t in self.polygons
        ]
        return out


@dataclasses.dataclass
class Collocation:
    """Monthly product (``mod``) and reference (``ref``) means at the reference's locations, both
    ``(location, time)`` and valid at the same places; ``locations``: ``location``, ``lon``, ``lat``,
    ``igbp``, ``weight`` (1 for a station; the cell's area in sr for a grid cell); ``grid``: the
    reference grid's (lat, lon) centres for grid cells, None for stations; ``skipped``: locations
    left out and why."""

    mod: xr.DataArray
    ref: xr.DataArray
    locations: pd.DataFrame
    grid: tuple[np.ndarray, np.ndarray] | None = None
    skipped: list[tuple[str, str]] = dataclasses.field(default_factory=list)

    @property
    def kind(self) -> str:
        return "stations" if self.grid is None else "gridded"


# --------------------------------------------------------------------------------------------------
# collocation


def monthly_pairs(pairs: pd.DataFrame, time_step: str, *, min_coverage: float = 0.5) -> pd.DataFrame:
    """Monthly means of paired ``obs``/``pred`` over the paired time steps only.

    Monthly pairs are returned on month starts; daily pairs are averaged per calendar month, a month
    kept when its paired days are at least ``min_coverage`` × the days of the month."""
    pairs = pairs[["obs", "pred"]].dropna()
    if time_step == "month":
        out = pairs.copy()
        out.index = pd.DatetimeIndex(out.index).to_period("M").to_timestamp()
        return out.groupby(level=0).mean()
    if time_step != "day":
        raise InputError(f"scorecard: unknown time step {time_step!r} (expected 'day' or 'month')")
    if pairs.empty:
        return pd.DataFrame({"obs": [], "pred": []}, index=pd.DatetimeIndex([], name="time"))
    grouped = pairs.resample("MS")
    mean, count = grouped.mean(), grouped["obs"].count()
    keep = count.to_numpy() >= min_coverage * mean.index.days_in_month.to_numpy()
    return mean[keep]


def _arrays(series: dict[str, pd.DataFrame]) -> tuple[xr.DataArray, xr.DataArray]:
    months = pd.DatetimeIndex(sorted(set().union(*(s.index for s in series.values()))), name="time")
    ids = list(series)
    obs = np.stack([series[i]["obs"].reindex(months).to_numpy("float64") for i in ids])
    pred = np.stack([series[i]["pred"].reindex(months).to_numpy("float64") for i in ids])
    coords = {"location": ids, "time": months}
    return (
        xr.DataArray(pred, dims=("location", "time"), coords=coords),
        xr.DataArray(obs, dims=("location", "time"), coords=coords),
    )


def station_collocation(
    matches: Mapping[str, SiteMatch | Exception], sites: pd.DataFrame, options: ScorecardOptions
) -> Collocation:
    """:class:`Collocation` of per-station matches (site_id → :class:`SiteMatch`, or the error why the
    station could not be matched). Stations with fewer than ``options.min_months`` paired months are
    left out (``skipped``); ``InputError`` when none is left, giving the most frequent reasons."""
    series, skipped = {}, []
    for sid, match in matches.items():
        if isinstance(match, Exception):
            skipped.append((sid, str(match)))
            continue
        monthly = monthly_pairs(match.pairs, match.time_step, min_coverage=options.base.min_coverage)
        if len(monthly) < options.min_months:
            skipped.append((sid, f"{len(monthly)} paired months (at least {options.min_months} needed)"))
            continue
        series[sid] = monthly
    if not series:
        raise InputError(
            f"scorecard: no station has {options.min_months} paired months with the product"
            f"{_reasons(skipped)}"
        )
    mod, ref = _arrays(series)
    table = sites.assign(site_id=sites["site_id"].astype(str)).set_index("site_id")
    rows = table.loc[list(series)]
    igbp = rows["igbp"] if "igbp" in rows else pd.Series(np.nan, index=rows.index)
    locations = pd.DataFrame(
        {
            "location": list(series),
            "lon": rows["lon"].astype("float64").to_numpy(),
            "lat": rows["lat"].astype("float64").to_numpy(),
            "igbp": [str(v) if isinstance(v, str) and v.strip() else None for v in igbp],
            "weight": 1.0,
        }
    )
    return Collocation(mod, ref, locations, None, skipped)


def point_product_matches(
    product: xr.Dataset,
    product_name: str,
    sites: pd.DataFrame,
    observations: pd.DataFrame,
    options: ScorecardOptions,
    *,
    variable: str = "ssm",
    max_distance_km: float | None = None,
) -> dict[str, SiteMatch | Exception]:
    """Matches of a point-series product (``(location, time)``, e.g. time-series cells of SMAP L3,
    ESA CCI SM, C3S) with the stations of an in-memory ISMN table (:func:`validation.soil_moisture.
    match_station`: the product family's flag rule applies, as in the scoreboard)."""
    from validation.soil_moisture import match_station

    out: dict[str, SiteMatch | Exception] = {}
    for _, site in sites.iterrows():
        sid = str(site["site_id"])
        table = observations[observations["site_id"].astype(str) == sid]
        try:
            out[sid] = match_station(
                table, site.to_dict(), product, product_name=product_name, options=options.base,
                variable=variable, max_distance_km=max_distance_km,
            )  # fmt: skip
        except FluxLensError as err:
            out[sid] = err
    return out


def _monthly_grid(da: xr.DataArray, time_step: str, min_coverage: float) -> xr.DataArray:
    da = da.astype("float64")
    if time_step == "month":
        return da.resample(time="MS").mean()
    mean = da.resample(time="MS").mean()
    count = da.notnull().resample(time="MS").sum()
    days = xr.DataArray(
        pd.DatetimeIndex(mean["time"].values).days_in_month, dims="time", coords={"time": mean["time"]}
    )
    return mean.where(count >= min_coverage * days)


def _in_period(da: xr.DataArray, period) -> xr.DataArray:
    if period is None:
        return da
    start, end = (pd.Timestamp(p) for p in period)
    return da.sel(time=slice(start, end + pd.Timedelta(days=1) - pd.Timedelta(seconds=1)))


def _half_step(centres: np.ndarray) -> float:
    return abs(float(centres[1] - centres[0])) / 2 if centres.size > 1 else 0.5


def cell_area(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """A_c = Δλ (sin φ_n − sin φ_s) in sr of the cells of a regular grid, shape (lat, lon)."""
    hlat, hlon = _half_step(lat), _half_step(lon)
    band = np.abs(
        np.sin(np.deg2rad(np.clip(lat + hlat, -90, 90))) - np.sin(np.deg2rad(np.clip(lat - hlat, -90, 90)))
    )
    return band[:, None] * np.full(lon.size, np.deg2rad(2 * hlon))[None, :]


def grid_collocation(
    product: xr.DataArray,
    reference: xr.DataArray,
    options: ScorecardOptions,
    *,
    product_step: str = "day",
    reference_step: str = "day",
) -> Collocation:
    """:class:`Collocation` of a gridded product (``(time, lat, lon)``) with a gridded reference.

    The product is taken at each reference cell centre from its nearest cell (NaN where the centre
    lies outside the product's grid); both are cut to ``options.base.period``, reduced to monthly means
    (:func:`_monthly_grid`, coverage ``options.base.min_coverage``), compared on their common months and
    masked where either is missing. Cells with fewer than ``options.min_months`` months are left out.
    ``InputError`` when the grids do not overlap in space or time."""
    for da, what in ((product, "product"), (reference, "reference")):
        missing = {"time", "lat", "lon"} - set(da.dims)
        if missing:
            raise InputError(
                f"scorecard: the gridded {what} lacks dimension(s) {sorted(missing)} (has {da.dims})"
            )
    period = options.base.period
    mod = _monthly_grid(_in_period(product, period), product_step, options.base.min_coverage)
    ref = _monthly_grid(_in_period(reference, period), reference_step, options.base.min_coverage)
    months = np.intersect1d(mod["time"].values, ref["time"].values)
    if months.size == 0:
        raise InputError("scorecard: the product and the reference have no month in common; nothing to score")
    mod, ref = mod.sel(time=months), ref.sel(time=months).load()
    plat, plon = product["lat"].values, product["lon"].values
    rlat, rlon = ref["lat"].values, ref["lon"].values
    inside_lat = (rlat >= plat.min() - _half_step(plat)) & (rlat <= plat.max() + _half_step(plat))
    inside_lon = (rlon >= plon.min() - _half_step(plon)) & (rlon <= plon.max() + _half_step(plon))
    if not (inside_lat.any() and inside_lon.any()):
        raise InputError("scorecard: the product's grid does not overlap the reference's; nothing to score")
    sampled = mod.sel(
        lat=xr.DataArray(rlat, dims="lat"), lon=xr.DataArray(rlon, dims="lon"), method="nearest"
    )
    sampled = sampled.assign_coords(lat=rlat, lon=rlon).load()
    inside = xr.DataArray(
        inside_lat[:, None] & inside_lon[None, :], dims=("lat", "lon"), coords={"lat": rlat, "lon": rlon}
    )
    sampled = sampled.where(inside)
    both = sampled.notnull() & ref.notnull()
    sampled, ref = sampled.where(both), ref.where(both)
    area = xr.DataArray(cell_area(rlat, rlon), dims=("lat", "lon"), coords={"lat": rlat, "lon": rlon})
    n_months = both.sum("time")
    keep = (n_months >= options.min_months).stack(location=("lat", "lon"))
    if not bool(keep.any()):
        raise InputError(
            f"scorecard: no reference cell has {options.min_months} months with both the product and the "
            f"reference valid (at most {int(n_months.max())}); nothing to score"
        )
    stack = {"location": ("lat", "lon")}
    mod_s = sampled.transpose("lat", "lon", "time").stack(stack).transpose("location", "time")[keep.values]
    ref_s = ref.transpose("lat", "lon", "time").stack(stack).transpose("location", "time")[keep.values]
    lats = mod_s["lat"].values.astype("float64")
    lons = mod_s["lon"].values.astype("float64")
    ids = [f"{la:.4f},{lo:.4f}" for la, lo in zip(lats, lons, strict=True)]
    weights = area.stack(stack)[keep.values].values

    def plain(da):
        return xr.DataArray(da.values, dims=("location", "time"), coords={"location": ids, "time": months})

    locations = pd.DataFrame({"location": ids, "lon": lons, "lat": lats, "igbp": None, "weight": weights})
    n_left = int((~keep).sum() - (n_months == 0).sum())
    skipped = [("cells", f"{n_left} cell(s) with 1-{options.min_months - 1} common months")] if n_left else []
    return Collocation(plain(mod_s), plain(ref_s), locations, (rlat, rlon), skipped)


# --------------------------------------------------------------------------------------------------
# scores


def location_scores(col: Collocation) -> pd.DataFrame:
    """Per location: ``n_months``, ``mean_mod``, ``mean_ref`` (period means of the masked series) and
    the ILAMB scores s_bias, s_rmse, s_phase, s_iav (:mod:`validation.ilamb_scores`)."""
    mod, ref = col.mod, col.ref
    out = col.locations[["location", "lon", "lat", "igbp"]].copy()
    both = mod.notnull() & ref.notnull()
    out["n_months"] = both.sum("time").values.astype(int)
    out["mean_mod"] = mod.where(both).mean("time").values
    out["mean_ref"] = ref.where(both).mean("time").values
    funcs = {
        "bias": ilamb_scores.bias_score,
        "rmse": ilamb_scores.rmse_score,
        "phase": ilamb_scores.phase_score,
        "iav": ilamb_scores.iav_score,
    }
    for name, func in funcs.items():
        out[name] = func(mod, ref).reindex(location=out["location"].tolist()).values
    return out.reset_index(drop=True)


def region_scores(scores: pd.DataFrame, weights: np.ndarray) -> dict[str, float]:
    """The scores of a region: S = Σ w s / Σ w over the locations with w > 0 and a valid s, S_dist of
    their period means, and the overall score; ``n_locations`` counts the locations with w > 0."""
    w = np.asarray(weights, dtype="float64")
    inside = w > 0
    part = scores[inside]
    wd = xr.DataArray(w[inside], dims="location")
    out: dict[str, float] = {"n_locations": int(inside.sum())}
    for name in LOCATION_SCORES:
        out[name] = ilamb_scores.spatial_mean(
            xr.DataArray(part[name].to_numpy("float64"), dims="location"), wd
        )
    out["dist"] = ilamb_scores.spatial_distribution_score(
        xr.DataArray(part["mean_mod"].to_numpy("float64"), dims="location"),
        xr.DataArray(part["mean_ref"].to_numpy("float64"), dims="location"),
        wd,
    )
    out["overall"] = ilamb_scores.overall_score({k: out[k] for k in ilamb_scores.SCORES})
    return out


def _points_in(geometry: shapely.Geometry, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    return shapely.intersects_xy(geometry, lon, lat)


def region_weights(col: Collocation, geometry: shapely.Geometry) -> np.ndarray:
    """w per location for a region: 1 for a station inside it, the cell's area inside it (sr) for a
    grid cell, 0 elsewhere."""
    lon, lat = col.locations["lon"].to_numpy(), col.locations["lat"].to_numpy()
    if col.grid is None:
        return _points_in(geometry, lon, lat).astype("float64")
    glat, glon = col.grid
    cw = regions.cell_weights(geometry, glat, glon)
    return cw.sel(lat=xr.DataArray(lat, dims="p"), lon=xr.DataArray(lon, dims="p")).values


def _continents_of(col: Collocation) -> list[str]:
    lon, lat = col.locations["lon"].to_numpy(), col.locations["lat"].to_numpy()
    names = [c for c in regions.region_names()["continent"] if c != OPEN_OCEAN]
    return [c for c in names if _points_in(regions.region(c), lon, lat).any()]


def region_list(col: Collocation, options: ScorecardOptions) -> list[tuple[str, str, np.ndarray]]:
    """(kind, name, weights) of every row of the scorecard, in order: all, continents, named regions,
    polygons, IGBP classes."""
    rows = [("all", ALL, col.locations["weight"].to_numpy("float64"))]
    if options.continents:
        rows += [("continent", c, region_weights(col, regions.region(c))) for c in _continents_of(col)]
    continents = set(regions.region_names()["continent"])
    for name in options.regions:
        kind = "continent" if name.strip().lower() in {c.lower() for c in continents} else "country"
        if any(k == kind and n.lower() == name.strip().lower() for k, n, _ in rows):
            continue
        rows.append((kind, name, region_weights(col, regions.region(name))))
    for name, text in options.polygons:
        rows.append(("polygon", name, region_weights(col, regions.read_geojson(text))))
    if options.igbp:
        igbp = col.locations["igbp"]
        for cls in sorted({v for v in igbp if isinstance(v, str)}):
            rows.append(("igbp", cls, (igbp == cls).to_numpy().astype("float64")))
    return rows


class IlambScorecard:
    """The ILAMB scorecard analysis of one product against one reference (see the module docstring).

    Needs: the product and the reference collocated at the reference's locations
    (:class:`Collocation`: stations or grid cells), on monthly means of the paired time steps, at
    least ``min_months`` (≥ 12, one annual cycle) per location; per-station ``igbp`` for the IGBP
    rows; no other station variable. Gives: one row per region (:data:`REGION_KINDS`) with the
    number of locations and every score of :data:`SCORE_NAMES`."""

    name = "ilamb_scorecard"
    references = ("stations", "gridded")
    time_step = "month"
    station_variables: tuple[str, ...] = ()
    scores = SCORE_NAMES

    def __init__(self, options: ScorecardOptions | None = None):
        self.options = options or ScorecardOptions.from_config()

    def has_inputs(self, col: Collocation) -> bool:
        """Whether the collocation holds a location with ``min_months`` paired months."""
        both = col.mod.notnull() & col.ref.notnull()
        return bool((both.sum("time") >= self.options.min_months).any())

    def columns(self) -> list[str]:
        return ["region_kind", "region", "n_locations", *self.scores]

    def __call__(self, col: Collocation) -> tuple[pd.DataFrame, pd.DataFrame]:
        """(regions × scores table, per-location scores)."""
        if not self.has_inputs(col):
            raise InputError(f"scorecard: no location has {self.options.min_months} paired months")
        per_location = location_scores(col)
        rows = []
        for kind, name, weights in region_list(col, self.options):
            rows.append({"region_kind": kind, "region": name, **region_scores(per_location, weights)})
        table = pd.DataFrame(rows).reindex(columns=self.columns())
        return table, per_location


# --------------------------------------------------------------------------------------------------
# the scorecard


@dataclasses.dataclass
class Scorecard:
    """A scorecard: ``table`` (one row per product and region: :data:`TABLE_COLUMNS`), ``locations``
    (per-location scores of every product) and ``meta`` (products and their versions, reference,
    variable, units, period, options, skipped locations)."""

    table: pd.DataFrame
    locations: pd.DataFrame
    meta: dict
    key: str = ""
    cached: bool = False


def _period_of(col: Collocation) -> tuple[str, str]:
    valid = (col.mod.notnull() & col.ref.notnull()).any("location")
    months = pd.DatetimeIndex(col.mod["time"].values[valid.values])
    return f"{months.min():%Y-%m}", f"{months.max():%Y-%m}"


def build_scorecard(
    collocations: Mapping[str, Collocation],
    *,
    variable: str,
    reference: str,
    options: ScorecardOptions,
    product_versions: Mapping[str, str] | None = None,
    units: str | None = None,
) -> Scorecard:
    """The scorecard of already collocated products (product name → :class:`Collocation`)."""
    spec = config.variable_spec(variable)
    analysis = IlambScorecard(options)
    tables, locations, periods, skipped = [], [], {}, {}
    kinds = {c.kind for c in collocations.values()}
    for product, col in collocations.items():
        table, per_location = analysis(col)
        tables.append(table.assign(product=product))
        locations.append(per_location.assign(product=product))
        periods[product] = _period_of(col)
        skipped[product] = [list(s) for s in col.skipped]
    table = pd.concat(tables, ignore_index=True).reindex(columns=TABLE_COLUMNS)
    locs = pd.concat(locations, ignore_index=True)
    locs = locs.reindex(columns=[*LOCATION_COLUMNS, *LOCATION_SCORES])
    start = min(p[0] for p in periods.values())
    end = max(p[1] for p in periods.values())
    meta = {
        "analysis": analysis.name,
        "products": list(collocations),
        "product_versions": dict(product_versions or {}),
        "reference": reference,
        "reference_kind": kinds.pop() if len(kinds) == 1 else "mixed",
        "variable": variable,
        "long_name": spec["long_name"],
        "units": units or spec["units"],
        "period": [start, end],
        "period_per_product": {k: list(v) for k, v in periods.items()},
        "requested_period": list(options.base.period) if options.base.period else None,
        "time_step": "month (means of the paired time steps)",
        "options": options.described(),
        "skipped": skipped,
        "score_definitions": SCORE_DEFINITIONS,
        "references": REFERENCE,
    }
    return Scorecard(table, locs, meta)


# --------------------------------------------------------------------------------------------------
# through the catalog, cached


UNIT_ALIASES = {
    "m3/m3": "m3 m-3",
    "m**3/m**3": "m3 m-3",
    "cm**3/cm**3": "m3 m-3",
    "w/m2": "w m-2",
    "w m**-2": "w m-2",
}


def _units(text) -> str:
    t = " ".join(str(text or "").strip().lower().split())
    return UNIT_ALIASES.get(t, t)


def _plan(products, variable: str, reference: str, options: ScorecardOptions) -> dict:
    """Every check that needs no data read, and what the run needs: ``InputError`` for no or repeated
    products, an unknown product, reference or variable, different units, and a reference with no
    overlap in time or space."""
    from catalog import api

    products = [str(p) for p in products or []]
    if not products:
        raise InputError("scorecard: at least one product is needed")
    if len(set(products)) != len(products):
        raise InputError(f"scorecard: products repeated in {products}")
    infos = {p: api.product_info(p) for p in products}  # InputError for an unknown product
    spec = config.variable_spec(variable)  # InputError for a variable that cannot be validated
    for name, info in infos.items():
        if variable not in info.variables:
            raise InputError(
                f"scorecard: product {name!r} has no variable {variable!r}; "
                f"it has {', '.join(info.variables)}"
            )
        have = info.variables[variable].get("units")
        if have and _units(have) != _units(spec["units"]):
            raise InputError(
                f"scorecard: product {name!r} gives {variable} in {have!r}, not {spec['units']!r}"
            )
    networks = api.list_networks()
    if reference in networks:
        kind = "stations"
        net = api.network_info(reference)
        sites = api.sites(reference)
        ref_version = [reference, net.get("store_id", ""), net.get("n_sites")]
        for name, info in infos.items():
            label = f"scorecard {name} {variable} vs {reference}"
            start, end = matching.validation_window(
                info.time_start,
                info.time_end,
                info.time_step,
                options.base.period,
                product=f"product {name!r}",
            )
            matching.require_overlap(sites, start, end, label=label)
            w, s, e, n = info.bbox
            lon, lat = sites["lon"].astype(float), sites["lat"].astype(float)
            if not ((lon >= w) & (lon <= e) & (lat >= s) & (lat <= n)).any():
                raise InputError(
                    f"{label}: none of the {len(sites)} sites lies inside the product "
                    f"(bbox W,S,E,N = {info.bbox}); nothing to score"
                )
    elif reference in {i.name for i in api.list_products()}:
        kind = "gridded"
        if reference in infos:
            raise InputError(f"scorecard: product {reference!r} cannot be its own reference")
        ref = api.product_info(reference)
        if variable not in ref.variables:
            raise InputError(
                f"scorecard: reference product {reference!r} has no variable {variable!r}; "
                f"it has {', '.join(ref.variables)}"
            )
        ref_units = ref.variables[variable].get("units")
        ref_version = [reference, ref.store_id, ref.time_start, ref.time_end, ref.n_time]
        rw, rs, re_, rn = ref.bbox
        for name, info in infos.items():
            label = f"scorecard {name} {variable} vs {reference}"
            have = info.variables[variable].get("units")
            if have and ref_units and _units(have) != _units(ref_units):
                raise InputError(f"{label}: the product gives {have!r}, the reference {ref_units!r}")
            r0, r1 = matching.validation_window(
                ref.time_start,
                ref.time_end,
                ref.time_step,
                options.base.period,
                product=f"reference {reference!r}",
            )
            p0, p1 = matching.validation_window(info.time_start, info.time_end, info.time_step, None)
            if p1 < r0 or p0 > r1:
                raise InputError(
                    f"{label}: the product ({p0:%Y-%m-%d}…{p1:%Y-%m-%d}) and the reference "
                    f"({r0:%Y-%m-%d}…{r1:%Y-%m-%d}) do not overlap in time; nothing to score"
                )
            w, s, e, n = info.bbox
            if e <= rw or w >= re_ or n <= rs or s >= rn:
                raise InputError(
                    f"{label}: the product (bbox {info.bbox}) and the reference (bbox {ref.bbox}) do not "
                    "overlap in space; nothing to score"
                )
    else:
        known_products = ", ".join(sorted(i.name for i in api.list_products())) or "none"
        raise InputError(
            f"scorecard: unknown reference {reference!r}: neither a station network "
            f"({', '.join(networks) or 'none'}) nor a product ({known_products})"
        )
    versions = {p: i.store_id for p, i in infos.items()}
    payload = {
        "version": CACHE_VERSION,
        "products": [[p, i.store_id, i.time_start, i.time_end, i.n_time] for p, i in infos.items()],
        "reference": [kind, *ref_version],
        "variable": variable,
        "options": options.as_dict(),
    }
    key = hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:32]
    return {"products": products, "infos": infos, "kind": kind, "versions": versions, "key": key}


def scorecard_key(products, variable: str, reference: str, options: ScorecardOptions | None = None) -> str:
    """The cache key of :func:`compute_scorecard` with these arguments (hash of the products' and the
    reference's stored versions, the variable and the options, period included)."""
    return _plan(products, variable, reference, options or ScorecardOptions.from_config())["key"]


def cache_root() -> Path:
    """``<validation cache>/scorecard`` (see :func:`validation.scoreboard.cache_dir`)."""
    from validation.scoreboard import cache_dir

    return cache_dir() / "scorecard"


def cached_scorecard(key: str) -> Scorecard | None:
    """The scorecard cached under ``key``, or None."""
    folder = cache_root() / key
    files = [folder / n for n in ("table.parquet", "locations.parquet", "meta.json")]
    if not all(f.exists() for f in files):
        return None
    table, locations = pd.read_parquet(files[0]), pd.read_parquet(files[1])
    return Scorecard(table, locations, json.loads(files[2].read_text()), key, cached=True)


def _store(card: Scorecard) -> None:
    root = cache_root()
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=root, prefix=".tmp-"))
    try:
        card.table.to_parquet(tmp / "table.parquet", index=False)
        card.locations.to_parquet(tmp / "locations.parquet", index=False)
        (tmp / "meta.json").write_text(json.dumps(card.meta, default=str))
        try:
            os.replace(tmp, root / card.key)
        except OSError:  # computed meanwhile by another process: keep that one
            if not (root / card.key).exists():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _catalog_station_matches(product, variable, network, sites, options, tick) -> dict:
    from validation import sources

    at_sites = sources.products_at_sites(product, variable, sites, options.base)
    out: dict[str, SiteMatch | Exception] = {}
    for _, site in sites.iterrows():
        sid = str(site["site_id"])
        ds = at_sites[sid]
        if isinstance(ds, Exception):
            out[sid] = ds
        else:
            try:
                out[sid] = sources.match_site(network, site, product, variable, options.base, product_ds=ds)
            except FluxLensError as err:
                out[sid] = err
        tick()
    return out


def _catalog_grid(product: str, variable: str, reference: str, options: ScorecardOptions) -> Collocation:
    from catalog import api

    info, ref_info = api.product_info(product), api.product_info(reference)
    w, s, e, n = (
        max(a, b) if i < 2 else min(a, b)
        for i, (a, b) in enumerate(zip(info.bbox, ref_info.bbox, strict=True))
    )
    ref = api.open_product(reference)[variable].sel(lat=slice(n, s), lon=slice(w, e))
    if ref.sizes["lat"] == 0 or ref.sizes["lon"] == 0:
        ref = api.open_product(reference)[variable].sel(lat=slice(s, n), lon=slice(w, e))
    mod = api.open_product(product)[variable]
    return grid_collocation(mod, ref, options, product_step=info.time_step, reference_step=ref_info.time_step)


def compute_scorecard(
    products,
    variable: str,
    reference: str,
    *,
    options: ScorecardOptions | None = None,
    use_cache: bool = True,
    progress: Callable[[int, int], None] | None = None,
) -> Scorecard:
    """The scorecard of catalog ``products`` (a name or a list) for ``variable`` against ``reference``
    (a station network or a gridded product of the catalog), served from the cache when its inputs
    are unchanged. ``progress(done, total)``: per station (or per product against a gridded
    reference); an exception it raises stops the run and nothing is cached."""
    from catalog import api

    options = options or ScorecardOptions.from_config()
    products = [products] if isinstance(products, str) else list(products)
    plan = _plan(products, variable, reference, options)
    if use_cache and (hit := cached_scorecard(plan["key"])) is not None:
        return hit
    collocations = {}
    if plan["kind"] == "stations":
        sites = api.sites(reference)
        total, done = len(sites) * len(products), [0]

        def tick():
            done[0] += 1
            if progress is not None:
                progress(done[0], total)

        for product in products:
            matches = _catalog_station_matches(product, variable, reference, sites, options, tick)
            try:
                collocations[product] = station_collocation(matches, sites, options)
            except InputError as err:
                raise InputError(f"scorecard {product} {variable} vs {reference}: {_bare(err)}") from err
    else:
        for k, product in enumerate(products, 1):
            try:
                collocations[product] = _catalog_grid(product, variable, reference, options)
            except InputError as err:
                raise InputError(f"scorecard {product} {variable} vs {reference}: {_bare(err)}") from err
            if progress is not None:
                progress(k, len(products))
    card = build_scorecard(
        collocations,
        variable=variable,
        reference=reference,
        options=options,
        product_versions=plan["versions"],
    )
    card.key = plan["key"]
    _store(card)
    return card


def _bare(err: Exception) -> str:
    return str(err).removeprefix("scorecard: ")


def _reasons(skipped: list[tuple[str, str]]) -> str:
    counts = pd.Series([why for _, why in skipped]).value_counts() if skipped else pd.Series(dtype=int)
    parts = [f"{n} location(s): {why}" for why, n in counts.head(3).items()]
    return f" ({'; '.join(parts)})" if parts else ""


# --------------------------------------------------------------------------------------------------
# products × variables


@dataclasses.dataclass
class ScorecardSet:
    """The scorecards of several variables against one reference: ``cards`` (variable → scorecard, in
    the order asked) and ``skipped`` (variable → why it has no scorecard)."""

    cards: dict[str, Scorecard]
    skipped: dict[str, str] = dataclasses.field(default_factory=dict)

    @property
    def products(self) -> list[str]:
        seen: dict[str, None] = {}
        for card in self.cards.values():
            seen.update(dict.fromkeys(card.meta["products"]))
        return list(seen)

    def overview(self, score: str = "overall", region: str = ALL) -> pd.DataFrame:
        """``score`` of region ``region`` per product (rows) and variable (columns); NaN where a
        product has no such variable."""
        index = pd.Index(self.products, name="product")
        out = pd.DataFrame(index=index, columns=list(self.cards), dtype=float)
        for variable, card in self.cards.items():
            rows = card.table[card.table["region"] == region]
            out.loc[rows["product"].to_numpy(), variable] = rows[score].to_numpy(dtype=float)
        return out


def relative_scores(scores: pd.DataFrame) -> pd.DataFrame:
    """ILAMB's relative scale: each column's scores as departures from their mean over the products
    (rows), in standard deviations,

        z_p = (S_p − mean_q S_q) / sd_q S_q   (population standard deviation over the products q),

    NaN where fewer than two products have a score or all are equal. The overview of ILAMB normalises
    scores across the models compared this way, so a colour says "better or worse than the others",
    not how good a product is (Collier et al. 2018, JAMES 10:2731: the relative scale of its
    overview table)."""
    values = scores.astype(float)
    mean = values.mean(axis=0, skipna=True)
    sd = values.std(axis=0, ddof=0, skipna=True)
    count = values.notna().sum(axis=0)
    usable = (count >= 2) & (sd > 0)
    z = (values - mean) / sd.where(usable)
    return z.where(values.notna())


def products_with(products, variable: str) -> list[str]:
    """The products among ``products`` that hold ``variable``."""
    from catalog import api

    return [p for p in products if variable in api.product_info(p).variables]


def compute_scorecards(
    products,
    variables,
    reference: str,
    *,
    options: ScorecardOptions | None = None,
    use_cache: bool = True,
    progress: Callable[[int, int], None] | None = None,
) -> ScorecardSet:
    """:func:`compute_scorecard` for each of ``variables`` with the ``products`` that hold it. A
    variable no product holds, or whose scorecard cannot be made (no overlap, too few months), is
    recorded in ``skipped`` with the reason; ``InputError`` when no variable has a scorecard.
    ``progress(done, total)`` counts in thousandths of each variable's run."""
    from catalog import api

    products = [products] if isinstance(products, str) else list(products)
    variables = [variables] if isinstance(variables, str) else list(dict.fromkeys(variables))
    if not variables:
        raise InputError("scorecard: at least one variable is needed")
    for p in products:
        api.product_info(p)  # InputError for an unknown product
    cards, skipped = {}, {}
    for k, variable in enumerate(variables):
        config.variable_spec(variable)  # InputError for a variable that cannot be validated
        holding = products_with(products, variable)
        if not holding:
            skipped[variable] = f"none of {', '.join(products)} holds {variable}"
            continue

        def step(done: int, total: int, k=k) -> None:
            if progress is not None:
                progress(1000 * k + round(1000 * done / max(total, 1)), 1000 * len(variables))

        try:
            cards[variable] = compute_scorecard(
                holding, variable, reference, options=options, use_cache=use_cache, progress=step
            )
        except InputError as err:
            skipped[variable] = _bare(err)
    if not cards:
        reasons = "; ".join(f"{v}: {why}" for v, why in skipped.items())
        raise InputError(f"scorecard: no variable could be scored ({reasons})")
    return ScorecardSet(cards, skipped)
