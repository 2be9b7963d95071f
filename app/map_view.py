"""A Bokeh map figure in lon/lat: a colour-mapped screen raster, coastlines, colorbar, hover with
the real value and units, wheel zoom active. The figure only draws what it is given."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import numpy as np
import xarray as xr
from bokeh.events import RangesUpdate, SelectionGeometry, Tap
from bokeh.models import (
    BoxSelectTool,
    BoxZoomTool,
    ColorBar,
    ColumnDataSource,
    HoverTool,
    LinearColorMapper,
    PanTool,
    Range1d,
    ResetTool,
    TapTool,
    WheelZoomTool,
)
from bokeh.plotting import figure

from app import styles

COASTLINES = Path(__file__).parent / "static" / "coastlines_110m.json"
WORLD = (-180.0, 180.0, -90.0, 90.0)
RANGE_COALESCE_MS = 40


@lru_cache(maxsize=1)
def coastlines() -> tuple[list, list]:
    """Natural Earth 1:110m land outlines shipped with the app (xs, ys lists of polylines)."""
    lines = json.loads(COASTLINES.read_text())["lines"]
    return [[p[0] for p in line] for line in lines], [[p[1] for p in line] for line in lines]


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


class MapFigure:
    """One map. ``on_view(x_range, y_range)``, ``on_tap(lon, lat)`` and ``on_box(w, s, e, n)`` are
    called from browser events. Ranges may be shared with another MapFigure (linked pan/zoom)."""

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
    ):
        self.width, self.height = int(width), int(height)
        xr0, yr0 = fit_view((-180, -90, 180, 90), self.width, self.height, margin=0)
        self.x_range = x_range or Range1d(*xr0)
        self.y_range = y_range or Range1d(*yr0)
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
            active_scroll=self.wheel,
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
        self.coast = self.fig.multi_line(xs=xs, ys=ys, line_color="#333333", line_width=0.8, line_alpha=0.9)
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
            self.fig.on_event(RangesUpdate, lambda ev: on_view((ev.x0, ev.x1), (ev.y0, ev.y1)))
            # Bokeh sends RangesUpdate only when a wheel zoom has ended (≈ 0.5 s later); the range
            # values themselves arrive at once: coalesce them into one view change.
            for rng in (self.x_range, self.y_range):
                rng.on_change("start", self._range_changed)
                rng.on_change("end", self._range_changed)
        if on_tap is not None:
            self.fig.on_event(Tap, lambda ev: on_tap(float(ev.x), float(ev.y)))
        if on_box is not None:

            def _box(ev):
                g = ev.geometry
                if ev.final and g.get("type") == "rect":
                    on_box(*_rect(g))

            self.fig.on_event(SelectionGeometry, _box)

    def _range_changed(self, attr, old, new) -> None:
        doc = self.fig.document
        if doc is None or self._view_pending:
            return
        self._view_pending = True

        def fire():
            self._view_pending = False
            self._on_view(*self.view())

        doc.add_timeout_callback(fire, RANGE_COALESCE_MS)

    def view(self) -> tuple[tuple[float, float], tuple[float, float]]:
        return (self.x_range.start, self.x_range.end), (self.y_range.start, self.y_range.end)

    def set_view(self, x_range, y_range) -> None:
        self.x_range.update(start=float(x_range[0]), end=float(x_range[1]))
        self.y_range.update(start=float(y_range[0]), end=float(y_range[1]))

    def show(
        self, image: xr.DataArray, *, clim, cmap: str, label: str, units: str, fmt: str = "0.000"
    ) -> None:
        """Draw a screen raster (lat descending) with colour limits, palette and colorbar title."""
        values = np.asarray(image.values, dtype="float32")[::-1]  # Bokeh images start at the bottom row
        lon, lat = image["lon"].values, image["lat"].values
        dx = float(lon[1] - lon[0]) if lon.size > 1 else 1.0
        dy = float(abs(lat[0] - lat[1])) if lat.size > 1 else 1.0
        x0, y0 = float(lon.min()) - dx / 2, float(lat.min()) - dy / 2
        self.source.data = {
            "image": [values],
            "x": [x0],
            "y": [y0],
            "dw": [dx * lon.size],
            "dh": [dy * lat.size],
        }
        self.mapper.update(low=float(clim[0]), high=float(clim[1]), palette=styles.palette(cmap))
        self.colorbar.title = label
        self.hover.tooltips = [
            ("lon", "$x{0.000}"),
            ("lat", "$y{0.000}"),
            (label, f"@image{{{fmt}}} {units}"),
        ]

    def mark_pixel(self, lon, lat) -> None:
        self.marker_source.data = {"x": [] if lon is None else [lon], "y": [] if lat is None else [lat]}

    def mark_box(self, box) -> None:
        if box is None:
            self.box_source.data = {"left": [], "right": [], "bottom": [], "top": []}
        else:
            w, s, e, n = box
            self.box_source.data = {"left": [w], "right": [e], "bottom": [s], "top": [n]}


def _rect(g: dict) -> tuple[float, float, float, float]:
    x0, x1 = sorted((float(g["x0"]), float(g["x1"])))
    y0, y1 = sorted((float(g["y0"]), float(g["y1"])))
    return x0, y0, x1, y1
