"""Valid ranges at ingest: out-of-range values fail the write (count and first position) or are
masked and counted; NaN is missing, not implausible."""

from __future__ import annotations

import numpy as np
import pytest

from catalog import api, store
from catalog.errors import InputError
from catalog.variables import VARIABLES, valid_range
from tests.catalog.conftest import grid_dataset


def with_bad_values(ds, positions, value):
    v = ds.ssm.values.copy()
    for t, i, j in positions:
        v[t, i, j] = value
    return ds.copy(data={"ssm": v})


def test_every_continuous_canonical_variable_has_a_range():
    missing = [k for k, v in VARIABLES.items() if v.valid_min is None and k != "flag"]
    assert missing == []
    assert valid_range("ssm") == (0.0, 1.0)
    assert valid_range("le") == (-200.0, 1000.0)
    assert valid_range("ssm", "%") is None  # other units: no range claimed


def test_out_of_range_fails_with_count_and_first_position(data_dir):
    ds = grid_dataset(n_time=3, n_lat=6, n_lon=10, nan_fraction=0.0)
    bad = with_bad_values(ds, [(1, 2, 3), (2, 5, 9), (2, 0, 0)], 65.5)
    with pytest.raises(InputError) as err:
        store.write_product(bad, "sm", provenance={"a": 1}, synthetic=True)
    msg = str(err.value)
    assert "3 value(s) outside 0…1 m3 m-3" in msg
    assert "first 65.5 at time 2018-07-02" in msg  # (1, 2, 3) is first in (time, lat, lon) order
    assert f"lat {float(ds.lat[2]):.5f}, lon {float(ds.lon[3]):.5f}" in msg
    assert "--mask-out-of-range" in msg
    assert api.list_products() == []
    assert [p.name for p in (data_dir / "products").iterdir()] == []


def test_negative_and_infinite_values_are_out_of_range_nan_is_not(data_dir):
    ds = grid_dataset(n_time=2, n_lat=4, n_lon=4, nan_fraction=0.3)
    with pytest.raises(InputError, match="2 value"):
        store.write_product(with_bad_values(with_bad_values(ds, [(0, 0, 0)], -0.01), [(1, 1, 1)], np.inf),
                            "sm", provenance={"a": 1}, synthetic=True)  # fmt: skip
    store.write_product(ds, "ok", provenance={"a": 1}, synthetic=True)  # NaNs alone pass
    assert api.open_product("ok").ssm.attrs["valid_max"] == 1.0


def test_mask_mode_stores_nan_and_counts_in_provenance(data_dir):
    ds = grid_dataset(n_time=3, n_lat=6, n_lon=10, nan_fraction=0.0)
    bad = with_bad_values(ds, [(1, 2, 3), (2, 5, 9)], 65.5)
    info = store.write_product(bad, "sm", provenance={"a": 1}, synthetic=True, out_of_range="mask")
    assert info.provenance["masked_out_of_range"] == {"ssm": 2}
    stored = api.open_product("sm").ssm.values
    assert np.isnan(stored[1, 2, 3]) and np.isnan(stored[2, 5, 9])
    assert int(np.isnan(stored).sum()) == 2
    keep = np.ones(stored.shape, bool)
    keep[1, 2, 3] = keep[2, 5, 9] = False
    np.testing.assert_array_equal(stored[keep], ds.ssm.values[keep])
    assert api.product_info("sm").provenance["masked_out_of_range"] == {"ssm": 2}


def test_append_checks_the_new_dates_too(data_dir):
    store.write_product(grid_dataset(n_time=2), "sm", provenance={"a": 1}, synthetic=True)
    later = with_bad_values(grid_dataset(n_time=2, start="2018-07-03", nan_fraction=0.0), [(0, 1, 1)], 2.0)
    with pytest.raises(InputError, match="1 value"):
        store.write_product(later, "sm", provenance={"b": 1}, synthetic=True, mode="append")
    assert api.product_info("sm").n_time == 2
    info = store.write_product(later, "sm", provenance={"b": 1}, synthetic=True, mode="append",
                               out_of_range="mask")  # fmt: skip
    assert info.n_time == 4 and info.provenance["appended"][-1]["masked_out_of_range"] == {"ssm": 1}


def test_unknown_mode_is_refused(data_dir):
    with pytest.raises(InputError, match="out_of_range"):
        store.write_product(grid_dataset(), "sm", provenance={"a": 1}, synthetic=True, out_of_range="clip")
