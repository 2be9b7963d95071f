"""`fluxlens serve --with-worker` (what `bash dev.sh serve` runs): a re-prediction submitted to the
served data directory runs to the end without a second command, in a worker process that is not the
web process and that stops with the server."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import psutil
import pytest

from models.jobs import SUCCEEDED, JobLimits, JobService, JobStore
from tests.browser import FLUXLENS, free_port
from tests.models import test_worker
from tests.models.test_worker import region, watch

world = test_worker.world  # the demo world with a trained model (module-scoped)


def _children(pid: int) -> list[psutil.Process]:
    return [c for c in psutil.Process(pid).children(recursive=True) if "worker" in " ".join(c.cmdline())]


def test_served_dashboard_runs_a_repredict_and_stops_its_worker(world, tmp_path):
    env = dict(
        os.environ, FLUXLENS_DATA_DIR=str(world["root"]), FLUXLENS_JOBS_DB=str(tmp_path / "jobs.sqlite")
    )
    log = open(tmp_path / "serve.log", "w")  # noqa: SIM115 - closed below
    server = subprocess.Popen([*FLUXLENS, "serve", "--with-worker", "--port", str(free_port())], env=env,
                              stdout=log, stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not _children(server.pid):
            assert server.poll() is None and time.monotonic() < deadline, (tmp_path / "serve.log").read_text()
            time.sleep(0.5)
        (worker,) = _children(server.pid)
        assert worker.pid != server.pid
        store = JobStore(env["FLUXLENS_JOBS_DB"])
        job = JobService(store, JobLimits()).submit("repredict", region(world, 8, 2), None)
        final, _ = watch(store, job.id, timeout=180)
        assert final.status == SUCCEEDED, final.error
        store.close()
        server.send_signal(signal.SIGTERM)  # the server alone, not its process group
        server.wait(timeout=60)
        worker.wait(timeout=40)
        assert not worker.is_running()
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)
        log.close()


def test_serve_help_names_the_worker_option(capsys):
    from fluxlens import cli

    with pytest.raises(SystemExit):
        cli.main(["serve", "--help"])
    assert "--with-worker" in capsys.readouterr().out
