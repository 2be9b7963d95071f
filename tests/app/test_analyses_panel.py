"""The Analyses tab driven without a browser, on the monthly flux world of eight real FLUXNET2015
towers (:mod:`tests.validation.flux_world`): the scorecard and the Giovanni-style analyses are
submitted as jobs, a real worker (in this process) computes them, the views draw the cached results."""

from __future__ import annotations

import html
import io
import json

import holoviews as hv
import numpy as np
import pandas as pd
import pytest

from tests.validation import flux_world

BOX = {"type": "Polygon", "coordinates": [[[-125, 30], [-90, 30], [-90, 45], [-125, 45], [-125, 30]]]}


@pytest.fixture(scope="module")
def world(shared_data, tmp_path_factory):
    root = tmp_path_factory.mktemp("analyses-panel")
    mp = pytest.MonkeyPatch()
    mp.setenv("FLUXLENS_DATA_DIR", str(root / "data"))
    (root / "data").mkdir()
    built = flux_world.build(shared_data)
    yield {"root": root, **built}
    mp.undo()


@pytest.fixture
def tab(world, tmp_path, monkeypatch):
    monkeypatch.setenv("FLUXLENS_VALIDATION_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("FLUXLENS_JOBS_DB", str(tmp_path / "jobs.sqlite"))
    hv.extension("bokeh", logo=False)
    from app.analyses_panel import AnalysesTab
    from app.state import AppState

    return AnalysesTab(AppState())


def _plain(markdown: str) -> str:
    """A status line as read on the page: Markdown and HTML escapes taken out."""
    return html.unescape(markdown.replace("\\", ""))


def _work() -> int:
    from models.jobs import JobStore
    from models.worker import Worker

    return Worker(JobStore()).run(once=True)


def test_scorecard_products_by_variables_with_a_polygon_region(tab):
    from tests.validation.test_scorecard import parse_html
    from validation import export, scorecard

    view = tab.scorecard
    assert view.reference.value == "fluxnet_mm"
    view.variables.value = ["le", "h", "g"]
    assert view.products.options == ["le_monthly", "le_monthly_b"]
    view.products.value = ["le_monthly", "le_monthly_b"]
    view.regions.value = "Germany"
    view.polygon.param.update(value=json.dumps(BOX).encode(), filename="west & co.geojson")
    view.submit()
    assert view.follow.job_id is not None and "queued, waiting for a worker" in view.status.object
    assert view.run.disabled
    assert _work() == 1
    view.wait()
    assert not view.run.disabled and view.cards is not None
    status = _plain(view.status.object)  # Markdown escapes taken out
    assert "g: no scorecard (none of le_monthly, le_monthly_b holds g)" in status
    assert "Synthetic products: le_monthly, le_monthly_b" in status
    page = view.table.object
    parsed = parse_html(page)
    rows = sum(len(c.table) for c in view.cards.cards.values())
    assert len(parsed.scores) == rows * len(scorecard.SCORE_NAMES)
    assert "west &amp; co" in page and "Germany" in page
    table = view.cards.cards["le"].table.set_index(["product", "region"])
    assert table.loc[("le_monthly", "west & co"), "n_locations"] == 2  # US-ARM and US-Blo
    absolute = page
    view.colouring.value = "relative"
    assert view.table.object != absolute
    assert f'data-overview="le" style="background:{export.relative_colour(-1.0)}"' in view.table.object
    csv_text = view._csv().getvalue()
    back = pd.read_csv(io.StringIO(csv_text), comment="#")
    assert set(back["variable"]) == {"le", "h"} and len(back) == rows
    assert view._html().getvalue().startswith("<!DOCTYPE html>")
    # the same request again: from the cache, no job
    view.submit()
    assert view.follow.job_id is None and "(from cache)" in view.status.object


def test_scorecard_bad_polygon_is_stated_and_queues_nothing(tab):
    from models.jobs import JobStore

    view = tab.scorecard
    view.polygon.param.update(value=b"{not json", filename="bad.geojson")
    view.submit()
    assert view.status.object.startswith("Not started:") and "polygon 'bad'" in _plain(view.status.object)
    assert JobStore().jobs() == []


def test_hovmoller_from_a_job_equals_the_stored_cube(tab, world):
    view = tab.gridded
    view.analysis.value = "hovmoller_lat"
    view.product.value = "le_monthly"
    view.variable.value = "le"
    view.bbox.value = "-20,30,40,60"
    view.start.value, view.end.value = "2003-01-01", "2003-12-31"
    view.submit()
    assert view.follow.job_id is not None
    assert _work() == 1
    view.wait()
    mesh = view.plot.object
    assert isinstance(mesh, hv.QuadMesh)
    cube = world["cubes"]["le"]
    t = (flux_world.MONTHS >= "2003-01-01") & (flux_world.MONTHS <= "2003-12-31")
    rows = (flux_world.LAT >= 30) & (flux_world.LAT <= 60)
    cols = (flux_world.LON >= -20) & (flux_world.LON <= 40)
    want = cube[t][:, rows][:, :, cols].astype("float64").mean(axis=2)  # time × lat, lat descending
    got = mesh.dimension_values(2, flat=False)  # lat ascending × time
    np.testing.assert_allclose(got, want[:, ::-1].T, rtol=1e-6)
    assert (
        "Hovmöller, time × latitude: le_monthly le, lon -20…40, lat 30…60, 2003-01-01…2003-12-31"
        in (mesh.opts.get().kwargs["title"])
    )
    assert view.netcdf.filename == "hovmoller_lat_le_monthly_le.nc" and not view.netcdf.disabled


def test_climatology_steps_and_correlation_map(tab, world):
    view = tab.gridded
    view.product.value = "le_monthly"
    view.analysis.value = "climatology"
    view.bbox.value = "-20,30,40,60"
    view.submit()
    _work()
    view.wait()
    assert view.step.visible and view.step.options == list(("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul",
                                                             "Aug", "Sep", "Oct", "Nov", "Dec"))  # fmt: skip
    view.step.value = "Jul"
    assert "Climatology Jul: le_monthly le, lon -20…40, lat 30…60" in hv.render(view.plot.object).title.text
    july = view.result["le"].sel(month=7).values
    cube = world["cubes"]["le"].astype("float64")
    rows = (flux_world.LAT >= 30) & (flux_world.LAT <= 60)
    cols = (flux_world.LON >= -20) & (flux_world.LON <= 40)
    want = cube[flux_world.MONTHS.month == 7][:, rows][:, :, cols].mean(axis=0)
    np.testing.assert_allclose(july, want, rtol=1e-6)

    view.analysis.value = "correlation"
    assert view.product_b.visible and view.variable_b.visible
    view.product_b.value = "le_monthly_b"
    view.bbox.value = "0,40,30,70"
    view.submit()
    _work()
    view.wait()
    assert not view.step.visible
    r = view.result["r"]
    i, j = world["pixels"]["DE-Tha"]  # a = 1: the tower pixel of le_monthly is le_monthly_b + 8 W m-2
    lat, lon = flux_world.LAT[i], flux_world.LON[j]
    assert float(r.sel(lat=lat, lon=lon)) == pytest.approx(1.0, abs=1e-6)
    assert float(r.sel(lat=flux_world.LAT[i - 1], lon=lon)) == pytest.approx(1.0, abs=1e-6)  # same field
    assert "Correlation with le_monthly_b" in hv.render(view.plot.object).title.text


def test_polygon_series_and_a_bad_upload(tab):
    from catalog import api
    from validation import regions

    view = tab.gridded
    view.analysis.value = "region_series"
    assert view.polygon.visible and view.region.visible and not view.bbox.visible
    view.product.value = "le_monthly"
    view.polygon.param.update(value=json.dumps(BOX).encode(), filename="west.geojson")
    view.submit()
    _work()
    view.wait()
    assert isinstance(view.plot.object, hv.Curve)
    want = regions.polygon_mean(api.open_product("le_monthly")["le"], regions.read_geojson(BOX)).values
    np.testing.assert_allclose(view.result["le"].values, want, rtol=1e-6)
    assert "polygon west" in _plain(view.status.object)
    head = [line for line in view._csv().getvalue().splitlines() if line.startswith("# ")]
    assert "# units: W m-2" in head and any(line.startswith("# formula:") for line in head)
    view.polygon.param.update(value=b"\xff\xfe", filename="binary.geojson")
    view.submit()
    assert "not UTF-8 text" in view.status.object and view.follow.job_id is None
