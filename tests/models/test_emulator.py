import numpy as np
import pytest

from models import emulator as E
from models import features as F
from tests.models.emulator_tables import FAST, synthetic_table

FEATS = [f for f in F.FLUXNET_FEATURES]


@pytest.fixture(scope="module")
def table():
    return synthetic_table()


@pytest.fixture(scope="module")
def emu(table):
    return E.fit_emulator(table, FEATS, **FAST)


def test_ef_target_excludes_small_available_energy():
    le = np.array([50.0, 5.0, 30.0, -5.0, 60.0, 3.0])
    h = np.array([50.0, 2.0, -10.0, 40.0, 20.0, 2.0])
    a = np.array([100.0, 7.0, 20.0, 35.0, 80.0, -40.0])
    ef, ok = E.ef_target(le, h, a, a_min=10.0)
    assert ok.tolist() == [True, False, True, True, True, False]
    assert ef[0] == 0.5 and ef[4] == 0.75
    assert ef[2] == 1.0 and ef[3] == 0.0  # clipped: H < 0, LE < 0
    assert np.isnan(ef[1]) and np.isnan(ef[5])


def test_closure_exact_including_zero_and_negative_available_energy():
    rng = np.random.default_rng(1)
    a = np.concatenate([rng.normal(80, 120, 10000), [0.0, -1e-3, 1e-3, -50.0]])
    ef = rng.uniform(0, 1, a.size)
    le, h = E.close_energy_balance(ef, a)
    assert np.all(np.abs(le + h - a) <= 4 * np.finfo(float).eps * np.maximum(np.abs(a), 1.0))
    assert le[-4] == 0.0 and h[-4] == 0.0
    # |LE|, |H| never exceed |A|: small A gives small fluxes whatever EF is
    assert np.all(np.abs(le) <= np.abs(a) + 1e-12) and np.all(np.abs(h) <= np.abs(a) + 1e-12)


def test_constrained_predictions_close_and_ef_bounded(emu, table):
    pred = emu.predict(table, model="constrained")
    partitioned = table["a"] >= emu.a_min
    assert 0 < (~partitioned).sum() and pred["ef"][partitioned].between(0, 1).all()
    assert pred["ef"][~partitioned].isna().all()  # EF undefined at small A
    resid = pred["le"] + pred["h"] - table["a"]
    assert np.abs(resid).max() <= 1e-12 * np.abs(table["a"]).max()
    direct = emu.predict(table, model="direct")
    assert np.abs(direct["le"] + direct["h"] - table["a"]).max() > 0.1  # the baseline does not close


def test_small_a_takes_le_from_direct_model_and_stays_closed():
    ef = np.array([0.5, 0.5, 0.5, 0.5])
    a = np.array([100.0, 10.0, 5.0, -30.0])
    le_direct = np.array([np.nan, np.nan, 4.0, 12.0])
    le, h, ef_out = E.constrained_fluxes(ef, a, le_direct, a_min=10.0)
    assert le.tolist() == [50.0, 5.0, 4.0, 12.0]
    assert h.tolist() == [50.0, 5.0, 1.0, -42.0]
    assert np.array_equal(le + h, a)
    assert ef_out[:2].tolist() == [0.5, 0.5] and np.isnan(ef_out[2:]).all()


def test_constrained_model_recovers_known_ef(emu, table):
    pred = emu.predict(table, model="constrained")
    truth = 1 / (1 + np.exp(-(1.5 - 0.25 * table["vpd"] + 0.4 * table["precip"])))
    big = table["a"] > 50
    assert np.corrcoef(pred["ef"][big], truth[big])[0, 1] > 0.9


def test_a_model_used_when_a_missing(emu, table):
    rows = table.head(20).assign(a=np.nan)
    pred = emu.predict(rows)
    assert np.allclose(pred["a"], emu.predict_a(rows))
    assert np.allclose(pred["le"] + pred["h"], pred["a"])


def test_small_a_rows_do_not_enter_ef_training(table):
    """Training with the small-A rows present equals training on the other rows alone."""
    x = F.feature_matrix(table, FEATS)
    ef, ok = E.ef_target(table["le_corr"], table["h_corr"], table["a"])
    assert 0 < (~ok).sum() < len(ok)
    kw = dict(objective=E.EF_OBJECTIVE, num_boost_round=10, params={"min_data_in_leaf": 5})
    full = E.fit_booster(x, ef, FEATS, weight=np.where(ok, table["a"], 0.0), **kw)
    only = E.fit_booster(x[ok], ef[ok], FEATS, weight=table["a"].to_numpy()[ok], **kw)
    probe = x[:200]
    assert np.array_equal(full.predict(probe), only.predict(probe))


def test_monotone_constraint_holds(table):
    x = F.feature_matrix(table, FEATS)
    ef, ok = E.ef_target(table["le_corr"], table["h_corr"], table["a"])
    b = E.fit_booster(
        x,
        ef,
        FEATS,
        objective=E.EF_OBJECTIVE,
        weight=np.where(ok, table["a"], 0.0),
        monotone={"vpd": -1, "precip": 1},
        num_boost_round=30,
        params={"min_data_in_leaf": 5},
    )
    base = np.repeat(x[:50], 40, axis=0)
    grid = np.tile(np.linspace(0.1, 30, 40), 50)
    base[:, FEATS.index("vpd")] = grid
    p = b.predict(base).reshape(50, 40)
    assert np.all(np.diff(p, axis=1) <= 1e-12)


def test_bad_monotone_rejected(table):
    x = F.feature_matrix(table, FEATS)
    with pytest.raises(ValueError, match="categorical"):
        E.fit_booster(x, table["le_corr"], FEATS, monotone={"igbp": 1}, num_boost_round=2)
    with pytest.raises(ValueError, match="does not use"):
        E.fit_booster(x, table["le_corr"], FEATS, monotone={"ssm": 1}, num_boost_round=2)


def test_ef_link_follows_the_booster_objective(table):
    """An L2 EF booster's output is clipped to [0, 1]; a cross-entropy one (older versions) is σ(s)."""
    x = F.feature_matrix(table, FEATS)
    ef, ok = E.ef_target(table["le_corr"], table["h_corr"], table["a"])
    kw = dict(weight=np.where(ok, table["a"], 0.0), num_boost_round=5, params={"min_data_in_leaf": 5})
    l2 = E.fit_booster(x, ef, FEATS, objective=E.EF_OBJECTIVE, **kw)
    xent = E.fit_booster(x, ef, FEATS, objective="cross_entropy", **kw)
    assert E.ef_link(l2) == "identity" and E.ef_link(xent) == "logit"
    raw = xent.predict(x[:20], raw_score=True)
    np.testing.assert_allclose(E.ef_from_raw(raw, "logit"), xent.predict(x[:20]), rtol=1e-12)
    np.testing.assert_array_equal(E.ef_from_raw([-0.2, 0.3, 1.4], "identity"), [0.0, 0.3, 1.0])
    le, h, out = E.constrained_fluxes([1.2, -0.1], [100.0, 100.0], [np.nan, np.nan])
    np.testing.assert_array_equal(out, [1.0, 0.0])
    np.testing.assert_array_equal(le + h, [100.0, 100.0])
