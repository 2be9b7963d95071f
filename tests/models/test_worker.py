"""Real ``fluxlens worker`` processes on a copy of the small demo world with a trained emulator:
re-prediction to the catalog, progress, cancel, SIGKILL and recovery, two workers sharing a queue,
retrain to a new model version. Cancel, recovery and two workers sharing a queue also run on a
PostgreSQL job database."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from catalog import api
from models.job_limits import JobLimits, prediction_domain
from models.jobs import CANCELLED, FAILED, RUNNING, SUCCEEDED, JobService, JobStore, repredict_title
from tests.conftest import demo_copy_with_model
from tests.models.conftest import jobs_db_url
from tests.models.test_jobs_cli import worker_command

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def world(demo_world, tmp_path_factory):
    """A writable copy of the demo world (hard links: stores are never modified in place) with one
    trained model version; ``$FLUXLENS_DATA_DIR`` points at it for the module."""
    root = tmp_path_factory.mktemp("jobs-world") / "fluxlens-data"
    settings = dict(targets="raw", n_folds=2, num_boost_round=40, shap_sample=200)
    with demo_copy_with_model(demo_world, root, **settings) as version:
        yield {"root": root, "version": version, "domain": prediction_domain(version)}


@pytest.fixture
def queue(world, tmp_path, request):
    """A fresh job database for each test (SQLite, or the backend named by an indirect parameter),
    and a starter of real worker processes on it."""
    db = jobs_db_url(getattr(request, "param", "sqlite"), request, tmp_path)
    store = JobStore(db)
    service = JobService(store, JobLimits(max_active_per_user=20))
    procs: list[subprocess.Popen] = []

    def start_worker(*args: str, stale_s: float = 3.0, max_attempts: int = 2) -> subprocess.Popen:
        env = dict(
            os.environ,
            FLUXLENS_DATA_DIR=str(world["root"]),
            FLUXLENS_JOBS_DB=str(db),
            FLUXLENS_JOB_HEARTBEAT_S="0.5",
            FLUXLENS_JOB_STALE_S=str(stale_s),
            FLUXLENS_JOB_MAX_ATTEMPTS=str(max_attempts),
            FLUXLENS_JOB_BLOCK="8,16,16",  # many small blocks: progress and cancel in fine steps
        )
        log = open(tmp_path / f"worker-{len(procs)}.log", "w")  # noqa: SIM115 (closed with the process)
        proc = subprocess.Popen([*worker_command(), "--poll", "0.2", *args], env=env, stdout=log, stderr=log)
        procs.append(proc)
        return proc

    yield {"store": store, "service": service, "start_worker": start_worker, "tmp": tmp_path}
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    store.close()


def region(world, n_px: int, n_days: int) -> dict:
    """A request of about ``n_px`` × ``n_px`` pixels and ``n_days`` days at the north-west corner of
    the model's domain."""
    d = world["domain"]
    w, s, e, n = d["bbox"]
    res = d["grid"].resolution
    size = min(n_px * res, e - w, n - s)
    start = d["start"]
    end = min(d["end"], start + np.timedelta64(n_days - 1, "D").astype(object))
    return {
        "version": world["version"],
        "bbox": [w, n - size, w + size, n],
        "start": start.isoformat(),
        "end": end.isoformat(),
    }


def wait_for(predicate, timeout: float, what: str, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def watch(store: JobStore, job_id: int, timeout: float) -> tuple:
    """Poll a job until it is final; returns (final job, [(status, done, total) samples])."""
    samples = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = store.get(job_id)
        samples.append((job.status, job.progress_done, job.progress_total))
        if not job.is_active:
            return job, samples
        time.sleep(0.02)
    raise AssertionError(f"job {job_id} not finished after {timeout} s: {store.get(job_id)}")


def product_names() -> set[str]:
    return {p.name for p in api.list_products()}


def test_repredict_progress_to_result(world, queue):
    store, service = queue["store"], queue["service"]
    before = product_names()
    job = service.submit("repredict", region(world, 40, 10), "ana")
    queue["start_worker"]()
    final, seen = watch(store, job.id, timeout=300)
    assert final.status == SUCCEEDED, (final.error, [line.message for line in store.logs(job.id)])
    assert final.progress_total > 0 and final.progress_done == final.progress_total and final.fraction == 1
    assert any(status == RUNNING and 0 < done < total for status, done, total in seen)  # moved in steps
    assert final.output in product_names() - before
    ds = api.open_product(final.output)
    info = api.product_info(final.output)
    w, s, e, n = job.request["bbox"]
    assert {"le", "h"} <= set(ds.data_vars)
    assert info.bbox[0] >= w - 1e-6 and info.bbox[2] <= e + 1e-6
    assert str(info.time_start)[:10] == job.request["start"] and str(info.time_end)[:10] == job.request["end"]
    # titled with its box and period, named uniquely
    assert info.title == job.request["title"] == repredict_title(job.request)
    assert f"{job.request['start']}…{job.request['end']}" in info.title and world["version"] in info.title
    assert final.output.startswith("emulator-") and final.output != info.title
    le = ds["le"].isel(time=0).values
    assert np.isfinite(le).any()
    assert [r.outcome for r in store.runs(job.id)] == [SUCCEEDED]
    assert final.elapsed_s() > 0


def test_scenario_and_explain_jobs_run_by_a_worker_process(world, queue):
    """A ``repredict`` job with a scenario and an ``explain`` job of the same box, run by a real
    worker process: both products registered with their titles, the scenario's flags and
    provenance, the explanation's dominant driver; their difference from a plain re-prediction of
    the box is taken through the catalog."""
    from models import scenarios

    store, service = queue["store"], queue["service"]
    req = region(world, 16, 4)
    plain = service.submit("repredict", req, "ana")
    warm = service.submit("repredict", {**req, "scenario": "ta+2K"}, "ana")
    explain = service.submit("explain", req, "ana")
    queue["start_worker"]()
    finals = {job.id: watch(store, job.id, timeout=300)[0] for job in (plain, warm, explain)}
    for job in finals.values():
        assert job.status == SUCCEEDED, (job.kind, job.error, [line.message for line in store.logs(job.id)])
        assert job.progress_done == job.progress_total > 0
    plain, warm, explain = (finals[j.id] for j in (plain, warm, explain))
    info = api.product_info(warm.output)
    assert info.title == warm.request["title"] and info.title.endswith("scenario ta +2 K")
    assert info.provenance["scenario"]["text"] == "ta +2 K" and "scenario_counts" in info.provenance
    assert {"scenario_outside_range", "scenario_pushed_outside"} <= set(info.variables)
    diff = scenarios.difference(warm.output, plain.output).load()
    assert np.isfinite(diff.le.values).sum() > 10
    ex = api.product_info(explain.output)
    assert ex.title == explain.request["title"] and ex.title.startswith("EF explanation")
    assert explain.output.startswith("explain-") and "dominant_driver" in ex.variables
    assert np.isfinite(api.open_product(explain.output)["dominant_driver"].values).sum() > 10


def wait_running_with_progress(store: JobStore, job_id: int, timeout: float = 300):
    return wait_for(
        lambda: (j := store.get(job_id)).status == RUNNING and j.progress_done >= 1 and j,
        timeout,
        f"job {job_id} to report progress",
        interval=0.01,
    )


def products_dir(world) -> Path:
    return world["root"] / "products"


@pytest.mark.parametrize("queue", ["sqlite", "postgresql"], indirect=True)
def test_cancel_running_job(world, queue):
    store, service = queue["store"], queue["service"]
    before = product_names()
    job = service.submit("repredict", region(world, 40, 30), "ana")
    queue["start_worker"]()
    running = wait_running_with_progress(store, job.id)
    assert running.progress_done < running.progress_total
    service.cancel(job.id, "ana")
    final, _ = watch(store, job.id, timeout=120)
    assert final.status == CANCELLED and final.output is None
    assert final.progress_done < final.progress_total
    assert product_names() == before
    assert not [
        p for p in products_dir(world).iterdir() if not p.name.startswith(".") and p.name not in before
    ]
    assert [r.outcome for r in store.runs(job.id)] == [CANCELLED]


@pytest.mark.parametrize(
    ("queue", "max_attempts"), [("sqlite", 2), ("sqlite", 1), ("postgresql", 2)], indirect=["queue"]
)
def test_sigkill_mid_job_then_restart(world, queue, max_attempts):
    store, service = queue["store"], queue["service"]
    before = product_names()
    job = service.submit("repredict", region(world, 40, 30), "ana")
    first = queue["start_worker"](max_attempts=max_attempts)
    wait_running_with_progress(store, job.id)
    os.kill(first.pid, signal.SIGKILL)
    first.wait(timeout=30)
    assert store.get(job.id).status == RUNNING  # nobody has noticed yet
    assert product_names() == before  # nothing registered by the killed worker
    strays = [p.name for p in products_dir(world).iterdir() if p.name.startswith(".")]
    queue["start_worker"](stale_s=2.0, max_attempts=max_attempts)
    final, _ = watch(store, job.id, timeout=300)
    outcomes = [r.outcome for r in store.runs(job.id)]
    if max_attempts == 2:
        assert final.status == SUCCEEDED and final.attempts == 2
        assert outcomes == ["lost", SUCCEEDED]
        assert product_names() - before == {final.output}
        # the retry's prediction removed the killed run's scratch store
        assert not [d for d in (world["root"] / "tmp").iterdir() if f"-{first.pid}-" in d.name]
    else:
        assert final.status == FAILED and "stopped responding" in final.error
        assert outcomes == ["lost"]
        assert product_names() == before
    # temporary directories of the killed write are never listed as products
    assert not any(name in product_names() for name in strays)
    assert any("stopped responding" in line.message for line in store.logs(job.id))


@pytest.mark.parametrize("queue", ["sqlite", "postgresql"], indirect=True)
def test_two_workers_six_jobs_each_once(world, queue):
    store, service = queue["store"], queue["service"]
    jobs = [service.submit("repredict", region(world, 20 + i, 3), f"user{i % 3}") for i in range(6)]
    a = queue["start_worker"]("--once")
    b = queue["start_worker"]("--once")
    assert a.wait(timeout=600) == 0 and b.wait(timeout=600) == 0
    runs = store.runs()
    assert sorted(r.job_id for r in runs) == sorted(j.id for j in jobs)  # each job ran exactly once
    assert all(store.get(j.id).status == SUCCEEDED and store.get(j.id).attempts == 1 for j in jobs)
    assert len({r.worker for r in runs}) == 2  # both workers took part
    outputs = {store.get(j.id).output for j in jobs}
    assert len(outputs) == 6 and outputs <= product_names()


def test_retrain_job_registers_a_version(world, queue):
    from models import registry

    store, service = queue["store"], queue["service"]
    before = {v["version"] for v in registry.list_versions()}
    sites = sorted(api.sites("fluxnet_demo")["site_id"].astype(str))[:8]
    job = service.submit(
        "retrain",
        {
            "sites_source": "fluxnet_demo",
            "targets": "raw",
            "constraint": True,
            "sites": sites,
            "num_boost_round": 30,
            "n_folds": 2,
        },
        "ana",
    )
    queue["start_worker"]("--once")
    final, samples = watch(store, job.id, timeout=600)
    assert final.status == SUCCEEDED, (final.error, [line.message for line in store.logs(job.id)])
    assert {v["version"] for v in registry.list_versions()} - before == {final.output}
    meta = registry.read_meta(final.output)
    full = registry.read_meta(world["version"])  # the fixture's model: every site
    assert 0 < meta["training_data"]["n_sites"] <= len(sites) < full["training_data"]["n_sites"]
    assert meta["training_data"]["n_rows"] < full["training_data"]["n_rows"]
    assert meta["training_data"]["source"] == f"network:fluxnet_demo (sites {','.join(sites)})"
    assert meta["constrained"] is True
    assert any(total and 0 < done < total for _, done, total in samples)
