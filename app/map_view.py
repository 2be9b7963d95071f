"""A Bokeh map figure: a colour-mapped screen raster, coastlines, colorbar, hover with the real
value and units. The figure only draws what it is given. Wheel zoom is in the toolbar but not active
(the mouse wheel scrolls the page until the user picks it), and pan and zoom stay within the globe
and a rim of :data:`WORLD_RIM` around it.

Two projections: plate carrée (plot coordinates are lon/lat degrees, the default) and Web
Mercator (EPSG:3857 metres) under an optional web tile basemap. Everything going in or out of a
:class:`MapFigure` (views, images, clicks, boxes, markers) is in lon/lat; the figure converts at its
edge."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import panel as pn
import xarray as xr
from bokeh.events import RangesUpdate, SelectionGeometry, Tap
from bokeh.models import (
    BasicTicker,
    BasicTickFormatter,
    BoxSelectTool,
    BoxZoomTool,
    ColorBar,
    ColumnDataSource,
    CustomJSHover,
    HoverTool,
    LinearColorMapper,
    MercatorTicker,
    MercatorTickFormatter,
    PanTool,
    Range1d,
    ResetTool,
    TapTool,
    TileRenderer,
    WheelZoomTool,
    WMTSTileSource,
)
from bokeh.plotting import figure

from app import categories, compute, styles

COASTLINES = Path(__file__).parent / "static" / "coastlines_110m.json"
WORLD = (-180.0, 180.0, -90.0, 90.0)
RANGE_COALESCE_MS = 40
WORLD_RIM = 0.1  # pan/zoom bounds: the globe fitted to the frame, 10 % wider
OSM_ATTRIBUTION = "© OpenStreetMap contributors"
MERCATOR_METHOD = (
    "Basemap on: Web Mercator. The map is rendered on a regular lon/lat grid (at least one row per "
    "screen row) and each screen row shows the lon/lat row holding its centre latitude; "
    "latitudes beyond ±85.05° are not shown."
)
# Hover readout of lon/lat from Web Mercator plot coordinates (same formulas as app.compute). Made
# per figure: a Bokeh model belongs to one document, and a module-level one shown in a second
# session's figure read "undefined".
_LON_FROM_X_JS = f"return (value / {compute.EARTH_RADIUS_M} * 180 / Math.PI).toFixed(3)"
_LAT_FROM_Y_JS = (
    f"return ((2 * Math.atan(Math.exp(value / {compute.EARTH_RADIUS_M})) - Math.PI / 2)"
    " * 180 / Math.PI).toFixed(3)"
)


FIRST_RENDER_DELAY_MS = 1500


def after_first_render(callback) -> None:
    """Run ``callback`` (e.g. switching on the tile layer) once the browser has drawn a figure that was
    just created. A tile layer that is part of a figure's very first render stops the page from
    responding (seen with Bokeh 3.9); added to a drawn figure it works. Outside a server session
    (tests, scripts) the callback runs at once."""
    doc = pn.state.curdoc
    if doc is None or doc.session_context is None:
        callback()
        return
    doc.add_timeout_callback(callback, FIRST_RENDER_DELAY_MS)


class MapTabViews:
    """What a tab of map figures shares with the others: views reported by the browser go to the
    (lon/lat) state, and the basemap switch in the state is applied to the tab's figures.

    The tab sets ``state``, ``title`` (its tab title), ``frame`` (figure width, height), ``figures``
    (its MapFigures, linked ranges first), ``basemap`` (its Toggle), ``_drawing`` and ``redraw()``,
    calls :meth:`_watch_basemap` once its figures exist, and may override :meth:`_basemap_switched`.
    """

    def _watch_basemap(self) -> None:
        state = self.state
        state.param.watch(self._on_basemap, "basemap")
        state.param.watch(lambda e: self._show_basemap() if e.new == self.title else None, "tab")
        self.basemap.param.watch(lambda e: setattr(state, "basemap", e.new), "value")
        self._basemap_pending = state.basemap  # on from a permalink or another tab

    def _on_view(self, x_range, y_range) -> None:
        s = self.state
        new = (*map(float, x_range), *map(float, y_range))
        if s.x_range and s.y_range and np.allclose(new, (*s.x_range, *s.y_range), rtol=1e-9, atol=1e-9):
            return  # the same view after a projection round trip
        s.param.update(x_range=new[:2], y_range=new[2:])

    def _on_basemap(self, event) -> None:
        """Switch to Web Mercator with tiles and back, keeping the view's centre and longitudes and
        refitting its latitudes to this tab's frame; the state stays lon/lat. A hidden tab switches
        when it is next shown."""
        s = self.state
        self.basemap.value = event.new
        if s.tab != self.title:
            self._basemap_pending = True
            return
        self._basemap_pending = False
        view = None
        if s.x_range and s.y_range:
            view = view_for_projection(s.x_range, s.y_range, *self.frame, mercator=event.new)
        for fig in self.figures:
            fig.set_basemap(event.new, view)
        self._basemap_switched()
        if view is not None:
            self._drawing = True
            try:
                s.param.update(x_range=view[0], y_range=view[1])
            finally:
                self._drawing = False
        self.redraw()

    def _basemap_switched(self) -> None:
        """Called after the figures changed projection, before the redraw."""

    def _show_basemap(self) -> None:
        """On showing the tab: apply a basemap switch made elsewhere (or by a permalink), after the
        browser has drawn the figures."""
        if self._basemap_pending:
            self._basemap_pending = False
            after_first_render(lambda: self._on_basemap(SimpleNamespace(new=self.state.basemap)))


@lru_cache(maxsize=1)
def coastlines() -> tuple[list, list]:
    """Natural Earth 1:110m land outlines shipped with the app (xs, ys lists of polylines)."""
    lines = json.loads(COASTLINES.read_text())["lines"]
    return [[p[0] for p in line] for line in lines], [[p[1] for p in line] for line in lines]


@lru_cache(maxsize=1)
def coastlines_mercator() -> tuple[list, list]:
    """The coastlines in Web Mercator metres (latitudes clipped to ±85.05°)."""
    xs, ys = [], []
    for lon, lat in zip(*coastlines(), strict=True):
        x, y = compute.lonlat_to_mercator(lon, lat)
        xs.append(x.tolist())
        ys.append(y.tolist())
    return xs, ys


def tile_attribution(url: str) -> str:
    """Attribution shown under the tiles: OpenStreetMap's for its servers, else the tile host."""
    if "openstreetmap.org" in url:
        return OSM_ATTRIBUTION
    host = url.split("://", 1)[-1].split("/", 1)[0]
    return f"Map tiles: {host}"


def fit_view(bbox, width: int, height: int, margin: float = 0.02) -> tuple[tuple, tuple]:
    """Lon/lat ranges showing ``bbox`` (W, S, E, N) whole with the frame's aspect (square degrees)."""
    w, s, e, n = bbox
    dx, dy = (e - w) * (1 + margin), (n - s) * (1 + margin)
    cx, cy = (w + e) / 2, (s + n) / 2
    aspect = width / height
    if dx / dy > aspect:
        dy = dx / aspect
    else:
        dx = dy * aspect
    return (cx - dx / 2, cx + dx / 2), (cy - dy / 2, cy + dy / 2)


def fit_view_mercator(bbox, width: int, height: int, margin: float = 0.02) -> tuple[tuple, tuple]:
    """Lon/lat ranges whose Web Mercator square-metre view shows ``bbox`` (W, S, E, N) whole, with
    the frame's aspect, kept inside the mercator world (±85.05°)."""
    w, s, e, n = bbox
    x, y = compute.lonlat_to_mercator([w, e], [s, n])
    (x0, x1), (y0, y1) = fit_view((x[0], y[0], x[1], y[1]), width, height, margin)
    limit = compute.MERCATOR_MAX_Y
    if y1 - y0 >= 2 * limit:
        y0, y1 = -limit, limit
    elif y1 > limit:
        y0, y1 = y0 - (y1 - limit), limit
    elif y0 < -limit:
        y0, y1 = -limit, y1 + (-limit - y0)
    lon, lat = compute.mercator_to_lonlat([x0, x1], [y0, y1])
    return (float(lon[0]), float(lon[1])), (float(lat[0]), float(lat[1]))


def view_for_projection(x_range, y_range, width: int, height: int, mercator: bool) -> tuple[tuple, tuple]:
    """The lon/lat view to show after switching projection: same centre and longitude width, the
    height set by the frame's aspect in the new projection (square degrees or square metres)."""
    (w, e), (s, n) = sorted(x_range), sorted(y_range)
    if not mercator:
        half = (e - w) * height / width / 2
        return (w, e), ((s + n) / 2 - half, (s + n) / 2 + half)
    s, n = max(s, -compute.MERCATOR_MAX_LAT), min(n, compute.MERCATOR_MAX_LAT)
    (x0, x1), (y0, y1) = compute.lonlat_to_mercator([w, e], [s, n])
    half = min((x1 - x0) * height / width / 2, compute.MERCATOR_MAX_Y)
    cy = float(np.clip((y0 + y1) / 2, -compute.MERCATOR_MAX_Y + half, compute.MERCATOR_MAX_Y - half))
    _, lat = compute.mercator_to_lonlat([0, 0], [cy - half, cy + half])
    return (w, e), (float(lat[0]), float(lat[1]))


class MapFigure:
    """One map. ``on_view(x_range, y_range)``, ``on_tap(lon, lat)`` and ``on_box(w, s, e, n)`` are
    called from browser events, in lon/lat whatever the projection. Ranges may be shared with
    another MapFigure (linked pan/zoom; switch the projection of all of them together).
    ``tile_url`` is the basemap's tile URL template ({Z}/{X}/{Y}); ``dark`` draws light coastlines."""

    def __init__(
        self,
        *,
        width: int = 860,
        height: int = 430,
        title: str = "",
        x_range: Range1d | None = None,
        y_range: Range1d | None = None,
        on_view=None,
        on_tap=None,
        on_box=None,
        name: str = "map",
        tile_url: str | None = None,
        dark: bool = False,
    ):
        self.width, self.height = int(width), int(height)
        self.mercator = False
        self.tile_url = tile_url
        self.tiles: TileRenderer | None = None
        self._pixel: tuple | None = None
        self._box: tuple | None = None
        self._value_tooltip: tuple = (None, None)
        self._cats: categories.Categories | None = None
        self._mercator_formatters: dict | None = None
        xr0, yr0 = fit_view((-180, -90, 180, 90), self.width, self.height, margin=0)
        bx, by = self._world_bounds()
        self.x_range = x_range or Range1d(*xr0, bounds=bx)
        self.y_range = y_range or Range1d(*yr0, bounds=by)
        self.wheel = WheelZoomTool(zoom_on_axis=False)
        tools = [PanTool(), self.wheel, BoxZoomTool(match_aspect=True), ResetTool()]
        if on_tap is not None:
            tools.append(TapTool())
        if on_box is not None:
            tools.append(BoxSelectTool(name="box select (region series)"))
        self.fig = figure(
            frame_width=self.width,
            frame_height=self.height,
            x_range=self.x_range,
            y_range=self.y_range,
            tools=tools,
            active_scroll=None,
            active_drag=tools[0],
            title=title,
            x_axis_label="longitude (°E)",
            y_axis_label="latitude (°N)",
            name=name,
            output_backend="canvas",
        )
        self.fig.toolbar.logo = None
        self.source = ColumnDataSource(
            {
                "image": [np.full((1, 1), np.nan, dtype="float32")],
                "x": [-180.0],
                "y": [-90.0],
                "dw": [360.0],
                "dh": [180.0],
            }
        )
        self.mapper = LinearColorMapper(
            palette=styles.palette("viridis"), low=0, high=1, nan_color=(0, 0, 0, 0)
        )
        self.image = self.fig.image(
            image="image", x="x", y="y", dw="dw", dh="dh", source=self.source, color_mapper=self.mapper
        )
        self.colorbar = ColorBar(color_mapper=self.mapper, title="", width=14, title_text_font_size="11px")
        self.fig.add_layout(self.colorbar, "right")
        xs, ys = coastlines()
        self.coast = self.fig.multi_line(
            xs=xs, ys=ys, line_color=styles.coastline_colour(dark), line_width=0.8, line_alpha=0.9
        )
        self.marker_source = ColumnDataSource({"x": [], "y": []})
        self.fig.scatter(
            "x",
            "y",
            source=self.marker_source,
            size=11,
            marker="circle_cross",
            fill_alpha=0,
            line_color="red",
            line_width=2,
        )
        self.box_source = ColumnDataSource({"left": [], "right": [], "bottom": [], "top": []})
        self.fig.quad(
            left="left",
            right="right",
            bottom="bottom",
            top="top",
            source=self.box_source,
            fill_alpha=0.05,
            fill_color="red",
            line_color="red",
            line_dash="dashed",
        )
        self.hover = HoverTool(renderers=[self.image], tooltips=[("lon", "$x{0.000}"), ("lat", "$y{0.000}")])
        self.fig.add_tools(self.hover)
        if on_view is not None:
            self._on_view = on_view
            self._view_pending = False
            self.fig.on_event(
                RangesUpdate, lambda ev: on_view(*self._to_lonlat_view((ev.x0, ev.x1), (ev.y0, ev.y1)))
            )
            # Bokeh sends RangesUpdate only when a wheel zoom has ended (≈ 0.5 s later); the range
            # values themselves arrive at once: coalesce them into one view change.
            for rng in (self.x_range, self.y_range):
                rng.on_change("start", self._range_changed)
                rng.on_change("end", self._range_changed)
        if on_tap is not None:
            self.fig.on_event(Tap, lambda ev: on_tap(*self._to_lonlat(ev.x, ev.y)))
        if on_box is not None:

            def _box(ev):
                g = ev.geometry
                if ev.final and g.get("type") == "rect":
                    x0, y0, x1, y1 = _rect(g)
                    (w, e), (s, n) = self._to_lonlat_view((x0, x1), (y0, y1))
                    on_box(w, s, e, n)

            self.fig.on_event(SelectionGeometry, _box)

    def _world_bounds(self) -> tuple[tuple, tuple]:
        """Pan/zoom bounds in plot coordinates: the globe (the Web Mercator square world with the
        basemap) fitted to the frame, :data:`WORLD_RIM` wider."""
        if self.mercator:
            m = compute.MERCATOR_MAX_Y
            return fit_view((-m, -m, m, m), self.width, self.height, margin=WORLD_RIM)
        return fit_view((-180, -90, 180, 90), self.width, self.height, margin=WORLD_RIM)

    def _range_changed(self, attr, old, new) -> None:
        doc = self.fig.document
        if doc is None or self._view_pending:
            return
        self._view_pending = True

        def fire():
            self._view_pending = False
            self._on_view(*self.view())

        doc.add_timeout_callback(fire, RANGE_COALESCE_MS)

    # -- projection -----------------------------------------------------------------------------
    def _to_lonlat(self, x, y) -> tuple[float, float]:
        if not self.mercator:
            return float(x), float(y)
        lon, lat = compute.mercator_to_lonlat(x, y)
        return float(lon), float(lat)

    def _to_plot(self, lon, lat) -> tuple[float, float]:
        if not self.mercator:
            return float(lon), float(lat)
        x, y = compute.lonlat_to_mercator(lon, lat)
        return float(x), float(y)

    def _to_lonlat_view(self, x_range, y_range) -> tuple[tuple, tuple]:
        (w, s), (e, n) = self._to_lonlat(x_range[0], y_range[0]), self._to_lonlat(x_range[1], y_range[1])
        return (w, e), (s, n)

    def set_basemap(self, on: bool, view=None) -> None:
        """Switch to Web Mercator with the tile layer (``on``) or back to plate carrée, showing the
        lon/lat ``view`` (x_range, y_range; default: the current one refitted to the frame's aspect).
        Figures sharing ranges must be given the same ``view``. Markers and coastlines follow; the
        caller redraws the image."""
        on = bool(on) and bool(self.tile_url)
        if on == self.mercator:
            if view is not None:
                self.set_view(*view)
            return
        if view is None:
            view = view_for_projection(*self.view(), self.width, self.height, mercator=on)
        self.mercator = on
        bx, by = self._world_bounds()  # before the view: the bounds are in the new plot coordinates
        self.x_range.bounds, self.y_range.bounds = bx, by
        self.source.data = {"image": [np.full((1, 1), np.nan, dtype="float32")], **_EMPTY_PLACE}
        self.set_view(*view)  # before the tiles appear, so that they never see a degree view
        if on:
            if self.tiles is None:
                source = WMTSTileSource(url=self.tile_url, attribution=tile_attribution(self.tile_url))
                self.tiles = TileRenderer(tile_source=source, name="basemap_tiles")
            self.fig.renderers = [self.tiles, *self.fig.renderers]
            xs, ys = coastlines_mercator()
            for axis, dim in ((self.fig.xaxis[0], "lon"), (self.fig.yaxis[0], "lat")):
                axis.ticker = MercatorTicker(dimension=dim)
                axis.formatter = MercatorTickFormatter(dimension=dim)
            world = (-compute.MERCATOR_MAX_Y, compute.MERCATOR_MAX_Y)
            reset_x, reset_y = world, world
        else:
            self.fig.renderers = [r for r in self.fig.renderers if r is not self.tiles]
            xs, ys = coastlines()
            for axis in (self.fig.xaxis[0], self.fig.yaxis[0]):
                axis.ticker = BasicTicker()
                axis.formatter = BasicTickFormatter()
            reset_x, reset_y = fit_view((-180, -90, 180, 90), self.width, self.height, margin=0)
        self.coast.data_source.data = {"xs": xs, "ys": ys}
        self.hover.update(
            tooltips=self._tooltips(*self._value_tooltip),
            formatters={**self._coord_formatters(), **categories.hover_formatters(self._cats)},
        )
        self.x_range.update(reset_start=reset_x[0], reset_end=reset_x[1])
        self.y_range.update(reset_start=reset_y[0], reset_end=reset_y[1])
        self.mark_pixel(*(self._pixel or (None, None)))
        self.mark_box(self._box)

    def fit(self, bbox, margin: float = 0.02) -> tuple[tuple, tuple]:
        """Lon/lat view showing ``bbox`` whole in the current projection (not applied)."""
        if self.mercator:
            return fit_view_mercator(bbox, self.width, self.height, margin)
        return fit_view(bbox, self.width, self.height, margin)

    def render_rows(self) -> int:
        """Rows of the lon/lat raster to hand to :meth:`show` for the current view."""
        if not self.mercator:
            return self.height
        return compute.mercator_source_rows((self.y_range.start, self.y_range.end), self.height)

    # -- view ---------------------------------------------------------------------------------
    def view(self) -> tuple[tuple[float, float], tuple[float, float]]:
        """The visible (lon range, lat range)."""
        return self._to_lonlat_view(
            (self.x_range.start, self.x_range.end), (self.y_range.start, self.y_range.end)
        )

    def set_view(self, x_range, y_range) -> None:
        """Show lon ``x_range`` × lat ``y_range`` (no change when already shown, up to rounding).
        In Web Mercator the latitudes are refitted to the frame's aspect around the view's centre
        (the tile layer keeps square metres; fitting here keeps the longitudes asked for)."""
        if self.mercator:
            x_range, y_range = view_for_projection(x_range, y_range, self.width, self.height, mercator=True)
        (x0, y0), (x1, y1) = self._to_plot(x_range[0], y_range[0]), self._to_plot(x_range[1], y_range[1])
        current = (self.x_range.start, self.x_range.end, self.y_range.start, self.y_range.end)
        if np.allclose(current, (x0, x1, y0, y1), rtol=1e-9, atol=1e-9):
            return
        self.x_range.update(start=float(x0), end=float(x1))
        self.y_range.update(start=float(y0), end=float(y1))

    def _tooltips(self, label: str | None, value: str | None) -> list:
        coords = "{custom}" if self.mercator else "{0.000}"
        tips = [("lon", f"$x{coords}"), ("lat", f"$y{coords}")]
        return tips + ([(label, value)] if label else [])

    def show(
        self,
        image: xr.DataArray,
        *,
        clim,
        cmap: str,
        label: str,
        units: str,
        fmt: str = "0.000",
        cats: categories.Categories | None = None,
    ) -> None:
        """Draw a lon/lat screen raster (lat descending) with colour limits, palette and colorbar
        title, or the classes ``cats`` (one colour each, their names in the hover). In Web Mercator
        the raster's rows are resampled onto the screen's mercator rows
        (:func:`app.compute.mercator_rows`); hand it :meth:`render_rows` rows."""
        lon = image["lon"].values
        dx = float(lon[1] - lon[0]) if lon.size > 1 else 1.0
        x0, x1 = float(lon.min()) - dx / 2, float(lon.max()) + dx / 2
        if self.mercator:
            y_range = (self.y_range.start, self.y_range.end)
            image = compute.mercator_rows(image, y_range, self.height)
            (x0, x1), _ = compute.lonlat_to_mercator([x0, x1], [0, 0])
            y0, y1 = sorted(float(v) for v in y_range)
        else:
            lat = image["lat"].values
            dy = float(abs(lat[0] - lat[1])) if lat.size > 1 else 1.0
            y0 = float(lat.min()) - dy / 2
            y1 = y0 + dy * lat.size
        values = np.asarray(image.values, dtype="float32")[::-1]  # Bokeh images start at the bottom row
        self.source.data = {
            "image": [values],
            "x": [float(x0)],
            "y": [y0],
            "dw": [float(x1 - x0)],
            "dh": [y1 - y0],
        }
        categories.style_map(self.mapper, self.colorbar, cats, clim, cmap)
        self.colorbar.title = label
        self._value_tooltip = (label, categories.hover_value(cats, units, fmt))
        self.hover.tooltips = self._tooltips(*self._value_tooltip)
        if cats != self._cats:
            self._cats = cats
            self.hover.formatters = {**self._coord_formatters(), **categories.hover_formatters(cats)}

    def _coord_formatters(self) -> dict:
        """Hover formatters of the coordinates: lon/lat from Web Mercator metres, or none."""
        if not self.mercator:
            return {}
        if self._mercator_formatters is None:
            self._mercator_formatters = {
                "$x": CustomJSHover(code=_LON_FROM_X_JS),
                "$y": CustomJSHover(code=_LAT_FROM_Y_JS),
            }
        return self._mercator_formatters

    def mark_pixel(self, lon, lat) -> None:
        self._pixel = None if lon is None or lat is None else (lon, lat)
        if self._pixel is None:
            self.marker_source.data = {"x": [], "y": []}
        else:
            x, y = self._to_plot(lon, lat)
            self.marker_source.data = {"x": [x], "y": [y]}

    def mark_box(self, box) -> None:
        self._box = tuple(box) if box is not None else None
        if box is None:
            self.box_source.data = {"left": [], "right": [], "bottom": [], "top": []}
        else:
            w, s, e, n = box
            (left, bottom), (right, top) = self._to_plot(w, s), self._to_plot(e, n)
            self.box_source.data = {"left": [left], "right": [right], "bottom": [bottom], "top": [top]}


_EMPTY_PLACE = {"x": [-180.0], "y": [-90.0], "dw": [360.0], "dh": [180.0]}


def _rect(g: dict) -> tuple[float, float, float, float]:
    x0, x1 = sorted((float(g["x0"]), float(g["x1"])))
    y0, y1 = sorted((float(g["y0"]), float(g["y1"])))
    return x0, y0, x1, y1
