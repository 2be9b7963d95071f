"""The Jobs tab: submit a regional LE/H re-prediction or an emulator retrain, follow and cancel jobs.

The web process only validates, queues and reads jobs (``models.jobs.JobService``); ``fluxlens
worker`` runs them. A periodic callback re-reads the user's jobs from the job database (one small
query); finished re-predictions are catalog products (the product picker lists them) and finished
retrains are model versions.
"""

from __future__ import annotations

import datetime as dt

import panel as pn

from app import auth
from catalog.errors import FluxLensError
from models.jobs import ACTIVE_STATES, Job, JobService, format_duration

REFRESH_MS = 2000
LOG_LINES = 40
STATUS_COLOURS = {
    "queued": "secondary",
    "running": "primary",
    "succeeded": "success",
    "failed": "danger",
    "cancelled": "warning",
}


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
    if job.kind == "repredict":
        where = _format_bbox(r.get("bbox", ()))
        return f"LE/H from model `{r.get('version')}` over {where}, {r.get('start')} … {r.get('end')}"
    period = f"{r.get('start') or 'all'} … {r.get('end') or 'all'}"
    return f"retrain ({'constrained' if r.get('constraint', True) else 'unconstrained'}), period {period}"


class JobRow:
    """One job in the list: header, progress bar, times, log and cancel; updated in place."""

    def __init__(self, view: JobsView, job: Job):
        self.view, self.job_id, self.status = view, job.id, job.status
        self.title = pn.pane.Markdown(margin=(0, 5))
        self.progress = pn.indicators.Progress(value=0, max=1000, width=260, height=16, margin=(5, 5))
        self.detail = pn.pane.Markdown(margin=(0, 5), css_classes=["job-detail"])
        self.cancel = pn.widgets.Button(label="Cancel", color="danger", width=80, margin=(0, 5))
        self.cancel.on_click(lambda _e: self.view.cancel(self.job_id))
        self.show_log = pn.widgets.Toggle(label="Log", width=60, margin=(0, 5))
        self.show_log.param.watch(lambda _e: self.update_log(), "value")
        self.log = pn.pane.Markdown(visible=False, margin=(0, 5), css_classes=["job-log"])
        self.layout = pn.Column(
            self.title,
            pn.Row(self.progress, self.cancel, self.show_log),
            self.detail,
            self.log,
            css_classes=["job-row", f"job-{job.id}"],
            styles={"border-bottom": "1px solid #ddd"},
            sizing_mode="stretch_width",
        )
        self.update(job)

    def update(self, job: Job) -> None:
        self.status = job.status
        self.title.object = f"**#{job.id} {job.kind}** · {job.status} — {_describe(job)}"
        self.progress.value = int(round(job.fraction * 1000))
        self.progress.bar_color = STATUS_COLOURS.get(job.status, "secondary")
        self.progress.active = job.status == "queued"
        parts = []
        if job.progress_total:
            parts.append(f"{job.progress_done}/{job.progress_total} chunks ({job.fraction:.0%})")
        if job.started_at is not None:
            parts.append(f"elapsed {format_duration(job.elapsed_s())}")
        if job.status == "running":
            parts.append(f"about {format_duration(job.remaining_s())} left")
        if job.attempts > 1:
            parts.append(f"attempt {job.attempts}")
        if job.output:
            where = "product picker" if job.kind == "repredict" else "model versions"
            parts.append(f"result `{job.output}` (in the {where})")
        if job.error:
            parts.append(f"error: {job.error}")
        self.detail.object = " · ".join(parts) or "waiting for a worker"
        self.cancel.visible = job.status in ACTIVE_STATES and self.view.can_submit
        if self.show_log.value:
            self.update_log()

    def update_log(self) -> None:
        self.log.visible = self.show_log.value
        if not self.show_log.value:
            return
        try:
            lines = self.view.service.logs(self.job_id, self.view.user)[-LOG_LINES:]
        except FluxLensError as exc:
            self.log.object = str(exc)
            return
        text = "\n".join(
            f"{dt.datetime.fromtimestamp(line.at, dt.UTC):%H:%M:%S} {line.level} {line.message}"
            for line in lines
        )
        self.log.object = f"```\n{text}\n```"


class JobsView:
    """The tab's widgets and callbacks for one session."""

    def __init__(self, state, service: JobService | None = None):
        self.state = state
        self.service = service or auth.job_service()
        self.user = auth.current_user() if pn.state.curdoc and pn.state.curdoc.session_context else state.user
        if getattr(state, "user", None) != self.user:
            state.user = self.user
        self.can_submit = not (self.service.require_login and auth.is_anonymous(self.user))
        self.rows: dict[int, JobRow] = {}

        self.kind = pn.widgets.RadioButtonGroup(
            label="Job",
            options={"Re-predict LE/H": "repredict", "Retrain emulator": "retrain"},
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
        self.constraint = pn.widgets.Checkbox(label="Energy-balance constraint (LE + H = Rn − G)", value=True)
        self.features = pn.widgets.MultiChoice(
            label="Features (empty: default set)", options=_feature_names()
        )
        self.sites = pn.widgets.TextInput(label="Sites (comma-separated ids, empty: all)", width=400)
        self.submit_button = pn.widgets.Button(label="Submit", color="primary", width=120)
        self.submit_button.on_click(lambda _e: self.submit())
        self.message = pn.pane.Alert("", alert_type="light", visible=False, margin=(5, 5))
        self.jobs = pn.Column(sizing_mode="stretch_width", css_classes=["jobs-list"])
        self.empty = pn.pane.Markdown("No jobs yet.", css_classes=["jobs-empty"])

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

    def request(self) -> dict:
        if self.kind.value == "repredict":
            request = {
                "version": self.version.value,
                "bbox": list(_parse_bbox(self.bbox.value)),
                "start": str(self.start.value),
                "end": str(self.end.value),
            }
            if self.product_name.value.strip():
                request["product_name"] = self.product_name.value.strip()
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
        """Re-read this user's jobs (one query) and update the rows in place."""
        jobs = self.service.list_jobs(self.user)
        newly_finished = False
        for job in jobs:
            row = self.rows.get(job.id)
            if row is None:
                self.rows[job.id] = JobRow(self, job)
            else:
                newly_finished |= row.status != job.status and job.status == "succeeded"
                row.update(job)
        order = [self.rows[job.id].layout for job in jobs]
        if [id(o) for o in self.jobs.objects] != [id(o) for o in order]:
            self.jobs.objects = order or [self.empty]
        if newly_finished:
            self._refresh_versions()

    def layout(self) -> pn.viewable.Viewable:
        repredict = pn.Column(
            pn.Row(self.bbox, self.use_box, self.use_view),
            pn.Row(self.version, self.product_name),
        )
        retrain = pn.Column(self.constraint, self.features, self.sites, visible=False)
        self.kind.param.watch(
            lambda e: (
                setattr(repredict, "visible", e.new == "repredict"),
                setattr(retrain, "visible", e.new == "retrain"),
            ),
            "value",
        )
        who = f"Signed in as **{self.user}**." if not auth.is_anonymous(self.user) else "Browsing as guest."
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
            width=620,
        )
        return pn.Row(
            form,
            pn.Column("### Your jobs", self.jobs, sizing_mode="stretch_width"),
            sizing_mode="stretch_width",
            css_classes=["jobs-panel"],
        )


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
