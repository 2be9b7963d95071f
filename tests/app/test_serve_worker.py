"""`fluxlens serve` (what `bash dev.sh serve` runs) starts a job worker beside it by default: a
re-prediction submitted to the served data directory runs to the end without a second command, in a
worker process that is not the web process, reports itself alive and stops with the server;
``--workers 0`` starts none."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import psutil
import pytest

from models.jobs import SUCCEEDED, JobLimits, JobService, JobStore
from tests.browser import FLUXLENS, _wait_answering, free_port
from tests.models import test_worker
from tests.models.test_worker import region, watch

world = test_worker.world  # the demo world with a trained model (module-scoped)


def _children(pid: int) -> list[psutil.Process]:
    return [c for c in psutil.Process(pid).children(recursive=True) if "worker" in " ".join(c.cmdline())]


def _serve(env: dict, log) -> tuple[subprocess.Popen, psutil.Process]:
    """``fluxlens serve`` (default: one worker) in its own process group, once its worker child exists."""
    server = subprocess.Popen([*FLUXLENS, "serve", "--port", str(free_port())], env=env,
                              stdout=log, stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    deadline = time.monotonic() + 120
    while not _children(server.pid):
        if server.poll() is not None or time.monotonic() > deadline:
            os.killpg(server.pid, signal.SIGKILL)
            pytest.fail(f"no worker beside the server; its log: {Path(log.name).read_text()}")
        time.sleep(0.1)
    (worker,) = _children(server.pid)
    return server, worker


def test_served_dashboard_runs_a_repredict_and_stops_its_worker(world, tmp_path):
    env = dict(
        os.environ, FLUXLENS_DATA_DIR=str(world["root"]), FLUXLENS_JOBS_DB=str(tmp_path / "jobs.sqlite")
    )
    log = open(tmp_path / "serve.log", "w")  # noqa: SIM115 - closed below
    server, worker = _serve(env, log)
    try:
        assert worker.pid != server.pid
        store = JobStore(env["FLUXLENS_JOBS_DB"])
        job = JobService(store, JobLimits()).submit("repredict", region(world, 8, 2), None)
        final, _ = watch(store, job.id, timeout=180)
        assert final.status == SUCCEEDED, final.error
        assert [w.pid for w in store.live_workers(60)] == [worker.pid]  # the Jobs tab sees it alive
        server.send_signal(signal.SIGTERM)  # the server alone, not its process group
        assert server.wait(timeout=60) == 0, (tmp_path / "serve.log").read_text()
        worker.wait(timeout=40)
        assert not worker.is_running()
        assert store.live_workers(60) == []  # it said it stopped
        store.close()
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)
        log.close()


def test_sigterm_during_start_up_stops_server_and_worker(world, tmp_path):
    """A SIGTERM while the server warms up (numba compiling inside C callbacks, where an exception
    raised by a signal handler is printed and ignored) still stops both processes, without a
    traceback."""
    env = dict(
        os.environ, FLUXLENS_DATA_DIR=str(world["root"]), FLUXLENS_JOBS_DB=str(tmp_path / "jobs.sqlite")
    )
    log_path = tmp_path / "serve.log"
    for attempt in range(3):  # the signal lands at a different start-up step each time
        with open(log_path, "w") as log:
            server, worker = _serve(env, log)
            try:
                time.sleep(0.5 * attempt)
                server.send_signal(signal.SIGTERM)
                assert server.wait(timeout=60) == 0, log_path.read_text()
                worker.wait(timeout=10)
            finally:
                if server.poll() is None:
                    os.killpg(server.pid, signal.SIGKILL)
        assert "Traceback" not in log_path.read_text()


def test_no_worker_with_workers_0(world, tmp_path, capsys):
    env = dict(
        os.environ, FLUXLENS_DATA_DIR=str(world["root"]), FLUXLENS_JOBS_DB=str(tmp_path / "jobs.sqlite")
    )
    port = free_port()
    with open(tmp_path / "serve.log", "w") as log:
        server = subprocess.Popen([*FLUXLENS, "serve", "--workers", "0", "--port", str(port)], env=env,
                                  stdout=log, stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
        try:
            _wait_answering(server, f"http://localhost:{port}/app", tmp_path / "serve.log", 120)
            assert _children(server.pid) == []
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=60)
    from fluxlens import cli

    with pytest.raises(SystemExit):
        cli.main(["serve", "--help"])
    assert "--workers N" in capsys.readouterr().out
    with pytest.raises(SystemExit) as refused:
        cli.main(["serve", "--workers", "-1"])
    assert refused.value.code == 2 and "a whole number from 0 to 16" in capsys.readouterr().err
