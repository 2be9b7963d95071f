"""On-demand jobs: the persistent queue (``JobStore``) and the rules for submitting to it (``JobService``).

A job moves ``queued → running → succeeded | failed | cancelled``. The web process only inserts,
reads and flags jobs; workers (``models.worker``) claim and run them.

Storage is SQLite (the default, ``<data_dir>/jobs.sqlite``) or a PostgreSQL server, chosen by
``$FLUXLENS_JOBS_DB`` (a path, ``sqlite:///<path>``, ``postgresql://user:password@host:port/db``;
see ``models.job_db``). Three tables:

* ``jobs``: one row per job: kind, request JSON, user, status, timestamps (epoch seconds UTC:
  created, started, finished, heartbeat), progress (chunks done / total), the number of
  attempts, the claiming worker, the output (catalog product or model version), the error text and
  a cancel flag;
* ``job_log``: log lines of a job (time, level, message);
* ``job_runs``: one row per execution attempt (worker, pid, start, end, outcome), the record that
  proves a job ran exactly once.

Every state change is one guarded ``UPDATE`` inside a write transaction (SQLite: ``BEGIN
IMMEDIATE``, the single write lock; PostgreSQL: row locks, the claim's sub-select ``FOR UPDATE SKIP
LOCKED`` so concurrent workers take different jobs without waiting, and a per-user advisory lock
around the active-jobs limit). A worker's writes carry ``worker = ?`` so a worker whose job was
taken away (declared dead) cannot overwrite it. The statements below are written once for both
backends (``?`` placeholders, ``"user"`` quoted: a reserved word in PostgreSQL).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from catalog.errors import FluxLensError, InputError
from models.job_db import Connection, PostgresDatabase, SqliteDatabase, open_job_database
from models.job_limits import JobLimits

ANONYMOUS = "anonymous"
# Names that mean "not logged in" (Panel calls a visitor who did not log in "guest").
_ANONYMOUS_NAMES = frozenset({"", ANONYMOUS, "guest"})

QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED = "queued", "running", "succeeded", "failed", "cancelled"
ACTIVE_STATES = (QUEUED, RUNNING)
FINAL_STATES = (SUCCEEDED, FAILED, CANCELLED)
# Kinds of job models defines (requests checked by models.job_limits, run by models.worker); other
# packages add theirs with register_kind.
MODEL_KINDS = ("repredict", "retrain", "explain")

_SCHEMA_VERSION = 3
# {id} and {float} are the backend's identity-key and double-precision column types.
_JOBS_TABLE = """jobs (
    id {id},
    kind TEXT NOT NULL,
    request TEXT NOT NULL,
    "user" TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    created_at {float} NOT NULL,
    started_at {float},
    finished_at {float},
    heartbeat_at {float},
    progress_done INTEGER NOT NULL DEFAULT 0,
    progress_total INTEGER NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0,
    worker TEXT,
    output TEXT,
    error TEXT,
    cancel_requested INTEGER NOT NULL DEFAULT 0
)"""
_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS {_JOBS_TABLE};
CREATE INDEX IF NOT EXISTS jobs_status ON jobs (status, id);
CREATE INDEX IF NOT EXISTS jobs_user ON jobs ("user", id);
CREATE TABLE IF NOT EXISTS job_log (
    id {{id}},
    job_id BIGINT NOT NULL REFERENCES jobs (id),
    at {{float}} NOT NULL,
    level TEXT NOT NULL,
    message TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS job_log_job ON job_log (job_id, id);
CREATE TABLE IF NOT EXISTS job_runs (
    id {{id}},
    job_id BIGINT NOT NULL REFERENCES jobs (id),
    attempt INTEGER NOT NULL,
    worker TEXT NOT NULL,
    pid INTEGER NOT NULL,
    started_at {{float}} NOT NULL,
    finished_at {{float}},
    outcome TEXT
);
CREATE INDEX IF NOT EXISTS job_runs_job ON job_runs (job_id, id);
CREATE TABLE IF NOT EXISTS job_workers (
    worker TEXT PRIMARY KEY,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    kinds TEXT NOT NULL,
    started_at {{float}} NOT NULL,
    seen_at {{float}} NOT NULL,
    stopped_at {{float}}
)"""
# Schema 1 checked ``kind`` against a fixed list; since 2 the kinds are registered (register_kind) and
# checked on insert. SQLite cannot drop a constraint: the table is rebuilt (indexes: by _SCHEMA after).
# Schema 3 adds job_workers (workers' own heartbeats), created by _SCHEMA itself.
_UPGRADES = {
    "sqlite": {
        2: "PRAGMA foreign_keys = OFF; BEGIN IMMEDIATE; "
        f"CREATE TABLE jobs_v2 {_JOBS_TABLE.removeprefix('jobs ')}; INSERT INTO jobs_v2 SELECT * FROM jobs; "
        "DROP TABLE jobs; ALTER TABLE jobs_v2 RENAME TO jobs; COMMIT",
        3: "SELECT 1",
    },
    "postgresql": {2: "ALTER TABLE jobs DROP CONSTRAINT IF EXISTS jobs_kind_check", 3: "SELECT 1"},
}


@dataclass(frozen=True)
class JobKind:
    """A kind of job another package defines. ``check(request, limits)`` returns the request
    normalised before it is queued (``InputError`` when refused); ``run(ctx)`` runs it in a worker
    (``ctx``: ``models.worker.JobContext``) and returns the job's output text."""

    name: str
    check: Callable[[dict, JobLimits], dict]
    run: Callable[..., str]


_REGISTERED: dict[str, JobKind] = {}


def register_kind(kind: JobKind) -> None:
    """Add a kind of job (models imports no package that adds one). The process that submits such a
    job and the worker that runs it must both have imported the registering module; a worker only
    claims kinds it knows."""
    if kind.name in MODEL_KINDS:
        raise ValueError(f"job kind {kind.name!r} is one of models' own")
    _REGISTERED[kind.name] = kind


def registered_kind(name: str) -> JobKind | None:
    """The kind ``name`` added by :func:`register_kind`, or None (models' own kinds, unknown names)."""
    return _REGISTERED.get(name)


def job_kinds() -> tuple[str, ...]:
    """Every kind this process can submit and run: models' own, then the registered ones."""
    return MODEL_KINDS + tuple(_REGISTERED)


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
    def from_row(cls, row) -> Job:
        """From a row addressable by column name (either backend's)."""
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
class WorkerBeat:
    """A worker process as it last reported itself (``JobStore.worker_seen``)."""

    worker: str
    host: str
    pid: int
    kinds: tuple[str, ...]
    started_at: float
    seen_at: float

    def age_s(self, now: float | None = None) -> float:
        return (time.time() if now is None else now) - self.seen_at


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


class JobStore:
    """The job tables in the database named by ``url`` (see ``models.job_db.open_job_database``).
    Every call takes its own connection for its duration, so one store object is safe to share
    between threads (web sessions, a worker's heartbeat thread).

    ``path``: where the jobs live, for messages: the SQLite file, or the server URL without its
    password. An unreachable server raises ``FluxLensError`` here, at the first connection, which
    also creates the tables when they are missing.
    """

    def __init__(self, url: str | os.PathLike | None = None):
        self.db: SqliteDatabase | PostgresDatabase = open_job_database(url)
        self.path = self.db.path
        types = {"id": self.db.id_column, "float": self.db.float_type}
        upgrades = {v: sql.format(**types) for v, sql in _UPGRADES[self.db.dialect].items()}
        self.db.create_schema(_SCHEMA.format(**types), _SCHEMA_VERSION, upgrades)

    def close(self) -> None:
        """Release connections kept for reuse (PostgreSQL); the store stays usable."""
        self.db.close()

    @staticmethod
    def _log(con: Connection, job_id: int, message: str, level: str = "INFO") -> None:
        con.execute(
            "INSERT INTO job_log (job_id, at, level, message) VALUES (?, ?, ?, ?)",
            (job_id, time.time(), level, message),
        )

    # -- web side ---------------------------------------------------------------------------------

    def insert(self, kind: str, request: dict, user: str, *, max_active: int | None = None) -> Job:
        """Queue a job. With ``max_active``, refuse (InputError) when ``user`` already has that many
        queued or running jobs; the count and the insert are one transaction."""
        if kind not in job_kinds():
            raise InputError(f"unknown job kind {kind!r}; known: {', '.join(job_kinds())}")
        with self.db.write() as con:
            if max_active is not None:
                self.db.lock_user(con, user)
                active = con.execute(
                    "SELECT count(*) AS n FROM jobs WHERE \"user\" = ? AND status IN ('queued', 'running')",
                    (user,),
                ).fetchone()["n"]
                if active >= max_active:
                    raise InputError(
                        f"user {user!r} already has {active} active jobs (limit {max_active}); "
                        "wait for one to finish or cancel one"
                    )
            row = con.execute(
                'INSERT INTO jobs (kind, request, "user", status, created_at) '
                "VALUES (?, ?, ?, 'queued', ?) RETURNING *",
                (kind, json.dumps(request, sort_keys=True), user, time.time()),
            ).fetchone()
            job = Job.from_row(row)
            self._log(con, job.id, f"queued by {user}")
        return job

    def get(self, job_id: int) -> Job | None:
        with self.db.read() as con:
            row = con.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return Job.from_row(row) if row else None

    def jobs(self, user: str | None = None, *, limit: int = 200) -> list[Job]:
        """Newest first; all users' jobs when ``user`` is None."""
        with self.db.read() as con:
            if user is None:
                rows = con.execute("SELECT * FROM jobs ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
            else:
                rows = con.execute(
                    'SELECT * FROM jobs WHERE "user" = ? ORDER BY id DESC LIMIT ?', (user, limit)
                ).fetchall()
        return [Job.from_row(r) for r in rows]

    def logs(self, job_id: int) -> list[LogLine]:
        with self.db.read() as con:
            rows = con.execute(
                "SELECT at, level, message FROM job_log WHERE job_id = ? ORDER BY id", (job_id,)
            ).fetchall()
        return [LogLine(**dict(r)) for r in rows]

    def runs(self, job_id: int | None = None) -> list[Run]:
        with self.db.read() as con:
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
        with self.db.write() as con:
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

    def claim(
        self, worker: str, pid: int | None = None, *, kinds: tuple[str, ...] | None = None
    ) -> Job | None:
        """Atomically take the oldest queued job (of one of ``kinds``, default any) for ``worker``;
        None when there is none."""
        now = time.time()
        only = f" AND kind IN ({', '.join('?' * len(kinds))})" if kinds is not None else ""
        with self.db.write() as con:
            row = con.execute(
                "UPDATE jobs SET status = 'running', worker = ?, started_at = ?, heartbeat_at = ?, "
                "finished_at = NULL, attempts = attempts + 1, progress_done = 0, progress_total = 0 "
                f"WHERE id = (SELECT id FROM jobs WHERE status = 'queued'{only} ORDER BY id LIMIT 1"
                f"{self.db.claim_lock}) AND status = 'queued' RETURNING *",
                (worker, now, now, *(kinds or ())),
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

    def worker_seen(self, worker: str, kinds: tuple[str, ...], *, host: str | None = None) -> None:
        """Record that worker process ``worker`` (this process) is alive and runs ``kinds``."""
        now = time.time()
        with self.db.write() as con:
            con.execute(
                "INSERT INTO job_workers (worker, host, pid, kinds, started_at, seen_at) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (worker) DO UPDATE SET seen_at = excluded.seen_at, "
                "kinds = excluded.kinds, stopped_at = NULL",
                (worker, host or socket.gethostname(), os.getpid(), ",".join(kinds), now, now),
            )

    def worker_stopped(self, worker: str) -> None:
        """Record that ``worker`` has stopped (it no longer counts as alive)."""
        with self.db.write() as con:
            con.execute("UPDATE job_workers SET stopped_at = ? WHERE worker = ?", (time.time(), worker))

    def live_workers(self, within_s: float, *, now: float | None = None) -> list[WorkerBeat]:
        """Workers that reported within the last ``within_s`` seconds and have not stopped."""
        now = time.time() if now is None else now
        with self.db.read() as con:
            rows = con.execute(
                "SELECT worker, host, pid, kinds, started_at, seen_at FROM job_workers "
                "WHERE stopped_at IS NULL AND seen_at >= ? ORDER BY started_at",
                (now - within_s,),
            ).fetchall()
        return [
            WorkerBeat(
                r["worker"],
                r["host"],
                int(r["pid"]),
                tuple(filter(None, r["kinds"].split(","))),
                float(r["started_at"]),
                float(r["seen_at"]),
            )  # fmt: skip
            for r in rows
        ]

    def heartbeat(self, job_id: int, worker: str) -> bool:
        """Record that ``worker`` is alive; False when the job is no longer running under it."""
        with self.db.write() as con:
            cur = con.execute(
                "UPDATE jobs SET heartbeat_at = ? WHERE id = ? AND status = 'running' AND worker = ?",
                (time.time(), job_id, worker),
            )
            return cur.rowcount == 1

    def set_progress(self, job_id: int, worker: str, done: int, total: int) -> bool:
        with self.db.write() as con:
            cur = con.execute(
                "UPDATE jobs SET progress_done = ?, progress_total = ?, heartbeat_at = ? "
                "WHERE id = ? AND status = 'running' AND worker = ?",
                (int(done), int(total), time.time(), job_id, worker),
            )
            return cur.rowcount == 1

    def should_stop(self, job_id: int, worker: str) -> bool:
        """True when a cancel was requested or the job no longer runs under ``worker``."""
        with self.db.read() as con:
            row = con.execute(
                "SELECT status, worker, cancel_requested FROM jobs WHERE id = ?", (job_id,)
            ).fetchone()
        return row is None or row["cancel_requested"] or row["status"] != RUNNING or row["worker"] != worker

    def log(self, job_id: int, message: str, level: str = "INFO") -> None:
        with self.db.write() as con:
            self._log(con, job_id, message, level)

    def finish(
        self, job_id: int, worker: str, status: str, *, output: str | None = None, error: str | None = None
    ) -> bool:
        """Move a running job of ``worker`` to a final state; False (nothing written) when the job
        was taken from this worker meanwhile."""
        if status not in FINAL_STATES:
            raise ValueError(f"not a final state: {status!r}")
        now = time.time()
        with self.db.write() as con:
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
        with self.db.write() as con:
            rows = con.execute(
                "SELECT * FROM jobs WHERE status = 'running' AND heartbeat_at < ? "
                f"ORDER BY id{self.db.claim_lock}",
                (now - stale_s,),
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
        """Validate ``request`` for ``kind`` (``models.job_limits.validate``, or the registered kind's
        ``check``) and queue it."""
        from models import job_limits

        user = self._check_submitter(user)
        other = registered_kind(kind)
        if other is None:
            normalised = job_limits.validate(kind, request, self.limits)
            if kind == "repredict":
                normalised["title"] = repredict_title(normalised)
            elif kind == "explain":
                normalised["title"] = explain_title(normalised)
        elif isinstance(request, dict):
            normalised = other.check(request, self.limits)
        else:
            raise InputError(f"{kind} request must be a mapping, not {type(request).__name__}")
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


def _degrees(value: float) -> str:
    return f"{value:g}".replace("-", "\u2212")


def repredict_title(request: dict) -> str:
    """The catalog title of a re-prediction's product: what, where (box W…E, S…N in degrees east
    and north) and when, e.g. ``LE/H re-prediction −105…−95 E, 35…45 N, 2018-07-01…2018-07-10
    (model v3)``, and a scenario's perturbations after it (``…, scenario ta +2 K``); the product
    keeps its unique name beside it."""
    title = f"LE/H re-prediction {_where_when(request)} (model {request['version']})"
    if request.get("scenario"):
        title += f", scenario {', '.join(request['scenario'])}"
    return title


def explain_title(request: dict) -> str:
    """The catalog title of an explanation map: ``EF explanation −105…−95 E, 35…45 N,
    2018-07-01…2018-07-10 (model v3)``."""
    return f"EF explanation {_where_when(request)} (model {request['version']})"


def _where_when(request: dict) -> str:
    w, s, e, n = (float(v) for v in request["bbox"])
    box = f"{_degrees(w)}…{_degrees(e)} E, {_degrees(s)}…{_degrees(n)} N"
    return f"{box}, {request['start']}…{request['end']}"


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
