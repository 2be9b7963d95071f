"""What-if perturbations: parsing, ta +2 K at constant RH, physical bounds, training ranges."""

from __future__ import annotations

import numpy as np
import pytest

from catalog.errors import InputError
from models import scenarios as S


def test_parse_items_with_units_and_factors():
    got = S.parse("ta+2K, precip*0.8, ssm-0.05 m3 m-3, lai×1.1")
    assert got == (
        S.Perturbation("ta", "+", 2.0),
        S.Perturbation("precip", "*", 0.8),
        S.Perturbation("ssm", "+", -0.05),
        S.Perturbation("lai", "*", 1.1),
    )
    assert [str(p) for p in got] == ["ta +2 K", "precip ×0.8", "ssm -0.05 m3 m-3", "lai ×1.1"]
    assert S.parse(None) == () and S.parse("") == ()


@pytest.mark.parametrize(
    "text,match",
    [
        ("tx+2", "can perturb"),
        ("ta+2 W m-2", "changes in degC"),
        ("precip*0.8 mm", "a factor has no units"),
        ("ta plus 2", "bad scenario item"),
        ("ta+1, ta+2", "twice"),
    ],
)
def test_bad_scenarios_are_refused(text, match):
    with pytest.raises(InputError, match=match):
        S.parse(text)


def test_ta_plus_2k_raises_vpd_at_constant_rh_at_hand_checked_points():
    # e_s = 0.6108 exp(17.27 T / (T + 237.3)) kPa: e_s(20) = 2.33828, e_s(22) = 2.64393,
    # e_s(0) = 0.61080, e_s(2) = 0.70564, e_s(35) = 5.62268, e_s(37) = 6.27482
    arrays = {"ta": np.array([20.0, 0.0, 35.0]), "vpd": np.array([10.0, 2.0, 40.0])}
    out = S.apply(arrays, S.parse("ta+2K"))
    np.testing.assert_allclose(out["ta"], [22.0, 2.0, 37.0])
    np.testing.assert_allclose(out["vpd"], [11.30716, 2.31055, 44.63931], rtol=1e-5)
    rh = 1 - arrays["vpd"] / 10 / S.saturation_vapour_pressure(arrays["ta"])
    rh_new = 1 - out["vpd"] / 10 / S.saturation_vapour_pressure(out["ta"])
    np.testing.assert_allclose(rh_new, rh, rtol=1e-12)
    assert arrays["ta"][0] == 20.0  # inputs untouched


def test_lower_bounds_kept_and_zero_perturbation_is_identity():
    arrays = {"ssm": np.array([0.02, 0.3]), "precip": np.array([0.0, 5.0]), "vpd": np.array([3.0, 4.0])}
    out = S.apply(arrays, S.parse("ssm-0.05, precip*0.8"))
    np.testing.assert_allclose(out["ssm"], [0.0, 0.25])
    np.testing.assert_allclose(out["precip"], [0.0, 4.0])
    same = S.apply({"ta": np.array([12.5]), "vpd": np.array([7.25])}, S.parse("ta+0"))
    assert same["ta"][0] == 12.5 and same["vpd"][0] == 7.25
    with pytest.raises(InputError, match="does not read"):
        S.apply({"ta": np.array([1.0])}, S.parse("lai*1.1"))


def test_training_ranges_and_outside_counts_on_a_constructed_case():
    text = "tree\nversion=v4\nfeature_infos=[-5:30] none -1:10:1 [0:0.5]\n"
    ranges = S.training_ranges(text, ["ta", "unused", "igbp", "ssm"])
    assert ranges == {"ta": (-5.0, 30.0), "ssm": (0.0, 0.5)}
    x = np.array(
        [
            [10.0, 0.0, 1.0, 0.2],  # inside
            [31.0, 0.0, 99.0, 0.2],  # ta above; igbp has no range
            [-6.0, 0.0, 1.0, 0.6],  # both outside
            [np.nan, 0.0, 1.0, 0.5],  # missing is not outside; the edge is inside
        ]
    )
    np.testing.assert_array_equal(S.outside_range(x, ["ta", "unused", "igbp", "ssm"], ranges), [0, 1, 2, 0])


def test_values_already_below_a_bound_stay_and_minus_zero_is_zero():
    arrays = {"precip": np.array([-0.5, 2.0, np.nan]), "ssm": np.array([-0.01, 0.1, 0.2])}
    out = S.apply(arrays, S.parse("precip*0.5, ssm-0.15"))
    np.testing.assert_array_equal(out["precip"], [-0.25, 1.0, np.nan])  # a data artefact moved, not fixed
    # clipped only where pushed below 0
    np.testing.assert_allclose(out["ssm"], [-0.01, 0.0, 0.05], rtol=0, atol=1e-15)
    (p,) = S.parse("ssm-0")
    assert p.value == 0.0 and np.copysign(1.0, p.value) == 1.0 and str(p) == "ssm +0 m3 m-3"
    assert S.parse(S.text(S.parse("ta+2K, precip*0.8, ssm-0.05"))) == S.parse("ta+2K, precip*0.8, ssm-0.05")


@pytest.mark.parametrize(
    "text,match",
    [("ta+10.5K", r"at most ±10 K"), ("precip*3.5", r"0\.\.3"), ("ws-6", r"±5 m s-1"), ("vpd+25", "±20 hPa")],
)
def test_magnitudes_beyond_the_limits_are_refused(text, match):
    with pytest.raises(InputError, match=match):
        S.check_magnitudes(S.parse(text))
    S.check_magnitudes(S.parse("ta-10K, precip*0, ssm+0.3, lai*3"))  # the limits themselves pass
