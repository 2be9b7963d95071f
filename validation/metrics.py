"""Validation metrics for a prediction ``p`` against an observation ``o`` (pytesmo / ILAMB conventions).

Every function takes ``(obs, pred)`` as array-likes of the same shape, drops the pairs where either
value is NaN (the same pairs for every metric), and returns NaN when fewer than ``min_n`` pairs remain
(default :data:`MIN_PAIRS`) or when the metric is undefined (e.g. a constant series for R).
Standard deviations are population ones (ddof = 0), so that the Taylor-diagram identity
E'^2 = sigma_p^2 + sigma_o^2 - 2 sigma_p sigma_o R holds exactly.

References
----------
- Gruber et al. (2020), Validation practices for satellite soil moisture retrievals, RSE 244:111806
  (pytesmo / QA4SM metric set: bias, RMSE, ubRMSE, R with confidence interval, rho).
- Collier et al. (2018), The International Land Model Benchmarking (ILAMB) system, JAMES 10:2731.
- Gupta et al. (2009), Decomposition of the mean squared error and NSE performance criteria,
  J. Hydrol. 377:80-91 (KGE).
- Nash & Sutcliffe (1970), River flow forecasting through conceptual models, J. Hydrol. 10:282-290.
- Taylor (2001), Summarizing multiple aspects of model performance in a single diagram,
  JGR 106(D7):7183-7192.
- Fisher (1921), On the probable error of a coefficient of correlation (z transform).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy import stats

from catalog.errors import InputError

MIN_PAIRS = 10
"""Fewest valid (obs, pred) pairs for which a metric is reported; below it the metric is NaN."""


class PearsonResult(NamedTuple):
    """Pearson correlation with its two-sided p-value and Fisher-z confidence interval."""

    r: float
    p_value: float
    ci_low: float
    ci_high: float
    n: int


class TaylorStats(NamedTuple):
    """Taylor (2001) diagram coordinates, normalised by the observation's standard deviation."""

    sigma_norm: float  # sigma_p / sigma_o
    r: float  # Pearson correlation
    crmsd_norm: float  # centred RMS difference E' / sigma_o
    sigma_obs: float  # sigma_o in the variable's units (for un-normalised diagrams)


def valid_pairs(obs, pred) -> tuple[np.ndarray, np.ndarray]:
    """The (obs, pred) pairs where both are finite, as flat float64 arrays.

    Raises ``InputError`` when the two inputs do not have the same shape.
    """
    o = np.asarray(obs, dtype="float64")
    p = np.asarray(pred, dtype="float64")
    if o.shape != p.shape:
        raise InputError(f"metrics: observation shape {o.shape} differs from prediction shape {p.shape}")
    keep = np.isfinite(o) & np.isfinite(p)
    return o[keep].ravel(), p[keep].ravel()


def _pairs(obs, pred, min_n: int) -> tuple[np.ndarray, np.ndarray] | None:
    o, p = valid_pairs(obs, pred)
    if o.size < max(int(min_n), 1):
        return None
    return o, p


def n_pairs(obs, pred) -> int:
    """n: the number of pairs where both observation and prediction are valid."""
    return int(valid_pairs(obs, pred)[0].size)


def bias(obs, pred, *, min_n: int = MIN_PAIRS) -> float:
    """Bias = mean(p - o) (positive: prediction too high). Gruber et al. 2020, eq. 1."""
    pairs = _pairs(obs, pred, min_n)
    if pairs is None:
        return np.nan
    o, p = pairs
    return float(np.mean(p - o))


def rmse(obs, pred, *, min_n: int = MIN_PAIRS) -> float:
    """RMSE = sqrt(mean((p - o)^2)). Gruber et al. 2020."""
    pairs = _pairs(obs, pred, min_n)
    if pairs is None:
        return np.nan
    o, p = pairs
    return float(np.sqrt(np.mean((p - o) ** 2)))


def ubrmse(obs, pred, *, min_n: int = MIN_PAIRS) -> float:
    """Unbiased RMSE = sqrt(RMSE^2 - bias^2), i.e. the population std of (p - o).

    Entekhabi et al. (2010), JHM 11:832; Gruber et al. 2020.
    """
    pairs = _pairs(obs, pred, min_n)
    if pairs is None:
        return np.nan
    o, p = pairs
    d = p - o
    return float(np.sqrt(max(np.mean(d**2) - np.mean(d) ** 2, 0.0)))


def mae(obs, pred, *, min_n: int = MIN_PAIRS) -> float:
    """Mean absolute error = mean(|p - o|)."""
    pairs = _pairs(obs, pred, min_n)
    if pairs is None:
        return np.nan
    o, p = pairs
    return float(np.mean(np.abs(p - o)))


def _constant(x: np.ndarray) -> bool:
    return bool(np.ptp(x) == 0.0)


def _r(o: np.ndarray, p: np.ndarray) -> float:
    if _constant(o) or _constant(p):
        return np.nan
    do, dp = o - o.mean(), p - p.mean()
    denom = np.sqrt(np.sum(do**2) * np.sum(dp**2))
    return float(np.clip(np.sum(do * dp) / denom, -1.0, 1.0))


def pearson_r(obs, pred, *, min_n: int = MIN_PAIRS) -> float:
    """Pearson R = cov(o, p) / (sigma_o sigma_p); NaN when either series is constant."""
    pairs = _pairs(obs, pred, min_n)
    if pairs is None:
        return np.nan
    return _r(*pairs)


def pearson(obs, pred, *, alpha: float = 0.05, min_n: int = MIN_PAIRS) -> PearsonResult:
    """Pearson R with two-sided p-value and (1 - alpha) Fisher-z confidence interval.

    p-value: t = R sqrt((n - 2) / (1 - R^2)) with n - 2 degrees of freedom.
    CI: z = artanh(R), z +/- z_(1-alpha/2) / sqrt(n - 3), transformed back with tanh
    (Fisher 1921; as in pytesmo ``pearson_conf``). Needs n >= 4 for the interval.
    """
    o, p = valid_pairs(obs, pred)
    n = int(o.size)
    if n < max(int(min_n), 3):
        return PearsonResult(np.nan, np.nan, np.nan, np.nan, n)
    r = _r(o, p)
    if not np.isfinite(r):
        return PearsonResult(np.nan, np.nan, np.nan, np.nan, n)
    if abs(r) == 1.0:
        p_value = 0.0
    else:
        t = r * np.sqrt((n - 2) / (1.0 - r**2))
        p_value = float(2.0 * stats.t.sf(abs(t), n - 2))
    if n > 3:
        z = np.arctanh(np.clip(r, -1 + 1e-15, 1 - 1e-15))
        half = stats.norm.ppf(1.0 - alpha / 2.0) / np.sqrt(n - 3)
        lo, hi = float(np.tanh(z - half)), float(np.tanh(z + half))
    else:
        lo = hi = np.nan
    return PearsonResult(r, p_value, lo, hi, n)


def spearman_rho(obs, pred, *, min_n: int = MIN_PAIRS) -> float:
    """Spearman rho = Pearson R of the ranks (ties get their average rank). Spearman (1904)."""
    pairs = _pairs(obs, pred, min_n)
    if pairs is None:
        return np.nan
    o, p = pairs
    return _r(stats.rankdata(o), stats.rankdata(p))


def kge(obs, pred, *, min_n: int = MIN_PAIRS) -> float:
    """Kling-Gupta efficiency KGE = 1 - sqrt((R - 1)^2 + (alpha - 1)^2 + (beta - 1)^2).

    alpha = sigma_p / sigma_o, beta = mu_p / mu_o (Gupta et al. 2009, eq. 9). 1 is perfect;
    NaN when R is undefined or mu_o = 0.
    """
    pairs = _pairs(obs, pred, min_n)
    if pairs is None:
        return np.nan
    o, p = pairs
    r = _r(o, p)
    so, mo = o.std(), o.mean()
    if not np.isfinite(r) or mo == 0.0:
        return np.nan
    a = p.std() / so
    b = p.mean() / mo
    return float(1.0 - np.sqrt((r - 1.0) ** 2 + (a - 1.0) ** 2 + (b - 1.0) ** 2))


def nse(obs, pred, *, min_n: int = MIN_PAIRS) -> float:
    """Nash-Sutcliffe efficiency NSE = 1 - sum((p - o)^2) / sum((o - mean(o))^2).

    Nash & Sutcliffe (1970). 1 is perfect, 0 is no better than the observed mean.
    """
    pairs = _pairs(obs, pred, min_n)
    if pairs is None:
        return np.nan
    o, p = pairs
    if _constant(o):
        return np.nan
    ss_tot = np.sum((o - o.mean()) ** 2)
    return float(1.0 - np.sum((p - o) ** 2) / ss_tot)


def r2(obs, pred, *, min_n: int = MIN_PAIRS) -> float:
    """Coefficient of determination R^2 = 1 - SS_res / SS_tot of the prediction (not of a refit).

    SS_res = sum((o - p)^2), SS_tot = sum((o - mean(o))^2); numerically the same as NSE and as
    scikit-learn's ``r2_score(o, p)``. Can be negative; it equals Pearson R^2 only for an
    unbiased least-squares fit.
    """
    return nse(obs, pred, min_n=min_n)


def taylor_stats(obs, pred, *, min_n: int = MIN_PAIRS) -> TaylorStats:
    """Taylor (2001) statistics: sigma_p / sigma_o, R, and E' / sigma_o.

    E' = sqrt(mean(((p - mean p) - (o - mean o))^2)) is the centred RMS difference, with
    E'^2 = sigma_p^2 + sigma_o^2 - 2 sigma_p sigma_o R (Taylor 2001, eq. 2).
    """
    pairs = _pairs(obs, pred, min_n)
    nan = TaylorStats(np.nan, np.nan, np.nan, np.nan)
    if pairs is None:
        return nan
    o, p = pairs
    if _constant(o):
        return nan
    so = float(o.std())
    crmsd = float(np.sqrt(np.mean(((p - p.mean()) - (o - o.mean())) ** 2)))
    return TaylorStats(float(p.std()) / so, _r(o, p), crmsd / so, so)


METRIC_NAMES = (
    "n",
    "bias",
    "rmse",
    "ubrmse",
    "mae",
    "r",
    "r_p_value",
    "r_ci_low",
    "r_ci_high",
    "rho",
    "kge",
    "nse",
    "sigma_norm",
    "crmsd_norm",
)
"""Columns of :func:`all_metrics`, in table order: each statistic once (no ``r2``, which is NSE)."""


def all_metrics(obs, pred, *, min_n: int = MIN_PAIRS, alpha: float = 0.05) -> dict[str, float]:
    """Every metric above for one (obs, pred) pair of series, keyed by :data:`METRIC_NAMES`.

    The coefficient of determination of the prediction (:func:`r2`) is left out: it is the same
    number as NSE = 1 - SS_res / SS_tot; the squared Pearson correlation is ``r ** 2``.
    """
    o, p = valid_pairs(obs, pred)
    pr = pearson(o, p, alpha=alpha, min_n=min_n)
    ts = taylor_stats(o, p, min_n=min_n)
    return {
        "n": int(o.size),
        "bias": bias(o, p, min_n=min_n),
        "rmse": rmse(o, p, min_n=min_n),
        "ubrmse": ubrmse(o, p, min_n=min_n),
        "mae": mae(o, p, min_n=min_n),
        "r": pr.r,
        "r_p_value": pr.p_value,
        "r_ci_low": pr.ci_low,
        "r_ci_high": pr.ci_high,
        "rho": spearman_rho(o, p, min_n=min_n),
        "kge": kge(o, p, min_n=min_n),
        "nse": nse(o, p, min_n=min_n),
        "sigma_norm": ts.sigma_norm,
        "crmsd_norm": ts.crmsd_norm,
    }


def ols_fit(x, y, *, min_n: int = MIN_PAIRS) -> tuple[float, float]:
    """Ordinary least squares y = slope x + intercept on the valid pairs; (NaN, NaN) if too few."""
    pairs = _pairs(x, y, min_n)
    if pairs is None:
        return np.nan, np.nan
    xv, yv = pairs
    if _constant(xv):
        return np.nan, np.nan
    dx = xv - xv.mean()
    sxx = np.sum(dx**2)
    slope = float(np.sum(dx * (yv - yv.mean())) / sxx)
    return slope, float(yv.mean() - slope * xv.mean())


def slope_through_origin(x, y, *, min_n: int = MIN_PAIRS) -> float:
    """Least-squares slope of y = b x through the origin: b = sum(x y) / sum(x^2)."""
    pairs = _pairs(x, y, min_n)
    if pairs is None:
        return np.nan
    xv, yv = pairs
    sxx = np.sum(xv**2)
    if sxx == 0.0:
        return np.nan
    return float(np.sum(xv * yv) / sxx)


__all__ = [
    "MIN_PAIRS",
    "METRIC_NAMES",
    "PearsonResult",
    "TaylorStats",
    "all_metrics",
    "bias",
    "kge",
    "mae",
    "n_pairs",
    "nse",
    "ols_fit",
    "pearson",
    "pearson_r",
    "r2",
    "rmse",
    "slope_through_origin",
    "spearman_rho",
    "taylor_stats",
    "ubrmse",
    "valid_pairs",
]
