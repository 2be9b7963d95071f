"""Pyramid shapes and 2 × 2 coarsening values, checked against loops written here."""

from __future__ import annotations

import math

import numpy as np
import pytest

from catalog import pyramid
from tests.catalog.conftest import grid_dataset


def block_nanmean(a: np.ndarray, i: int, j: int) -> float:
    """Mean of the valid values of block (i, j) of a 2-D array, computed value by value."""
    vals = []
    for di in (0, 1):
        for dj in (0, 1):
            r, c = 2 * i + di, 2 * j + dj
            if r < a.shape[0] and c < a.shape[1] and not math.isnan(a[r, c]):
                vals.append(float(a[r, c]))
    return sum(vals) / len(vals) if vals else math.nan


@pytest.mark.parametrize(
    ("shape", "expected"),
    [
        ((300, 2100), [(300, 2100), (150, 1050), (75, 525)]),
        ((512, 1024), [(512, 1024)]),
        ((513, 1025), [(513, 1025), (257, 513)]),
        ((2000, 2000), [(2000, 2000), (1000, 1000)]),
    ],
)
def test_level_shapes_halve_down_to_1024_wide(shape, expected):
    assert pyramid.level_shapes(*shape) == expected


def test_coarsen_is_nan_aware_block_mean_with_odd_edges():
    ds = grid_dataset(n_time=2, n_lat=5, n_lon=7, nan_fraction=0.4, seed=3).load()
    a = ds.ssm.values
    a[1, 0:2, 0:2] = np.nan  # one all-missing block
    ds["ssm"][:] = a
    out = pyramid.coarsen_2x2(ds).compute()
    assert out.ssm.shape == (2, 3, 4)
    assert out.ssm.dtype == np.float32
    for t in range(2):
        for i in range(3):
            for j in range(4):
                expected = block_nanmean(a[t], i, j)
                got = float(out.ssm[t, i, j])
                if math.isnan(expected):
                    assert math.isnan(got)
                else:
                    assert got == pytest.approx(expected, rel=1e-6)
    assert math.isnan(float(out.ssm[1, 0, 0]))


def test_coarse_coordinates_are_cell_centres_from_the_nw_corner():
    ds = grid_dataset(n_time=1, n_lat=5, n_lon=7, res=0.5, west=-105.0, north=50.0)
    out = pyramid.coarsen_2x2(ds)
    np.testing.assert_allclose(out.lat.values, [49.5, 48.5, 47.5])
    np.testing.assert_allclose(out.lon.values, [-104.5, -103.5, -102.5, -101.5])
    assert out.attrs["resolution_lon"] == pytest.approx(1.0)


def test_categorical_takes_first_valid_value_of_the_block():
    ds = grid_dataset(n_time=1, n_lat=2, n_lon=4, nan_fraction=0.0).load()
    ds["igbp"] = ds.ssm.copy(data=np.array([[[np.nan, 7, 3, 3], [5, 9, 4, 3]]], np.float32))
    out = pyramid.coarsen_2x2(ds).compute()
    np.testing.assert_array_equal(out.igbp.values, [[[7.0, 3.0]]])


def test_coarsen_does_not_depend_on_dask_chunking():
    ds = grid_dataset(n_time=2, n_lat=9, n_lon=13, nan_fraction=0.3, seed=4)
    whole = pyramid.coarsen_2x2(ds.chunk({"time": 2, "lat": -1, "lon": -1})).compute()
    odd = pyramid.coarsen_2x2(ds.chunk({"time": 1, "lat": 3, "lon": 5})).compute()
    np.testing.assert_array_equal(whole.ssm.values, odd.ssm.values)
    assert whole.ssm.shape == (2, 5, 7)
