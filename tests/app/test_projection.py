"""The Map tab's Equal Earth globe on the small demo world, without a browser: projected coordinates
go back to lon/lat, the value the hover shows at a point is the lon/lat map's value at the same
lon/lat, clicks select the lon/lat pixel. Reference coordinates from pyproj (EPSG:8857)."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from bokeh.events import Tap
from pyproj import Transformer

from app import data, map_panel, projection
from app.state import AppState

TO_EQEARTH = Transformer.from_crs(4326, 8857, always_xy=True)
W, H = map_panel.MAP_WIDTH, map_panel.MAP_HEIGHT
# lon/lat points: the tropics, both sides of the dateline, high latitudes north and south
POINTS = [
    (-99.0, 35.0),
    (20.3, 2.1),
    (179.6, 66.9),
    (-179.4, 67.2),
    (178.2, -17.9),
    (100.4, 77.8),
    (-45.7, 82.3),
    (60.1, -84.6),
    (-120.8, 58.4),
    (15.2, 78.6),
]


@pytest.fixture
def demo(demo_world, monkeypatch):
    monkeypatch.setenv("FLUXLENS_DATA_DIR", str(demo_world))
    data.view_data().forget_products()
    return demo_world


def test_inverse_projection_returns_the_lonlat():
    lon = np.array([p[0] for p in POINTS] + [0.0, 180.0, -180.0, 179.999999, 33.0, -150.0])
    lat = np.array([p[1] for p in POINTS] + [0.0, 0.0, 45.0, -60.0, 89.99, -89.99])
    x, y = projection.to_projected(lon, lat)
    ex, ey = TO_EQEARTH.transform(lon, lat)
    np.testing.assert_allclose(x, ex, atol=1e-6)
    np.testing.assert_allclose(y, ey, atol=1e-6)
    back_lon, back_lat = projection.to_lonlat(x, y)
    np.testing.assert_allclose(back_lon, lon, atol=1e-6)
    np.testing.assert_allclose(back_lat, lat, atol=1e-6)
    # off the globe: beyond the ±180° meridians, above the pole line, far out
    hx, hy = projection.world_half_extent()
    off_x, off_y = [hx * 1.01, -hx * 0.99, 0.0, 3e7], [0.0, hy * 0.9, hy * 1.01, 0.0]
    off_lon, off_lat = projection.to_lonlat(off_x, off_y)
    assert np.isnan(off_lon).all() and np.isnan(off_lat).all()


def test_pixel_table_is_the_inverse_of_the_pixel_centres():
    x_range, y_range = projection.fit_world(W, H)
    lon, lat = projection.pixel_lonlat(x_range, y_range, W, H)
    x, y = projection.pixel_centres(x_range, y_range, W, H)
    gx, gy = np.meshgrid(x, y)
    on = np.isfinite(lon)
    assert 0.7 < on.mean() < 0.95  # the globe fills most of the frame, the corners are off it
    px, py = TO_EQEARTH.transform(lon[on], lat[on])
    np.testing.assert_allclose(px, gx[on], atol=1e-3)
    np.testing.assert_allclose(py, gy[on], atol=1e-3)
    # the frame's corners and the pixels beyond the globe's edge on the equator are off it
    assert not on[0, 0] and not on[-1, -1] and not on[H // 2, 0] and on[H // 2, W // 2]


def test_block_mean_of_fine_cells():
    lat = np.arange(9.95, 0, -0.1)
    lon = np.arange(0.05, 10, 0.1)
    values = np.arange(lat.size * lon.size, dtype="float32").reshape(lat.size, lon.size)
    values[0, 0] = np.nan
    field = xr.DataArray(values, coords={"lat": lat, "lon": lon}, dims=("lat", "lon"))
    out = projection.block_mean(field, 0.45)  # 4 × 4 cells a block
    assert out.shape == (25, 25) and out.attrs["res_lon"] == pytest.approx(0.4)
    assert float(out[0, 0]) == pytest.approx(np.nanmean(values[:4, :4]))
    assert float(out["lon"][0]) == pytest.approx(0.2) and float(out["lat"][0]) == pytest.approx(9.8)
    assert projection.block_mean(field, 0.15) is field


def _hover(tab, lon, lat) -> tuple[float, float, float, tuple]:
    """What the hover shows with the mouse on the pixel centre nearest (lon, lat) on the globe: its lon/lat
    (the figure's inverse projection) and the shown image's value there."""
    fig = tab.projected
    (x0, x1), (y0, y1) = fig.world
    x, y = TO_EQEARTH.transform(lon, lat)
    col, row = int((x - x0) / (x1 - x0) * W), int((y1 - y) / (y1 - y0) * H)
    cx, cy = projection.pixel_centres(fig.world[0], fig.world[1], W, H)
    hover_lon, hover_lat = projection.to_lonlat(cx[col], cy[row])
    while not np.isfinite(hover_lon):  # a point at the globe's edge: the nearest pixel centre on it
        col += 1 if x < 0 else -1
        hover_lon, hover_lat = projection.to_lonlat(cx[col], cy[row])
    shown = fig.source.data["image"][0][::-1]  # Bokeh's image rows start at the bottom
    return float(hover_lon), float(hover_lat), float(shown[row, col]), (cx[col], cy[row])


def _lonlat_map_value(lon, lat) -> tuple[float, int]:
    """The lon/lat map's value at (lon, lat): a view 2° wide made so that (lon, lat) is the centre of
    a screen pixel; and the pyramid level drawn."""
    px = 2.0 / W
    x0 = lon - (W // 2 + 0.5) * px
    y0 = lat - (H // 2 + 0.5) * px
    state = AppState(
        product="ssm_global_demo", variable="ssm", x_range=(x0, x0 + W * px), y_range=(y0, y0 + H * px)
    )
    tab = map_panel.MapTab(state)
    image = tab._last["image"]
    assert float(image["lon"][W // 2]) == pytest.approx(lon) and float(image["lat"][H - 1 - H // 2]) == (
        pytest.approx(lat)
    )
    level = int(tab.status.object.split("pyramid level ")[1].split()[0])
    return float(image.values[H - 1 - H // 2, W // 2]), level


def test_hover_value_equals_the_lonlat_map_value(demo):
    state = AppState(product="ssm_global_demo", variable="ssm", projection="equal_earth")
    tab = map_panel.MapTab(state)
    assert tab.projected_pane.visible and not tab.map_pane.visible
    assert "Equal Earth" in tab.status.object and tab.method_note.visible
    projected_level = int(tab.status.object.split("pyramid level ")[1].split()[0])
    finite = 0
    for lon, lat in POINTS:
        hover_lon, hover_lat, value, _ = _hover(tab, lon, lat)
        assert abs(hover_lon - lon) < 2 and abs(hover_lat - lat) < 2, (lon, lat, hover_lon, hover_lat)
        expect, level = _lonlat_map_value(hover_lon, hover_lat)
        assert level == projected_level
        if np.isnan(expect):
            assert np.isnan(value), (lon, lat)
        else:
            assert value == expect, (lon, lat, hover_lon, hover_lat)
            finite += 1
    assert finite >= 6
    # colour mapping and colour bar as on the lon/lat map
    flat = map_panel.MapTab(AppState(product="ssm_global_demo", variable="ssm"))
    for attr in ("low", "high", "palette"):
        assert getattr(tab.projected.mapper, attr) == getattr(flat.map.mapper, attr)
    assert tab.projected.colorbar.title == flat.map.colorbar.title
    assert tab.projected.hover.tooltips[2] == flat.map.hover.tooltips[2]


def test_click_on_the_globe_selects_the_lonlat_pixel(demo):
    state = AppState(product="ssm_global_demo", variable="ssm", projection="equal_earth")
    tab = map_panel.MapTab(state)
    fig = tab.projected.fig
    for lon, lat in [(-179.4, 67.2), (100.4, 77.8)]:
        x, y = TO_EQEARTH.transform(lon, lat)
        fig._trigger_event(Tap(fig, x=x, y=y))
        assert state.pixel == pytest.approx((lon, lat), abs=1e-5)
        # the series below the map is the product's series at that pixel
        assert tab.series._pixel_table is not None
        assert {"ssm_global_demo"} <= set(tab.series._pixel_table["product"])
        marker = tab.projected.marker_source.data
        assert (marker["x"][0], marker["y"][0]) == pytest.approx((x, y), abs=1e-3)
    before = state.pixel
    hx, hy = projection.world_half_extent()
    fig._trigger_event(Tap(fig, x=hx * 1.02, y=hy * 0.5))  # off the globe: nothing selected
    assert state.pixel == before


def test_switching_projection_keeps_the_lonlat_view(demo):
    view = dict(x_range=(-110.0, -90.0), y_range=(30.0, 40.0))
    state = AppState(product="ssm_global_demo", variable="ssm", **view)
    tab = map_panel.MapTab(state)
    assert tab.projection.value == "lonlat" and tab.map_pane.visible and not tab.projected_pane.visible
    tab.projection.value = "equal_earth"
    assert state.projection == "equal_earth" and tab.projected_pane.visible and not tab.map_pane.visible
    assert tab.basemap.disabled and tab.box_from_view.disabled
    shown = tab.projected.source.data["image"][0]
    assert shown.shape == (H, W) and np.isfinite(shown).sum() > 0.1 * shown.size
    assert (state.x_range, state.y_range) == (view["x_range"], view["y_range"])
    state.date = state.date.replace(day=2)  # redraws the globe
    assert "2018-07-02" in tab.status.object and "Equal Earth" in tab.status.object
    state.projection = "lonlat"
    assert tab.map_pane.visible and not tab.projected_pane.visible and not tab.basemap.disabled
    assert "Equal Earth" not in tab.status.object and "2018-07-02" in tab.status.object
    assert (tab.map.x_range.start, tab.map.x_range.end) == pytest.approx(view["x_range"])
