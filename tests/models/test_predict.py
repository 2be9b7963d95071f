import numpy as np
import pandas as pd
import pytest
import xarray as xr

from catalog.errors import InputError
from models import features as F
from models import predict, registry
from tests.conftest import demo_copy_with_model
from tests.stores import level_path

BBOX = (-110.0, 20.0, -80.0, 50.0)


@pytest.fixture(scope="module")
def world(demo_world, tmp_path_factory):
    """A writable copy of the small demo world with a tiny model trained on its towers."""
    d = tmp_path_factory.mktemp("predict") / "data"
    settings = dict(num_boost_round=15, n_folds=2, params={"min_data_in_leaf": 5}, shap_sample=100)
    with demo_copy_with_model(demo_world, d, **settings) as version:
        yield d, version


def _products(d):
    from catalog import api

    return {p.name for p in api.list_products()}, sorted(p.name for p in (d / "products").iterdir())


def test_predict_region_writes_closed_product_with_provenance(world):
    from catalog import api

    d, version = world
    calls = []
    name = predict.predict_region(
        version,
        BBOX,
        "2018-06-03",
        "2018-06-12",
        product_name="emu-test",
        inputs={"radiation": "fluxes_demo"},
        block=(4, 8, 8),
        progress=lambda done, total: calls.append((done, total)),
    )
    assert name == "emu-test"
    assert calls == [(i + 1, calls[0][1]) for i in range(calls[0][1])] and calls[0][1] > 1
    info = api.product_info(name)
    assert info.synthetic is True
    prov = info.provenance
    assert prov["model_version"] == version and prov["bbox"] == list(BBOX)
    assert prov["period"] == ["2018-06-03", "2018-06-12"]
    assert prov["inputs"]["forcing"] == "forcing_demo" and prov["inputs"]["radiation"] == "fluxes_demo"
    bounds = ["le_q05", "le_q95", "h_q05", "h_q95"]
    assert set(info.variables) == {"le", "h", "ef", *bounds} and info.variables["le"]["units"] == "W m-2"
    for b in bounds:
        assert info.variables[b]["units"] == "W m-2"
        assert "prediction interval" in info.variables[b]["long_name"]
    meta = registry.read_meta(version)
    # a radiation product the model was not calibrated on: the quantiles of observed A
    assert (
        prov["intervals"]["calibrated_on_a_source"] == "observed" and prov["intervals"]["variables"] == bounds
    )

    out = xr.open_zarr(level_path(d, name), consolidated=False).load()
    flux = xr.open_zarr(level_path(d, "fluxes_demo"), consolidated=False)
    flux = flux.sel(time=out.time, lat=out.lat, lon=out.lon).load()
    a = (flux.rn - flux.g).values
    ok = np.isfinite(out.le.values)
    assert ok.sum() > 100 and out.sizes["time"] == 10
    # energy balance closed on the radiation product's A, to float32 precision
    assert np.allclose((out.le + out.h).values[ok], a[ok], rtol=1e-5, atol=1e-3)
    ef_ok = np.isfinite(out.ef.values)
    assert np.array_equal(ef_ok, ok & (a >= registry.read_meta(version)["a_min"]))
    assert np.all((out.ef.values[ef_ok] >= 0) & (out.ef.values[ef_ok] <= 1))
    # each interval bound closes too, and the bounds are the stored EF quantiles times A
    lo, hi, h_lo, h_hi = (out[b].values for b in bounds)
    assert np.allclose((lo + h_hi)[ok], a[ok], rtol=1e-5, atol=1e-3)
    assert np.allclose((hi + h_lo)[ok], a[ok], rtol=1e-5, atol=1e-3)
    q = meta["intervals"]["quantiles"]["observed"]["ef"]
    assert np.allclose(lo[ef_ok], (out.ef.values[ef_ok] + q["q_lo"]) * a[ef_ok], rtol=1e-4, atol=1e-2)
    assert (lo[ok] <= out.le.values[ok] + 1e-3).all() and (out.le.values[ok] <= hi[ok] + 1e-3).all()

    # one pixel-day against the Booster fed with features read independently from the Zarr stores
    cells = np.argwhere(ef_ok)
    ti, yi, xi = cells[len(cells) // 2]
    t, lat, lon = out.time.values[ti], float(out.lat[yi]), float(out.lon[xi])
    forcing = xr.open_zarr(level_path(d, "forcing_demo"), consolidated=False)
    static = xr.open_zarr(level_path(d, "static_demo"), consolidated=False)
    ssm = xr.open_zarr(level_path(d, "ssm_global_demo"), consolidated=False)
    emu = registry.load(version)
    row = {}
    for f in emu.features:
        spec = F.spec(f)
        if f == "a":
            row[f] = a[ti, yi, xi]
        elif f == "lat":
            row[f] = lat
        elif f == "month":
            row[f] = float(np.datetime64(t, "M").astype(int) % 12 + 1)
        elif f == "sw_in_pot":
            row[f] = F.sw_in_pot([lat], [t])[0]
        elif f == "dryness":
            sw = float(forcing["sw_in"].sel(lat=lat, lon=lon).mean("time"))
            row[f] = sw / (28.36 * float(forcing["precip"].sel(lat=lat, lon=lon).mean("time")) + 1.0)
        elif f.endswith("_clim"):  # mean over the forcing product's whole record at the pixel
            row[f] = float(forcing[f.removesuffix("_clim")].sel(lat=lat, lon=lon).mean("time"))
        else:
            src = {"forcing": forcing, "static": static, "ssm": ssm}[spec.cube_role][spec.cube_variable]
            v = src.sel(lat=lat, lon=lon)
            row[f] = float(v.isel(time=0) if src.sizes["time"] == 1 else v.sel(time=t))
    ef = emu.boosters["ef"].predict(np.array([[row[f] for f in emu.features]]))[0]
    assert out.ef.values[ti, yi, xi] == pytest.approx(ef, rel=1e-5)
    assert out.le.values[ti, yi, xi] == pytest.approx(ef * a[ti, yi, xi], rel=1e-5, abs=1e-3)


def test_predict_with_a_model_closes_on_its_own_a(world):
    d, version = world
    name = predict.predict_region(version, BBOX, "2018-06-01", "2018-06-02", product_name="emu-amodel")
    out = xr.open_zarr(level_path(d, name), consolidated=False).load()
    assert np.isfinite(out.le).sum() > 50
    from catalog import api

    info = api.product_info(name)
    assert info.provenance["a_source"] == "emulator A model"
    assert info.provenance["intervals"]["calibrated_on_a_source"] == "a_model"
    q = registry.read_meta(version)["intervals"]["quantiles"]["a_model"]["ef"]
    ok = np.isfinite(out.ef.values)
    a = (out.le + out.h).values
    assert np.allclose(out.le_q95.values[ok], (out.ef.values[ok] + q["q_hi"]) * a[ok], rtol=1e-4, atol=1e-2)


def test_one_column_prediction_keeps_the_grid_resolution(world):
    """A box one grid cell wide: the product's resolution and bbox come from the input grid, not the
    1° a single column would be given."""
    from catalog import api

    d, version = world
    grid = api.product_info("forcing_demo")
    res = grid.resolution
    lon = float(api.open_product("forcing_demo").lon.values[5])  # one column's centre
    name = predict.predict_region(version, (lon - res / 4, 30.0, lon + res / 4, 40.0), "2018-06-01",
                                  "2018-06-01", product_name="emu-one-column")  # fmt: skip
    info = api.product_info(name)
    assert info.levels[0]["n_lon"] == 1
    assert info.resolution == pytest.approx(res)
    assert info.bbox[0] == pytest.approx(lon - res / 2) and info.bbox[2] == pytest.approx(lon + res / 2)


def test_cancel_registers_nothing(world):
    d, version = world
    before = _products(d)
    polls = []

    def cancel_on_third_poll():
        polls.append(1)
        return len(polls) >= 3

    with pytest.raises(predict.Cancelled):
        predict.predict_region(
            version,
            BBOX,
            "2018-06-01",
            "2018-06-20",
            product_name="emu-cancel",
            block=(4, 8, 8),
            should_cancel=cancel_on_third_poll,
        )
    assert len(polls) == 3
    assert _products(d) == before
    assert not list((d / "tmp").iterdir())


@pytest.mark.parametrize(
    "bbox,start,end,match",
    [
        ((200.0, 0.0, 210.0, 10.0), "2018-06-01", "2018-06-02", "outside the forcing product"),
        (BBOX, "2019-01-01", "2019-01-05", "outside the forcing product"),
        ((10.0, 0.0, 5.0, 10.0), "2018-06-01", "2018-06-02", "west < east"),
        (BBOX, "2018-06-05", "2018-06-01", "end before start"),
    ],
)
def test_bad_requests_fail_before_any_work(world, bbox, start, end, match):
    _, version = world
    calls = []
    with pytest.raises(InputError, match=match):
        predict.predict_region(version, bbox, start, end, progress=lambda *a: calls.append(a))
    assert calls == []


def test_unknown_version_and_duplicate_name(world):
    _, version = world
    with pytest.raises(InputError, match="unknown model version"):
        predict.predict_region("20200101T000000Z-deadbeef", BBOX, "2018-06-01", "2018-06-02")
    with pytest.raises(InputError, match="already exists"):
        predict.predict_region(version, BBOX, "2018-06-01", "2018-06-02", product_name="fluxes_demo")


def test_time_step_note():
    assert predict.time_step_note("day", "day") is None
    assert predict.time_step_note(None, "day") is None
    note = predict.time_step_note("month", "day")
    assert "trained on month data" in note and "applied to day inputs" in note


def test_missing_input_variable_names_it_and_the_products_that_have_it(world, capsys):
    from fluxlens import cli

    _, version = world
    with pytest.raises(InputError) as err:
        predict.predict_region(version, BBOX, "2018-06-01", "2018-06-02", inputs={"forcing": "fluxes_demo"})
    msg = str(err.value)
    assert msg.startswith("the model needs ta (air temperature, degC), ")
    assert "from the forcing product, but 'fluxes_demo' has only g, h, le, rn" in msg
    assert msg.endswith("products that have them: forcing_demo (--forcing)")
    static = (
        r"elevation \(elevation, m\).* from the static product, but 'ssm_global_demo' has only ssm; "
        r"products that have them: static_demo \(--static\)"
    )
    with pytest.raises(InputError, match=static):
        predict.predict_region(
            version, BBOX, "2018-06-01", "2018-06-02", inputs={"static": "ssm_global_demo"}
        )

    argv = ["predict", "--model", version, f"--bbox={','.join(map(str, BBOX))}", "--start", "2018-06-01",
            "--end", "2018-06-02", "--forcing", "fluxes_demo"]  # fmt: skip
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("fluxlens predict: error: the model needs ta (air temperature, degC)")
    assert "KeyError" not in err and "Traceback" not in err


def test_lacks_error_when_no_single_product_has_every_variable():
    from types import SimpleNamespace

    products = [
        SimpleNamespace(name="met_a", variables={"ta": {}, "sw_in": {}}),
        SimpleNamespace(name="met_b", variables={"vpd": {}}),
    ]
    err = predict.lacks_error("forcing", "met_a", ["ta", "sw_in"], ["vpd", "ws"], products=products)
    assert str(err) == (
        "the model needs vpd (vapour pressure deficit, hPa), ws (wind speed, m s-1) from the forcing "
        "product, but 'met_a' has only sw_in, ta; no single product has them all (vpd in met_b; "
        "ws in no product); ingest one and pass it with --forcing"
    )


def test_tower_model_predicts_from_cubes_with_a_note_and_product_lists(world):
    from catalog import api

    d, version = world
    meta = registry.read_meta(version)
    assert meta["feature_source"]["kind"] == "tower" and meta["training_data"]["time_step"] == "day"
    assert meta["feature_source"]["cube_products"] == {
        "forcing": "forcing_demo", "static": "static_demo", "ssm": "ssm_global_demo"
    }  # fmt: skip
    name = predict.predict_region(version, BBOX, "2018-06-01", "2018-06-01", product_name="emu-note")
    prov = api.product_info(name).provenance
    assert prov["model_feature_source"] == "tower" and "mismatch_allowed" not in prov
    assert prov["feature_source_note"].startswith(
        "model trained on tower meteorology, applied to the gridded"
    )
    assert prov["feature_set"]["variables"]["ssm"] == "ssm_global_demo"
    # a list per role: each variable from the first product that has it (here the grid is fluxes_demo's)
    rows = predict.feature_rows(version, BBOX, "2018-06-01", "2018-06-02")
    listed = predict.feature_rows(
        version, BBOX, "2018-06-01", "2018-06-02", inputs={"forcing": "fluxes_demo,forcing_demo"}
    )
    pd.testing.assert_frame_equal(rows, listed)
    fs = predict.resolve_inputs(meta, {"forcing": "fluxes_demo,forcing_demo"})
    assert fs.grid == "fluxes_demo" and fs.variables["ta"] == "forcing_demo"
    assert predict.input_mismatches(meta, fs) == []
