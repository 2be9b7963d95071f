"""The latitudinal-profile tab: zonal mean per latitude band of each selected product (current
date or aggregate), whole globe or visible region, with or without the common mask; and the
cos(lat)-weighted mean of each product in a table.

Each product uses its own time steps: the step on the map's day (a product without one that day is
left out and named, never replaced by a "nearest" step), or the mean of its steps in the month, year
or period; the table says which and how many."""

from __future__ import annotations

import holoviews as hv
import numpy as np
import pandas as pd
import panel as pn

from app import compute, data, le_units, product_info, styles, ui
from app.ui import guarded

TAB = "Profile"
PROFILE_WIDTH_PX = 720  # pyramid level: at least this many pixels across the region
# Column widths of the means table (px, adding up to the tab's width): every title and value shown whole.
PROFILE_TABLE_WIDTHS = {
    "product": 140,
    "mean, all valid pixels": 190,
    "mean, common mask": 180,
    "units": 70,
    "grid (°)": 80,
    "time steps used": 220,
}


class ProfileTab:
    def __init__(self, state):
        self.state = state
        self.products = pn.widgets.MultiChoice(name="Products", width=420)
        self.region = pn.widgets.RadioButtonGroup(
            options=["whole globe", "visible region"], value="whole globe"
        )
        self.band = pn.widgets.Select(
            name="Band (°)", options=[0.25, 0.5, 1.0, 2.0, 5.0], value=1.0, width=90
        )
        self.mask = pn.widgets.Checkbox(name="Common mask", value=state.common_mask)
        self.plot = pn.pane.HoloViews(None, name="profile_plot", sizing_mode="fixed")
        # Columns fitted to the tab's width: at 1000 px the table's third column was cut off at 1400 px.
        self.table = pn.widgets.Tabulator(
            pd.DataFrame(),
            show_index=False,
            disabled=True,
            width=styles.TAB_WIDTH,
            layout="fit_columns",
            widths=PROFILE_TABLE_WIDTHS,
            name="means",
        )
        self.note = pn.pane.HTML("", name="profile_note", width=styles.TAB_WIDTH - 560)
        self._stale = True
        self.mask.param.watch(lambda e: setattr(state, "common_mask", e.new), "value")
        state.param.watch(lambda e: setattr(self.mask, "value", e.new), "common_mask")
        state.param.watch(lambda e: self._options(), ["variable", "product"])
        for w in (self.products, self.region, self.band):
            w.param.watch(lambda e: self.redraw(), "value")
        state.param.watch(
            lambda *e: self.redraw(), ["common_mask", "date", "aggregation", "period", "variable", "le_units"]
        )
        state.param.watch(
            lambda *e: self.redraw() if self.region.value == "visible region" else None,
            ["x_range", "y_range"],
        )
        state.param.watch(lambda e: self.redraw() if e.new == TAB and self._stale else None, "tab")
        self._options()
        self.redraw()

    def _options(self) -> None:
        names = data.products_with(self.state.variable)
        self.products.options = names
        shown = [self.state.product] if self.state.product in names else []
        shown += [p for p in names if data.info(p).bbox == (-180.0, -90.0, 180.0, 90.0) and p not in shown]
        if len(shown) < 2:  # no global product: the map's and the next one
            shown += [p for p in names if p not in shown][: 2 - len(shown)]
        self.products.value = shown[:4]

    def _bounds(self):
        if self.region.value == "visible region" and self.state.x_range is not None:
            return tuple(self.state.x_range), tuple(self.state.y_range)
        return (-180.0, 180.0), (-90.0, 90.0)

    def redraw(self) -> None:
        if self.state.tab != TAB:
            self._stale = True
            return
        self._stale = False
        self._draw()

    def _draw(self) -> None:
        @guarded(self.state, "latitudinal profile", loading=lambda: [self.plot])
        def run():
            s = self.state
            names = list(self.products.value)
            if not names:
                self.plot.object = None
                return
            (x0, x1), (y0, y1) = self._bounds()
            fields, used, left_out, convs = {}, {}, [], {}
            for name in names:
                w, so, e, n = data.info(name).bbox
                xr_ = (max(x0, w), min(x1, e))
                yr_ = (max(y0, so), min(y1, n))
                if xr_[0] >= xr_[1] or yr_[0] >= yr_[1]:
                    left_out.append(f"{name}: outside the region")
                    continue
                times = data.time_axis(name)
                steps = compute.steps_in(times, s.aggregation, s.date, s.period)
                if times.size and steps.empty:
                    left_out.append(f"{name}: no time step in {_window(s)} ({compute.sampling(times)})")
                    continue
                level = data.level_for_view(name, xr_, yr_, PROFILE_WIDTH_PX)
                f = data.field(name, s.variable, level, s.aggregation, s.date, s.period, xr_, yr_)
                f = compute.visible_window(f, xr_, yr_, pad=0).assign_attrs(f.attrs)
                fields[name], convs[name] = le_units.convert_field(
                    f, name, s.variable, s.le_units, agg=s.aggregation, date=s.date, period=s.period
                )
                used[name] = _steps_label(steps) if times.size else "no time axis"
            if not fields:
                self.note.object = "No selected product covers this region and time. " + "; ".join(left_out)
                self.plot.object = None
                self.table.value = pd.DataFrame()
                return
            masked = None
            if len(fields) > 1:
                common = compute.to_common_grid(fields)
                mask = compute.common_mask(common.values())
                masked = {k: v.where(mask) for k, v in common.items()}
            use = masked if (s.common_mask and masked is not None) else fields
            label = convs[next(iter(fields))].label
            curves = []
            for i, (name, f) in enumerate(use.items()):
                colour = styles.SERIES_COLOURS[i % len(styles.SERIES_COLOURS)]
                zm = compute.zonal_mean(f, band_deg=float(self.band.value))
                curves.append(
                    hv.Curve((zm.index.values, zm.values), "latitude (°N)", label, label=name).opts(
                        invert_axes=True, tools=["hover"], color=colour
                    )
                )
                # markers: a small product gives a few bands only (one band is a single point)
                curves.append(
                    hv.Scatter((zm.index.values, zm.values), "latitude (°N)", label, label=name).opts(
                        invert_axes=True, size=6, color=colour
                    )
                )
            when = _window(s)
            title = f"Zonal mean of {s.variable}, {when}" + (" (common mask)" if use is masked else "")
            self.plot.object = hv.Overlay(curves).opts(
                title=title,
                width=520,
                height=480,
                show_grid=True,
                legend_position="bottom_right",
                active_tools=["pan"],
            )
            rows = []
            for name, f in fields.items():
                rows.append(
                    {
                        "product": name,
                        "mean, all valid pixels": round(compute.weighted_mean(f), 5),
                        "mean, common mask": round(compute.weighted_mean(masked[name]), 5)
                        if masked
                        else np.nan,
                        "units": convs[name].units,
                        "grid (°)": compute.grid_step(f, "lon"),
                        "time steps used": used[name],
                    }
                )
            self.table.value = pd.DataFrame(rows)
            caveats = [product_info.sampling_caveat(data.info(n), s.variable) for n in fields]
            self.note.object = ui.as_html(
                "\n".join(
                    [
                        "Means weighted by cos(latitude) over the valid pixels inside the region; the common "
                        "mask puts all products on the coarsest grid (block mean) and keeps cells valid in "
                        "every product. Each product uses its own time steps (see the table).",
                        *[c for c in caveats if c],
                        *sorted({c.note for c in convs.values() if c.note}),
                        *(["Left out: " + "; ".join(left_out)] if left_out else []),
                    ]
                )
            )

        run()

    def panel(self) -> pn.viewable.Viewable:
        return pn.Column(
            pn.Row(self.products, self.band),
            pn.Row(self.region, self.mask),
            pn.Row(self.plot, self.note),
            self.table,
        )


def _window(s) -> str:
    start, end = compute.period_bounds(s.aggregation, s.date, s.period)
    return f"{start:%Y-%m-%d}" if s.aggregation == "day" else f"{start:%Y-%m-%d} … {end:%Y-%m-%d}"


def _steps_label(steps: pd.DatetimeIndex) -> str:
    if steps.size == 1:
        return f"{steps[0]:%Y-%m-%d}"
    return f"mean of {steps.size} ({steps[0]:%Y-%m-%d} … {steps[-1]:%Y-%m-%d})"


def panel(state) -> pn.viewable.Viewable:
    return ProfileTab(state).panel()
