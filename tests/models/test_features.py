import csv

import numpy as np
import pandas as pd
import pytest

from catalog.errors import InputError
from models import features as F


def test_sw_in_pot_matches_fluxnet_column(shared_data):
    path = next((shared_data / "fluxnet2015_monthly").glob("FLX_AT-Neu_*_MM_*.csv"))
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    times = pd.to_datetime([r["TIMESTAMP"] for r in rows], format="%Y%m")
    ref = np.array([float(r["SW_IN_POT"]) for r in rows])
    ours = F.sw_in_pot(np.full(len(rows), 47.11667), times, time_step="month")  # AT-Neu latitude
    assert np.all(np.abs(ours / ref - 1) < 0.07)
    # the seasonal cycle peaks in June/July and bottoms out in December
    assert times[np.argmax(ours[:12])].month in (6, 7)
    assert times[np.argmin(ours[:12])].month == 12


def test_daily_sw_in_pot_polar_night_and_equator():
    assert F.daily_sw_in_pot(80.0, 355) == 0.0  # polar night
    eq = F.daily_sw_in_pot(0.0, 80)  # equinox at the equator ≈ S0/pi
    assert 420 < eq < 445


def test_igbp_codes():
    out = F.igbp_code(["ENF", "wat", " GRA ", "XYZ", None, 12.0, 99])
    assert out[:3].tolist() == [1.0, 17.0, 10.0]
    assert np.isnan(out[3]) and np.isnan(out[4]) and out[5] == 12.0 and np.isnan(out[6])


def test_feature_matrix_order_and_missing():
    table = pd.DataFrame({"ta": [1.0, 2.0], "vpd": [3.0, np.nan]})
    x = F.feature_matrix(table, ["vpd", "ta"])
    assert x.shape == (2, 2) and x[0].tolist() == [3.0, 1.0] and np.isnan(x[1, 0])
    with pytest.raises(KeyError, match="ws"):
        F.feature_matrix(table, ["ta", "ws"])


def test_feature_declarations_complete():
    for name in F.DEMO_FEATURES:
        spec = F.spec(name)
        assert spec.units and spec.long_name
        if spec.source not in ("derived", "climatology") and name != "a":
            assert spec.cube_role and spec.cube_variable
    assert F.categorical_indices(list(F.FLUXNET_FEATURES)) == [F.FLUXNET_FEATURES.index("igbp")]
    assert "a" not in F.available_energy_features(F.FLUXNET_FEATURES)


def test_time_index_static_daily_monthly_and_sparse():
    days = pd.date_range("2020-01-01", "2020-01-05", freq="D")
    assert F.time_index(["2020-01-01"], days, "day") is None  # one step: applies to every time
    assert F.time_index(days, ["2020-01-03", "2020-01-09"], "day").tolist() == [2, -1]
    months = pd.date_range("2020-01-01", "2020-03-01", freq="MS")
    assert F.time_index(months, ["2020-01-31", "2020-02-01", "2020-04-02"], "month").tolist() == [0, 1, -1]
    dekads = pd.to_datetime(["2020-01-10", "2020-01-20", "2020-01-31"])
    assert F.time_index(dekads, ["2020-01-01", "2020-01-12", "2020-01-26"], "day").tolist() == [-1, 0, 2]


def test_record_mean_same_bits_for_one_pixel_or_many():
    rng = np.random.default_rng(1)
    values = rng.normal(300, 20, (367, 3, 4)).astype(np.float32)
    values[5, 1, 2] = np.nan
    values[:, 0, 0] = np.nan
    many = F.record_mean(values)
    assert np.isnan(many[0, 0])
    for i, j in [(1, 2), (2, 3), (0, 1)]:
        assert F.record_mean(values[:, i, j][:, None])[0] == many[i, j]
    assert many[1, 2] == pytest.approx(np.nanmean(values[:, 1, 2].astype(float)), rel=1e-12)


def test_feature_set_file(tmp_path):
    path = tmp_path / "fs.yaml"
    path.write_text("grid: era5\nforcing: era5, era5_land\nstatic: [dem, lc]\nvariables:\n  lai: c3s_lai\n")
    assert F.read_feature_set_file(path) == {
        "grid": "era5",
        "roles": {"forcing": ["era5", "era5_land"], "static": ["dem", "lc"]},
        "variables": {"lai": "c3s_lai"},
    }
    for text, match in (
        ("- era5\n", "a YAML mapping"),
        ("forcings: era5\n", r"unknown keys \['forcings'\]"),
        ("variables:\n  lai: [a, b]\n", "maps canonical variable names to product names"),
        ("variables:\n  t2m: era5\n", r"unknown variables \['t2m'\]"),
        ("forcing: [era5\n", "not a readable feature-set YAML"),
    ):
        path.write_text(text)
        with pytest.raises(InputError, match=match):
            F.read_feature_set_file(path)
    with pytest.raises(InputError, match="no such feature-set file"):
        F.read_feature_set_file(tmp_path / "none.yaml")


def test_feature_set_restricted_and_required_features():
    fs = F.FeatureSet(
        grid="era5",
        variables={"ta": "era5", "precip": "era5", "lai": "c3s", "igbp": "lc", "ssm": "gldas"},
        roles={"ta": "forcing", "precip": "forcing", "lai": "forcing", "igbp": "static", "ssm": "ssm"},
        climatology=("precip",),
    )
    small = fs.restricted(["ta", "igbp", "precip_clim"])
    assert small.variables == {"ta": "era5", "precip": "era5", "igbp": "lc"}
    assert small.roles == {"ta": "forcing", "igbp": "static"} and small.climatology == ("precip",)
    assert fs.role_products() == {"forcing": "era5,c3s", "static": "lc", "ssm": "gldas"}
    assert F.required_features(["ta", "a", "ssm", "igbp", "lat", "dryness"]) == ["ta", "igbp"]
    assert F.FeatureSet.from_dict(fs.to_dict()) == fs
