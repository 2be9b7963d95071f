"""Following one worker job from a view: submit it, show its progress in a status pane, then hand the
finished job to the view (which reads the result from the cache the job wrote). The web process never
computes the result itself."""

from __future__ import annotations

import time
from collections.abc import Callable

import panel as pn

from app import ui
from app.ui import guarded
from catalog.errors import FluxLensError
from models.jobs import JobService

POLL_MS = 500


class JobFollower:
    """Submits jobs of one view and follows the latest. ``what(job)`` names it in the status line,
    ``done(job)`` draws a succeeded job's result; ``button`` is disabled while a job runs."""

    def __init__(
        self,
        state,
        service: JobService,
        status: pn.pane.Markdown,
        button: pn.widgets.Button,
        *,
        what: Callable,
        done: Callable,
    ):
        self.state, self.service, self.status, self.button = state, service, status, button
        self.what, self.done = what, done
        self.job_id: int | None = None
        self._poller = None

    def submit(self, kind: str, request: dict) -> bool:
        """Queue a job (its request checked first); a refused request is stated in the status line."""
        try:
            job = self.service.submit(kind, request, self.state.user)
        except FluxLensError as exc:
            self.status.object = f"Not started: {ui.markdown_plain(ui.user_message(str(exc)))}"
            return False
        self.job_id = job.id
        self.button.disabled = True
        self.status.object = f"{self.what(job)}: job {job.id} queued, waiting for a worker …"
        self._poller = ui.session_poller(self._poller, self.poll, POLL_MS)
        return True

    def poll(self) -> None:
        """Show the job's progress, and its result once it has finished (called periodically in a
        session, directly in tests)."""
        if self.job_id is not None:
            self._follow(self.service.job(self.job_id, self.state.user))
        if self.job_id is None and self._poller is not None:
            self._poller.stop()
            self._poller = None

    def wait(self, timeout: float = 300) -> None:
        """Poll until the job has finished and is drawn (tests, scripts)."""
        deadline = time.monotonic() + timeout
        self.poll()
        while self.job_id is not None and time.monotonic() < deadline:
            time.sleep(0.2)
            self.poll()

    def _follow(self, job) -> None:
        what = f"{self.what(job)}: job {job.id}"
        if job.status == "queued":
            self.status.object = f"{what} queued, waiting for a worker …"
            return
        if job.status == "running":
            total = job.progress_total
            share = f" ({100 * job.progress_done / total:.0f} %)" if total else ""
            self.status.object = f"{what} running{share} …"
            return
        self.job_id = None
        self.button.disabled = False
        if job.status != "succeeded":
            self.status.object = (
                f"{what} {job.status}: {ui.markdown_plain(ui.user_message(job.error or 'no result'))}"
            )
            return
        guarded(self.state, what)(self.done)(job)
