"""The Validation tab's scoreboard: one product against every site of a network.

The web process never computes it: a cached scoreboard is shown at once, anything else is submitted
as a ``scoreboard`` job (:mod:`validation.jobs`) that the job worker runs; the page shows the job's
progress and then the result from the scoreboard cache.
"""

from __future__ import annotations

import dataclasses
import io
import time
from collections.abc import Callable

import holoviews as hv
import numpy as np
import pandas as pd
import panel as pn
from bokeh.models import HoverTool

from app import auth, ui
from app.ui import guarded
from app.validation_site_panel import (
    CATEGORY_COLOURS,
    HALF_WIDTH,
    METRIC_NOTE,
    WIDTH,
    caveat_lines,
    coast,
    metric_titles,
    metrics_table,
)
from catalog import evaporation
from catalog.errors import FluxLensError
from models.jobs import JobService
from validation import config, export, scoreboard, site_view, taylor
from validation import jobs as validation_jobs
from validation.config import ValidationOptions

POLL_MS = 500
MAP_METRICS = ("r", "rmse", "ubrmse", "bias", "kge", "nse", "rho", "n")
# On screen: what fits beside the sort arrows at 880 px; the CSV has every column (names, rho, the
# pixel distance, anomaly and closure metrics).
TABLE_COLUMNS = ("site_id", "igbp", "n", "bias", "rmse", "ubrmse", "r", "kge", "nse", "error")
TAYLOR_FRAME_PX = 560  # width of the diagram's frame (legend included); its height follows the aspect


def taylor_diagram(table: pd.DataFrame, title: str) -> hv.Overlay:
    """Normalised Taylor diagram of the sites in ``table`` (columns sigma_norm, r, crmsd_norm)."""
    ok = table[np.isfinite(table["sigma_norm"]) & np.isfinite(table["r"])]
    rmax = taylor.radius_limit(ok["sigma_norm"])
    negative = bool((ok["r"] < 0).any())
    g = taylor.grid(rmax, negative=negative)
    radii = [float(arc[0, 0]) for arc in g["std_arcs"]]
    layers = [
        hv.Path(g["std_arcs"]).opts(color="#bbbbbb", line_width=1),
        hv.Path([g["ref_arc"]]).opts(color="#444444", line_width=1.2, line_dash="dashed"),
        hv.Path(g["r_rays"]).opts(color="#cccccc", line_width=1),
        hv.Path(g["crmsd_arcs"]).opts(color="#2ca02c", line_width=1, line_dash="dotted", alpha=0.7),
        hv.Labels(pd.DataFrame(g["r_labels"], columns=["x", "y", "text"]), ["x", "y"], "text").opts(
            text_font_size="9pt", text_color="#555555"
        ),
        hv.Labels(
            pd.DataFrame(
                {"x": [r for r in radii], "y": [-0.04 * rmax] * len(radii), "text": [f"{r:g}" for r in radii]}
            ),
            ["x", "y"],
            "text",
        ).opts(text_font_size="8pt", text_color="#555555"),
        hv.Text(rmax / 2, -0.1 * rmax, "normalised standard deviation").opts(text_font_size="9pt"),
        hv.Text(0.82 * rmax, 0.82 * rmax, "correlation").opts(text_font_size="9pt", angle=-45),
    ]
    x, y = taylor.xy(ok["sigma_norm"], ok["r"])
    classes = sorted(ok["igbp"].astype(str).unique())
    colour_of = {c: CATEGORY_COLOURS[i % len(CATEGORY_COLOURS)] for i, c in enumerate(classes)}
    pts = pd.DataFrame(
        {
            "x": x,
            "y": y,
            "site_id": ok["site_id"].astype(str),
            "igbp": ok["igbp"].astype(str),
            "r": ok["r"],
            "sigma_norm": ok["sigma_norm"],
            "crmsd_norm": ok["crmsd_norm"],
            "colour": ok["igbp"].astype(str).map(colour_of),
        }
    )
    vdims = ["site_id", "igbp", "r", "sigma_norm", "crmsd_norm", "colour"]
    hover = HoverTool(tooltips=[(v, f"@{v}") for v in vdims[:-1]])
    layers.append(
        hv.Points(pts, ["x", "y"], vdims).opts(color="colour", size=8, tools=[hover], line_color="black")
    )
    layers.append(hv.Points([(1.0, 0.0)]).opts(color="black", marker="star", size=16))
    xlim, ylim = taylor_limits(rmax, negative)
    layers.extend(_taylor_legend(colour_of, rmax, xlim, ylim))
    aspect = (ylim[1] - ylim[0]) / (xlim[1] - xlim[0])
    return hv.Overlay(layers).opts(
        title=title,
        frame_width=TAYLOR_FRAME_PX,
        frame_height=round(TAYLOR_FRAME_PX * aspect),  # one unit is as long on both axes
        xlim=xlim,
        ylim=ylim,
        xaxis=None,
        yaxis=None,
        show_grid=False,
        show_legend=False,
        toolbar="above",  # not over the legend at the frame's right edge
    )


def _taylor_legend(colour_of: dict[str, str], rmax: float, xlim, ylim) -> list:
    """The IGBP classes and the observation star drawn in the diagram's own space, right of its
    outer arc (a Bokeh legend outside the frame made the figure wider than its box)."""
    x0 = 1.2 * rmax
    step = (ylim[1] - ylim[0]) / (len(colour_of) + 3)
    ys = ylim[1] - step * np.arange(1, len(colour_of) + 2)
    entries = pd.DataFrame(
        {"x": x0, "y": ys[:-1], "text": list(colour_of), "colour": list(colour_of.values())}
    )
    text = dict(text_font_size="9pt", text_align="left", text_baseline="middle", text_color="#333333")
    return [
        hv.Points(entries, ["x", "y"], ["colour"]).opts(color="colour", size=8, line_color="black"),
        hv.Labels(entries.assign(x=x0 + 0.05 * rmax), ["x", "y"], "text").opts(**text),
        hv.Points([(x0, ys[-1])]).opts(color="black", marker="star", size=12),
        hv.Labels({"x": [x0 + 0.05 * rmax], "y": [ys[-1]], "text": ["observation"]}, ["x", "y"], "text").opts(
            **text
        ),
    ]


def taylor_limits(rmax: float, negative: bool) -> tuple[tuple[float, float], tuple[float, float]]:
    """x and y ranges of a Taylor diagram of outer radius ``rmax`` (at least 1.1 × the largest
    normalised standard deviation, :func:`validation.taylor.radius_limit`): the outer arc, the
    correlation labels at 1.06 ``rmax``, the axis label below and the legend on the right
    (0.55 ``rmax``), with a margin."""
    xmin = -rmax * 1.15 if negative else -0.08 * rmax
    return (xmin, rmax * 1.75), (-0.14 * rmax, rmax * 1.12)


class ScoreboardView:
    """Widgets and views of the scoreboard of one session, for the ``network`` and ``variable``
    chosen in the site view and its matching ``options()``."""

    def __init__(
        self,
        state,
        network: pn.widgets.Select,
        variable: pn.widgets.Select,
        options: Callable[[], ValidationOptions],
        service: JobService | None = None,
    ):
        self.state = state
        self.network, self.variable, self.options = network, variable, options
        self.service = service or auth.job_service()
        self.sb_product = pn.widgets.Select(label="Product", options=[], width=200)
        self.sb_run = pn.widgets.Button(label="Compute scoreboard", color="primary", width=180)
        self.sb_status = pn.pane.Markdown("", css_classes=["scoreboard-status"], width=WIDTH)
        self.sb_table = pn.widgets.Tabulator(
            pd.DataFrame(),
            show_index=False,
            disabled=True,
            pagination="local",
            page_size=15,
            width=WIDTH,
            layout="fit_data_stretch",
            widths={"error": 170},
            formatters={"error": {"type": "textarea"}},
            css_classes=["scoreboard-table"],
        )
        self.sb_note = pn.pane.Markdown("", width=WIDTH, css_classes=["metrics-note"])
        self.sb_metric = pn.widgets.Select(
            label="Metric on the map", options=list(MAP_METRICS), value="r", width=150
        )
        self.sb_map = pn.pane.HoloViews(None, name="scoreboard_map", sizing_mode="fixed")
        self.sb_taylor = pn.pane.HoloViews(None, name="taylor", sizing_mode="fixed")
        self.sb_igbp = pn.widgets.Tabulator(
            pd.DataFrame(), show_index=False, disabled=True, width=WIDTH, layout="fit_data_stretch"
        )
        self.sb_pooled = pn.pane.Markdown("", width=WIDTH, css_classes=["scoreboard-pooled"])
        self.sb_csv = pn.widgets.FileDownload(
            callback=self._metrics_csv,
            filename="metrics.csv",
            label="Metrics as CSV",
            width=160,
            disabled=True,
        )
        self._board: scoreboard.Scoreboard | None = None
        self._board_options: ValidationOptions | None = None
        self._job_id: int | None = None  # the scoreboard job being waited for
        self._poller = None
        self.sb_run.on_click(lambda e: self.run_scoreboard())
        state.param.watch(lambda e: self._units_changed(), "le_units")
        pn.bind(self._refresh_products, self.variable, watch=True)
        pn.bind(lambda metric: self._draw_board(), self.sb_metric, watch=True)
        self._refresh_products(self.variable.value)

    def _refresh_products(self, variable: str | None) -> None:
        products = site_view.products_for(variable) if variable else []
        self.sb_product.options = products
        if self.sb_product.value not in products:
            self.sb_product.value = products[0] if products else None

    def _request_options(self, variable: str | None) -> ValidationOptions:
        """The site view's matching options, LE scored in the session's LE units."""
        units = self.state.le_units if variable == "le" else evaporation.W_M2
        return dataclasses.replace(self.options(), le_units=units)

    def _units_changed(self) -> None:
        """A shown LE scoreboard follows the session's LE units (from the cache, or a new job)."""
        board = self._board
        if board is not None and board.variable == "le" and self._job_id is None:
            self.run_scoreboard()

    def run_scoreboard(self) -> None:
        """Show the chosen product's scoreboard from the cache, or submit a job computing it."""
        product, variable, network = self.sb_product.value, self.variable.value, self.network.value
        if not product or not network:
            self.sb_status.object = "Choose a product holding this variable."
            return
        try:
            options = self._request_options(variable)
            key = scoreboard.scoreboard_key(product, variable, network, options=options)
            board = scoreboard.cached_scoreboard(key, product, variable, network)
            self._board_options = options
            if board is not None:
                self._show(board)
                return
            request = validation_jobs.scoreboard_request(product, variable, network, options=options)
            job = self.service.submit(validation_jobs.KIND, request, self.state.user)
        except FluxLensError as exc:
            self.state.message = f"validation: {exc}"
            self.sb_status.object = f"Scoreboard not started: {ui.markdown_plain(ui.user_message(str(exc)))}"
            return
        self._job_id = job.id
        self.sb_status.object = f"Scoreboard of {product}: job {job.id} queued, waiting for a worker …"
        self.sb_run.disabled = True
        self._poller = ui.session_poller(self._poller, self.poll, POLL_MS)

    def poll(self) -> None:
        """Show the job's progress, and its result once it has finished (called periodically in a
        session, directly in tests)."""
        if self._job_id is not None:
            self._follow(self.service.job(self._job_id, self.state.user))
        if self._job_id is None and self._poller is not None:
            self._poller.stop()
            self._poller = None

    def wait(self, timeout: float = 300) -> None:
        """Poll until the job has finished and is drawn (tests, scripts)."""
        deadline = time.monotonic() + timeout
        self.poll()
        while self._job_id is not None and time.monotonic() < deadline:
            time.sleep(0.2)
            self.poll()

    def _follow(self, job) -> None:
        what = f"Scoreboard of {job.request['product']}: job {job.id}"
        if job.status == "queued":
            self.sb_status.object = f"{what} queued, waiting for a worker …"
            return
        if job.status == "running":
            self.sb_status.object = f"{what}: {job.progress_done} of {job.progress_total or '?'} sites"
            return
        self._job_id = None
        self.sb_run.disabled = False

        @guarded(self.state, "scoreboard")
        def run():
            if job.status != "succeeded":
                self.sb_status.object = (
                    f"Scoreboard {job.status}: {ui.markdown_plain(job.error or 'no result')}"
                )
                return
            r = job.request
            self._board_options = ValidationOptions.from_config(**r["options"])
            board = scoreboard.cached_scoreboard(job.output, r["product"], r["variable"], r["network"])
            if board is None:
                raise FluxLensError(f"scoreboard of job {job.id} is no longer in {scoreboard.cache_dir()}")
            self._show(dataclasses.replace(board, cached=False))  # computed by the job

        run()

    def _show(self, board: scoreboard.Scoreboard) -> None:
        self._board = board
        ok = board.table[board.table["error"].fillna("") == ""]
        reasons = board.table["error"].fillna("")
        reasons = reasons[reasons != ""]
        why = ""
        if len(ok) == 0 and len(reasons):
            outside = reasons.str.contains("is outside product").sum()
            why = (
                f" No site of {board.network} lies inside {board.product}."
                if outside == len(reasons)
                else f" First reason: {ui.markdown_plain(ui.user_message(reasons.iloc[0]))}"
            )
        self.sb_status.object = (
            f"**{board.product}** `{board.variable}` vs **{board.network}**: {len(ok)} of "
            f"{len(board.table)} sites matched{' (from cache)' if board.cached else ''}.{why}"
            + caveat_lines([board.product], board.variable)
        )
        self._draw_board()

    def _draw_board(self) -> None:
        board = self._board
        if board is None:
            return
        table = board.table
        units = config.variable_spec(board.variable)["units"]
        if board.variable == "le" and self._board_options is not None:
            units = self._board_options.le_units
        view = metrics_table(table[[c for c in TABLE_COLUMNS if c in table]])
        self.sb_table.param.update(value=view, titles=metric_titles(view))
        self.sb_note.object = METRIC_NOTE.format(units=units) + (
            f" {evaporation.lambda_note('the tower’s daily air temperature')}"
            if units == evaporation.MM_D
            else ""
        )
        metric = self.sb_metric.value
        ok = table[np.isfinite(table[metric].astype(float))]
        pts = hv.Points(ok, ["lon", "lat"], [metric, "site_id", "name", "igbp", "n"], label=metric).opts(
            color=metric, cmap="RdYlBu" if metric in ("r", "kge", "nse", "rho") else "viridis",
            colorbar=True, size=10, line_color="black", tools=["hover"],
            clabel=metric, show_legend=False,
        )  # fmt: skip
        lon, lat = table["lon"].astype(float), table["lat"].astype(float)
        self.sb_map.object = (coast() * pts).opts(
            width=WIDTH - HALF_WIDTH // 2,
            height=380,
            xlim=(max(lon.min() - 3, -180), min(lon.max() + 3, 180)),
            ylim=(max(lat.min() - 3, -90), min(lat.max() + 3, 90)),
            title=f"{metric} per site: {board.product} {board.variable}",
            xlabel="longitude (°E)",
            ylabel="latitude (°N)",
        )
        self.sb_taylor.object = taylor_diagram(table, f"Taylor diagram: {board.product} {board.variable}")
        summary = metrics_table(scoreboard.igbp_summary(table))
        self.sb_igbp.param.update(value=summary, titles=metric_titles(summary))
        p = board.pooled
        matched = table[table["error"].fillna("") == ""]
        med_r = float(np.nanmedian(matched["r"])) if len(matched) else np.nan
        med_rmse = float(np.nanmedian(matched["rmse"])) if len(matched) else np.nan
        self.sb_pooled.object = (
            f"Pooled over {p.get('sites', 0)} sites and {int(p.get('n', 0))} pairs: "
            f"Pearson r {p.get('r', np.nan):.3f}, RMSE {p.get('rmse', np.nan):.4g} {units}, "
            f"ubRMSE {p.get('ubrmse', np.nan):.4g} {units}, bias {p.get('bias', np.nan):.4g} {units}. "
            f"Median per site: r {med_r:.3f}, RMSE {med_rmse:.4g} {units}. "
            "Pooled r mixes between-site differences and is usually higher than per-site r."
        )
        self.sb_csv.disabled = False
        self.sb_csv.filename = f"metrics_{board.product}_{board.variable}_{board.network}.csv"

    def _metrics_csv(self):
        if self._board is None:
            return io.StringIO("")
        options = self._board_options or self._request_options(self._board.variable)
        return io.StringIO(export.metrics_csv(self._board, options))

    def panel(self) -> pn.viewable.Viewable:
        return pn.Column(
            pn.Row(self.sb_product, self.sb_run, self.sb_metric, self.sb_csv),
            self.sb_status,
            self.sb_pooled,
            self.sb_table,
            self.sb_note,
            self.sb_map,
            self.sb_taylor,
            pn.pane.Markdown("Median of each metric per IGBP class:"),
            self.sb_igbp,
            name="Scoreboard",
        )
