"""On-demand jobs: the persistent queue (``JobStore``) and the rules for submitting to it (``JobService``).

A job moves ``queued → running → succeeded | failed | cancelled``. The web process only inserts,
reads and flags jobs; workers (``models.worker``) claim and run them.

Storage is SQLite (stdlib ``sqlite3``) in WAL mode, by default ``<data_dir>/jobs.sqlite``, or the
file named by ``$FLUXLENS_JOBS_DB`` (a path or ``sqlite:///<path>``). Three tables:

* ``jobs``: one row per job: kind, request JSON, user, status, timestamps (epoch seconds UTC:
  created, started, finished, heartbeat), progress (chunks done / total), the number of
  attempts, the claiming worker, the output (catalog product or model version), the error text and
  a cancel flag;
* ``job_log``: log lines of a job (time, level, message);
* ``job_runs``: one row per execution attempt (worker, pid, start, end, outcome), the record that
  proves a job ran exactly once.

Every state change is one guarded ``UPDATE`` inside ``BEGIN IMMEDIATE``; a worker's writes carry
``worker = ?`` so a worker whose job was taken away (declared dead) cannot overwrite it. A server
database would implement the same methods with the same statements (``FOR UPDATE SKIP LOCKED`` in
the claim); only SQLite is supported here, and another URL scheme is refused with a clear message.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import math
import os
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from catalog import settings
from catalog.errors import FluxLensError, InputError
from models.job_limits import JobLimits

ENV_JOBS_DB = "FLUXLENS_JOBS_DB"
ANONYMOUS = "anonymous"
# Names that mean "not logged in" (Panel calls a visitor who did not log in "guest").
_ANONYMOUS_NAMES = frozenset({"", ANONYMOUS, "guest"})

QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED = "queued", "running", "succeeded", "failed", "cancelled"
ACTIVE_STATES = (QUEUED, RUNNING)
FINAL_STATES = (SUCCEEDED, FAILED, CANCELLED)
JOB_KINDS = ("repredict", "retrain")

_SCHEMA_VERSION = 1
_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL CHECK (kind IN ({", ".join(repr(k) for k in JOB_KINDS)})),
    request TEXT NOT NULL,
    user TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    created_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    heartbeat_at REAL,
    progress_done INTEGER NOT NULL DEFAULT 0,
    progress_total INTEGER NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0,
    worker TEXT,
    output TEXT,
    error TEXT,
    cancel_requested INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs (status, id);
CREATE INDEX IF NOT EXISTS jobs_user ON jobs (user, id);
CREATE TABLE IF NOT EXISTS job_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id INTEGER NOT NULL REFERENCES jobs (id),
    at REAL NOT NULL,
    level TEXT NOT NULL,
    message TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS job_log_job ON job_log (job_id, id);
CREATE TABLE IF NOT EXISTS job_runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id INTEGER NOT NULL REFERENCES jobs (id),
    attempt INTEGER NOT NULL,
    worker TEXT NOT NULL,
    pid INTEGER NOT NULL,
    started_at REAL NOT NULL,
    finished_at REAL,
    outcome TEXT
);
CREATE INDEX IF NOT EXISTS job_runs_job ON job_runs (job_id, id);
PRAGMA user_version = {_SCHEMA_VERSION};
"""


class AccessDenied(FluxLensError):
    """The user may not do this: not logged in, or the job belongs to someone else."""


@dataclass(frozen=True)
class Job:
    """One row of ``jobs``; times are epoch seconds (UTC) or None."""

    id: int
    kind: str
    request: dict
    user: str
    status: str
    created_at: float
    started_at: float | None
    finished_at: float | None
    heartbeat_at: float | None
    progress_done: int
    progress_total: int
    attempts: int
    worker: str | None
    output: str | None
    error: str | None
    cancel_requested: bool

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Job:
        values = dict(row)
        values["request"] = json.loads(values["request"])
        values["cancel_requested"] = bool(values["cancel_requested"])
        return cls(**values)

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATES

    @property
    def fraction(self) -> float:
        """Progress 0–1 (1 once succeeded)."""
        if self.status == SUCCEEDED:
            return 1.0
        if self.progress_total <= 0:
            return 0.0
        return min(1.0, self.progress_done / self.progress_total)

    def elapsed_s(self, now: float | None = None) -> float | None:
        """Seconds since the current run started (up to the end once finished)."""
        if self.started_at is None:
            return None
        end = self.finished_at if self.finished_at is not None else (now or time.time())
        return max(0.0, end - self.started_at)

    def remaining_s(self, now: float | None = None) -> float | None:
        """Linear estimate of the seconds left from the chunks done so far; None before the first."""
        elapsed = self.elapsed_s(now)
        if self.status != RUNNING or elapsed is None or self.progress_done <= 0 or self.progress_total <= 0:
            return None
        return elapsed * (self.progress_total - self.progress_done) / self.progress_done


@dataclass(frozen=True)
class LogLine:
    at: float
    level: str
    message: str


@dataclass(frozen=True)
class Run:
    """One execution attempt of a job by one worker process."""

    job_id: int
    attempt: int
    worker: str
    pid: int
    started_at: float
    finished_at: float | None
    outcome: str | None


def jobs_db_path(url: str | os.PathLike | None = None) -> Path:
    """The SQLite file for ``url`` (a path or ``sqlite:///path``), else ``$FLUXLENS_JOBS_DB``, else
    ``<data_dir>/jobs.sqlite``."""
    raw = str(url) if url is not None else os.environ.get(ENV_JOBS_DB, "")
    if not raw:
        return settings.data_dir() / "jobs.sqlite"
    if raw.startswith("sqlite:///"):
        return Path(raw.removeprefix("sqlite:///"))
    if "://" in raw:
        raise InputError(
            f"job database {raw!r}: only SQLite is supported (a path or sqlite:///<path>); "
            "a server database needs a JobStore implementation for it"
        )
    return Path(raw)


class JobStore:
    """The job tables in one SQLite file. Each call opens its own short connection, so one store
    object is safe to share between threads (web sessions, a worker's heartbeat thread)."""

    BUSY_TIMEOUT_MS = 30_000

    def __init__(self, url: str | os.PathLike | None = None):
        self.path = jobs_db_path(url)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as con:
            if con.execute("PRAGMA user_version").fetchone()[0] != _SCHEMA_VERSION:
                con.execute("PRAGMA journal_mode = WAL")
                con.executescript(_SCHEMA)

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        con = sqlite3.connect(self.path, timeout=self.BUSY_TIMEOUT_MS / 1000, isolation_level=None)
        try:
            con.row_factory = sqlite3.Row
            con.execute(f"PRAGMA busy_timeout = {self.BUSY_TIMEOUT_MS}")
            con.execute("PRAGMA foreign_keys = ON")
            yield con
        finally:
            con.close()

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction that holds the database's write lock from its first statement."""
        with self._connect() as con:
            con.execute("BEGIN IMMEDIATE")
            try:
                yield con
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")

    @staticmethod
    def _log(con: sqlite3.Connection, job_id: int, message: str, level: str = "INFO") -> None:
        con.execute(
            "INSERT INTO job_log (job_id, at, level, message) VALUES (?, ?, ?, ?)",
            (job_id, time.time(), level, message),
        )

    # -- web side ---------------------------------------------------------------------------------

    def insert(self, kind: str, request: dict, user: str, *, max_active: int | None = None) -> Job:
        """Queue a job. With ``max_active``, refuse (InputError) when ``user`` already has that many
        queued or running jobs; the count and the insert are one transaction."""
        if kind not in JOB_KINDS:
            raise InputError(f"unknown job kind {kind!r}; known: {', '.join(JOB_KINDS)}")
        with self._write() as con:
            if max_active is not None:
                (active,) = con.execute(
                    "SELECT count(*) FROM jobs WHERE user = ? AND status IN ('queued', 'running')", (user,)
                ).fetchone()
                if active >= max_active:
                    raise InputError(
                        f"user {user!r} already has {active} active jobs (limit {max_active}); "
                        "wait for one to finish or cancel one"
                    )
            row = con.execute(
                "INSERT INTO jobs (kind, request, user, status, created_at) "
                "VALUES (?, ?, ?, 'queued', ?) RETURNING *",
                (kind, json.dumps(request, sort_keys=True), user, time.time()),
            ).fetchone()
            job = Job.from_row(row)
            self._log(con, job.id, f"queued by {user}")
        return job

    def get(self, job_id: int) -> Job | None:
        with self._connect() as con:
            row = con.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return Job.from_row(row) if row else None

    def jobs(self, user: str | None = None, *, limit: int = 200) -> list[Job]:
        """Newest first; all users' jobs when ``user`` is None."""
        with self._connect() as con:
            if user is None:
                rows = con.execute("SELECT * FROM jobs ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
            else:
                rows = con.execute(
                    "SELECT * FROM jobs WHERE user = ? ORDER BY id DESC LIMIT ?", (user, limit)
                ).fetchall()
        return [Job.from_row(r) for r in rows]

    def logs(self, job_id: int) -> list[LogLine]:
        with self._connect() as con:
            rows = con.execute(
                "SELECT at, level, message FROM job_log WHERE job_id = ? ORDER BY id", (job_id,)
            ).fetchall()
        return [LogLine(**dict(r)) for r in rows]

    def runs(self, job_id: int | None = None) -> list[Run]:
        with self._connect() as con:
            sql = "SELECT job_id, attempt, worker, pid, started_at, finished_at, outcome FROM job_runs"
            rows = con.execute(
                sql + (" WHERE job_id = ? ORDER BY id" if job_id is not None else " ORDER BY id"),
                (job_id,) if job_id is not None else (),
            ).fetchall()
        return [Run(**dict(r)) for r in rows]

    def request_cancel(self, job_id: int) -> Job:
        """Cancel a queued job at once; flag a running one for its worker to stop at the next chunk.
        A finished job is left as it is."""
        now = time.time()
        with self._write() as con:
            row = con.execute(
                "UPDATE jobs SET status = 'cancelled', cancel_requested = 1, finished_at = ? "
                "WHERE id = ? AND status = 'queued' RETURNING *",
                (now, job_id),
            ).fetchone()
            if row is not None:
                self._log(con, job_id, "cancelled before it started")
            else:
                row = con.execute(
                    "UPDATE jobs SET cancel_requested = 1 WHERE id = ? AND status = 'running' RETURNING *",
                    (job_id,),
                ).fetchone()
                if row is not None:
                    self._log(con, job_id, "cancel requested")
                else:
                    row = con.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None:
            raise InputError(f"no job {job_id}")
        return Job.from_row(row)

    # -- worker side ------------------------------------------------------------------------------

    def claim(self, worker: str, pid: int | None = None) -> Job | None:
        """Atomically take the oldest queued job for ``worker``; None when the queue is empty."""
        now = time.time()
        with self._write() as con:
            row = con.execute(
                "UPDATE jobs SET status = 'running', worker = :worker, started_at = :now, "
                "heartbeat_at = :now, finished_at = NULL, attempts = attempts + 1, "
                "progress_done = 0, progress_total = 0 "
                "WHERE id = (SELECT id FROM jobs WHERE status = 'queued' ORDER BY id LIMIT 1) "
                "AND status = 'queued' RETURNING *",
                {"worker": worker, "now": now},
            ).fetchone()
            if row is None:
                return None
            job = Job.from_row(row)
            con.execute(
                "INSERT INTO job_runs (job_id, attempt, worker, pid, started_at) VALUES (?, ?, ?, ?, ?)",
                (job.id, job.attempts, worker, os.getpid() if pid is None else pid, now),
            )
            self._log(con, job.id, f"attempt {job.attempts} started by worker {worker}")
        return job

    def heartbeat(self, job_id: int, worker: str) -> bool:
        """Record that ``worker`` is alive; False when the job is no longer running under it."""
        with self._write() as con:
            cur = con.execute(
                "UPDATE jobs SET heartbeat_at = ? WHERE id = ? AND status = 'running' AND worker = ?",
                (time.time(), job_id, worker),
            )
            return cur.rowcount == 1

    def set_progress(self, job_id: int, worker: str, done: int, total: int) -> bool:
        with self._write() as con:
            cur = con.execute(
                "UPDATE jobs SET progress_done = ?, progress_total = ?, heartbeat_at = ? "
                "WHERE id = ? AND status = 'running' AND worker = ?",
                (int(done), int(total), time.time(), job_id, worker),
            )
            return cur.rowcount == 1

    def should_stop(self, job_id: int, worker: str) -> bool:
        """True when a cancel was requested or the job no longer runs under ``worker``."""
        with self._connect() as con:
            row = con.execute(
                "SELECT status, worker, cancel_requested FROM jobs WHERE id = ?", (job_id,)
            ).fetchone()
        return row is None or row["cancel_requested"] or row["status"] != RUNNING or row["worker"] != worker

    def log(self, job_id: int, message: str, level: str = "INFO") -> None:
        with self._write() as con:
            self._log(con, job_id, message, level)

    def finish(
        self, job_id: int, worker: str, status: str, *, output: str | None = None, error: str | None = None
    ) -> bool:
        """Move a running job of ``worker`` to a final state; False (nothing written) when the job
        was taken from this worker meanwhile."""
        if status not in FINAL_STATES:
            raise ValueError(f"not a final state: {status!r}")
        now = time.time()
        with self._write() as con:
            cur = con.execute(
                "UPDATE jobs SET status = ?, finished_at = ?, heartbeat_at = ?, output = ?, error = ?, "
                "progress_done = CASE WHEN ? = 'succeeded' THEN progress_total ELSE progress_done END "
                "WHERE id = ? AND status = 'running' AND worker = ?",
                (status, now, now, output, error, status, job_id, worker),
            )
            if cur.rowcount != 1:
                return False
            con.execute(
                "UPDATE job_runs SET finished_at = ?, outcome = ? "
                "WHERE job_id = ? AND worker = ? AND finished_at IS NULL",
                (now, status, job_id, worker),
            )
            detail = f": {output}" if output else (f": {error}" if error else "")
            self._log(con, job_id, f"{status}{detail}", "ERROR" if status == FAILED else "INFO")
        return True

    def recover_stale(self, stale_s: float, max_attempts: int, *, now: float | None = None) -> list[Job]:
        """Jobs left ``running`` by a worker whose heartbeat is older than ``stale_s``: cancelled if a
        cancel was requested, re-queued while they have run fewer than ``max_attempts`` times, else
        failed. Returns them updated."""
        now = time.time() if now is None else now
        recovered = []
        with self._write() as con:
            rows = con.execute(
                "SELECT * FROM jobs WHERE status = 'running' AND heartbeat_at < ?", (now - stale_s,)
            ).fetchall()
            for row in rows:
                job = Job.from_row(row)
                age = now - job.heartbeat_at
                lost = f"worker {job.worker} stopped responding (last heartbeat {age:.0f} s ago)"
                if job.cancel_requested:
                    status, error = CANCELLED, None
                elif job.attempts < max_attempts:
                    status, error = QUEUED, None
                else:
                    status, error = FAILED, f"{lost}; gave up after {job.attempts} attempts"
                updated = con.execute(
                    "UPDATE jobs SET status = ?, error = ?, worker = CASE WHEN ? = 'queued' THEN NULL "
                    "ELSE worker END, finished_at = CASE WHEN ? = 'queued' THEN NULL ELSE ? END "
                    "WHERE id = ? AND status = 'running' RETURNING *",
                    (status, error, status, status, now, job.id),
                ).fetchone()
                con.execute(
                    "UPDATE job_runs SET finished_at = ?, outcome = 'lost' "
                    "WHERE job_id = ? AND worker = ? AND finished_at IS NULL",
                    (now, job.id, job.worker),
                )
                action = {QUEUED: "re-queued", CANCELLED: "cancelled", FAILED: "failed"}[status]
                self._log(con, job.id, f"{lost}; {action}", "WARNING")
                recovered.append(Job.from_row(updated))
        return recovered


def _user_name(user: str | None) -> str:
    user = (user or "").strip()
    return ANONYMOUS if user in _ANONYMOUS_NAMES else user


@dataclass
class JobService:
    """Submitting, listing and cancelling jobs with validation, limits and ownership checks.

    ``require_login``: when True, the anonymous user may browse but not submit or cancel. A user
    only sees, reads the logs of and cancels their own jobs.
    """

    store: JobStore = field(default_factory=JobStore)
    limits: JobLimits = field(default_factory=JobLimits.from_env)
    require_login: bool = False

    def _check_submitter(self, user: str | None) -> str:
        user = _user_name(user)
        if self.require_login and user == ANONYMOUS:
            raise AccessDenied("log in to submit or cancel jobs")
        return user

    def _owned(self, job_id: int, user: str | None) -> Job:
        user = _user_name(user)
        job = self.store.get(job_id)
        if job is None or job.user != user:
            # Same message for "absent" and "someone else's": job ids of others are not disclosed.
            raise AccessDenied(f"no job {job_id} of user {user!r}")
        return job

    def submit(self, kind: str, request: dict, user: str | None) -> Job:
        """Validate ``request`` for ``kind`` (see ``models.job_limits.validate``) and queue it."""
        from models import job_limits

        user = self._check_submitter(user)
        normalised = job_limits.validate(kind, request, self.limits)
        return self.store.insert(
            kind,
            normalised,
            user,
            max_active=self.limits.max_active_per_user,
        )

    def list_jobs(self, user: str | None, *, limit: int = 50) -> list[Job]:
        return self.store.jobs(_user_name(user), limit=limit)

    def job(self, job_id: int, user: str | None) -> Job:
        return self._owned(job_id, user)

    def logs(self, job_id: int, user: str | None) -> list[LogLine]:
        self._owned(job_id, user)
        return self.store.logs(job_id)

    def cancel(self, job_id: int, user: str | None) -> Job:
        self._check_submitter(user)
        job = self._owned(job_id, user)
        if not job.is_active:
            return job
        return self.store.request_cancel(job_id)


def format_duration(seconds: float | None) -> str:
    """``"1 h 02 min"``, ``"3 min 05 s"``, ``"12 s"``; ``"–"`` for None."""
    if seconds is None or not math.isfinite(seconds):
        return "–"
    s = int(round(seconds))
    if s >= 3600:
        return f"{s // 3600} h {s % 3600 // 60:02d} min"
    if s >= 60:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s} s"


def format_time(epoch: float | None) -> str:
    if epoch is None:
        return "–"
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
