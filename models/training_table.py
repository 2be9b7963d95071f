"""The emulator's training table: one row per site and time step, features and targets side by side.

Source: a station network of the catalog (e.g. the demo world's ``fluxnet_demo``, or a FLUXNET
folder ingested with ``fluxlens ingest fluxnet`` — ``fluxlens train`` ingests a folder it is given
first) read through :func:`catalog.api.site_observations`, with cube-only features (LAI, NDVI, soil
moisture, elevation) sampled at each tower's pixel with :func:`catalog.api.point_series`. Models
read data only through the catalog.

Columns: ``site_id, time, year, lat, lon, igbp`` (code 1-17), ``igbp_name``, the features of
:mod:`models.features` that the source provides (climatology features: means over the site's rows
that passed the QC filter), and the energy terms (W m-2): ``rn`` (NETRAD),
``g``, ``a = rn - g``, raw targets ``le_raw, h_raw`` (``LE_F_MDS``, ``H_F_MDS``) and corrected targets
``le_corr, h_corr`` (``LE_CORR``, ``H_CORR``, NaN where the source has none).

Rows kept: LE, H, NETRAD and G all finite and their QC (fraction of good data) ≥ ``qc_min`` where the
source gives a QC. Meteorological features may be NaN (LightGBM routes missing values).

The time step (day or month) is the network's ingest resolution (``provenance.options.resolution``
of its catalog entry) or, where none is recorded, :func:`catalog.time_steps.pooled_time_step` over
all its sites' time stamps (the median of their pooled spacings) — never a single site's.

Gridded features (:func:`build_gridded`): the same tower rows (targets, A, QC filter) with the
features sampled from catalog cubes at each tower's pixel and time step instead of the tower
meteorology (:func:`models.features.tower_cubes` → :func:`models.features.cube_rows`, the functions
regional prediction uses), and beside it the tower-meteorology table of the same rows for a
side-by-side cross-validation.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

from catalog import api, time_steps
from catalog.errors import InputError
from models import features as F

QC_MIN = 0.5
ENERGY_QC = ("LE", "H", "NETRAD", "G")
DEMO_CUBE_PRODUCTS = {"forcing": "forcing_demo", "static": "static_demo", "ssm": "ssm_global_demo"}

_ENERGY_COLUMNS = {
    "LE": "le_raw",
    "H": "h_raw",
    "LE_CORR": "le_corr",
    "H_CORR": "h_corr",
    "NETRAD": "rn",
    "G": "g",
}


STEP_OF_RESOLUTION = {"MM": "month", "DD": "day"}  # FLUXNET resolution codes the emulator trains on


def network_time_step(network: str, observations=None) -> str:
    """The time step of a station network: its ingest resolution (``MM`` → month, ``DD`` → day) from
    the catalog, else :func:`catalog.time_steps.pooled_time_step` of all sites' time stamps
    (``observations``: the sites' tables, read when not given). InputError for resolutions the
    emulator does not train on."""
    info = api.network_info(network)
    resolution = ((info.get("provenance") or {}).get("options") or {}).get("resolution")
    if resolution:
        step = STEP_OF_RESOLUTION.get(str(resolution).upper())
        if step is None:
            raise InputError(
                f"network {network!r} holds {resolution} tower data; the emulator trains on daily (DD) or "
                "monthly (MM) data: ingest those files"
            )
        return step
    if observations is None:
        observations = [api.site_observations(network, sid) for sid in api.sites(network)["site_id"]]
    return time_steps.pooled_time_step([o["time"] for o in observations])


def station_rows(obs: pd.DataFrame, site: pd.Series, *, qc_min: float = QC_MIN, time_step: str | None = None):
    """Training rows of one site from its canonical station table and its site-table row.

    ``time_step``: the source's (a network's or a folder's); only a table used alone may leave it
    out (then the spacing of this site's rows decides, which fails for a site with one row)."""
    obs = obs.copy()
    keep = np.ones(len(obs), dtype=bool)
    for name in ENERGY_QC:
        keep &= obs[name].notna().to_numpy()
        qc = obs.get(f"{name}_QC")
        if qc is not None and qc_min is not None:
            keep &= ~(qc.to_numpy(dtype=float) < qc_min)  # NaN QC (none given) keeps the value
    obs = obs.loc[keep]
    time = pd.to_datetime(obs["time"])
    step = time_step or time_steps.time_step(time)
    lat = float(site["lat"])
    igbp_name = str(site.get("igbp") or "").strip().upper()
    out = pd.DataFrame(
        {
            "site_id": str(site["site_id"]),
            "time": time.to_numpy(),
            "year": time.dt.year.to_numpy(),
            "lat": lat,
            "lon": float(site["lon"]),
            "igbp": F.igbp_code([igbp_name])[0] if igbp_name else np.nan,
            "igbp_name": igbp_name,
        },
        index=obs.index,
    )
    for feat in F.FEATURES.values():
        if feat.source == "station" and feat.station_column:
            out[feat.name] = obs[feat.station_column].to_numpy(dtype=float)
    for col, name in _ENERGY_COLUMNS.items():
        out[name] = obs[col].to_numpy(dtype=float) if col in obs else np.nan
    out["a"] = out["rn"] - out["g"]
    out["month"] = out["time"].dt.month.astype(float)
    out["sw_in_pot"] = F.sw_in_pot(np.full(len(out), lat), out["time"], time_step=step)
    out.attrs["time_step"] = step
    return out.reset_index(drop=True)


def _apply_site_list(sites: pd.DataFrame, listed: pd.DataFrame, where: str) -> pd.DataFrame:
    """``sites`` restricted to those of the site list ``listed`` (``site_id`` and, where given,
    ``lat, lon, igbp, name``; ``attrs["source"]`` names the list's file); coordinates and IGBP classes
    the list gives replace the source's (the list locates the sites). InputError for listed sites
    that the source lacks or that nothing locates."""
    sites_file = listed.attrs.get("source", "site list")
    known = set(sites["site_id"].astype(str)) if len(sites) else set()
    unknown = [s for s in listed["site_id"] if s not in known]
    has_coords = {"lat", "lon"} <= set(listed.columns)
    if unknown and not has_coords:
        raise InputError(f"{sites_file}: sites {unknown[:10]} are not in {where}")
    base = sites.set_index(sites["site_id"].astype(str)) if len(sites) else pd.DataFrame()
    out = []
    for _, row in listed.iterrows():
        sid = row["site_id"]
        site = (
            base.loc[sid].copy()
            if sid in base.index
            else pd.Series({"site_id": sid, "name": sid, "igbp": ""})
        )
        for col in ("lat", "lon", "igbp", "name"):
            value = row.get(col)
            if value is not None and not (isinstance(value, float) and np.isnan(value)) and value != "":
                site[col] = value
        if not (np.isfinite(float(site.get("lat", np.nan))) and np.isfinite(float(site.get("lon", np.nan)))):
            raise InputError(
                f"{sites_file}: site {sid} has no coordinates (neither in the list nor in {where})"
            )
        out.append(site)
    table = pd.DataFrame(out).reset_index(drop=True)
    table["igbp_code"] = F.igbp_code(table["igbp"].fillna("")) if "igbp" in table else np.nan
    return table


def _network_pairs(network: str, *, qc_min: float, site_list: pd.DataFrame | None = None):
    """(site row, training rows) per site of a catalog network, the network's time step, the label."""
    sites = api.sites(network)
    if "igbp_code" not in sites:
        sites["igbp_code"] = F.igbp_code(sites["igbp"].fillna("")) if "igbp" in sites else np.nan
    if site_list is not None:
        sites = _apply_site_list(sites, site_list, f"network {network!r}")
    observations = [api.site_observations(network, site["site_id"]) for _, site in sites.iterrows()]
    step = network_time_step(network, observations)
    rows = [
        (site, station_rows(obs, site, qc_min=qc_min, time_step=step))
        for (_, site), obs in zip(sites.iterrows(), observations, strict=True)
        if not obs.empty
    ]
    info = api.network_info(network)
    return rows, step, f"network:{network}", bool(info.get("synthetic", False))


def _pairs(source: str, *, qc_min: float, site_list: pd.DataFrame | None = None):
    return _network_pairs(resolve_source(source), qc_min=qc_min, site_list=site_list)


def _cube_features(site: pd.Series, features, cube_products: dict[str, str]) -> tuple[pd.DataFrame, dict]:
    """Cube-only features at the site's pixel, one row per time of the product (static: broadcast)."""
    frames, static = [], {}
    wanted: dict[str, list[str]] = {}
    for name in features:
        feat = F.spec(name)
        if feat.source == "cube":
            wanted.setdefault(feat.cube_role, []).append(name)
        elif name == "igbp" and not np.isfinite(site.get("igbp_code", np.nan)) and "static" in cube_products:
            wanted.setdefault(feat.cube_role, []).append(name)  # a site without a class: the product's
    for role, names in wanted.items():
        product = cube_products.get(role)
        if product is None:
            raise InputError(f"features {names} need a {role!r} product; none given in {cube_products}")
        ds = api.point_series(
            product, float(site["lon"]), float(site["lat"]), [F.spec(n).cube_variable for n in names]
        )
        df = ds.to_dataframe().reset_index()
        df = df.rename(columns={F.spec(n).cube_variable: n for n in names})
        if len(df) == 1:
            static.update({n: float(df[n].iloc[0]) for n in names})
        else:
            frames.append(df[["time", *names]].set_index("time"))
    out = pd.concat(frames, axis=1) if frames else pd.DataFrame(index=pd.DatetimeIndex([], name="time"))
    return out, static


def from_network(
    network: str,
    *,
    features=F.DEMO_FEATURES,
    cube_products: dict[str, str] | None = None,
    qc_min: float = QC_MIN,
    site_list: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Training table from a catalog station network, cube-only features sampled at tower pixels.

    The time step is the network's (:func:`network_time_step`), the same for every site."""
    uses_cubes = any(F.spec(f).source == "cube" for f in features)
    if cube_products is None:
        cube_products = dict(DEMO_CUBE_PRODUCTS) if uses_cubes else {}
    pairs, step, label, synthetic = _network_pairs(network, qc_min=qc_min, site_list=site_list)
    parts = []
    for site, rows in pairs:
        cube, static = _cube_features(site, features, cube_products)
        if len(cube.columns):
            rows = rows.merge(cube, left_on="time", right_index=True, how="left")
        for name, value in static.items():
            rows[name] = value
        if len(rows):
            parts.append(rows)
    table = _finish(parts, source=label, time_step=step, synthetic=synthetic)
    table.attrs["cube_products"] = dict(cube_products) or None
    return table


def resolve_source(source: str) -> str:
    """The station network a ``--sites-source`` value names. InputError for anything else: models
    read only through the catalog (a FLUXNET folder is ingested as a network first, which
    ``fluxlens train --sites-source FOLDER`` does)."""
    try:
        networks = api.list_networks()
    except (InputError, FileNotFoundError):
        networks = []
    if source in networks:
        return source
    raise InputError(
        f"sites source {source!r} is not a station network of the catalog ({', '.join(networks) or 'none'}); "
        "ingest FLUXNET files first (fluxlens ingest fluxnet FOLDER --name NAME), or give the folder to "
        "fluxlens train, which ingests it"
    )


def default_features(source: str) -> tuple[str, ...]:
    """The tower-mode feature set of a source: the demo set (tower meteorology + the demo world's
    vegetation, soil-moisture and elevation cubes) for a synthetic network where the demo cubes
    exist, else tower meteorology and coordinates only (a real network is never given the demo
    world's synthetic cubes)."""
    if api.network_info(resolve_source(source)).get("synthetic"):
        have = {p.name for p in api.list_products()}
        if set(DEMO_CUBE_PRODUCTS.values()) <= have:
            return F.DEMO_FEATURES
    return F.FLUXNET_FEATURES


def build(
    source: str, *, features=None, cube_products=None, qc_min: float = QC_MIN, site_list=None
) -> pd.DataFrame:
    """Training table for ``source`` (see :func:`resolve_source`), tower meteorology as features."""
    return from_network(
        resolve_source(source),
        features=features or default_features(source),
        cube_products=cube_products,
        qc_min=qc_min,
        site_list=site_list,
    )


_ROW_COLUMNS = (
    "site_id",
    "time",
    "year",
    "igbp_name",
    "le_raw",
    "h_raw",
    "le_corr",
    "h_corr",
    "rn",
    "g",
    "a",
)


def _available(feature: str, fs: F.FeatureSet) -> str | None:
    """Why a gridded feature cannot be built from ``fs`` (None: it can)."""
    spec = F.spec(feature)
    if feature == "a" or spec.source == "derived":
        return None
    if spec.source == "climatology":
        need = F.climatology_variables([feature])
    else:
        need = [spec.cube_variable]
    lacking = [v for v in need if v not in fs.variables]
    if lacking:
        return f"no product given has {', '.join(lacking)} (role {spec.cube_role or 'forcing'})"
    return None


def build_gridded(
    source: str,
    *,
    inputs: dict | None = None,
    feature_set=None,
    features=None,
    qc_min: float = QC_MIN,
    site_list: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Training tables with gridded features: ``(gridded, tower)`` with the same rows in the same order.

    ``inputs``: role → product(s) (``forcing``, ``static``, ``ssm``, ``radiation``), ``feature_set``:
    a feature-set YAML (see :func:`models.features.read_feature_set_file`). Every tower is sampled at
    the pixel of the grid product nearest to it and at its own time steps with
    :func:`models.features.tower_cubes` and :func:`models.features.cube_rows`, the functions regional
    prediction uses. The gridded table's ``lat``/``lon`` are the pixel centre (the towers' own in
    ``site_lat``/``site_lon``), ``igbp`` the product's class where a static product gives it (the
    site's in ``site_igbp``); ``a`` (closure and A-model target) stays the tower's Rn − G, and a
    radiation product's rn − g goes to ``a_gridded``. ``features`` None: every feature of
    :data:`models.features.GRIDDED_FEATURES` the products give and that has a value at some tower
    (the others are listed in ``attrs["feature_source"]["dropped_features"]``); explicit features
    must all be given. Rows where a required gridded input (all but ssm) is missing are left out of
    both tables. The tower table has the same features from the towers (meteorology, Rn − G, the
    site's IGBP class and latitude, record means over the kept rows) for the side-by-side
    cross-validation; features no tower measures (lai, ndvi, ssm, elevation) carry the same gridded
    values in both (``attrs["gridded_in_both"]``).
    """
    pairs, step, label, synthetic = _pairs(source, qc_min=qc_min, site_list=site_list)
    spec = (
        F.read_feature_set_file(feature_set) if feature_set else {"grid": None, "roles": {}, "variables": {}}
    )
    roles = {**spec["roles"], **{r: F.product_list(v) for r, v in (inputs or {}).items() if v}}
    radiation = F.product_list(roles.get("radiation"))
    explicit = features is not None
    candidates = list(features) if explicit else list(F.GRIDDED_FEATURES)
    for f in candidates:
        F.spec(f)
    fs, _ = F.resolve_feature_set(
        F.cube_variables(candidates, radiation=bool(radiation)),
        roles,
        variables=spec["variables"],
        climatology=F.climatology_variables(candidates),
        grid=spec["grid"],
        strict=explicit,
    )
    dropped = {f: why for f in candidates if (why := _available(f, fs))}
    feats = [f for f in candidates if f not in dropped]
    grid_step = api.product_info(fs.grid).time_step
    if grid_step != step:
        raise InputError(
            f"{label} holds {step} tower data but the grid product {fs.grid!r} is {grid_step}: the gridded "
            f"features must be on the towers' time step (give a {step} forcing product)"
        )
    grid_parts, tower_parts, skipped = [], [], {}
    for site, rows in pairs:
        if rows.empty:
            continue
        try:
            cubes = F.tower_cubes(fs, feats, float(site["lon"]), float(site["lat"]), rows["time"].to_numpy())
        except InputError as exc:
            skipped[str(site["site_id"])] = str(exc)
            continue
        cells = F.cube_rows(cubes, feats, step)
        out = rows[list(_ROW_COLUMNS)].copy()
        out["site_lat"], out["site_lon"], out["site_igbp"] = rows["lat"], rows["lon"], rows["igbp"]
        out["lat"], out["lon"] = float(cubes.attrs["pixel_lat"]), float(cubes.attrs["pixel_lon"])
        out["pixel_distance_km"] = float(cubes.attrs["distance_km"])
        for f in feats:
            if f not in ("a", "lat"):
                out[f] = cells[f].to_numpy()
        if radiation:
            out["a_gridded"] = cells["a"].to_numpy()
        if "igbp" not in feats:
            out["igbp"] = rows["igbp"]
        grid_parts.append(out)
        tower_parts.append(rows)
    if not grid_parts:
        raise InputError(
            f"{label}: no tower lies in the grid product {fs.grid!r} ({'; '.join(skipped.values())})"
        )
    table = pd.concat(grid_parts, ignore_index=True)
    tower = pd.concat(tower_parts, ignore_index=True)
    for f in [f for f in feats if f not in ("a", "lat", "month", "sw_in_pot")]:
        if not np.isfinite(table[f].to_numpy(dtype=float)).any():
            var = F.spec(f).cube_variable or F.CLIMATOLOGY.get(f, "sw_in")
            product = fs.variables.get(var, fs.grid)
            why = f"missing at every tower row in {product!r}"
            if explicit:
                raise InputError(f"feature {f} is {why}; leave it out (--features) or give another product")
            dropped[f] = why
            feats.remove(f)
    required = F.required_features(feats)
    keep = (
        np.isfinite(table[required].to_numpy(dtype=float)).all(axis=1)
        if required
        else np.ones(len(table), bool)
    )
    if not keep.any():
        raise InputError(f"{label}: no tower row has every required gridded input ({', '.join(required)})")
    n_missing = int((~keep).sum())
    table = table.loc[keep].reset_index(drop=True)
    tower = F.add_climatology(tower.loc[keep].reset_index(drop=True))
    cube_only = [f for f in feats if F.spec(f).source == "cube"]
    for f in cube_only:  # not measured at towers: the same gridded values in both tables
        tower[f] = table[f].to_numpy()
    fs = fs.restricted(feats, radiation=bool(radiation))
    synthetic = synthetic or any(api.product_info(p).synthetic for p in fs.products())
    feature_source = {
        "kind": "gridded",
        "feature_set": fs.to_dict(),
        "radiation": radiation[0] if radiation else None,
        "dropped_features": dropped,
        "sites_outside_grid": skipped,
        "rows_without_inputs": n_missing,
        "pixel": "the grid product's pixel nearest to each tower (catalog.api.point_series)",
    }
    table.attrs.update(
        source=f"{label} (gridded features)",
        time_step=step,
        synthetic=synthetic,
        features=feats,
        feature_source=feature_source,
        cube_products=None,
    )
    tower.attrs.update(
        source=label,
        time_step=step,
        synthetic=synthetic,
        features=feats,
        gridded_in_both=cube_only,
    )
    return table, tower


def _finish(parts: list[pd.DataFrame], *, source: str, time_step: str, synthetic: bool) -> pd.DataFrame:
    if not parts:
        raise InputError(f"{source}: no rows with finite LE, H, NETRAD and G passing the QC filter")
    table = pd.concat(parts, ignore_index=True).sort_values(["site_id", "time"], kind="stable")
    table = F.add_climatology(table.reset_index(drop=True))
    table.attrs.update(source=source, time_step=time_step, synthetic=synthetic)
    return table


def fingerprint(table: pd.DataFrame) -> str:
    """sha256 of the table's content: column names, dtypes and values, in order."""
    h = hashlib.sha256()
    for col in table.columns:
        h.update(f"{col}:{table[col].dtype}\n".encode())
        values = table[col]
        if values.dtype.kind in "biufcM":
            h.update(np.ascontiguousarray(values.to_numpy()).tobytes())
        else:
            h.update("\x1f".join(values.astype(str).tolist()).encode())
    return h.hexdigest()
