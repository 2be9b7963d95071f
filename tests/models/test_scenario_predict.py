"""What-if re-prediction on the small demo world: a zero perturbation is the plain re-prediction bit
for bit; ``ta +2 K`` at constant RH with A fixed by a radiation product only moves energy between LE
and H; the range flags agree with the EF model's training ranges recomputed from the Zarr inputs;
bad scenarios are refused before any work; ``repredict --scenario`` and ``explain`` jobs submitted
from the command line and run by a worker."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from catalog import api
from catalog.errors import InputError
from fluxlens.cli import main
from models import predict, registry
from models import scenarios as S
from models.job_limits import JobLimits
from models.jobs import SUCCEEDED, JobService, JobStore, explain_title, repredict_title
from models.worker import Worker
from tests.conftest import demo_copy_with_model
from tests.stores import level_path

BBOX = (-110.0, 20.0, -80.0, 50.0)  # 15 × 15 px of the small demo's 2° grid
PERIOD = ("2018-06-03", "2018-06-12")
BLOCK = (4, 8, 8)  # several blocks in time and space
FLAGS = ("scenario_outside_range", "scenario_pushed_outside")


@pytest.fixture(scope="module")
def world(demo_world, tmp_path_factory):
    d = tmp_path_factory.mktemp("scenario") / "data"
    settings = dict(num_boost_round=15, n_folds=2, params={"min_data_in_leaf": 5}, shap_sample=100)
    with demo_copy_with_model(demo_world, d, **settings) as version:
        yield d, version


def _level0(d, name) -> xr.Dataset:
    """The product's full-resolution store, read directly (not through the catalog API)."""
    return xr.open_zarr(level_path(d, name), consolidated=False).load()


def _names(d) -> tuple[set, list]:
    return {p.name for p in api.list_products()}, sorted(p.name for p in (d / "products").iterdir())


def test_zero_perturbation_is_the_plain_prediction_bit_for_bit(world):
    d, version = world
    base = predict.predict_region(version, BBOX, *PERIOD, product_name="zero-base", block=BLOCK)
    scen = predict.predict_region(
        version, BBOX, *PERIOD, product_name="zero-scen", block=BLOCK,
        scenario="ta+0K, vpd+0, precip*1, ssm-0, lai*1, sw_in+0",
    )  # fmt: skip
    b, s = _level0(d, base), _level0(d, scen)
    assert set(s.data_vars) == set(b.data_vars) | set(FLAGS)
    for v in b.data_vars:  # le, h, ef and the interval bounds
        assert s[v].dtype == b[v].dtype
        assert s[v].values.tobytes() == b[v].values.tobytes(), v
    predicted = np.isfinite(b.le.values)
    assert predicted.sum() > 500
    pushed = s.scenario_pushed_outside.values
    assert np.array_equal(np.isfinite(pushed), predicted)
    assert (pushed[predicted] == 0).all()
    prov = api.product_info(scen).provenance
    assert prov["scenario"]["text"] == "ta +0 K, vpd +0 hPa, precip ×1, ssm +0 m3 m-3, lai ×1, sw_in +0 W m-2"
    assert prov["scenario_counts"] == {
        "pixel_days_predicted": int(predicted.sum()),
        "pixel_days_outside_range": int((s.scenario_outside_range.values[predicted] > 0).sum()),
        "pixel_days_pushed_outside": 0,
    }
    assert api.product_info(scen).title == f"LE/H emulator {version}, scenario {prov['scenario']['text']}"


def test_ta_plus_2k_moves_energy_between_le_and_h_and_raises_vpd(world):
    """With A = rn − g of a radiation product, A is the same in both products, so whatever the trees
    do with the warmer, drier air, ΔLE = −ΔH at every pixel-day; the sign of ΔLE itself is what the
    model learnt from the towers (EF from ta and vpd splits), not a physical law, and is not
    asserted. VPD, an input, must rise: e_s increases with T."""
    d, version = world
    inputs = {"radiation": "fluxes_demo"}
    base = predict.predict_region(version, BBOX, *PERIOD, product_name="warm-base", inputs=inputs)
    scen = predict.predict_region(
        version, BBOX, *PERIOD, product_name="warm-scen", inputs=inputs, scenario="ta+2K"
    )
    diff = S.difference(scen, base).load()
    assert diff.le.attrs["units"] == "W m-2" and "ta +2 K" in diff.le.attrs["long_name"]
    b, s = api.open_product(base).load(), api.open_product(scen).load()
    flux = xr.open_zarr(level_path(d, "fluxes_demo"), consolidated=False)
    a = (flux.rn - flux.g).sel(time=b.time, lat=b.lat, lon=b.lon).values
    ok = np.isfinite(b.le.values)
    assert ok.sum() > 500 and np.array_equal(ok, np.isfinite(s.le.values))
    for ds in (b, s):  # closure in both products
        np.testing.assert_allclose((ds.le + ds.h).values[ok], a[ok], rtol=1e-5, atol=1e-3)
    np.testing.assert_allclose((diff.le + diff.h).values[ok], 0.0, atol=2e-3)
    booster_uses = registry.load(version).boosters["ef"].feature_importance()
    features = registry.load(version).features
    reads_air = booster_uses[features.index("ta")] + booster_uses[features.index("vpd")] > 0
    assert reads_air  # the demo's EF model splits on ta or vpd...
    assert (np.abs(diff.le.values[ok]) > 1e-3).any()  # ...so a warmer box changes some LE
    # the block's VPD input: raised wherever it is positive, by e_s(T + 2) / e_s(T)
    forcing = xr.open_zarr(level_path(d, "forcing_demo"), consolidated=False)
    cube = forcing[["ta", "vpd"]].sel(time=b.time, lat=b.lat, lon=b.lon).load()
    warm = S.apply({"ta": cube.ta.values, "vpd": cube.vpd.values}, S.parse("ta+2K"))
    t = cube.ta.values
    by_hand = cube.vpd.values * np.exp(17.27 * (t + 2) / (t + 2 + 237.3)) / np.exp(17.27 * t / (t + 237.3))
    np.testing.assert_allclose(warm["vpd"], by_hand, rtol=1e-6)
    assert (warm["vpd"][cube.vpd.values > 0] > cube.vpd.values[cube.vpd.values > 0]).all()


def test_range_flags_agree_with_the_ef_models_ranges(world):
    """ta + 8 K: the flags recomputed from the forcing store and the EF model file's feature_infos.
    With A from a radiation product the scenario moves two features, ta and vpd."""
    d, version = world
    inputs = {"radiation": "fluxes_demo"}
    name = predict.predict_region(
        version, BBOX, *PERIOD, product_name="hot-scen", inputs=inputs, scenario="ta+8K", block=BLOCK
    )
    out = _level0(d, name)
    text = (registry.version_dir(version) / "ef.txt").read_text()
    line = next(line for line in text.splitlines() if line.startswith("feature_infos="))
    infos = line.split("=")[1].split()
    features = registry.load(version).features
    lo_hi = {
        f: tuple(float(v) for v in info[1:-1].split(":"))
        for f, info in zip(features, infos, strict=True)
        if info[0] == "["
    }
    forcing = xr.open_zarr(level_path(d, "forcing_demo"), consolidated=False)
    cube = forcing[["ta", "vpd"]].sel(time=out.time, lat=out.lat, lon=out.lon).load()
    t, vpd = cube.ta.values.astype(float), cube.vpd.values.astype(float)
    t8 = t + 8
    vpd8 = vpd * np.exp(17.27 * t8 / (t8 + 237.3)) / np.exp(17.27 * t / (t + 237.3))

    def out_of(f, x):
        if f not in lo_hi:
            return np.zeros(x.shape, dtype=bool)
        return (x < lo_hi[f][0]) | (x > lo_hi[f][1])

    expected = (out_of("ta", t8) & ~out_of("ta", t)).astype(int) + (out_of("vpd", vpd8) & ~out_of("vpd", vpd))
    ok = np.isfinite(out.le.values)
    pushed = out.scenario_pushed_outside.values
    assert expected[ok].sum() > 0  # 8 K pushes some pixel-days out of the towers' range
    np.testing.assert_array_equal(pushed[ok], expected[ok])
    assert (out.scenario_outside_range.values[ok] >= pushed[ok]).all()
    counts = api.product_info(name).provenance["scenario_counts"]
    assert counts["pixel_days_pushed_outside"] == int((expected[ok] > 0).sum())
    prov = api.product_info(name).provenance["scenario"]
    assert prov["training_ranges"]["ta"] == list(lo_hi["ta"]) and "not perturbed" in prov["a_under_scenario"]


@pytest.mark.parametrize(
    "bbox,scenario,inputs,match",
    [
        (BBOX, "tx+2", None, "can perturb"),
        (BBOX, "ta+20K", None, r"at most ±10 K"),
        (BBOX, "precip*5", None, r"factor must lie in 0\.\.3"),
        (BBOX, "ta+2 W m-2", None, "changes in degC"),
        (BBOX, "ssm-0.05", {"ssm": None}, r"needs \[.ssm.\] from a .ssm. product; none given"),
        ((200.0, 0.0, 210.0, 10.0), "ta+2K", None, "outside the forcing product"),
    ],
)
def test_bad_scenario_requests_fail_before_any_work(world, bbox, scenario, inputs, match):
    d, version = world
    before, calls = _names(d), []
    with pytest.raises(InputError, match=match):
        predict.predict_region(version, bbox, *PERIOD, scenario=scenario, inputs=inputs,
                               progress=lambda *a: calls.append(a))  # fmt: skip
    assert calls == [] and _names(d) == before
    assert not (d / "tmp").exists() or not list((d / "tmp").iterdir())


def test_jobs_refuse_bad_scenarios_and_explain_boxes(world, tmp_path):
    _, version = world
    store = JobStore(tmp_path / "jobs.sqlite")
    service = JobService(store, JobLimits())
    request = {"version": version, "bbox": [-100.0, 30.0, -96.0, 34.0], "start": PERIOD[0], "end": PERIOD[1]}
    cases = [
        ("repredict", {**request, "scenario": "tx+2"}, "re-prediction: .*can perturb"),
        ("repredict", {**request, "scenario": "lai*4"}, "re-prediction: .*factor must lie"),
        ("repredict", {**request, "scenario": "ta-11K"}, r"re-prediction: .*at most ±10 K"),
        # the small demo's cubes are global: a box can only leave them past the antimeridian
        ("repredict", {**request, "bbox": [170.0, 0.0, 190.0, 10.0], "scenario": "ta+2K"}, "E ≤ 180"),
        ("explain", {**request, "bbox": [170.0, 0.0, 190.0, 10.0]}, "explanation map: box .*E ≤ 180"),
        ("explain", {**request, "end": "2018-08-30"}, "explanation map: period .* not inside the data"),
        ("explain", {**request, "scenario": "ta+2K"}, r"explanation map: unknown settings \['scenario'\]"),
    ]
    for kind, req, match in cases:
        with pytest.raises(InputError, match=match):
            service.submit(kind, req, "ana")
    with pytest.raises(InputError, match="exceeds the limit"):
        JobService(store, JobLimits(max_explain_pixel_days=10)).submit("explain", request, "ana")
    assert store.jobs(None) == []
    store.close()


def test_cli_jobs_submit_scenario_and_explain_run_by_a_worker(world, tmp_path, capsys):
    d, version = world
    db = str(tmp_path / "jobs.sqlite")
    box = "-100,30,-90,40"
    common = ["--jobs-db", db, "--user", "ana", "--model-version", version, f"--bbox={box}",
              "--start", PERIOD[0], "--end", "2018-06-05"]  # fmt: skip
    assert main(["jobs", "submit", "repredict", *common, "--scenario", "ta+2K, precip*0.8"]) == 0
    assert main(["jobs", "submit", "explain", *common]) == 0
    assert main(["jobs", "submit", "repredict", *common, "--scenario", "ta*2 K"]) == 2
    assert "a factor has no units" in capsys.readouterr().err
    store = JobStore(db)
    scen_job, explain_job = sorted(store.jobs(None), key=lambda j: j.id)
    assert scen_job.request["scenario"] == ["ta +2 K", "precip ×0.8"]
    assert scen_job.request["product_name"].startswith("scenario-")
    assert scen_job.request["title"] == repredict_title(scen_job.request)
    assert scen_job.request["title"].endswith(", scenario ta +2 K, precip ×0.8")
    assert explain_job.request["title"] == explain_title(explain_job.request)

    assert Worker(store, JobLimits(block=(2, 4, 4))).run(once=True) == 2
    scen_job, explain_job = store.get(scen_job.id), store.get(explain_job.id)
    assert scen_job.status == SUCCEEDED, scen_job.error
    assert explain_job.status == SUCCEEDED, explain_job.error
    scen = api.product_info(scen_job.output)
    assert scen.title == scen_job.request["title"]
    assert scen.provenance["scenario"]["text"] == "ta +2 K, precip ×0.8"
    assert set(FLAGS) <= set(scen.variables)
    assert "A model re-run on the perturbed inputs" in scen.provenance["scenario"]["a_under_scenario"]
    ex = api.product_info(explain_job.output)
    assert ex.title == explain_job.request["title"] and "dominant_driver" in ex.variables
    dominant = api.open_product(explain_job.output)["dominant_driver"].values
    assert np.isfinite(dominant).sum() > 10
    store.close()


def test_cli_predict_with_a_scenario(world, capsys):
    _, version = world
    args = ["predict", "--model", version, "--bbox=-100,30,-90,40", "--start", PERIOD[0],
            "--end", PERIOD[0]]  # fmt: skip
    assert main([*args, "--scenario", "ssm-0.05, lai*1.1", "--name", "cli-scenario"]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == "cli-scenario"
    prov = api.product_info("cli-scenario").provenance["scenario"]
    assert prov["text"] == "ssm -0.05 m3 m-3, lai ×1.1"
    assert main([*args, "--scenario", "ssm-1"]) == 2
    assert "ssm may change by at most ±0.3 m3 m-3" in capsys.readouterr().err


def test_difference_refuses_products_that_do_not_pair(world):
    _, version = world
    base = predict.predict_region(version, BBOX, PERIOD[0], PERIOD[0], product_name="pair-base")
    other = predict.predict_region(version, BBOX, PERIOD[1], PERIOD[1], product_name="pair-other",
                                   scenario="ta+1K")  # fmt: skip
    with pytest.raises(InputError, match="not a scenario re-prediction"):
        S.difference(base, base)
    with pytest.raises(InputError, match="differ in period"):
        S.difference(other, base)
