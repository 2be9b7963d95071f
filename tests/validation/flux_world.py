"""A monthly flux world with known ILAMB answers, built from eight real FLUXNET2015 monthly towers.

Towers (``../shared/data/fluxnet2015_monthly``): US-ARM, US-Blo, US-Ha1 (North America), DE-Tha, FI-Hyy,
FR-Pue, IT-Lav (Europe), AU-How (Oceania), ingested as network ``fluxnet_mm``. Products, on a 5° global
monthly grid, 2000-2014: ``le_monthly`` holds ``le = a · LE_F_MDS + b`` and ``h = a · H_F_MDS + b`` in
each tower's pixel (``SITES``; 40 W m-2 where the tower has no value) over a smooth seasonal field;
``le_monthly_b`` holds the towers' own LE and H (a = 1, b = 0) on the same field, so it scores 1 where
``le_monthly`` scores less. FLUXNET2015: CC-BY-4.0, Pastorello et al. 2020, Sci Data 7:225.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

SITES = {  # site: (a, b) of the product a · x + b (W m-2)
    "US-ARM": (0.9, 5.0),
    "US-Blo": (1.2, -10.0),
    "US-Ha1": (0.8, 12.0),
    "DE-Tha": (1.0, 8.0),
    "FI-Hyy": (0.7, 3.0),
    "FR-Pue": (1.1, 0.0),
    "AU-How": (0.95, -4.0),
    "IT-Lav": (1.3, 2.0),
}
IGBP = {"US-ARM": "CRO", "US-Blo": "ENF", "US-Ha1": "DBF", "DE-Tha": "ENF", "FI-Hyy": "ENF", "FR-Pue": "EBF",
        "AU-How": "WSA", "IT-Lav": "ENF"}  # fmt: skip
EUROPE = ("DE-Tha", "FI-Hyy", "FR-Pue", "IT-Lav")
MONTHS = pd.date_range("2000-01-01", "2014-12-01", freq="MS")
LAT = np.arange(87.5, -90, -5.0)
LON = np.arange(-177.5, 180, 5.0)
FLUXES = {"le": "LE_F_MDS", "h": "H_F_MDS"}


def tower_series(path: Path) -> pd.DataFrame:
    """The tower's monthly LE and H with their QC fractions (``le``, ``le_qc``, ``h``, ``h_qc``)."""
    columns = ["TIMESTAMP", *[c for name in FLUXES.values() for c in (name, f"{name}_QC")]]
    raw = pd.read_csv(path, usecols=columns, na_values=[-9999])
    index = pd.to_datetime(raw["TIMESTAMP"].astype(str), format="%Y%m")
    out = {}
    for var, name in FLUXES.items():
        out[var] = raw[name].to_numpy()
        out[f"{var}_qc"] = raw[f"{name}_QC"].to_numpy()
    return pd.DataFrame(out, index=index)


def _cube(towers, pixels, coefficients) -> dict[str, np.ndarray]:
    base = 50.0 + 20 * np.sin(2 * np.pi * (MONTHS.month.to_numpy() - 4) / 12)[:, None, None]
    cubes = {}
    for var in FLUXES:
        cube = np.broadcast_to(base, (MONTHS.size, LAT.size, LON.size)).copy()
        for site, (a, b) in coefficients.items():
            x = towers[site][var].reindex(MONTHS).to_numpy()
            i, j = pixels[site]
            cube[:, i, j] = np.where(np.isfinite(x), a * x + b, 40.0)
        cubes[var] = cube.astype("float32")
    return cubes


def _dataset(cubes: dict[str, np.ndarray]) -> xr.Dataset:
    long_names = {"le": "latent heat flux", "h": "sensible heat flux"}
    return xr.Dataset(
        {
            v: (("time", "lat", "lon"), c, {"units": "W m-2", "long_name": long_names[v]})
            for v, c in cubes.items()
        },
        coords={"time": MONTHS.values.astype("datetime64[ns]"), "lat": LAT, "lon": LON},
        attrs={"time_step": "month"},
    )


def build(shared_data: Path) -> dict:
    """Ingest the towers and write both products into the current ``FLUXLENS_DATA_DIR``; returns the
    towers' series (``towers``) and the products' arrays (``product``: le_monthly's LE, ``cubes``)."""
    from catalog import store
    from data_prep import ingest
    from data_prep.fluxnet import read_site_table

    folder = shared_data / "fluxnet2015_monthly"
    files = {s: next(folder.glob(f"FLX_{s}_FLUXNET2015_SUBSET_MM_*.csv")) for s in SITES}
    ingest.ingest("fluxnet", list(files.values()), name="fluxnet_mm", sites_path=folder)
    info = read_site_table(folder / "FluxNET_sites.csv").set_index("site_id")
    towers = {site: tower_series(path) for site, path in files.items()}
    pixels = {
        site: (
            int(np.abs(LAT - info.loc[site, "lat"]).argmin()),
            int(np.abs(LON - info.loc[site, "lon"]).argmin()),
        )
        for site in SITES
    }
    cubes = _cube(towers, pixels, SITES)
    store.write_product(
        _dataset(cubes), "le_monthly", provenance={"test": "a x + b at 8 towers"}, synthetic=True
    )
    exact = _cube(towers, pixels, dict.fromkeys(SITES, (1.0, 0.0)))
    store.write_product(
        _dataset(exact), "le_monthly_b", provenance={"test": "the towers' own values"}, synthetic=True
    )
    return {"towers": towers, "product": cubes["le"], "cubes": cubes, "exact": exact, "pixels": pixels}
