"""Explanation maps and what-if products in the views, on real products of the small demo world: the
dominant-driver map with its named classes, a pixel's stacked SHAP contributions adding up to the
plain re-prediction's LE, and Compare's scenario − baseline difference with its baseline pairing and
out-of-range mask."""

from __future__ import annotations

import datetime as dt

import holoviews as hv
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from app import contributions, data, map_panel, scenario_compare
from app.compare_panel import CompareTab
from app.series_panel import SeriesPanel
from app.state import AppState
from catalog import api
from models import explain_map, predict
from tests.conftest import demo_copy_with_model

BBOX = (-104.0, 30.0, -94.0, 40.0)  # 5 × 5 px of the small demo's 2° grid
PERIOD = ("2018-06-03", "2018-06-07")
VIEW = ((-106.0, -92.0), (28.0, 42.0))


@pytest.fixture(scope="module")
def world(demo_world, tmp_path_factory):
    d = tmp_path_factory.mktemp("explain-views") / "data"
    settings = dict(num_boost_round=15, n_folds=2, params={"min_data_in_leaf": 5}, shap_sample=100)
    with demo_copy_with_model(demo_world, d, **settings) as version:
        data.view_data().forget_products()
        names = {
            "baseline": predict.predict_region(version, BBOX, *PERIOD, product_name="base"),
            "scenario": predict.predict_region(version, BBOX, *PERIOD, product_name="warm", scenario="ta+8K"),
            "other": predict.predict_region(version, BBOX, PERIOD[0], "2018-06-06", product_name="short"),
            "explain": explain_map.explain_region(version, BBOX, *PERIOD, product_name="why"),
            "explain_later": explain_map.explain_region(
                version, BBOX, "2018-06-05", "2018-06-09", product_name="why-later"
            ),  # fmt: skip
        }
        data.view_data().forget_products()
        yield names
        data.view_data().forget_products()


def _state(**kw) -> AppState:
    state = AppState(date=dt.date(2018, 6, 5), **kw)
    state.x_range, state.y_range = VIEW
    return state


def _pixel(world) -> tuple[float, float]:
    """A pixel of the box where the explanation has most days explained."""
    ds = api.open_product(world["explain"])
    n = np.isfinite(ds["le_base"]).sum("time")
    j, i = np.unravel_index(int(np.argmax(n.values)), n.shape)
    return float(ds.lon[i]), float(ds.lat[j])


def test_dominant_driver_map_names_its_classes(world):
    info = api.product_info(world["explain"])
    feats = contributions.features(info)
    assert contributions.is_explanation(info) and not contributions.is_explanation(api.product_info("base"))
    tab = map_panel.MapTab(_state(product=world["explain"], variable="dominant_driver"))
    assert list(tab.map.colorbar.ticker.ticks) == list(range(len(feats)))
    assert tab.legend.visible and all(f">{f} <small>" in tab.legend.object for f in feats)
    assert len(tab.map.mapper.palette) == len(feats)
    assert (tab.map.mapper.low, tab.map.mapper.high) == (-0.5, len(feats) - 0.5)
    shown = tab.map.source.data["image"][0]
    codes = set(np.unique(shown[np.isfinite(shown)]))
    assert codes and codes <= set(range(len(feats)))  # classes, never blends of two
    assert tab._last["cats"].names == tuple(feats)


def test_pixel_contributions_stack_to_the_plain_prediction(world):
    hv.extension("bokeh", logo=False)
    lon, lat = _pixel(world)
    state = _state(product=world["explain"], variable="dominant_driver", pixel=(lon, lat))
    panel = SeriesPanel(state)
    assert state.message == ""
    assert panel.contrib_plot.visible and panel.contrib_info.visible
    assert "largest mean |contribution|" in panel.contrib_info.object
    feats = contributions.features(api.product_info(world["explain"]))
    overlay = panel.contrib_plot.object
    bars = [el for el in overlay if isinstance(el, hv.Rectangles)]
    labels = [b.label for b in bars]
    others = [x for x in labels if x not in feats]  # all but the strongest SHOWN summed into one
    assert bars and len(labels) <= contributions.SHOWN + 1 and len(others) <= 1
    if len(feats) > contributions.SHOWN + 1:
        assert others == [f"other {len(feats) - contributions.SHOWN} inputs"]
    # independent: per day, the bar segments' signed heights add up to LE − LE0 of the plain
    # re-prediction of the same box and period at this pixel
    net = {}
    for b in bars:
        tbl = b.dframe()
        mid = tbl["time"] + (tbl["time_end"] - tbl["time"]) / 2
        height = tbl["top"] - tbl["contribution_le"]
        np.testing.assert_allclose(np.abs(height), np.abs(tbl["contribution"]), rtol=1e-6)
        for day, h in zip(mid.dt.normalize(), height, strict=True):
            net[day] = net.get(day, 0.0) + h
    ds = api.open_product(world["explain"]).sel(lon=lon, lat=lat).load()
    le = api.open_product(world["baseline"])["le"].sel(lon=lon, lat=lat).load()
    days = sorted(net)
    assert len(days) >= 3
    base = ds["le_base"].sel(time=days).values
    np.testing.assert_allclose(base + np.array([net[d] for d in days]), le.sel(time=days).values, atol=1e-2)

    state.product = world["baseline"]  # not an explanation: the plot goes away
    assert not panel.contrib_plot.visible and not panel.contrib_info.visible


def test_stacked_segments_positive_up_negative_down():
    t = pd.date_range("2018-06-01", periods=2)
    ds = xr.Dataset(
        {"shap_le_a": ("time", [5.0, -1.0]), "shap_le_b": ("time", [-2.0, np.nan]),
         "shap_le_c": ("time", [3.0, -4.0])},
        coords={"time": t},
    )  # fmt: skip
    rows = contributions.stacked(ds, ["a", "b", "c"]).set_index(["time", "feature"])
    assert rows.loc[(t[0], "a"), ["bottom", "top"]].tolist() == [0.0, 5.0]
    assert rows.loc[(t[0], "b"), ["bottom", "top"]].tolist() == [0.0, -2.0]
    assert rows.loc[(t[0], "c"), ["bottom", "top"]].tolist() == [5.0, 8.0]
    assert rows.loc[(t[1], "c"), ["bottom", "top"]].tolist() == [-1.0, -5.0]
    assert (t[1], "b") not in rows.index  # missing: no segment
    np.testing.assert_allclose(contributions.net(ds, ["a", "b", "c"]), [6.0, -5.0])
    assert [f for f, _ in contributions.ranking(ds, ["a", "b", "c"])] == ["c", "a", "b"]


def test_baseline_pairing(world):
    info = api.product_info
    assert scenario_compare.scenario_text(info(world["scenario"])) == "ta +8 K"
    assert scenario_compare.scenario_text(info(world["baseline"])) is None
    names = [world["other"], world["explain"], world["baseline"]]
    assert scenario_compare.baseline_of(world["scenario"], names, info) == world["baseline"]
    assert scenario_compare.baseline_of(world["scenario"], [world["other"]], info) is None  # other period
    assert scenario_compare.baseline_of(world["baseline"], names, info) is None
    assert "pixel-days predicted" in scenario_compare.counts_text(info(world["scenario"]))


def test_compare_shows_scenario_minus_baseline(world):
    scen, base = world["scenario"], world["baseline"]
    state = _state(product=scen, variable="le", tab="Compare", compare=[scen, world["other"]])
    tab = CompareTab(state)
    assert tab.to_baseline.visible and tab.out_of_range.visible
    tab.to_baseline.clicks += 1
    assert state.compare == [scen, base] and not tab.to_baseline.visible
    assert state.message == ""
    assert tab.diff.fig.title.text.startswith("scenario (ta +8 K) − baseline")
    assert tab.diff.colorbar.title == "Δ le (W m-2)"
    stats = tab.stats.object
    assert "is its baseline" in stats and "pixel-days predicted" in stats
    # independent: the day's scenario − baseline over the box, cos-lat weighted
    day = np.datetime64("2018-06-05")
    s_le = api.open_product(scen)["le"].sel(time=day)
    b_le = api.open_product(base)["le"].sel(time=day)
    d = (s_le - b_le).values
    w = np.broadcast_to(np.cos(np.deg2rad(s_le.lat.values))[:, None], d.shape)
    ok = np.isfinite(d)
    mean = float((w[ok] * d[ok]).sum() / w[ok].sum())
    assert f"| mean A − B (cos-lat weighted) | {mean:.4g} W m-2 |" in stats

    # the scenario's range flags: this small model's narrow ranges leave most pixel-days outside
    # already at baseline, so the scenario pushes none out, and the out-of-range mask hides many
    counts = api.product_info(scen).provenance["scenario_counts"]
    assert counts["pixel_days_outside_range"] > 0
    for flag in (scenario_compare.PUSHED, scenario_compare.OUTSIDE):
        tab.out_of_range.value = flag
        flagged = api.open_product(scen)[flag].sel(time=day).values
        n_hidden = int(((flagged > 0) & ok).sum())
        assert f"Hidden here: {n_hidden:,} cells" in tab.stats.object
        assert f"{int(ok.sum()) - n_hidden:,} cells valid in both" in tab.stats.object
    assert n_hidden > 0


def test_compare_two_class_maps_says_where_they_differ(world):
    ex, later = world["explain"], world["explain_later"]
    state = _state(product=ex, variable="dominant_driver", tab="Compare", compare=[ex, ex])
    tab = CompareTab(state)
    assert "same product" in tab.diff.fig.title.text  # one product: nothing to difference
    assert len(tab.left.mapper.palette) == len(contributions.features(api.product_info(ex)))  # its classes
    state.compare = [ex, later]
    assert state.message == ""
    assert tab.diff.fig.title.text.startswith(f"{ex} vs {later}: same class?")
    assert list(tab.diff.colorbar.ticker.ticks) == [0, 1] and len(tab.diff.mapper.palette) == 2
    # independent: share of the day's cells where the two drivers differ
    day = np.datetime64("2018-06-05")
    a = api.open_product(ex)["dominant_driver"].sel(time=day).values
    b = api.open_product(later)["dominant_driver"].sel(time=day).values
    ok = np.isfinite(a) & np.isfinite(b)
    share = 100 * float((a[ok] != b[ok]).mean())
    assert f"{int(ok.sum()):,} cells valid in both" in tab.stats.object
    assert f"different class in {share:.1f} % of them" in tab.stats.object
