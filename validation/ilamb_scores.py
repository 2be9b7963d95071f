"""ILAMB scores of a product against a reference (Collier et al. 2018, JAMES 10:2731).

Inputs are ``xarray.DataArray``s on ``time`` and any spatial dimensions (``site``, or ``lat``/``lon``);
the product is compared only where the reference is valid (the product is masked like it). Per
location x, with v̄ the period mean and crms(v) = sqrt(mean((v − v̄)²)) the reference's centred RMS:

- bias:   ε = |v̄_mod − v̄_ref| / crms_ref,                         s_bias = exp(−ε)
- RMSE:   ε = crmse / crms_ref, crmse = sqrt(mean(((v_mod − v̄_mod) − (v_ref − v̄_ref))²)),
          s_rmse = exp(−ε)
- phase:  Δ = shift of the month of maximum of the mean annual cycle (months, shortest way round),
          s_phase = ½ (1 + cos(2π Δ / 12))
- IAV:    iav = sqrt(mean((v − c)²)) with c the mean annual cycle (calendar-month means),
          ε = |iav_mod − iav_ref| / iav_ref,                        s_iav = exp(−ε)

Each is integrated over space as a (weighted) mean, S = Σ w s / Σ w (sites: equal weights; grids:
cos-latitude area weights). The spatial distribution score compares the period-mean fields:
S_dist = 2 (1 + R) / (σ + 1/σ)², σ = σ_mod / σ_ref, R their spatial correlation (Taylor 2001,
JGR 106:7183). Overall: S = (S_bias + 2 S_rmse + S_phase + S_iav + S_dist) / 6 (RMSE counted twice).
All scores lie in [0, 1], 1 for a perfect product.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from catalog.errors import InputError

SCORES = ("bias", "rmse", "phase", "iav", "dist")
WEIGHTS = {"bias": 1.0, "rmse": 2.0, "phase": 1.0, "iav": 1.0, "dist": 1.0}


def _masked(mod: xr.DataArray, ref: xr.DataArray, dim: str) -> tuple[xr.DataArray, xr.DataArray]:
    if dim not in ref.dims:
        raise InputError(f"ILAMB scores: the reference has no dimension {dim!r} (has {ref.dims})")
    try:
        mod, ref = xr.align(mod, ref, join="exact")
    except ValueError as err:
        raise InputError(
            f"ILAMB scores: product and reference are not on one grid and time axis ({err})"
        ) from err
    both = mod.notnull() & ref.notnull()
    return mod.where(both), ref.where(both)


def _crms(v: xr.DataArray, dim: str) -> xr.DataArray:
    return np.sqrt(((v - v.mean(dim)) ** 2).mean(dim))


def bias_score(mod: xr.DataArray, ref: xr.DataArray, dim: str = "time") -> xr.DataArray:
    """s_bias = exp(−|v̄_mod − v̄_ref| / crms_ref) per location (NaN where crms_ref = 0)."""
    mod, ref = _masked(mod, ref, dim)
    crms = _crms(ref, dim)
    return np.exp(-np.abs(mod.mean(dim) - ref.mean(dim)) / crms.where(crms > 0))


def rmse_score(mod: xr.DataArray, ref: xr.DataArray, dim: str = "time") -> xr.DataArray:
    """s_rmse = exp(−crmse / crms_ref) per location, crmse the centred RMS difference."""
    mod, ref = _masked(mod, ref, dim)
    crms = _crms(ref, dim)
    crmse = np.sqrt((((mod - mod.mean(dim)) - (ref - ref.mean(dim))) ** 2).mean(dim))
    return np.exp(-crmse / crms.where(crms > 0))


def annual_cycle(v: xr.DataArray, dim: str = "time") -> xr.DataArray:
    """Mean annual cycle: the mean of each calendar month over the years (dim ``month``, 1–12)."""
    return v.groupby(f"{dim}.month").mean(dim)


def phase_score(mod: xr.DataArray, ref: xr.DataArray, dim: str = "time") -> xr.DataArray:
    """s_phase = ½ (1 + cos(2π Δ / 12)), Δ the months between the maxima of the two annual cycles."""
    mod, ref = _masked(mod, ref, dim)
    cm, cr = annual_cycle(mod, dim), annual_cycle(ref, dim)
    complete = cm.notnull().all("month") & cr.notnull().all("month")
    months = cm["month"]
    peak_mod = months[cm.fillna(-np.inf).argmax("month")]
    peak_ref = months[cr.fillna(-np.inf).argmax("month")]
    shift = (peak_mod - peak_ref).drop_vars("month", errors="ignore")
    return (0.5 * (1 + np.cos(2 * np.pi * shift / 12))).where(complete)


def interannual_variability(v: xr.DataArray, dim: str = "time") -> xr.DataArray:
    """iav = sqrt(mean((v − c)²)): the RMS of the departures from the mean annual cycle c."""
    cycle = annual_cycle(v, dim)
    departures = v.groupby(f"{dim}.month") - cycle
    return np.sqrt((departures**2).mean(dim))


def iav_score(mod: xr.DataArray, ref: xr.DataArray, dim: str = "time") -> xr.DataArray:
    """s_iav = exp(−|iav_mod − iav_ref| / iav_ref) per location."""
    mod, ref = _masked(mod, ref, dim)
    iav_mod, iav_ref = interannual_variability(mod, dim), interannual_variability(ref, dim)
    return np.exp(-np.abs(iav_mod - iav_ref) / iav_ref.where(iav_ref > 0))


def spatial_mean(score: xr.DataArray, weights: xr.DataArray | None = None) -> float:
    """S = Σ w s / Σ w over the locations where s is valid (equal weights without ``weights``)."""
    if weights is None:
        return float(score.mean(skipna=True))
    w = weights.where(score.notnull(), 0.0)
    total = float(w.sum())
    return float((score.fillna(0.0) * w).sum() / total) if total > 0 else np.nan


def spatial_distribution_score(
    mod_mean: xr.DataArray, ref_mean: xr.DataArray, weights: xr.DataArray | None = None
) -> float:
    """S_dist = 2 (1 + R) / (σ + 1/σ)² of two period-mean fields (weighted σ and R over locations)."""
    mod_mean, ref_mean = xr.align(mod_mean, ref_mean, join="exact")
    both = mod_mean.notnull() & ref_mean.notnull()
    w = (xr.ones_like(ref_mean) if weights is None else weights.broadcast_like(ref_mean)).where(both, 0.0)
    if int(both.sum()) < 2 or float(w.sum()) <= 0:
        return np.nan
    w = w / w.sum()
    m, r = mod_mean.fillna(0.0), ref_mean.fillna(0.0)
    dm, dr = m - float((w * m).sum()), r - float((w * r).sum())
    sm, sr = float(np.sqrt((w * dm**2).sum())), float(np.sqrt((w * dr**2).sum()))
    if sm == 0 or sr == 0:
        return np.nan
    corr = float((w * dm * dr).sum()) / (sm * sr)
    sigma = sm / sr
    return 2 * (1 + corr) / (sigma + 1 / sigma) ** 2


def overall_score(scores: dict[str, float]) -> float:
    """S_overall = Σ W_i S_i / Σ W_i with W = 1 except RMSE (2), over the scores that are defined."""
    have = {k: v for k, v in scores.items() if k in WEIGHTS and np.isfinite(v)}
    if not have:
        return np.nan
    return sum(WEIGHTS[k] * v for k, v in have.items()) / sum(WEIGHTS[k] for k in have)


def scores(
    mod: xr.DataArray, ref: xr.DataArray, *, dim: str = "time", weights: xr.DataArray | None = None
) -> dict[str, float]:
    """Every ILAMB score of a product against a reference and the overall score, keyed :data:`SCORES`
    and ``overall``. ``weights``: per-location area weights (e.g. cos latitude), equal by default."""
    masked_mod, masked_ref = _masked(mod, ref, dim)
    out = {
        "bias": spatial_mean(bias_score(mod, ref, dim), weights),
        "rmse": spatial_mean(rmse_score(mod, ref, dim), weights),
        "phase": spatial_mean(phase_score(mod, ref, dim), weights),
        "iav": spatial_mean(iav_score(mod, ref, dim), weights),
        "dist": spatial_distribution_score(masked_mod.mean(dim), masked_ref.mean(dim), weights),
    }
    out["overall"] = overall_score(out)
    return out
