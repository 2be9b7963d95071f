"""The comparison tab: two products side by side with shared pan/zoom and their difference on a
common grid (the coarser product's), optionally restricted to the pixels valid in both.

Only days on which both products have a time step are compared (a product sampled on the 1st and
15th of each month against a daily one: those days only; never a "nearest" step of the other). The
page says which product was regridded onto which grid, how, and which days were used.

A what-if re-prediction (:mod:`app.scenario_compare`) is compared with its baseline as "scenario −
baseline", optionally without the pixels the scenario pushed outside the training range; classes
(a dominant-driver map) are compared as same / different."""

from __future__ import annotations

import numpy as np
import pandas as pd
import panel as pn
import xarray as xr

from app import categories, compute, data, le_units, map_panel, product_info, scenario_compare, styles, ui
from app.map_view import MERCATOR_METHOD, MapFigure, MapTabViews
from app.ui import guarded
from catalog import settings

TAB = "Compare"
W, H = 270, 180  # each map's frame; two maps with axes, colour bars and toolbars ≈ 840 px


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
        self.stats = pn.pane.Markdown("", name="compare_stats", width=styles.TAB_WIDTH - 460)
        self.goto = pn.widgets.Button(name="Go to the nearest common day", visible=False, width=240)
        self.legend = pn.pane.HTML(
            "", visible=False, css_classes=["class-legend"], width=styles.TAB_WIDTH - 460,
            stylesheets=[categories.LEGEND_CSS], name="compare_legend",
        )  # fmt: skip
        self.to_baseline = pn.widgets.Button(name="B = baseline of A", visible=False, width=200)
        self.to_baseline.on_click(lambda e: self._choose_baseline())
        self.out_of_range = pn.widgets.Select(
            name="Out-of-range pixels", options=scenario_compare.MASKS, value="", width=400, visible=False
        )
        self.out_of_range.param.watch(lambda e: self.redraw(), "value")
        self._goto_day = None
        self.goto.on_click(lambda e: setattr(state, "date", self._goto_day) if self._goto_day else None)
        self.body = pn.Column(
            pn.Row(
                pn.pane.Bokeh(self.left.fig, sizing_mode="fixed"),
                pn.pane.Bokeh(self.right.fig, sizing_mode="fixed"),
            ),
            pn.Row(
                pn.pane.Bokeh(self.diff.fig, sizing_mode="fixed"),
                pn.Column(self.legend, self.stats, self.goto, self.to_baseline, self.out_of_range),
            ),
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
            [
                "compare",
                "common_mask",
                "date",
                "aggregation",
                "period",
                "x_range",
                "y_range",
                "cmap",
                "le_units",
            ],
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

    def _baseline(self, a: str) -> str | None:
        """The baseline of scenario product ``a`` among the products with the variable, or None."""
        return scenario_compare.baseline_of(a, data.products_with(self.state.variable), data.info)

    def _choose_baseline(self) -> None:
        baseline = self._baseline(self.state.compare[0]) if self.state.compare else None
        if baseline:
            self.state.compare = [self.state.compare[0], baseline]

    def _scenario_widgets(self, a: str, b: str) -> tuple[str | None, bool]:
        """Show the baseline button and the out-of-range switch for a scenario A; returns A's
        scenario text (None for another product) and whether B is its baseline."""
        what_if = scenario_compare.scenario_text(data.info(a))
        baseline = self._baseline(a) if what_if else None
        self.to_baseline.visible = bool(baseline) and baseline != b
        self.out_of_range.visible = bool(what_if) and scenario_compare.PUSHED in data.info(a).variables
        return what_if, baseline is not None and baseline == b

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
            self.goto.visible = False
            if len(s.compare) != 2 or s.x_range is None:
                self.stats.object = "Choose two products with the same variable."
                return
            a, b = s.compare
            self.legend.visible = False
            what_if, against_baseline = self._scenario_widgets(a, b)
            if a == b:
                self._same_product(a)
                return
            (x0, x1), (y0, y1) = self.left.view()
            if (x0, x1) != tuple(s.x_range) or (y0, y1) != tuple(s.y_range):
                self.left.set_view(s.x_range, s.y_range)
            plan = time_plan(a, b, s.aggregation, s.date, s.period)
            if plan["days"] is not None and plan["days"].empty:
                self._no_common_time(a, b, plan)
                return
            fields, levels, convs = {}, {}, {}
            for name in (a, b):
                levels[name] = data.level_for_view(name, s.x_range, s.y_range, W)
                if plan["own"][name]:
                    field = data.field(
                        name, s.variable, levels[name], s.aggregation, s.date, s.period, s.x_range, s.y_range
                    )
                    when = dict(agg=s.aggregation, date=s.date, period=s.period)
                else:
                    field = data.field_on_days(
                        name, s.variable, levels[name], plan["days"], s.x_range, s.y_range
                    )
                    when = dict(days=plan["days"])
                fields[name], convs[name] = le_units.convert_field(
                    field, name, s.variable, s.le_units, **when
                )
            common = compute.to_common_grid(fields)
            summary = compute.regrid_summary(fields, common)
            if s.common_mask:
                mask = compute.common_mask(common.values())
                common = {k: v.where(mask).assign_attrs(v.attrs) for k, v in common.items()}
                shown = common
            else:
                shown = fields
            cats = categories.of(fields[a].attrs)
            if cats is not None:  # classes: where A and B name the same class, not a difference
                diff = xr.where(common[a] != common[b], 1.0, 0.0).where(compute.common_mask(common.values()))
            else:
                diff = common[a] - common[b]
            diff.attrs = dict(common[a].attrs)  # keeps the grid spacing for one-cell views
            hidden, flag = 0, self.out_of_range.value if self.out_of_range.visible else ""
            if what_if and flag:
                diff, hidden = self._without_flagged(a, flag, levels[a], plan, diff)
            units = convs[a].units
            label = _short_label(s.variable, units)
            cmap = s.cmap or styles.default_cmap(s.variable)
            clim = cats.clim if cats else styles.clim_for(s.variable, "fixed", None, shown[a].values, units)
            rows = self.left.render_rows()
            when = plan["label"]
            for fig, name in ((self.left, a), (self.right, b)):
                img = compute.rasterize_to_screen(shown[name], s.x_range, s.y_range, W, rows)
                fig.show(img, clim=clim, cmap=cmap, label=label, units=units, cats=cats)
                fig.fig.title.text = f"{name} · {plan['short']} (level {levels[name]})"
            if against_baseline:
                what, dlabel = f"scenario ({what_if}) − baseline", f"Δ {s.variable} ({units})"
            else:
                what, dlabel = f"{a} − {b}", f"{a} − {b} ({units})"
            dimg = compute.rasterize_to_screen(diff, s.x_range, s.y_range, W, rows)
            if cats is not None:
                same = categories.Categories((0, 1), ("same", "different"))
                self.diff.show(dimg, clim=same.clim, cmap=cmap, label="A vs B", units="", cats=same)
                what = f"{a} vs {b}: same class?"
            else:
                dlim = styles.auto_clim(diff.values, symmetric=True)
                self.diff.show(dimg, clim=dlim, cmap=styles.DIFF_CMAP, label=dlabel, units=units)
            # a scenario's title would not fit with the period too (the stats give it)
            self.diff.fig.title.text = what if against_baseline else f"{what} · {plan['short']}"
            d = diff.values
            ok = np.isfinite(d)
            res_lat, res_lon = summary["res"]
            rmsd = float(np.sqrt(compute.weighted_mean(diff**2))) if ok.any() else float("nan")
            notes = [method_text(a, b, summary, units), time_text(a, b, plan)]
            if against_baseline:
                notes.insert(0, scenario_note(a, b, what_if, hidden, flag))
            notes += sorted({c.note for c in convs.values() if c.note})
            notes += [
                c for c in (product_info.sampling_caveat(data.info(n), s.variable) for n in (a, b)) if c
            ]
            if cats is not None:
                legend = categories.legend_html(
                    cats, np.concatenate([shown[a].values.ravel(), shown[b].values.ravel()])
                )
                self.legend.param.update(
                    object=f"<b>Classes of A and B</b> (share of their cells){legend}", visible=True
                )
                share = float(np.nanmean(d)) if ok.any() else float("nan")
                self.stats.object = (
                    f"**Classes** on the common grid {_deg(res_lon, res_lat)} · {int(ok.sum()):,} cells "
                    f"valid in both · {when}: A and B name a different class in {100 * share:.1f} % of "
                    "them (the difference map is 1 there). Over a period each map shows its most "
                    "frequent class.\n\n" + "\n\n".join(ui.markdown_plain(n) for n in notes)
                )
                s.message = ""
                return
            self.stats.object = (
                f"**Common grid** {_deg(res_lon, res_lat)} (grid of {summary['target']}) · "
                f"{int(ok.sum()):,} cells valid in both · {when}\n\n"
                f"| | value |\n|---|---|\n"
                f"| mean A − B (cos-lat weighted) | {compute.weighted_mean(diff):.4g} {units} |\n"
                f"| RMS difference | {rmsd:.4g} {units} |\n"
                f"| mean A ({a}) | {compute.weighted_mean(common[a].where(ok)):.4g} {units} |\n"
                f"| mean B ({b}) | {compute.weighted_mean(common[b].where(ok)):.4g} {units} |\n\n"
                + "\n\n".join(ui.markdown_plain(n) for n in notes)
                + (f"\n\n{MERCATOR_METHOD}" if self.left.mercator else "")
            )
            s.message = ""

        run()

    def _without_flagged(self, a: str, flag: str, level: int, plan: dict, diff: xr.DataArray):
        """``diff`` without the cells where scenario product ``a``'s range flag ``flag`` counts a
        feature outside the training range on any compared day, and the number of cells hidden."""
        s = self.state
        if plan["own"][a]:
            count = data.field(a, flag, level, s.aggregation, s.date, s.period, s.x_range, s.y_range)
        else:
            count = data.field_on_days(a, flag, level, plan["days"], s.x_range, s.y_range)
        count = count.reindex_like(diff, method="nearest", tolerance=1e-6)
        out = (count > 0) & np.isfinite(diff)  # a mean over days > 0: flagged on at least one day
        return diff.where(~out).assign_attrs(diff.attrs), int(out.sum())

    def _blank(self) -> xr.DataArray:
        """An empty screen raster over the view."""
        s = self.state
        empty = xr.DataArray(np.empty((0, 0), "float32"), coords={"lat": [], "lon": []}, dims=("lat", "lon"))
        return compute.rasterize_to_screen(empty, s.x_range, s.y_range, W, self.left.render_rows())

    def _show_own(self, fig: MapFigure, name: str) -> str:
        """Draw product ``name`` on ``fig`` over its own time steps of the map's window (no common
        grid); returns its units."""
        s = self.state
        level = data.level_for_view(name, s.x_range, s.y_range, W)
        own = data.field(name, s.variable, level, s.aggregation, s.date, s.period, s.x_range, s.y_range)
        own, conv = le_units.convert_field(
            own, name, s.variable, s.le_units, agg=s.aggregation, date=s.date, period=s.period
        )
        img = compute.rasterize_to_screen(own, s.x_range, s.y_range, W, self.left.render_rows())
        cmap = s.cmap or styles.default_cmap(s.variable)
        cats = categories.of(own.attrs)
        clim = cats.clim if cats else styles.clim_for(s.variable, "fixed", None, img.values, conv.units)
        label = _short_label(s.variable, conv.units)
        fig.show(img, clim=clim, cmap=cmap, label=label, units=conv.units, cats=cats)
        if cats is not None:
            legend = categories.legend_html(cats, own.values)
            self.legend.param.update(
                object=f"<b>Classes of {name}</b> (share of its cells){legend}", visible=True
            )
        fig.fig.title.text = f"{name} · {map_panel.map_period(name, s.aggregation, s.date, s.period)}"
        return conv.units

    def _show_blank(self, fig: MapFigure, title: str, units: str) -> None:
        s = self.state
        cmap = s.cmap or styles.default_cmap(s.variable)
        fig.show(self._blank(), clim=(-1.0, 1.0), cmap=cmap, label="", units=units)
        fig.fig.title.text = title

    def _same_product(self, name: str) -> None:
        """A and B are one product: both maps show it, the difference map is emptied."""
        units = ""
        for fig in (self.left, self.right):
            units = self._show_own(fig, name)
        self.diff.show(self._blank(), clim=(-1.0, 1.0), cmap=styles.DIFF_CMAP, label="", units=units)
        self.diff.fig.title.text = "A − B: A and B are the same product"
        self.stats.object = (
            f"A and B are both **{ui.markdown_plain(name)}**: choose two different products to see "
            "their difference."
        )
        self.state.message = ""

    def _no_common_time(self, a: str, b: str, plan: dict) -> None:
        """Say that the two products share no time step in the window, and offer the nearest date
        both have."""
        units = ""
        for fig, name in ((self.left, a), (self.right, b)):
            if plan["counts"][name]:  # its own steps in the window, for orientation
                units = self._show_own(fig, name)
            else:
                self._show_blank(fig, f"{name} · no time step {plan['where']}", units)
        self.diff.show(
            self._blank(), clim=(-1.0, 1.0), cmap=styles.DIFF_CMAP, label=f"{a} − {b} ({units})", units=units
        )
        self.diff.fig.title.text = f"{a} − {b} · no common time step"
        before, after = plan["nearest"]
        near = [d for d in (before, after) if d is not None]
        lines = [
            f"**No common time step.** {a} and {b} have no time step on the same day {plan['where']}: "
            f"{a} has {plan['counts'][a]}, {b} has {plan['counts'][b]} there "
            f"({a}: {plan['sampling'][a]}; {b}: {plan['sampling'][b]}). A difference is only computed "
            "on days both products have."
        ]
        if near:
            target = min(near, key=lambda d: abs((d - pd.Timestamp(self.state.date)).days))
            lines.append("Nearest days both have: " + ", ".join(f"{d:%Y-%m-%d}" for d in near) + ".")
            self._goto_day = target.date()
            self.goto.name = f"Go to {target:%Y-%m-%d}"
            self.goto.visible = True
        else:
            lines.append("The two products have no day in common at all.")
        self.stats.object = "\n\n".join(lines)
        self.state.message = ""

    def panel(self) -> pn.viewable.Viewable:
        return pn.Column(pn.Row(self.a, self.b, pn.Column(self.mask, self.basemap)), self.body)


def scenario_note(a: str, b: str, what_if: str, hidden: int, flag: str) -> str:
    """What a scenario − baseline difference is, and what the scenario pushed out of range."""
    text = (
        f"A = {a} is the what-if re-prediction with scenario {what_if}; B = {b} is its baseline (same "
        "model version, box, period and inputs, no scenario): the map shows scenario − baseline."
    )
    counts = scenario_compare.counts_text(data.info(a))
    if counts:
        text += " " + counts
    if flag:
        why = "pushed outside it by the scenario" if flag == scenario_compare.PUSHED else "outside it"
        text += (
            f" Hidden here: {hidden:,} cells with an input {why} on a compared day "
            f"(`{flag}` > 0 on the scenario's grid)."
        )
    return text


def _short_label(variable: str, units: str) -> str:
    """Colour-bar title of the small maps (a long name does not fit their 180 px height)."""
    return f"{variable} ({units})" if units else variable


def _deg(res_lon: float, res_lat: float) -> str:
    return f"{res_lon:g}°" if abs(res_lon - res_lat) < 1e-9 else f"{res_lon:g}° × {res_lat:g}°"


def time_plan(a: str, b: str, agg: str, date, period) -> dict:
    """Which time steps the comparison uses: ``days`` the days in the window (the day, month, year
    or period of the map) on which both products have a time step (None when either has no time
    axis), ``own[name]`` True where those are all of the product's steps in the window (its usual
    aggregate can be used), ``counts``/``sampling`` per product, ``window``, ``label`` and, when
    there is no common day, the ``nearest`` common days before and after."""
    times = {n: data.time_axis(n) for n in (a, b)}
    start, end = compute.period_bounds(agg, date, period)
    window = f"{start:%Y-%m-%d}" if agg == "day" else f"{start:%Y-%m-%d} … {end:%Y-%m-%d}"
    own_steps = {n: compute.steps_in(times[n], agg, date, period) for n in (a, b)}
    plan = {
        "window": window,
        "where": f"on {window}" if agg == "day" else f"in {window}",
        "counts": {n: own_steps[n].size for n in (a, b)},
        "sampling": {n: compute.sampling(times[n]) for n in (a, b)},
        "nearest": (None, None),
        "days": None,
        "own": {a: True, b: True},
        "label": window if agg == "day" else f"mean {window}",
        "short": window if agg == "day" else f"mean {window}",
    }
    if not (times[a].size and times[b].size):
        return plan
    days = compute.common_steps(times[a], times[b], agg, date, period)
    plan["days"] = days
    plan["own"] = {n: own_steps[n].equals(days) for n in (a, b)}
    if days.empty:
        plan["nearest"] = compute.nearest_common_days(times[a], times[b], date)
    elif agg != "day":
        n_days = f"{days.size} common day{'s' if days.size != 1 else ''}"
        plan["label"] = f"mean of {n_days} in {window}"
        plan["short"] = f"mean of {n_days}"
    return plan


def method_text(a: str, b: str, summary: dict, units: str) -> str:
    """How the difference was computed, in words, with the products' actual grids."""
    target = summary["target"]
    res_lat, res_lon = summary["res"]
    if not summary["sources"]:
        return f"Difference A − B on the common grid of {target}."
    ((source, info),) = summary["sources"].items()
    s_lat, s_lon = info["res"]
    same = abs(s_lat - res_lat) < 1e-9 and abs(s_lon - res_lon) < 1e-9
    if same:
        how = (
            f"Both products have {_deg(res_lon, res_lat)} cells: each cell of {source} is assigned to the "
            f"cell of {target} that contains its centre (cell by cell on aligned grids)."
        )
    else:
        how = (
            f"{source} ({_deg(s_lon, s_lat)}) is regridded to the coarser grid of {target} "
            f"({_deg(res_lon, res_lat)}) by block mean: each {_deg(res_lon, res_lat)} cell gets the mean of "
            f"the valid {source} cells whose centres fall inside it (up to {info['per_cell']} per cell)."
        )
        if info["partial"]:
            how += (
                f" {info['partial']} of the {summary['cells']} compared cells are only partly covered by "
                f"{source}, so there its mean stands for the covered part of the cell only."
            )
    return (
        f"Difference A − B = {a} − {b} ({units}) on the grid of {target}. {how} Means are cos(lat)-"
        "weighted over the cells valid in both. The A and B maps show each product on its own grid (the "
        "pyramid level matching the view); the common mask keeps only cells valid in both."
    )


def time_text(a: str, b: str, plan: dict) -> str:
    """Which time steps entered the comparison."""
    days = plan["days"]
    if days is None:
        return f"Time: {plan['label']} (a product without time axis is used as it is)."
    listed = ", ".join(f"{d:%Y-%m-%d}" for d in days[:6]) + (" …" if days.size > 6 else "")
    n_days = f"{days.size} day{'s' if days.size != 1 else ''}"
    text = f"Time: {n_days} both products have {plan['where']}: {listed}."
    others = [n for n in (a, b) if not plan["own"][n]]
    if others:
        text += (
            " "
            + "; ".join(
                f"{n} has {plan['counts'][n]} time step(s) in the window, only these {days.size} are used"
                for n in others
            )
            + " ("
            + "; ".join(f"{n}: {plan['sampling'][n]}" for n in (a, b))
            + ")."
        )
    return text


def panel(state) -> pn.viewable.Viewable:
    return CompareTab(state).panel()
