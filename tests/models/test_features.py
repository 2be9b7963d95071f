import csv

import numpy as np
import pandas as pd
import pytest

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
