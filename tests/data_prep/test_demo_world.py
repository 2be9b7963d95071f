"""The demo world's model (``data_prep.demo_world``) at points, without building a data directory."""

from __future__ import annotations

import numpy as np
import pytest

from data_prep import demo_world as w


def test_world_physics_at_points():
    assert w.toa_shortwave(np.array([0.0]), np.array([80]))[0, 0] == pytest.approx(
        1361 / np.pi * 1.0, rel=0.03
    )
    assert w.toa_shortwave(np.array([80.0]), np.array([355]))[0, 0] == 0.0  # polar night
    static = w.reference_static()

    def is_land(lat, lon):
        return bool(static.land[int((90 - lat) / w.REFERENCE_RES), int((lon + 180) / w.REFERENCE_RES)])

    assert is_land(23.2, 10.2) and is_land(-25.2, 134.2) and is_land(48.2, 2.2)  # Sahara, Australia, Paris
    assert not is_land(0.2, -150.2) and not is_land(-40.2, -30.2)  # Pacific, South Atlantic
    lat = np.array([40.0, 2.0, 23.0, 62.0])  # Kansas, Congo basin, Sahara, Siberia
    lon = np.array([-98.0, 22.0, 10.0, 100.0])
    pts = w.simulate_points(static, lat, lon, 2018)
    s = pts.series
    annual_p = s["precip"].sum(axis=0)
    assert annual_p[1] > annual_p[0] > annual_p[2]  # wet tropics, prairie, desert
    assert s["ta"][:, 3].min() < -20 and s["ta"][:, 3].max() > 10  # continental seasonal cycle
    assert np.nanmean(s["ssm"][:, 2]) < np.nanmean(s["ssm"][:, 1])
    wet = s["precip"][1:] > 10
    rise = np.diff(s["ssm"], axis=0)
    assert rise[wet].mean() > 0.01 > rise[~wet].mean()  # the bucket fills on rain days
    np.testing.assert_array_equal(s["rn"] - s["g"], s["le"] + s["h"])
    assert np.all((s["ssm"] >= 0.02) & (s["ssm"] <= 0.5))


@pytest.mark.parametrize("period", [None, ("2018-06-01", "2018-06-30")])
def test_cells_simulated_in_parts_on_threads_are_one_run_over_all_cells(monkeypatch, period):
    from data_prep.demo_world import world

    static = w.reference_static()
    monkeypatch.setattr(world, "WORKERS", 1)
    one = w.simulate_grid(static, 4.0, 2018, period=period)
    monkeypatch.setattr(world, "WORKERS", 2)
    monkeypatch.setattr(world, "CHUNK_POINTS", 500)  # several parts of a 4 deg grid's ~1000 land cells
    parts = w.simulate_grid(static, 4.0, 2018, period=period)
    assert parts.points.time.equals(one.points.time)
    assert len(one.points.time) == (365 if period is None else 30)
    np.testing.assert_array_equal(parts.points.lat, one.points.lat)
    for name in one.points.series:
        np.testing.assert_array_equal(parts.points.series[name], one.points.series[name])
    for name in one.points.static:
        np.testing.assert_array_equal(parts.points.static[name], one.points.static[name])
