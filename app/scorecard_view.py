"""The Analyses tab's ILAMB scorecard: products × variables against a station network or a gridded
reference, with extra named regions and an uploaded GeoJSON polygon as region rows.

Cached scorecards are shown at once; anything else is a ``scorecard`` job (:mod:`validation.jobs`) the
worker runs. The table is :func:`validation.export.scorecard_tables` (the same HTML as the exported
report), coloured by absolute score or relative to the other products (ILAMB's relative scale).
"""

from __future__ import annotations

import io

import panel as pn

from app import auth, ui
from app.job_follow import JobFollower
from catalog import api
from catalog.errors import FluxLensError, InputError
from models.jobs import JobService
from validation import config, export, scorecard
from validation import jobs as validation_jobs

COLOURINGS = {"Absolute score": "absolute", "Relative to the other products (ILAMB)": "relative"}


class ScorecardView:
    """Widgets and views of one session's scorecard."""

    def __init__(self, state, service: JobService | None = None):
        self.state = state
        self.service = service or auth.job_service()
        variables = list(config.load_config()["variables"])
        self.variables = pn.widgets.CheckButtonGroup(
            name="Variables",
            options=variables,
            value=variables[:1],
            button_type="primary",
            button_style="outline",
        )
        self.products = pn.widgets.MultiChoice(name="Products", options=[], value=[], width=430)
        self.reference = pn.widgets.Select(
            name="Reference (stations or a gridded product)", options=[], width=300
        )
        self.regions = pn.widgets.TextInput(
            name="Extra regions (countries or continents, comma-separated)",
            placeholder="e.g. Germany, Europe",
            width=430,
        )
        self.polygon = pn.widgets.FileInput(accept=".geojson,.json", multiple=False, width=260)
        self.polygon_name = pn.widgets.TextInput(
            name="Polygon region name", placeholder="from the file name", width=200
        )
        self.colouring = pn.widgets.RadioButtonGroup(
            options=COLOURINGS, value="absolute", button_type="light"
        )
        self.run = pn.widgets.Button(name="Compute scorecard", button_type="primary", width=180)
        self.status = pn.pane.Markdown("", width=ui.CONTENT_WIDTH, css_classes=["scorecard-status"])
        self.table = pn.pane.HTML(
            "", width=ui.CONTENT_WIDTH, name="scorecard_table", css_classes=["scorecard-table"]
        )
        self.csv = pn.widgets.FileDownload(
            callback=self._csv, filename="scorecard.csv", label="Scorecard as CSV", width=170, disabled=True
        )
        self.html = pn.widgets.FileDownload(
            callback=self._html, filename="scorecard.html", label="Report as HTML", width=170, disabled=True
        )
        self.cards: scorecard.ScorecardSet | None = None
        self.follow = JobFollower(
            state, self.service, self.status, self.run, what=self._what, done=self._done
        )
        self.run.on_click(lambda e: self.submit())
        self.colouring.param.watch(lambda e: self._draw(), "value")
        self.variables.param.watch(lambda e: self._refresh_products(), "value")
        self._refresh_choices()

    # ----------------------------------------------------------------------------------------------

    def _refresh_choices(self) -> None:
        networks = api.list_networks()
        products = [p.name for p in api.list_products()]
        self.reference.options = networks + products
        if self.reference.value not in self.reference.options:
            self.reference.value = networks[0] if networks else (products[0] if products else None)
        self._refresh_products()

    def _refresh_products(self) -> None:
        wanted = set(self.variables.value or [])
        options = [p.name for p in api.list_products() if wanted & set(p.variables)]
        self.products.options = options
        kept = [p for p in self.products.value if p in options]
        shown = [self.state.product] if self.state.product in options else options[:1]  # the map's product
        self.products.value = kept or shown

    def options(self) -> scorecard.ScorecardOptions:
        """The scorecard options of the widgets (``InputError`` for an unknown region or a polygon that
        is not GeoJSON)."""
        regions = [r.strip() for r in (self.regions.value or "").split(",") if r.strip()]
        polygons = []
        upload = ui.uploaded_geojson(self.polygon)
        if upload is not None:
            stem, text = upload
            polygons.append(((self.polygon_name.value or "").strip() or stem, text))
        return scorecard.ScorecardOptions.from_config(regions=regions, polygons=polygons)

    def submit(self) -> None:
        """Show the scorecard from the cache, or submit a job computing it."""
        products, variables, reference = (
            list(self.products.value),
            list(self.variables.value),
            self.reference.value,
        )
        if not products or not variables or not reference:
            self.status.object = "Choose at least one product, one variable and a reference."
            return
        try:
            options = self.options()
            request = validation_jobs.scorecard_request(products, variables, reference, options=options)
            cached = self._cached(request, options)
        except FluxLensError as exc:
            self.status.object = f"Not started: {ui.markdown_plain(ui.user_message(str(exc)))}"
            return
        if cached is not None:
            self._show(cached, "from cache")
            return
        self.follow.submit(validation_jobs.SCORECARD_KIND, request)

    @staticmethod
    def _cached(request: dict, options) -> scorecard.ScorecardSet | None:
        """The scorecards of every requested variable if all are cached (a variable no product holds
        counts as skipped), else None."""
        cards, skipped = {}, {}
        for variable in request["variables"]:
            holding = scorecard.products_with(request["products"], variable)
            if not holding:
                skipped[variable] = f"none of {', '.join(request['products'])} holds {variable}"
                continue
            try:
                key = scorecard.scorecard_key(holding, variable, request["reference"], options)
            except InputError:
                return None  # the job states why
            card = scorecard.cached_scorecard(key)
            if card is None:
                return None
            cards[variable] = card
        return scorecard.ScorecardSet(cards, skipped) if cards else None

    def _what(self, job) -> str:
        r = job.request
        return f"Scorecard of {', '.join(r['products'])} ({', '.join(r['variables'])}) vs {r['reference']}"

    def _done(self, job) -> None:
        cards = validation_jobs.scorecard_set_of(job.output)
        if cards is None:
            raise FluxLensError(f"the scorecard of job {job.id} is no longer cached")
        self._show(cards, f"job {job.id}")

    def _show(self, cards: scorecard.ScorecardSet, source: str) -> None:
        self.cards = cards
        first = next(iter(cards.cards.values()))
        skipped = "".join(
            f" {ui.markdown_plain(v)}: no scorecard ({ui.markdown_plain(ui.user_message(why))})."
            for v, why in cards.skipped.items()
        )
        synthetic = [p.name for p in api.list_products() if p.name in cards.products and p.synthetic]
        note = f" Synthetic products: {', '.join(synthetic)}." if synthetic else ""
        self.status.object = (
            f"**Scorecard** of {ui.markdown_plain(', '.join(cards.products))} against "
            f"**{ui.markdown_plain(first.meta['reference'])}** ({first.meta['reference_kind']}), "
            f"{first.meta['period'][0]}…{first.meta['period'][1]}, monthly means of paired steps "
            f"({source}).{skipped}{note} Scores 0–1, 1 = equal to the reference "
            f"({ui.markdown_plain(scorecard.REFERENCE)})."
        )
        self._draw()

    def _draw(self) -> None:
        if self.cards is None:
            return
        self.table.object = export.scorecard_tables(self.cards, self.colouring.value)
        self.csv.disabled = self.html.disabled = False

    def _csv(self):
        return io.StringIO(export.scorecard_set_csv(self.cards) if self.cards else "")

    def _html(self):
        return io.StringIO(export.scorecard_html(self.cards, self.colouring.value) if self.cards else "")

    def wait(self, timeout: float = 300) -> None:
        self.follow.wait(timeout)

    def panel(self) -> pn.viewable.Viewable:
        return pn.Column(
            pn.pane.Markdown(
                "ILAMB scores (bias, RMSE, seasonal phase, interannual variability, spatial distribution, "
                "overall) of products against towers, stations or a gridded reference, per region.",
                width=ui.CONTENT_WIDTH,
            ),
            pn.Row(
                pn.Column(pn.pane.Markdown("**Variables**", margin=(0, 10)), self.variables), self.reference
            ),
            self.products,
            self.regions,
            pn.Row(
                pn.Column(
                    pn.pane.Markdown("**GeoJSON polygon** as a region (optional)", margin=(0, 10)),
                    self.polygon,
                ),
                self.polygon_name,
            ),
            pn.Row(self.run, self.colouring),
            self.status,
            pn.Row(self.csv, self.html),
            self.table,
            name="Scorecard",
        )
