"""Sidebar controls bound to an :class:`~app.state.AppState`: product, variable, date (slider,
calendar, step and play), time aggregation and period, colormap and colour limits, LE units.
Each tab shows only the groups it uses (:data:`TAB_GROUPS`) and says so at the top.

The date always is one of the product's own time steps: the slider moves through them (a product
sampled on the 1st and 15th of each month has 24 positions a year, not 365), the calendar offers
only them when the product is not daily, and a date from elsewhere (a permalink, another product)
moves to the nearest step."""

from __future__ import annotations

import bisect
import datetime as dt

import pandas as pd
import panel as pn

from app import compute, data, styles, ui
from app.ui import guarded
from catalog.evaporation import LE_UNITS

PLAY_INTERVAL_MS = 1200
PREFERRED_PRODUCTS = ("gssm1km_demo", "ssm_global_demo")  # shown first when present
WIDGET_WIDTH = 270  # the sidebar's width (300 px) less its padding
TITLE_CHARS = 30  # of a product title in the picker (about 270 px); the full title is shown below it
# The sidebar groups each tab uses; a tab not listed uses none of them.
GROUPS = ("product", "date", "aggregation", "colormap", "clim", "le_units")
TAB_GROUPS: dict[str, tuple[str, ...]] = {
    "Map": GROUPS,
    "Compare": ("product", "date", "aggregation", "colormap", "le_units"),
    "Profile": ("product", "date", "aggregation", "le_units"),
}


def _two_way(
    widget, state, name: str, to_state=lambda v: v, to_widget=lambda v: v, paused=lambda: False
) -> None:
    """Keep ``widget.value`` and ``state.<name>`` equal (widget changes are not passed on while
    ``paused()``)."""

    def w2s(event):
        if paused():
            return
        value = to_state(event.new)
        if getattr(state, name) != value:
            setattr(state, name, value)

    def s2w(event):
        value = to_widget(event.new)
        if widget.value != value:
            widget.value = value

    widget.param.watch(w2s, "value")
    state.param.watch(s2w, name)


class Controls:
    """Widgets of the sidebar for one session."""

    def __init__(self, state):
        self.state = state
        products = data.list_products()
        self.product = pn.widgets.Select(
            name="Product", options=_product_options(products), width=WIDGET_WIDTH
        )
        self.product_title = pn.pane.HTML(
            "", css_classes=["product-title"], margin=(0, 10), name="product_title"
        )
        self.variable = pn.widgets.Select(name="Variable", options=[], width=WIDGET_WIDTH)
        self.date_slider = pn.widgets.DiscreteSlider(
            name="Date",
            options={"01 Jul 2018": dt.date(2018, 7, 1)},
            value=dt.date(2018, 7, 1),
            width=WIDGET_WIDTH,
        )
        self.sampling = pn.pane.HTML("", css_classes=["time-sampling"], margin=(0, 10), name="time_sampling")
        self.date_picker = pn.widgets.DatePicker(
            name="Calendar", value=dt.date(2018, 7, 1), width=WIDGET_WIDTH
        )
        self.prev_btn = pn.widgets.Button(name="◀ step", width=80, description="previous time step")
        self.next_btn = pn.widgets.Button(name="step ▶", width=80, description="next time step")
        self.play = pn.widgets.Toggle(name="▶ play", width=80)
        self.aggregation = pn.widgets.RadioButtonGroup(
            name="Time aggregation",
            options={"day": "day", "month": "month", "year": "year", "period": "period"},
            value="day",
            width=WIDGET_WIDTH,
        )
        self.period = pn.widgets.DateRangePicker(name="Period (mean over)", width=WIDGET_WIDTH, visible=False)
        self.cmap = pn.widgets.Select(
            name="Colormap", options=["(variable default)", *styles.COLORMAPS], width=WIDGET_WIDTH
        )
        self.clim_mode = pn.widgets.RadioButtonGroup(
            name="Colour limits", options=["fixed", "auto", "typed"], value="fixed", width=WIDGET_WIDTH
        )
        self.le_units = pn.widgets.RadioButtonGroup(
            name="LE units",
            options={"W m-2": LE_UNITS[0], "evaporation mm d-1": LE_UNITS[1]},
            value=state.le_units,
            width=WIDGET_WIDTH,
        )
        self.tab_note = pn.pane.HTML(
            "", css_classes=["sidebar-tab-note"], margin=(0, 10), name="sidebar_note"
        )
        self.groups: dict[str, pn.Column] = {}
        self.clim_low = pn.widgets.FloatInput(name="low", width=120, disabled=True)
        self.clim_high = pn.widgets.FloatInput(name="high", width=120, disabled=True)
        self._play_cb = None
        self._rebounding = False
        self._days: list[dt.date] = []
        self._bind()
        names = [p.name for p in products]
        if names and state.product not in names:
            state.product = default_product(names)
        self._on_product()
        self._push()

    def refresh_products(self) -> None:
        """Offer products registered since the page opened (e.g. a finished re-prediction job)."""
        options = _product_options(data.list_products())
        if options != self.product.options:
            self.product.options = options

    def _push(self) -> None:
        """Show the state's current selections (e.g. restored from a permalink) in the widgets."""
        s = self.state
        self.product.value = s.product
        self.variable.value = s.variable
        if s.date in self.date_slider.values:
            self.date_slider.value = s.date
        self.date_picker.value = s.date
        self.aggregation.value = s.aggregation
        self.period.value = tuple(s.period) if s.period else None
        self.period.visible = s.aggregation == "period"
        self.cmap.value = s.cmap or "(variable default)"
        self.clim_mode.value = s.clim_mode
        self.le_units.value = s.le_units
        self._show_clim()

    # -- wiring -------------------------------------------------------------------------------
    def _bind(self) -> None:
        s = self.state
        _two_way(self.product, s, "product")
        _two_way(self.variable, s, "variable")
        _two_way(
            self.date_slider,
            s,
            "date",
            to_state=_as_date,
            to_widget=lambda v: v if v in self.date_slider.values else self.date_slider.value,
            paused=lambda: self._rebounding,
        )
        _two_way(self.date_picker, s, "date", to_state=_as_date, to_widget=_as_date)
        s.param.watch(lambda e: self._snap_date(), "date")
        _two_way(self.aggregation, s, "aggregation")
        _two_way(
            self.period,
            s,
            "period",
            to_state=lambda v: tuple(_as_date(d) for d in v) if v else None,
            to_widget=lambda v: tuple(v) if v else None,
            paused=lambda: self._rebounding,
        )
        _two_way(
            self.cmap,
            s,
            "cmap",
            to_state=lambda v: "" if v.startswith("(") else v,
            to_widget=lambda v: v or "(variable default)",
        )
        _two_way(self.clim_mode, s, "clim_mode")
        _two_way(self.le_units, s, "le_units")
        s.param.watch(lambda e: self._show_groups(), "tab")
        self.clim_low.param.watch(self._typed_clim, "value")
        self.clim_high.param.watch(self._typed_clim, "value")
        s.param.watch(self._show_clim, ["clim", "clim_mode"])
        s.param.watch(lambda e: self._on_product(), "product")
        s.param.watch(self._on_aggregation, "aggregation")
        self.prev_btn.on_click(lambda e: self.step(-1))
        self.next_btn.on_click(lambda e: self.step(+1))
        self.play.param.watch(self._on_play, "value")

    def _on_product(self) -> None:
        @guarded(self.state, "product")
        def run():
            s = self.state
            if not s.product:
                return
            info = data.info(s.product)
            self.product_title.object = ui.as_html(
                (info.title or info.name) + (" · synthetic" if info.synthetic else "")
            )
            variables = data.gridded_variables(info)
            self.variable.options = {f"{info.variables[v].get('long_name', v)} ({v})": v for v in variables}
            if s.variable not in variables and variables:
                s.variable = variables[0]
            start, end = pd.Timestamp(info.time_start).date(), pd.Timestamp(info.time_end).date()
            days = [d.date() for d in data.step_days(s.product)] or [start]
            self._days = days
            inside = s.date is not None and start <= s.date <= end
            date = nearest_day(days, s.date) if inside else days[0]
            self._rebounding = True
            try:
                self.date_slider.param.update(options={f"{d:%d %b %Y}": d for d in days}, value=date)
            finally:
                self._rebounding = False
            enabled = None if compute.is_regular_daily(days) else days
            self.date_picker.param.update(start=start, end=end, enabled_dates=enabled)
            self.sampling.object = ui.as_html(_sampling_note(info, days))
            if s.date != date:
                s.date = date
            period = clip_period(s.period, start, end)
            # The picker refuses bounds that exclude its value: empty it while the bounds change.
            self._rebounding = True
            try:
                self.period.value = None
                self.period.param.update(start=start, end=end)
            finally:
                self._rebounding = False
            s.period = period
            self.period.value = period

        run()

    def _snap_date(self) -> None:
        """Move the date to the product's nearest time step when it is not one."""
        s = self.state
        if self._days and s.date is not None:
            day = nearest_day(self._days, s.date)
            if day != s.date:
                s.date = day

    def _on_aggregation(self, event) -> None:
        self.period.visible = event.new == "period"

    def _typed_clim(self, event) -> None:
        lo, hi = self.clim_low.value, self.clim_high.value
        if self.state.clim_mode == "typed" and lo is not None and hi is not None and lo < hi:
            self.state.clim = (float(lo), float(hi))

    def _show_clim(self, *events) -> None:
        typed = self.state.clim_mode == "typed"
        self.clim_low.disabled = self.clim_high.disabled = not typed
        if self.state.clim:
            lo, hi = self.state.clim
            self.clim_low.value, self.clim_high.value = round(lo, 6), round(hi, 6)

    def step(self, direction: int) -> None:
        """Move the date to the product's previous/next time step."""
        s = self.state
        times = data.step_days(s.product)
        if times.size == 0:
            return
        current = pd.Timestamp(s.date)
        later, earlier = times[times > current], times[times < current]
        if direction > 0:
            target = later[0] if later.size else times[0]  # wraps around while playing
        else:
            target = earlier[-1] if earlier.size else times[-1]
        s.date = target.date()

    def _on_play(self, event) -> None:
        if event.new:
            self.play.name = "■ stop"
            self._play_cb = pn.state.add_periodic_callback(lambda: self.step(+1), period=PLAY_INTERVAL_MS)
        else:
            self.play.name = "▶ play"
            if self._play_cb is not None:
                self._play_cb.stop()
                self._play_cb = None

    def _show_groups(self) -> None:
        """Show the groups the current tab uses, and say which tab they serve."""
        tab = self.state.tab
        used = TAB_GROUPS.get(tab, ())
        for name, group in self.groups.items():
            group.visible = name in used
        users = ", ".join(TAB_GROUPS)
        self.tab_note.object = ui.as_html(
            f"Settings of the {tab} tab"
            if used
            else f"The {tab} tab uses none of the map settings "
            f"(product, date, colours, LE units); they are shown on the {users} tabs."
        )

    def panel(self) -> pn.viewable.Viewable:
        def heading(text):
            return pn.pane.Markdown(f"**{text}**", margin=(5, 10, 0, 10))

        self.groups = {
            "product": pn.Column(self.product, self.product_title, self.variable, margin=0),
            "date": pn.Column(
                heading("Date"),
                pn.Column(self.date_slider, self.sampling, margin=0),
                self.date_picker,
                pn.Row(self.prev_btn, self.next_btn, self.play),
                margin=0,
            ),
            "aggregation": pn.Column(heading("Time aggregation"), self.aggregation, self.period, margin=0),
            "colormap": pn.Column(self.cmap, margin=0),
            "clim": pn.Column(
                heading("Colour limits"), self.clim_mode, pn.Row(self.clim_low, self.clim_high), margin=0
            ),
            "le_units": pn.Column(heading("LE units"), self.le_units, margin=0),
        }
        self._show_groups()
        return pn.Column(self.tab_note, *self.groups.values())


def nearest_day(days: list[dt.date], date) -> dt.date:
    """The day of ``days`` (sorted) nearest ``date`` (the earlier one on a tie)."""
    date = _as_date(date)
    if not days:
        return date
    i = bisect.bisect_left(days, date)
    if i < len(days) and days[i] == date:
        return date
    candidates = [d for d in (days[i - 1] if i > 0 else None, days[i] if i < len(days) else None) if d]
    return min(candidates, key=lambda d: abs((d - date).days))


def _sampling_note(info, days: list[dt.date]) -> str:
    """'600 time steps: irregular, …' under the slider."""
    text = compute.sampling(pd.DatetimeIndex(days))
    return f"Time steps of {info.name}: {text}"


def default_product(names: list[str]) -> str:
    """The product shown when none is chosen (or the chosen one does not exist)."""
    return next((n for n in PREFERRED_PRODUCTS if n in names), names[0]) if names else ""


def clip_period(period, start: dt.date, end: dt.date, default_days: int = 10):
    """``period`` clipped to [start, end]; the first ``default_days`` days when it is unset or
    outside."""
    if period:
        p0, p1 = (_as_date(d) for d in period)
        if p0 <= end and p1 >= start:
            return (max(p0, start), min(p1, end))
    return (start, min(end, start + dt.timedelta(days=default_days - 1)))


def _product_options(products) -> dict[str, str]:
    """Picker labels: the product's title cut to fit the picker (the full title is shown below it),
    with its name where two cut titles are the same."""
    cut = {p.name: short_title(p.title or p.name) for p in products}
    counts = pd.Series(list(cut.values())).value_counts()
    return {(c if counts[c] == 1 else f"{c} ({n})"): n for n, c in cut.items()}


def short_title(title: str, limit: int = TITLE_CHARS) -> str:
    """``title`` without a trailing parenthesis, cut at a word to ``limit`` characters (with "…")."""
    text = title.strip()
    if text.endswith(")") and "(" in text:
        text = text[: text.rindex("(")].rstrip() or text
    if len(text) <= limit:
        return text
    cut = text[: limit - 1].rsplit(" ", 1)[0].rstrip(",;:-–— ")
    return f"{cut}…"


def _as_date(value):
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return pd.Timestamp(value).date()
