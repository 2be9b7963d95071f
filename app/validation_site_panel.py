"""The Validation tab's site view: station sites on a map, one site against every product.

Reading and matching one site run in a background thread (:mod:`validation.site_view`); a periodic
callback of the session picks up the finished work.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import functools
import io

import holoviews as hv
import numpy as np
import pandas as pd
import panel as pn

from app import product_info, ui
from app.map_view import coastlines
from app.ui import guarded
from catalog import api, evaporation
from catalog.errors import FluxLensError
from validation import bands, config, evaporation_pairs, export, matching, metrics, site_view
from validation.config import ValidationOptions

POLL_MS = 300
DENSE_POINTS = 5000  # scatter plots with more pairs are rasterised (datashader)
WIDTH = ui.CONTENT_WIDTH  # the widest plots and tables
HALF_WIDTH = 430  # two side by side
# Column titles of the metric tables: each statistic once, named without ambiguity.
METRIC_TITLES = {
    "product": "product",
    "site_id": "site",
    "name": "name",
    "igbp": "IGBP",
    "n": "n",
    "bias": "bias",
    "rmse": "RMSE",
    "ubrmse": "ubRMSE",
    "r": "r",
    "r_ci": "r 95 % CI",
    "rho": "ρ",
    "kge": "KGE",
    "nse": "NSE",
    "distance_km": "km",
    "sites": "sites",
    "error": "note",
}
METRIC_NOTE = (
    "bias = mean(product − observed), RMSE and ubRMSE (RMSE without the bias) in {units}; "
    "r: Pearson correlation; ρ: Spearman rank correlation; KGE: "
    "Kling–Gupta efficiency; NSE = 1 − SS_res / SS_tot (Nash–Sutcliffe efficiency, the same number "
    "as the coefficient of determination of the prediction, so shown once; Pearson r² is r × r); "
    "km: distance from the site to the product's pixel."
)
REGIONS = {
    "World": (-180.0, -90.0, 180.0, 90.0),
    "North America": (-170.0, 10.0, -50.0, 75.0),
    "South America": (-85.0, -60.0, -30.0, 15.0),
    "Europe": (-25.0, 34.0, 45.0, 72.0),
    "Africa": (-20.0, -36.0, 55.0, 37.0),
    "Asia": (45.0, 0.0, 180.0, 80.0),
    "Oceania": (110.0, -50.0, 180.0, 0.0),
}
# Category colours (IGBP classes, networks): a list, not a colormap name, whose first lookup in a
# process costs HoloViews ~0.5 s.
CATEGORY_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
                    "#7f7f7f", "#bcbd22", "#17becf", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896",
                    "#c5b0d5", "#c49c94", "#f7b6d2")  # fmt: skip
PRODUCT_COLOURS = ("#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf")

_SITE_POOL = concurrent.futures.ThreadPoolExecutor(max_workers=2, thread_name_prefix="site-view")


def site_table(network: str) -> pd.DataFrame:
    """Sites of a network with a ``years`` label, ``first_year``/``last_year`` and a search label."""
    sites = api.sites(network).copy()
    start = pd.to_datetime(sites["start"], errors="coerce")
    end = pd.to_datetime(sites["end"], errors="coerce")
    sites["first_year"] = start.dt.year.fillna(0).astype(int)
    sites["last_year"] = end.dt.year.fillna(0).astype(int)
    sites["years"] = [
        f"{a}–{b}" if a else "?" for a, b in zip(sites["first_year"], sites["last_year"], strict=True)
    ]
    sites["igbp"] = sites["igbp"].fillna("?").astype(str)
    sites["label"] = sites["site_id"].astype(str) + " — " + sites["name"].fillna("").astype(str)
    return sites


@dataclasses.dataclass
class SiteData:
    """One site's view as read (the variable's own units) and the tower's daily air temperature
    (°C; None when the network has no TA), which turns LE into evaporation."""

    view: site_view.SiteView
    ta: pd.Series | None


@dataclasses.dataclass
class ShownView(site_view.SiteView):
    """A site view in other units than the variable's own (LE as evaporation)."""

    units: str = ""
    ta_source: str | None = None  # the air temperature behind λ; None: the fixed 20 °C


def load_site_data(network: str, site_id: str, variable: str, options: ValidationOptions) -> SiteData:
    """:func:`validation.site_view.load_site_view` and, for LE, the tower's daily mean TA (background)."""
    view = site_view.load_site_view(network, site_id, variable, options)
    ta = None
    if variable == "le":
        table = api.site_observations(network, site_id)
        ta = evaporation_pairs.tower_ta(table, min_coverage=options.min_coverage)
    return SiteData(view, ta)


def in_units(data: SiteData, units: str) -> site_view.SiteView:
    """The site view with LE in ``units``: as read for W m-2; for mm d-1 the observed series, every
    product's series and the pairs as evaporation E = LE·86400/λ(T) (:mod:`catalog.evaporation`,
    T the tower's daily TA, 20 °C where it has none), the metrics computed again on the converted
    pairs. Other variables and the energy-balance closure (W m-2) are left as they are."""
    view = data.view
    evaporation.check_units(units)
    if view.variable != "le" or units == evaporation.W_M2:
        return view

    def convert(series: pd.Series, step: str = "day") -> pd.Series:
        ta = evaporation_pairs.ta_on(series.index, data.ta, step)
        values = evaporation.le_to_mm_per_day(series.to_numpy(dtype="float64"), ta)
        return pd.Series(values, index=series.index)

    steps = {name: p.get("time_step", "day") for name, p in view.pixels.items()}
    obs = view.obs.copy()
    obs["value"] = convert(obs["value"])
    preds = {name: convert(s, steps.get(name, "day")) for name, s in view.preds.items()}
    pairs = {
        name: pd.DataFrame({"obs": convert(p["obs"], steps.get(name, "day")),
                            "pred": convert(p["pred"], steps.get(name, "day"))}, index=p.index)
        for name, p in view.pairs.items()
    }  # fmt: skip
    rows = []
    for _, row in view.metrics.iterrows():
        p = pairs[row["product"]]
        m = metrics.all_metrics(p["obs"], p["pred"], min_n=view.options.min_pairs)
        rows.append({**row.to_dict(), **{k: m[k] for k in site_view.SITE_METRICS}})
    table = pd.DataFrame(rows, columns=view.metrics.columns)
    banded = {
        name: pd.DataFrame({c: convert(b[c], steps.get(name, "day")) for c in b.columns}, index=b.index)
        for name, b in view.bands.items()
    }  # the bounds and the observations they are checked against, converted alike
    fields = {f.name: getattr(view, f.name) for f in dataclasses.fields(site_view.SiteView)}
    fields.update(obs=obs, preds=preds, pairs=pairs, metrics=table, bands=banded)
    ta_source = "the tower's daily TA" if data.ta is not None else None
    return ShownView(**fields, units=units, ta_source=ta_source)


def shown_spec(view: site_view.SiteView) -> dict:
    """Units, long name and (for evaporation) the λ note the site view's plots and tables use."""
    spec = dict(config.variable_spec(view.variable))
    units = getattr(view, "units", None)
    if units == evaporation.MM_D:
        note = evaporation.lambda_note(view.ta_source)
        spec.update(units=units, long_name="evaporation (LE / λ)", note=note)
    return spec


def network_variables(columns) -> list[str]:
    """The product variables a network's station ``columns`` can validate, in the configuration's
    order (fluxes first, then soil moisture), so a flux network opens on LE and an ISMN network on
    soil moisture; every variable when the network does not list its columns."""
    columns = set(columns)
    out = [
        var
        for var, spec in config.variables().items()
        if not columns or {spec.get("obs"), spec.get("ismn_obs")} & columns
    ]
    return out or list(config.variables())


def filter_sites(sites: pd.DataFrame, igbp=(), region: str = "World", years=None) -> pd.DataFrame:
    """Sites in the IGBP classes (all when empty), the region and with data in the years range."""
    keep = np.ones(len(sites), dtype=bool)
    if igbp:
        keep &= sites["igbp"].isin(list(igbp)).to_numpy()
    w, s, e, n = REGIONS[region]
    keep &= sites["lon"].between(w, e).to_numpy() & sites["lat"].between(s, n).to_numpy()
    if years is not None:
        keep &= (sites["last_year"] >= years[0]).to_numpy() & (sites["first_year"] <= years[1]).to_numpy()
    return sites[keep].reset_index(drop=True)


@functools.lru_cache(maxsize=1)
def _coast_vertices() -> np.ndarray:
    """The coastline polylines as one (n, 2) array of lon, lat, each line ended by a NaN row."""
    xs, ys = coastlines()
    return np.concatenate(
        [np.column_stack([np.r_[x, np.nan], np.r_[y, np.nan]]) for x, y in zip(xs, ys, strict=True)]
    )


def coast() -> hv.Path:
    """Coastlines as one NaN-separated path: drawn like 128 paths, built ~7× faster (HoloViews
    makes one dataset per path)."""
    return hv.Path([_coast_vertices()]).opts(color="#888888", line_width=0.6)


class SiteValidation:
    """Widgets and views of the site view of one session: the network's sites on a map, one site
    against every product holding the variable."""

    def __init__(self, state):
        self.state = state
        networks = api.list_networks()
        self.network = pn.widgets.Select(
            label="Network", options=networks, value=networks[0] if networks else None, width=200
        )
        self.variable = pn.widgets.Select(label="Variable", options=list(config.variables()), width=110)
        self.search = pn.widgets.AutocompleteInput(
            label="Find a site (id or name)",
            options=[],
            case_sensitive=False,
            search_strategy="includes",
            min_characters=1,
            placeholder="type a site id or name",
            width=300,
            restrict=False,  # Enter on typed text picks its first match (_on_search)
            css_classes=["site-search"],
        )
        self.igbp = pn.widgets.MultiChoice(label="IGBP class", options=[], width=220)
        self.region = pn.widgets.Select(label="Region", options=list(REGIONS), value="World", width=150)
        self.years = pn.widgets.IntRangeSlider(
            label="Years with data", start=2000, end=2030, value=(2000, 2030), width=240
        )
        self.one_year = pn.pane.Markdown("", visible=False, width=240, css_classes=["site-years"])
        self.colour_by = pn.widgets.RadioButtonGroup(options=["IGBP", "network"], value="IGBP")
        self.anomaly = pn.widgets.Checkbox(label="Anomalies (mean seasonal cycle removed)")
        self.corrected = pn.widgets.Checkbox(label="Compare LE/H with LE_CORR/H_CORR")
        self.spatial = pn.widgets.RadioButtonGroup(options=["nearest", "bilinear"], value="nearest")
        # LE as W m-2 or as evaporation, shared with the map's setting (state.le_units), shown for LE
        self.le_units = pn.widgets.RadioButtonGroup(
            options=list(evaporation.LE_UNITS), value=state.le_units, visible=False, css_classes=["le-units"]
        )
        self.site_map = pn.pane.HoloViews(None, name="site_map", sizing_mode="fixed")
        self.site_info = pn.pane.Markdown(
            "Pick a site on the map or by name.", css_classes=["site-info"], width=WIDTH
        )
        self.series_plot = pn.pane.HoloViews(None, name="site_series", sizing_mode="fixed")
        # a prediction product's interval band: what it is and the observations inside it
        self.band_note = pn.pane.Markdown("", width=WIDTH, visible=False, css_classes=["site-band-note"])
        self.scatter_product = pn.widgets.Select(label="Scatter: product", options=[], width=200)
        self.scatter_plot = pn.pane.HoloViews(None, name="site_scatter", sizing_mode="fixed")
        self.closure_plot = pn.pane.HoloViews(None, name="site_closure", sizing_mode="fixed")
        self.site_metrics = pn.widgets.Tabulator(
            pd.DataFrame(),
            show_index=False,
            disabled=True,
            width=WIDTH,
            layout="fit_data_stretch",
            sortable=False,  # a handful of rows; sort arrows would widen every column
            widths={"product": 170},
            formatters={"product": {"type": "textarea"}},
            css_classes=["site-metrics"],
        )
        self.metrics_note = pn.pane.Markdown("", width=WIDTH, css_classes=["metrics-note"])
        self.series_csv = pn.widgets.FileDownload(
            callback=self._series_csv,
            filename="site_series.csv",
            label="Site series as CSV",
            width=180,
            disabled=True,
        )
        self._sites = pd.DataFrame()
        self._shown = pd.DataFrame()
        self._view: site_view.SiteView | None = None  # as shown (LE possibly as evaporation)
        self._raw: SiteData | None = None  # as read, in the variable's own units
        self._site_future: concurrent.futures.Future | None = None
        self._poller = None
        self._selection = hv.streams.Selection1D()
        self._selection.add_subscriber(self._on_tap)

        pn.bind(lambda network: self._load_network(), self.network, watch=True)
        filters = (self.igbp, self.region, self.years, self.colour_by)
        self._loading = False  # a network being loaded sets the filters, then draws once
        pn.bind(lambda *values: None if self._loading else self._draw_sites(), *filters, watch=True)
        pn.bind(self._on_search, self.search, watch=True)
        options = (self.variable, self.anomaly, self.corrected, self.spatial)
        pn.bind(lambda *values: self._options_changed(), *options, watch=True)
        pn.bind(lambda product: self._draw_scatter(), self.scatter_product, watch=True)
        pn.bind(lambda site: self._site_from_state(), state.param.site, watch=True)
        self.le_units.param.watch(lambda e: setattr(state, "le_units", e.new), "value")
        state.param.watch(lambda e: self._units_changed(e.new), "le_units")
        self.variable.param.watch(lambda e: setattr(self.le_units, "visible", e.new == "le"), "value")
        self.le_units.visible = self.variable.value == "le"
        self._load_network()

    # ----- options and sites -------------------------------------------------------------------
    def options(self) -> ValidationOptions:
        return ValidationOptions.from_config(
            anomaly=self.anomaly.value, use_corrected=self.corrected.value, spatial=self.spatial.value
        )

    def _load_network(self) -> None:
        @guarded(self.state, "validation sites")
        def run():
            if not self.network.value:
                return
            self._loading = True
            try:
                fill()
            finally:
                self._loading = False
            self._draw_sites()

        def fill():
            self._sites = site_table(self.network.value)
            self.search.options = self._sites["label"].tolist()
            self.igbp.options = sorted(self._sites["igbp"].unique())
            years = self._sites[["first_year", "last_year"]].replace(0, np.nan)
            lo, hi = int(np.nanmin(years.to_numpy())), int(np.nanmax(years.to_numpy()))
            # a range slider needs two distinct ends: a one-year network says its year instead
            end = max(hi, lo + 1)
            self.years.param.update(start=lo, end=end, value=(lo, end), visible=hi > lo)
            self.one_year.param.update(object=f"Years with data: **{lo}**", visible=hi <= lo)
            variables = self._variables_of_network()
            self.variable.options = variables
            if self.variable.value not in variables and variables:
                self.variable.value = variables[0]

        run()

    def _variables_of_network(self) -> list[str]:
        if self._sites.empty:
            return list(config.variables())
        info = api.network_info(self.network.value)
        return network_variables(info.get("variables") or [])

    def _draw_sites(self) -> None:
        if self._sites.empty:
            self.site_map.object = None
            return
        shown = filter_sites(self._sites, self.igbp.value, self.region.value, tuple(self.years.value))
        self._shown = shown
        colour = "igbp" if self.colour_by.value == "IGBP" else "network"
        points = hv.Points(
            shown, ["lon", "lat"], ["site_id", "name", "igbp", "network", "years"], label="sites"
        ).opts(
            color=colour,
            cmap=list(CATEGORY_COLOURS),
            size=9,
            line_color="black",
            tools=["hover", "tap"],
            nonselection_alpha=0.5,
            show_legend=True,
            legend_position="right",
        )
        self._selection.source = points
        w, s, e, n = REGIONS[self.region.value]
        if self.region.value == "World" and len(shown):
            pad = 8.0
            w, e = max(shown["lon"].min() - pad, -180), min(shown["lon"].max() + pad, 180)
            s, n = max(shown["lat"].min() - pad, -90), min(shown["lat"].max() + pad, 90)
        overlay = coast() * points
        chosen = self.state.site
        if chosen and chosen[0] == self.network.value:
            hit = shown[shown["site_id"].astype(str) == chosen[1]]
            if len(hit):
                overlay = overlay * hv.Points(hit, ["lon", "lat"], label="selected").opts(
                    marker="star", size=20, color="yellow", line_color="black"
                )
        self.site_map.object = overlay.opts(
            width=700,
            height=380,
            xlim=(w, e),
            ylim=(s, n),
            title=f"{len(shown)} of {len(self._sites)} sites of {self.network.value} (click one)",
            xlabel="longitude (°E)",
            ylabel="latitude (°N)",
        )

    def _on_tap(self, index=None, **_kw) -> None:
        if not index or self._shown.empty:
            return
        row = self._shown.iloc[int(index[0])]
        self.state.site = (self.network.value, str(row["site_id"]))

    def _on_search(self, label: str) -> None:
        if not label or self._sites.empty:
            return
        hit = self._sites[self._sites["label"] == label]
        if hit.empty:
            text = str(label).lower()
            hit = self._sites[
                self._sites["site_id"].astype(str).str.lower().eq(text)
                | self._sites["name"].astype(str).str.lower().str.contains(text, regex=False)
            ]
        if hit.empty:
            self.state.message = f"no site of {self.network.value} matches {label!r}"
            return
        self.state.site = (self.network.value, str(hit.iloc[0]["site_id"]))

    def _site_from_state(self) -> None:
        site = self.state.site
        if not site:
            return
        network, _ = site
        if network != self.network.value and network in self.network.options:
            self.network.value = network
        self._draw_sites()
        self.load_site()

    def _options_changed(self) -> None:
        if self.state.site:
            self.load_site()

    # ----- background work ---------------------------------------------------------------------
    def load_site(self) -> None:
        """Start reading the selected site (background); the poller draws it when ready."""
        if not self.state.site or not self.variable.value:
            return
        network, site_id = self.state.site
        try:
            options = self.options()
        except FluxLensError as exc:
            self.state.message = f"validation: {exc}"
            return
        self.site_info.object = f"**{site_id}** ({network}): reading observations and products …"
        self._site_future = _SITE_POOL.submit(load_site_data, network, site_id, self.variable.value, options)
        self._poller = ui.session_poller(self._poller, self.poll, POLL_MS)

    def poll(self) -> None:
        """Draw finished background work (called periodically in a session, directly in tests)."""
        if self._site_future is not None and self._site_future.done():
            future, self._site_future = self._site_future, None
            self._site_done(future)
        if self._site_future is None and self._poller is not None:
            self._poller.stop()
            self._poller = None

    def wait(self, timeout: float = 300) -> None:
        """Block until the background work has finished and is drawn (tests, scripts)."""
        if self._site_future is not None:
            concurrent.futures.wait([self._site_future], timeout=timeout)
        self.poll()

    # ----- site view ---------------------------------------------------------------------------
    def _site_done(self, future) -> None:
        @guarded(self.state, "site validation")
        def run():
            try:
                self._raw = future.result()
            except FluxLensError as exc:
                self.site_info.object = f"Cannot validate this site: {exc}"
                raise
            self._view = in_units(self._raw, self.state.le_units)
            self._draw_site()

        run()

    def _units_changed(self, units: str) -> None:
        if self.le_units.value != units:
            self.le_units.value = units
        if self._raw is not None and self._raw.view.variable == "le":
            self._view = in_units(self._raw, units)
            self._draw_site()

    def _draw_site(self) -> None:
        view = self._view
        spec = shown_spec(view)
        units = spec["units"]
        s = view.site
        pixels = "; ".join(
            f"{name}: {p['method']} pixel ({p['pixel_lon']:.3f}, {p['pixel_lat']:.3f}), "
            f"{p['distance_km']:.1f} km"
            for name, p in view.pixels.items()
        )
        self.site_info.object = (
            f"### {s['site_id']} — {s.get('name', '')}\n"
            f"{view.network}, IGBP {s.get('igbp', '?')}, "
            f"lon {float(s['lon']):.4f}, lat {float(s['lat']):.4f}; "
            f"observed `{view.obs_column}` ({units}). Products: {pixels or 'none covers this site'}."
            + (" Values are anomalies from the mean seasonal cycle." if view.options.anomaly else "")
            + caveat_lines(list(view.pixels), view.variable)
            + (f"\n\n{ui.markdown_plain(spec['note'])}" if spec.get("note") else "")
        )
        self.series_plot.object = self._series_overlay(view, spec)
        lines = band_lines(view)
        self.band_note.param.update(object="\n\n".join(lines), visible=bool(lines))
        self.scatter_product.options = list(view.pairs)
        if self.scatter_product.value not in view.pairs:
            self.scatter_product.value = next(iter(view.pairs), None)
        self._draw_scatter()
        self._draw_closure()
        table = metrics_table(view.metrics)
        self.site_metrics.param.update(value=table, titles=metric_titles(table))
        self.metrics_note.object = METRIC_NOTE.format(units=units) + " r 95 % CI: Fisher-z interval of r."
        self.series_csv.disabled = False
        self.series_csv.filename = f"{s['site_id']}_{view.variable}_series.csv"

    def _series_overlay(self, view: site_view.SiteView, spec: dict):
        label = f"{spec['long_name']} ({spec['units']})"
        obs = view.obs
        if len(obs) and matching.samples_per_day(obs.index) > 1.0:  # sub-daily: show daily means
            daily_all = matching.to_daily(obs["value"], min_coverage=view.options.min_coverage)
            daily_ok = matching.to_daily(
                obs["value"].where(obs["qc_pass"]), min_coverage=view.options.min_coverage
            )
            obs = pd.DataFrame({"value": daily_all, "qc_pass": daily_ok.notna()})
        values = obs["value"]
        preds = dict(view.preds)
        if view.options.anomaly:
            values = matching.anomalies(values, window_days=view.options.anomaly_window_days)
            preds = {
                k: matching.anomalies(v, window_days=view.options.anomaly_window_days)
                for k, v in preds.items()
            }
        ok = obs["qc_pass"].to_numpy(dtype=bool)
        layers = [
            hv.Scatter(
                (obs.index[ok], values.to_numpy()[ok]), "time", label, label="observed (QC passed)"
            ).opts(color="black", size=4),
            hv.Scatter(
                (obs.index[~ok], values.to_numpy()[~ok]),
                "time",
                label,
                label="observed (gap-filled / rejected)",
            ).opts(color="#aaaaaa", marker="x", size=5),
        ]
        for i, (name, s) in enumerate(preds.items()):
            if name in view.bands and not view.options.anomaly:  # under the observations and curves
                colour = PRODUCT_COLOURS[i % len(PRODUCT_COLOURS)]
                layers.insert(0, band_area(view, name, label, colour))
            layers.append(
                hv.Curve((s.index, s.to_numpy()), "time", label, label=name).opts(
                    color=PRODUCT_COLOURS[i % len(PRODUCT_COLOURS)], line_width=1.5
                )
            )
        return hv.Overlay(layers).opts(
            width=WIDTH,
            height=300,
            show_grid=True,
            legend_position="right",
            tools=["hover"],
            title=f"{view.site['site_id']}: observed vs products",
        )

    def _draw_scatter(self) -> None:
        view = self._view
        name = self.scatter_product.value
        if view is None or name not in view.pairs:
            self.scatter_plot.object = None
            return
        spec = shown_spec(view)
        pairs = view.pairs[name]
        o, p = pairs["obs"].to_numpy(), pairs["pred"].to_numpy()
        lo = float(np.nanmin(np.r_[o, p])) if len(o) else 0.0
        hi = float(np.nanmax(np.r_[o, p])) if len(o) else 1.0
        xlabel, ylabel = f"observed ({spec['units']})", f"{name} ({spec['units']})"
        points = hv.Points((o, p), [xlabel, ylabel], label="pairs")
        if len(o) > DENSE_POINTS:
            from holoviews.operation.datashader import dynspread, rasterize

            points = dynspread(rasterize(points).opts(cmap="Blues", cnorm="log"))
        else:
            points = points.opts(color="#1f77b4", size=4, alpha=0.6)
        slope, intercept = metrics.ols_fit(o, p, min_n=view.options.min_pairs)
        layers = [
            points,
            hv.Curve([(lo, lo), (hi, hi)], xlabel, ylabel, label="1:1").opts(
                color="black", line_dash="dashed"
            ),
        ]
        if np.isfinite(slope):
            layers.append(
                hv.Curve(
                    [(lo, intercept + slope * lo), (hi, intercept + slope * hi)], xlabel, ylabel,
                    label=f"fit y = {slope:.2f} x + {intercept:.3g}",
                ).opts(color="#d62728")
            )  # fmt: skip
        m = view.metrics.set_index("product").loc[name]
        title = f"{name}: n {int(m['n'])}, R {m['r']:.2f}, RMSE {m['rmse']:.3g}"
        self.scatter_plot.object = hv.Overlay(layers).opts(
            width=HALF_WIDTH, height=400, show_grid=True, legend_position="top_left", title=title
        )

    def _draw_closure(self) -> None:
        view = self._view
        if view is None or view.closure_points is None or view.closure_points.empty:
            self.closure_plot.object = None
            return
        pts, c = view.closure_points, view.closure
        x, y = pts["available"].to_numpy(), pts["turbulent"].to_numpy()
        lo, hi = float(min(x.min(), y.min(), 0)), float(max(x.max(), y.max()))
        xl, yl = "Rn − G (W m-2)", "LE + H (W m-2)"
        layers = [
            hv.Points((x, y), [xl, yl], label="days").opts(color="#ff7f0e", size=4, alpha=0.6),
            hv.Curve([(lo, lo), (hi, hi)], xl, yl, label="1:1").opts(color="black", line_dash="dashed"),
        ]
        if np.isfinite(c["slope_origin"]):
            layers.append(
                hv.Curve([(lo, c["slope_origin"] * lo), (hi, c["slope_origin"] * hi)], xl, yl,
                         label=f"through origin: {c['slope_origin']:.2f}").opts(color="#d62728")
            )  # fmt: skip
        title = f"Closure: ratio {c['ratio']:.2f}, slope {c['ols_slope']:.2f}, n {c['n']}"
        self.closure_plot.object = hv.Overlay(layers).opts(
            width=HALF_WIDTH, height=400, show_grid=True, legend_position="top_left", title=title
        )

    def _series_csv(self):
        view = self._view
        if view is None:
            return io.StringIO("")
        spec = shown_spec(view)
        text = export.site_series_csv(
            view.site, view.network, view.variable, view.obs, view.preds, view.pixels,
            units=spec["units"], note=spec.get("note"),
        )  # fmt: skip
        return io.StringIO(text)

    def panel(self) -> pn.viewable.Viewable:
        return pn.Column(
            pn.Row(self.network, self.variable, self.search, pn.Column(pn.Spacer(height=18), self.le_units)),
            pn.Row(self.igbp, self.region, self.years, self.one_year, self.colour_by),
            pn.Row(self.anomaly, self.corrected, pn.pane.Markdown("Pixel:"), self.spatial),
            self.site_map,
            self.site_info,
            self.series_plot,
            self.band_note,
            pn.Row(pn.Column(self.scatter_product, self.scatter_plot), self.closure_plot),
            self.site_metrics,
            self.metrics_note,
            self.series_csv,
            name="Site",
        )


def band_area(view: site_view.SiteView, name: str, label: str, colour: str) -> hv.Area:
    """Product ``name``'s interval at the site: an area between its lower and upper bound."""
    b = view.bands[name]
    upper = hv.Dimension("interval_upper", label="upper bound")
    title = f"{name} {bands.level_label(view.band_levels[name])} interval"
    values = (b.index, b["lower"].to_numpy(), b["upper"].to_numpy())
    area = hv.Area(values, "time", [label, upper], label=title)
    return area.opts(color=colour, alpha=0.25, line_alpha=0)


def band_lines(view: site_view.SiteView) -> list[str]:
    """Under the site series, per product with an interval band: what the band is and the tower
    observations inside it (n inside / n, on the product's steps, in the units shown)."""
    out = []
    for name in view.bands:
        inside, n = site_view.band_coverage(view, name)
        text = f"{view.band_notes.get(name, name)} {bands.coverage_text(inside, n, view.band_levels[name])}"
        if view.options.anomaly:
            text += " (Band not drawn on anomalies; coverage counted on the values.)"
        out.append(ui.markdown_plain(text))
    return out


def significant(values, digits: int = 3) -> np.ndarray:
    """``values`` rounded to ``digits`` significant digits (NaN kept), for tables a person reads."""
    v = np.asarray(values, dtype="float64")
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.where(np.isfinite(v) & (v != 0), 10.0 ** (digits - 1 - np.floor(np.log10(np.abs(v)))), 1.0)
    return np.round(v * scale) / scale


def metrics_table(table: pd.DataFrame) -> pd.DataFrame:
    """A metrics table as shown: numbers to 3 significant digits (the CSV exports keep them all),
    r's confidence interval as one ``r_ci`` text column (``low…high``) after r."""
    out = table.copy()
    for c in out.columns:
        if c not in ("product", "site_id", "name", "igbp", "error", "n") and out[c].dtype.kind == "f":
            out[c] = significant(out[c])
    if {"r_ci_low", "r_ci_high"} <= set(out.columns):
        low, high = out.pop("r_ci_low").astype(float), out.pop("r_ci_high").astype(float)
        ci = [
            f"{lo:.2f}…{hi:.2f}" if np.isfinite(lo) and np.isfinite(hi) else ""
            for lo, hi in zip(low, high, strict=True)
        ]
        out.insert(list(out.columns).index("r") + 1, "r_ci", ci)
    return out


def metric_titles(table: pd.DataFrame) -> dict[str, str]:
    """Column titles of a metrics table (:data:`METRIC_TITLES`; :data:`METRIC_NOTE` explains them)."""
    return {c: METRIC_TITLES.get(c, c) for c in table.columns}


def sampling_caveats(products: list[str], variable: str) -> list[str]:
    """Warnings for products whose values are not daily means (e.g. ERA5 12 UTC samples): paired
    with a tower's daily means they compare one hour with a whole day."""
    out = []
    for name in products:
        try:
            caveat = product_info.sampling_caveat(api.product_info(name), variable)
        except FluxLensError:
            continue
        if caveat:
            out.append(
                f"Note: {caveat}. The pairs set these values against the tower's daily means, on the "
                "product's days only; the difference includes the daily cycle."
            )
    return out


def caveat_lines(products: list[str], variable: str) -> str:
    return "".join(f"\n\n{ui.markdown_plain(c)}" for c in sampling_caveats(products, variable))
