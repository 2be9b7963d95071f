"""The job worker (``fluxlens worker``): claims queued jobs one at a time and runs them on Dask.

Dask runs on the local threaded scheduler, or on an existing ``dask.distributed`` cluster when
``$FLUXLENS_DASK_SCHEDULER`` names its scheduler address (``tcp://host:8786``). While a job runs,
a thread heartbeats the job row; progress is written per chunk and cancellation is polled between
chunks. On start (and then every ``stale_s``) the worker recovers jobs left running by dead
workers (``JobStore.recover_stale``). SIGTERM / SIGINT: finish the current job, then exit.
"""

from __future__ import annotations

import logging
import os
import secrets
import signal
import socket
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field

from catalog.errors import FluxLensError
from models.cluster import dask_scheduler
from models.job_limits import JobLimits
from models.jobs import CANCELLED, FAILED, SUCCEEDED, Job, JobStore, job_kinds, registered_kind

LOG_SOURCES = ("models", "catalog", "data_prep")

log = logging.getLogger(__name__)


def new_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


@dataclass
class JobContext:
    """What a running job may call: ``progress(done, total)`` and ``should_cancel()``."""

    store: JobStore
    job: Job
    worker_id: str
    limits: JobLimits
    lost: threading.Event = field(default_factory=threading.Event)

    def progress(self, done: int, total: int) -> None:
        if not self.store.set_progress(self.job.id, self.worker_id, done, total):
            self.lost.set()

    def should_cancel(self) -> bool:
        """A cancel was requested, or this worker lost the job (declared dead)."""
        return self.lost.is_set() or self.store.should_stop(self.job.id, self.worker_id)


def _completed_earlier(ctx: JobContext) -> bool:
    """Whether an earlier attempt of this job registered its product, then its worker died."""
    from catalog import api

    req = ctx.job.request
    existing = {p.name: p for p in api.list_products()}.get(req["product_name"])
    if existing is not None and existing.provenance.get("model_version") == req["version"]:
        ctx.store.log(ctx.job.id, f"product {req['product_name']} was completed by an earlier attempt")
        return True
    return False


def _run_repredict(ctx: JobContext) -> str:
    """A re-prediction, under the request's ``scenario`` if it has one."""
    from models import predict

    req = ctx.job.request
    name = req["product_name"]
    if _completed_earlier(ctx):
        return name
    extra = {"block": ctx.limits.block} if ctx.limits.block else {}
    if req.get("scenario"):
        extra["scenario"] = req["scenario"]
    return predict.predict_region(
        req["version"],
        tuple(req["bbox"]),
        req["start"],
        req["end"],
        product_name=name,
        title=req.get("title"),
        progress=ctx.progress,
        should_cancel=ctx.should_cancel,
        inputs=req.get("inputs"),
        **extra,
    )


def _run_explain(ctx: JobContext) -> str:
    """An explanation map (``models.explain_map.explain_region``); blocks of ``FLUXLENS_JOB_BLOCK``
    if set, else the explanation's own (smaller than a prediction's)."""
    from models import explain_map

    req = ctx.job.request
    if _completed_earlier(ctx):
        return req["product_name"]
    extra = {"block": ctx.limits.block} if ctx.limits.block else {}
    return explain_map.explain_region(
        req["version"],
        tuple(req["bbox"]),
        req["start"],
        req["end"],
        product_name=req["product_name"],
        title=req.get("title"),
        progress=ctx.progress,
        should_cancel=ctx.should_cancel,
        inputs=req.get("inputs"),
        **extra,
    )


def _run_retrain(ctx: JobContext) -> str:
    """Train a new version; a sites or period subset trains on that part of the training table.
    Cancelling raises from the progress callback: ``models.registry`` writes a version only once
    it is complete, so nothing is left behind."""
    import pandas as pd

    from models import predict, training
    from models import training_table as T

    req = ctx.job.request

    def progress(done: int, total: int) -> None:
        ctx.progress(done, total)
        if ctx.should_cancel():
            raise predict.Cancelled(f"job {ctx.job.id} cancelled")

    settings = training.TrainSettings(
        sites_source=req["sites_source"],
        targets=req["targets"],
        constrained=req["constraint"],
        features=tuple(req["features"]) if req.get("features") else None,
    )
    for option in ("num_boost_round", "n_folds"):
        if option in req:
            setattr(settings, option, req[option])
    if not (req.get("sites") or req.get("start") or req.get("end")):
        return training.train(settings, progress=progress)

    settings.features = settings.features or T.default_features(settings.sites_source)
    table = T.build(settings.sites_source, features=list(settings.features), qc_min=settings.qc_min)
    keep = pd.Series(True, index=table.index)
    subset = []
    if req.get("sites"):
        keep &= table["site_id"].astype(str).isin(req["sites"])
        subset.append(f"sites {','.join(req['sites'])}")
    if req.get("start"):
        keep &= table["time"] >= pd.Timestamp(req["start"])
    if req.get("end"):
        keep &= table["time"] <= pd.Timestamp(req["end"])
    if req.get("start") or req.get("end"):
        subset.append(f"period {req.get('start') or '…'}..{req.get('end') or '…'}")
    part = table.loc[keep].reset_index(drop=True)
    part.attrs = {**table.attrs, "source": f"{table.attrs.get('source')} ({'; '.join(subset)})"}
    ctx.store.log(ctx.job.id, f"training on {len(part)} of {len(table)} rows: {'; '.join(subset)}")
    return training.train(settings, progress=progress, table=part)


JOB_RUNNERS: dict[str, Callable[[JobContext], str]] = {
    "repredict": _run_repredict,
    "retrain": _run_retrain,
    "explain": _run_explain,
}


def _runner(kind: str) -> Callable[[JobContext], str]:
    """models' own runner of ``kind``, else the one registered with ``models.jobs.register_kind``."""
    if kind in JOB_RUNNERS:
        return JOB_RUNNERS[kind]
    other = registered_kind(kind)
    if other is None:
        raise FluxLensError(f"this worker cannot run {kind!r} jobs (known: {', '.join(job_kinds())})")
    return other.run


class _JobLogHandler(logging.Handler):
    """Copies log records of our packages into the running job's log."""

    def __init__(self, store: JobStore, job_id: int):
        super().__init__(logging.INFO)
        self.store, self.job_id = store, job_id

    def emit(self, record: logging.LogRecord) -> None:
        if not record.name.startswith(LOG_SOURCES) or record.name == __name__:
            return
        try:
            self.store.log(self.job_id, self.format(record), record.levelname)
        except Exception:  # a log line must never kill the job
            self.handleError(record)


class Worker:
    """One worker process's loop. Several workers may share a database: claims are atomic."""

    def __init__(
        self, store: JobStore | None = None, limits: JobLimits | None = None, worker_id=None, scheduler=None
    ):  # fmt: skip
        self.store = store or JobStore()
        self.limits = limits or JobLimits.from_env()
        self.worker_id = worker_id or new_worker_id()
        self.stop = threading.Event()
        self.scheduler_address = scheduler  # None: $FLUXLENS_DASK_SCHEDULER, else Dask's threads
        self.scheduler = "dask local threaded scheduler"
        self._last_recovery = 0.0
        self._last_beat = 0.0

    def beat(self) -> None:
        """Tell the job database this worker is alive (the Jobs tab shows whether any is)."""
        self.store.worker_seen(self.worker_id, job_kinds())
        self._last_beat = time.monotonic()

    def recover(self) -> list[Job]:
        self._last_recovery = time.monotonic()
        recovered = self.store.recover_stale(self.limits.stale_s, self.limits.max_attempts)
        for job in recovered:
            log.warning("job %s of a dead worker is now %s", job.id, job.status)
        return recovered

    def _heartbeat(self, ctx: JobContext, done: threading.Event) -> None:
        while not done.wait(self.limits.heartbeat_s):
            try:
                self.beat()
                if not self.store.heartbeat(ctx.job.id, self.worker_id):
                    ctx.lost.set()
                    return
            except Exception:  # a busy database: try again at the next beat
                log.exception("heartbeat for job %s failed", ctx.job.id)

    def execute(self, job: Job) -> str:
        """Run a claimed job to a final state; returns the state recorded (or 'lost')."""
        from models.predict import Cancelled

        ctx = JobContext(self.store, job, self.worker_id, self.limits)
        done = threading.Event()
        beat = threading.Thread(target=self._heartbeat, args=(ctx, done), name=f"heartbeat-{job.id}")
        handler = _JobLogHandler(self.store, job.id)
        handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
        root = logging.getLogger()
        root.addHandler(handler)
        beat.start()
        started = time.monotonic()
        self.store.log(job.id, f"running on the {self.scheduler}")
        output = error = None
        try:
            output = _runner(job.kind)(ctx)
            status = SUCCEEDED
        except Cancelled:
            status = CANCELLED
        except FluxLensError as exc:
            status, error = FAILED, str(exc)
        except Exception as exc:
            status, error = FAILED, f"{type(exc).__name__}: {exc}"
            self.store.log(job.id, traceback.format_exc(), "ERROR")
        finally:
            done.set()
            beat.join()
            root.removeHandler(handler)
        if ctx.lost.is_set() and status != SUCCEEDED:
            log.warning("job %s was taken from this worker; its result is dropped", job.id)
            return "lost"
        if not self.store.finish(job.id, self.worker_id, status, output=output, error=error):
            log.warning("job %s was taken from this worker; its %s state is not recorded", job.id, status)
            return "lost"
        log.info("job %s %s in %.1f s", job.id, status, time.monotonic() - started)
        return status

    def run(self, *, once: bool = False, poll_s: float = 1.0, max_jobs: int | None = None) -> int:
        """Claim and run jobs until stopped; ``once``: until the queue is empty. Returns jobs run. The
        worker reports itself alive every ``heartbeat_s`` and stopped when it leaves."""
        with dask_scheduler(self.scheduler_address) as self.scheduler:
            log.info("worker %s on %s, database %s", self.worker_id, self.scheduler, self.store.path)
            self.beat()
            self.recover()
            try:
                n = self._loop(once=once, poll_s=poll_s, max_jobs=max_jobs)
            finally:
                self.store.worker_stopped(self.worker_id)
        return n

    def _loop(self, *, once: bool, poll_s: float, max_jobs: int | None) -> int:
        n = 0
        while not self.stop.is_set() and (max_jobs is None or n < max_jobs):
            if time.monotonic() - self._last_beat > self.limits.heartbeat_s:
                self.beat()
            if time.monotonic() - self._last_recovery > self.limits.stale_s:
                self.recover()
            job = self.store.claim(self.worker_id, kinds=job_kinds())
            if job is None:
                if once:
                    break
                self.stop.wait(poll_s)
                continue
            log.info("job %s (%s) claimed", job.id, job.kind)
            self.execute(job)
            n += 1
        return n

    def install_signal_handlers(self) -> None:
        def request_stop(signum, _frame):
            log.info("signal %s: stopping after the current job", signum)
            self.stop.set()

        signal.signal(signal.SIGTERM, request_stop)
        signal.signal(signal.SIGINT, request_stop)
