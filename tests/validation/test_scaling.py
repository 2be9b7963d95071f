"""Scaling a product to a reference: known answers for mean-std, linear regression and CDF matching."""

from __future__ import annotations

import numpy as np
import pytest

from catalog.errors import InputError
from validation import scaling


@pytest.fixture
def pair():
    rng = np.random.default_rng(3)
    truth = rng.gamma(4.0, 0.05, 2000)
    ref = truth + rng.normal(0, 0.02, truth.size)
    src = 0.5 * truth**1.5 + 0.1 + rng.normal(0, 0.01, truth.size)
    src[::50] = np.nan
    ref[7::60] = np.nan
    return src, ref


def test_mean_std_matches_the_reference_moments(pair):
    src, ref = pair
    both = np.isfinite(src) & np.isfinite(ref)
    out = scaling.mean_std(src, ref)
    assert np.isnan(out[~np.isfinite(src)]).all() and np.isfinite(out[np.isfinite(src)]).all()
    assert out[both].mean() == pytest.approx(ref[both].mean(), rel=1e-12)
    assert out[both].std() == pytest.approx(ref[both].std(), rel=1e-12)
    # a linear map of src: correlation unchanged
    assert np.corrcoef(out[both], ref[both])[0, 1] == pytest.approx(np.corrcoef(src[both], ref[both])[0, 1])


def test_linreg_is_the_least_squares_fit(pair):
    src, ref = pair
    both = np.isfinite(src) & np.isfinite(ref)
    slope, intercept = np.polyfit(src[both], ref[both], 1)
    np.testing.assert_allclose(scaling.linreg(src, ref)[both], intercept + slope * src[both], rtol=1e-10)


def test_cdf_match_maps_onto_the_reference_quantiles(pair):
    src, ref = pair
    # equal sizes without ties: the scaled values are exactly the reference's order statistics
    rng = np.random.default_rng(0)
    a, b = rng.normal(0, 1, 500), rng.gamma(2.0, 0.1, 500)
    out = scaling.cdf_match(a, b)
    np.testing.assert_allclose(np.sort(out), np.sort(b), rtol=0, atol=1e-15)
    assert (np.argsort(out) == np.argsort(a)).all()  # ranks kept
    # with NaN: on the pairs, the scaled product's quantiles are the reference's
    both = np.isfinite(src) & np.isfinite(ref)
    got = scaling.cdf_match(src, ref)
    q = np.linspace(0.01, 0.99, 99)
    np.testing.assert_allclose(
        np.quantile(got[both], q, method="hazen"), np.quantile(ref[both], q, method="hazen"), atol=1e-12
    )
    # outside the calibration range: held at the reference's extremes
    wide = np.array([-10.0, 10.0])
    assert list(scaling.cdf_match(np.r_[src, wide], np.r_[ref, np.nan, np.nan])[-2:]) == [
        np.nanmin(ref[both]),
        np.nanmax(ref[both]),
    ]


def test_cdf_match_with_ties():
    src = np.array([1.0, 1.0, 2.0, 3.0])
    ref = np.array([10.0, 20.0, 30.0, 40.0])
    # the two tied values share the mean Hazen position of ranks 1 and 2: p = 0.25, half-way 10…20
    np.testing.assert_allclose(scaling.cdf_match(src, ref), [15.0, 15.0, 30.0, 40.0])


def test_scale_dispatch_and_bad_input(pair):
    src, ref = pair
    np.testing.assert_array_equal(scaling.scale(src, ref, "none"), src)
    np.testing.assert_array_equal(scaling.scale(src, ref, "mean_std"), scaling.mean_std(src, ref))
    with pytest.raises(InputError, match="unknown method 'zscore'"):
        scaling.scale(src, ref, "zscore")
    with pytest.raises(InputError, match="constant"):
        scaling.mean_std(np.ones(5), np.arange(5.0))
    with pytest.raises(InputError, match="1 valid pair"):
        scaling.cdf_match(np.array([1.0, np.nan]), np.array([1.0, 2.0]))
    with pytest.raises(InputError, match="shape"):
        scaling.linreg(np.ones(3), np.ones(4))
