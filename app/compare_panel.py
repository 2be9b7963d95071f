"""The comparison tab: two products side by side with shared pan/zoom and their difference on a
common grid (the coarser product's), optionally restricted to the pixels valid in both."""

from __future__ import annotations

import numpy as np
import panel as pn

from app import compute, data, styles
from app.map_view import MERCATOR_METHOD, MapFigure, MapTabViews
from app.ui import guarded
from catalog import settings

TAB = "Compare"
W, H = 300, 200
METHOD = (
    "Difference A − B on the grid of the coarser product: each coarse cell gets the mean of the valid "
    "finer-grid cells whose centres fall inside it (block mean). Maps use the pyramid level that matches "
    "the view; the common mask keeps only cells valid in both products."
)


class CompareTab(MapTabViews):
    title = TAB
    frame = (W, H)

    def __init__(self, state):
        self.state = state
        self.a = pn.widgets.Select(name="Product A", width=250)
        self.b = pn.widgets.Select(name="Product B", width=250)
        self.mask = pn.widgets.Checkbox(name="Common mask (pixels valid in both)", value=state.common_mask)
        tiles, dark = settings.tile_url(), pn.config.theme == "dark"
        self.left = MapFigure(
            width=W, height=H, on_view=self._on_view, name="compare_a", tile_url=tiles, dark=dark
        )
        self.right = MapFigure(
            width=W,
            height=H,
            x_range=self.left.x_range,
            y_range=self.left.y_range,
            on_view=self._on_view,
            name="compare_b",
            tile_url=tiles,
            dark=dark,
        )
        self.diff = MapFigure(
            width=W,
            height=H,
            x_range=self.left.x_range,
            y_range=self.left.y_range,
            on_view=self._on_view,
            name="compare_diff",
            tile_url=tiles,
            dark=dark,
        )
        self.basemap = pn.widgets.Toggle(
            name="Basemap", value=state.basemap, width=110, visible=tiles is not None
        )
        self.figures = (self.left, self.right, self.diff)
        self.stats = pn.pane.Markdown("", name="compare_stats", width=420)
        self.body = pn.Column(
            pn.Row(
                pn.pane.Bokeh(self.left.fig, sizing_mode="fixed"),
                pn.pane.Bokeh(self.right.fig, sizing_mode="fixed"),
            ),
            pn.Row(pn.pane.Bokeh(self.diff.fig, sizing_mode="fixed"), self.stats),
        )
        self._stale = True
        self._drawing = False
        self.a.param.watch(self._choose, "value")
        self.b.param.watch(self._choose, "value")
        self.mask.param.watch(lambda e: setattr(state, "common_mask", e.new), "value")
        state.param.watch(lambda e: setattr(self.mask, "value", e.new), "common_mask")
        state.param.watch(lambda *e: self._options(), ["variable", "product"])
        state.param.watch(
            lambda *e: self.redraw(),
            ["compare", "common_mask", "date", "aggregation", "period", "x_range", "y_range", "cmap"],
        )
        state.param.watch(lambda e: self.redraw() if e.new == TAB and self._stale else None, "tab")
        self._watch_basemap()
        self._options()
        self.redraw()
        if state.tab == TAB:
            self._show_basemap()

    def _options(self) -> None:
        names = data.products_with(self.state.variable)
        chosen = [p for p in self.state.compare if p in names]
        if len(chosen) < 2:
            rest = [
                p
                for p in ([self.state.product] if self.state.product in names else []) + names
                if p not in chosen
            ]
            chosen = (chosen + rest)[:2]
        self.a.options = self.b.options = names
        if len(chosen) == 2:
            self.a.value, self.b.value = chosen
            if self.state.compare != chosen:
                self.state.compare = chosen

    def _choose(self, event) -> None:
        pair = [self.a.value, self.b.value]
        if all(pair) and pair != self.state.compare:
            self.state.compare = pair

    def redraw(self) -> None:
        if self.state.tab != TAB:
            self._stale = True
            return
        if self._drawing:
            return
        self._stale = False
        self._drawing = True
        try:
            self._draw()
        finally:
            self._drawing = False

    def _draw(self) -> None:
        @guarded(self.state, "comparison", loading=lambda: [self.body])
        def run():
            s = self.state
            if len(s.compare) != 2 or s.x_range is None:
                self.stats.object = "Choose two products with the same variable."
                return
            a, b = s.compare
            if a == b:
                self.stats.object = "Choose two different products."
                return
            (x0, x1), (y0, y1) = self.left.view()
            if (x0, x1) != tuple(s.x_range) or (y0, y1) != tuple(s.y_range):
                self.left.set_view(s.x_range, s.y_range)
            fields, levels = {}, {}
            for name in (a, b):
                levels[name] = data.level_for_view(name, s.x_range, s.y_range, W)
                fields[name] = data.field(
                    name, s.variable, levels[name], s.aggregation, s.date, s.period, s.x_range, s.y_range
                )
            common = compute.to_common_grid(fields)
            if s.common_mask:
                mask = compute.common_mask(common.values())
                common = {k: v.where(mask).assign_attrs(v.attrs) for k, v in common.items()}
                shown = common
            else:
                shown = fields
            diff = common[a] - common[b]
            diff.attrs.update(common[a].attrs)  # keeps the grid spacing for one-cell views
            info = data.info(a)
            label, units = styles.label(s.variable, info), styles.units(s.variable, info)
            cmap = s.cmap or styles.default_cmap(s.variable)
            clim = styles.clim_for(s.variable, "fixed", None, shown[a].values)
            rows = self.left.render_rows()
            for fig, name in ((self.left, a), (self.right, b)):
                img = compute.rasterize_to_screen(shown[name], s.x_range, s.y_range, W, rows)
                fig.show(img, clim=clim, cmap=cmap, label=label, units=units)
                fig.fig.title.text = f"{name} (level {levels[name]})"
            dimg = compute.rasterize_to_screen(diff, s.x_range, s.y_range, W, rows)
            dlim = styles.auto_clim(diff.values, symmetric=True)
            self.diff.show(dimg, clim=dlim, cmap=styles.DIFF_CMAP, label=f"{a} − {b} ({units})", units=units)
            self.diff.fig.title.text = f"{a} − {b}"
            d = diff.values
            ok = np.isfinite(d)
            res = compute.resolution(common[a]["lon"])
            rmsd = float(np.sqrt(compute.weighted_mean(diff**2))) if ok.any() else float("nan")
            self.stats.object = (
                f"**Common grid** {res:g}° · {int(ok.sum()):,} cells valid in both\n\n"
                f"| | value |\n|---|---|\n"
                f"| mean A − B (cos-lat weighted) | {compute.weighted_mean(diff):.4g} {units} |\n"
                f"| RMS difference | {rmsd:.4g} {units} |\n"
                f"| mean A | {compute.weighted_mean(common[a].where(ok)):.4g} {units} |\n"
                f"| mean B | {compute.weighted_mean(common[b].where(ok)):.4g} {units} |\n\n"
                f"{METHOD}" + (f"\n\n{MERCATOR_METHOD}" if self.left.mercator else "")
            )
            s.message = ""

        run()

    def panel(self) -> pn.viewable.Viewable:
        return pn.Column(pn.Row(self.a, self.b, self.mask, self.basemap), self.body)


def panel(state) -> pn.viewable.Viewable:
    return CompareTab(state).panel()
