"""ILAMB scores on constructed monthly series whose scores follow by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from catalog.errors import InputError
from validation import ilamb_scores as ilamb

TIME = pd.date_range("2016-01-01", periods=24, freq="MS")
MONTH = np.arange(24) % 12
CYCLE = 5 * np.sin(2 * np.pi * MONTH / 12)  # amplitude 5: centred RMS 5/sqrt(2) over whole years
YEAR_OFFSET = np.where(np.arange(24) < 12, -0.5, 0.5)  # interannual departures of ±0.5


def _sites(values_per_site):
    return xr.DataArray(
        np.stack(values_per_site, axis=1),
        dims=("time", "site"),
        coords={"time": TIME, "site": ["a", "b", "c"]},
    )


def _reference():
    return _sites([10 + CYCLE + YEAR_OFFSET, 20 + CYCLE + YEAR_OFFSET, 30 + CYCLE + YEAR_OFFSET])


def test_bias_score_by_hand():
    ref = _reference()
    s = ilamb.bias_score(ref + 2.0, ref)
    crms = float(np.sqrt(np.mean((CYCLE + YEAR_OFFSET) ** 2)))  # the cycle and the offsets are orthogonal
    assert crms == pytest.approx(np.sqrt(12.5 + 0.25))
    np.testing.assert_allclose(s.values, np.exp(-2.0 / crms))
    assert float(ilamb.bias_score(ref, ref).min()) == 1.0


def test_rmse_score_by_hand():
    ref = _reference()
    mean = ref.mean("time")
    doubled = mean + 2 * (ref - mean)  # centred RMS difference = crms of the reference
    np.testing.assert_allclose(ilamb.rmse_score(doubled, ref).values, np.exp(-1.0))
    np.testing.assert_allclose(ilamb.rmse_score(ref + 3.0, ref).values, 1.0)  # a bias is not an RMSE error


@pytest.mark.parametrize(("shift", "score"), [(0, 1.0), (3, 0.5), (6, 0.0), (9, 0.5), (2, 0.75)])
def test_phase_score_by_hand(shift, score):
    ref = _reference()
    shifted = _sites([10 + 5 * np.sin(2 * np.pi * (MONTH - shift) / 12) + YEAR_OFFSET] * 3)
    np.testing.assert_allclose(ilamb.phase_score(shifted, ref).values, score, atol=1e-12)


def test_iav_score_by_hand():
    ref = _reference()
    np.testing.assert_allclose(ilamb.interannual_variability(ref).values, 0.5)
    wider = _sites([10 + CYCLE + 2 * YEAR_OFFSET] * 3)  # iav 1.0 against 0.5: ε = 1
    np.testing.assert_allclose(ilamb.iav_score(wider, ref).values, np.exp(-1.0))
    flat = _sites([10 + CYCLE] * 3)  # no interannual variability at all: ε = 1 as well
    np.testing.assert_allclose(ilamb.iav_score(flat, ref).values, np.exp(-1.0))


def test_spatial_distribution_and_overall_by_hand():
    ref = xr.DataArray([1.0, 2.0, 3.0], dims="site")
    # σ = 2, R = 1: 2 (1 + 1) / (2 + 1/2)^2 = 0.64
    assert ilamb.spatial_distribution_score(2 * ref, ref) == pytest.approx(0.64)
    assert ilamb.spatial_distribution_score(ref + 5, ref) == pytest.approx(1.0)
    assert ilamb.spatial_distribution_score(-ref, ref) == pytest.approx(0.0)
    scores = {"bias": 0.5, "rmse": 0.8, "phase": 1.0, "iav": 0.2, "dist": 0.64}
    assert ilamb.overall_score(scores) == pytest.approx((0.5 + 1.6 + 1.0 + 0.2 + 0.64) / 6)
    assert ilamb.overall_score({**scores, "iav": np.nan}) == pytest.approx((0.5 + 1.6 + 1.0 + 0.64) / 5)


def test_all_scores_of_a_biased_product_with_weights():
    ref = _reference()
    mod = ref + xr.DataArray([2.0, 0.0, 0.0], dims="site", coords={"site": ref["site"]})
    w = xr.DataArray([1.0, 1.0, 2.0], dims="site", coords={"site": ref["site"]})
    got = ilamb.scores(mod, ref, weights=w)
    crms = np.sqrt(12.75)
    assert got["bias"] == pytest.approx((np.exp(-2 / crms) + 1 + 2) / 4)
    assert [got["rmse"], got["phase"], got["iav"]] == pytest.approx([1.0, 1.0, 1.0])
    means_mod, means_ref = np.array([12.0, 20.0, 30.0]), np.array([10.0, 20.0, 30.0])
    wn = w.values / w.values.sum()
    dm, dr = means_mod - wn @ means_mod, means_ref - wn @ means_ref
    sm, sr = np.sqrt(wn @ dm**2), np.sqrt(wn @ dr**2)
    r, sigma = (wn @ (dm * dr)) / (sm * sr), sm / sr
    assert got["dist"] == pytest.approx(2 * (1 + r) / (sigma + 1 / sigma) ** 2)
    assert got["overall"] == pytest.approx((got["bias"] + 2 + 1 + 1 + got["dist"]) / 6)


def test_product_masked_like_the_reference_and_bad_input():
    ref = _reference()
    holes = ref.where(ref["time"] != TIME[5])
    mod = ref + 1.0
    mod[7, 0] = 1e6  # where the reference is valid: it counts
    assert float(ilamb.bias_score(mod, holes)[0]) < 1e-3
    mod = ref + 1.0
    mod[5, :] = 1e6  # only where the reference is missing: ignored
    np.testing.assert_allclose(ilamb.rmse_score(mod, holes).values, 1.0)
    with pytest.raises(InputError, match="not on one grid"):
        ilamb.bias_score(ref.isel(site=[0, 1]).assign_coords(site=["x", "y"]), ref.isel(site=[0, 1]))
    with pytest.raises(InputError, match="no dimension 'time'"):
        ilamb.rmse_score(ref.rename(time="t"), ref.rename(time="t"))
