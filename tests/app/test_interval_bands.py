"""Prediction-interval bands in the pixel series and the Validation site view: which variables bound
LE and H, the band's values (converted to mm d-1 exactly like LE), the CSV's bound columns, the stated
method, and the fraction of tower observations inside the band."""

from __future__ import annotations

import datetime as dt
import io

import holoviews as hv
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from app import compute, export
from app.series_panel import band_area, band_columns, interval_band
from tests.app.conftest import BAND_PERIOD, BAND_PRODUCT
from validation import bands


def _lambda(ta_c: float) -> float:
    """λ (J kg-1) by hand: (2.501 − 0.002361·T) MJ kg-1 (FAO-56 Annex 3 eq. 3-1)."""
    return (2.501 - 0.002361 * ta_c) * 1e6


def _meta() -> dict:
    from models import intervals

    return {
        "intervals": {
            "level": intervals.LEVEL,
            "bounds": list(intervals.bound_names()),
            "method": intervals.METHOD,
            "calibration_split": "cluster",
        }
    }


def test_bound_variables_are_the_ones_predictions_write():
    from models import intervals, predict

    written = list(predict.interval_attrs(_meta()))
    lo, hi = intervals.bound_names()
    variables = ["le", "h", "ef", *written]
    assert bands.bound_variables(variables, "le") == (f"le_{lo}", f"le_{hi}")
    assert bands.bound_variables(variables, "h") == (f"h_{lo}", f"h_{hi}")
    assert bands.bound_variables(variables, "ef") is None  # no band for EF
    assert bands.bound_variables(variables, f"le_{lo}") is None  # a bound chosen itself: nothing special
    assert bands.bound_variables(["le", "le_q05"], "le") is None  # no upper bound, no band
    assert bands.bound_variables(["le", "le_q25", "le_q75", "le_q05", "le_q95"], "le") == ("le_q05", "le_q95")


def test_band_description_is_what_the_product_stores():
    from models import predict

    attrs = predict.interval_attrs(_meta())["le_q05"]
    provenance = {"model_version": "v7", "intervals": {"calibration_split": "cluster",
                                                       "calibrated_on_a_source": "a_model"}}  # fmt: skip
    text = bands.describe("LE/H emulator v7", "le_q05", "le_q95", attrs, provenance)
    assert text.startswith("Shaded: the 90 % prediction interval of LE/H emulator v7 (le_q05 … le_q95)")
    assert "split-conformal quantiles" in text and "leave-cluster-out CV" in text and "of model v7" in text
    # the split is read from the method when the provenance lacks it; nothing invented without either
    assert "leave-cluster-out" in bands.describe("p", "le_q05", "le_q95", attrs, {})
    bare = bands.describe("p", "le_q05", "le_q95", {}, {})
    assert "method not recorded" in bare and "calibrated" not in bare and "90 %" in bare


def test_coverage_counts_finite_steps_only():
    obs = [1.0, np.nan, 5.0, 3.0, 10.0, -1.0]
    lower = [0.0, 0.0, 0.0, np.nan, 0.0, 0.0]
    upper = [2.0, 2.0, 4.0, 4.0, 10.0, 2.0]
    # steps 0, 2, 4, 5 count; 1 (no observation) and 3 (no lower bound) do not; 10 on the bound is inside
    assert bands.coverage(obs, lower, upper) == (2, 4)
    assert bands.coverage([np.nan], [0.0], [1.0]) == (0, 0)
    assert bands.coverage_text(2, 4, 0.9) == "Tower observations inside the 90 % band: 2 / 4 (50 %)."
    assert "No tower observation" in bands.coverage_text(0, 0, 0.9)


def _pixel(le, lo, hi) -> xr.Dataset:
    time = pd.date_range("2018-06-03", periods=len(le))
    attrs = {"units": "W m-2", "interval_level": 0.9}
    return xr.Dataset(
        {v: ("time", np.asarray(x, dtype="float32"), attrs) for v, x in (("le", le), ("le_q05", lo),
                                                                         ("le_q95", hi))},
        coords={"time": time},
    )  # fmt: skip


def test_bounds_in_mm_per_day_are_converted_like_le_by_hand():
    ds = _pixel([50.0, 50.0], [40.0, -10.0], [100.0, 80.0])
    ta = np.array([10.0, np.nan])  # the second day without a temperature: 20 °C
    band = interval_band(ds, ("le_q05", "le_q95"), "le", "mm d-1", ta)
    assert band["level"] == 0.9 and band["names"] == ("le_q05", "le_q95")
    np.testing.assert_allclose(band["lower"].values, [40 * 86400 / _lambda(10), -10 * 86400 / _lambda(20)])
    np.testing.assert_allclose(band["upper"].values, [100 * 86400 / _lambda(10), 80 * 86400 / _lambda(20)])
    assert band["lower"].attrs["units"] == "mm d-1"
    same = interval_band(ds, ("le_q05", "le_q95"), "le", "W m-2", ta)
    np.testing.assert_array_equal(same["upper"].values, ds["le_q95"].values)


def test_pixel_csv_has_the_bound_columns():
    ds = _pixel([50.0, 60.0], [40.0, 45.0], [100.0, 80.0])
    band = interval_band(ds, ("le_q05", "le_q95"), "le", "W m-2", None)
    other = xr.DataArray([30.0, 31.0], coords={"time": ds["time"].values}, dims="time", name="le")
    series = {"emu": ds["le"], "fluxes": other}
    table = compute.series_table(series, {"emu": "W m-2", "fluxes": "W m-2"}, 0.0, 0.0,
                                 bounds=band_columns({"emu": band}))  # fmt: skip
    back = pd.read_csv(io.BytesIO(export.csv_bytes(table)), comment="#")
    assert {"le_q05", "le_q95"} <= set(back.columns)
    emu, fluxes = back[back["product"] == "emu"], back[back["product"] == "fluxes"]
    np.testing.assert_allclose(emu["le_q05"], [40.0, 45.0])
    np.testing.assert_allclose(emu["le_q95"], [100.0, 80.0])
    assert fluxes["le_q05"].isna().all() and fluxes["le_q95"].isna().all()
    plain = compute.series_table({"fluxes": other}, {"fluxes": "W m-2"}, 0.0, 0.0)
    assert "le_q05" not in plain.columns


def test_band_renders_as_an_area_between_the_bounds():
    hv.extension("bokeh", logo=False)
    ds = _pixel([50.0, 60.0, 55.0], [40.0, 45.0, 41.0], [100.0, 80.0, 90.0])
    band = interval_band(ds, ("le_q05", "le_q95"), "le", "W m-2", None)
    area = band_area(pd.to_datetime(ds["time"].values), band, "le (W m-2)", "emu", "#d62728")
    assert area.label == "emu 90 % interval"
    fig = hv.render(area * hv.Curve((ds["time"].values, ds["le"].values), "time", "le (W m-2)"))
    patches = [r for r in fig.renderers if type(r.glyph).__name__ == "Patch"]  # HoloViews draws an Area so
    assert len(patches) == 1
    y = np.asarray(patches[0].data_source.data["y"], dtype=float)  # the upper bound, then the lower back
    np.testing.assert_allclose(y[:3], [100.0, 80.0, 90.0])
    np.testing.assert_allclose(y[3:][::-1], [40.0, 45.0, 41.0])


def _site_view(bands_frame: pd.DataFrame):
    from validation.config import ValidationOptions
    from validation.site_view import SiteView

    idx = bands_frame.index
    obs = pd.DataFrame({"value": bands_frame["obs"], "qc_pass": True}, index=idx)
    pred = (bands_frame["lower"] + bands_frame["upper"]) / 2
    pairs = pd.DataFrame({"obs": bands_frame["obs"], "pred": pred}, index=idx).dropna()
    return SiteView(
        network="net", site={"site_id": "X", "lon": 0.0, "lat": 0.0}, variable="le",
        options=ValidationOptions.from_config(), obs_column="LE", obs=obs, preds={"emu": pred},
        pixels={"emu": {"time_step": "day"}}, pairs={"emu": pairs},
        metrics=pd.DataFrame([{"product": "emu", "n": len(pairs)}]), closure=None, closure_points=None,
        bands={"emu": bands_frame}, band_notes={"emu": "Shaded: a band."}, band_levels={"emu": 0.9},
    )  # fmt: skip


def test_site_band_in_mm_per_day_and_its_coverage():
    from app.validation_site_panel import SiteData, band_lines, in_units
    from validation.site_view import band_coverage

    idx = pd.date_range("2018-06-01", periods=5)
    frame = pd.DataFrame(
        {"lower": [10.0, 10.0, np.nan, 10.0, 10.0], "upper": [50.0, 50.0, 50.0, 50.0, 50.0],
         "obs": [20.0, 60.0, 30.0, np.nan, 50.0]}, index=idx,
    )  # fmt: skip
    view = _site_view(frame)
    assert band_coverage(view, "emu") == (2, 3)  # day 3 has no lower bound, day 4 no observation
    ta = pd.Series([10.0, 10.0, 10.0, 10.0, np.nan], index=idx)
    shown = in_units(SiteData(view, ta), "mm d-1")
    np.testing.assert_allclose(shown.bands["emu"]["upper"].iloc[0], 50 * 86400 / _lambda(10))
    np.testing.assert_allclose(shown.bands["emu"]["obs"].iloc[4], 50 * 86400 / _lambda(20))
    assert band_coverage(shown, "emu") == (2, 3)  # the same days inside, in either unit
    assert band_lines(shown) == ["Shaded: a band. Tower observations inside the 90 % band: 2 / 3 (67 %)."]


# --- on a real re-prediction (the band world: the demo's emulator and its product with bounds) ----


@pytest.fixture
def band_catalog(band_world, monkeypatch, tmp_path):
    from app import data

    monkeypatch.setenv("FLUXLENS_DATA_DIR", str(band_world["data_dir"]))
    monkeypatch.setenv("FLUXLENS_VALIDATION_CACHE", str(tmp_path / "cache"))
    data.view_data().forget_products()
    return band_world


def _store(band_world) -> xr.Dataset:
    from tests.stores import level_path

    return xr.open_zarr(level_path(band_world["data_dir"], BAND_PRODUCT), consolidated=False)


def test_pixel_series_draws_the_products_band(band_catalog):
    hv.extension("bokeh", logo=False)
    from app.series_panel import SeriesPanel
    from app.state import AppState

    store = _store(band_catalog).sel(lon=-97.0, lat=39.0)  # the 2° cell holding US-D01
    state = AppState(product=BAND_PRODUCT, variable="le", pixel=(-97.4, 38.0), date=dt.date(2018, 6, 4))
    panel = SeriesPanel(state)
    areas = [el for el in panel.pixel_plot.object if isinstance(el, hv.Area)]
    assert [a.label for a in areas] == [f"{BAND_PRODUCT} 90 % interval"]
    lower, upper = areas[0].dimension_values(1), areas[0].dimension_values(2)
    np.testing.assert_allclose(lower, store["le_q05"].values, rtol=1e-6)
    np.testing.assert_allclose(upper, store["le_q95"].values, rtol=1e-6)
    assert np.isfinite(lower).all() and (lower <= upper).all()
    note = panel.band_note.object
    assert panel.band_note.visible and "90 % prediction interval" in note and band_catalog["version"] in note
    assert "split-conformal" in note and "leave-cluster-out" in note
    table = panel._pixel_table
    emu = table[table["product"] == BAND_PRODUCT]
    np.testing.assert_allclose(emu["le_q95"], store["le_q95"].values, rtol=1e-6)
    assert table[table["product"] != BAND_PRODUCT]["le_q05"].isna().all()

    state.le_units = "mm d-1"  # the bounds follow LE: same λ(T) as the curve on every day
    area = next(el for el in panel.pixel_plot.object if isinstance(el, hv.Area))
    emu = panel._pixel_table[panel._pixel_table["product"] == BAND_PRODUCT]
    factor = emu["value"].to_numpy() / store["le"].values
    np.testing.assert_allclose(area.dimension_values(2), store["le_q95"].values * factor, rtol=1e-5)
    np.testing.assert_allclose(factor, 86400 / _lambda_of(emu["lambda_ta_degC"].to_numpy()), rtol=1e-5)

    state.variable = "le_q95"  # a bound chosen itself: a plain curve
    assert not any(isinstance(el, hv.Area) for el in panel.pixel_plot.object)
    assert not panel.band_note.visible
    state.variable = "ef"
    assert not any(isinstance(el, hv.Area) for el in panel.pixel_plot.object)


def _lambda_of(ta):
    return (2.501 - 0.002361 * np.asarray(ta)) * 1e6


def test_site_view_band_and_coverage_at_a_tower(band_catalog):
    hv.extension("bokeh", logo=False)
    from app.state import AppState
    from app.validation_site_panel import SiteValidation

    state = AppState(product=BAND_PRODUCT, variable="le")
    site = SiteValidation(state)
    state.site = ("fluxnet_demo", "US-D01")
    site.wait()
    view = site._view
    assert BAND_PRODUCT in view.bands and "fluxes_demo" not in view.bands
    store = _store(band_catalog).sel(lon=-97.0, lat=39.0)
    b = view.bands[BAND_PRODUCT]
    assert list(b.index.strftime("%Y-%m-%d")) == list(pd.date_range(*BAND_PERIOD).strftime("%Y-%m-%d"))
    np.testing.assert_allclose(b["lower"], store["le_q05"].values, rtol=1e-6)
    obs = view.pairs[BAND_PRODUCT]["obs"]
    assert len(obs) == 3  # the tower has a QC-passed day on each day of the product
    lo, hi = (store[v].to_series().reindex(obs.index).to_numpy() for v in ("le_q05", "le_q95"))
    inside = int(((obs.to_numpy() >= lo) & (obs.to_numpy() <= hi)).sum())
    assert f"Tower observations inside the 90 % band: {inside} / 3" in site.band_note.object
    areas = [el for el in site.series_plot.object if isinstance(el, hv.Area)]
    assert [a.label for a in areas] == [f"{BAND_PRODUCT} 90 % interval"]
    state.le_units = "mm d-1"
    area = next(el for el in site.series_plot.object if isinstance(el, hv.Area))
    assert area.dimension_values(2).max() < 10  # mm d-1, not W m-2
    assert f"inside the 90 % band: {inside} / 3" in site.band_note.object


def test_colour_bar_label_of_a_bound_keeps_its_units():
    from types import SimpleNamespace

    from app import styles
    from models import predict

    attrs = predict.interval_attrs(_meta())
    info = SimpleNamespace(variables={**predict.OUTPUT_ATTRS, **attrs})
    assert styles.label("le_q95", info) == "latent heat flux, upper bound [le_q95] (W m-2)"
    assert len(styles.label("h_q05", info)) <= styles.LABEL_MAX
    assert styles.label("le", info) == "latent heat flux (emulated, positive upward) [le] (W m-2)"  # whole
