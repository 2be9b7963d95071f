"""The Analyses tab's maps and diagrams (NASA Giovanni's analyses) of any catalog product: Hovmöller
diagrams over a box, climatology / seasonal / anomaly maps, a correlation map of two products and the
area-averaged series of a named region or an uploaded GeoJSON polygon.

Each is an ``analysis`` job (:mod:`validation.gridded`) the worker computes and caches; this view
submits it, then draws the cached result: diagrams as quad meshes, maps rasterised with datashader
over the coastlines, series as curves.
"""

from __future__ import annotations

import io
import json

import holoviews as hv
import numpy as np
import pandas as pd
import panel as pn
import xarray as xr
from holoviews.operation.datashader import rasterize

from app import auth, ui
from app.job_follow import JobFollower
from app.validation_site_panel import coast
from catalog import api
from catalog.errors import FluxLensError
from models.jobs import JobService
from validation import gridded, regions
from validation import jobs as validation_jobs

PLOT_HEIGHT = 430
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
DIVERGING = ("anomaly", "correlation")


def steps_of(ds: xr.Dataset) -> dict[str, object]:
    """The maps a result holds, label → coordinate value (one entry for a single map, none for a
    diagram or a series)."""
    a = ds.attrs["analysis"]
    if a == "climatology":
        return {MONTHS[int(m) - 1]: int(m) for m in ds["month"].values}
    if a == "seasonal":
        return {str(s): str(s) for s in ds["season"].values}
    if a == "anomaly":
        return {f"{pd.Timestamp(t):%Y-%m-%d}": t for t in ds["time"].values}
    if a == "correlation":
        return {"Pearson R": None}
    return {}


def _label(ds: xr.Dataset) -> str:
    return f"{ds.attrs['variable']} ({ds.attrs['units']})"


def _title(ds: xr.Dataset, what: str) -> str:
    start, end = json.loads(ds.attrs["period"])
    return f"{what}: {ds.attrs['product']} {ds.attrs['variable']}, {ds.attrs['where']}, {start}…{end}"


def analysis_plot(ds: xr.Dataset, step=None, *, width: int = ui.CONTENT_WIDTH) -> hv.Element:
    """The plot of a cached analysis result (``step``: the map to draw, a value of :func:`steps_of`)."""
    a, name = ds.attrs["analysis"], ds.attrs["variable"]
    size = dict(width=width, height=PLOT_HEIGHT)
    if a == "hovmoller_lat":
        da = ds[name].sortby("lat")
        mesh = hv.QuadMesh((da["time"].values, da["lat"].values, da.values.T), ["time", "lat"], [name])
        return mesh.opts(
            cmap="viridis", colorbar=True, clabel=_label(ds), tools=["hover"], xlabel="time",
            ylabel="latitude (°N)", title=_title(ds, "Hovmöller, time × latitude"), **size,
        )  # fmt: skip
    if a == "hovmoller_lon":
        da = ds[name].sortby("lon")
        mesh = hv.QuadMesh((da["lon"].values, da["time"].values, da.values), ["lon", "time"], [name])
        return mesh.opts(
            cmap="viridis", colorbar=True, clabel=_label(ds), tools=["hover"], xlabel="longitude (°E)",
            ylabel="time", title=_title(ds, "Hovmöller, longitude × time"), **size,
        )  # fmt: skip
    if a == "region_series":
        curve = hv.Curve((ds["time"].values, ds[name].values), "time", name)
        return curve.opts(
            color="#1f5f8b", tools=["hover"], xlabel="time", ylabel=_label(ds),
            title=_title(ds, "Area-weighted mean"), **size,
        )  # fmt: skip
    if a == "correlation":
        da, cmap, clim, what = ds["r"], "RdBu_r", (-1.0, 1.0), f"Correlation with {ds.attrs['product_b']}"
        label = "Pearson R"
    else:
        coord = {"climatology": "month", "seasonal": "season", "anomaly": "time"}[a]
        da = ds[name].sel({coord: step}) if step is not None else ds[name].isel({coord: 0})
        shown = next(k for k, v in steps_of(ds).items() if np.all(v == da[coord].values))
        what = {"climatology": "Climatology", "seasonal": "Seasonal mean", "anomaly": "Anomaly"}[
            a
        ] + f" {shown}"
        label = _label(ds)
        if a == "anomaly":
            top = float(np.nanmax(np.abs(ds[name].values))) if np.isfinite(ds[name].values).any() else 1.0
            cmap, clim = "RdBu_r", (-top, top)
        else:
            cmap, clim = "viridis", (float(np.nanmin(ds[name].values)), float(np.nanmax(ds[name].values)))
    da = da.sortby("lat").sortby("lon")
    image = hv.Image((da["lon"].values, da["lat"].values, da.values), ["lon", "lat"], [label.split(" (")[0]])
    w, s, e, n = json.loads(ds.attrs["bbox"])
    raster = rasterize(image, aggregator="first").opts(
        cmap=cmap, clim=clim, colorbar=True, clabel=label, tools=["hover"], xlabel="longitude (°E)",
        ylabel="latitude (°N)", title=_title(ds, what), xlim=(w, e), ylim=(s, n), **size,
    )  # fmt: skip
    return raster * coast()


class GriddedView:
    """Widgets and views of one session's Giovanni-style analyses."""

    def __init__(self, state, service: JobService | None = None):
        self.state = state
        self.service = service or auth.job_service()
        self.analysis = pn.widgets.Select(
            name="Analysis", options={v: k for k, v in gridded.ANALYSES.items()}, width=430
        )
        self.product = pn.widgets.Select(name="Product", options=[], width=250)
        self.variable = pn.widgets.Select(name="Variable", options=[], width=150)
        self.bbox = pn.widgets.TextInput(
            name="Box W,S,E,N (°; empty: the product's extent)", placeholder="e.g. -110,20,-80,50", width=300
        )
        self.use_view = pn.widgets.Button(name="Use the map's view", width=160)
        self.start = pn.widgets.TextInput(name="From (YYYY-MM-DD)", placeholder="first step", width=140)
        self.end = pn.widgets.TextInput(name="To (YYYY-MM-DD)", placeholder="last step", width=140)
        self.product_b = pn.widgets.Select(name="Second product", options=[], width=250, visible=False)
        self.variable_b = pn.widgets.Select(name="Its variable", options=[], width=150, visible=False)
        names = regions.region_names()
        self.region = pn.widgets.AutocompleteInput(
            name="Country or continent", options=names["continent"] + names["country"], case_sensitive=False,
            search_strategy="includes", min_characters=1, placeholder="e.g. Spain", width=250, visible=False,
        )  # fmt: skip
        self.polygon = pn.widgets.FileInput(accept=".geojson,.json", multiple=False, width=260, visible=False)
        self.polygon_note = pn.pane.Markdown("or a GeoJSON polygon:", visible=False, margin=(20, 10, 0, 10))
        self.run = pn.widgets.Button(name="Run analysis", button_type="primary", width=180)
        self.status = pn.pane.Markdown("", width=ui.CONTENT_WIDTH, css_classes=["analysis-status"])
        self.step = pn.widgets.Select(name="Map", options=[], width=160, visible=False)
        self.plot = pn.pane.HoloViews(None, name="analysis_plot", sizing_mode="fixed")
        self.note = pn.pane.Markdown("", width=ui.CONTENT_WIDTH, css_classes=["analysis-note"])
        self.netcdf = pn.widgets.FileDownload(
            callback=self._netcdf, filename="analysis.nc", label="Result as netCDF", width=170, disabled=True
        )
        self.csv = pn.widgets.FileDownload(
            callback=self._csv, filename="analysis.csv", label="Result as CSV", width=170, disabled=True
        )
        self.result: xr.Dataset | None = None
        self.follow = JobFollower(
            state, self.service, self.status, self.run, what=self._what, done=self._done
        )
        self.run.on_click(lambda e: self.submit())
        self.use_view.on_click(lambda e: self._from_view())
        self.analysis.param.watch(lambda e: self._arrange(), "value")
        self.product.param.watch(lambda e: self._variables(self.product, self.variable), "value")
        self.product_b.param.watch(lambda e: self._variables(self.product_b, self.variable_b), "value")
        self.step.param.watch(lambda e: self._draw(), "value")
        self._products()
        self._arrange()

    # ----------------------------------------------------------------------------------------------

    def _products(self) -> None:
        names = [p.name for p in api.list_products() if any(v != "flag" for v in p.variables)]
        for widget in (self.product, self.product_b):
            widget.options = names
        preferred = self.state.product if self.state.product in names else (names[0] if names else None)
        self.product.value = preferred
        self.product_b.value = next((n for n in names if n != preferred), preferred)
        self._variables(self.product, self.variable)
        self._variables(self.product_b, self.variable_b)

    def _variables(self, product: pn.widgets.Select, variable: pn.widgets.Select) -> None:
        names = []
        if product.value:
            names = [v for v in api.product_info(product.value).variables if v != "flag"]
        keep = variable.value if variable.value in names else None
        if variable is self.variable_b and self.variable.value in names:
            keep = keep or self.variable.value
        if variable is self.variable and self.state.variable in names:
            keep = keep or self.state.variable
        variable.options = names
        variable.value = keep or (names[0] if names else None)

    def _arrange(self) -> None:
        a = self.analysis.value
        correlation, series = a == "correlation", a == "region_series"
        self.product_b.visible = self.variable_b.visible = correlation
        self.region.visible = self.polygon.visible = self.polygon_note.visible = series
        self.bbox.visible = self.use_view.visible = not series

    def _from_view(self) -> None:
        box = self.state.view_bbox()
        if box is None:
            self.status.object = "The map has no view yet: open the Map tab first."
            return
        self.bbox.value = ",".join(f"{v:.2f}" for v in box)

    def request(self) -> dict:
        """The job request of the widgets (``InputError`` for an unreadable polygon file)."""
        a = self.analysis.value
        out = {"analysis": a, "product": self.product.value, "variable": self.variable.value}
        if self.bbox.value.strip() and a != "region_series":
            out["bbox"] = self.bbox.value.strip()
        if self.start.value.strip() or self.end.value.strip():
            out["period"] = [self.start.value.strip() or "1900-01-01", self.end.value.strip() or "2100-12-31"]
        if a == "correlation":
            out.update(product_b=self.product_b.value, variable_b=self.variable_b.value)
        if a == "region_series":
            polygon = ui.uploaded_geojson(self.polygon)
            if polygon is not None:
                out["polygon"] = list(polygon)
            elif self.region.value:
                out["region"] = self.region.value
        return out

    def submit(self) -> None:
        """Show the result from the cache, or submit a job computing it."""
        try:
            req = gridded.AnalysisRequest.from_dict(self.request())
            cached = gridded.cached_analysis(gridded.analysis_key(req))
        except FluxLensError as exc:
            self.status.object = f"Not started: {ui.markdown_plain(ui.user_message(str(exc)))}"
            return
        if cached is not None:
            self._show(cached, "from cache")
            return
        self.follow.submit(validation_jobs.ANALYSIS_KIND, req.as_dict())

    def _what(self, job) -> str:
        r = job.request
        return (
            f"{gridded.ANALYSES[r['analysis']].split(' (')[0].capitalize()} of {r['product']} {r['variable']}"
        )

    def _done(self, job) -> None:
        ds = gridded.cached_analysis(job.output)
        if ds is None:
            raise FluxLensError(f"the result of job {job.id} is no longer cached")
        self._show(ds, f"job {job.id}")

    def _show(self, ds: xr.Dataset, source: str) -> None:
        self.result = ds
        steps = steps_of(ds)
        many = len(steps) > 1
        self.step.param.update(options=list(steps), visible=many)
        if many and self.step.value not in steps:
            self.step.value = next(iter(steps))
        synthetic = " The product is synthetic (demo)." if int(ds.attrs.get("synthetic", 0)) else ""
        self.status.object = (
            f"**{ui.markdown_plain(ds.attrs['description'].capitalize())}** of "
            f"{ui.markdown_plain(ds.attrs['product'])} `{ds.attrs['variable']}` ({ds.attrs['units']}), "
            f"{ui.markdown_plain(ds.attrs['where'])} ({source}).{synthetic}"
        )
        self.note.object = f"Computed as: {ui.markdown_plain(' '.join(ds.attrs['formula'].split()))}"
        stem = f"{ds.attrs['analysis']}_{ds.attrs['product']}_{ds.attrs['variable']}"
        self.netcdf.param.update(filename=f"{stem}.nc", disabled=False)
        self.csv.param.update(filename=f"{stem}.csv", disabled=False)
        self._draw()

    def _draw(self) -> None:
        if self.result is None:
            return
        steps = steps_of(self.result)
        step = steps.get(self.step.value) if len(steps) > 1 else None
        self.plot.object = analysis_plot(self.result, step)

    def _netcdf(self):
        return io.BytesIO(self.result.to_netcdf() if self.result is not None else b"")

    def _csv(self):
        if self.result is None:
            return io.StringIO("")
        head = "".join(f"# {k}: {' '.join(str(v).split())}\n" for k, v in self.result.attrs.items())
        return io.StringIO(head + self.result.to_dataframe().to_csv(float_format="%.6g"))

    def wait(self, timeout: float = 300) -> None:
        self.follow.wait(timeout)

    def panel(self) -> pn.viewable.Viewable:
        return pn.Column(
            pn.pane.Markdown(
                "Hovmöller diagrams, climatology, seasonal and anomaly maps, correlation maps and "
                "area-averaged series of any catalog product, computed by the job worker.",
                width=ui.CONTENT_WIDTH,
            ),
            self.analysis,
            pn.Row(self.product, self.variable, self.product_b, self.variable_b),
            pn.Row(self.bbox, self.use_view, self.region, self.polygon_note, self.polygon),
            pn.Row(self.start, self.end),
            pn.Row(self.run, self.step, self.netcdf, self.csv),
            self.status,
            self.plot,
            self.note,
            name="Maps and diagrams",
        )
