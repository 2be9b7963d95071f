"""Time series under the map: every product at the selected pixel (and, on an explanation map, the
pixel's SHAP contributions over time), the area-weighted mean of every product over the selected
box, and a histogram of the box on the current map."""

from __future__ import annotations

import io

import holoviews as hv
import numpy as np
import pandas as pd
import panel as pn

from app import compute, contributions, data, export, le_units, product_info, styles, ui
from app.ui import guarded
from validation import bands

# Wheel zoom in the toolbar, not active: the mouse wheel scrolls the page.
PLOT_OPTS = dict(
    width=800, height=260, show_grid=True, legend_position="right", tools=["hover"], active_tools=["pan"]
)


class SeriesPanel:
    def __init__(self, state):
        self.state = state
        self.pixel_info = pn.pane.Markdown(
            "Click the map to see the time series of every product at a pixel."
        )
        self.pixel_plot = pn.pane.HoloViews(None, name="pixel_series", sizing_mode="fixed")
        # what a shaded prediction-interval band is (level, method, calibration), under the plot
        self.band_note = pn.pane.Markdown("", width=800, visible=False, css_classes=["band-note"])
        self.pixel_table = pn.widgets.Tabulator(
            pd.DataFrame(),
            show_index=False,
            disabled=True,
            height=140,
            width=820,  # the map's width: a wider table widened the tab past 1280 px windows
            widths={"product": 120},  # job products' long names wrap instead of widening the table
            formatters={"product": {"type": "textarea"}},
            name="pixel_table",
            visible=False,
        )
        self.contrib_info = pn.pane.Markdown("", width=800, visible=False, name="contrib_info")
        self.contrib_plot = pn.pane.HoloViews(None, name="contrib_series", sizing_mode="fixed", visible=False)
        self.box_info = pn.pane.Markdown("Draw a box (box-select tool) for the area-weighted mean series.")
        self.box_plot = pn.pane.HoloViews(None, name="box_series", sizing_mode="fixed")
        self.hist_plot = pn.pane.HoloViews(None, name="box_histogram", sizing_mode="fixed")
        self.csv = pn.widgets.FileDownload(
            callback=self._csv,
            filename="pixel_series.csv",
            label="Pixel series as CSV",
            width=180,
            disabled=True,
        )
        self.box_csv = pn.widgets.FileDownload(
            callback=self._box_csv,
            filename="box_series.csv",
            label="Box series as CSV",
            width=180,
            disabled=True,
        )
        self._pixel_table = None
        self._box_table = None
        state.param.watch(lambda *e: self.update_pixel(), ["pixel", "variable", "le_units"])
        state.param.watch(lambda *e: self.update_contributions(), ["pixel", "product"])
        state.param.watch(lambda *e: self.update_box(), ["box", "variable", "le_units"])
        state.param.watch(
            lambda *e: self.update_histogram(),
            ["box", "product", "variable", "date", "aggregation", "period", "le_units"],
        )
        self.update_pixel()
        self.update_contributions()
        self.update_box()
        self.update_histogram()

    def update_pixel(self) -> None:
        @guarded(self.state, "pixel time series", loading=lambda: [self.pixel_plot])
        def run():
            s = self.state
            if s.pixel is None or not s.variable:
                self.pixel_plot.object = None
                self.band_note.param.update(object="", visible=False)
                self.csv.disabled = True
                return
            lon, lat = s.pixel
            series, rows, units, temps, notes = {}, [], {}, {}, set()
            intervals, band_notes = {}, []
            for name in data.products_with(s.variable):
                info = data.info(name)
                if not data.contains(info, lon, lat):
                    continue
                bound_names = bands.bound_variables(info.variables, s.variable)
                ds = data.point_series(name, lon, lat, variables=[s.variable, *(bound_names or ())])
                da, conv, temps[name] = le_units.convert_series(
                    ds[s.variable], name, s.variable, s.le_units, point=(lon, lat)
                )
                if bound_names:
                    intervals[name] = interval_band(ds, bound_names, s.variable, s.le_units, temps[name])
                    band_notes.append(
                        bands.describe(info.title, *bound_names, ds[bound_names[0]].attrs, info.provenance)
                    )
                da.attrs.update(pixel_lon=ds.attrs["pixel_lon"], pixel_lat=ds.attrs["pixel_lat"])
                series[name], units[name] = da, conv.units
                notes.add(conv.note)
                rows.append(
                    {
                        "product": name,
                        "pixel lon": round(ds.attrs["pixel_lon"], 5),
                        "pixel lat": round(ds.attrs["pixel_lat"], 5),
                        "distance (km)": round(ds.attrs["distance_km"], 3),
                        "valid time steps": int(np.isfinite(da.values).sum()),
                        "time steps": compute.sampling(da["time"].values) if "time" in da.dims else "none",
                        "each value": product_info.time_aggregation(info, s.variable)
                        or f"one value per {info.time_step}",
                    }
                )
            converted = le_units.converts(s.variable, s.le_units)
            self._pixel_table = compute.series_table(
                series, units, lon, lat, temps if converted else None, bounds=band_columns(intervals)
            )
            self.pixel_table.value = pd.DataFrame(rows)
            self.pixel_table.visible = bool(rows)
            self.csv.disabled = not series
            self.csv.filename = f"pixel_{s.variable}_{lon:.4f}_{lat:.4f}.csv"
            self.pixel_info.object = (
                f"**Pixel** lon {lon:.4f}, lat {lat:.4f}: {len(series)} product(s) with `{s.variable}` here"
                if series
                else f"**Pixel** lon {lon:.4f}, lat {lat:.4f}: no product with `{s.variable}` here"
            ) + _notes(notes)
            self.pixel_plot.object = self._curves(
                series, units, f"{s.variable} at ({lon:.3f}, {lat:.3f})", intervals
            )
            self.band_note.param.update(
                object="\n\n".join(ui.markdown_plain(n) for n in band_notes), visible=bool(band_notes)
            )

        run()

    def update_contributions(self) -> None:
        """The stacked SHAP contributions at the pixel when the map shows an explanation product."""

        @guarded(self.state, "pixel contributions", loading=lambda: [self.contrib_plot])
        def run():
            s = self.state
            info = data.info(s.product) if s.product else None
            explained = info is not None and contributions.is_explanation(info)
            if not explained or s.pixel is None or not data.contains(info, *s.pixel):
                self.contrib_plot.param.update(object=None, visible=False)
                self.contrib_info.param.update(object="", visible=False)
                return
            lon, lat = s.pixel
            names = contributions.features(info)
            ds = data.point_series(s.product, lon, lat, variables=contributions.variables(names))
            shown = contributions.plot(ds, names, f"SHAP contributions to LE at ({lon:.3f}, {lat:.3f})")
            self.contrib_plot.param.update(object=shown, visible=shown is not None)
            self.contrib_info.param.update(object=_contribution_text(ds, names, info), visible=True)

        run()

    def update_box(self) -> None:
        @guarded(self.state, "box time series", loading=lambda: [self.box_plot])
        def run():
            s = self.state
            if s.box is None or not s.variable:
                self.box_plot.object = None
                self.box_csv.disabled = True
                return
            w, so, e, n = s.box
            series, units, temps, notes = {}, {}, {}, set()
            for name in data.products_with(s.variable):
                bw, bs, be, bn = data.info(name).bbox
                if e < bw or w > be or n < bs or so > bn:
                    continue
                da = data.region_series(name, s.box, variables=[s.variable])[s.variable]
                series[name], conv, temps[name] = le_units.convert_series(
                    da, name, s.variable, s.le_units, bbox=s.box
                )
                units[name] = conv.units
                notes.add(conv.note)
            cx, cy = (w + e) / 2, (so + n) / 2
            converted = le_units.converts(s.variable, s.le_units)
            self._box_table = compute.series_table(series, units, cx, cy, temps if converted else None)
            self._box_table["bbox_wsen"] = f"{w:.4f},{so:.4f},{e:.4f},{n:.4f}"
            self.box_csv.disabled = not series
            self.box_info.object = (
                f"**Box** W {w:.3f} S {so:.3f} E {e:.3f} N {n:.3f}: cos(lat)-weighted mean of valid pixels"
            ) + _notes(notes)
            self.box_plot.object = self._curves(series, units, f"{s.variable}, box mean")

        run()

    def update_histogram(self) -> None:
        @guarded(self.state, "box histogram", loading=lambda: [self.hist_plot])
        def run():
            s = self.state
            if s.box is None or not (s.product and s.variable):
                self.hist_plot.object = None
                return
            w, so, e, n = s.box
            level = data.level_for_view(s.product, (w, e), (so, n), 400)
            field = data.field(s.product, s.variable, level, s.aggregation, s.date, s.period, (w, e), (so, n))
            field = field.sel(lon=slice(w, e), lat=slice(n, so))
            field, conv = le_units.convert_field(
                field, s.product, s.variable, s.le_units, agg=s.aggregation, date=s.date, period=s.period
            )
            counts, edges = compute.histogram(field, bins=30)
            label = conv.label
            self.hist_plot.object = hv.Histogram((edges, counts), kdims=[label], vdims=["pixels"]).opts(
                width=420,
                height=240,
                title=f"{s.product}: pixels in the box (level {level})",
                tools=["hover"],
                active_tools=["pan"],
            )

        run()

    def _curves(self, series: dict, units: dict[str, str], title: str, intervals: dict | None = None):
        if not series:
            return None
        s = self.state
        shown = set(units.values())
        label = f"{s.variable} ({shown.pop()})" if len(shown) == 1 else s.variable
        curves = []
        for i, (name, da) in enumerate(series.items()):
            colour = styles.SERIES_COLOURS[i % len(styles.SERIES_COLOURS)]
            t = pd.to_datetime(da["time"].values)
            if intervals and name in intervals:  # under its curve
                curves.append(band_area(t, intervals[name], label, name, colour))
            curve = hv.Curve((t, da.values), "time", label, label=name)
            curves.append(curve.opts(tools=["hover"], color=colour))
            if not compute.is_regular_daily(t):  # samples: show where the values are
                points = hv.Scatter((t, da.values), "time", label, label=name)
                curves.append(points.opts(size=4, color=colour))
        sign = product_info.sign_convention(s.variable)
        if sign:
            title = f"{title} · {sign.split(' (')[0]}"
        marker = hv.VLine(pd.Timestamp(s.date)).opts(color="grey", line_dash="dashed")
        return hv.Overlay([*curves, marker]).opts(title=title, **PLOT_OPTS)

    def _csv(self):
        table = self._pixel_table if self._pixel_table is not None else pd.DataFrame()
        return io.BytesIO(export.csv_bytes(table))

    def _box_csv(self):
        table = self._box_table if self._box_table is not None else pd.DataFrame()
        return io.BytesIO(export.csv_bytes(table))

    def panel(self) -> pn.viewable.Viewable:
        return pn.Column(
            self.pixel_info,
            self.pixel_plot,
            self.band_note,
            pn.Row(self.pixel_table),
            self.csv,
            self.contrib_info,
            self.contrib_plot,
            self.box_info,
            pn.Row(self.box_plot),
            pn.Row(self.hist_plot, self.box_csv),
        )


def _contribution_text(ds, names: list[str], info) -> str:
    """What the contribution plot shows at the pixel, its strongest drivers and the linearisation."""
    ranked = contributions.ranking(ds, names)
    if not ranked:
        return (
            "**Contributions**: no day at this pixel is explained (available energy below the "
            "partition threshold or an input missing)."
        )
    top = ", ".join(f"`{f}` {m:.1f}" for f, m in ranked[:3])
    base = float(np.nanmean(ds["le_base"].values))
    return (
        f"**Contributions** at pixel ({ds.attrs['pixel_lon']:.4f}, {ds.attrs['pixel_lat']:.4f}) from "
        f"{info.title}: largest mean |contribution| {top} W m-2. Bars stack each input's share of "
        f"LE − LE0 (upwards: raised LE; downwards: lowered it); the line is their sum. LE0 = A g(s0), "
        f"here {base:.1f} W m-2 on average, is LE at the model's base value s0; contributions in W m-2 "
        "are the EF contributions scaled by the secant of LE = A g(s) between s0 and s, so LE0 + Σ = LE."
    )


def _notes(notes: set[str]) -> str:
    """The λ notes of converted series, as Markdown paragraphs ('' when nothing was converted)."""
    return "".join(f"\n\n{ui.markdown_plain(n)}" for n in sorted(notes) if n)


def interval_band(ds, bound_names: tuple[str, str], variable: str, units: str, ta) -> dict:
    """A product's interval at a pixel from its point series ``ds``: ``names`` (lower, upper bound
    variables), ``lower``/``upper`` converted like ``variable`` (:func:`app.le_units.convert_like`
    with the same air temperature ``ta``) and ``level`` (e.g. 0.9)."""
    lo, hi = (le_units.convert_like(ds[b], variable, units, ta) for b in bound_names)
    level = bands.level_of(bound_names[0], ds[bound_names[0]].attrs)
    return {"names": bound_names, "lower": lo, "upper": hi, "level": level}


def band_columns(intervals: dict) -> dict[str, dict[str, np.ndarray]]:
    """Product → bound name → values, the CSV's bound columns (:func:`app.compute.series_table`)."""
    return {
        name: {b["names"][0]: np.asarray(b["lower"].values), b["names"][1]: np.asarray(b["upper"].values)}
        for name, b in intervals.items()
    }


def band_area(t, band: dict, label: str, name: str, colour: str) -> hv.Area:
    """The shaded interval of product ``name``: an area between its lower and upper bound."""
    upper = hv.Dimension("interval_upper", label=f"upper bound ({band['names'][1]})")
    lower, high = np.asarray(band["lower"].values), np.asarray(band["upper"].values)
    title = f"{name} {bands.level_label(band['level'])} interval"
    area = hv.Area((t, lower, high), "time", [label, upper], label=title)
    return area.opts(color=colour, alpha=0.25, line_alpha=0, tools=["hover"])
