"""The map tab's basemap toggle on the small demo world, without a browser: the app state stays in
lon/lat whichever projection the figure uses, and an empty tile setting hides the toggle."""

from __future__ import annotations

import numpy as np
import pytest
from bokeh.models import TileRenderer
from pyproj import Transformer

from app import data, map_panel
from app.state import AppState
from catalog import settings

TO_MERC = Transformer.from_crs(4326, 3857, always_xy=True)


@pytest.fixture
def demo(demo_world, monkeypatch):
    monkeypatch.setenv("FLUXLENS_DATA_DIR", str(demo_world))
    data.view_data().forget_products()
    return demo_world


def _tiles(tab) -> list:
    return [r for r in tab.map.fig.renderers if isinstance(r, TileRenderer)]


def test_basemap_toggle_keeps_state_in_lonlat(demo, monkeypatch):
    monkeypatch.delenv(settings.ENV_TILE_URL, raising=False)
    state = AppState(product="ssm_global_demo", variable="ssm", x_range=(-110.0, -90.0), y_range=(30.0, 40.0))
    tab = map_panel.MapTab(state)
    assert tab.basemap.visible and not tab.basemap.value and not _tiles(tab)
    flat_image = tab._last["image"]
    assert flat_image.shape == (map_panel.MAP_HEIGHT, map_panel.MAP_WIDTH)

    tab.basemap.value = True
    (tiles,) = _tiles(tab)
    assert tiles.tile_source.url == settings.DEFAULT_TILE_URL
    assert tiles.tile_source.attribution == "© OpenStreetMap contributors"
    assert tab.method_note.visible and "Web Mercator" in tab.status.object
    # state: lon/lat, same longitudes, latitudes giving square metres at the frame's aspect
    assert state.x_range == pytest.approx((-110.0, -90.0))
    x, y = TO_MERC.transform(state.x_range, state.y_range)
    assert (x[1] - x[0]) / (y[1] - y[0]) == pytest.approx(map_panel.MAP_WIDTH / map_panel.MAP_HEIGHT)
    np.testing.assert_allclose([tab.map.x_range.start, tab.map.x_range.end], x, rtol=1e-9)
    np.testing.assert_allclose([tab.map.y_range.start, tab.map.y_range.end], y, rtol=1e-9)
    # the drawn image: rendered in lon/lat at more rows, shown on the screen's mercator rows
    rows = tab._last["image"].sizes["lat"]
    assert rows > map_panel.MAP_HEIGHT
    shown = tab.map.source.data["image"][0]
    assert shown.shape == (map_panel.MAP_HEIGHT, map_panel.MAP_WIDTH) and np.isfinite(shown).mean() > 0.9

    # "Box = visible region" in mercator hands out the lon/lat view
    tab.box_from_view.clicks += 1
    assert state.box == pytest.approx(
        (state.x_range[0], state.y_range[0], state.x_range[1], state.y_range[1])
    )

    tab.basemap.value = False
    assert not _tiles(tab) and not tab.method_note.visible
    assert state.x_range == pytest.approx((-110.0, -90.0))
    assert (state.y_range[1] - state.y_range[0]) * 2 == pytest.approx(20.0)
    assert (tab.map.x_range.start, tab.map.x_range.end) == pytest.approx(state.x_range)


def test_empty_tile_setting_hides_the_toggle(demo, monkeypatch):
    monkeypatch.setenv(settings.ENV_TILE_URL, "")
    tab = map_panel.MapTab(AppState(product="ssm_global_demo", variable="ssm"))
    assert not tab.basemap.visible
    tab.basemap.value = True
    assert not tab.map.mercator and not _tiles(tab)


def test_basemap_from_state(demo, monkeypatch):
    """A permalink with basemap=1 opens the map in Web Mercator at the linked longitudes; a switch made
    on another tab is applied when the map tab is shown again, as if made there."""
    monkeypatch.delenv(settings.ENV_TILE_URL, raising=False)
    view = dict(x_range=(-110.0, -90.0), y_range=(30.0, 40.0))
    state = AppState(product="ssm_global_demo", variable="ssm", basemap=True, **view)
    tab = map_panel.MapTab(state)
    assert tab.map.mercator and tab.basemap.value and len(_tiles(tab)) == 1
    # same longitudes, latitudes refitted to the frame (square metres), as when switched by hand
    assert state.x_range == view["x_range"]
    x, y = TO_MERC.transform(state.x_range, state.y_range)
    assert (x[1] - x[0]) / (y[1] - y[0]) == pytest.approx(map_panel.MAP_WIDTH / map_panel.MAP_HEIGHT)
    view = dict(x_range=state.x_range, y_range=state.y_range)

    state.tab = "Compare"
    state.basemap = False  # switched off on another tab: applied when the map is shown again
    assert tab.map.mercator and not tab.basemap.value
    state.tab = "Map"
    assert not tab.map.mercator and not _tiles(tab)
    assert state.x_range == view["x_range"]
    assert (state.x_range[1] - state.x_range[0]) / (state.y_range[1] - state.y_range[0]) == pytest.approx(
        map_panel.MAP_WIDTH / map_panel.MAP_HEIGHT
    )


def test_parts_below_the_map_come_after_the_page_has_loaded(demo, monkeypatch):
    """In a served page the tab first holds the map and its controls; the export rows, the product
    card and the series are put in by the page's onload callbacks (at once outside a served page)."""
    import panel as pn
    from bokeh.document import Document

    monkeypatch.delenv(settings.ENV_TILE_URL, raising=False)
    state = AppState(product="ssm_global_demo", variable="ssm")
    tab = map_panel.MapTab(state)
    assert tab.series.pixel_plot in tab.panel().select()  # no session: everything at once

    doc = Document()
    pn.state.curdoc = doc
    pn.state._loaded[doc] = False
    try:
        view = tab.panel()
        assert tab.series.pixel_plot not in view.select() and tab.png not in view.select()
        assert tab.map_pane in view.select()
        for callback, _threaded in pn.state._onload.pop(doc):
            callback()
        assert {tab.series.pixel_plot, tab.png, tab.info_box.card} <= set(view.select())
    finally:
        pn.state._loaded.pop(doc, None)
        pn.state._onload.pop(doc, None)
        pn.state.curdoc = None


def test_pages_come_without_the_webgl_bundle():
    from bokeh.resources import Resources
    from panel.io import server

    from app import dashboard

    dashboard._load_extensions()
    dashboard._without_webgl()  # twice: wrapped once
    bundle = server.bundle_resources(
        [], Resources(mode="server", root_url="/", components=["bokeh", "bokeh-gl", "bokeh-widgets"])
    )
    files = " ".join(str(f) for f in bundle.js_files)
    assert "bokeh-widgets" in files and "bokeh-gl" not in files
