"""The map tab: the selected product drawn from the pyramid level matching the view, or the whole
globe in Equal Earth from a coarse level; pixel and box selection, time series below, PNG and
netCDF export."""

from __future__ import annotations

import io
import logging
import time

import panel as pn

from app import (
    categories,
    compute,
    data,
    export,
    le_units,
    product_info,
    projected_view,
    projection,
    styles,
    ui,
)
from app.map_view import MERCATOR_METHOD, WORLD, MapFigure, MapTabViews
from app.series_panel import SeriesPanel
from app.ui import guarded
from catalog import evaporation, settings
from catalog.errors import FluxLensError

log = logging.getLogger("app")

TAB = "Map"
MAP_WIDTH, MAP_HEIGHT = 700, 350  # the frame; with axes, colour bar and toolbar ≈ 860 px
PROJECTIONS = {"lon/lat (zoomable)": "lonlat", "Equal Earth (global)": "equal_earth"}
REDRAW_ON = (
    "projection",
    "product",
    "variable",
    "date",
    "aggregation",
    "period",
    "cmap",
    "clim_mode",
    "clim",
    "x_range",
    "y_range",
    "le_units",
)


def _overlap(a, b) -> float:
    """Fraction of bbox ``a`` (W, S, E, N) covered by ``b``."""
    w, s = max(a[0], b[0]), max(a[1], b[1])
    e, n = min(a[2], b[2]), min(a[3], b[3])
    area = (a[2] - a[0]) * (a[3] - a[1])
    return max(e - w, 0) * max(n - s, 0) / area if area > 0 else 0.0


class MapTab(MapTabViews):
    title = TAB
    frame = (MAP_WIDTH, MAP_HEIGHT)

    def __init__(self, state):
        self.state = state
        self.map = MapFigure(
            width=MAP_WIDTH,
            height=MAP_HEIGHT,
            on_view=self._on_view,
            on_tap=self._on_tap,
            on_box=self._on_box,
            name="main_map",
            tile_url=settings.tile_url(),
            dark=pn.config.theme == "dark",
        )
        # Shown and hidden through holders: a Bokeh pane takes its visibility from its figure.
        self.map_pane = pn.Column(pn.pane.Bokeh(self.map.fig, name="map"), margin=0)
        # The Equal Earth globe is made the first time it is shown (:attr:`projected`): a third of the
        # page's first payload (its projected coastlines) that most visits never look at.
        self._projected_fig = None
        self.projected_pane = pn.Column(margin=0, visible=False)
        self.projection = pn.widgets.Select(
            name="Projection", options=PROJECTIONS, value=state.projection, width=200
        )
        self.projection.param.watch(lambda e: setattr(state, "projection", e.new), "value")
        self.basemap = pn.widgets.Toggle(
            name="Basemap",
            value=state.basemap,
            width=110,
            visible=self.map.tile_url is not None,
        )
        self.figures = (self.map,)
        self.method_note = pn.pane.Markdown(
            MERCATOR_METHOD, visible=False, css_classes=["map-method"], margin=(0, 10), width=styles.TAB_WIDTH
        )
        self.status = pn.pane.Markdown("", css_classes=["map-status"], margin=(0, 10), width=styles.TAB_WIDTH)
        # a class map's legend: every class named, with its share of the view
        self.legend = pn.pane.HTML(
            "", visible=False, css_classes=["class-legend"], width=MAP_WIDTH, margin=(0, 10),
            stylesheets=[categories.LEGEND_CSS], name="class_legend",
        )  # fmt: skip
        self.series = SeriesPanel(state)
        self.info_box = product_info.ProductInfoBox(state, data)
        self._auto_clim = None
        self._last = None
        self.png = pn.widgets.FileDownload(
            callback=self._png, filename="map.png", label="Map as PNG", button_type="primary", width=160
        )
        self.netcdf = pn.widgets.FileDownload(
            callback=self._netcdf, filename="region.nc", label="Region + period as netCDF", width=220
        )
        self.nc_level = pn.widgets.Select(name="netCDF resolution", options={}, width=200)
        self.nc_info = pn.pane.HTML(
            "", css_classes=["export-info"], margin=(0, 10), name="export_info", width=styles.TAB_WIDTH
        )
        self.box_from_view = pn.widgets.Button(name="Box = visible region", width=170)
        self.box_from_view.on_click(
            lambda e: self._on_box(*self.state.view_bbox()) if self.state.view_bbox() else None
        )
        self.clear_sel = pn.widgets.Button(name="Clear selection", width=130)
        self.clear_sel.on_click(lambda e: self.state.param.update(pixel=None, box=None))
        self._level_options()
        self.nc_level.param.watch(lambda e: self._plan_export(), "value")
        state.param.watch(lambda e: self._level_options(), "product")
        state.param.watch(
            lambda *e: self._plan_export(),
            ["product", "variable", "date", "aggregation", "period", "x_range", "y_range", "box"],
        )
        state.param.watch(self._apply_projection, "projection")
        state.param.watch(self._on_state, list(REDRAW_ON))
        state.param.watch(self._reset_auto, ["product", "variable", "aggregation", "le_units"])
        state.param.watch(self._typed_in_units, "le_units")
        state.param.watch(lambda e: self._mark_pixel(e.new), "pixel")
        state.param.watch(lambda e: self._mark_box(e.new), "box")
        state.param.watch(lambda e: self.redraw() if e.new == TAB and self._stale else None, "tab")
        self._watch_basemap()
        self._stale = False
        self._drawing = False
        self._mark_pixel(state.pixel)
        self._mark_box(state.box)
        self._apply_projection()
        if state.tab == TAB:
            self._show_basemap()
        if state.x_range is None and state.product:
            self._fit_product()  # the view change draws the lon/lat map
            if self._projected():
                self.redraw()
        else:
            if state.x_range is not None:
                self.map.set_view(state.x_range, state.y_range)
            self.redraw()
        self._plan_export()

    @property
    def projected(self) -> projected_view.ProjectedMapFigure:
        """The Equal Earth figure (made on first use)."""
        return self._globe()

    def _globe(self) -> projected_view.ProjectedMapFigure:
        """The Equal Earth figure, made (with the marked pixel and box) and put in its holder on first use."""
        if self._projected_fig is None:
            fig = projected_view.ProjectedMapFigure(
                width=MAP_WIDTH, height=MAP_HEIGHT, on_tap=self._on_tap, dark=pn.config.theme == "dark"
            )
            fig.mark_pixel(*(self.state.pixel or (None, None)))
            fig.mark_box(self.state.box)
            self._projected_fig = fig
            self.projected_pane[:] = [pn.pane.Bokeh(fig.fig, name="projected_map")]
        return self._projected_fig

    def _figures(self) -> tuple:
        """The figures made so far."""
        return tuple(f for f in (self.map, self._projected_fig) if f is not None)

    # -- events -------------------------------------------------------------------------------
    def _projected(self) -> bool:
        return self.state.projection == "equal_earth"

    def _apply_projection(self, *events) -> None:
        """Show the figure of the state's projection; the basemap (Web Mercator tiles) and "Box =
        visible region" belong to the lon/lat view. A basemap switch made while the globe is shown is
        applied when the lon/lat view is shown again."""
        projected = self._projected()
        if projected:
            self._globe()
        self.projection.value = self.state.projection
        self.map_pane.visible, self.projected_pane.visible = not projected, projected
        self.basemap.disabled = self.box_from_view.disabled = projected
        self._update_note()
        if not projected and events:
            self._show_basemap()

    def _on_basemap(self, event) -> None:
        if self._projected():
            self.basemap.value = event.new
            self._basemap_pending = True
            return
        super()._on_basemap(event)

    def _basemap_switched(self) -> None:
        self._update_note()

    def _update_note(self) -> None:
        if self._projected():
            self.method_note.param.update(object=projected_view.METHOD, visible=True)
        else:
            self.method_note.param.update(object=MERCATOR_METHOD, visible=self.map.mercator)

    def _mark_pixel(self, pixel) -> None:
        for fig in self._figures():
            fig.mark_pixel(*(pixel or (None, None)))

    def _mark_box(self, box) -> None:
        for fig in self._figures():
            fig.mark_box(box)

    def _on_tap(self, lon, lat) -> None:
        self.state.pixel = (round(lon, 5), round(lat, 5))

    def _on_box(self, w, s, e, n) -> None:
        self.state.box = (round(w, 5), round(s, 5), round(e, 5), round(n, 5))

    def _reset_auto(self, *events) -> None:
        self._auto_clim = None

    def _typed_in_units(self, event) -> None:
        """Typed LE colour limits follow a switch of LE units (at λ(20 °C): they are round numbers)."""
        s = self.state
        if s.clim_mode == "typed" and s.clim and s.variable == le_units.LE:
            convert = (
                evaporation.le_to_mm_per_day
                if event.new == evaporation.MM_D
                else evaporation.mm_per_day_to_le
            )
            s.clim = tuple(round(float(convert(v)), 4) for v in s.clim)

    def _fit_product(self) -> None:
        if not self.state.product:
            return
        info = data.info(self.state.product)
        x_range, y_range = self.map.fit(info.bbox)
        self.map.set_view(x_range, y_range)
        self.state.param.update(x_range=x_range, y_range=y_range)

    def _view_shows_product(self) -> bool:
        view = self.state.view_bbox()
        return view is not None and _overlap(view, data.info(self.state.product).bbox) >= 0.2

    def _on_state(self, *events) -> None:
        if self._drawing:
            return
        names = {e.name for e in events}
        if "product" in names and self.state.product and not self._view_shows_product():
            self._fit_product()  # keep the view when it shows the new product, else show all of it
            if not self._projected():
                return  # the view change drew the map
        if names & {"x_range", "y_range"} and self.state.x_range is not None:
            (x0, x1), (y0, y1) = self.map.view()
            if (x0, x1) != tuple(self.state.x_range) or (y0, y1) != tuple(self.state.y_range):
                self.map.set_view(self.state.x_range, self.state.y_range)
            if self._projected() and names <= {"x_range", "y_range"}:
                return  # the globe does not follow the lon/lat view
        self.redraw()

    # -- drawing ------------------------------------------------------------------------------
    def redraw(self) -> None:
        if self.state.tab != TAB:
            self._stale = True
            return
        self._stale = False
        self._drawing = True
        try:
            self._draw()
        finally:
            self._drawing = False

    def _draw(self) -> None:
        @guarded(self.state, "map")
        def run():
            t0 = time.perf_counter()
            s = self.state
            if not (s.product and s.variable and s.x_range and s.y_range):
                return
            info = data.info(s.product)
            projected = self._projected()
            window = dict(agg=s.aggregation, date=s.date, period=s.period)
            if projected:
                level = data.level_for_view(s.product, WORLD[:2], WORLD[2:], MAP_WIDTH)
                lonlat = data.field(s.product, s.variable, level, s.aggregation, s.date, s.period)
                lonlat, conv = le_units.convert_field(lonlat, s.product, s.variable, s.le_units, **window)
                image = projection.project_field(lonlat, *self.projected.world, MAP_WIDTH, MAP_HEIGHT)
            else:
                image, level = data.map_image(
                    s.product,
                    s.variable,
                    s.aggregation,
                    s.date,
                    s.period,
                    s.x_range,
                    s.y_range,
                    MAP_WIDTH,
                    self.map.render_rows(),
                )
                image, conv = le_units.convert_field(image, s.product, s.variable, s.le_units, **window)
                lonlat = image
            cats = categories.of(lonlat.attrs)  # classes: one colour each, whatever the limits
            if cats is not None:
                clim = cats.clim
            elif s.clim_mode == "auto":
                if self._auto_clim is None:
                    self._auto_clim = styles.auto_clim(image.values)
                clim = self._auto_clim
            else:
                clim = styles.clim_for(s.variable, s.clim_mode, s.clim, image.values, conv.units)
            if cats is None and s.clim_mode != "typed" and s.clim != clim:
                s.param.update(clim=clim)  # shows the limits in the typed inputs
            cmap = s.cmap or styles.default_cmap(s.variable)
            label, units = conv.label, conv.units
            if cats is None:
                self.legend.visible = False
            else:
                self.legend.param.update(object=categories.legend_html(cats, image.values), visible=True)
            (self.projected if projected else self.map).show(
                image, clim=clim, cmap=cmap, label=label, units=units, cats=cats
            )
            when = map_period(s.product, s.aggregation, s.date, s.period)
            res = info.levels[level]["resolution"]
            caveat = product_info.time_aggregation(info, s.variable)
            self.status.object = (
                f"**{info.title or info.name}** · {label} · {when} · pyramid level {level} ({res:g}°)"
                + (" · *synthetic*" if info.synthetic else "")
                + (" · Web Mercator" if self.map.mercator and not projected else "")
                + (" · Equal Earth" if projected else "")
                + (f"\n\n{s.variable}: {caveat}" if product_info.is_not_daily_mean(info, s.variable) else "")
                + (f"\n\n{ui.markdown_plain(conv.note)}" if conv.note else "")
            )
            self._last = dict(
                image=lonlat, clim=clim, cmap=cmap, label=label, title=f"{info.name} · {when}", cats=cats
            )
            s.message = ""
            log.info(
                "map %s/%s level %d drawn in %.0f ms",
                s.product,
                s.variable,
                level,
                1000 * (time.perf_counter() - t0),
            )

        run()

    # -- export -------------------------------------------------------------------------------
    def _png(self):
        @guarded(self.state, "PNG export")
        def run():
            if self._last is None:
                return io.BytesIO(b"")
            last = self._last
            self.png.filename = f"{self.state.product}_{self.state.variable}_{self.state.date:%Y%m%d}.png"
            return io.BytesIO(
                export.map_png(
                    last["image"],
                    clim=last["clim"],
                    cmap=last["cmap"],
                    title=last["title"],
                    label=last["label"],
                    cats=last["cats"],
                )
            )

        return run() or io.BytesIO(b"")

    def _level_options(self) -> None:
        """The pyramid levels of the product offered for the netCDF export (native first)."""
        try:
            levels = data.info(self.state.product).levels if self.state.product else []
        except Exception:  # an unknown product: the map reports it
            log.exception("levels of %r", self.state.product)
            levels = []
        options = {
            (
                f"native, level 0 ({lev['resolution']:g}°)"
                if lev["level"] == 0
                else f"level {lev['level']} ({lev['resolution']:g}°)"
            ): int(lev["level"])
            for lev in levels
        }
        self.nc_level.param.update(options=options, value=0 if options else None)

    def _export_request(self):
        """(product info, level dataset, bbox, start, end, level, region) of the netCDF export:
        the selected box, else the visible region; the level chosen (native by default)."""
        s = self.state
        region = "selected box" if s.box is not None else "visible region"
        bbox = s.box if s.box is not None else s.view_bbox()
        level = int(self.nc_level.value or 0)
        info = data.info(s.product)
        start, end = compute.period_bounds(s.aggregation, s.date, s.period)
        return info, data.open_level(s.product, level), bbox, start, end, level, region

    def _plan_export(self) -> None:
        """Say beside the button what the export would hold and how big it is, or why not."""
        s = self.state
        if not (s.product and s.variable):
            return
        try:
            info, ds, bbox, start, end, level, region = self._export_request()
            _, plan = export.plan_region_export(
                info, ds, [s.variable], bbox, start, end, level, region=region
            )
        except FluxLensError as exc:
            self.nc_info.object = ui.as_html(ui.user_message(f"netCDF export unavailable: {exc}"))
            self.netcdf.disabled = True
            return
        except Exception as exc:
            log.exception("planning the netCDF export failed")
            self.nc_info.object = ui.as_html(f"netCDF export unavailable ({type(exc).__name__})")
            self.netcdf.disabled = True
            return
        self.nc_info.object = ui.as_html(f"netCDF export: {plan.describe()}")
        self.netcdf.disabled = False

    def _netcdf(self):
        @guarded(self.state, "netCDF export", loading=self.netcdf)
        def run():
            s = self.state
            info, ds, bbox, start, end, level, region = self._export_request()
            body, plan = export.region_netcdf(
                info,
                ds,
                [s.variable],
                bbox,
                start,
                end,
                level,
                region=region,
                convert=lambda sub: le_units.convert_dataset(sub, s.product, level, s.le_units),
            )
            mm = "_mm_d" if le_units.converts(s.variable, s.le_units) else ""
            self.netcdf.filename = f"{s.product}_{s.variable}{mm}_{start:%Y%m%d}_{end:%Y%m%d}_L{level}.nc"
            log.info("netCDF export %s (%d bytes)", plan.describe(), len(body))
            return io.BytesIO(body)

        return run() or io.BytesIO(b"")

    def panel(self) -> pn.viewable.Viewable:
        # What lies below the map (export, product card, series) is put in once the page has loaded
        # (right away outside a served page): the first page the browser builds holds the map and its
        # controls only, a third fewer Bokeh models to make, send and lay out before the map shows.
        below = pn.Column(margin=0, name="map_below")
        pn.state.onload(lambda: below.extend(self._below()))
        return pn.Column(
            self.status,
            self.projection,
            self.map_pane,
            self.projected_pane,
            self.legend,
            self.method_note,
            below,
        )

    def _below(self) -> list:
        """The parts of the tab under the map: export rows, the product card, the series."""
        return [
            # Two rows of fixed widths (one row was about 1000 px, past 1280 px windows). Not a wrapping
            # FlexBox: that made the Compare maps open on a 25 % wider view than the map's
            # (test_basemap_browser): BokehJS refits a tile layer's extent to its frame's size as it
            # paints, and that size was transient while the tab was laid out.
            pn.Row(self.png, self.netcdf, self.nc_level),
            pn.Row(self.box_from_view, self.clear_sel, self.basemap),
            self.nc_info,
            self.info_box.card,
            self.series.panel(),
        ]


def map_period(name: str, agg: str, date, period) -> str:
    """What the map shows in time: the product's time step, or the mean of its steps in the
    month, year or period (with their number: irregular products have few)."""
    if agg == "day":
        return f"{data.nearest_time(name, date):%Y-%m-%d}"
    start, end = compute.period_bounds(agg, date, period)
    n = compute.steps_in(data.time_axis(name), agg, date, period).size
    return f"mean {start:%Y-%m-%d} … {end:%Y-%m-%d} ({n} time step{'s' if n != 1 else ''})"


def panel(state) -> pn.viewable.Viewable:
    return MapTab(state).panel()
