"""The Validation tab built on the small demo world, driven without a browser."""

from __future__ import annotations

import io

import holoviews as hv
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from tests.stores import level_path


@pytest.fixture
def tab(demo_world, tmp_path, monkeypatch):
    monkeypatch.setenv("FLUXLENS_DATA_DIR", str(demo_world))
    monkeypatch.setenv("FLUXLENS_VALIDATION_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("FLUXLENS_JOBS_DB", str(tmp_path / "jobs.sqlite"))
    hv.extension("bokeh", logo=False)
    from app.state import AppState
    from app.validation_panel import ValidationTab

    t = ValidationTab(AppState())
    t.site.network.value = "fluxnet_demo"
    t.site.variable.value = "le"
    return t


def test_sites_map_filters_and_search(tab):
    from catalog import api

    sites = api.sites("fluxnet_demo")
    assert len(tab.site._shown) == len(sites)
    assert isinstance(tab.site.site_map.object, hv.Overlay)
    one_class = sites["igbp"].astype(str).iloc[0]
    tab.site.igbp.value = [one_class]
    assert len(tab.site._shown) == int((sites["igbp"].astype(str) == one_class).sum())
    tab.site.igbp.value = []
    tab.site.region.value = "Europe"
    expected = sites["lon"].between(-25, 45) & sites["lat"].between(34, 72)
    assert len(tab.site._shown) == int(expected.sum())
    tab.site.region.value = "World"
    target = sites.iloc[3]
    label = [o for o in tab.site.search.options if o.startswith(str(target["site_id"]))][0]
    tab.site.search.value = label
    assert tab.state.site == ("fluxnet_demo", target["site_id"])


def test_site_view_metrics_and_csv(tab, demo_world):
    from catalog import api

    site = api.sites("fluxnet_demo").iloc[0]
    tab.state.site = ("fluxnet_demo", site["site_id"])
    tab.wait()
    table = tab.site.site_metrics.value.set_index("product")
    assert "fluxes_demo" in table.index
    # independent: tower LE with QC >= 0.8 against the nearest level-0 pixel read with xarray
    cube = xr.open_zarr(level_path(demo_world, "fluxes_demo"), consolidated=False)
    i = int(np.abs(cube["lat"].values - site["lat"]).argmin())
    j = int(np.abs(cube["lon"].values - site["lon"]).argmin())
    pred = pd.Series(cube["le"][:, i, j].values.astype(float), index=pd.DatetimeIndex(cube["time"].values))
    obs = api.site_observations("fluxnet_demo", site["site_id"])
    o = pd.Series(obs["LE"].where(~(obs["LE_QC"] < 0.8)).to_numpy(), index=pd.DatetimeIndex(obs["time"]))
    both = pd.concat({"o": o, "p": pred}, axis=1, join="inner").dropna()
    row = tab.site._view.metrics.set_index("product").loc["fluxes_demo"]  # the table shows 3 digits
    assert table.loc["fluxes_demo", "rmse"] == pytest.approx(row["rmse"], rel=5e-3)
    assert row["n"] == len(both) >= 10
    assert row["rmse"] == pytest.approx(np.sqrt(((both["p"] - both["o"]) ** 2).mean()), abs=1e-4)
    assert row["r"] == pytest.approx(np.corrcoef(both["o"], both["p"])[0, 1], abs=1e-4)
    assert isinstance(tab.site.series_plot.object, hv.Overlay)
    assert isinstance(tab.site.scatter_plot.object, hv.Overlay)
    assert isinstance(tab.site.closure_plot.object, hv.Overlay)  # towers have LE, H, NETRAD, G
    text = tab.site._series_csv().getvalue()
    assert f"# site_id: {site['site_id']}" in text and "# units: W m-2" in text
    frame = pd.read_csv(io.StringIO(text), comment="#", parse_dates=["time"]).set_index("time")
    assert frame["fluxes_demo"].dropna().size == pred.dropna().size
    # anomaly toggle recomputes with anomalies: R of anomalies differs
    tab.site.anomaly.value = True
    tab.wait()
    assert tab.site.site_metrics.value.set_index("product").loc["fluxes_demo", "r"] != pytest.approx(row["r"])


def test_scoreboard_in_background_with_taylor_and_csv(tab):
    from catalog import api
    from models.jobs import JobStore
    from models.worker import Worker

    tab.board.sb_product.value = "fluxes_demo"
    tab.board.run_scoreboard()
    assert tab.board._job_id is not None  # submitted, not computed in this call
    assert Worker(JobStore()).run(once=True) == 1  # the job worker computes it
    tab.wait()
    board = tab.board._board
    assert board is not None and not board.cached
    assert len(tab.board.sb_table.value) == len(api.sites("fluxnet_demo"))
    assert isinstance(tab.board.sb_taylor.object, hv.Overlay)
    assert isinstance(tab.board.sb_map.object, hv.Overlay)
    assert set(tab.board.sb_igbp.value["igbp"]) <= set(api.sites("fluxnet_demo")["igbp"].astype(str))
    csv_text = tab.board._metrics_csv().getvalue()
    assert "# product: fluxes_demo" in csv_text
    table = pd.read_csv(io.StringIO(csv_text), comment="#")
    assert table["rmse"].notna().sum() >= 5
    tab.board.run_scoreboard()
    tab.wait()
    assert tab.board._board.cached
    assert "from cache" in tab.board.sb_status.object


def test_scoreboard_follows_the_le_units(tab):
    """Switching the session to mm d-1 scores LE again as evaporation (a new job, then cached), with
    the units and λ stated on the page and in the CSV; switching back is served from the cache."""
    from models.jobs import JobStore
    from models.worker import Worker

    tab.board.sb_product.value = "fluxes_demo"
    tab.board.run_scoreboard()
    assert Worker(JobStore()).run(once=True) == 1
    tab.wait()
    watts = tab.board._board.table.set_index("site_id")["rmse"]
    tab.state.le_units = "mm d-1"
    assert tab.board._job_id is not None  # not in the cache yet: computed by the worker
    assert Worker(JobStore()).run(once=True) == 1
    tab.wait()
    board = tab.board._board
    mm = board.table.set_index("site_id")["rmse"]
    ok = watts.notna()
    assert ok.sum() >= 5
    ratio = (mm[ok] / watts[ok]).to_numpy()
    assert np.allclose(ratio, 86400 / 2.45e6, rtol=0.03)  # λ(T) near 2.45 MJ kg-1, not exactly
    assert "mm d-1" in tab.board.sb_note.object and "λ" in tab.board.sb_note.object
    assert "mm d-1" in tab.board.sb_pooled.object
    csv_text = tab.board._metrics_csv().getvalue()
    assert "# units: mm d-1" in csv_text and "# conversion: LE as evaporation" in csv_text
    tab.state.le_units = "W m-2"
    tab.wait()
    assert tab.board._job_id is None and tab.board._board.cached
    assert np.allclose(tab.board._board.table.set_index("site_id")["rmse"][ok], watts[ok])


def test_dense_scatter_is_rasterised(tab):
    from app.validation_site_panel import DENSE_POINTS
    from validation import metrics
    from validation.config import ValidationOptions
    from validation.site_view import SiteView

    rng = np.random.default_rng(0)
    n = DENSE_POINTS + 1000
    o = rng.normal(100, 30, n)
    pairs = pd.DataFrame(
        {"obs": o, "pred": o + rng.normal(0, 10, n)}, index=pd.date_range("2000-01-01", periods=n)
    )
    m = metrics.all_metrics(pairs["obs"], pairs["pred"])
    tab.site._view = SiteView(
        network="fluxnet_demo",
        site={"site_id": "X", "lon": 0.0, "lat": 0.0},
        variable="le",
        options=ValidationOptions.from_config(),
        obs_column="LE",
        obs=pd.DataFrame({"value": o, "qc_pass": True}, index=pairs.index),
        preds={"dense": pairs["pred"]},
        pixels={},
        pairs={"dense": pairs},
        metrics=pd.DataFrame([{"product": "dense", **m}]),
        closure=None,
        closure_points=None,
    )
    tab.site.scatter_product.options = ["dense"]
    tab.site.scatter_product.value = "dense"
    tab.site._draw_scatter()
    dense_layers = list(tab.site.scatter_plot.object)
    assert any(isinstance(layer, hv.DynamicMap) for layer in dense_layers)  # rasterised points
    tab.site._view.pairs["dense"] = pairs.iloc[:500]
    tab.site._draw_scatter()
    sparse_layers = list(tab.site.scatter_plot.object)
    assert not any(isinstance(layer, hv.DynamicMap) for layer in sparse_layers)
    assert any(isinstance(layer, hv.Points) for layer in sparse_layers)


def test_flux_network_opens_on_its_fluxes_and_ismn_on_soil_moisture(demo_world, tmp_path, monkeypatch):
    monkeypatch.setenv("FLUXLENS_DATA_DIR", str(demo_world))
    monkeypatch.setenv("FLUXLENS_JOBS_DB", str(tmp_path / "jobs.sqlite"))
    from app.state import AppState
    from app.validation_panel import ValidationTab
    from app.validation_site_panel import network_variables
    from catalog import api

    tab = ValidationTab(AppState(variable="ssm"))  # the map shows soil moisture
    assert tab.site.network.value == "fluxnet_demo"
    assert tab.site.variable.value == "le"  # not the map's ssm, though the towers also measure SWC
    assert "ssm" in tab.site.variable.options
    tab.site.network.value = "ismn_demo"
    assert tab.site.variable.options == ["ssm"] and tab.site.variable.value == "ssm"
    assert network_variables(api.network_info("fluxnet_demo")["variables"])[:4] == ["le", "h", "rn", "g"]
    assert network_variables([]) == network_variables(["NOT_A_COLUMN"]) == ["le", "h", "rn", "g", "ssm"]


def test_one_year_network_says_its_year(tab):
    from catalog import api

    sites = api.sites("fluxnet_demo")
    years = set(pd.to_datetime(sites["start"]).dt.year) | set(pd.to_datetime(sites["end"]).dt.year)
    assert years == {2018}  # the small demo world is one year
    assert not tab.site.years.visible and tab.site.one_year.visible
    assert "2018" in tab.site.one_year.object and "2019" not in tab.site.one_year.object


def test_search_text_selects_the_first_match(tab):
    from catalog import api

    sites = api.sites("fluxnet_demo").sort_index()
    tab.site.search.value = "grassland"  # typed text and Enter, not a listed label
    first = sites[sites["name"].str.lower().str.contains("grassland")].iloc[0]
    assert tab.state.site == ("fluxnet_demo", first["site_id"])


def test_metric_tables_name_each_statistic_once(tab):
    from app.validation_site_panel import METRIC_TITLES, metrics_table

    site = tab.site._sites.iloc[0]
    tab.state.site = ("fluxnet_demo", site["site_id"])
    tab.wait()
    shown = tab.site.site_metrics.value
    assert "r2" not in shown and {"nse", "r", "r_ci"} <= set(shown)
    titles = tab.site.site_metrics.titles
    assert titles["nse"] == "NSE" and titles["r"] == "r" and len(set(titles.values())) == len(titles)
    assert "NSE = 1 − SS_res / SS_tot" in tab.site.metrics_note.object
    assert "W m-2" in tab.site.metrics_note.object
    raw = tab.site._view.metrics.set_index("product").loc["fluxes_demo"]
    row = shown.set_index("product").loc["fluxes_demo"]
    assert row["r_ci"] == f"{raw['r_ci_low']:.2f}…{raw['r_ci_high']:.2f}"
    assert row["rmse"] == pytest.approx(raw["rmse"], rel=5e-3)  # 3 significant digits
    t = metrics_table(pd.DataFrame({"product": ["p"], "n": [3], "bias": [0.0012345], "r": [0.98765]}))
    assert t.loc[0, "bias"] == 0.00123 and t.loc[0, "r"] == 0.988 and set(METRIC_TITLES) >= set(t)


def test_taylor_axes_reach_every_point_with_a_square_aspect():
    from app.scoreboard_panel import taylor_diagram

    table = pd.DataFrame(
        {
            "site_id": ["a", "b", "c", "d"],
            "igbp": ["GRA", "CRO", "GRA", "ENF"],
            "sigma_norm": [0.6, 1.0, 1.45, 1.9],  # beyond 1.3 and beyond the default 1.5 radius
            "r": [0.95, 0.7, 0.99, 0.4],
            "crmsd_norm": [0.4, 0.7, 0.5, 1.7],
        }
    )
    hv.extension("bokeh", logo=False)
    fig = hv.render(taylor_diagram(table, "Taylor diagram: test"))
    theta = np.arccos(table["r"])
    x, y = table["sigma_norm"] * np.cos(theta), table["sigma_norm"] * np.sin(theta)
    assert fig.x_range.start < x.min() and fig.x_range.end > x.max()
    assert fig.y_range.start < y.min() and fig.y_range.end > y.max()
    assert fig.x_range.end > 1.06 * 1.1 * 1.9  # the correlation labels beyond the outer arc
    x_per_px = (fig.x_range.end - fig.x_range.start) / fig.frame_width
    y_per_px = (fig.y_range.end - fig.y_range.start) / fig.frame_height
    assert x_per_px == pytest.approx(y_per_px, rel=0.01)  # circles stay circles
    assert not fig.legend or not fig.legend[0].items  # its legend is drawn beside the arcs, not over them


def test_le_as_evaporation_with_the_towers_air_temperature(tab):
    from catalog import api

    site = api.sites("fluxnet_demo").iloc[0]
    tab.state.site = ("fluxnet_demo", site["site_id"])
    tab.wait()
    watts = tab.site._view
    assert tab.site.le_units.visible and tab.site.le_units.value == "W m-2"
    tab.site.le_units.value = "mm d-1"  # the tab's own switch sets the session's choice
    assert tab.state.le_units == "mm d-1"
    shown = tab.site._view
    obs = api.site_observations("fluxnet_demo", site["site_id"]).set_index("time")
    day = shown.obs["value"].dropna().index[5]
    le, ta = float(obs.loc[day, "LE"]), float(obs.loc[day, "TA"])
    hand = le * 86400 / ((2.501 - 0.002361 * ta) * 1e6)  # FAO-56 eq. 3-1 for lambda, in J kg-1
    assert shown.obs.loc[day, "value"] == pytest.approx(hand, rel=1e-9)
    assert 100 * 86400 / ((2.501 - 0.002361 * 20) * 1e6) == pytest.approx(3.5211, abs=1e-4)  # by hand
    p = shown.pairs["fluxes_demo"]
    assert p["pred"].loc[day] == pytest.approx(
        watts.pairs["fluxes_demo"]["pred"].loc[day] * 86400 / ((2.501 - 0.002361 * ta) * 1e6), rel=1e-9
    )  # the product at the site, converted with the same tower TA
    rmse_mm = float(shown.metrics.set_index("product").loc["fluxes_demo", "rmse"])
    assert rmse_mm == pytest.approx(np.sqrt(((p["pred"] - p["obs"]) ** 2).mean()), rel=1e-9)
    assert float(shown.metrics.set_index("product").loc["fluxes_demo", "r"]) != pytest.approx(1.0)
    assert "evaporation" in tab.site.series_plot.object.get(0).vdims[0].name
    assert "mm d-1" in tab.site.metrics_note.object
    assert "daily TA, 20 °C where missing" in tab.site.site_info.object  # lambda's temperature stated
    text = tab.site._series_csv().getvalue()
    assert "# units: mm d-1" in text and "# conversion: E = LE·86400/λ" in text
    frame = pd.read_csv(io.StringIO(text), comment="#", parse_dates=["time"]).set_index("time")
    assert frame.loc[day, "obs"] == pytest.approx(hand, rel=1e-5)
    tab.state.le_units = "W m-2"  # the map's switch moves this one back
    assert tab.site.le_units.value == "W m-2" and tab.site._view.obs.loc[day, "value"] == pytest.approx(le)
    tab.site.variable.value = "h"
    assert not tab.site.le_units.visible
