import numpy as np
import pandas as pd
import pytest

from models import verdict as W
from validation import metrics


def _sites(n_sites=30, per_site=24, seed=0):
    rng = np.random.default_rng(seed)
    sites = np.repeat([f"S{i:02d}" for i in range(n_sites)], per_site)
    obs = rng.normal(80, 40, sites.size) + np.repeat(rng.normal(0, 20, n_sites), per_site)
    return rng, sites, obs


def test_point_differences_are_the_metrics_and_a_replicate_is_the_resampled_rows():
    rng, sites, obs = _sites()
    pred_c = obs + rng.normal(0, 10, obs.size)
    pred_d = obs + rng.normal(3, 15, obs.size)
    out = W.compare(sites, obs, pred_c, pred_d, n_boot=200)
    assert out["delta_r2"] == pytest.approx(metrics.r2(obs, pred_c) - metrics.r2(obs, pred_d))
    assert out["delta_rmse"] == pytest.approx(metrics.rmse(obs, pred_c) - metrics.rmse(obs, pred_d))
    assert out["delta_r2_lo"] < out["delta_r2"] < out["delta_r2_hi"] and out["winner"] == "constrained"
    # one bootstrap replicate from the summed statistics equals scoring the drawn sites' rows
    names = np.unique(sites)
    draw = rng.choice(names, size=names.size, replace=True)
    rows = np.concatenate([np.flatnonzero(sites == s) for s in draw])
    counts = np.array([np.sum(draw == s) for s in names], dtype=float)
    r2c, r2d, rmc, rmd = W._r2_rmse(counts @ W._site_sums(sites, obs, pred_c, pred_d))
    assert r2c == pytest.approx(metrics.r2(obs[rows], pred_c[rows]))
    assert rmd == pytest.approx(metrics.rmse(obs[rows], pred_d[rows]))


def test_winner_direct_and_neither():
    rng, sites, obs = _sites(seed=1)
    worse = obs + rng.normal(0, 25, obs.size)
    better = obs + rng.normal(0, 8, obs.size)
    assert W.compare(sites, obs, worse, better, n_boot=300)["winner"] == "direct"
    same = W.compare(sites, obs, better, better + rng.normal(0, 1e-3, obs.size), n_boot=300)
    assert same["winner"].startswith("neither") and same["delta_r2_lo"] <= 0 <= same["delta_r2_hi"]


def test_site_bootstrap_is_wider_than_a_row_bootstrap_when_errors_are_site_correlated():
    rng, sites, obs = _sites(n_sites=20, per_site=60, seed=2)
    site_err = np.repeat(rng.normal(0, 15, 20), 60)  # the closed model is worse at some whole sites
    pred_c = obs + site_err + rng.normal(0, 5, obs.size)
    pred_d = obs + rng.normal(0, 12, obs.size)
    by_site = W.compare(sites, obs, pred_c, pred_d, n_boot=500)
    by_row = W.compare(np.arange(obs.size), obs, pred_c, pred_d, n_boot=500)
    assert (by_site["delta_r2_hi"] - by_site["delta_r2_lo"]) > 2 * (
        by_row["delta_r2_hi"] - by_row["delta_r2_lo"]
    )


def test_verdicts_per_split_source_and_variable():
    rng, sites, obs = _sites(n_sites=12, per_site=10, seed=3)
    n = obs.size
    table = pd.DataFrame({"le_corr": obs, "h_corr": 100 - obs, "site_id": sites})
    frames = []
    for model, noise in (("constrained", 5), ("direct", 20)):
        for source in ("observed", "a_model"):
            frames.append(
                pd.DataFrame(
                    {
                        "split": "cluster",
                        "row": np.arange(n),
                        "site_id": sites,
                        "model": model,
                        "a_source": source,
                        "le": obs + rng.normal(0, noise, n),
                        "h": 100 - obs + rng.normal(0, noise, n),
                        "a_obs": np.where(np.arange(n) % 10 == 0, 5.0, 100.0),  # every 10th row small A
                    }
                )
            )
    out = W.verdicts(pd.concat(frames, ignore_index=True), table, n_boot=200)
    assert len(out) == 4 and set(out["winner"]) == {"constrained"}
    assert (out["n"] == n - n // 10).all() and set(out["a_regime"]) == {"A>=10"}
    assert "constrained: ΔR²" in W.verdict_text(out.iloc[0].to_dict())
