"""The ``scoreboard`` job kind: submitted like any job, run by a real ``fluxlens worker`` process,
its result cached where the scoreboard caches and shown by the dashboard's scoreboard view."""

from __future__ import annotations

import os
import subprocess

import pytest

from catalog.errors import InputError
from models.jobs import ANONYMOUS as ANON
from models.jobs import MODEL_KINDS, QUEUED, SUCCEEDED, JobService, JobStore, job_kinds
from tests.models.test_jobs_cli import worker_command
from validation import jobs as validation_jobs
from validation import scoreboard
from validation.config import ValidationOptions


@pytest.fixture
def env(demo_world, tmp_path, monkeypatch):
    values = {
        "FLUXLENS_DATA_DIR": str(demo_world),
        "FLUXLENS_VALIDATION_CACHE": str(tmp_path / "cache"),
        "FLUXLENS_JOBS_DB": str(tmp_path / "jobs.sqlite"),
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return values


def _request(**extra) -> dict:
    options = ValidationOptions.from_config()
    return {
        **validation_jobs.scoreboard_request("fluxes_demo", "le", "fluxnet_demo", options=options),
        **extra,
    }


def test_scoreboard_job_run_by_the_worker_is_cached_and_shown(env, tmp_path):
    import holoviews as hv

    from app.scoreboard_panel import ScoreboardView
    from app.state import AppState
    from app.validation_site_panel import SiteValidation
    from catalog import api

    assert "scoreboard" in job_kinds()
    service = JobService(JobStore())  # the dashboard's visitor submits
    job = service.submit("scoreboard", _request(), ANON)
    options = ValidationOptions.from_config()
    key = scoreboard.scoreboard_key("fluxes_demo", "le", "fluxnet_demo", options=options)
    assert scoreboard.cached_scoreboard(key, "fluxes_demo", "le", "fluxnet_demo") is None  # not computed yet

    with open(tmp_path / "worker.log", "w") as log:
        done = subprocess.run(
            [*worker_command(), "--once"], env=dict(os.environ, **env), stdout=log, stderr=log, timeout=600
        )
    assert done.returncode == 0, (tmp_path / "worker.log").read_text()
    job = service.job(job.id, ANON)
    n_sites = len(api.sites("fluxnet_demo"))
    assert job.status == SUCCEEDED and job.output == key
    assert job.progress_done == job.progress_total == n_sites
    board = scoreboard.cached_scoreboard(key, "fluxes_demo", "le", "fluxnet_demo")
    assert board is not None and len(board.table) == n_sites
    assert board.table["rmse"].notna().sum() >= 5 and board.pooled["sites"] >= 5

    hv.extension("bokeh", logo=False)
    state = AppState()
    site = SiteValidation(state)
    site.network.value, site.variable.value = "fluxnet_demo", "le"
    view = ScoreboardView(state, site.network, site.variable, site.options, service)
    view._job_id = job.id  # the page that submitted the job follows it
    view.wait()
    assert "sites matched" in view.sb_status.object and "from cache" not in view.sb_status.object
    assert len(view.sb_table.value) == n_sites
    assert isinstance(view.sb_taylor.object, hv.Overlay)
    view.run_scoreboard()  # the same scoreboard again: from the cache, no job
    assert view._job_id is None and "from cache" in view.sb_status.object
    assert len(service.list_jobs(ANON)) == 1


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"product": "no_such_product"}, "no_such_product"),
        ({"variable": "ta"}, "cannot be validated"),
        ({"variable": "ssm"}, "has no variable 'ssm'"),
        ({"site_ids": ["XX-Nope"]}, "has no site"),
        ({"options": {"min_pairs": 1}}, "min_pairs"),
        ({"colour": "red"}, "unknown settings"),
    ],
)
def test_bad_scoreboard_requests_are_refused_before_queueing(env, change, message):
    service = JobService(JobStore())
    with pytest.raises(InputError, match=message):
        service.submit("scoreboard", _request(**change), "ana")
    assert service.list_jobs("ana") == []


def test_a_worker_claims_only_kinds_it_knows(env):
    store = JobStore()
    job = JobService(store).submit("scoreboard", _request(), "ana")
    assert store.claim("models-only", kinds=MODEL_KINDS) is None
    assert store.get(job.id).status == QUEUED
    assert store.claim("full", kinds=job_kinds()).id == job.id
