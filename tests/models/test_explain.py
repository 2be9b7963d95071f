import numpy as np
import pytest

from models import emulator as E
from models import explain as X
from models import features as F
from models import registry
from models import tree_shap as TS
from tests.conftest import demo_copy_with_model
from tests.models.emulator_tables import FAST, synthetic_table


@pytest.fixture(scope="module")
def fitted():
    table = synthetic_table()
    return table, E.fit_emulator(table, list(F.FLUXNET_FEATURES), **FAST)


@pytest.fixture(scope="module")
def demo_emulator(demo_world, tmp_path_factory):
    """The emulator trained on the small demo world's towers (the demo model's 60 rounds), the rows of
    its SHAP cache as a feature table, and its version."""
    d = tmp_path_factory.mktemp("explain-demo") / "data"
    with demo_copy_with_model(demo_world, d, n_folds=2, num_boost_round=60, shap_sample=300) as version:
        cached = registry.read_table(version, "shap_ef")
        rows = cached[[c for c in cached if c.startswith("x_")]].rename(columns=lambda c: c[len("x_") :])
        rows.insert(0, "site_id", cached["site_id"])
        rows.insert(1, "time", cached["time"])
        yield registry.load(version), rows, version


def test_stratified_sample_covers_every_site():
    table = synthetic_table()
    sample = X.stratified_sample(table, 120)
    counts = sample["site_id"].value_counts()
    assert set(counts.index) == set(table["site_id"]) and counts.nunique() == 1 and counts.iloc[0] == 10


@pytest.mark.parametrize("model", E.MODEL_NAMES)
def test_tree_explainer_equals_lightgbm_pred_contrib_on_the_demo_emulator(demo_emulator, model):
    emu, rows, _ = demo_emulator
    feats = X.model_features(emu, model)
    frame = TS.shap_frame(emu, model, rows)
    x = frame[[f"x_{f}" for f in feats]].to_numpy()
    contrib = emu.boosters[model].predict(x, pred_contrib=True)
    values = frame[[f"shap_{f}" for f in feats]].to_numpy()
    assert np.abs(values - contrib[:, :-1]).max() <= 1e-6
    # the expected value comes from shap's own parse of the trees, not from pred_contrib
    assert np.abs(frame["base"].to_numpy() - contrib[:, -1]).max() <= 1e-6
    raw = emu.boosters[model].predict(x, raw_score=True)
    assert np.abs(frame["raw"].to_numpy() - raw).max() <= 1e-6


@pytest.mark.parametrize("model", ["ef", "le_direct"])
def test_interaction_values_sum_to_shap_values_on_the_demo_emulator(demo_emulator, model):
    emu, rows, _ = demo_emulator
    feats = X.model_features(emu, model)
    rows = rows.head(60)
    x = rows[feats].to_numpy()
    phi = TS.explainer(emu, model).shap_interaction_values(x)
    contrib = emu.boosters[model].predict(x, pred_contrib=True)
    assert phi.shape == (len(rows), len(feats), len(feats))
    assert np.abs(phi.sum(axis=2) - contrib[:, :-1]).max() <= 1e-6
    assert np.allclose(phi, phi.transpose(0, 2, 1), atol=1e-9)
    pair = TS.interaction_frame(emu, model, rows)
    i, j = feats.index(pair["first"].iloc[0]), feats.index(pair["second"].iloc[0])
    strength = np.abs(phi).mean(axis=0)
    off_diagonal = strength[~np.eye(len(feats), dtype=bool)]
    assert strength[i, j] == pytest.approx(off_diagonal.max())
    assert np.allclose(pair["interaction"], phi[:, i, j]) and np.allclose(pair["x_second"], x[:, j])


def test_training_caches_interactions_of_the_strongest_pair(demo_emulator):
    emu, rows, version = demo_emulator
    meta = registry.read_meta(version)
    assert set(meta["shap"]["interaction_seconds"]) == set(E.MODEL_NAMES)
    assert meta["shap"]["method"].startswith("shap ")
    for model in E.MODEL_NAMES:
        pair = registry.read_table(version, f"shap_interaction_{model}")
        first, second, mean_abs = X.interaction_pair(pair)
        assert first != second and {first, second} <= set(X.model_features(emu, model))
        assert mean_abs == pytest.approx(np.abs(pair["interaction"]).mean())
        assert len(pair) == meta["shap"]["interaction_sample_size"]
        # the interaction rows are rows of the SHAP sample
        keys = set(zip(rows["site_id"], rows["time"], strict=True))
        assert set(zip(pair["site_id"], pair["time"], strict=True)) <= keys


def test_strongest_pair_picks_the_largest_off_diagonal_and_orders_by_shap():
    rng = np.random.default_rng(0)
    phi = rng.normal(0, 0.01, (50, 4, 4))
    phi = (phi + phi.transpose(0, 2, 1)) / 2
    phi[:, 1, 3] = phi[:, 3, 1] = rng.normal(0, 1.0, 50)  # the strongest interaction
    phi[:, 0, 0] = 5.0  # a larger main effect does not count
    phi[:, 3, 3] = 3.0  # feature 3 has the larger |SHAP| of the pair: it comes first
    assert TS.strongest_pair(phi) == (3, 1)
    phi[:, 1, 1] = 10.0
    assert TS.strongest_pair(phi) == (1, 3)


@pytest.mark.parametrize("model", E.MODEL_NAMES)
def test_shap_sums_to_raw_prediction(fitted, model):
    table, emu = fitted
    tables, info = TS.compute(emu, table, n=240, n_interaction=48)
    frame = tables[f"shap_{model}"]
    feats = X.model_features(emu, model)
    shap_sum = frame[[f"shap_{f}" for f in feats]].sum(axis=1) + frame["base"]
    raw = emu.boosters[model].predict(frame[[f"x_{f}" for f in feats]].to_numpy(), raw_score=True)
    assert np.allclose(shap_sum, raw, rtol=1e-6, atol=1e-6)
    assert np.allclose(frame["raw"], raw, rtol=1e-6, atol=1e-6)
    assert info["sample_size"] == 240 and len(tables[f"shap_interaction_{model}"]) == 48


def test_le_interaction_pairs_available_energy_with_a_driver_of_ef(fitted):
    # the synthetic LE is EF(vpd, precip) × A, A a feature: a product, so the pair is A with vpd or precip
    table, emu = fitted
    pair = TS.interaction_frame(emu, "le_direct", X.stratified_sample(table, 240))
    assert {pair["first"].iloc[0], pair["second"].iloc[0]} in ({"a", "vpd"}, {"a", "precip"})


def test_swarm_offsets_stay_in_the_band_and_separate_ties():
    values = np.r_[np.zeros(9), np.linspace(1, 2, 5), np.nan]
    off = X.swarm_offsets(values)
    assert np.abs(off).max() == pytest.approx(X.BEESWARM_HALF_HEIGHT)
    assert len(np.unique(off[:9])) == 9  # nine equal values: nine different heights
    assert np.array_equal(off[9:14], np.zeros(5)) and off[14] == 0  # one per bin; NaN on the row
    assert np.array_equal(off, X.swarm_offsets(values))


def test_importance_beeswarm_dependence_site(fitted):
    table, emu = fitted
    frame = TS.shap_frame(emu, "ef", X.stratified_sample(table, 240))
    imp = X.global_importance(frame)
    assert imp["mean_abs_shap"].is_monotonic_decreasing
    assert imp["feature"].iloc[0] in ("vpd", "precip")  # the features EF was generated from
    assert np.isclose(imp.set_index("feature").loc["vpd", "mean_abs_shap"], frame["shap_vpd"].abs().mean())
    bee = X.beeswarm_data(frame, top=3)
    assert bee["feature"].nunique() == 3 and bee["value_rank"].between(0, 1).all()
    assert list(bee.drop_duplicates("feature")["feature"]) == list(imp["feature"].head(3))
    band = bee["y"] - (2 - bee["row"])
    assert band.abs().max() <= X.BEESWARM_HALF_HEIGHT + 1e-12  # each point within its feature's row
    dep = X.dependence_data(frame, "vpd")
    assert np.array_equal(dep["value"], frame["x_vpd"])
    site = frame["site_id"].iloc[0]
    expl = X.site_explanation(frame, site)
    rows = frame[frame["site_id"] == site]
    assert np.isclose(expl.set_index("feature").loc["vpd", "mean_shap"], rows["shap_vpd"].mean())
    assert X.site_explanation(frame, "nowhere") is None
    with pytest.raises(KeyError):
        X.dependence_data(frame, "lai")


def test_shap_units_follow_the_version():
    """A version records its SHAP units; older cross-entropy versions keep logit(EF)."""
    old = {"shap": {"units": {"ef": "logit(EF)", "a": "W m-2"}}}
    assert X.shap_units(old, "ef") == "logit(EF)"
    assert X.shap_units({}, "ef") == X.SHAP_UNITS["ef"] == "EF (1)"
    assert X.shap_units(old, "le_direct") == ""
