"""The Jobs tab: submit a regional LE/H re-prediction (optionally a what-if scenario), an explanation
map of the emulator's EF, or an emulator retrain; follow and cancel jobs.

The web process only validates, queues and reads jobs (``models.jobs.JobService``); ``fluxlens
worker`` runs them. A periodic callback re-reads the user's jobs from the job database (one small
query); finished re-predictions are catalog products (the product picker lists them) and finished
retrains are model versions.
"""

from __future__ import annotations

import datetime as dt
import html

import panel as pn

from app import auth, ui
from catalog.errors import FluxLensError
from models.jobs import Job, JobService, WorkerBeat, format_duration
from models.scenarios import CLI_HELP as SCENARIO_HELP

REFRESH_MS = 2000
MAX_LISTED = 12  # newest jobs shown
LOG_LINES = 40


def _model_versions() -> list[str]:
    from models import registry

    return [v["version"] for v in registry.list_versions()]


def _parse_bbox(text: str) -> tuple[float, float, float, float]:
    parts = [p for p in text.replace(";", ",").replace(" ", ",").split(",") if p]
    try:
        values = tuple(float(p) for p in parts)
    except ValueError:
        values = ()
    if len(values) != 4:
        raise FluxLensError(f"box {text!r}: type W,S,E,N in degrees, e.g. -100,35,-95,40")
    return values


def _format_bbox(bbox) -> str:
    return ",".join(f"{v:.4g}" for v in bbox)


def _describe(job: Job) -> str:
    r = job.request
    if job.kind in ("repredict", "explain"):
        where = _format_bbox(r.get("bbox", ()))
        what = "LE/H" if job.kind == "repredict" else "EF explanation (SHAP)"
        text = f"{what}, model {r.get('version')}, box {where}, {r.get('start')} … {r.get('end')}"
        return text + (f", scenario {', '.join(r['scenario'])}" if r.get("scenario") else "")
    if job.kind == "scoreboard":
        return f"scoreboard {r.get('product')} {r.get('variable')} vs {r.get('network')}"
    period = f"{r.get('start') or 'all'} … {r.get('end') or 'all'}"
    return f"retrain ({'constrained' if r.get('constraint', True) else 'unconstrained'}), period {period}"


_COLUMNS = (("job", 5), ("request", 30), ("status", 12), ("progress", 20), ("time", 13), ("result", 20))
_TABLE_HEAD = (
    "<table class='jobs' style='width:100%;table-layout:fixed;font-size:12px'>"
    + "".join(f"<col style='width:{w}%'>" for _, w in _COLUMNS)
    + "<tr>"
    + "".join(f"<th>{name}</th>" for name, _ in _COLUMNS)
    + "</tr>"
)


def _log_line_html(line) -> str:
    stamp = dt.datetime.fromtimestamp(line.at, dt.UTC).strftime("%H:%M:%S")
    return f"{stamp} {line.level} {html.escape(line.message)}"


def _job_html(job: Job) -> str:
    """One job as a table row: id, what, status, progress bar, times, result or error."""
    times = []
    if job.started_at is not None:
        times.append(f"elapsed {format_duration(job.elapsed_s())}")
    if job.status == "running":
        times.append(f"~{format_duration(job.remaining_s())} left")
    if job.attempts > 1:
        times.append(f"attempt {job.attempts}")
    if job.output:
        where = {
            "repredict": "product picker",
            "explain": "product picker",
            "scoreboard": "Validation tab's scoreboard cache",
        }.get(job.kind, "model versions")
        title = job.request.get("title") if job.kind in ("repredict", "explain") else None
        named = (
            f"{html.escape(title)}, <code>{html.escape(job.output)}</code>"
            if title
            else (f"<code>{html.escape(job.output)}</code>")
        )
        result = f"{named} (in the {where})"
    elif job.error:
        result = f"<span style='color:#a00'>{html.escape(job.error)}</span>"
    else:
        result = "waiting for a worker" if job.status == "queued" else ""
    chunks = f"{job.progress_done}/{job.progress_total}" if job.progress_total else ""
    status = job.status + (" (cancel requested)" if job.cancel_requested and job.is_active else "")
    bar = f"<progress value='{round(job.fraction * 1000)}' max='1000' style='width:100%'></progress>"
    return (
        f"<tr class='job-row' data-job='{job.id}' data-status='{job.status}'>"
        f"<td><b>#{job.id}</b></td><td style='overflow-wrap:anywhere'>{html.escape(_describe(job))}</td>"
        f"<td class='status {job.status}'>{status}</td>"
        f"<td>{bar} {job.fraction:.0%} {chunks}</td>"
        f"<td>{' · '.join(times)}</td><td style='overflow-wrap:anywhere'>{result}</td></tr>"
    )


MODEL_OWN = "the model's own"
INPUT_ROLES = {"forcing": "Forcing", "static": "Static layers", "ssm": "Soil moisture", "radiation": "Rn, G"}
# product kinds (catalog ProductInfo.kind) offered for each role
INPUT_KINDS = {
    "forcing": {"forcing"},
    "static": {"static"},
    "ssm": {"soil_moisture"},
    "radiation": {"flux"},
}


class JobsView:
    """The tab's widgets and callbacks for one session."""

    def __init__(self, state, service: JobService | None = None):
        self.state = state
        self.service = service or auth.job_service()
        self.user = auth.current_user() if pn.state.curdoc and pn.state.curdoc.session_context else state.user
        if getattr(state, "user", None) != self.user:
            state.user = self.user
        self.can_submit = not (self.service.require_login and auth.is_anonymous(self.user))
        self.statuses: dict[int, str] = {}
        self.jobs_shown: list[Job] = []

        self.kind = pn.widgets.RadioButtonGroup(
            label="Job",
            options={
                "Re-predict LE/H": "repredict",
                "Explain EF (SHAP map)": "explain",
                "Retrain emulator": "retrain",
            },
            value="repredict",
        )
        self.bbox = pn.widgets.TextInput(
            label="Box W,S,E,N (degrees)", placeholder="-100,35,-95,40", width=260
        )
        self.use_box = pn.widgets.Button(label="Use box drawn on map", width=180)
        self.use_box.on_click(lambda _e: self._fill_bbox(getattr(self.state, "box", None)))
        self.use_view = pn.widgets.Button(label="Use map view", width=120)
        self.use_view.on_click(lambda _e: self._fill_bbox(self._view_bbox()))
        start, end = self._default_period()
        self.start = pn.widgets.DatePicker(label="First day", value=start, width=130)
        self.end = pn.widgets.DatePicker(label="Last day", value=end, width=130)
        self.version = pn.widgets.Select(label="Model version", options=[], width=260)
        self.product_name = pn.widgets.TextInput(label="Product name (optional)", width=260)
        self.scenario = pn.widgets.TextInput(
            label="What-if scenario (optional)",
            placeholder="ta+2K, precip*0.8, ssm-0.05, lai*1.1",
            description=SCENARIO_HELP,
            width=400,
        )
        # inputs per role: the model's own by default, or any catalog product (checked at submit)
        self.inputs = {
            role: pn.widgets.Select(label=label, options={MODEL_OWN: ""}, value="", width=190)
            for role, label in INPUT_ROLES.items()
        }
        self._refresh_inputs()
        self.constraint = pn.widgets.Checkbox(label="Energy-balance constraint (LE + H = Rn − G)", value=True)
        self.features = pn.widgets.MultiChoice(
            label="Features (empty: default set)", options=_feature_names()
        )
        self.sites = pn.widgets.TextInput(label="Sites (comma-separated ids, empty: all)", width=400)
        self.submit_button = pn.widgets.Button(label="Submit", color="primary", width=120)
        self.submit_button.on_click(lambda _e: self.submit())
        self.message = pn.pane.Alert("", alert_type="light", visible=False, margin=(5, 5))
        self.workers = pn.pane.Alert(
            "", alert_type="light", sizing_mode="stretch_width", margin=(5, 5), css_classes=["jobs-workers"]
        )
        # The list's structure never changes after the page is built: one HTML table, a job picker
        # with Cancel, and a log box, all of fixed size; refreshes only change their values.
        self.table = pn.pane.HTML(
            "",
            sizing_mode="stretch_width",
            height=330,
            css_classes=["jobs-table"],
            styles={"overflow-y": "auto"},
        )
        self.selected = pn.widgets.Select(label="Job", options={}, width=330)
        self.selected.param.watch(lambda _e: self._show_selected(), "value")
        self.cancel_button = pn.widgets.Button(label="Cancel job", color="danger", width=110, disabled=True)
        self.cancel_button.on_click(lambda _e: self.selected.value and self.cancel(self.selected.value))
        self.log = pn.pane.HTML(
            "",
            sizing_mode="stretch_width",
            height=200,
            css_classes=["job-log"],
            styles={"overflow-y": "auto", "font-family": "monospace", "font-size": "12px"},
        )

        if hasattr(state, "box"):
            state.param.watch(lambda e: self._fill_bbox(e.new), "box")
            if state.box:
                self._fill_bbox(state.box)
        self._refresh_versions()
        self.refresh()

    # -- form -------------------------------------------------------------------------------------

    def _view_bbox(self):
        view_bbox = getattr(self.state, "view_bbox", None)
        return view_bbox() if callable(view_bbox) else None

    def _default_period(self) -> tuple[dt.date, dt.date]:
        period = getattr(self.state, "period", None)
        if period and all(period):
            return tuple(dt.date.fromisoformat(str(d)[:10]) for d in period)
        day = getattr(self.state, "date", None) or dt.date(2018, 7, 1)
        return day, day + dt.timedelta(days=29)

    def _fill_bbox(self, bbox) -> None:
        if bbox:
            self.bbox.value = _format_bbox(bbox)

    def _refresh_versions(self) -> None:
        try:
            versions = _model_versions()
        except (FluxLensError, ImportError, OSError):
            versions = []
        if versions != self.version.options:
            current = self.version.value
            self.version.options = versions
            self.version.value = current if current in versions else (versions[-1] if versions else None)

    def _refresh_inputs(self) -> None:
        try:
            from catalog import api

            products = api.list_products()
        except (FluxLensError, OSError):
            products = []
        for role, widget in self.inputs.items():
            kinds = INPUT_KINDS[role]
            names = [p.name for p in products if p.kind in kinds]
            options = {MODEL_OWN: "", **{n: n for n in names}}
            if options != widget.options:
                current = widget.value
                widget.options = options
                widget.value = current if current in options.values() else ""

    def request(self) -> dict:
        if self.kind.value in ("repredict", "explain"):
            request = {
                "version": self.version.value,
                "bbox": list(_parse_bbox(self.bbox.value)),
                "start": str(self.start.value),
                "end": str(self.end.value),
            }
            if self.product_name.value.strip():
                request["product_name"] = self.product_name.value.strip()
            inputs = {role: w.value for role, w in self.inputs.items() if w.value}
            if inputs:
                request["inputs"] = inputs
            if self.kind.value == "repredict" and self.scenario.value.strip():
                request["scenario"] = self.scenario.value.strip()
            return request
        request = {
            "constraint": bool(self.constraint.value),
            "start": str(self.start.value),
            "end": str(self.end.value),
        }
        if self.features.value:
            request["features"] = list(self.features.value)
        sites = [s.strip() for s in self.sites.value.split(",") if s.strip()]
        if sites:
            request["sites"] = sites
        return request

    def _say(self, text: str, kind: str) -> None:
        self.message.object, self.message.alert_type, self.message.visible = text, kind, True

    def submit(self) -> Job | None:
        try:
            job = self.service.submit(self.kind.value, self.request(), self.user)
        except FluxLensError as exc:
            self._say(str(exc), "danger")
            return None
        self._say(f"Job #{job.id} queued.", "success")
        self.refresh()
        return job

    def cancel(self, job_id: int) -> None:
        try:
            job = self.service.cancel(job_id, self.user)
        except FluxLensError as exc:
            self._say(str(exc), "danger")
            return
        self._say(f"Job #{job.id}: {'cancel requested' if job.is_active else job.status}.", "warning")
        self.refresh()

    # -- list -------------------------------------------------------------------------------------

    def refresh(self) -> None:
        """Re-read this user's newest jobs (one query) and update the table, picker and log."""
        jobs = self.service.list_jobs(self.user, limit=MAX_LISTED)
        self.jobs_shown = jobs
        self._show_workers()
        rows = "".join(_job_html(job) for job in jobs)
        table = f"{_TABLE_HEAD}{rows}</table>" if jobs else "<p class='jobs-empty'>No jobs yet.</p>"
        if table != self.table.object:
            self.table.object = table
        options = {f"#{job.id} {job.kind} ({job.status})": job.id for job in jobs}
        if options != self.selected.options:
            current = self.selected.value
            self.selected.options = options
            self.selected.value = current if current in options.values() else (jobs[0].id if jobs else None)
        self._show_selected()
        finished = [
            j for j in jobs if j.status == "succeeded" and self.statuses.get(j.id, "succeeded") != "succeeded"
        ]
        self.statuses = {job.id: job.status for job in jobs}
        if finished:
            self._refresh_versions()
            self._refresh_inputs()  # a finished job may have added a product

    def _show_workers(self) -> None:
        """Whether a job worker is alive (reported within the limits' stale time), in plain words."""
        try:
            alive = self.service.store.live_workers(self.service.limits.stale_s)
        except FluxLensError as exc:
            text, kind = f"The job database cannot be read: {html.escape(str(exc))}", "danger"
        else:
            text, kind = workers_text(alive)
        if text != self.workers.object or kind != self.workers.alert_type:
            self.workers.param.update(object=text, alert_type=kind)

    def _show_selected(self) -> None:
        """Cancel button state and log of the picked job (one small query)."""
        job = next((j for j in self.jobs_shown if j.id == self.selected.value), None)
        self.cancel_button.disabled = job is None or not job.is_active or not self.can_submit
        if job is None:
            text = ""
        else:
            try:
                lines = self.service.logs(job.id, self.user)[-LOG_LINES:]
            except FluxLensError as exc:
                lines, text = [], html.escape(str(exc))
            else:
                text = "<br>".join(_log_line_html(line) for line in lines)
        if text != self.log.object:
            self.log.object = text

    def layout(self) -> pn.viewable.Viewable:
        scenario = pn.Column(self.scenario, margin=0)
        explain_note = pn.pane.Markdown(
            EXPLAIN_NOTE, visible=False, margin=(0, 5), width=ui.CONTENT_WIDTH - 40
        )
        repredict = pn.Column(
            pn.Row(self.bbox, self.use_box, self.use_view),
            pn.Row(self.version, self.product_name),
            scenario,
            explain_note,
            pn.pane.Markdown("Inputs (default: the products the model was trained with, or the demo cubes):",
                             margin=(0, 5)),
            pn.Row(*self.inputs.values()),
        )  # fmt: skip
        retrain = pn.Column(self.constraint, self.features, self.sites, visible=False)
        self.kind.param.watch(
            lambda e: (
                setattr(repredict, "visible", e.new in ("repredict", "explain")),
                setattr(scenario, "visible", e.new == "repredict"),
                setattr(explain_note, "visible", e.new == "explain"),
                setattr(retrain, "visible", e.new == "retrain"),
            ),
            "value",
        )
        if not self.service.require_login:
            who = f"Login is off: jobs are submitted as **{self.user}**."
        elif auth.is_anonymous(self.user):
            who = "Browsing as guest."
        else:
            who = f"Signed in as **{self.user}**."
        if not self.can_submit:
            who += f" [Log in]({auth.LOGIN_URL}) to submit or cancel jobs."
        elif self.service.require_login:
            who += f" [Log out]({auth.LOGOUT_URL})"
        self.submit_button.disabled = not self.can_submit
        form = pn.Column(
            pn.pane.Markdown(who, css_classes=["jobs-user"]),
            self.kind,
            repredict,
            retrain,
            pn.Row(self.start, self.end),
            self.submit_button,
            self.message,
            sizing_mode="stretch_width",
        )
        # One column, whether a worker runs first, then the form above the list: side by side they
        # need ~1340 px, wider than the tab at 1280 or 1400 px windows.
        return pn.Column(
            self.workers,
            form,
            pn.pane.Markdown("### Your jobs", margin=(0, 5)),
            self.table,
            pn.Row(self.selected, self.cancel_button),
            self.log,
            width=ui.CONTENT_WIDTH,
            css_classes=["jobs-panel"],
        )


EXPLAIN_NOTE = (
    "An explanation map splits each pixel-day's predicted evaporative fraction into one SHAP "
    "contribution per input (LightGBM TreeSHAP), also in W m-2 of LE; its `dominant_driver` map "
    "names the input with the largest contribution. It takes some 60 times as long as a re-prediction of "
    "the same box and period: start with a small box."
)

NO_WORKER = (
    "**No job worker is running**, so submitted jobs wait in the queue. Start one on this data "
    "directory with `fluxlens worker` (or serve with `fluxlens serve --workers 1`, what "
    "`bash dev.sh serve` does)."
)


def workers_text(alive: list[WorkerBeat]) -> tuple[str, str]:
    """(Markdown, alert type) saying which workers are alive, or how to start one."""
    if not alive:
        return NO_WORKER, "warning"
    hosts = ", ".join(f"{w.host} (pid {w.pid})" for w in alive[:3]) + (" …" if len(alive) > 3 else "")
    return f"{len(alive)} job worker{'s' if len(alive) > 1 else ''} running: {hosts}.", "success"


def _feature_names() -> list[str]:
    from models import features

    return list(features.FEATURES)


def panel(state, *, service: JobService | None = None, refresh_ms: int = REFRESH_MS) -> pn.viewable.Viewable:
    """The Jobs tab for ``state`` (an ``app.state.AppState``)."""
    view = JobsView(state, service)
    layout = view.layout()
    if pn.state.curdoc and pn.state.curdoc.session_context:
        pn.state.add_periodic_callback(view.refresh, period=refresh_ms)
    return layout
