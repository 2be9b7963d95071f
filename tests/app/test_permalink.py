"""Permalink encoding round-trips every selection and ignores malformed values."""

from __future__ import annotations

import datetime as dt

from app import permalink
from app.state import AppState


def test_round_trip_restores_selections():
    s = AppState(
        product="gssm1km_demo",
        variable="ssm",
        date=dt.date(2018, 7, 14),
        aggregation="period",
        period=(dt.date(2018, 7, 1), dt.date(2018, 7, 10)),
        x_range=(-100.5, -95.25),
        y_range=(35.125, 40.0),
        pixel=(-97.3, 36.6),
        box=(-99.0, 35.5, -96.0, 38.0),
        cmap="viridis",
        clim_mode="typed",
        clim=(0.05, 0.45),
        compare=["ssm_global_demo", "esacci_demo"],
        common_mask=True,
        basemap=True,
    )
    q = permalink.to_query(s)
    assert q["view"] == "-100.5,-95.25,35.125,40"
    restored = AppState(**permalink.from_query(q))
    for name in (
        "product",
        "variable",
        "date",
        "aggregation",
        "period",
        "x_range",
        "y_range",
        "pixel",
        "box",
    ):
        assert getattr(restored, name) == getattr(s, name), name
    assert restored.clim_mode == "typed" and restored.clim == (0.05, 0.45)
    assert restored.compare == ["ssm_global_demo", "esacci_demo"] and restored.common_mask
    assert q["basemap"] == "1" and restored.basemap
    assert "basemap" not in permalink.to_query(AppState())


def test_malformed_values_are_ignored():
    out = permalink.from_query({"date": "2018-13-40", "view": "1,2,x,4", "agg": "decade", "box": "5,5,1,1"})
    assert out == {}
    assert permalink.from_query({"clim": "auto"}) == {"clim_mode": "auto"}
