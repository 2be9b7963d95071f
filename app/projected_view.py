"""A Bokeh figure of the whole globe in the Equal Earth projection (EPSG:8857, equal-area), beside
the zoomable lon/lat :class:`app.map_view.MapFigure`: the same colour mapping, colour bar, hover
and click, offline coastlines. Plot coordinates are Equal Earth metres; everything going in or out
(clicks, the marked pixel and box, the hover's readout) is lon/lat, converted by
:mod:`app.projection`."""

from __future__ import annotations

import numpy as np
import xarray as xr
from bokeh.events import Tap
from bokeh.models import (
    BoxZoomTool,
    ColorBar,
    ColumnDataSource,
    CustomJSHover,
    HoverTool,
    LinearColorMapper,
    PanTool,
    Range1d,
    ResetTool,
    TapTool,
    WheelZoomTool,
)
from bokeh.plotting import figure

from app import categories, projection, styles
from app.map_view import coastlines


def _lonlat_formatter(index: int) -> CustomJSHover:
    """Hover readout of lon (``index`` 0) or lat (1) from the plot coordinates under the mouse. One
    per figure: a Bokeh model belongs to one document, and each session has its own."""
    return CustomJSHover(
        code=projection.INVERSE_JS
        + "const p = inverse(special_vars.x, special_vars.y);"
        + f"return Number.isFinite(p[{index}]) ? p[{index}].toFixed(3) : 'off the globe';"
    )


METHOD = (
    "Equal Earth (EPSG:8857, equal-area), the whole globe from a coarse pyramid level: each screen "
    "pixel shows the grid cell under its centre (cells averaged first where several fit in a pixel). "
    "Hover and clicks report lon/lat; zooming here only enlarges these pixels (use lon/lat to zoom into "
    "the data)."
)


class ProjectedMapFigure:
    """The global Equal Earth map. ``on_tap(lon, lat)`` is called for a click on the globe."""

    def __init__(
        self,
        *,
        width: int = 760,
        height: int = 380,
        title: str = "",
        on_tap=None,
        name: str = "projected_map",
        dark: bool = False,
    ):
        self.width, self.height = int(width), int(height)
        self.world = projection.fit_world(self.width, self.height)
        (x0, x1), (y0, y1) = self.world
        # Pan and zoom stay on the globe (zooming only enlarges its pixels anyway).
        self.x_range, self.y_range = Range1d(x0, x1, bounds=(x0, x1)), Range1d(y0, y1, bounds=(y0, y1))
        wheel = WheelZoomTool(zoom_on_axis=False)
        tools = [PanTool(), wheel, BoxZoomTool(match_aspect=True), ResetTool()]
        if on_tap is not None:
            tools.append(TapTool())  # hit-tests the image only (set below): a tap never selects a coastline
        self.fig = figure(
            frame_width=self.width,
            frame_height=self.height,
            x_range=self.x_range,
            y_range=self.y_range,
            tools=tools,
            active_scroll=None,  # the mouse wheel scrolls the page; wheel zoom is in the toolbar
            active_drag=tools[0],
            title=title,
            name=name,
            output_backend="canvas",
        )
        self.fig.toolbar.logo = None
        self.fig.axis.visible = False
        self.fig.grid.visible = False
        empty = np.full((1, 1), np.nan, dtype="float32")
        self.source = ColumnDataSource(
            {"image": [empty], "x": [x0], "y": [y0], "dw": [x1 - x0], "dh": [y1 - y0]}
        )
        self.mapper = LinearColorMapper(
            palette=styles.palette("viridis"), low=0, high=1, nan_color=(0, 0, 0, 0)
        )
        self.image = self.fig.image(
            image="image", x="x", y="y", dw="dw", dh="dh", source=self.source, color_mapper=self.mapper
        )
        for tool in tools:
            if isinstance(tool, TapTool):
                tool.renderers = [self.image]
        self.colorbar = ColorBar(color_mapper=self.mapper, title="", width=14, title_text_font_size="11px")
        self.fig.add_layout(self.colorbar, "right")
        line = styles.coastline_colour(dark)
        gx, gy = projection.globe_outline()
        self.fig.line(gx, gy, line_color=line, line_width=1.0, line_alpha=0.6)
        xs, ys = projection.project_lines(*coastlines())
        self.fig.multi_line(xs=xs, ys=ys, line_color=line, line_width=0.8, line_alpha=0.9)
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
        self.box_source = ColumnDataSource({"x": [], "y": []})
        self.fig.patch(
            "x",
            "y",
            source=self.box_source,
            fill_alpha=0.05,
            fill_color="red",
            line_color="red",
            line_dash="dashed",
        )
        self._cats: categories.Categories | None = None
        self.hover = HoverTool(
            renderers=[self.image], formatters={"$x": _lonlat_formatter(0), "$y": _lonlat_formatter(1)}
        )
        self.hover.tooltips = self._tooltips(None, None)
        self.fig.add_tools(self.hover)
        if on_tap is not None:

            def _tap(ev):
                lon, lat = projection.to_lonlat(ev.x, ev.y)
                if np.isfinite(lon) and np.isfinite(lat):
                    on_tap(float(lon), float(lat))

            self.fig.on_event(Tap, _tap)

    @staticmethod
    def _tooltips(label: str | None, value: str | None) -> list:
        tips = [("lon", "$x{custom}"), ("lat", "$y{custom}")]
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
        """Draw a projected screen raster (:func:`app.projection.project_field` over :attr:`world`)
        with colour limits, palette and colour bar title, or the classes ``cats``."""
        (x0, x1), (y0, y1) = self.world
        values = np.asarray(image.values, dtype="float32")[::-1]  # Bokeh images start at the bottom row
        self.source.data = {"image": [values], "x": [x0], "y": [y0], "dw": [x1 - x0], "dh": [y1 - y0]}
        categories.style_map(self.mapper, self.colorbar, cats, clim, cmap)
        self.colorbar.title = label
        self.hover.tooltips = self._tooltips(label, categories.hover_value(cats, units, fmt))
        if cats != self._cats:
            coords = {k: v for k, v in self.hover.formatters.items() if k != "@image"}
            self._cats = cats
            self.hover.formatters = {**coords, **categories.hover_formatters(cats)}

    def mark_pixel(self, lon, lat) -> None:
        if lon is None or lat is None:
            self.marker_source.data = {"x": [], "y": []}
            return
        x, y = projection.to_projected(lon, lat)
        self.marker_source.data = {"x": [float(x)], "y": [float(y)]}

    def mark_box(self, box) -> None:
        if box is None:
            self.box_source.data = {"x": [], "y": []}
            return
        xs, ys = projection.box_outline(*box)
        self.box_source.data = {"x": xs, "y": ys}
