"""Explanation maps: contributions + base value equal the EF model's raw score, the LE contributions
add up to the prediction's LE, the dominant driver is the largest |contribution|, as a product."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pytest
import xarray as xr

from catalog.errors import InputError
from models import explain_map, predict, registry
from models.emulator import ef_link
from tests.conftest import demo_copy_with_model
from tests.stores import level_path

BBOX = (-105.0, 30.0, -95.0, 40.0)
PERIOD = ("2018-06-03", "2018-06-08")


@pytest.fixture(scope="module")
def world(demo_world, tmp_path_factory):
    d = tmp_path_factory.mktemp("explain") / "data"
    settings = dict(num_boost_round=15, n_folds=2, params={"min_data_in_leaf": 5}, shap_sample=100)
    with demo_copy_with_model(demo_world, d, **settings) as version:
        yield d, version


def _sigmoid(s):
    return 1.0 / (1.0 + np.exp(-s))


def test_le_contributions_add_up_exactly_with_the_logit_link():
    rng = np.random.default_rng(0)
    phi, base, a = rng.normal(size=(50, 4)), rng.normal(size=50), rng.uniform(10, 500, 50)
    phi[0] = 0.0  # the tangent branch
    c, le0 = explain_map.le_contributions(phi, base, a, "logit")
    np.testing.assert_allclose(le0 + c.sum(axis=1), a * _sigmoid(base + phi.sum(axis=1)), rtol=1e-12)
    assert np.all(np.sign(c[1:]) == np.sign(phi[1:]))  # σ is increasing: same sign as φ


def test_le_contributions_with_the_identity_link_are_a_times_phi_inside_0_1():
    rng = np.random.default_rng(1)
    phi, base, a = rng.normal(0, 0.05, size=(50, 4)), np.full(50, 0.5), rng.uniform(10, 500, 50)
    phi[-1] = [0.4, 0.4, 0.0, 0.0]  # s = 1.3: clipped to EF = 1
    c, le0 = explain_map.le_contributions(phi, base, a, "identity")
    s = base + phi.sum(axis=1)
    np.testing.assert_allclose(le0 + c.sum(axis=1), a * np.clip(s, 0, 1), rtol=1e-12)
    inside = (s > 0) & (s < 1)
    assert inside[:-1].all() and not inside[-1]
    np.testing.assert_allclose(c[inside], a[inside, None] * phi[inside], rtol=1e-12)
    np.testing.assert_allclose(le0, 0.5 * a)


def test_explain_block_equals_model_raw_score(world):
    d, version = world
    req = predict._prepare(version, BBOX, *PERIOD, None, None, False, None, 2)
    booster = lgb.Booster(model_file=str(registry.version_dir(version) / "ef.txt"))
    assert ef_link(booster) == "identity"  # the squared-error EF model trained by default
    a_model = predict._forests(version, True, radiation=False)["a"]
    models = {"ef_booster": booster, "ef_link": "identity", "a": a_model}
    block = req.blocks[0]
    sub = req.grid.isel(block.region).load()
    arrays = {v: sub[v].values for v in sub.data_vars}
    out = explain_map.explain_block(models, arrays, *req.block_args(block))
    shape, flat, x, a = predict.block_features(models, arrays, *req.block_args(block))
    keep = a >= req.spec.a_min
    assert keep.sum() > 50
    raw = booster.predict(x[keep], raw_score=True)
    base = booster.predict(x[:1], pred_contrib=True)[0, -1]
    rows = np.flatnonzero(flat)[keep]
    phi = np.stack([out[f"shap_{f}"].reshape(-1)[rows] for f in req.spec.features], axis=1).astype(float)
    # float32 storage of each contribution: 1e-6 of the score's scale
    np.testing.assert_allclose(base + phi.sum(axis=1), raw, atol=1e-6 * max(1.0, np.abs(raw).max()))
    forests = predict._forests(version, True, radiation=False)
    pred = predict.predict_block(forests, arrays, *req.block_args(block))
    le = pred["le"].reshape(-1)[rows]
    c_le = np.stack([out[f"shap_le_{f}"].reshape(-1)[rows] for f in req.spec.features], axis=1)
    le_sum = out["le_base"].reshape(-1)[rows] + c_le.sum(axis=1, dtype=float)
    np.testing.assert_allclose(le_sum, le, atol=1e-3)
    dom = out["dominant_driver"].reshape(-1)[rows]
    np.testing.assert_array_equal(dom, np.argmax(np.abs(phi), axis=1))
    small = np.flatnonzero(flat)[~keep]
    assert np.isnan(out["ef"].reshape(-1)[small]).all()


def test_explain_region_writes_a_product_with_a_legend(world):
    from catalog import api

    d, version = world
    seen = []
    name = explain_map.explain_region(version, BBOX, *PERIOD, progress=lambda k, n: seen.append((k, n)))
    assert name.startswith("explain-") and seen[-1][0] == seen[-1][1]
    info = api.product_info(name)
    assert "shap_le_ta" in info.variables and info.variables["shap_le_ta"]["units"] == "W m-2"
    prov = info.provenance
    assert "secant" in prov["le_linearisation"] and prov["computed_on"] == "dask local threaded scheduler"
    out = xr.open_zarr(level_path(d, name), consolidated=False)
    dom = out["dominant_driver"]
    assert dom.attrs["flag_meanings"].split() == prov["features"]
    values = dom.values[np.isfinite(dom.values)]
    assert values.size > 100 and set(np.unique(values)) <= set(range(len(prov["features"])))
    assert "EF explanation" in info.title and "2018-06-03" in info.title


def test_explain_refuses_a_box_outside_the_inputs(world):
    _, version = world
    with pytest.raises(InputError, match="outside"):
        explain_map.explain_region(version, (200.0, 0.0, 210.0, 10.0), *PERIOD)
