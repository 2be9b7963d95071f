"""``fluxlens jobs list|cancel|log`` and ``fluxlens worker --once`` on a real job database."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from fluxlens.cli import main
from models.jobs import CANCELLED, JobStore


def worker_command() -> list[str]:
    """The installed ``fluxlens worker`` command."""
    return [str(Path(sys.executable).with_name("fluxlens")), "worker"]


REQUEST = {"version": "v1", "bbox": [-100.0, 35.0, -99.0, 36.0], "start": "2018-07-01", "end": "2018-07-05"}


def test_list_cancel_log(jobs_db, capsys):
    db = jobs_db
    store = JobStore(db)
    ana = store.insert("repredict", REQUEST, "ana")
    store.insert("repredict", REQUEST, "bob")

    assert main(["jobs", "list", "--jobs-db", str(db), "--user", "ana", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(j["id"], j["user"], j["status"]) for j in listed] == [(ana.id, "ana", "queued")]

    assert main(["jobs", "cancel", "--jobs-db", str(db), "--user", "bob", str(ana.id)]) == 2
    assert f"no job {ana.id} of user 'bob'" in capsys.readouterr().err
    assert main(["jobs", "cancel", "--jobs-db", str(db), "--user", "ana", str(ana.id)]) == 0
    assert store.get(ana.id).status == CANCELLED

    assert main(["jobs", "log", "--jobs-db", str(db), "--user", "ana", str(ana.id)]) == 0
    out = capsys.readouterr().out
    assert "queued by ana" in out and "cancelled before it started" in out
    store.close()


def test_worker_once_on_postgres(postgres_server, tmp_path):
    """A worker pointed at a server database by URL connects, creates nothing it should not, and
    logs the database without its password."""
    url = postgres_server.create_database()
    env = dict(os.environ, FLUXLENS_JOBS_DB=url, FLUXLENS_DATA_DIR=str(tmp_path))
    done = subprocess.run([*worker_command(), "--once"], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "ran 0 job(s)" in done.stdout
    assert url.replace(postgres_server.password, "***") in done.stderr
    assert postgres_server.password not in done.stdout + done.stderr
    assert not (tmp_path / "jobs.sqlite").exists()


def test_worker_once_on_empty_queue_exits(tmp_path):
    db = tmp_path / "jobs.sqlite"
    env = dict(os.environ, FLUXLENS_JOBS_DB=str(db), FLUXLENS_DATA_DIR=str(tmp_path))
    done = subprocess.run([*worker_command(), "--once"], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "ran 0 job(s)" in done.stdout
    assert "dask local threaded scheduler" in done.stderr


def test_worker_connects_to_a_named_dask_cluster(tmp_path):
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=1, threads_per_worker=1, processes=False, protocol="tcp", dashboard_address=None
    ) as cluster:
        env = dict(
            os.environ,
            FLUXLENS_JOBS_DB=str(tmp_path / "jobs.sqlite"),
            FLUXLENS_DATA_DIR=str(tmp_path),
            FLUXLENS_DASK_SCHEDULER=cluster.scheduler_address,
        )
        done = subprocess.run(
            [*worker_command(), "--once"], env=env, capture_output=True, text=True, timeout=120
        )
    assert done.returncode == 0, done.stderr
    assert f"dask.distributed cluster at {cluster.scheduler_address}" in done.stderr
