"""Triple collocation recovers the known error variances of synthetic triplets."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from catalog.errors import InputError
from validation import triple_collocation as tc

# x = α + β t + ε with σ_t = 0.06 (m3 m-3), three products of different scale and noise
SIGMA_T = 0.06
ALPHA, BETA, ERR_SD = (0.05, 0.0, 0.1), (1.0, 0.7, 1.4), (0.02, 0.03, 0.04)


def _triplets(rng, n, reps=None):
    shape = (n,) if reps is None else (reps, n)
    t = rng.normal(0.25, SIGMA_T, shape)
    return [a + b * t + rng.normal(0, s, shape) for a, b, s in zip(ALPHA, BETA, ERR_SD, strict=True)]


def _truth():
    err = np.square(ERR_SD)
    signal = np.square(BETA) * SIGMA_T**2
    return {
        "err_var": err,
        "snr_db": 10 * np.log10(signal / err),
        "rho2": signal / (signal + err),
        "err_var_scaled": err * (BETA[0] / np.asarray(BETA)) ** 2,
    }


def test_error_variances_recovered_within_sampling_error():
    """500 independent triplet sets of n = 1000 (one 'map' of 500 locations): the mean estimate is
    within 4 standard errors of the truth, and each set's error variance within 5 sampling SDs."""
    rng = np.random.default_rng(42)
    x, y, z = (xr.DataArray(a, dims=("location", "time")) for a in _triplets(rng, 1000, reps=500))
    out = tc.triple_collocation_map(x, y, z)
    assert (out["n"] == 1000).all()
    for quantity, truth in _truth().items():
        for name, want in zip("xyz", truth, strict=True):
            got = out[f"{quantity}_{name}"].values
            se = got.std(ddof=1) / np.sqrt(got.size)
            assert abs(got.mean() - want) < 4 * se + 1e-3 * abs(want), (quantity, name)
            if quantity == "err_var":
                assert np.all(np.abs(got - want) < 5 * got.std(ddof=1)), name
                assert got.std(ddof=1) < 0.25 * want  # n = 1000 pins each estimate to within ~25 %


def test_one_site_equals_the_map_and_hand_formula():
    rng = np.random.default_rng(1)
    x, y, z = _triplets(rng, 3000)
    x[::13] = np.nan
    z[5::17] = np.nan
    got = tc.triple_collocation(x, y, z, names=("insitu", "sat", "model"))
    keep = np.isfinite(x) & np.isfinite(z)
    q = np.cov(np.vstack([x[keep], y[keep], z[keep]]))
    assert got["n"] == int(keep.sum())
    assert got["err_var_insitu"] == pytest.approx(q[0, 0] - q[0, 1] * q[0, 2] / q[1, 2], rel=1e-12)
    assert got["rho2_sat"] == pytest.approx(q[0, 1] * q[1, 2] / (q[0, 2] * q[1, 1]), rel=1e-12)
    signal_model = q[0, 2] * q[1, 2] / q[0, 1]
    err_model = q[2, 2] - signal_model
    assert got["snr_db_model"] == pytest.approx(10 * np.log10(signal_model / err_model), rel=1e-12)
    assert got["err_var_scaled_model"] == pytest.approx(err_model * (q[0, 1] / q[1, 2]) ** 2, rel=1e-12)
    m = tc.triple_collocation_map(*(xr.DataArray(a[None, :], dims=("location", "time")) for a in (x, y, z)))
    for key in ("err_var_x", "snr_db_y", "rho2_z", "err_var_scaled_y"):
        quantity, name = key.rsplit("_", 1)
        other = {"x": "insitu", "y": "sat", "z": "model"}[name]
        assert float(m[key][0]) == pytest.approx(got[f"{quantity}_{other}"], rel=1e-10)


def test_too_few_triplets_and_failed_assumptions():
    rng = np.random.default_rng(2)
    x, y, z = _triplets(rng, 50)
    assert np.isnan(tc.triple_collocation(x, y, z)["err_var_x"])  # n = 50 < 100
    assert tc.triple_collocation(x, y, z, min_n=20)["n"] == 50
    # Q_xy > 0, Q_xz > 0, Q_yz < 0: no truth fits the error model, no estimate
    t = rng.normal(0, SIGMA_T, 2000)
    a, b = t + rng.normal(0, 0.2, t.size), t + rng.normal(0, 0.01, t.size)
    out = tc.triple_collocation(a, b, a - 5 * b)
    assert np.isnan(out["err_var_x"]) and np.isnan(out["snr_db_z"])
    with pytest.raises(InputError, match="not one size"):
        tc.triple_collocation(x, y, z[:10])
    a = xr.DataArray(np.ones((2, 5)), dims=("location", "time"), coords={"location": [1, 2]})
    b = a.assign_coords(location=[1, 3])
    with pytest.raises(InputError, match="not on one grid"):
        tc.triple_collocation_map(a, b, a)
