"""Triple collocation (TC): error variances and signal-to-noise ratios of three collocated series.

Error model: x_i = α_i + β_i t + ε_i for three series x, y, z of one truth t, with errors
uncorrelated with each other and with t. With Q the sample covariances (ddof = 1) of the three
series on their common valid time steps (covariance notation, Gruber et al. 2016, IJAEOG 45:200):

- error variance  σ²_εx = Q_xx − Q_xy Q_xz / Q_yz (and cyclically for y, z), in x's own units²;
- signal-to-noise SNR_x = Q_xy Q_xz / (Q_yz σ²_εx), reported in dB as 10 log10(SNR_x);
- squared correlation with the truth ρ²_t,x = Q_xy Q_xz / (Q_xx Q_yz) (McColl et al. 2014,
  GRL 41:6229, "extended" TC);
- error variance scaled into x's space: σ²_εy (Q_xz / Q_yz)² and σ²_εz (Q_xy / Q_yz)².

Estimates are NaN with fewer than ``min_n`` triplets or where a covariance product is not positive
(the model's assumptions fail); a negative error variance (and a ρ² above 1) is reported as found,
with NaN SNR.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from catalog.errors import InputError

MIN_TRIPLETS = 100
"""Fewest common valid time steps for which TC estimates are reported."""

QUANTITIES = ("err_var", "err_var_scaled", "snr_db", "rho2")


def _estimates(qxx, qyy, qzz, qxy, qxz, qyz) -> dict[str, tuple]:
    """The TC formulas on covariances (scalars or arrays), for x, y, z in that order."""
    with np.errstate(invalid="ignore", divide="ignore"):
        signal = (qxy * qxz / qyz, qxy * qyz / qxz, qxz * qyz / qxy)  # β_i² σ_t²
        ok = (qxy * qxz * qyz) > 0
        signal = tuple(np.where(ok, s, np.nan) for s in signal)
        err = tuple(q - s for q, s in zip((qxx, qyy, qzz), signal, strict=True))
        snr = tuple(np.where(e > 0, 10 * np.log10(s / e), np.nan) for s, e in zip(signal, err, strict=True))
        rho2 = tuple(s / q for s, q in zip(signal, (qxx, qyy, qzz), strict=True))
        scaled = (err[0], err[1] * (qxz / qyz) ** 2, err[2] * (qxy / qyz) ** 2)
    return {"err_var": err, "err_var_scaled": scaled, "snr_db": snr, "rho2": rho2}


def triple_collocation(x, y, z, *, names=("x", "y", "z"), min_n: int = MIN_TRIPLETS) -> dict[str, float]:
    """TC estimates for three series of the same shape, keyed ``<quantity>_<name>`` (quantities
    :data:`QUANTITIES`) plus ``n``, the number of common valid time steps."""
    arrays = [np.asarray(v, dtype="float64").ravel() for v in (x, y, z)]
    if len({a.size for a in arrays}) != 1:
        raise InputError(
            f"triple collocation: the series have {[a.size for a in arrays]} values, not one size"
        )
    if len(names) != 3 or len(set(names)) != 3:
        raise InputError(f"triple collocation: need three distinct names, got {names}")
    keep = np.isfinite(arrays[0]) & np.isfinite(arrays[1]) & np.isfinite(arrays[2])
    n = int(keep.sum())
    out: dict[str, float] = {"n": n}
    if n < max(int(min_n), 3):
        return out | {f"{q}_{name}": np.nan for q in QUANTITIES for name in names}
    q = np.cov(np.vstack([a[keep] for a in arrays]), ddof=1)
    est = _estimates(q[0, 0], q[1, 1], q[2, 2], q[0, 1], q[0, 2], q[1, 2])
    for quantity, values in est.items():
        out |= {f"{quantity}_{name}": float(v) for name, v in zip(names, values, strict=True)}
    return out


def triple_collocation_map(
    x: xr.DataArray,
    y: xr.DataArray,
    z: xr.DataArray,
    *,
    dim: str = "time",
    names=("x", "y", "z"),
    min_n: int = MIN_TRIPLETS,
) -> xr.Dataset:
    """:func:`triple_collocation` of every pixel (or location): three arrays on the same grid, TC
    along ``dim``; variables ``<quantity>_<name>`` and ``n`` over the remaining dimensions."""
    if dim not in x.dims:
        raise InputError(f"triple collocation: no dimension {dim!r} in {x.dims}")
    try:
        x, y, z = xr.align(x, y, z, join="exact")
    except ValueError as err:
        raise InputError(f"triple collocation: the three products are not on one grid ({err})") from err
    keep = x.notnull() & y.notnull() & z.notnull()
    xs, ys, zs = (a.where(keep) for a in (x, y, z))
    n = keep.sum(dim)
    anomalies = [a - a.mean(dim) for a in (xs, ys, zs)]

    def cov(a, b):
        return (a * b).sum(dim) / (n - 1)

    ax, ay, az = anomalies
    template = n
    covs = [cov(a, b).values for a, b in ((ax, ax), (ay, ay), (az, az), (ax, ay), (ax, az), (ay, az))]
    est = _estimates(*covs)
    enough = n.values >= max(int(min_n), 3)
    out = xr.Dataset({"n": n})
    for quantity, values in est.items():
        for name, v in zip(names, values, strict=True):
            out[f"{quantity}_{name}"] = template.copy(data=np.where(enough, v, np.nan))
    return out
