"""Metrics against values worked by hand on small arrays, and against scipy.stats for R and rho."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from catalog.errors import InputError
from validation import metrics

# Worked example: o = 1..5, p = [2, 2, 4, 5, 4]
#   d = p - o = [1, 0, 1, 1, -1]: bias = 2/5, mean(d^2) = 4/5, ubRMSE = sqrt(0.8 - 0.16) = 0.8
#   o - mean(o) = [-2, -1, 0, 1, 2], p - mean(p) = [-1.4, -1.4, 0.6, 1.6, 0.6] (mean p = 3.4)
#   sum(do dp) = 7, sum(do^2) = 10, sum(dp^2) = 7.2 -> R = 7 / sqrt(72)
#   sigma_o = sqrt(2), sigma_p = sqrt(1.44) = 1.2; NSE = 1 - 4 / 10 = 0.6
#   ranks(p) = [1.5, 1.5, 3.5, 5, 3.5] -> rho = 7.5 / sqrt(10 * 9)
#   centred differences [0.6, -0.4, 0.6, 0.6, -1.4] -> E' = sqrt(3.2 / 5) = 0.8
OBS = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
PRED = np.array([2.0, 2.0, 4.0, 5.0, 4.0])
R_HAND = 7.0 / math.sqrt(72.0)


def test_hand_worked_values():
    assert metrics.n_pairs(OBS, PRED) == 5
    assert metrics.bias(OBS, PRED, min_n=3) == pytest.approx(0.4)
    assert metrics.rmse(OBS, PRED, min_n=3) == pytest.approx(math.sqrt(0.8))
    assert metrics.ubrmse(OBS, PRED, min_n=3) == pytest.approx(0.8)
    assert metrics.mae(OBS, PRED, min_n=3) == pytest.approx(0.8)
    assert metrics.pearson_r(OBS, PRED, min_n=3) == pytest.approx(R_HAND)
    assert metrics.spearman_rho(OBS, PRED, min_n=3) == pytest.approx(7.5 / math.sqrt(90.0))
    assert metrics.nse(OBS, PRED, min_n=3) == pytest.approx(0.6)
    assert metrics.r2(OBS, PRED, min_n=3) == pytest.approx(0.6)
    alpha, beta = 1.2 / math.sqrt(2.0), 3.4 / 3.0
    kge_hand = 1.0 - math.sqrt((R_HAND - 1) ** 2 + (alpha - 1) ** 2 + (beta - 1) ** 2)
    assert metrics.kge(OBS, PRED, min_n=3) == pytest.approx(kge_hand)
    ts = metrics.taylor_stats(OBS, PRED, min_n=3)
    assert ts.sigma_norm == pytest.approx(alpha)
    assert ts.r == pytest.approx(R_HAND)
    assert ts.crmsd_norm == pytest.approx(0.8 / math.sqrt(2.0))
    assert ts.sigma_obs == pytest.approx(math.sqrt(2.0))
    # law of cosines on the diagram
    assert ts.crmsd_norm**2 == pytest.approx(1 + ts.sigma_norm**2 - 2 * ts.sigma_norm * ts.r)


def test_perfect_prediction():
    x = np.linspace(0.05, 0.4, 30)
    assert metrics.rmse(x, x) == 0.0
    assert metrics.kge(x, x) == pytest.approx(1.0)
    assert metrics.nse(x, x) == pytest.approx(1.0)
    assert metrics.pearson(x, x).p_value == 0.0


def test_pearson_against_scipy_with_fisher_ci():
    rng = np.random.default_rng(3)
    o = rng.normal(size=60)
    p = 0.6 * o + rng.normal(scale=0.8, size=60)
    res = metrics.pearson(o, p, alpha=0.1)
    ref = stats.pearsonr(o, p)
    assert res.r == pytest.approx(ref.statistic, rel=1e-12)
    assert res.p_value == pytest.approx(ref.pvalue, rel=1e-9)
    ci = ref.confidence_interval(confidence_level=0.9)  # scipy uses the Fisher transform too
    assert (res.ci_low, res.ci_high) == pytest.approx((ci.low, ci.high), rel=1e-9)
    # and by hand
    half = stats.norm.ppf(0.95) / math.sqrt(60 - 3)
    assert res.ci_low == pytest.approx(math.tanh(math.atanh(res.r) - half))
    assert res.n == 60


def test_spearman_against_scipy_with_ties():
    rng = np.random.default_rng(5)
    o = rng.integers(0, 8, size=40).astype(float)
    p = o + rng.integers(-2, 3, size=40)
    assert metrics.spearman_rho(o, p) == pytest.approx(stats.spearmanr(o, p).statistic, rel=1e-12)


def test_nan_pairs_dropped_consistently():
    o = np.append(OBS, [np.nan, 7.0, np.nan])
    p = np.append(PRED, [3.0, np.nan, np.nan])
    assert metrics.n_pairs(o, p) == 5
    full = metrics.all_metrics(OBS, PRED, min_n=3)
    with_nan = metrics.all_metrics(o, p, min_n=3)
    assert set(full) == set(metrics.METRIC_NAMES)
    for name in metrics.METRIC_NAMES:
        assert with_nan[name] == pytest.approx(full[name], nan_ok=True), name


def test_too_few_pairs_give_nan():
    assert metrics.n_pairs(OBS, PRED) < metrics.MIN_PAIRS
    assert math.isnan(metrics.bias(OBS, PRED))
    assert math.isnan(metrics.pearson(OBS, PRED).r)
    assert math.isnan(metrics.taylor_stats(OBS, PRED).sigma_norm)
    out = metrics.all_metrics(OBS, PRED)
    assert out["n"] == 5
    assert all(math.isnan(v) for k, v in out.items() if k != "n")


def test_constant_series_and_zero_mean():
    const = np.full(12, 0.3)
    x = np.linspace(0, 1, 12)
    assert math.isnan(metrics.pearson_r(const, x))
    assert math.isnan(metrics.nse(const, x))
    centred = np.arange(-6.0, 7.0)  # mean exactly 0
    assert math.isnan(metrics.kge(centred, centred + 1))  # beta undefined for mean(o) = 0
    assert metrics.rmse(const, x) > 0


def test_shape_mismatch_is_input_error():
    with pytest.raises(InputError, match="shape"):
        metrics.rmse(np.ones(12), np.ones(11))


def test_fits():
    x, y = [1.0, 2.0, 3.0], [2.0, 4.0, 7.0]
    assert metrics.slope_through_origin(x, y, min_n=3) == pytest.approx(31.0 / 14.0)
    slope, intercept = metrics.ols_fit(x, y, min_n=3)
    assert slope == pytest.approx(2.5)
    assert intercept == pytest.approx(-2.0 / 3.0)


def test_each_statistic_once_in_the_tables():
    # r2 of the prediction is NSE: the tables carry it once, as nse
    assert "r2" not in metrics.METRIC_NAMES and "nse" in metrics.METRIC_NAMES
    rng = np.random.default_rng(3)
    o = rng.normal(100.0, 30.0, 200)
    p = 0.8 * o + rng.normal(15.0, 12.0, 200)
    out = metrics.all_metrics(o, p)
    assert out["nse"] == pytest.approx(metrics.r2(o, p))
    values = [round(v, 12) for k, v in out.items() if k not in ("n",) and np.isfinite(v)]
    assert len(values) == len(set(values))  # no two columns repeat one number
