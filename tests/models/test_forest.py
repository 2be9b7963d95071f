"""The packed forest against LightGBM itself, on inputs that hit every rule of the tree walk."""

import lightgbm as lgb
import numpy as np
import pytest

from models import forest


def _booster(objective, *, nan_in_training, leaves, rounds=40, seed=0):
    rng = np.random.default_rng(seed)
    n = 3000
    x = np.column_stack(
        [
            rng.normal(0, 1, n),
            rng.uniform(0, 100, n).round(0),  # many rows exactly on thresholds' neighbours
            rng.integers(0, 12, n).astype(float),  # categorical
            rng.normal(5, 2, n),
        ]
    )
    y = np.sin(x[:, 0]) + 0.02 * x[:, 1] + (x[:, 2] % 3 == 0) - 0.1 * x[:, 3] + rng.normal(0, 0.1, n)
    if nan_in_training:
        x[rng.uniform(size=x.shape) < 0.1] = np.nan
    if objective == "cross_entropy":
        y = 1 / (1 + np.exp(-y))
    params = {
        "objective": objective,
        "num_leaves": leaves,
        "min_data_in_leaf": 5,
        "verbose": -1,
        "seed": seed,
    }
    return lgb.train(params, lgb.Dataset(x, y, categorical_feature=[2]), num_boost_round=rounds), x


def _inputs(x, seed):
    rng = np.random.default_rng(seed)
    q = x[rng.integers(0, len(x), 5000)].copy()
    q[rng.uniform(size=q.shape) < 0.1] = np.nan
    q[:500, 2] = rng.choice([-1.0, -0.5, 0.0, 11.7, 12.0, 33.0, 1e6], 500)  # odd categories
    q[500:1000, 1] = rng.integers(-5, 105, 500)  # exact integers
    q[1000:1100, 0] = 0.0
    return q


@pytest.mark.parametrize("objective", ["regression", "cross_entropy"])
@pytest.mark.parametrize("nan_in_training", [False, True])
@pytest.mark.parametrize("leaves", [31, 48])  # mask tables (<= 32 leaves) and the level walk
def test_packed_forest_equals_booster(objective, nan_in_training, leaves):
    booster, x = _booster(objective, nan_in_training=nan_in_training, leaves=leaves)
    packed = forest.pack(booster)
    assert (packed.masks is None) == (leaves > 32)
    q = _inputs(x, seed=1)
    ref = booster.predict(q)
    fast = forest.Forest(packed)
    for got in (fast.predict(q, n_jobs=1), fast.predict(q, n_jobs=2), forest.predict_numpy(packed, q)):
        assert np.all(np.abs(got - ref) <= 1e-9 * np.maximum(np.abs(ref), 1e-12))


def test_thresholds_are_exact():
    """A value equal to a split threshold goes left, its next double goes right, as in LightGBM."""
    booster, x = _booster("regression", nan_in_training=False, leaves=8, rounds=5)
    packed = forest.pack(booster)
    t = packed.thresholds[packed.thr_start[0] : packed.thr_start[1]]
    q = np.repeat(x[:1], 2 * len(t), axis=0)
    q[: len(t), 0] = t
    q[len(t) :, 0] = np.nextafter(t, np.inf)
    # the same leaves: equal up to the rounding of the leaf sum (a wrong leaf is off by a leaf value)
    np.testing.assert_allclose(forest.Forest(packed).predict(q), booster.predict(q), rtol=1e-12, atol=0)


def test_bad_input_shape():
    booster, x = _booster("regression", nan_in_training=False, leaves=8, rounds=3)
    with pytest.raises(ValueError, match="expected a"):
        forest.Forest.from_booster(booster).predict(x[:, :3])


def test_unsupported_objective():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 2))
    b = lgb.train({"objective": "poisson", "verbose": -1}, lgb.Dataset(x, np.exp(x[:, 0])), 3)
    with pytest.raises(ValueError, match="poisson"):
        forest.pack(b)


@pytest.mark.parametrize("objective", ["regression", "cross_entropy"])
def test_neighbouring_rows_alike(objective):
    """Rows that share codes with the row before (as in a field) take the reuse paths; same results."""
    booster, x = _booster(objective, nan_in_training=True, leaves=31)
    rng = np.random.default_rng(2)
    base = _inputs(x, seed=3)[:300]
    q = np.repeat(base, rng.integers(1, 30, len(base)), axis=0)  # runs of identical rows
    drift = np.cumsum(rng.normal(0, 0.01, q.shape), axis=0)
    q[:, [0, 3]] += drift[:, [0, 3]]  # two features drift slowly, the others repeat
    q = q[np.lexsort([q[:, 1], q[:, 2]])]  # the slow features grouped: long shared prefixes
    ref = booster.predict(q)
    got = forest.Forest.from_booster(booster).predict(q, n_jobs=2)
    assert np.all(np.abs(got - ref) <= 1e-9 * np.maximum(np.abs(ref), 1e-12))
