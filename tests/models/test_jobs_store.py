"""The job queue at the store level: schema, claims, state machine, cancellation, dead-worker recovery,
ownership rules of the service. Each contract test runs on both backends: a real SQLite file and a
database on a real PostgreSQL server (``tests/pg_server.py``); real threads and processes."""

from __future__ import annotations

import multiprocessing
import socket
import sqlite3
import threading
import time

import pytest

from catalog.errors import FluxLensError, InputError
from models.job_db import PostgresDatabase, SqliteDatabase, open_job_database, redact_url
from models.job_limits import JobLimits
from models.jobs import (
    CANCELLED,
    FAILED,
    QUEUED,
    RUNNING,
    SUCCEEDED,
    AccessDenied,
    JobService,
    JobStore,
)

REQUEST = {"version": "v1", "bbox": [-100.0, 35.0, -99.0, 36.0], "start": "2018-07-01", "end": "2018-07-05"}


@pytest.fixture
def store(jobs_db) -> JobStore:
    store = JobStore(jobs_db)
    yield store
    store.close()


def test_default_location_wal_and_schema(data_dir):
    store = JobStore()
    assert store.path == data_dir / "jobs.sqlite"
    con = sqlite3.connect(store.path)
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"jobs", "job_log", "job_runs"} <= tables


def test_url_forms(tmp_path, monkeypatch):
    db = open_job_database(f"sqlite:///{tmp_path}/q.sqlite")
    assert isinstance(db, SqliteDatabase) and db.path == tmp_path / "q.sqlite"
    monkeypatch.setenv("FLUXLENS_JOBS_DB", str(tmp_path / "env.sqlite"))
    assert open_job_database().path == tmp_path / "env.sqlite"
    for url in ("postgresql://ana:s3cret@db.example:5433/jobs", "postgres://ana:s3cret@db.example/jobs"):
        db = open_job_database(url)  # parsing only: nothing connects before a store is made
        assert isinstance(db, PostgresDatabase) and db.location == url.replace("s3cret", "***")
    with pytest.raises(InputError, match="unknown scheme 'mysql'") as err:
        open_job_database("mysql://ana:s3cret@db.example/jobs")
    assert "s3cret" not in str(err.value) and "mysql://ana:***@db.example/jobs" in str(err.value)
    with pytest.raises(InputError, match="sqlite:///"):
        open_job_database("sqlite://relative.sqlite")


def test_redact_url():
    assert redact_url("postgresql://ana:pw@h:5432/db?sslmode=require") == (
        "postgresql://ana:***@h:5432/db?sslmode=require"
    )
    assert (
        redact_url("postgresql:///db?host=/run/pg&password=pw")
        == "postgresql:///db?host=/run/pg&password=***"
    )
    assert redact_url("postgresql://ana@h/db") == "postgresql://ana@h/db"


def test_unreachable_server_names_url_without_password():
    with socket.socket() as s:  # a port nobody listens on: bound, never listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        url = f"postgresql://ana:s3cret@127.0.0.1:{port}/jobs"
        with pytest.raises(FluxLensError, match="cannot connect") as err:
            JobStore(url)
    message = str(err.value)
    assert f"postgresql://ana:***@127.0.0.1:{port}/jobs" in message and "s3cret" not in message


def test_wrong_password_names_url_without_password(postgres_server):
    url = postgres_server.url(password="wrong-pw")
    with pytest.raises(FluxLensError, match="cannot connect.*password authentication failed") as err:
        JobStore(url)
    assert "wrong-pw" not in str(err.value) and ":***@127.0.0.1" in str(err.value)


def test_postgres_schema_and_types(postgres_server):
    import psycopg

    url = postgres_server.create_database()
    store = JobStore(url)
    assert store.path == url.replace(postgres_server.password, "***")
    JobStore(url).close()  # a second store finds the schema and leaves it
    job = store.insert("repredict", REQUEST, "ana")
    store.close()
    with psycopg.connect(url) as con:
        tables = {r[0] for r in con.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
        types = dict(
            con.execute(
                "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'jobs'"
            ).fetchall()
        )
        (created,) = con.execute("SELECT created_at FROM jobs WHERE id = %s", (job.id,)).fetchone()
    assert {"jobs", "job_log", "job_runs", "job_schema"} <= tables
    assert types["created_at"] == "double precision" and types["id"] == "bigint"
    assert created == job.created_at and abs(created - time.time()) < 60  # sub-second precision kept


def test_lifecycle_queued_running_succeeded(store):
    job = store.insert("repredict", REQUEST, "ana")
    assert (job.status, job.attempts, job.request) == (QUEUED, 0, REQUEST)
    assert job.started_at is None and job.created_at > 0

    claimed = store.claim("w1")
    assert (claimed.id, claimed.status, claimed.worker, claimed.attempts) == (job.id, RUNNING, "w1", 1)
    assert claimed.started_at >= job.created_at and claimed.heartbeat_at == claimed.started_at
    assert store.claim("w2") is None  # nothing else queued

    assert store.set_progress(job.id, "w1", 3, 12)
    assert store.get(job.id).fraction == pytest.approx(0.25)
    assert not store.set_progress(job.id, "w2", 4, 12)  # not w2's job
    assert store.finish(job.id, "w1", SUCCEEDED, output="emulated_job1")
    final = store.get(job.id)
    assert (final.status, final.output, final.progress_done, final.fraction) == (
        SUCCEEDED,
        "emulated_job1",
        12,
        1,
    )
    assert final.finished_at >= final.started_at
    assert not store.finish(job.id, "w1", FAILED)  # a final state is final
    runs = store.runs(job.id)
    assert [(r.attempt, r.worker, r.outcome) for r in runs] == [(1, "w1", SUCCEEDED)]
    messages = [line.message for line in store.logs(job.id)]
    assert messages[0] == "queued by ana" and "started by worker w1" in messages[1]
    assert messages[-1] == "succeeded: emulated_job1"


def test_claims_oldest_first(store):
    ids = [store.insert("repredict", REQUEST, "ana").id for _ in range(3)]
    assert [store.claim("w").id for _ in range(3)] == ids


def test_cancel_queued_and_running(store):
    queued = store.insert("repredict", REQUEST, "ana")
    running = store.insert("repredict", REQUEST, "ana")
    store.request_cancel(queued.id)
    assert store.get(queued.id).status == CANCELLED
    assert store.claim("w").id == running.id  # a cancelled job is never claimed
    assert not store.should_stop(running.id, "w")
    job = store.request_cancel(running.id)
    assert job.status == RUNNING and job.cancel_requested
    assert store.should_stop(running.id, "w")
    assert store.finish(running.id, "w", CANCELLED)
    assert store.get(running.id).status == CANCELLED
    with pytest.raises(InputError, match="no job 99"):
        store.request_cancel(99)


def test_max_active_per_user(store):
    for _ in range(2):
        store.insert("repredict", REQUEST, "ana", max_active=2)
    with pytest.raises(InputError, match="already has 2 active jobs"):
        store.insert("repredict", REQUEST, "ana", max_active=2)
    store.insert("repredict", REQUEST, "bob", max_active=2)  # per user
    store.request_cancel(store.jobs("ana")[0].id)
    store.insert("repredict", REQUEST, "ana", max_active=2)  # a slot freed


def test_unknown_kind_refused(store):
    with pytest.raises(InputError, match="unknown job kind 'train'"):
        store.insert("train", {}, "ana")


def test_recover_stale_requeues_then_fails(store):
    job = store.insert("repredict", REQUEST, "ana")
    first = store.claim("dead-1")
    assert store.recover_stale(60, 2, now=first.heartbeat_at + 30) == []  # still fresh
    [requeued] = store.recover_stale(60, 2, now=first.heartbeat_at + 61)
    assert (requeued.status, requeued.worker, requeued.attempts) == (QUEUED, None, 1)
    second = store.claim("dead-2")
    assert second.attempts == 2
    assert not store.heartbeat(job.id, "dead-1")  # the first worker lost the job
    assert store.heartbeat(job.id, "dead-2")
    [failed] = store.recover_stale(60, 2, now=store.get(job.id).heartbeat_at + 61)
    assert failed.status == FAILED and "gave up after 2 attempts" in failed.error
    assert [(r.worker, r.outcome) for r in store.runs(job.id)] == [("dead-1", "lost"), ("dead-2", "lost")]
    # the dead worker coming back cannot overwrite the recorded outcome
    assert not store.finish(job.id, "dead-2", SUCCEEDED, output="x")
    assert store.get(job.id).status == FAILED


def test_recover_stale_honours_cancel(store):
    job = store.insert("repredict", REQUEST, "ana")
    claimed = store.claim("dead")
    store.request_cancel(job.id)
    [recovered] = store.recover_stale(10, 3, now=claimed.heartbeat_at + 11)
    assert recovered.status == CANCELLED


def _claim_all(url, worker, start, out):
    store = JobStore(url)
    start.wait(timeout=60)  # every process starts claiming at the same moment
    got = []
    while (job := store.claim(worker)) is not None:
        got.append(job.id)
        assert store.finish(job.id, worker, SUCCEEDED)
    out.put(got)


def test_concurrent_claims_processes_never_share_a_job(jobs_db):
    store = JobStore(jobs_db)
    ids = [store.insert("repredict", REQUEST, "ana").id for _ in range(60)]
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    start = ctx.Barrier(3)
    procs = [ctx.Process(target=_claim_all, args=(jobs_db, f"w{i}", start, out)) for i in range(3)]
    for p in procs:
        p.start()
    claimed = [out.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=30)
        assert p.exitcode == 0
    flat = [i for got in claimed for i in got]
    assert sorted(flat) == ids  # every job once, none twice
    runs = store.runs()
    assert sorted(r.job_id for r in runs) == ids and all(r.outcome == SUCCEEDED for r in runs)
    store.close()


def test_concurrent_claims_threads(store):
    """Eight threads released together claim 200 jobs: each job is taken by exactly one of them, and
    the run record names the thread that holds the job."""
    ids = [store.insert("repredict", REQUEST, "ana").id for _ in range(200)]
    got: dict[str, list[int]] = {}
    start = threading.Barrier(8)

    def claim_all(worker):
        mine = got.setdefault(worker, [])
        start.wait(timeout=30)
        while (job := store.claim(worker)) is not None:
            mine.append(job.id)
            assert store.finish(job.id, worker, SUCCEEDED)

    threads = [threading.Thread(target=claim_all, args=(f"t{i}",)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    flat = [i for mine in got.values() for i in mine]
    assert sorted(flat) == ids
    holder = {i: worker for worker, mine in got.items() for i in mine}
    runs = store.runs()
    assert len(runs) == len(ids) and all(holder[r.job_id] == r.worker for r in runs)
    assert all(store.get(i).worker == holder[i] for i in ids[:: len(ids) // 10])


def test_max_active_checked_atomically(store):
    """Eight simultaneous submissions by one user under a limit of 3: exactly 3 are queued."""
    start = threading.Barrier(8)
    outcomes: list[str] = []

    def submit():
        start.wait(timeout=30)
        try:
            store.insert("repredict", REQUEST, "ana", max_active=3)
            outcomes.append("queued")
        except InputError as err:
            outcomes.append(str(err))

    threads = [threading.Thread(target=submit) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert outcomes.count("queued") == 3 and len(outcomes) == 8
    assert all("already has 3 active jobs" in o for o in outcomes if o != "queued")
    assert len(store.jobs("ana")) == 3


def test_service_ownership_and_login(store):
    service = JobService(store, JobLimits(), require_login=True)
    ana_job = store.insert("repredict", REQUEST, "ana")
    with pytest.raises(AccessDenied, match="log in"):
        service.submit("repredict", REQUEST, None)
    with pytest.raises(AccessDenied, match="log in"):
        service.cancel(ana_job.id, "anonymous")
    with pytest.raises(AccessDenied, match="no job"):
        service.cancel(ana_job.id, "bob")
    with pytest.raises(AccessDenied, match="no job"):
        service.logs(ana_job.id, "bob")
    assert service.list_jobs("bob") == []
    assert store.get(ana_job.id).status == QUEUED  # bob's attempt changed nothing
    assert [j.id for j in service.list_jobs("ana")] == [ana_job.id]
    assert service.logs(ana_job.id, "ana")[0].message == "queued by ana"
    assert service.cancel(ana_job.id, "ana").status == CANCELLED


def test_service_demo_mode_is_anonymous(store):
    service = JobService(store, JobLimits(), require_login=False)
    job = store.insert("repredict", REQUEST, "anonymous")
    assert [j.id for j in service.list_jobs(None)] == [job.id]
    assert service.cancel(job.id, "").status == CANCELLED


def test_history_survives_reopening(jobs_db):
    first = JobStore(jobs_db)
    job = first.insert("repredict", REQUEST, "ana")
    first.close()
    reopened = JobStore(jobs_db)
    assert reopened.get(job.id).request == REQUEST
    assert [line.message for line in reopened.logs(job.id)] == ["queued by ana"]
    reopened.close()


def test_postgres_store_reconnects_after_server_closed_its_connections(postgres_server):
    """Idle pooled connections the server has closed (restart, idle timeout) are replaced, not
    handed to the next call."""
    import psycopg

    store = JobStore(postgres_server.create_database())
    job = store.insert("repredict", REQUEST, "ana")
    database = store.path.rsplit("/", 1)[1]
    with psycopg.connect(postgres_server.url(), autocommit=True) as admin:
        (killed,) = admin.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = %s", (database,)
        ).fetchone()
    assert killed >= 1
    store.db.IDLE_CHECK_S = 0.0  # every idle connection is checked before reuse
    assert store.claim("w1").id == job.id
    assert store.get(job.id).worker == "w1"
    store.close()


def test_postgres_stores_of_a_process_share_connections(postgres_server):
    """One store per web session must not mean one pool per session: 30 stores on the same URL,
    used from 30 threads, leave at most the pool's size of connections open."""
    import psycopg

    url = postgres_server.create_database()
    stores = [JobStore(url) for _ in range(30)]
    job = stores[0].insert("repredict", REQUEST, "ana")
    threads = [threading.Thread(target=s.get, args=(job.id,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    database = url.rsplit("/", 1)[1]
    deadline = time.monotonic() + 10  # a closed connection's server process exits asynchronously
    with psycopg.connect(postgres_server.url(), autocommit=True) as admin:
        while True:
            (open_connections,) = admin.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (database,)
            ).fetchone()
            if open_connections <= stores[0].db.POOL_SIZE or time.monotonic() > deadline:
                break
            time.sleep(0.1)
    assert 1 <= open_connections <= stores[0].db.POOL_SIZE
    assert all(s.get(job.id).id == job.id for s in stores)
    stores[0].close()


def test_schema_1_file_loses_its_fixed_kind_list(tmp_path):
    """A job file written before kinds were registered (schema 1: ``kind`` checked against
    repredict, retrain) is rebuilt without that check, its jobs and logs kept."""
    from models import jobs

    path = tmp_path / "old.sqlite"
    insert = 'INSERT INTO jobs (kind, request, "user", status, created_at) VALUES (?, ?, ?, ?, ?)'
    old = jobs._SCHEMA.format(id="INTEGER PRIMARY KEY AUTOINCREMENT", float="REAL").replace(
        "kind TEXT NOT NULL,", "kind TEXT NOT NULL CHECK (kind IN ('repredict', 'retrain')),"
    )
    con = sqlite3.connect(path)
    con.executescript(f"{old};\nPRAGMA user_version = 1;")
    con.execute(insert, ("retrain", "{}", "ana", "queued", 1))
    con.execute("INSERT INTO job_log (job_id, at, level, message) VALUES (1, 1, 'INFO', 'queued by ana')")
    con.commit()
    with pytest.raises(sqlite3.IntegrityError):
        con.execute(insert, ("x", "{}", "a", "queued", 1))
    con.close()

    store = JobStore(path)
    assert store.get(1).kind == "retrain" and [line.message for line in store.logs(1)] == ["queued by ana"]
    with store.db.write() as con:
        con.execute(insert, ("x", "{}", "a", "queued", 1))
    assert store.get(2).kind == "x"
    assert store.insert("retrain", {}, "ana").id == 3
    with sqlite3.connect(path) as con:
        assert con.execute("PRAGMA user_version").fetchone()[0] == jobs._SCHEMA_VERSION
        assert (
            "CHECK (kind"
            not in con.execute("SELECT sql FROM sqlite_master WHERE name = 'jobs'").fetchone()[0]
        )
        assert {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'index'")} >= {
            "jobs_status",
            "jobs_user",
        }


def test_workers_report_themselves_alive_and_stopped(store):
    """Workers' own heartbeats (the Jobs tab says whether any worker is alive)."""
    assert store.live_workers(60) == []
    store.worker_seen("w1", ("repredict", "retrain"), host="h1")
    store.worker_seen("w2", ("repredict",), host="h2")
    now = time.time()
    alive = store.live_workers(60)
    assert [(w.worker, w.host, w.kinds) for w in alive] == [("w1", "h1", ("repredict", "retrain")),
                                                             ("w2", "h2", ("repredict",))]  # fmt: skip
    assert all(0 <= w.age_s(now) < 5 for w in alive)
    assert store.live_workers(60, now=now + 120) == []  # silent for longer than the window: dead
    store.worker_seen("w1", ("repredict",), host="h1")  # a beat updates, never duplicates
    store.worker_stopped("w2")
    assert [(w.worker, w.kinds) for w in store.live_workers(60)] == [("w1", ("repredict",))]
    store.worker_seen("w2", ("repredict",), host="h2")  # the same id back: alive again
    assert {w.worker for w in store.live_workers(60)} == {"w1", "w2"}


def test_repredict_title_names_box_period_and_model():
    from models.jobs import repredict_title

    request = {"version": "v3", "bbox": [-105.0, 35.0, -95.5, 45.0]}
    request.update(start="2018-07-01", end="2018-07-10")
    assert repredict_title(request) == (
        "LE/H re-prediction \u2212105…\u221295.5 E, 35…45 N, 2018-07-01…2018-07-10 (model v3)"
    )
