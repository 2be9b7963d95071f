"""Gridded-feature training and prediction end to end on real file formats.

Cubes: the real zampy ERA5 / ERA5-Land set (4 × 4 px at 0.25°, 2020-01-01, ingested with
``--resolution 0.25 --min-coverage 0.1``), the real C3S LAI and C3S land cover zips, all through
``fluxlens ingest cube``. The box (59.1–60.1° N, 0.1° W–0.9° E) is the North Sea: ERA5-Land ``t2m`` /
``d2m`` (hence ``ta``, ``vpd``) and the LAI are missing at every pixel, the land cover is water (IGBP
17) and only 2020-01-01 has enough hourly steps for a daily mean. No real flux tower overlaps these
tiny cubes in space and time, so the towers are a **synthetic** network (``--synthetic``): 64 towers
inside the land-cover tile, written as FLUXNET2015 DD files and ingested with ``fluxlens ingest
fluxnet``; their meteorology is the ERA5 value at their pixel plus noise and their LE/H an invented
function of it. The towers' numbers are invented; the cubes, formats and code paths are real.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from catalog.errors import InputError
from fluxlens import cli
from models import features as F
from models import predict, registry, training
from models import training_table as T
from tests.models.emulator_tables import FAST, synthetic_table
from tests.stores import level_path

BOX = (0.0, 59.7223, 0.2777, 60.0)  # inside the land-cover tile (W0 S59.7222 E0.2778 N60)
DAY = "2020-01-01"


def _towers(folder, grid: str, seed: int = 0) -> None:
    """64 synthetic towers on an 8 × 8 lattice in the land-cover tile, FLUXNET2015 DD files."""
    from catalog import api
    from data_prep import fluxnet

    folder.mkdir()
    rng = np.random.default_rng(seed)
    sites = []
    lattice = [(lat, lon) for lat in np.linspace(59.73, 59.99, 8) for lon in np.linspace(0.02, 0.26, 8)]
    for i, (lat, lon) in enumerate(lattice):
        sid = f"XS-Z{i:02d}"
        sites.append({"SITE_ID": sid, "SITE_NAME": f"synthetic tower {i}", "LOCATION_LAT": round(lat, 4),
                      "LOCATION_LONG": round(lon, 4), "IGBP": "WAT"})  # fmt: skip
        px = api.point_series(grid, lon, lat)
        time = pd.DatetimeIndex(px.time.values)
        n = len(time)
        ws = px["ws"].values * (1 + 0.1 * rng.standard_normal(n))
        lw = px["lw_in"].values + 5 * rng.standard_normal(n)
        netrad = 60 + 80 * rng.random(n)
        g = 5 + 2 * rng.standard_normal(n)
        a = netrad - g
        ef = 1 / (
            1 + np.exp(-(0.3 * np.nan_to_num(ws, nan=9) - 2.5 + 0.01 * (np.nan_to_num(lw, nan=290) - 290)))
        )
        le = ef * a + 3 * rng.standard_normal(n)
        table = pd.DataFrame(
            {
                "site_id": sid, "time": time, "LE": le, "H": a - le, "NETRAD": netrad, "G": g,
                "LE_CORR": le, "H_CORR": a - le, "TA": 5 + rng.standard_normal(n),
                "VPD": 1 + 0.2 * rng.random(n), "SW_IN": np.zeros(n), "LW_IN": lw, "WS": ws,
                "P": np.nan_to_num(px["precip"].values, nan=0.2) * np.exp(0.3 * rng.standard_normal(n)),
            }
        )  # fmt: skip
        for c in ("LE", "H", "NETRAD", "G", "TA", "VPD", "P", "SW_IN", "LW_IN", "WS"):
            table[f"{c}_QC"] = 1.0
        fluxnet.write_fluxnet(folder, table)
    pd.DataFrame(sites).to_csv(folder / "FluxNET_sites.csv", index=False)


@pytest.fixture(scope="module")
def world(shared_data, tmp_path_factory):
    """Data directory with the real cubes, the synthetic towers and a gridded model trained by the CLI."""
    d = tmp_path_factory.mktemp("gridded") / "data"
    d.mkdir()
    mp = pytest.MonkeyPatch()
    mp.setenv("FLUXLENS_DATA_DIR", str(d))
    real = shared_data / "gridded_real"
    zampy = str(real / "era5_cds" / "zampy_4x4")
    c3s = real / "c3s_lai_landcover"
    try:
        for argv in (
            [zampy, "--recipe", "era5", "--name", "era5_zampy"],
            [zampy, "--recipe", "era5-land", "--name", "era5l_zampy"],
            [str(c3s / "satellite-lai-fapar_2020-1.zip"), "--recipe", "c3s-lai", "--name", "c3s_lai"],
            [str(c3s / "land-cover_LCCS_MAP_300m_2020.zip"), "--recipe", "c3s-landcover", "--name", "c3s_lc"],
        ):
            extra = ["--resolution", "0.25", "--min-coverage", "0.1"] if "zampy" in argv[0] else []
            assert cli.main(["ingest", "cube", *argv, *extra]) == 0
        _towers(d.parent / "towers", "era5_zampy")
        argv = ["ingest", "fluxnet", str(d.parent / "towers"), "--name", "towers_zampy", "--synthetic"]
        assert cli.main(argv) == 0
        yield d
    finally:
        mp.undo()


GRIDDED_ARGS = ["--sites-source", "towers_zampy", "--features", "gridded",
                "--forcing", "era5_zampy,c3s_lai", "--static", "c3s_lc",
                "--splits", "random,spatial", "--folds", "3", "--trees", "20"]  # fmt: skip


@pytest.fixture(scope="module")
def model(world):
    mp = pytest.MonkeyPatch()
    mp.setenv("FLUXLENS_DATA_DIR", str(world))
    try:
        import contextlib
        import io

        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            assert cli.main(["train", *GRIDDED_ARGS]) == 0
        version = next(ln for ln in out.getvalue().splitlines() if ln.startswith("20"))
        yield version, out.getvalue()
    finally:
        mp.undo()


@pytest.fixture
def env(world, monkeypatch):
    monkeypatch.setenv("FLUXLENS_DATA_DIR", str(world))
    return world


def _tables():
    return T.build_gridded("towers_zampy", inputs={"forcing": "era5_zampy,c3s_lai", "static": "c3s_lc"})


def test_model_records_gridded_source_time_step_and_both_skills(env, model):
    version, out = model
    meta = registry.read_meta(version)
    src = meta["feature_source"]
    assert src["kind"] == "gridded" and meta["training_data"]["time_step"] == "day"
    assert src["feature_set"]["grid"] == "era5_zampy"
    assert src["feature_set"]["variables"] == {
        "sw_in": "era5_zampy", "lw_in": "era5_zampy", "precip": "era5_zampy", "ws": "era5_zampy",
        "igbp": "c3s_lc",
    }  # fmt: skip
    # sea: ERA5-Land ta/vpd and the C3S LAI have no value at any tower, so they are left out, saying why
    for f, product in (("ta", "era5_zampy"), ("vpd", "era5_zampy"), ("lai", "c3s_lai")):
        assert src["dropped_features"][f] == f"missing at every tower row in {product!r}"
    assert src["dropped_features"]["elevation"].startswith("no product given has elevation")
    names = [f["name"] for f in meta["features"]]
    assert names == ["sw_in", "lw_in", "precip", "ws", "a", "igbp", "lat", "month", "sw_in_pot",
                     "precip_clim", "sw_in_clim", "dryness"]  # fmt: skip
    # 2019-12-31 has too few hourly steps for a daily mean: those 64 rows have no gridded input
    assert src["rows_without_inputs"] == 64 and meta["training_data"]["n_rows"] == 64
    assert meta["training_data"]["synthetic"] is True
    keys = {(r["split"], r["model"], r["targets"], r["variable"]) for r in meta["cv_comparison"]}
    assert keys == {(s, m, t, v) for s in ("random", "spatial") for m in ("constrained", "direct")
                    for t in ("corrected", "raw") for v in ("le", "h")}  # fmt: skip
    assert all(np.isfinite(r["r2_gridded"]) and np.isfinite(r["r2_tower"]) for r in meta["cv_comparison"])
    assert meta["cv_tower_meteorology"]["features"] == names
    assert "R2 gridded" in out and " tower " in out and "features left out: " in out
    assert len(registry.read_table(version, "cv_scores_tower")) == len(
        registry.read_table(version, "cv_scores")
    )
    listed = next(v for v in registry.list_versions() if v["version"] == version)
    assert listed["feature_source"] == "gridded(c3s_lc,era5_zampy)" and listed["time_step"] == "day"


def test_gridded_rows_are_the_cube_values_at_the_tower_pixel(env, model):
    version, _ = model
    table, tower = _tables()
    # the very table the model was trained on
    assert T.fingerprint(table) == registry.read_meta(version)["training_data"]["fingerprint_sha256"]
    era5 = xr.open_zarr(level_path(env, "era5_zampy"), consolidated=False).load()
    lc = xr.open_zarr(level_path(env, "c3s_lc"), consolidated=False).load()
    for _, row in table.iloc[[0, 27, 63]].iterrows():
        i = int(np.abs(era5.lat.values - row["site_lat"]).argmin())
        j = int(np.abs(era5.lon.values - row["site_lon"]).argmin())
        assert (row["lat"], row["lon"]) == (float(era5.lat[i]), float(era5.lon[j]))
        cell = era5.isel(lat=i, lon=j).sel(time=row["time"])
        for v in ("sw_in", "lw_in", "precip", "ws"):
            assert row[v] == float(cell[v])
        assert row["precip_clim"] == pytest.approx(float(era5.precip.isel(lat=i, lon=j).mean()), rel=1e-6)
        k = int(np.abs(lc.lat.values - row["lat"]).argmin())
        m = int(np.abs(lc.lon.values - row["lon"]).argmin())
        assert row["igbp"] == float(lc.igbp.isel(time=0, lat=k, lon=m)) == 17.0
    # same rows and targets, different meteorology: the tower table has the towers' own
    assert (tower["site_id"].to_numpy() == table["site_id"].to_numpy()).all()
    np.testing.assert_array_equal(tower["le_corr"], table["le_corr"])
    np.testing.assert_array_equal(tower["a"], table["a"])
    assert not np.allclose(tower["ws"], table["ws"]) and tower["lat"].nunique() == 8
    assert table["lat"].nunique() == 2 and table["lon"].nunique() == 2


def test_prediction_builds_the_same_feature_rows_and_predicts_them(env, model):
    version, _ = model
    table, _ = _tables()
    emu = registry.load(version)
    rows = predict.feature_rows(version, BOX, DAY, DAY)
    assert len(rows) == 4 and set(zip(rows["lat"], rows["lon"], strict=True)) == {
        (60.0, 0.0), (60.0, 0.25), (59.75, 0.0), (59.75, 0.25)
    }  # fmt: skip
    pixel = rows.set_index(["time", "lat", "lon"], drop=False)
    ours = pixel.loc[list(zip(table["time"], table["lat"], table["lon"], strict=True))]
    # every feature except A (the tower's Rn - G in training, the A model's at prediction): bit-equal
    np.testing.assert_array_equal(
        F.feature_matrix(ours, emu.a_features), F.feature_matrix(table, emu.a_features)
    )
    assert np.isnan(rows["a"]).all()

    assert cli.main(["predict", "--model", version, f"--bbox={','.join(map(str, BOX))}", "--start", DAY,
                     "--end", DAY, "--name", "emu_zampy"]) == 0  # fmt: skip
    from catalog import api

    info = api.product_info("emu_zampy")
    assert info.synthetic is True and info.provenance["model_feature_source"] == "gridded"
    assert info.provenance["inputs"] == {"forcing": "era5_zampy", "static": "c3s_lc"}
    assert "time_step_note" not in info.provenance and "mismatch_allowed" not in info.provenance
    rows, expected = _expected(version)
    got = _product_rows(env, "emu_zampy", rows)
    assert np.isfinite(got["le"]).all() and np.isfinite(got["h"]).all()
    np.testing.assert_allclose(got["le"], expected["le"], rtol=1e-5)
    np.testing.assert_allclose(got["le"] + got["h"], expected["a"], rtol=1e-5)  # closed on the A model


def _expected(version):
    """Feature rows of the box and the emulator's LE/H on them (A from its A model), by Booster.predict."""
    emu = registry.load(version)
    rows = predict.feature_rows(version, BOX, DAY, DAY)
    return rows, emu.predict(rows.assign(a=emu.predict_a(rows)))


def _product_rows(data_dir, name, rows):
    out = xr.open_zarr(level_path(data_dir, name), consolidated=False).load()
    got = out.sel(time=DAY).to_dataframe().reset_index().set_index(["lat", "lon"])
    return got.loc[list(zip(rows["lat"], rows["lon"], strict=True))]


def test_feature_set_file_gives_the_same_rows(env, model, tmp_path):
    version, _ = model
    path = tmp_path / "zampy.yaml"
    path.write_text("grid: era5_zampy\nforcing: [era5_zampy]\nvariables:\n  igbp: c3s_lc\n")
    a = predict.feature_rows(version, BOX, DAY, DAY, feature_set=path)
    b = predict.feature_rows(version, BOX, DAY, DAY)
    pd.testing.assert_frame_equal(a, b)
    path.write_text("grid: era5_zampy\nvariables:\n  wind: era5_zampy\n")
    with pytest.raises(InputError, match=r"unknown variables \['wind'\]"):
        predict.feature_rows(version, BOX, DAY, DAY, feature_set=path)


def test_missing_variable_names_it_and_the_products_that_have_it(env, model):
    version, _ = model
    with pytest.raises(InputError) as err:  # ERA5-Land files carry no precipitation
        predict.predict_region(version, BOX, DAY, DAY, inputs={"forcing": "era5l_zampy"})
    msg = str(err.value)
    assert msg.startswith("the model needs precip (precipitation, mm d-1) from the forcing product, but ")
    assert "'era5l_zampy' has only" in msg and msg.endswith("products that have it: era5_zampy (--forcing)")


def test_other_products_are_refused_unless_allowed(env, model, tmp_path):
    from catalog import api

    version, _ = model
    path = tmp_path / "mixed.yaml"
    path.write_text("forcing: era5_zampy\nstatic: c3s_lc\nvariables:\n  ws: era5l_zampy\n")
    with pytest.raises(InputError) as err:
        predict.predict_region(version, BOX, DAY, DAY, feature_set=path, product_name="mixed")
    msg = str(err.value)
    assert "does not match these inputs" in msg and "ws from 'era5l_zampy' (trained: 'era5_zampy')" in msg
    assert "--allow-mismatch" in msg and "mixed" not in {p.name for p in api.list_products()}
    argv = ["predict", "--model", version, f"--bbox={','.join(map(str, BOX))}", "--start", DAY, "--end", DAY,
            "--feature-set", str(path), "--name", "mixed"]  # fmt: skip
    assert cli.main(argv) == 2
    assert cli.main([*argv, "--allow-mismatch"]) == 0
    prov = api.product_info("mixed").provenance
    assert prov["feature_set"]["variables"]["ws"] == "era5l_zampy"
    assert "ws from 'era5l_zampy'" in prov["mismatch_allowed"][0]


def test_monthly_model_refused_on_daily_cubes(env, tmp_path):
    version = training.train(
        training.TrainSettings(n_folds=2, shap_sample=50, **FAST), table=synthetic_table(n_sites=6)
    )
    inputs = {"forcing": "era5_zampy", "static": "c3s_lc"}
    with pytest.raises(InputError, match=r"trained on month data but the grid product 'era5_zampy' is day"):
        predict.predict_region(version, BOX, DAY, DAY, inputs=inputs)
    name = predict.predict_region(version, BOX, DAY, DAY, inputs=inputs, allow_mismatch=True)
    from catalog import api

    prov = api.product_info(name).provenance
    assert "applied to day inputs" in prov["time_step_note"] and prov["model_feature_source"] == "tower"
    assert "trained on tower meteorology" in prov["feature_source_note"]


def test_gridded_training_refuses_bad_inputs(env, shared_data):
    with pytest.raises(InputError, match="products given .* but the features are the towers'"):
        training.train(training.TrainSettings(sites_source="towers_zampy", gridded_inputs={"forcing": "x"}))
    with pytest.raises(InputError, match=r"unknown product 'nope'"):
        T.build_gridded("towers_zampy", inputs={"forcing": "nope"})
    with pytest.raises(InputError, match=r"feature ta is missing at every tower row in 'era5_zampy'"):
        T.build_gridded("towers_zampy", inputs={"forcing": "era5_zampy"}, features=["ta", "ws", "lat"])
    with pytest.raises(InputError, match=r"needs ssm \(surface soil moisture.* 'era5_zampy' has only"):
        T.build_gridded("towers_zampy", inputs={"forcing": "era5_zampy", "ssm": "era5_zampy"},
                        features=["ws", "ssm"])  # fmt: skip
    monthly = shared_data / "fluxnet2015_monthly"
    files = [str(next(monthly.glob(f"FLX_{s}_*.csv"))) for s in ("AT-Neu", "BE-Vie")]
    assert cli.main(["ingest", "fluxnet", *files, "--name", "monthly_two"]) == 0
    with pytest.raises(InputError, match=r"holds month tower data but the grid product 'era5_zampy' is day"):
        T.build_gridded("monthly_two", inputs={"forcing": "era5_zampy"})


def test_repredict_job_uses_the_models_own_products(env, model, tmp_path):
    from catalog import api
    from models.job_limits import JobLimits, prediction_domain
    from models.jobs import SUCCEEDED, JobService, JobStore
    from models.worker import Worker

    version, _ = model
    domain = prediction_domain(version)
    assert domain["grid"].name == "era5_zampy"
    assert domain["bbox"] == pytest.approx(api.product_info("c3s_lc").bbox)  # the land cover is the smallest
    store = JobStore(str(tmp_path / "jobs.sqlite"))
    try:
        limits = JobLimits()
        request = {
            "version": version,
            "bbox": list(BOX),
            "start": DAY,
            "end": DAY,
            "product_name": "job_zampy",
        }
        job = JobService(store, limits).submit("repredict", request, None)
        assert Worker(store, limits).run(once=True) == 1
        assert store.get(job.id).status == SUCCEEDED
    finally:
        store.close()
    prov = api.product_info("job_zampy").provenance
    assert (
        prov["inputs"] == {"forcing": "era5_zampy", "static": "c3s_lc"} and prov["model_version"] == version
    )
    rows, expected = _expected(version)
    got = _product_rows(env, "job_zampy", rows)
    np.testing.assert_allclose(got["le"], expected["le"], rtol=1e-5)


def test_repredict_job_takes_inputs_by_product(env, model, tmp_path):
    from catalog import api
    from models.job_limits import JobLimits
    from models.jobs import SUCCEEDED, JobService, JobStore
    from models.worker import Worker

    version, _ = model
    store = JobStore(str(tmp_path / "jobs.sqlite"))
    try:
        service = JobService(store, JobLimits())
        base = {"version": version, "bbox": list(BOX), "start": DAY, "end": DAY}
        with pytest.raises(InputError, match=r"forcing product\(s\) \['nope'\] are not in the catalog"):
            service.submit("repredict", {**base, "inputs": {"forcing": "nope"}}, None)
        with pytest.raises(InputError, match="inputs must map roles"):
            service.submit("repredict", {**base, "inputs": {"wind": "era5_zampy"}}, None)
        inputs = {"forcing": "era5_zampy, c3s_lai", "static": "c3s_lc"}
        job = service.submit("repredict", {**base, "product_name": "job_inputs", "inputs": inputs}, None)
        assert store.get(job.id).request["inputs"] == {"forcing": "era5_zampy,c3s_lai", "static": "c3s_lc"}
        assert Worker(store, JobLimits()).run(once=True) == 1
        assert store.get(job.id).status == SUCCEEDED
    finally:
        store.close()
    prov = api.product_info("job_inputs").provenance
    assert prov["inputs"]["static"] == "c3s_lc" and "era5_zampy" in prov["inputs"]["forcing"]
