"""The emulator's training table: one row per site and time step, features and targets side by side.

Sources:

- a folder of FLUXNET2015/ONEFlux files plus a site list (``FluxNET_sites.csv``), read with
  :func:`data_prep.fluxnet.read_fluxnet` and :func:`data_prep.fluxnet.read_site_table`;
- a station network of the catalog (e.g. the demo world's ``fluxnet_demo``) through
  :func:`catalog.api.site_observations`, with cube-only features (LAI, NDVI, soil moisture,
  elevation) sampled at each tower's pixel with :func:`catalog.api.point_series`.

Columns: ``site_id, time, year, lat, lon, igbp`` (code 1-17), ``igbp_name``, the features of
:mod:`models.features` that the source provides (climatology features: means over the site's rows
that passed the QC filter), and the energy terms (W m-2): ``rn`` (NETRAD),
``g``, ``a = rn - g``, raw targets ``le_raw, h_raw`` (``LE_F_MDS``, ``H_F_MDS``) and corrected targets
``le_corr, h_corr`` (``LE_CORR``, ``H_CORR``, NaN where the source has none).

Rows kept: LE, H, NETRAD and G all finite and their QC (fraction of good data) ≥ ``qc_min`` where the
source gives a QC. Meteorological features may be NaN (LightGBM routes missing values).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pandas as pd

from catalog import api
from catalog.errors import InputError
from data_prep.fluxnet import read_fluxnet, read_site_table
from models import features as F

QC_MIN = 0.5
ENERGY_QC = ("LE", "H", "NETRAD", "G")
DEMO_CUBE_PRODUCTS = {"forcing": "forcing_demo", "static": "static_demo", "ssm": "ssm_global_demo"}
FLUXNET_FILE_GLOB = "FLX_*_FLUXNET2015_*.csv"
SHARED_DATA_ENV = "FLUXLENS_SHARED_DATA"
DEFAULT_SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"  # beside the checkout

_ENERGY_COLUMNS = {
    "LE": "le_raw",
    "H": "h_raw",
    "LE_CORR": "le_corr",
    "H_CORR": "h_corr",
    "NETRAD": "rn",
    "G": "g",
}


def _time_step(times: pd.Series) -> str:
    t = pd.DatetimeIndex(times.dropna().sort_values().unique())
    if len(t) < 2:
        return "day"
    return "month" if np.median(np.diff(t.asi8)) >= 27 * 86400e9 else "day"


def station_rows(obs: pd.DataFrame, site: pd.Series, *, qc_min: float = QC_MIN, time_step: str | None = None):
    """Training rows of one site from its canonical station table and its site-table row."""
    obs = obs.copy()
    keep = np.ones(len(obs), dtype=bool)
    for name in ENERGY_QC:
        keep &= obs[name].notna().to_numpy()
        qc = obs.get(f"{name}_QC")
        if qc is not None and qc_min is not None:
            keep &= ~(qc.to_numpy(dtype=float) < qc_min)  # NaN QC (none given) keeps the value
    obs = obs.loc[keep]
    time = pd.to_datetime(obs["time"])
    step = time_step or _time_step(time)
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


def from_fluxnet_folder(folder, *, qc_min: float = QC_MIN) -> pd.DataFrame:
    """Training table from a folder of FLUXNET files and its site list."""
    folder = Path(folder)
    files = sorted(folder.glob(FLUXNET_FILE_GLOB))
    if not files:
        raise InputError(f"{folder}: no FLUXNET files ({FLUXNET_FILE_GLOB})")
    sites = read_site_table(folder).set_index("site_id", drop=False)
    parts, steps = [], set()
    for path in files:
        obs = read_fluxnet(path)
        sid = str(obs["site_id"].iloc[0]) if len(obs) else None
        if sid not in sites.index:
            raise InputError(f"{path}: site {sid} is not in the site list of {folder}")
        step = "month" if obs.attrs.get("resolution") == "MM" else "day"
        steps.add(step)
        rows = station_rows(obs, sites.loc[sid], qc_min=qc_min, time_step=step)
        if len(rows):
            parts.append(rows)
    if len(steps) > 1:
        raise InputError(f"{folder}: files of several time steps {sorted(steps)}; train on one")
    return _finish(parts, source=str(folder), time_step=steps.pop(), synthetic=False)


def _cube_features(site: pd.Series, features, cube_products: dict[str, str]) -> tuple[pd.DataFrame, dict]:
    """Cube-only features at the site's pixel, one row per time of the product (static: broadcast)."""
    frames, static = [], {}
    wanted: dict[str, list[str]] = {}
    for name in features:
        feat = F.spec(name)
        if feat.source == "cube" or (name == "igbp" and not np.isfinite(site.get("igbp_code", np.nan))):
            wanted.setdefault(feat.cube_role, []).append(name)
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
) -> pd.DataFrame:
    """Training table from a catalog station network, cube-only features sampled at tower pixels."""
    cube_products = dict(DEMO_CUBE_PRODUCTS if cube_products is None else cube_products)
    sites = api.sites(network)
    if "igbp_code" not in sites:
        sites["igbp_code"] = F.igbp_code(sites["igbp"].fillna("")) if "igbp" in sites else np.nan
    parts, steps = [], set()
    for _, site in sites.iterrows():
        obs = api.site_observations(network, site["site_id"])
        if obs.empty:
            continue
        rows = station_rows(obs, site, qc_min=qc_min)
        steps.add(rows.attrs["time_step"])
        cube, static = _cube_features(site, features, cube_products)
        if len(cube.columns):
            rows = rows.merge(cube, left_on="time", right_index=True, how="left")
        for name, value in static.items():
            rows[name] = value
        if len(rows):
            parts.append(rows)
    if len(steps) > 1:
        raise InputError(f"network {network!r} mixes time steps {sorted(steps)}")
    info = api.network_info(network)
    table = _finish(
        parts,
        source=f"network:{network}",
        time_step=steps.pop() if steps else "day",
        synthetic=bool(info.get("synthetic", False)),
    )
    table.attrs["cube_products"] = cube_products
    return table


def resolve_source(source: str) -> tuple[str, str]:
    """("folder", path) or ("network", name) for a ``--sites-source`` value.

    A folder path; a catalog station network; or the name of a folder under
    ``$FLUXLENS_SHARED_DATA`` (default ``../shared/data`` beside the checkout), e.g.
    ``fluxnet2015_monthly``.
    """
    if Path(source).is_dir():
        return "folder", str(Path(source))
    try:
        networks = api.list_networks()
    except (InputError, FileNotFoundError):
        networks = []
    if source in networks:
        return "network", source
    shared = Path(os.environ.get(SHARED_DATA_ENV) or DEFAULT_SHARED_DATA)
    if (shared / source).is_dir():
        return "folder", str(shared / source)
    raise InputError(
        f"sites source {source!r} is neither a folder, a station network of the catalog "
        f"({', '.join(networks) or 'none'}) nor a folder under ${SHARED_DATA_ENV}"
    )


def build(source: str, *, features=None, cube_products=None, qc_min: float = QC_MIN) -> pd.DataFrame:
    """Training table for ``source`` (see :func:`resolve_source`)."""
    kind, where = resolve_source(source)
    if kind == "folder":
        return from_fluxnet_folder(where, qc_min=qc_min)
    return from_network(
        where, features=features or F.DEMO_FEATURES, cube_products=cube_products, qc_min=qc_min
    )


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
