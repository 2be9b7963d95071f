"""How the demo world is observed: synthetic towers, in-situ probes and satellite products (pure numpy).

Each sensor sees the demo world's truth (``data_prep.demo_world``) through its own error model:

* **Flux towers** (FLUXNET2015 DD tables): the grid cell's truth plus measurement noise; turbulent
  fluxes under-close the energy balance like real towers — ``LE + H = c (NETRAD − G)`` with a site
  closure ``c`` of 0.72–0.90 and daily scatter — and ``LE_CORR``/``H_CORR`` rescale them with the ratio
  (NETRAD − G)/(LE + H) taken as the median over a ±7-day window (the FLUXNET2015 method). Gaps: some
  days gap-filled (QC < 1, values a running mean), sensor outages (missing), partial days.
  ``SWC`` carries a site bias (probe vs. cell) of ±0.04 m3 m-3.
* **In-situ probes** (ISMN, 0–5 cm): truth plus a station bias (±0.03), AR(1) noise (0.015); flags
  ``D02`` when the air is below 0 °C, ``C02`` above saturation, missing runs.
* **ESA CCI-like** 0.25°: ``0.05 + 0.75·truth`` plus a smooth regional bias and AR(1) noise (0.035);
  flag bits 1 snow/frozen, 2 dense vegetation (LAI > 4.8), 4/16 scattered retrieval failures; about
  15 % of land pixels per day without a retrieval.
* **SMAP-like** (AM/PM): ``truth − 0.02`` plus noise (0.03), only inside the day's orbit swaths
  (1000 km wide, 14.6 orbits a day, shifted daily); retrieval_qual_flag bit 0 (not recommended) over
  frozen ground, snow, dense vegetation (LAI > 5) and 3 % radio-frequency interference.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.ndimage as ndi

from catalog.igbp import IGBP_LONG_NAMES, IGBP_NAMES
from data_prep import demo_world as w

CCI_FLAG_FROZEN, CCI_FLAG_DENSE_VEG, CCI_FLAG_NO_CONVERGENCE, CCI_FLAG_LOW_WEIGHT = 1, 2, 4, 16
SMAP_ORBITS_PER_DAY = 14.56
SMAP_SWATH_KM = 1000.0
SMAP_NOT_RECOMMENDED = 1

# ISO 3166 alpha-3 → alpha-2 of the countries towers may land in (site ids read like FLUXNET's).
_ISO2 = {
    "USA": "US", "CAN": "CA", "MEX": "MX", "BRA": "BR", "ARG": "AR", "BOL": "BO", "PER": "PE",
    "COL": "CO", "VEN": "VE", "CHL": "CL", "PRY": "PY", "URY": "UY", "ECU": "EC", "GUY": "GY",
    "FRA": "FR", "DEU": "DE", "ESP": "ES", "PRT": "PT", "ITA": "IT", "GBR": "GB", "IRL": "IE",
    "POL": "PL", "UKR": "UA", "BLR": "BY", "FIN": "FI", "SWE": "SE", "NOR": "NO", "RUS": "RU",
    "KAZ": "KZ", "MNG": "MN", "CHN": "CN", "IND": "IN", "PAK": "PK", "IRN": "IR", "TUR": "TR",
    "SAU": "SA", "EGY": "EG", "DZA": "DZ", "LBY": "LY", "MAR": "MA", "MLI": "ML", "NER": "NE",
    "TCD": "TD", "SDN": "SD", "ETH": "ET", "KEN": "KE", "TZA": "TZ", "COD": "CD", "AGO": "AO",
    "ZMB": "ZM", "ZAF": "ZA", "NAM": "NA", "BWA": "BW", "MOZ": "MZ", "MDG": "MG", "NGA": "NG",
    "CMR": "CM", "CAF": "CF", "AUS": "AU", "NZL": "NZ", "IDN": "ID", "THA": "TH", "MMR": "MM",
    "VNM": "VN", "JPN": "JP", "KOR": "KR", "AFG": "AF", "UZB": "UZ", "TKM": "TM", "IRQ": "IQ",
    "SWZ": "SZ", "GRL": "GL", "ISL": "IS", "ROU": "RO", "HUN": "HU", "AUT": "AT", "CHE": "CH",
    "EST": "EE", "LVA": "LV", "LTU": "LT", "SSD": "SS", "MRT": "MR", "PNG": "PG", "ZWE": "ZW",
    "SOM": "SO", "GAB": "GA", "COG": "CG", "CIV": "CI", "GHA": "GH", "SEN": "SN", "UGA": "UG",
    "LAO": "LA", "KHM": "KH", "MYS": "MY", "PHL": "PH", "NPL": "NP", "SYR": "SY", "TUN": "TN",
}  # fmt: skip


# ---------------------------------------------------------------------------------------------------
# where the sites are


def _countries(lat: np.ndarray, lon: np.ndarray) -> list[tuple[str, str]]:
    """(ISO alpha-2 or "XX", country name) at each point, from the Natural Earth polygons if installed."""
    land_path, _ = w.natural_earth_paths()
    if land_path is None:
        return [("XX", "")] * lat.size
    import pyogrio.raw
    import shapely

    _, _, geometry, fields = pyogrio.raw.read(land_path, columns=["name", "iso_a3"])
    polygons = shapely.from_wkb(geometry)
    points = shapely.points(lon, lat)
    out = []
    for p in points:
        hit = next((i for i, g in enumerate(polygons) if g is not None and g.contains(p)), None)
        out.append(("XX", "") if hit is None else (_ISO2.get(fields[1][hit], "XX"), str(fields[0][hit])))
    return out


def place_sites(world: w.GridWorld, spec: w.DemoSpec, n: int, n_region: int, stream: str) -> pd.DataFrame:
    """``n`` sites on vegetated land, ``n_region`` of them at random points inside the GSSM region and
    the others on distinct cells elsewhere (a point inside the cell, a quarter cell from its edge).

    Returns ``cell`` (index into the world's points), ``lat``, ``lon``, ``igbp`` (the cell's class) and
    ``elevation``.
    """
    rng = w.rng_for(stream)
    pts = world.points
    igbp = pts.static["igbp"]
    usable = ~np.isin(igbp, (15, 16))
    west, south, east, north = spec.region
    region_lat, region_lon, region_cell = [], [], []
    while len(region_cell) < n_region:
        lat = round(float(rng.uniform(south + 0.1, north - 0.1)), 4)
        lon = round(float(rng.uniform(west + 0.1, east - 0.1)), 4)
        cell = int(world.nearest_cell(np.array([lat]), np.array([lon]))[0])
        if cell >= 0 and usable[cell]:
            region_lat.append(lat)
            region_lon.append(lon)
            region_cell.append(cell)
    weight = usable * np.where(np.abs(pts.lat) < 70, 1.0, 0.1) * np.cos(np.deg2rad(pts.lat))
    inside = (pts.lon > west) & (pts.lon < east) & (pts.lat > south) & (pts.lat < north)
    weight[inside] = 0
    cells = rng.choice(pts.lat.size, n - n_region, replace=False, p=weight / weight.sum())
    res = w.world_res(world)
    jitter = rng.uniform(-0.25, 0.25, (2, cells.size)) * res
    all_cells = np.concatenate([region_cell, cells]).astype(np.int64)
    return pd.DataFrame(
        {
            "cell": all_cells,
            "lat": np.concatenate([region_lat, np.round(pts.lat[cells] + jitter[0], 4)]),
            "lon": np.concatenate([region_lon, np.round(pts.lon[cells] + jitter[1], 4)]),
            "igbp": igbp[all_cells].astype(int),
            "elevation": pts.static["elevation"][all_cells],
        }
    )


def tower_sites(world: w.GridWorld, spec: w.DemoSpec) -> pd.DataFrame:
    """The demo flux towers: ``site_id`` (``CC-Dnn``), ``name``, position, IGBP, closure."""
    sites = place_sites(world, spec, spec.n_towers, spec.n_towers_region, "towers")
    countries = _countries(sites["lat"].to_numpy(), sites["lon"].to_numpy())
    rng = w.rng_for("towers/closure")
    sites["site_id"] = [f"{cc}-D{i + 1:02d}" for i, (cc, _) in enumerate(countries)]
    sites["name"] = [
        f"Demo {IGBP_LONG_NAMES[g]} {i + 1:02d}" + (f", {name}" if name else "")
        for i, (g, (_, name)) in enumerate(zip(sites["igbp"], countries, strict=True))
    ]
    sites["igbp_code"] = sites["igbp"]
    sites["igbp"] = sites["igbp_code"].map(IGBP_NAMES)
    sites["closure"] = rng.uniform(0.72, 0.9, len(sites))
    return sites


def ismn_stations(world: w.GridWorld, spec: w.DemoSpec) -> pd.DataFrame:
    """The demo in-situ soil-moisture stations: ``station`` (no spaces), position, IGBP."""
    sites = place_sites(world, spec, spec.n_stations, spec.n_stations_region, "stations")
    sites["station"] = [f"Demo{i + 1:02d}" for i in range(len(sites))]
    return sites


# ---------------------------------------------------------------------------------------------------
# towers


def _runs(rng: np.random.Generator, n_days: int, n_runs: int, min_len: int, max_len: int) -> np.ndarray:
    """Boolean mask of ``n_runs`` random runs of consecutive days."""
    mask = np.zeros(n_days, bool)
    for _ in range(n_runs):
        length = int(rng.integers(min_len, max_len + 1))
        start = int(rng.integers(0, max(1, n_days - length)))
        mask[start : start + length] = True
    return mask


def _window_median(values: np.ndarray, half: int) -> np.ndarray:
    s = pd.Series(values)
    return s.rolling(2 * half + 1, center=True, min_periods=3).median().to_numpy()


def tower_table(world: w.GridWorld, site: pd.Series, period: tuple[str, str], index: int) -> pd.DataFrame:
    """One tower's daily table (FluxLens canonical columns, SWC in m3 m-3) over ``period``."""
    pts = world.points.period(*period)
    s = {k: v[:, int(site["cell"])].astype(np.float64) for k, v in pts.series.items() if v.dtype != bool}
    n = pts.time.size
    rng = w.rng_for(f"tower/{index}")
    closure = site["closure"] * (1 + 0.06 * rng.standard_normal(n))
    netrad = s["rn"] + 4 * rng.standard_normal(n)
    g = s["g"] + 2 * rng.standard_normal(n)
    le = closure * s["le"] + 4 * rng.standard_normal(n)
    h = closure * s["h"] + 4 * rng.standard_normal(n)
    ones = np.ones(n)
    qc = {k: ones.copy() for k in ("LE", "H", "NETRAD", "G", "SWC", "TA", "VPD", "P", "SW_IN", "LW_IN", "WS")}

    partial = rng.random(n) < 0.15
    for name in ("LE", "H", "G"):
        qc[name][partial] = np.round(rng.uniform(0.5, 0.95, partial.sum()), 3)
    filled = _runs(rng, n, max(1, n // 60), 2, 8)
    smooth = {k: pd.Series(v).rolling(7, center=True, min_periods=1).mean().to_numpy() for k, v in
              (("LE", le), ("H", h), ("G", g))}  # fmt: skip
    le = np.where(filled, smooth["LE"], le)
    h = np.where(filled, smooth["H"], h)
    g = np.where(filled, smooth["G"], g)
    for name in ("LE", "H", "G"):
        qc[name][filled] = np.round(rng.uniform(0.0, 0.4, filled.sum()), 3)

    swc = np.clip(s["ssm"] + rng.normal(0, 0.04) + 0.01 * rng.standard_normal(n), 0.01, 0.6)
    table = {
        "time": pts.time,
        "LE": le,
        "H": h,
        "NETRAD": netrad,
        "G": g,
        "SWC": swc,
        "TA": s["ta"] + 0.5 * rng.standard_normal(n),
        "VPD": np.maximum(s["vpd"] * (1 + 0.1 * rng.standard_normal(n)), 0),
        "P": s["precip"] * np.exp(0.3 * rng.standard_normal(n)),
        "SW_IN": np.maximum(s["sw_in"] * (1 + 0.03 * rng.standard_normal(n)), 0),
        "LW_IN": s["lw_in"] + 5 * rng.standard_normal(n),
        "WS": np.maximum(s["ws"] * (1 + 0.1 * rng.standard_normal(n)), 0.1),
    }
    outages = {
        "SWC": _runs(rng, n, int(rng.integers(0, 2)), 5, 25),
        "G": _runs(rng, n, int(rng.integers(0, 2)), 3, 15),
    }
    for name, mask in outages.items():
        table[name] = np.where(mask, np.nan, table[name])
        qc[name][mask] = np.nan
    if rng.random() < 0.15:  # some towers have no heat-flux plates
        table["G"][:] = np.nan
        qc["G"][:] = np.nan

    available = table["NETRAD"] - np.nan_to_num(table["G"], nan=0.0)
    ratio = np.where(np.abs(le + h) > 20, available / (le + h), np.nan)
    ratio = np.clip(_window_median(ratio, 7), 0.5, 2.0)
    ratio = pd.Series(ratio).ffill().bfill().to_numpy()
    table["LE_CORR"] = le * ratio
    table["H_CORR"] = h * ratio
    for name, values in qc.items():
        table[f"{name}_QC"] = values
    df = pd.DataFrame(table)
    df.insert(0, "site_id", site["site_id"])
    return df


# ---------------------------------------------------------------------------------------------------
# in-situ probes


def ismn_table(world: w.GridWorld, station: pd.Series, period: tuple[str, str], index: int) -> pd.DataFrame:
    """One probe's daily table: ``time``, ``soil_moisture`` (m3 m-3), ``flag`` (ISMN codes)."""
    pts = world.points.period(*period)
    cell = int(station["cell"])
    truth = pts.series["ssm"][:, cell].astype(np.float64)
    ta = pts.series["ta"][:, cell]
    n = truth.size
    rng = w.rng_for(f"ismn/{index}")
    noise = np.zeros(n)
    shocks = 0.015 * rng.standard_normal(n)
    for t in range(1, n):
        noise[t] = 0.6 * noise[t - 1] + 0.8 * shocks[t]
    value = np.clip(truth + rng.uniform(-0.03, 0.03) + noise, 0.005, None)
    spikes = rng.random(n) < 0.01
    value[spikes] = rng.uniform(0.6, 0.7, spikes.sum())
    flag = np.where(ta < 0, "D02", "G").astype(object)
    flag[value > 0.55] = "C02"
    df = pd.DataFrame({"time": pts.time, "soil_moisture": np.round(value, 4), "flag": flag})
    return df[~_runs(rng, n, int(rng.integers(0, 3)), 4, 20)].reset_index(drop=True)


# ---------------------------------------------------------------------------------------------------
# satellite products on a regular grid


def regrid_truth(world: w.GridWorld, lat: np.ndarray, lon: np.ndarray, values: np.ndarray) -> np.ndarray:
    """(time, point) truth → (time, lat, lon) on another regular grid, bilinear (ocean filled first)."""
    if np.array_equal(lat, world.lat) and np.array_equal(lon, world.lon):
        return world.grid(values)
    wy = w.interpolation_matrix(world.lat[::-1], lat)[:, ::-1].astype(np.float32)
    wx = w.interpolation_matrix(world.lon, lon, periodic=360.0).astype(np.float32)
    iy, ix = np.nonzero(world.land)
    _, (fy, fx) = ndi.distance_transform_edt(~world.land, return_indices=True)
    lookup = np.full(world.land.shape, -1, np.int64)
    lookup[iy, ix] = np.arange(iy.size)
    nearest = lookup[fy, fx]
    out = np.empty((values.shape[0], lat.size, lon.size), np.float32)
    for t in range(values.shape[0]):
        field = values[t].astype(np.float32)[nearest]
        out[t] = wy @ field @ wx.T
    return out


def _product_truth(world: w.GridWorld, period, lat, lon, land):
    pts = world.points.period(*period)
    ssm = regrid_truth(world, lat, lon, np.nan_to_num(pts.series["ssm"], nan=0.0))
    lai = regrid_truth(world, lat, lon, pts.series["lai"])
    cold = regrid_truth(world, lat, lon, (pts.series["frozen"] | pts.series["snow"]).astype(np.float32)) > 0.5
    ice = regrid_truth(world, lat, lon, np.isnan(pts.series["ssm"]).astype(np.float32)) > 0.5
    land3 = np.broadcast_to(land, ssm.shape) & ~ice
    return pts.time, ssm, lai, cold, land3


def _ar1_fields(name: str, lat, lon, n_days: int, spacing: float, rho: float) -> np.ndarray:
    return w.grid_daily_noise(name, lat, lon, n_days, spacing, rho)


def esacci_like(world: w.GridWorld, period, lat, lon, land) -> dict[str, np.ndarray]:
    """ESA CCI-like ``ssm``, ``ssm_uncertainty`` and ``flag`` (time, lat, lon) over ``period``."""
    time, truth, lai, cold, land3 = _product_truth(world, period, lat, lon, land)
    n = time.size
    bias = 0.05 + 0.03 * w.grid_noise("cci/bias", lat, lon, (12.0, 4.0), (1.0, 0.5))
    noise = 0.035 * _ar1_fields("cci/noise", lat, lon, n, 1.0, 0.5)
    ssm = np.clip(bias + 0.75 * truth + noise, 0.01, 0.6)
    flag = np.zeros(ssm.shape, np.int16)
    flag[cold] |= CCI_FLAG_FROZEN
    flag[lai > 4.8] |= CCI_FLAG_DENSE_VEG
    rng = w.rng_for("cci/flags")
    flag[rng.random(ssm.shape) < 0.02] |= CCI_FLAG_NO_CONVERGENCE
    flag[_ar1_fields("cci/weight", lat, lon, n, 3.0, 0.3) > 2.2] |= CCI_FLAG_LOW_WEIGHT
    observed = _ar1_fields("cci/coverage", lat, lon, n, 4.0, 0.2) > -1.0
    uncertainty = 0.03 + 0.02 * (lai / 5) + 0.005 * np.abs(_ar1_fields("cci/unc", lat, lon, n, 6.0, 0.8))
    ssm = np.where(land3 & observed, ssm, np.nan)
    return {
        "time": time,
        "ssm": w.quantize(ssm, 10),
        "ssm_uncertainty": np.where(np.isfinite(ssm), w.quantize(uncertainty, 10), np.nan).astype(np.float32),
        "flag": np.where(land3, flag, -1),
    }


def smap_swath_mask(lat: np.ndarray, lon: np.ndarray, day: int, half_day: int) -> np.ndarray:
    """(lat, lon) True inside the day's SMAP swaths for one pass (0 = AM descending, 1 = PM)."""
    spacing = 360.0 / SMAP_ORBITS_PER_DAY
    offset = (day * 0.375 * spacing + half_day * 0.5 * spacing) % spacing
    half_width = SMAP_SWATH_KM / 2 / (111.32 * np.maximum(np.cos(np.deg2rad(lat)), 1e-3))
    distance = np.abs(((lon[None, :] - offset + spacing / 2) % spacing) - spacing / 2)
    return distance <= half_width[:, None]


def smap_like(world: w.GridWorld, period, lat, lon, land) -> dict[str, np.ndarray]:
    """SMAP-like ``ssm_am``/``ssm_pm`` and ``qual_am``/``qual_pm`` (time, lat, lon) over ``period``."""
    time, truth, lai, cold, land3 = _product_truth(world, period, lat, lon, land)
    n = time.size
    rng = w.rng_for("smap/flags")
    out = {"time": time}
    for p, name in enumerate(("am", "pm")):
        noise = 0.03 * _ar1_fields(f"smap/noise/{name}", lat, lon, n, 0.75, 0.3)
        ssm = np.clip(truth - 0.02 + noise, 0.02, 0.6)
        swath = np.stack([smap_swath_mask(lat, lon, (d - time[0]).days, p) for d in time])
        qual = np.zeros(ssm.shape, np.float32)
        not_recommended = cold | (lai > 5.0) | (rng.random(ssm.shape) < 0.03)
        qual[not_recommended] = SMAP_NOT_RECOMMENDED
        seen = land3 & swath
        out[f"ssm_{name}"] = np.where(seen, w.quantize(ssm, 10), np.nan).astype(np.float32)
        out[f"qual_{name}"] = np.where(seen, qual, np.nan).astype(np.float32)
    return out
