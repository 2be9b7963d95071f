"""EASE-Grid 2.0 geometry against the cell centres stored in real SMAP swaths."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from catalog.errors import InputError
from data_prep import ease2

SWATHS = "qa4sm_hawaii/preprocessing/SMAP_L2/2015.08.11"


def test_row_and_column_centres_match_real_smap_cells(shared_data):
    paths = sorted((shared_data / SWATHS).glob("*.h5"))
    lats, lons = ease2.row_latitudes(ease2.M36), ease2.column_longitudes(ease2.M36)
    checked = 0
    for path in paths:
        with h5py.File(path, "r") as f:
            g = f["Soil_Moisture_Retrieval_Data"]
            rows, cols = g["EASE_row_index"][:], g["EASE_column_index"][:]
            lat, lon = g["latitude"][:], g["longitude"][:]
        ok = rows != 65534
        np.testing.assert_allclose(lats[rows[ok]], lat[ok], atol=2e-5)
        np.testing.assert_allclose(lons[cols[ok]], lon[ok], atol=2e-5)
        assert np.array_equal(ease2.rows_for_latitudes(ease2.M36, lat[ok]), rows[ok])
        assert np.array_equal(ease2.columns_for_longitudes(ease2.M36, lon[ok]), cols[ok])
        checked += int(ok.sum())
    assert checked > 10_000


def test_grid_properties():
    for g in (ease2.M36, ease2.M09):
        lat = ease2.row_latitudes(g)
        assert lat.size == g.n_rows and np.all(np.diff(lat) < 0)
        assert lat[0] == pytest.approx(-lat[-1])
        assert 83.5 < lat[0] < 85.05  # first row centre; the grid edge is at about 85.044
        spacing = -np.diff(lat)
        assert spacing.max() / spacing.min() > 3  # equal-area rows crowd towards the poles
        lon = ease2.column_longitudes(g)
        assert lon[0] == pytest.approx(-lon[-1]) and np.all(np.diff(lon) > 0)
    assert ease2.M09.cell_size * 4 == pytest.approx(ease2.M36.cell_size)
    assert ease2.grid_for_shape((406, 964)) is ease2.M36
    assert ease2.grid_for_shape((1624, 3856)) is ease2.M09
    assert ease2.rows_for_latitudes(ease2.M36, [89.0, -88.0]).tolist() == [-1, -1]
    with pytest.raises(InputError, match="M03"):
        ease2.grid("M03")
