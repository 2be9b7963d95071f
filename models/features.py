"""The emulator's predictors: names, units, where each comes from and how it is derived.

This module is the one place that declares a feature. A model saves the names of the features it
was trained on (in this order) in its ``meta.json``; station training tables and regional feature
cubes are both turned into the same matrix by :func:`feature_matrix`.

Sources of a feature:

- ``station``: a column of the FLUXNET station table (tower meteorology), or in the regional cubes
  the variable ``cube_variable`` of the product playing ``cube_role``;
- ``cube``: only in gridded products (sampled at the tower pixel for training);
- ``derived``: computed from coordinates (latitude, time) the same way for towers and pixels;
- ``climatology``: the mean of a station/forcing variable over the whole record of the site (towers)
  or of the forcing product at the pixel (cubes). They describe the site's climate (humid or dry),
  which the monthly weather alone does not, and help most where sites are held out.

Gridded features (the second half of this module). A :class:`FeatureSet` names the catalog product
that gives each canonical cube variable; :func:`open_cubes` puts them on the pixels of one grid
product (regional prediction), :func:`tower_cubes` samples the same at a tower's pixel (training),
and :func:`cube_rows` / :func:`block_matrix` turn either into feature rows. Both paths pick source
cells with :func:`catalog.geo.nearest_index` and time steps with :func:`time_index`, so a pixel and time step
gets the same row whichever path builds it.

LightGBM is invariant to monotone transforms of a predictor, so features enter untransformed in
their physical units; the only transforms are the derivations listed in ``derivation``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from catalog import api
from catalog.errors import InputError
from catalog.geo import nearest_index
from catalog.igbp import IGBP_CODES, IGBP_NAMES

SOLAR_CONSTANT = 1367.0  # W m-2 (FAO-56 uses 0.0820 MJ m-2 min-1 = 1367 W m-2)


@dataclass(frozen=True)
class FeatureSpec:
    """One predictor of the emulator."""

    name: str
    units: str
    long_name: str
    source: str  # "station" | "cube" | "derived"
    station_column: str | None = None  # column of the canonical station table
    cube_role: str | None = None  # "forcing" | "static" | "ssm" | "radiation"
    cube_variable: str | None = None
    categorical: bool = False
    derivation: str = "none"

    def to_dict(self) -> dict:
        return asdict(self)


FEATURES: dict[str, FeatureSpec] = {
    spec.name: spec
    for spec in (
        FeatureSpec("ta", "degC", "air temperature", "station", "TA", "forcing", "ta"),
        FeatureSpec("sw_in", "W m-2", "incoming shortwave radiation", "station", "SW_IN", "forcing", "sw_in"),
        FeatureSpec("lw_in", "W m-2", "incoming longwave radiation", "station", "LW_IN", "forcing", "lw_in"),
        FeatureSpec("vpd", "hPa", "vapour pressure deficit", "station", "VPD", "forcing", "vpd"),
        FeatureSpec("precip", "mm d-1", "precipitation", "station", "P", "forcing", "precip"),
        FeatureSpec("ws", "m s-1", "wind speed", "station", "WS", "forcing", "ws"),
        FeatureSpec(
            "a",
            "W m-2",
            "available energy Rn - G",
            "station",
            None,
            "radiation",
            None,
            derivation="NETRAD - G (towers); rn - g (radiation product) or the emulator's A model",
        ),
        FeatureSpec("lai", "m2 m-2", "leaf area index", "cube", None, "forcing", "lai"),
        FeatureSpec("ndvi", "1", "normalised difference vegetation index", "cube", None, "forcing", "ndvi"),
        FeatureSpec("ssm", "m3 m-3", "surface soil moisture", "cube", None, "ssm", "ssm"),
        FeatureSpec("elevation", "m", "elevation", "cube", None, "static", "elevation"),
        FeatureSpec(
            "igbp",
            "1",
            "IGBP land-cover class code (1-17)",
            "station",
            None,
            "static",
            "igbp",
            categorical=True,
            derivation="site IGBP class name mapped to its MODIS code",
        ),
        FeatureSpec("lat", "degrees_north", "latitude", "derived", derivation="site / pixel-centre latitude"),
        FeatureSpec("month", "1", "month of the year (1-12)", "derived", derivation="calendar month of time"),
        FeatureSpec(
            "sw_in_pot",
            "W m-2",
            "potential (top-of-atmosphere) shortwave radiation, daily mean",
            "derived",
            derivation="FAO-56 eq. 21 extraterrestrial radiation from latitude and day of year "
            "(monthly steps: mean over the month's days)",
        ),
        FeatureSpec(
            "precip_clim",
            "mm d-1",
            "mean precipitation over the record",
            "climatology",
            derivation="mean of precip over the site's / forcing product's record",
        ),
        FeatureSpec(
            "vpd_clim",
            "hPa",
            "mean vapour pressure deficit over the record",
            "climatology",
            derivation="mean of vpd over the record",
        ),
        FeatureSpec(
            "ta_clim",
            "degC",
            "mean air temperature over the record",
            "climatology",
            derivation="mean of ta over the record",
        ),
        FeatureSpec(
            "sw_in_clim",
            "W m-2",
            "mean incoming shortwave over the record",
            "climatology",
            derivation="mean of sw_in over the record",
        ),
        FeatureSpec(
            "dryness",
            "1",
            "radiative dryness sw_in_clim / (L · precip_clim + 1 W m-2)",
            "climatology",
            derivation="sw_in_clim / (28.36 W m-2 per mm d-1 × precip_clim + 1)",
        ),
    )
}
# Climatology features: name → the variable averaged (``dryness`` is derived from two of them).
CLIMATOLOGY: dict[str, str] = {
    "precip_clim": "precip",
    "vpd_clim": "vpd",
    "ta_clim": "ta",
    "sw_in_clim": "sw_in",
}
LATENT_HEAT_MM_DAY = 28.36  # W m-2 carried away by evaporating 1 mm d-1 (lambda = 2.45 MJ kg-1)

# Tower meteorology and coordinates only: what the FLUXNET files provide at every site.
FLUXNET_FEATURES: tuple[str, ...] = (
    "ta",
    "sw_in",
    "lw_in",
    "vpd",
    "precip",
    "ws",
    "a",
    "igbp",
    "lat",
    "month",
    "sw_in_pot",
    "precip_clim",
    "vpd_clim",
    "ta_clim",
    "sw_in_clim",
    "dryness",
)
# The demo world adds vegetation, soil moisture and elevation from its feature cubes.
DEMO_FEATURES: tuple[str, ...] = FLUXNET_FEATURES + ("lai", "ndvi", "ssm", "elevation")


def spec(name: str) -> FeatureSpec:
    """The declared feature ``name``; KeyError names the unknown feature."""
    try:
        return FEATURES[name]
    except KeyError:
        raise KeyError(f"unknown feature {name!r}; declared: {sorted(FEATURES)}") from None


def cube_variable_text(variable: str) -> str:
    """A cube variable with what it is, e.g. ``"ta (air temperature, degC)"`` (for messages)."""
    for s in FEATURES.values():
        if s.cube_variable == variable:
            return f"{variable} ({s.long_name}, {s.units})"
    return {"rn": "rn (net radiation, W m-2)", "g": "g (ground heat flux, W m-2)"}.get(variable, variable)


def available_energy_features(features: tuple[str, ...] | list[str]) -> list[str]:
    """The features of the available-energy (A) model: the EF features without A itself."""
    return [f for f in features if f != "a"]


def categorical_indices(features: list[str] | tuple[str, ...]) -> list[int]:
    """Column indices of the categorical features (for LightGBM ``categorical_feature``)."""
    return [i for i, f in enumerate(features) if spec(f).categorical]


def igbp_code(names) -> np.ndarray:
    """IGBP class names (e.g. ``"ENF"``) or codes → float codes 1-17; unknown/missing → NaN."""
    out = []
    for v in np.asarray(names, dtype=object).ravel():
        if isinstance(v, str):
            out.append(float(IGBP_CODES.get(v.strip().upper(), np.nan)))
        elif v is None or (isinstance(v, float) and np.isnan(v)):
            out.append(np.nan)
        else:
            code = float(v)
            out.append(code if code in IGBP_NAMES else np.nan)
    return np.asarray(out, dtype=float)


def daily_sw_in_pot(lat_deg, doy) -> np.ndarray:
    """Daily mean extraterrestrial shortwave radiation on a horizontal surface, W m-2.

    FAO-56 (Allen et al. 1998) eqs. 21-25: Ra = Gsc/pi * dr * (ws sin(phi) sin(delta)
    + cos(phi) cos(delta) sin(ws)), dr = 1 + 0.033 cos(2 pi J / 365), delta = 0.409 sin(2 pi J / 365
    - 1.39), ws = arccos(-tan(phi) tan(delta)) clipped to [0, pi] (polar day / night).
    """
    phi = np.deg2rad(np.asarray(lat_deg, dtype=float))
    j = np.asarray(doy, dtype=float)
    dr = 1.0 + 0.033 * np.cos(2.0 * np.pi * j / 365.0)
    delta = 0.409 * np.sin(2.0 * np.pi * j / 365.0 - 1.39)
    ws = np.arccos(np.clip(-np.tan(phi) * np.tan(delta), -1.0, 1.0))
    ra = (
        SOLAR_CONSTANT
        / np.pi
        * dr
        * (ws * np.sin(phi) * np.sin(delta) + np.cos(phi) * np.cos(delta) * np.sin(ws))
    )
    return np.maximum(ra, 0.0)


def sw_in_pot(lat_deg, time, *, time_step: str = "day") -> np.ndarray:
    """Potential shortwave for each (lat, time) pair; monthly steps average over the month's days."""
    lat = np.asarray(lat_deg, dtype=float)
    t = pd.DatetimeIndex(np.asarray(time, dtype="datetime64[ns]").ravel())
    if time_step == "day":
        return daily_sw_in_pot(lat, t.day_of_year.to_numpy())
    if time_step != "month":
        raise ValueError(f"time_step must be 'day' or 'month', not {time_step!r}")
    start = t.to_period("M").to_timestamp()
    doy0 = start.day_of_year.to_numpy()
    ndays = start.days_in_month.to_numpy()
    total = np.zeros(np.broadcast_shapes(lat.shape, doy0.shape))
    for k in range(31):
        inside = k < ndays
        total += np.where(inside, daily_sw_in_pot(lat, doy0 + k), 0.0)
    return total / ndays


def add_climatology(table: pd.DataFrame, by: str = "site_id") -> pd.DataFrame:
    """Add the climatology features: per-``by`` record means of precip, vpd, ta, sw_in, and dryness."""
    groups = table.groupby(by, sort=False)
    for name, var in CLIMATOLOGY.items():
        table[name] = groups[var].transform("mean") if var in table else np.nan
    table["dryness"] = dryness(table["sw_in_clim"], table["precip_clim"])
    return table


def dryness(sw_in_clim, precip_clim):
    """Radiative dryness: mean shortwave over the energy that mean precipitation could evaporate."""
    return sw_in_clim / (LATENT_HEAT_MM_DAY * precip_clim + 1.0)


def feature_matrix(table: pd.DataFrame, features: list[str] | tuple[str, ...]) -> np.ndarray:
    """The float64 matrix (rows × features, in this order) from a table with one column per feature."""
    missing = [f for f in features if f not in table.columns]
    if missing:
        raise KeyError(f"table lacks feature columns {missing}")
    return np.column_stack([table[f].to_numpy(dtype=float, na_value=np.nan) for f in features])


# ---------------------------------------------------------------------------------------------
# Gridded features: which product gives each cube variable, and how the cubes are sampled.

CUBE_ROLES = ("forcing", "static", "ssm", "radiation")
RADIATION_VARIABLES = ("rn", "g")
# The features a gridded model may use, in matrix order (the demo set: tower-like meteorology,
# vegetation, soil moisture, elevation, land cover, coordinates and record climatology).
GRIDDED_FEATURES: tuple[str, ...] = DEMO_FEATURES
REGRIDDING = (
    "nearest source cell: each pixel of the grid product takes the value of the source pixel whose "
    "centre is nearest to the pixel's centre, if that centre lies within half a source cell of it "
    "(catalog.geo.nearest_index, tolerance half a source cell; a centre midway between two source "
    "centres takes the first in the source's order), else missing; no "
    "averaging (for area-weighted means ingest the product onto the grid with `fluxlens ingest cube "
    "--grid`)"
)
TIME_MATCHING = (
    "a product with one time step applies to every time; a monthly product gives every time its "
    "calendar month's value; otherwise the nearest source step within half the source's median step "
    "(exact for daily on daily)"
)


@dataclass(frozen=True)
class FeatureSet:
    """Which catalog product gives each canonical cube variable, all put on the pixels and time
    steps of the product ``grid``. ``roles``: the role (forcing, static, ssm, radiation) each
    variable plays; ``climatology``: base variables of climatology features (record means)."""

    grid: str
    variables: dict[str, str]
    roles: dict[str, str] = field(default_factory=dict)
    climatology: tuple[str, ...] = ()

    def products(self) -> list[str]:
        return sorted({self.grid, *self.variables.values()})

    def by_product(self, variables=None) -> dict[str, list[str]]:
        """Product → the variables (of ``variables``, default all direct ones) it gives."""
        out: dict[str, list[str]] = {}
        for v in self.direct() if variables is None else variables:
            out.setdefault(self.variables[v], []).append(v)
        return out

    def direct(self) -> list[str]:
        """Variables read at every time step (not the climatology-only ones)."""
        return [v for v in self.variables if v in self.roles]

    def role_products(self) -> dict[str, str]:
        """Role → product (comma-joined where several products play it), for provenance."""
        out: dict[str, list[str]] = {}
        for v, role in self.roles.items():
            p = self.variables[v]
            if p not in out.setdefault(role, []):
                out[role].append(p)
        return {r: ",".join(ps) for r, ps in out.items()}

    def restricted(self, features, *, radiation: bool = False) -> FeatureSet:
        """The feature set of only the variables ``features`` (and a radiation product) read."""
        direct = {v for vs in cube_variables(features, radiation=radiation).values() for v in vs}
        clim = [v for v in climatology_variables(features) if v in self.variables]
        keep = direct | set(clim)
        return FeatureSet(
            grid=self.grid,
            variables={v: p for v, p in self.variables.items() if v in keep},
            roles={v: r for v, r in self.roles.items() if v in direct},
            climatology=tuple(clim),
        )

    def to_dict(self) -> dict:
        return {
            "grid": self.grid,
            "variables": dict(self.variables),
            "roles": dict(self.roles),
            "climatology": list(self.climatology),
            "regridding": REGRIDDING,
            "time_matching": TIME_MATCHING,
        }

    @classmethod
    def from_dict(cls, d: dict) -> FeatureSet:
        return cls(
            grid=d["grid"],
            variables=dict(d["variables"]),
            roles=dict(d.get("roles") or {}),
            climatology=tuple(d.get("climatology") or ()),
        )


def cube_variables(features, *, radiation: bool = False) -> dict[str, list[str]]:
    """Role → cube variables read at every time step by ``features`` (``a``: rn, g of a radiation
    product when ``radiation``; derived and climatology features read none)."""
    out: dict[str, list[str]] = {}
    for name in features:
        s = spec(name)
        if name == "a" or s.source in ("derived", "climatology"):
            continue
        if s.cube_variable not in out.setdefault(s.cube_role, []):
            out[s.cube_role].append(s.cube_variable)
    if radiation:
        out["radiation"] = list(RADIATION_VARIABLES)
    return out


def climatology_variables(features) -> list[str]:
    """The variables whose record means the climatology features of ``features`` need."""
    names = set(features)
    return [
        v for c, v in CLIMATOLOGY.items() if c in names or ("dryness" in names and v in ("sw_in", "precip"))
    ]


def required_features(features) -> list[str]:
    """Features whose absence makes a pixel-time (or a training row) unusable: every cube variable
    except soil moisture (the trees route a missing ``ssm``)."""
    return [
        f
        for f in features
        if f != "a" and spec(f).source in ("station", "cube") and spec(f).cube_role != "ssm"
    ]


def lacks_error(role: str, product, have, missing: list[str], products=None) -> InputError:
    """InputError: ``product`` (the ``role`` input; a name or a list of names) lacks ``missing``;
    names the products that have them. ``products``: the catalog's :class:`ProductInfo` list
    (default :func:`catalog.api.list_products`)."""
    products = api.list_products() if products is None else products
    names = [product] if isinstance(product, str) else list(product)
    needed = ", ".join(cube_variable_text(v) for v in missing)
    have = sorted(have)
    both = [p.name for p in products if p.name not in names and set(missing) <= set(p.variables)]
    if both:
        hint = f"products that have {'them' if len(missing) > 1 else 'it'}: {', '.join(both)} (--{role})"
    else:
        per_var = []
        for v in missing:
            found = [q.name for q in products if v in q.variables]
            per_var.append(f"{v} in {', '.join(found) or 'no product'}")
        hint = f"no single product has {'them all' if len(missing) > 1 else 'it'} ({'; '.join(per_var)})"
        hint += "; ingest one and pass it with --" + role
    which = (
        f"the {role} product, but {names[0]!r} has"
        if len(names) == 1
        else f"the {role} products, but {', '.join(map(repr, names))} have"
    )
    return InputError(
        f"the model needs {needed} from {which} only {', '.join(have) or 'no variables'}; {hint}"
    )


def product_list(value) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [p.strip() for p in value.split(",") if p.strip()]
    return [str(p) for p in value]


def read_feature_set_file(path) -> dict:
    """A feature-set YAML: ``grid`` (product whose pixels and time steps the features are put on),
    role → product(s) (``forcing``, ``static``, ``ssm``, ``radiation``; a name, a comma-separated
    list or a YAML list: each variable from the first that has it) and ``variables`` (canonical
    variable → product, overriding the roles). Returns ``{"grid", "roles", "variables"}``."""
    import yaml

    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise InputError(f"{path}: no such feature-set file") from None
    except (OSError, yaml.YAMLError) as exc:
        raise InputError(f"{path}: not a readable feature-set YAML ({exc})") from None
    if not isinstance(raw, dict):
        raise InputError(f"{path}: a feature set is a YAML mapping (grid, forcing, static, ssm, variables)")
    unknown = sorted(set(raw) - {"grid", "variables", "name", "description", *CUBE_ROLES})
    if unknown:
        raise InputError(f"{path}: unknown keys {unknown}; use grid, {', '.join(CUBE_ROLES)}, variables")
    variables = raw.get("variables") or {}
    if not isinstance(variables, dict) or not all(isinstance(p, str) for p in variables.values()):
        raise InputError(f"{path}: 'variables' maps canonical variable names to product names")
    known = {s.cube_variable for s in FEATURES.values() if s.cube_variable} | set(RADIATION_VARIABLES)
    bad = sorted(set(variables) - known)
    if bad:
        raise InputError(f"{path}: unknown variables {bad}; canonical cube variables: {sorted(known)}")
    return {
        "grid": raw.get("grid"),
        "roles": {r: product_list(raw[r]) for r in CUBE_ROLES if r in raw},
        "variables": dict(variables),
    }


def resolve_feature_set(
    needs: dict[str, list[str]],
    roles: dict[str, list[str] | str | None],
    *,
    variables: dict[str, str] | None = None,
    climatology=(),
    grid: str | None = None,
    strict: bool = True,
) -> tuple[FeatureSet, dict[str, list[str]]]:
    """The feature set giving every variable of ``needs`` (role → variables) and ``climatology``.

    Each variable comes from ``variables[var]`` if named there, else from the first product of its
    role in ``roles`` that has it. ``grid``: default the first forcing product. ``strict``: a
    variable no product gives is an :class:`InputError` naming the products that could supply it
    (:func:`lacks_error`); otherwise it is left out and returned in the second value (role →
    variables). Unknown products are InputErrors.
    """
    catalog = api.list_products()
    infos = {p.name: p for p in catalog}
    variables = dict(variables or {})
    roles = {r: product_list(v) for r, v in roles.items()}
    used_roles = set(needs) | ({"forcing"} if climatology else set())
    consulted = [q for r in used_roles for q in roles.get(r, [])]
    consulted += [
        p for v, p in variables.items() if any(v in vs for vs in needs.values()) or v in climatology
    ]
    grid = grid or next(iter(roles.get("forcing") or []), None)
    for p in [*consulted, *([grid] if grid else [])]:
        if p not in infos:
            api.product_info(p)  # the unknown-product error, naming the known ones
    chosen: dict[str, str] = {}
    role_of: dict[str, str] = {}
    missing: dict[str, list[str]] = {}
    wanted = [(r, v) for r, vs in needs.items() for v in vs]
    wanted += [("forcing", v) for v in climatology if not any(v == w for _, w in wanted)]
    direct = {v for _, vs in needs.items() for v in vs}
    for role, v in wanted:
        if v in chosen:
            continue
        if v in variables:
            p = variables[v]
            if v not in infos[p].variables:
                raise lacks_error(role, p, infos[p].variables, [v], products=catalog)
        else:
            p = next((c for c in roles.get(role, []) if v in infos[c].variables), None)
            if p is None:
                missing.setdefault(role, []).append(v)
                continue
        chosen[v] = p
        if v in direct:
            role_of[v] = role
    if strict and missing:
        role, vs = next(iter(missing.items()))
        cands = roles.get(role) or []
        if not cands:
            raise InputError(f"the model needs {vs} from a {role!r} product; none given")
        have = sorted({v for c in cands for v in infos[c].variables})
        raise lacks_error(role, cands[0] if len(cands) == 1 else cands, have, vs, products=catalog)
    if grid is None:
        raise InputError("no forcing product given (the features are put on its grid): pass --forcing")
    if infos[grid].n_time < 2:
        raise InputError(
            f"the grid product {grid!r} has a single time step; name a time-varying product (--forcing)"
        )
    clim = tuple(v for v in climatology if v in chosen)
    return FeatureSet(grid=grid, variables=chosen, roles=role_of, climatology=clim), missing


def resolutions(info) -> tuple[float, float]:
    """(lat, lon) cell size in degrees of a product's level 0."""
    level0 = info.levels[0]
    res_lon = float(level0.get("resolution", info.resolution))
    return float(level0.get("resolution_lat", res_lon)), res_lon


def time_index(source_times, target_times, source_step: str) -> np.ndarray | None:
    """Positions in ``source_times`` for each target time (-1: none); ``None`` for a product with one
    time step (static: it applies to every time). See :data:`TIME_MATCHING`."""
    src = pd.DatetimeIndex(np.asarray(source_times, dtype="datetime64[ns]"))
    tgt = pd.DatetimeIndex(np.asarray(target_times, dtype="datetime64[ns]"))
    if len(src) == 1:
        return None
    if source_step == "month":
        return src.get_indexer(tgt.to_period("M").to_timestamp())
    half = pd.Timedelta(int(np.median(np.diff(src.asi8))) // 2, "ns")
    return src.get_indexer(tgt, method="nearest", tolerance=half)


def record_mean(values) -> np.ndarray:
    """Mean over axis 0 (time) of finite values, in float64, NaN where none; the same summation
    order for one pixel or many (each pixel's series summed as one contiguous row)."""
    v = np.asarray(values)
    rest = v.shape[1:]
    rows = np.ascontiguousarray(v.reshape(v.shape[0], -1).T, dtype=np.float64)
    ok = np.isfinite(rows)
    n = ok.sum(axis=1)
    total = np.where(ok, rows, 0.0).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, total / n, np.nan).reshape(rest)


def _take(arr: xr.DataArray, dim: str, idx: np.ndarray) -> xr.DataArray:
    """``arr`` at positions ``idx`` along ``dim`` (-1 → NaN); a slice where the positions are a run."""
    if idx.size and (idx >= 0).all() and (np.diff(idx) == 1).all():
        return arr.isel({dim: slice(int(idx[0]), int(idx[-1]) + 1)})
    out = arr.isel({dim: np.where(idx < 0, 0, idx)})
    if (idx < 0).any():
        out = out.where(xr.DataArray(idx >= 0, dims=dim))
    return out


def _sample(product: str, names: list[str], lats, lons, times) -> dict[str, xr.DataArray]:
    """``names`` of ``product`` at the given pixel centres and times (lazy), dims (time, lat, lon)
    or (lat, lon) for a single-step product."""
    info = api.product_info(product)
    ds = api.open_product(product)[names]
    r_lat, r_lon = resolutions(info)
    iy = nearest_index(ds.lat.values, lats, r_lat / 2)
    ix = nearest_index(ds.lon.values, lons, r_lon / 2)
    it = time_index(ds.time.values, times, info.time_step)
    out = {}
    for v in names:
        a = _take(_take(ds[v], "lat", iy), "lon", ix)
        a = a.isel(time=0, drop=True) if it is None else _take(a, "time", it)
        coords = {"lat": np.asarray(lats, dtype=float), "lon": np.asarray(lons, dtype=float)}
        if it is not None:
            coords["time"] = np.asarray(times, dtype="datetime64[ns]")
        out[v] = a.drop_vars([c for c in a.coords if c not in a.dims]).assign_coords(coords)
    return out


def _record_means(product: str, var: str, lats, lons, max_elements: int = 20_000_000) -> np.ndarray:
    """Means over ``product``'s whole record of ``var`` at the source cells nearest the pixel
    centres (``len(lats)`` × ``len(lons)``; NaN outside), read in slabs of source rows."""
    info = api.product_info(product)
    da = api.open_product(product)[var]
    r_lat, r_lon = resolutions(info)
    iy = nearest_index(da.lat.values, lats, r_lat / 2)
    ix = nearest_index(da.lon.values, lons, r_lon / 2)
    uy, ux = np.unique(iy[iy >= 0]), np.unique(ix[ix >= 0])
    means = np.full((len(uy), len(ux)), np.nan)
    if len(uy) and len(ux):
        step = max(1, max_elements // max(1, da.sizes["time"] * len(ux)))
        for k in range(0, len(uy), step):
            rows = uy[k : k + step]
            block = _take(_take(da, "lat", rows), "lon", ux).values
            means[k : k + step] = record_mean(block)
    out = np.full((len(iy), len(ix)), np.nan)
    ok_y, ok_x = iy >= 0, ix >= 0
    out[np.ix_(ok_y, ok_x)] = means[np.ix_(np.searchsorted(uy, iy[ok_y]), np.searchsorted(ux, ix[ok_x]))]
    return out


def climatology_arrays(fs: FeatureSet, features, lats, lons) -> dict[str, np.ndarray]:
    """Climatology features of ``features`` on the pixel grid (``lats`` × ``lons``): record means of
    each base variable over its product's whole record, and ``dryness``."""
    names = [f for f in features if spec(f).source == "climatology"]
    base = {v: _record_means(fs.variables[v], v, lats, lons) for v in climatology_variables(names)}
    out = {c: base[v] for c, v in CLIMATOLOGY.items() if c in names}
    if "dryness" in names:
        out["dryness"] = dryness(base["sw_in"], base["precip"])
    return out


def open_cubes(fs: FeatureSet, features, bbox, t0, t1) -> xr.Dataset:
    """The cube variables and climatology features ``features`` need, on the pixels of ``fs.grid``
    whose centres lie in ``bbox`` (W, S, E, N) and its time steps in [t0, t1]: lazy for the variables
    read per time step (dims time, lat, lon; single-step products lat, lon), loaded for the
    climatology (lat, lon). InputError where the box and period hold no pixel of the grid."""
    w, s, e, n = bbox
    grid = api.open_product(fs.grid).sel(lat=slice(n, s), lon=slice(w, e), time=slice(t0, t1))
    if not all(grid.sizes[d] for d in ("time", "lat", "lon")):
        raise InputError(
            f"bbox {tuple(bbox)} and period {pd.Timestamp(t0).date()} .. {pd.Timestamp(t1).date()} hold "
            f"no pixel of {fs.grid!r}"
        )
    lats, lons, times = grid.lat.values, grid.lon.values, grid.time.values
    arrays: dict[str, xr.DataArray] = {}
    for product, names in fs.by_product().items():
        arrays.update(_sample(product, names, lats, lons, times))
    coords = {"time": times, "lat": lats, "lon": lons}
    ds = xr.Dataset(arrays, coords=coords)
    for name, values in climatology_arrays(fs, features, lats, lons).items():
        ds[name] = xr.DataArray(values, dims=("lat", "lon"), coords={"lat": lats, "lon": lons})
    return ds


def tower_cubes(fs: FeatureSet, features, lon: float, lat: float, times) -> xr.Dataset:
    """The same as :func:`open_cubes` for one tower: at the pixel of ``fs.grid`` nearest to (lon, lat)
    (found by :func:`catalog.api.point_series`) and at the tower's ``times``; every source product
    read there with :func:`catalog.api.point_series` at the source cell
    :func:`catalog.geo.nearest_index` picks.
    A (time, 1, 1) dataset; attrs ``pixel_lon``, ``pixel_lat``, ``distance_km``. InputError if the
    tower is outside the grid product."""
    located = api.point_series(fs.grid, lon, lat, list(api.product_info(fs.grid).variables)[:1])
    plon, plat = located.attrs["pixel_lon"], located.attrs["pixel_lat"]
    times = np.asarray(times, dtype="datetime64[ns]")
    coords = {"time": times, "lat": [plat], "lon": [plon]}
    ds = xr.Dataset(coords=coords)
    wanted: dict[str, list[str]] = {}
    for v in fs.direct():
        wanted.setdefault(fs.variables[v], []).append(v)
    clim = climatology_variables([f for f in features if spec(f).source == "climatology"])
    means: dict[str, float] = {}
    for product in {*wanted, *(fs.variables[v] for v in clim)}:
        names = wanted.get(product, [])
        here = [v for v in clim if fs.variables[v] == product]
        info = api.product_info(product)
        src = api.open_product(product)
        src_lat, src_lon = src.lat.values, src.lon.values
        r_lat, r_lon = resolutions(info)
        iy = int(nearest_index(src_lat, [plat], r_lat / 2)[0])
        ix = int(nearest_index(src_lon, [plon], r_lon / 2)[0])
        if iy < 0 or ix < 0:
            for v in names:
                ds[v] = (("time", "lat", "lon"), np.full((len(times), 1, 1), np.nan, dtype=np.float32))
            means.update({v: np.nan for v in here})
            continue
        series = api.point_series(product, float(src_lon[ix]), float(src_lat[iy]), sorted({*names, *here}))
        it = time_index(series.time.values, times, info.time_step)
        for v in names:
            values = series[v].values
            if it is None:  # single-step product: one value for every time
                col = np.full(len(times), values[0])
            else:
                col = np.where(it >= 0, values[np.maximum(it, 0)], np.nan)
            ds[v] = (("time", "lat", "lon"), col.astype(values.dtype).reshape(-1, 1, 1))
        for v in here:
            means[v] = float(record_mean(series[v].values[:, None])[0])
    names = [f for f in features if spec(f).source == "climatology"]
    for c, v in CLIMATOLOGY.items():
        if c in names:
            ds[c] = (("lat", "lon"), np.full((1, 1), means[v]))
    if "dryness" in names:
        ds["dryness"] = (("lat", "lon"), np.full((1, 1), dryness(means["sw_in"], means["precip"])))
    ds.attrs.update(pixel_lon=plon, pixel_lat=plat, distance_km=located.attrs["distance_km"])
    return ds


def block_matrix(block: dict[str, np.ndarray], features, times, lats, time_step: str) -> np.ndarray:
    """Feature matrix (rows = time × lat × lon, C order) from cube arrays broadcastable to
    (time, lat, lon) (cube variables by variable name, climatology features and ``a`` by feature
    name); ``lat``, ``month``, ``sw_in_pot`` derived from the pixel latitudes and times."""
    nt, ny = len(times), len(lats)
    nx = max((np.shape(v)[-1] for v in block.values() if np.ndim(v)), default=1)
    x = np.empty((nt, ny, nx, len(features)))
    tt = pd.DatetimeIndex(times)
    lats = np.asarray(lats, dtype=float)
    for i, name in enumerate(features):
        s = spec(name)
        if name == "lat":
            col = lats[None, :, None]
        elif name == "month":
            col = tt.month.to_numpy(dtype=float)[:, None, None]
        elif name == "sw_in_pot":
            if time_step == "month":
                pot = np.stack([sw_in_pot(lats, [t] * len(lats), time_step="month") for t in tt])
            else:
                pot = daily_sw_in_pot(lats[None, :], tt.day_of_year.to_numpy()[:, None])
            col = pot[:, :, None]
        else:
            col = block[name if name == "a" or s.source == "climatology" else s.cube_variable]
        x[..., i] = col  # broadcast in the assignment: one pass, no temporary
    return x.reshape(nt * ny * nx, len(features))


def cube_rows(cubes: xr.Dataset, features, time_step: str) -> pd.DataFrame:
    """Feature rows (``time, lat, lon`` + ``features``, time × lat × lon in C order) of a cube
    dataset from :func:`open_cubes` or :func:`tower_cubes`. ``a`` is ``rn - g`` where the dataset
    has a radiation product's ``rn`` and ``g``, else NaN (the caller supplies A)."""
    times, lats, lons = cubes.time.values, cubes.lat.values, cubes.lon.values
    shape = (len(times), len(lats), len(lons))
    block = {}
    for v in cubes.data_vars:
        arr = np.asarray(cubes[v].values, dtype=np.float64)
        block[v] = arr if cubes[v].dims == ("time", "lat", "lon") else np.broadcast_to(arr, shape)
    block["a"] = block["rn"] - block["g"] if "rn" in block and "g" in block else np.full(shape, np.nan)
    x = block_matrix(block, list(features), times, lats, time_step)
    tt, yy, xx = np.meshgrid(np.arange(shape[0]), np.arange(shape[1]), np.arange(shape[2]), indexing="ij")
    out = pd.DataFrame({"time": times[tt.ravel()], "lat": lats[yy.ravel()], "lon": lons[xx.ravel()]})
    for i, f in enumerate(features):
        if f != "lat":
            out[f] = x[:, i]
    return out
