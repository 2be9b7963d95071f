import numpy as np
import pytest

from models import emulator as E
from models import explain as X
from models import features as F
from tests.models.emulator_tables import FAST, synthetic_table


@pytest.fixture(scope="module")
def fitted():
    table = synthetic_table()
    return table, E.fit_emulator(table, list(F.FLUXNET_FEATURES), **FAST)


def test_stratified_sample_covers_every_site():
    table = synthetic_table()
    sample = X.stratified_sample(table, 120)
    counts = sample["site_id"].value_counts()
    assert set(counts.index) == set(table["site_id"]) and counts.nunique() == 1 and counts.iloc[0] == 10


@pytest.mark.parametrize("model", ["ef", "a", "le_direct", "h_direct"])
def test_shap_sums_to_raw_prediction(fitted, model):
    table, emu = fitted
    frames = X.compute(emu, table, n=240)
    frame = frames[f"shap_{model}"]
    feats = X.model_features(emu, model)
    shap_sum = frame[[f"shap_{f}" for f in feats]].sum(axis=1) + frame["base"]
    raw = emu.boosters[model].predict(frame[[f"x_{f}" for f in feats]].to_numpy(), raw_score=True)
    assert np.allclose(shap_sum, raw, rtol=1e-6, atol=1e-6)
    assert np.allclose(frame["raw"], raw, rtol=1e-6, atol=1e-6)


def test_importance_beeswarm_dependence_site(fitted):
    table, emu = fitted
    frame = X.compute(emu, table, n=240)["shap_ef"]
    imp = X.global_importance(frame)
    assert imp["mean_abs_shap"].is_monotonic_decreasing
    assert imp["feature"].iloc[0] in ("vpd", "precip")  # the features EF was generated from
    assert np.isclose(imp.set_index("feature").loc["vpd", "mean_abs_shap"], frame["shap_vpd"].abs().mean())
    bee = X.beeswarm_data(frame, top=3)
    assert bee["feature"].nunique() == 3 and bee["value_rank"].between(0, 1).all()
    dep = X.dependence_data(frame, "vpd")
    assert np.array_equal(dep["value"], frame["x_vpd"])
    site = frame["site_id"].iloc[0]
    expl = X.site_explanation(frame, site)
    rows = frame[frame["site_id"] == site]
    assert np.isclose(expl.set_index("feature").loc["vpd", "mean_shap"], rows["shap_vpd"].mean())
    assert X.site_explanation(frame, "nowhere") is None
    with pytest.raises(KeyError):
        X.dependence_data(frame, "lai")
