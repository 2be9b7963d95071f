import csv
import shutil

import numpy as np
import pandas as pd
import pytest

from catalog.errors import InputError
from data_prep.site_lists import read_sites_file
from models import features as F
from models import training_table as T
from tests.stores import level_path


def _csv_rows(path):
    with open(path, newline="") as fh:
        return {r["TIMESTAMP"]: r for r in csv.DictReader(fh)}


@pytest.fixture(scope="module")
def monthly(shared_data, tmp_path_factory):
    """The training table of the 176 monthly FLUXNET2015 towers, ingested as a network first."""
    from data_prep.ingest import ingest_fluxnet

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FLUXLENS_DATA_DIR", str(tmp_path_factory.mktemp("monthly") / "fluxlens-data"))
        ingest_fluxnet([shared_data / "fluxnet2015_monthly"], name="fluxnet2015_monthly")
        return T.build("fluxnet2015_monthly")


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
    with pytest.raises(InputError, match="not a station network of the catalog"):
        T.resolve_source("no-such-network")
    with pytest.raises(InputError, match="not a station network"):
        T.resolve_source(str(tmp_path))  # a folder: models read only through the catalog


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


def test_monthly_network_takes_its_time_step_from_the_ingest(shared_data, data_dir, tmp_path):
    """A site with fewer than 2 rows after QC (AR-Vir has none) no longer makes the network 'mixed'."""
    from fluxlens import cli

    folder = shared_data / "fluxnet2015_monthly"
    files = [str(next(folder.glob(f"FLX_{s}_*.csv"))) for s in ("AR-Vir", "AT-Neu", "BE-Vie", "CH-Cha")]
    assert cli.main(["ingest", "fluxnet", *files, "--name", "mm"]) == 0
    pairs, step, _, _ = T._network_pairs("mm", qc_min=T.QC_MIN)
    assert step == "month" and min(len(rows) for _, rows in pairs) < 2
    table = T.build("mm")
    assert table.attrs["time_step"] == "month" and table.attrs["synthetic"] is False
    assert set(table["site_id"]) == {s["site_id"] for s, rows in pairs if len(rows)} >= {"AT-Neu", "BE-Vie"}
    # a real network gets tower meteorology only, never the demo world's synthetic cubes
    assert T.default_features("mm") == F.FLUXNET_FEATURES and "lai" not in table.columns
    neu = table[(table["site_id"] == "AT-Neu") & (table["time"] == "2002-07-01")].iloc[0]
    assert neu["sw_in_pot"] == pytest.approx(
        F.sw_in_pot([47.11667], ["2002-07-01"], time_step="month")[0], 1e-3
    )

    listed = tmp_path / "two.txt"
    listed.write_text("# two sites\nAT-Neu\nBE-Vie  # deciduous\n")
    two = T.build("mm", site_list=read_sites_file(listed))
    assert set(two["site_id"]) == {"AT-Neu", "BE-Vie"}
    assert cli.main(["train", "--sites-source", "mm", "--sites", str(listed), "--trees", "5", "--folds", "2",
                     "--splits", "random,spatial"]) == 0  # fmt: skip
    from models import registry

    meta = registry.read_meta(registry.latest_version())
    assert meta["training_data"]["time_step"] == "month" and meta["training_data"]["n_sites"] == 2
    assert meta["feature_source"] == {"kind": "tower", "cube_products": None}
    assert {r["split"] for r in meta["cv_summary"]} == {"random", "spatial"}
    listed.write_text("AT-Neu\nXX-Nope\n")
    with pytest.raises(InputError, match=r"sites \['XX-Nope'\] are not in network 'mm'"):
        T.build("mm", site_list=read_sites_file(listed))


def test_network_without_a_recorded_resolution_uses_all_sites_spacing(shared_data, data_dir):
    from catalog import store
    from data_prep.fluxnet import read_fluxnet, read_site_table

    folder = shared_data / "fluxnet2015_monthly"
    neu = read_fluxnet(next(folder.glob("FLX_AT-Neu_*.csv")))
    vie = read_fluxnet(next(folder.glob("FLX_BE-Vie_*.csv")))
    vie = vie[vie["LE"].notna() & vie["G"].notna() & vie["NETRAD"].notna()].iloc[:1]  # one row
    sites = read_site_table(folder)
    sites = sites[sites["site_id"].isin(["AT-Neu", "BE-Vie"])]
    obs = pd.concat([neu, vie], ignore_index=True)
    store.write_stations("nores", sites, obs, provenance={"test": "no resolution"}, synthetic=False)
    assert T.network_time_step("nores") == "month"
    assert T.build("nores").attrs["time_step"] == "month"


def test_demo_network_with_gridded_features(demo_world, monkeypatch):
    """Every gridded feature equals the Zarr value at the tower's pixel, read with xarray directly."""
    import xarray as xr

    from catalog import api

    monkeypatch.setenv("FLUXLENS_DATA_DIR", str(demo_world))
    inputs = {"forcing": "forcing_demo", "static": "static_demo", "ssm": "ssm_global_demo"}
    table, tower = T.build_gridded("fluxnet_demo", inputs=inputs)
    src = table.attrs["feature_source"]
    assert src["kind"] == "gridded" and src["dropped_features"] == {} and src["sites_outside_grid"] == {}
    assert table.attrs["features"] == list(F.GRIDDED_FEATURES) and table.attrs["synthetic"] is True
    forcing = xr.open_zarr(level_path(demo_world, "forcing_demo"), consolidated=False)
    static = xr.open_zarr(level_path(demo_world, "static_demo"), consolidated=False)
    ssm = xr.open_zarr(level_path(demo_world, "ssm_global_demo"), consolidated=False)
    sites = api.sites("fluxnet_demo").set_index("site_id")
    for k in (0, len(table) // 2, len(table) - 1):
        row = table.iloc[k]
        site = sites.loc[row["site_id"]]
        px = dict(lat=site["lat"], lon=site["lon"], method="nearest")
        f = forcing.sel(**px)
        assert (row["lat"], row["lon"]) == (float(f.lat), float(f.lon))
        for v in ("ta", "sw_in", "lw_in", "vpd", "precip", "ws", "lai", "ndvi"):
            assert row[v] == float(f[v].sel(time=row["time"])), v
        assert row["ta_clim"] == pytest.approx(float(f["ta"].astype("float64").mean()), rel=1e-12)
        assert row["ssm"] == float(ssm["ssm"].sel(**px).sel(time=row["time"]))
        assert row["elevation"] == float(static["elevation"].sel(**px).isel(time=0))
        assert row["igbp"] == float(static["igbp"].sel(**px).isel(time=0))
        obs = api.site_observations("fluxnet_demo", row["site_id"]).set_index("time").loc[row["time"]]
        assert tower.iloc[k]["ta"] == pytest.approx(obs["TA"]) and row["le_corr"] == pytest.approx(
            obs["LE_CORR"]
        )
        assert tower.iloc[k]["lai"] == row["lai"]  # no tower measures LAI: the same gridded value


def test_gridded_radiation_is_sampled_beside_the_towers_a(demo_world, monkeypatch):
    import xarray as xr

    from catalog import api

    monkeypatch.setenv("FLUXLENS_DATA_DIR", str(demo_world))
    inputs = {"forcing": "forcing_demo", "static": "static_demo", "radiation": "fluxes_demo"}
    table, _ = T.build_gridded("fluxnet_demo", inputs=inputs, features=["ta", "a", "igbp", "lat"])
    src = table.attrs["feature_source"]
    assert src["radiation"] == "fluxes_demo" and src["feature_set"]["variables"]["rn"] == "fluxes_demo"
    flux = xr.open_zarr(level_path(demo_world, "fluxes_demo"), consolidated=False)
    row = table.iloc[len(table) // 3]
    site = api.sites("fluxnet_demo").set_index("site_id").loc[row["site_id"]]
    px = flux.sel(lat=site["lat"], lon=site["lon"], method="nearest").sel(time=row["time"])
    assert row["a_gridded"] == pytest.approx(float(px.rn) - float(px.g))
    obs = api.site_observations("fluxnet_demo", row["site_id"]).set_index("time").loc[row["time"]]
    assert row["a"] == pytest.approx(obs["NETRAD"] - obs["G"])  # closure and A target stay the tower's
