"""Categorical variables in the views: classes from CF flag attributes, one colour per class, the
most frequent class over a period (never a mean), nearest-cell rasterisation, named colour-bar ticks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from bokeh.models import ColorBar, FixedTicker, LinearColorMapper

from app import categories, compute

ATTRS = {"flag_values": [0, 1, 2], "flag_meanings": "ta vpd ssm", "long_name": "dominant driver"}


def test_classes_from_cf_flag_attributes():
    cats = categories.of(ATTRS)
    assert cats.values == (0, 1, 2) and cats.names == ("ta", "vpd", "ssm")
    assert cats.clim == (-0.5, 2.5)
    assert cats.name(1.0) == "vpd" and cats.name(np.nan) == "" and cats.name(7) == ""
    assert categories.of({"units": "W m-2"}) is None
    assert categories.of({"flag_values": [0, 1], "flag_meanings": "only_one"}) is None  # inconsistent


def test_palette_has_one_distinct_colour_per_code_and_grey_between_codes():
    assert len(set(categories.of(ATTRS).palette())) == 3
    gappy = categories.Categories((0, 2), ("a", "b"))
    pal = gappy.palette()
    assert len(pal) == 3 and pal[1] == categories.NO_CLASS and pal[0] != pal[2]
    many = categories.Categories(tuple(range(14)), tuple(f"f{i}" for i in range(14)))
    assert len(set(many.palette())) == 14  # tab20 beyond ten classes


def _codes(values) -> xr.DataArray:
    t = pd.date_range("2018-06-01", periods=len(values), freq="D")
    arr = np.asarray(values, dtype="float32")[:, None, None] * np.ones((1, 2, 2), "float32")
    return xr.DataArray(arr, coords={"time": t, "lat": [1.0, 0.0], "lon": [0.0, 1.0]},
                        dims=("time", "lat", "lon"), attrs=ATTRS)  # fmt: skip


def test_period_aggregate_is_the_most_frequent_class_not_the_mean():
    da = _codes([2, 0, 2, 0, 2, np.nan])  # mean 1.2 would name "vpd", which never occurs
    out = compute.time_aggregate(da, "month", "2018-06-15")
    assert out.dims == ("lat", "lon") and np.all(out.values == 2)
    assert out.attrs["flag_meanings"] == "ta vpd ssm"
    tie = categories.most_frequent(_codes([1, 2, 2, 1]), categories.of(ATTRS))
    assert np.all(tie.values == 1)  # ties: the lowest code
    empty = categories.most_frequent(_codes([np.nan, np.nan]), categories.of(ATTRS))
    assert np.isnan(empty.values).all()


def test_lazy_input_stays_lazy():
    da = _codes([0, 1, 1]).chunk({"time": 1})
    out = categories.most_frequent(da, categories.of(ATTRS))
    assert out.chunks is not None and np.all(out.compute().values == 1)


def test_rasterising_classes_picks_cells_never_averages():
    lat = np.arange(9.5, -0.5, -1.0)
    lon = np.arange(0.5, 10.5, 1.0)
    codes = (np.add.outer(np.arange(10), np.arange(10)) % 2).astype("float32") * 2  # 0 / 2 chessboard
    da = xr.DataArray(codes, coords={"lat": lat, "lon": lon}, dims=("lat", "lon"), attrs=ATTRS)
    img = compute.rasterize_to_screen(da, (0.0, 10.0), (0.0, 10.0), 4, 4)  # downsampling 10 → 4
    assert set(np.unique(img.values[np.isfinite(img.values)])) <= {0.0, 2.0}


def test_style_map_ticks_each_class_and_restores_a_continuous_bar():
    mapper, bar = LinearColorMapper(), ColorBar()
    bar.color_mapper = mapper
    cats = categories.of(ATTRS)
    categories.style_map(mapper, bar, cats, (0, 1), "viridis")
    assert (mapper.low, mapper.high) == (-0.5, 2.5) and len(mapper.palette) == 3
    assert isinstance(bar.ticker, FixedTicker) and list(bar.ticker.ticks) == [0, 1, 2]
    assert bar.major_label_overrides == {0: "", 1: "", 2: ""}  # the legend names them
    categories.style_map(mapper, bar, None, (0.0, 0.5), "viridis")
    assert (mapper.low, mapper.high) == (0.0, 0.5) and len(mapper.palette) == 256
    assert bar.major_label_overrides == {} and not isinstance(bar.ticker, FixedTicker)


@pytest.mark.parametrize("cats", [None, categories.of(ATTRS)])
def test_hover_shows_class_name_or_number(cats):
    value = categories.hover_value(cats, "W m-2", "0.0")
    formatters = categories.hover_formatters(cats)
    if cats is None:
        assert value == "@image{0.0} W m-2" and formatters == {}
    else:
        assert value == "@image{custom}"
        assert formatters["@image"].args == {"codes": [0, 1, 2], "names": ["ta", "vpd", "ssm"]}


def test_legend_names_every_class_with_its_share_present_first():
    cats = categories.of(ATTRS)
    legend = categories.legend_html(cats, [2, 2, 2, 0, np.nan])
    names = [part.split("</span>")[1].split(" <small>")[0] for part in legend.split("class-item")[1:]]
    assert names == ["ssm", "ta", "vpd"]  # 75 %, 25 %, then the absent class
    assert "ssm <small>75 %</small>" in legend and "ta <small>25 %</small>" in legend
    assert "class-item class-absent' data-code='1'" in legend
    pal = cats.palette()
    assert f"data-code='2' data-colour='{pal[2]}'" in legend
    evil = categories.Categories((0,), ("<b>x</b>",))
    assert "&lt;b&gt;x&lt;/b&gt;" in categories.legend_html(evil, [0])
