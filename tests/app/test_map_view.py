"""app.map_view.MapFigure in both projections: everything in and out is lon/lat, the tile layer
and mercator plot coordinates only inside the figure. Reference coordinates from pyproj."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from bokeh.events import SelectionGeometry, Tap
from bokeh.models import TileRenderer
from pyproj import Transformer

from app import map_view, styles
from catalog import settings

TO_MERC = Transformer.from_crs(4326, 3857, always_xy=True)
URL = "https://tiles.example.org/{Z}/{X}/{Y}.png"


def lonlat_image(west, east, south, north, res):
    lat = np.arange(north - res / 2, south, -res)
    lon = np.arange(west + res / 2, east, res)
    values = (lat[:, None] * 1000 + lon[None, :]).astype("float32")
    return xr.DataArray(values, coords={"lat": lat, "lon": lon}, dims=("lat", "lon"))


def test_tile_url_setting(monkeypatch):
    monkeypatch.delenv(settings.ENV_TILE_URL, raising=False)
    assert settings.tile_url() == "https://tile.openstreetmap.org/{Z}/{X}/{Y}.png"
    monkeypatch.setenv(settings.ENV_TILE_URL, URL)
    assert settings.tile_url() == URL
    monkeypatch.setenv(settings.ENV_TILE_URL, "")
    assert settings.tile_url() is None
    assert map_view.tile_attribution(settings.DEFAULT_TILE_URL) == "© OpenStreetMap contributors"
    assert map_view.tile_attribution(URL) == "Map tiles: tiles.example.org"


def test_basemap_switches_projection_and_keeps_lonlat_interface():
    taps, boxes, views = [], [], []
    m = map_view.MapFigure(
        width=400,
        height=200,
        on_view=lambda x, y: views.append((x, y)),
        on_tap=lambda lon, lat: taps.append((lon, lat)),
        on_box=lambda *b: boxes.append(b),
        tile_url=URL,
    )
    m.set_view((-100, -90), (35, 40))
    m.mark_pixel(-97.0, 38.0)
    m.mark_box((-99.0, 36.0, -96.0, 39.0))
    view = map_view.view_for_projection(*m.view(), 400, 200, mercator=True)
    m.set_basemap(True, view)
    tiles = [r for r in m.fig.renderers if isinstance(r, TileRenderer)]
    assert len(tiles) == 1 and tiles[0].tile_source.url == URL
    assert m.fig.renderers[0] is tiles[0]  # under the data
    # the plot ranges are mercator metres of the lon/lat view
    ex, ey = TO_MERC.transform([view[0][0], view[0][1]], [view[1][0], view[1][1]])
    np.testing.assert_allclose([m.x_range.start, m.x_range.end], ex, rtol=1e-9)
    np.testing.assert_allclose([m.y_range.start, m.y_range.end], ey, rtol=1e-9)
    np.testing.assert_allclose(np.ravel(m.view()), np.ravel(view), atol=1e-9)
    # square metres: the mercator view has the frame's aspect, centred on the old centre, same width
    assert (m.x_range.end - m.x_range.start) / (m.y_range.end - m.y_range.start) == pytest.approx(2.0)
    assert view[0] == pytest.approx((-100, -90))
    cy = TO_MERC.transform([0, 0], [35, 40])[1]
    assert (m.y_range.start + m.y_range.end) / 2 == pytest.approx(np.mean(cy))
    # markers and coastlines moved to mercator
    px, py = TO_MERC.transform(-97.0, 38.0)
    assert m.marker_source.data["x"][0] == pytest.approx(px) and m.marker_source.data["y"][
        0
    ] == pytest.approx(py)
    bx, by = TO_MERC.transform([-99.0, -96.0], [36.0, 39.0])
    assert m.box_source.data["left"][0] == pytest.approx(bx[0]) and m.box_source.data["top"][
        0
    ] == pytest.approx(by[1])
    xs, ys = m.coast.data_source.data["xs"], m.coast.data_source.data["ys"]
    lon0, lat0 = map_view.coastlines()[0][0], map_view.coastlines()[1][0]
    ex0, ey0 = TO_MERC.transform(lon0, lat0)
    np.testing.assert_allclose(xs[0], ex0, atol=1e-6)
    np.testing.assert_allclose(ys[0], ey0, atol=1e-6)
    # browser events arrive in mercator metres and leave in lon/lat
    tx, ty = TO_MERC.transform(-95.5, 37.25)
    m.fig._trigger_event(Tap(m.fig, x=tx, y=ty))
    assert taps[-1] == pytest.approx((-95.5, 37.25))
    gx, gy = TO_MERC.transform([-98.0, -94.0], [36.5, 38.5])
    geometry = {"type": "rect", "x0": gx[1], "x1": gx[0], "y0": gy[0], "y1": gy[1]}
    m.fig._trigger_event(SelectionGeometry(m.fig, geometry=geometry, final=True))
    assert boxes[-1] == pytest.approx((-98.0, 36.5, -94.0, 38.5))
    # back to plate carrée: no tiles, lon/lat ranges with square degrees, markers in degrees
    flat = map_view.view_for_projection(*m.view(), 400, 200, mercator=False)
    m.set_basemap(False, flat)
    assert not [r for r in m.fig.renderers if isinstance(r, TileRenderer)]
    assert (m.x_range.start, m.x_range.end) == pytest.approx(flat[0])
    assert (m.x_range.end - m.x_range.start) / (m.y_range.end - m.y_range.start) == pytest.approx(2.0)
    assert m.marker_source.data["x"] == [-97.0] and m.box_source.data["left"] == [-99.0]
    assert m.coast.data_source.data["xs"][0] == lon0
    m.fig._trigger_event(Tap(m.fig, x=-95.5, y=37.25))
    assert taps[-1] == (-95.5, 37.25)


def test_show_resamples_rows_onto_mercator_and_places_the_image():
    m = map_view.MapFigure(width=300, height=150, tile_url=URL)
    m.set_basemap(True, map_view.fit_view_mercator((-20, -60, 20, 70), 300, 150))
    (w, e), (s, n) = m.view()
    rows = m.render_rows()
    assert rows > 150  # the lat step near 70° N is finer than one screen row's worth of degrees
    img = lonlat_image(-20, 20, -70, 80, 0.5)
    m.show(img, clim=(0, 1), cmap="viridis", label="x", units="u")
    data = m.source.data
    shown = data["image"][0]
    assert shown.shape == (150, img.sizes["lon"])
    ex, _ = TO_MERC.transform([-20, 20], [0, 0])
    assert data["x"][0] == pytest.approx(ex[0]) and data["dw"][0] == pytest.approx(ex[1] - ex[0])
    assert data["y"][0] == pytest.approx(m.y_range.start) and data["dh"][0] == pytest.approx(
        m.y_range.end - m.y_range.start
    )
    # bottom image row (Bokeh starts at the bottom) = the lat row holding the lowest row's centre
    y_c = m.y_range.start + 0.5 * (m.y_range.end - m.y_range.start) / 150
    _, lat_c = Transformer.from_crs(3857, 4326, always_xy=True).transform(0.0, y_c)
    row = int(np.argmin(np.abs(img["lat"].values - lat_c)))
    np.testing.assert_array_equal(shown[0], img.values[row])
    assert ("lon", "$x{custom}") in m.hover.tooltips and "$x" in m.hover.formatters


def test_fit_view_mercator_stays_in_the_tile_world():
    (w, e), (s, n) = map_view.fit_view_mercator((-180, -90, 180, 90), 760, 380, margin=0)
    assert s >= -85.0512 and n <= 85.0512
    (w, e), (s, n) = map_view.fit_view_mercator((-105, 30, -85, 50), 760, 380)
    x, y = TO_MERC.transform([w, e], [s, n])
    assert (x[1] - x[0]) / (y[1] - y[0]) == pytest.approx(2.0)
    assert w <= -105 and e >= -85 and s <= 30 and n >= 50


def test_coastline_colour_follows_theme():
    light = map_view.MapFigure(width=100, height=50)
    dark = map_view.MapFigure(width=100, height=50, dark=True)
    assert light.coast.glyph.line_color == styles.coastline_colour(False)
    assert dark.coast.glyph.line_color == styles.coastline_colour(True)
    lum = [
        sum(int(c[i : i + 2], 16) for i in (1, 3, 5))
        for c in (styles.coastline_colour(False), styles.coastline_colour(True))
    ]
    assert lum[1] > 2 * lum[0]


def test_no_tile_url_means_no_basemap():
    m = map_view.MapFigure(width=100, height=50, tile_url=None)
    m.set_basemap(True)
    assert not m.mercator and not [r for r in m.fig.renderers if isinstance(r, TileRenderer)]
