"""Prediction intervals of LE and H that keep the closure: split-conformal on cluster-CV residuals.

Choice. Conformal intervals from the out-of-fold residuals of the grouped (leave-cluster-out) split,
not quantile LightGBM on EF: a quantile booster learns the spread of its *training* residuals, which
is narrower than its error at towers it never saw, so its 90 % band under-covers held-out sites; the
cluster-split residuals are errors at towers farther than D km from every training tower, as a map
pixel is. The quantiles are the split-conformal ones (Lei et al. 2018, JASA 113:1094; Vovk et al.
2005), with the out-of-fold residuals of grouped CV as calibration set, as in CV+ (Barber et al.
2021, Ann. Stat. 49:486), two-sided and asymmetric with α/2 per side (Romano et al. 2019, NeurIPS,
"conformalized quantile regression", Thm. 2): q_lo = the ⌊(n + 1) α/2⌋-th and q_hi = the
⌈(n + 1)(1 − α/2)⌉-th smallest of n signed scores. Coverage is marginal, assuming sites exchangeable;
it is measured, not assumed: :func:`cv_coverage` calibrates on the other folds only.

Scores (constrained model), on the A the chain closes on (observed, or the A model as in a map).
Observed LE + H is not exactly A, so each row gives two scores, its LE error and its H error read
as an LE error, and the calibration set pools both (2n scores): the bounds then cover LE and H of a
held-out row with 1 − α on average over the two fluxes, while each bound still closes.

- A ≥ a_min (EF branch): s_LE = LE_obs / A − EF_pred (the LE error as a fraction of A) and
  s_H = 1 − H_obs / A − EF_pred. Bounds EF_lo = EF + q_lo, EF_hi = EF + q_hi; LE_lo = EF_lo·A,
  LE_hi = EF_hi·A; H_lo = A − LE_hi, H_hi = A − LE_lo. So LE_lo + H_hi = LE_hi + H_lo = A: each
  bound closes (not clipped to [0, 1]: LE < 0 with dew and H < 0 under advection are observed).
- A < a_min (LE from the direct model): s_LE = LE_obs − LE_pred and s_H = A − H_obs − LE_pred
  (W m-2), pooled as above; LE_lo,hi = LE + q_lo,hi and H bounds = A − LE bounds.

Measured on the real FLUXNET2015 monthly set (bench/bench_skill.py): taking the lower quantile from
the smaller of the two scores and the upper from the larger instead (each flux ≥ 1 − α) over-covered,
LE 0.929 and H 0.917 for a 90 % interval on the cluster split. Quantiles of each IGBP class's own
scores (Mondrian conformal prediction, Vovk et al. 2005 §4.5), for classes with ≥ 5 towers and ≥ 50
rows, were tried and not adopted: with the few towers a class keeps in the other folds, cluster-split
coverage fell to LE 0.880 / H 0.871, and within classes it did not improve (grasslands 0.875 → 0.840,
wetlands 0.793 → 0.762).

Direct model: s = LE_obs − LE_pred and H_obs − H_pred, bounds LE + q and H + q (no closure to keep).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from models.emulator import A_MIN, TARGET_COLUMNS
from models.evaluation import A_MODEL, A_OBSERVED, a_regime_labels

LEVEL = 0.90
CALIBRATION_SPLITS = ("cluster", "spatial", "temporal", "random")  # the first one trained calibrates
METHOD = (
    "split-conformal quantiles (Lei et al. 2018; asymmetric, alpha/2 per side, Romano et al. 2019) of "
    "out-of-fold residuals of grouped CV (as CV+, Barber et al. 2021): constrained model s = LE_obs/A - "
    "EF_pred and 1 - H_obs/A - EF_pred where A >= a_min, pooled (both fluxes of every row), LE errors in "
    "W m-2 where A < a_min; LE and H bounds from the same EF bounds and A, so LE_lo + H_hi = A"
)


def bound_names(level: float = LEVEL) -> tuple[str, str]:
    """Suffixes of the lower and upper bounds, e.g. ``q05`` and ``q95`` for a 90 % interval."""
    lo = round(100 * (1 - level) / 2)
    return f"q{lo:02d}", f"q{100 - lo:02d}"


def conformal_quantiles(scores, level: float = LEVEL) -> dict:
    """``{"q_lo", "q_hi", "n"}``: the ⌊(n+1)α/2⌋-th and the ⌈(n+1)(1−α/2)⌉-th smallest of the n finite
    ``scores`` (None, an unbounded side, where n is too small for that rank)."""
    scores = np.asarray(scores, dtype=float).ravel()
    lower = upper = np.sort(scores[np.isfinite(scores)])
    n = lower.size
    alpha = 1 - level
    k_lo = math.floor((n + 1) * alpha / 2 + 1e-9)  # slack against rounding of 1 - level
    k_hi = math.ceil((n + 1) * (1 - alpha / 2) - 1e-9)
    return {
        "q_lo": float(lower[k_lo - 1]) if k_lo >= 1 else None,
        "q_hi": float(upper[k_hi - 1]) if k_hi <= n else None,
        "n": int(n),
    }


def branch_scores(le_obs, h_obs, pred: pd.DataFrame, *, model: str, a_min: float = A_MIN) -> dict:
    """Branch → (row mask, scores: rows × k) of out-of-fold predictions ``pred`` (columns le, h, ef, a).
    Constrained (k = 2): the LE error and the H error seen as an LE error (A − H_obs − LE), on the EF
    scale where A ≥ a_min, pooled when calibrating; direct (k = 1 per flux)."""
    le_obs, h_obs = np.asarray(le_obs, dtype=float), np.asarray(h_obs, dtype=float)
    le, h, ef, a = (pred[c].to_numpy(dtype=float) for c in ("le", "h", "ef", "a"))
    if model == "direct":
        every = np.ones(le.size, dtype=bool)
        return {"le": (every, (le_obs - le)[:, None]), "h": (every, (h_obs - h)[:, None])}
    both = np.stack([le_obs - le, (a - h_obs) - le], axis=1)  # W m-2
    with np.errstate(invalid="ignore", divide="ignore"):
        big = a >= a_min
        ef_scores = both / a[:, None]  # = (LE_obs/A − EF, 1 − H_obs/A − EF) where A ≥ a_min
    return {"ef": (big, ef_scores), "le": (~big, both)}


def calibrate(
    oof: pd.DataFrame, table: pd.DataFrame, *, model: str, targets: str, a_min: float = A_MIN,
    level: float = LEVEL,
) -> dict:  # fmt: skip
    """A source → branch → conformal quantiles, from out-of-fold rows ``oof`` of one split."""
    le_col, h_col = TARGET_COLUMNS[targets]
    out = {}
    for source, grp in oof[oof["model"] == model].groupby("a_source", sort=False):
        rows = grp["row"].to_numpy()
        le_obs = table[le_col].to_numpy(dtype=float)[rows]
        h_obs = table[h_col].to_numpy(dtype=float)[rows]
        out[source] = {
            branch: conformal_quantiles(scores[mask], level)
            for branch, (mask, scores) in branch_scores(le_obs, h_obs, grp, model=model, a_min=a_min).items()
        }
    return out


def _sides(q: dict) -> tuple[float, float]:
    """Both quantiles; NaN (bounds unknown) where the calibration had too few scores for a rank."""
    lo, hi = q["q_lo"], q["q_hi"]
    return (math.nan if lo is None else lo), (math.nan if hi is None else hi)


def bounds(le, h, ef, a, quantiles: dict, *, model: str, a_min: float = A_MIN) -> dict[str, np.ndarray]:
    """``le_lo, le_hi, h_lo, h_hi`` (W m-2) of predictions from the quantiles of one A source.

    Constrained: EF bounds times A where A ≥ a_min, LE + q elsewhere; H bounds = A − LE bounds;
    NaN where A is missing or the branch had too few calibration scores (a row then counts as not
    covered in :func:`cv_coverage`)."""
    le, h, ef, a = (np.asarray(x, dtype=float) for x in (le, h, ef, a))
    if model == "direct":
        (le_q0, le_q1), (h_q0, h_q1) = _sides(quantiles["le"]), _sides(quantiles["h"])
        return {"le_lo": le + le_q0, "le_hi": le + le_q1, "h_lo": h + h_q0, "h_hi": h + h_q1}
    (ef_q0, ef_q1), (le_q0, le_q1) = _sides(quantiles["ef"]), _sides(quantiles["le"])
    with np.errstate(invalid="ignore"):
        big = a >= a_min
        known = np.isfinite(a)
        le_lo = np.where(big, (ef + ef_q0) * a, np.where(known, le + le_q0, np.nan))
        le_hi = np.where(big, (ef + ef_q1) * a, np.where(known, le + le_q1, np.nan))
    return {"le_lo": le_lo, "le_hi": le_hi, "h_lo": a - le_hi, "h_hi": a - le_lo}


def calibration_split(splits) -> str:
    """The split whose residuals calibrate the intervals: the first of :data:`CALIBRATION_SPLITS`."""
    for split in CALIBRATION_SPLITS:
        if split in splits:
            return split
    raise ValueError(f"no split to calibrate intervals on among {list(splits)}")


def cv_bounds(
    oof: pd.DataFrame, table: pd.DataFrame, *, model: str, targets: str, a_min: float = A_MIN,
    level: float = LEVEL,
) -> pd.DataFrame:  # fmt: skip
    """Interval bounds of every out-of-fold row of ``model``: each fold's rows bounded with quantiles
    calibrated on the other folds of the same split and A source (never on their own residuals).

    Columns: split, a_source, fold, row, site_id, time, igbp, a_obs, le, h, le_lo, le_hi, h_lo, h_hi
    (W m-2), and le_in, h_in (1 where the observation lies inside, 0 outside, NaN without one)."""
    le_col, h_col = TARGET_COLUMNS[targets]
    obs = {"le": table[le_col].to_numpy(dtype=float), "h": table[h_col].to_numpy(dtype=float)}
    part = oof[oof["model"] == model]
    keep = ["split", "a_source", "fold", "row", "site_id", "time", "igbp", "a_obs", "le", "h"]
    bounded = []
    for (_split, source), grp in part.groupby(["split", "a_source"], sort=False):
        for fold, held in grp.groupby("fold", sort=False):
            cal = calibrate(grp[grp["fold"] != fold], table, model=model, targets=targets, a_min=a_min,
                            level=level)[source]  # fmt: skip
            b = bounds(held["le"], held["h"], held["ef"], held["a"], cal, model=model, a_min=a_min)
            frame = held[keep].assign(**b)
            for var in ("le", "h"):
                o = obs[var][held["row"].to_numpy()]
                frame[f"{var}_in"] = np.where(
                    np.isfinite(o), (o >= b[f"{var}_lo"]) & (o <= b[f"{var}_hi"]), np.nan
                )
            bounded.append(frame)
    return pd.concat(bounded, ignore_index=True)


def cv_coverage(bounded: pd.DataFrame, *, a_min: float = A_MIN) -> pd.DataFrame:
    """Coverage of the intervals in CV from :func:`cv_bounds`.

    One row per split, A source, A regime (``all``, then by observed A as :func:`models.evaluation.
    score_table`), IGBP class (NaN: every class) and variable: ``n``, ``coverage`` (fraction of
    observed values inside [lo, hi]) and ``mean_width`` (W m-2)."""
    rows = bounded.copy()
    for var in ("le", "h"):
        rows[f"{var}_width"] = np.where(
            np.isfinite(rows[f"{var}_in"]), rows[f"{var}_hi"] - rows[f"{var}_lo"], np.nan
        )
    rows["a_regime"] = a_regime_labels(rows["a_obs"], a_min)
    out = []
    for keys, by_igbp in ((["split", "a_source"], False), (["split", "a_source", "igbp"], True)):
        for regime in ("all", *sorted(rows["a_regime"].unique(), reverse=True)):
            sel = rows if regime == "all" else rows[rows["a_regime"] == regime]
            for key, g in sel.groupby(keys, sort=False):
                key = dict(zip(keys, key, strict=True))
                for var in ("le", "h"):
                    inside = g[f"{var}_in"].to_numpy(dtype=float)
                    ok = np.isfinite(inside)
                    width = g[f"{var}_width"].to_numpy(dtype=float)
                    width = width[np.isfinite(width)]
                    out.append({
                        "split": key["split"], "a_source": key["a_source"], "a_regime": regime,
                        "igbp": key["igbp"] if by_igbp else np.nan, "variable": var, "n": int(ok.sum()),
                        "coverage": float(inside[ok].mean()) if ok.any() else np.nan,
                        "mean_width": float(width.mean()) if width.size else np.nan,
                    })  # fmt: skip
    return pd.DataFrame(out)


def prediction_source(quantiles: dict, radiation: str | None) -> str:
    """The A source whose quantiles bound a prediction: the radiation product's where the model was
    calibrated on it, observed A for another radiation product (its own A error is not in them), the
    A model's without one."""
    if radiation is None:
        return A_MODEL
    return radiation if radiation in quantiles else A_OBSERVED
