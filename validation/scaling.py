"""Scaling of a product to a reference before metrics (the scaling options of pytesmo and QA4SM).

Each function takes ``(src, ref)`` of the same shape, estimates its parameters on the pairs where
both are finite and returns ``src`` rescaled into the reference's space (NaN where ``src`` is NaN).
Metrics computed after scaling say so: ``scaling`` is stated in every result row that uses it.

References
----------
- Draper et al. (2009), An evaluation of AMSR-E derived soil moisture over Australia, RSE 113:703
  (mean–standard deviation matching).
- Reichle & Koster (2004), Bias reduction in short records of satellite soil moisture, GRL 31:L19501
  (CDF matching).
- Hyndman & Fan (1996), Sample quantiles in statistical packages, Am. Stat. 50:361 (definition 5,
  the Hazen plotting position (k - 0.5) / n).
"""

from __future__ import annotations

import numpy as np

from catalog.errors import InputError
from validation import metrics

METHODS = ("none", "mean_std", "linreg", "cdf_match")


def _calibration(src, ref) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x = np.asarray(src, dtype="float64")
    o, p = metrics.valid_pairs(ref, x)
    if p.size < 2:
        raise InputError(f"scaling: {p.size} valid pair(s); at least 2 are needed to scale")
    return x, p, o


def mean_std(src, ref) -> np.ndarray:
    """x* = (x − μ_x) σ_r / σ_x + μ_r (population σ on the valid pairs). Draper et al. 2009."""
    x, p, o = _calibration(src, ref)
    if np.ptp(p) == 0.0:
        raise InputError("scaling: the product is constant on the valid pairs; mean_std is undefined")
    return (x - p.mean()) * (o.std() / p.std()) + o.mean()


def linreg(src, ref) -> np.ndarray:
    """x* = a + b x, with (a, b) the least-squares fit r = a + b x of the reference on the product."""
    x, p, o = _calibration(src, ref)
    slope, intercept = metrics.ols_fit(p, o, min_n=2)
    if not np.isfinite(slope):
        raise InputError("scaling: the product is constant on the valid pairs; linreg is undefined")
    return intercept + slope * x


def cdf_match(src, ref) -> np.ndarray:
    """x* = F_r⁻¹(F_x(x)): each value goes to the reference quantile of its own non-exceedance probability.

    F_x is the empirical CDF of the product on the valid pairs at Hazen plotting positions
    (k − 0.5) / n (tied values share their mean position), linear between the sorted values and held
    at the end positions beyond them; F_r⁻¹ is the reference's Hazen quantile (Hyndman & Fan 1996,
    definition 5). With n pairs and no ties the sorted scaled values equal the sorted reference values.
    Reichle & Koster 2004.
    """
    x, p, o = _calibration(src, ref)
    values, inverse = np.unique(p, return_inverse=True)
    positions = (np.argsort(np.argsort(p, kind="stable"), kind="stable") + 0.5) / p.size
    mean_position = np.bincount(inverse, weights=positions) / np.bincount(inverse)
    finite = np.isfinite(x)
    out = np.full(x.shape, np.nan)
    out[finite] = np.quantile(o, np.interp(x[finite], values, mean_position), method="hazen")
    return out


def scale(src, ref, method: str) -> np.ndarray:
    """``src`` scaled to ``ref`` by ``method`` (one of :data:`METHODS`; ``none`` returns it unchanged)."""
    if method not in METHODS:
        raise InputError(f"scaling: unknown method {method!r}; use one of {METHODS}")
    if method == "none":
        return np.asarray(src, dtype="float64")
    return {"mean_std": mean_std, "linreg": linreg, "cdf_match": cdf_match}[method](src, ref)
