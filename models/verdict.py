"""Closed vs direct: which model wins each split and variable, and by how much, with a site bootstrap.

For the out-of-fold predictions of one split, A source and variable (rows with observed A at or above
the threshold), the differences ΔR² = R²_constrained − R²_direct and ΔRMSE = RMSE_constrained −
RMSE_direct (W m-2) are computed on the pooled rows, and their 95 % interval by the percentile
bootstrap over sites (Efron & Tibshirani 1993, ch. 13): sites are drawn with replacement (every
row of a drawn site comes with it, so the within-site correlation of monthly errors is kept), both
models scored on the same draw. R² = 1 − SS_res/SS_tot (as :func:`validation.metrics.r2`), RMSE =
√(SS_res/n), from per-site sums, so a replicate costs one matrix product.

The winner is the model whose ΔR² interval excludes 0 in its favour; otherwise "neither".
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from models.emulator import A_MIN, TARGET_COLUMNS
from models.evaluation import a_regime_labels, headline_regime

N_BOOT = 2000
SEED = 0
LEVEL = 0.95


def _site_sums(sites, obs, pred_c, pred_d) -> np.ndarray:
    """Per site: n, Σo, Σo², Σ(o − p_c)², Σ(o − p_d)² (sites × 5)."""
    _, idx = np.unique(sites, return_inverse=True)
    cols = (np.ones_like(obs), obs, obs**2, (obs - pred_c) ** 2, (obs - pred_d) ** 2)
    return np.column_stack([np.bincount(idx, weights=c) for c in cols])


def _r2_rmse(sums: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """R² and RMSE of both models from summed statistics (… × 5)."""
    n, so, soo, sc, sd = (sums[..., k] for k in range(5))
    with np.errstate(invalid="ignore", divide="ignore"):
        ss_tot = soo - so**2 / n
        return 1 - sc / ss_tot, 1 - sd / ss_tot, np.sqrt(sc / n), np.sqrt(sd / n)


def compare(sites, obs, pred_c, pred_d, *, n_boot: int = N_BOOT, seed: int = SEED) -> dict:
    """ΔR² and ΔRMSE (constrained − direct) with percentile-bootstrap intervals over sites."""
    obs, pred_c, pred_d = (np.asarray(x, dtype=float) for x in (obs, pred_c, pred_d))
    sites = np.asarray(sites)
    ok = np.isfinite(obs) & np.isfinite(pred_c) & np.isfinite(pred_d)
    sums = _site_sums(sites[ok], obs[ok], pred_c[ok], pred_d[ok])
    n_sites = len(sums)
    r2c, r2d, rmc, rmd = _r2_rmse(sums.sum(axis=0))
    out = {
        "n": int(ok.sum()),
        "n_sites": n_sites,
        "r2_constrained": float(r2c),
        "r2_direct": float(r2d),
        "delta_r2": float(r2c - r2d),
        "rmse_constrained": float(rmc),
        "rmse_direct": float(rmd),
        "delta_rmse": float(rmc - rmd),
        "n_boot": n_boot,
    }
    if n_sites < 2:
        out.update(delta_r2_lo=np.nan, delta_r2_hi=np.nan, delta_rmse_lo=np.nan, delta_rmse_hi=np.nan)
        out["winner"] = "neither (fewer than 2 sites)"
        return out
    counts = np.random.default_rng(seed).multinomial(n_sites, np.full(n_sites, 1 / n_sites), size=n_boot)
    b_r2c, b_r2d, b_rmc, b_rmd = _r2_rmse(counts.astype(float) @ sums)
    tail = 100 * (1 - LEVEL) / 2
    for name, values in (("delta_r2", b_r2c - b_r2d), ("delta_rmse", b_rmc - b_rmd)):
        lo, hi = np.nanpercentile(values, [tail, 100 - tail])
        out[f"{name}_lo"], out[f"{name}_hi"] = float(lo), float(hi)
    if out["delta_r2_lo"] > 0:
        out["winner"] = "constrained"
    elif out["delta_r2_hi"] < 0:
        out["winner"] = "direct"
    else:
        out["winner"] = "neither (interval includes 0)"
    return out


def verdicts(
    oof: pd.DataFrame,
    table: pd.DataFrame,
    *,
    targets: str = "corrected",
    a_threshold: float = A_MIN,
    n_boot: int = N_BOOT,
    seed: int = SEED,
) -> pd.DataFrame:
    """One verdict per split, A source and variable (``le``, ``h``) on ``targets``, over the rows
    with observed A ≥ ``a_threshold`` (W m-2): the columns of :func:`compare` and ``a_regime``."""
    table = table.reset_index(drop=True)
    regime = headline_regime(a_threshold)
    oof = oof[a_regime_labels(oof["a_obs"], a_threshold) == regime]
    rows = []
    for (split, source), grp in oof.groupby(["split", "a_source"], sort=False):
        c = grp[grp["model"] == "constrained"].set_index("row").sort_index()
        d = grp[grp["model"] == "direct"].set_index("row").sort_index()
        d = d.loc[c.index]
        for var, col in zip(("le", "h"), TARGET_COLUMNS[targets], strict=True):
            obs = table[col].to_numpy(dtype=float)[c.index.to_numpy()]
            result = compare(c["site_id"].to_numpy(), obs, c[var], d[var], n_boot=n_boot, seed=seed)
            rows.append(
                {
                    "split": split,
                    "a_source": source,
                    "a_regime": regime,
                    "targets": targets,
                    "variable": var,
                    **result,
                }  # fmt: skip
            )
    return pd.DataFrame(rows)


def verdict_text(row: dict) -> str:
    """One line: who wins, ΔR² and ΔRMSE with their 95 % site-bootstrap intervals."""
    return (
        f"{row['winner']}: ΔR² (constrained − direct) {row['delta_r2']:+.3f} "
        f"[{row['delta_r2_lo']:+.3f}, {row['delta_r2_hi']:+.3f}], ΔRMSE {row['delta_rmse']:+.2f} "
        f"[{row['delta_rmse_lo']:+.2f}, {row['delta_rmse_hi']:+.2f}] W m-2 "
        f"({row['n_sites']} sites, {row['n_boot']} bootstrap draws)"
    )
