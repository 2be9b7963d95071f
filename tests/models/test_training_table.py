import csv
import shutil

import numpy as np
import pandas as pd
import pytest

from catalog.errors import InputError
from models import features as F
from models import training_table as T
from tests.stores import level_path


def _csv_rows(path):
    with open(path, newline="") as fh:
        return {r["TIMESTAMP"]: r for r in csv.DictReader(fh)}


@pytest.fixture(scope="module")
def monthly(shared_data):
    return T.from_fluxnet_folder(shared_data / "fluxnet2015_monthly")


def test_monthly_rows_match_the_files(monthly, shared_data):
    path = next((shared_data / "fluxnet2015_monthly").glob("FLX_AT-Neu_*_MM_*.csv"))
    raw = _csv_rows(path)["200207"]
    row = monthly[(monthly["site_id"] == "AT-Neu") & (monthly["time"] == "2002-07-01")].iloc[0]
    assert row["le_raw"] == pytest.approx(float(raw["LE_F_MDS"]))
    assert row["h_raw"] == pytest.approx(float(raw["H_F_MDS"]))
    assert row["le_corr"] == pytest.approx(float(raw["LE_CORR"]))
    assert row["a"] == pytest.approx(float(raw["NETRAD"]) - float(raw["G_F_MDS"]))
    assert row["ta"] == pytest.approx(float(raw["TA_F"])) and row["vpd"] == pytest.approx(float(raw["VPD_F"]))
    assert row["igbp"] == F.IGBP_CODES["GRA"] and row["month"] == 7
    assert monthly.attrs["time_step"] == "month" and monthly.attrs["synthetic"] is False
    site = monthly[monthly["site_id"] == "AT-Neu"]
    assert (site["precip_clim"] == site["precip"].mean()).all()
    assert row["dryness"] == pytest.approx(site["sw_in"].mean() / (28.36 * site["precip"].mean() + 1.0))


def test_qc_filter_and_required_energy_terms(monthly, shared_data):
    folder = shared_data / "fluxnet2015_monthly"
    low_qc, no_g = [], []
    for path in sorted(folder.glob("FLX_*_MM_*.csv"))[:40]:
        site = path.name.split("_")[1]
        for stamp, r in _csv_rows(path).items():
            vals = [float(r.get(c, -9999)) for c in ("LE_F_MDS", "H_F_MDS", "NETRAD", "G_F_MDS")]
            if -9999 in vals:
                no_g.append((site, stamp))
            elif 0 <= float(r["LE_F_MDS_QC"]) < 0.5:
                low_qc.append((site, stamp))
    keys = set(zip(monthly["site_id"], monthly["time"].dt.strftime("%Y%m"), strict=True))
    assert low_qc and no_g
    assert not keys & set(low_qc) and not keys & set(no_g)
    assert monthly[["le_raw", "h_raw", "rn", "g", "a"]].notna().all().all()
    assert monthly["site_id"].nunique() > 100


def test_bad_sources(tmp_path, data_dir):
    with pytest.raises(InputError, match="no FLUXNET files"):
        T.from_fluxnet_folder(tmp_path)
    with pytest.raises(InputError, match="neither a folder"):
        T.resolve_source("no-such-network")


def test_demo_network_with_cube_features(demo_world, tmp_path, monkeypatch):
    d = tmp_path / "data"
    shutil.copytree(demo_world, d)
    monkeypatch.setenv("FLUXLENS_DATA_DIR", str(d))
    from catalog import api

    table = T.build("fluxnet_demo")
    assert table.attrs["synthetic"] is True and table.attrs["time_step"] == "day"
    sites = api.sites("fluxnet_demo")
    assert set(table["site_id"]) <= set(sites["site_id"])
    site = sites.iloc[0]
    rows = table[table["site_id"] == site["site_id"]].set_index("time")
    obs = api.site_observations("fluxnet_demo", site["site_id"]).set_index("time")
    t = rows.index[3]
    assert rows.loc[t, "le_corr"] == pytest.approx(obs.loc[t, "LE_CORR"])
    # cube features equal the level-0 Zarr value at the nearest pixel, read with xarray directly
    import xarray as xr

    z = xr.open_zarr(level_path(d, "forcing_demo"), consolidated=False)
    pix = z["lai"].sel(lon=site["lon"], lat=site["lat"], method="nearest").sel(time=t)
    assert rows.loc[t, "lai"] == pytest.approx(float(pix))
    zs = xr.open_zarr(level_path(d, "static_demo"), consolidated=False)
    elev = zs["elevation"].sel(lon=site["lon"], lat=site["lat"], method="nearest").isel(time=0)
    assert (rows["elevation"] == float(elev)).all()
    for f in F.DEMO_FEATURES:
        assert f in table.columns
    assert np.isfinite(table[["lai", "ndvi"]]).all().all()
    assert isinstance(table["time"].iloc[0], pd.Timestamp)
