import numpy as np
import pytest

from models import evaluation as V
from models import features as F
from models import intervals as I
from tests.models.emulator_tables import FAST, synthetic_table


def test_conformal_ranks_and_too_few_scores():
    q = I.conformal_quantiles(np.random.default_rng(0).permutation(np.arange(1.0, 100.0)), 0.90)
    assert (q["q_lo"], q["q_hi"], q["n"]) == (5.0, 95.0, 99)  # floor(100 * 0.05), ceil(100 * 0.95)
    tiny = I.conformal_quantiles([0.1, -0.2, np.nan], 0.90)
    assert tiny == {"q_lo": None, "q_hi": None, "n": 2}  # unbounded: too few scores for the ranks
    assert I.bound_names(0.90) == ("q05", "q95") and I.bound_names(0.80) == ("q10", "q90")


def test_split_conformal_covers_exchangeable_scores():
    rng = np.random.default_rng(1)
    cover = []
    for _ in range(200):
        s = rng.standard_t(3, 400)
        q = I.conformal_quantiles(s[:200], 0.90)
        cover.append(np.mean((s[200:] >= q["q_lo"]) & (s[200:] <= q["q_hi"])))
    assert np.mean(cover) == pytest.approx(0.90, abs=0.01)  # marginal coverage >= 1 - alpha, ~ tight


def test_pooled_scores_cover_both_fluxes_at_the_nominal_level_on_average():
    """Two scores per row (LE error; H error read as an LE error, apart by the closure residual): the
    pooled quantiles give 90 % averaged over the fluxes; min/max per row would give more for each."""
    rng = np.random.default_rng(4)
    pooled, conservative = [], []
    for _ in range(200):
        s_le = rng.standard_t(4, 600) * 0.1
        s_h = s_le + rng.normal(0.0, 0.05, 600)  # observed LE + H != A
        cal, test = slice(0, 300), slice(300, None)
        q = I.conformal_quantiles(np.stack([s_le[cal], s_h[cal]], axis=1), 0.90)
        inside = [np.mean((x[test] >= q["q_lo"]) & (x[test] <= q["q_hi"])) for x in (s_le, s_h)]
        pooled.append(np.mean(inside))
        lo = I.conformal_quantiles(np.fmin(s_le[cal], s_h[cal]), 0.90)["q_lo"]
        hi = I.conformal_quantiles(np.fmax(s_le[cal], s_h[cal]), 0.90)["q_hi"]
        conservative.append(np.mean([np.mean((x[test] >= lo) & (x[test] <= hi)) for x in (s_le, s_h)]))
    assert np.mean(pooled) == pytest.approx(0.90, abs=0.01)
    assert np.mean(conservative) > np.mean(pooled) + 0.01


def test_bounds_keep_the_closure_for_each_bound():
    rng = np.random.default_rng(2)
    a = np.concatenate([rng.uniform(10, 250, 50), rng.uniform(-40, 9.9, 10), [np.nan]])
    ef = np.where(a >= 10, rng.uniform(0.1, 0.9, a.size), np.nan)
    le = np.where(a >= 10, ef * a, rng.normal(5, 3, a.size))
    h = a - le
    quantiles = {"ef": {"q_lo": -0.2, "q_hi": 0.15, "n": 500}, "le": {"q_lo": -6.0, "q_hi": 9.0, "n": 80}}
    b = I.bounds(le, h, ef, a, quantiles, model="constrained")
    ok = np.isfinite(a)
    assert np.allclose((b["le_lo"] + b["h_hi"])[ok], a[ok]) and np.allclose(
        (b["le_hi"] + b["h_lo"])[ok], a[ok]
    )
    big = a >= 10
    assert np.allclose(b["le_lo"][big], (ef[big] - 0.2) * a[big])  # EF bounds times A
    assert np.allclose(b["le_hi"][ok & ~big], le[ok & ~big] + 9.0)  # direct-LE branch
    assert (b["le_lo"][ok] <= le[ok]).all() and (le[ok] <= b["le_hi"][ok]).all()
    assert np.isnan(b["le_lo"][~ok]).all()
    unbounded = I.bounds(
        le, h, ef, a, {**quantiles, "le": {"q_lo": None, "q_hi": None, "n": 3}}, model="constrained"
    )
    assert np.isnan(unbounded["le_hi"][~big]).all() and np.isfinite(unbounded["le_hi"][big]).all()


@pytest.fixture(scope="module")
def cv():
    table = synthetic_table(n_sites=16)
    oof = V.out_of_fold_predictions(
        table, list(F.FLUXNET_FEATURES), splits=("spatial", "cluster"), n_folds=4, fit_kwargs=FAST
    )
    return table, oof


def test_cv_coverage_is_calibrated_on_other_folds_and_near_nominal(cv):
    table, oof = cv
    bounded = I.cv_bounds(oof, table, model="constrained", targets="corrected")
    assert np.allclose(
        (bounded["le_lo"] + bounded["h_hi"]).dropna(),
        bounded.dropna(subset=["le_lo"])["le"] + bounded.dropna(subset=["le_lo"])["h"],
    )
    cov = I.cv_coverage(bounded)
    pooled = cov[cov["igbp"].isna() & (cov["a_regime"] == "all")]
    assert set(pooled["split"]) == {"spatial", "cluster"} and set(pooled["a_source"]) == {
        "observed",
        "a_model",
    }
    assert (pooled["n"] == len(table)).all()
    assert pooled["coverage"].between(0.82, 0.97).all(), pooled
    per_class = cov[cov["igbp"].notna() & (cov["a_regime"] == "all") & (cov["split"] == "cluster")]
    assert set(per_class["igbp"]) == set(table["igbp"])
    # recomputed by hand for one fold: quantiles from the other folds only
    part = oof[
        (oof["split"] == "cluster") & (oof["model"] == "constrained") & (oof["a_source"] == "observed")
    ]
    fold = part["fold"].iloc[0]
    cal = I.calibrate(part[part["fold"] != fold], table, model="constrained", targets="corrected")["observed"]
    held = part[part["fold"] == fold]
    b = I.bounds(held["le"], held["h"], held["ef"], held["a"], cal, model="constrained")
    obs = table["le_corr"].to_numpy()[held["row"]]
    leaked = I.calibrate(part, table, model="constrained", targets="corrected")["observed"]
    assert cal != leaked
    big = held["a"].to_numpy() >= 10
    assert (
        np.isfinite(b["le_lo"][big]).all() and ((obs >= b["le_lo"]) & (obs <= b["le_hi"]))[big].mean() > 0.7
    )


def test_direct_model_intervals(cv):
    table, oof = cv
    cal = I.calibrate(oof[oof["split"] == "cluster"], table, model="direct", targets="corrected")
    assert set(cal["observed"]) == {"le", "h"}
    cov = I.cv_coverage(I.cv_bounds(oof, table, model="direct", targets="corrected"))
    pooled = cov[cov["igbp"].isna() & (cov["a_regime"] == "all")]
    assert pooled["coverage"].between(0.8, 0.98).all()


def test_prediction_source():
    q = {"observed": {}, "a_model": {}, "era5_rad": {}}
    assert I.prediction_source(q, None) == "a_model"
    assert I.prediction_source(q, "era5_rad") == "era5_rad"
    assert I.prediction_source(q, "other_rad") == "observed"
    assert I.calibration_split(("random", "spatial")) == "spatial"
    assert I.calibration_split(V.SPLITS) == "cluster"
    with pytest.raises(ValueError):
        I.calibration_split(())
