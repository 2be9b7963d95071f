"""LE (W m-2) ↔ evaporation (mm d-1) against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from catalog.errors import InputError
from catalog.evaporation import (
    MM_D,
    W_M2,
    convert_le,
    lambda_note,
    latent_heat_of_vaporisation,
    le_label,
    le_to_mm_per_day,
    mm_per_day_to_le,
)


def test_hand_computed_at_20_and_30_degrees():
    # λ(20 °C) = 2.501 − 0.002361·20 = 2.45378 MJ kg-1; 100 W m-2 · 86400 s / 2.45378e6 J kg-1
    assert le_to_mm_per_day(100.0) == pytest.approx(3.52110, abs=1e-5)
    assert le_to_mm_per_day(100.0, 20.0) == pytest.approx(3.52110, abs=1e-5)
    # λ(30 °C) = 2.501 − 0.07083 = 2.43017 MJ kg-1; 250 · 86400 / 2.43017e6 = 8.88826
    assert le_to_mm_per_day(250.0, 30.0) == pytest.approx(8.88826, abs=1e-5)
    # λ(−10 °C) = 2.52461 MJ kg-1
    assert latent_heat_of_vaporisation(-10.0) == pytest.approx(2.52461e6, rel=1e-9)


def test_round_trip_sign_and_nan():
    le = np.array([-20.0, 0.0, np.nan, 150.0, 600.0])
    ta = np.array([2.0, 15.0, 25.0, np.nan, 35.0])
    e = le_to_mm_per_day(le, ta)
    assert e[0] < 0 and e[1] == 0 and np.isnan(e[2])
    # NaN temperature falls back to 20 °C for that element only
    assert e[3] == pytest.approx(le_to_mm_per_day(150.0), rel=1e-12)
    assert e[4] == pytest.approx(600 * 86400 / ((2.501 - 0.002361 * 35) * 1e6), rel=1e-12)
    np.testing.assert_allclose(mm_per_day_to_le(e, ta), le, rtol=1e-12)


def test_xarray_broadcast_and_attrs():
    le = xr.DataArray(
        np.full((2, 3), 100.0), dims=("time", "lon"), attrs={"units": W_M2, "long_name": "latent heat flux"}
    )
    ta = xr.DataArray([20.0, 30.0], dims="time")
    e = convert_le(le, MM_D, ta)
    assert e.attrs["units"] == MM_D and e.dims == ("time", "lon")
    np.testing.assert_allclose(e.isel(time=0), 3.52110, atol=1e-5)
    np.testing.assert_allclose(e.isel(time=1), 100 * 86400 / 2.43017e6, rtol=1e-6)
    assert convert_le(le, W_M2) is le


def test_labels_and_errors():
    assert le_label(W_M2) == "LE (W m-2)" and le_label(MM_D) == "evaporation (mm d-1)"
    assert "20 °C fixed" in lambda_note() and "tower's TA" in lambda_note("the tower's TA")
    with pytest.raises(InputError, match="bad LE units"):
        convert_le(1.0, "mm/day")
    with pytest.raises(InputError, match="kelvin"):
        le_to_mm_per_day(100.0, 293.15)
