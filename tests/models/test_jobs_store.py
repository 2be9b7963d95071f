"""The job queue at the store level: schema, claims, state machine, cancellation, dead-worker recovery,
ownership rules of the service. Real SQLite files, real threads and processes."""

from __future__ import annotations

import multiprocessing
import sqlite3
import threading

import pytest

from catalog.errors import InputError
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
    jobs_db_path,
)

REQUEST = {"version": "v1", "bbox": [-100.0, 35.0, -99.0, 36.0], "start": "2018-07-01", "end": "2018-07-05"}


@pytest.fixture
def store(tmp_path) -> JobStore:
    return JobStore(tmp_path / "jobs.sqlite")


def test_default_location_wal_and_schema(data_dir):
    store = JobStore()
    assert store.path == data_dir / "jobs.sqlite"
    con = sqlite3.connect(store.path)
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"jobs", "job_log", "job_runs"} <= tables


def test_url_forms(tmp_path, monkeypatch):
    assert jobs_db_path(f"sqlite:///{tmp_path}/q.sqlite") == tmp_path / "q.sqlite"
    monkeypatch.setenv("FLUXLENS_JOBS_DB", str(tmp_path / "env.sqlite"))
    assert jobs_db_path() == tmp_path / "env.sqlite"
    with pytest.raises(InputError, match="only SQLite"):
        jobs_db_path("postgresql://db/fluxlens")


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


def _claim_all(path, worker, out):
    store = JobStore(path)
    got = []
    while (job := store.claim(worker)) is not None:
        got.append(job.id)
        store.finish(job.id, worker, SUCCEEDED)
    out.put(got)


def test_concurrent_claims_processes_never_share_a_job(tmp_path):
    path = tmp_path / "jobs.sqlite"
    store = JobStore(path)
    ids = [store.insert("repredict", REQUEST, "ana").id for _ in range(60)]
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=_claim_all, args=(path, f"w{i}", out)) for i in range(3)]
    for p in procs:
        p.start()
    claimed = [out.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=30)
        assert p.exitcode == 0
    flat = [i for got in claimed for i in got]
    assert sorted(flat) == ids  # every job once, none twice
    assert all(len(store.runs(i)) == 1 for i in ids)


def test_concurrent_claims_threads(store):
    ids = [store.insert("repredict", REQUEST, "ana").id for _ in range(40)]
    got: list[int] = []
    lock = threading.Lock()

    def claim_all(worker):
        while (job := store.claim(worker)) is not None:
            with lock:
                got.append(job.id)

    threads = [threading.Thread(target=claim_all, args=(f"t{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(got) == ids


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


def test_history_survives_reopening(tmp_path):
    path = tmp_path / "jobs.sqlite"
    job = JobStore(path).insert("repredict", REQUEST, "ana")
    reopened = JobStore(path)
    assert reopened.get(job.id).request == REQUEST
