"""The Jobs tab against a real job database: the user's list, progress, cancel, login rule, box input."""

from __future__ import annotations

import pytest

from app.jobs_panel import JobsView, _parse_bbox, panel
from app.state import AppState
from catalog.errors import FluxLensError
from models.job_limits import JobLimits
from models.jobs import CANCELLED, JobService, JobStore

REQUEST = {"version": "v1", "bbox": [-100.0, 35.0, -99.0, 36.0], "start": "2018-07-01", "end": "2018-07-05"}


@pytest.fixture
def store(tmp_path) -> JobStore:
    return JobStore(tmp_path / "jobs.sqlite")


def test_lists_own_jobs_and_follows_progress(store):
    mine = store.insert("repredict", REQUEST, "ana")
    store.insert("repredict", REQUEST, "bob")
    view = JobsView(AppState(user="ana"), JobService(store, JobLimits(), require_login=True))
    assert list(view.selected.options.values()) == [mine.id]  # bob's job is not listed
    assert view.table.object.count("class='job-row'") == 1 and "data-status='queued'" in view.table.object
    assert "<progress value='0' max='1000'" in view.table.object
    assert not view.cancel_button.disabled
    assert "queued by ana" in view.log.object

    store.claim("w")
    store.set_progress(mine.id, "w", 5, 20)
    view.refresh()
    assert "<progress value='250' max='1000'" in view.table.object and "25% 5/20" in view.table.object
    assert "left" in view.table.object and "data-status='running'" in view.table.object
    assert "started by worker w" in view.log.object

    view.cancel_button.clicks += 1  # the button's click handler
    assert store.get(mine.id).cancel_requested
    assert "cancel requested" in view.message.object and "(cancel requested)" in view.table.object
    assert store.finish(mine.id, "w", CANCELLED)
    view.refresh()
    assert view.cancel_button.disabled and "data-status='cancelled'" in view.table.object


def test_anonymous_refused_when_login_on(store):
    view = JobsView(AppState(user="anonymous"), JobService(store, JobLimits(), require_login=True))
    view.bbox.value = "-100,35,-99,36"
    layout = view.layout()
    assert view.submit_button.disabled
    assert view.submit() is None
    assert view.message.alert_type == "danger" and "log in" in view.message.object
    assert store.jobs() == []
    assert layout is not None


def test_box_from_map_state(store):
    state = AppState(user="anonymous")
    view = JobsView(state, JobService(store, JobLimits()))
    state.box = (-101.5, 33.25, -97.0, 38.0)
    assert _parse_bbox(view.bbox.value) == (-101.5, 33.25, -97.0, 38.0)
    state.x_range, state.y_range = (-110.0, -90.0), (30.0, 45.0)
    view.use_view.clicks += 1
    assert _parse_bbox(view.bbox.value) == (-110.0, 30.0, -90.0, 45.0)
    with pytest.raises(FluxLensError, match="W,S,E,N"):
        _parse_bbox("1,2,3")


def test_repredict_inputs_offered_by_role_and_sent(store, demo_world, monkeypatch):
    monkeypatch.setenv("FLUXLENS_DATA_DIR", str(demo_world))
    view = JobsView(AppState(user="anonymous"), JobService(store, JobLimits()))
    assert set(view.inputs["forcing"].options.values()) == {"", "forcing_demo"}
    assert "ssm_global_demo" in view.inputs["ssm"].options.values()
    assert "fluxes_demo" in view.inputs["radiation"].options.values()
    view.bbox.value = "-100,35,-99,36"
    view.version.options, view.version.value = ["v1"], "v1"
    assert "inputs" not in view.request()  # default: the model's own
    view.inputs["forcing"].value = "forcing_demo"
    view.inputs["radiation"].value = "fluxes_demo"
    assert view.request()["inputs"] == {"forcing": "forcing_demo", "radiation": "fluxes_demo"}
    assert view.layout() is not None


def test_other_users_log_is_refused(store):
    bobs = store.insert("repredict", REQUEST, "bob")
    view = JobsView(AppState(user="ana"), JobService(store, JobLimits(), require_login=True))
    view.jobs_shown = [store.get(bobs.id)]  # even if the picker were forged to bob's job
    view.selected.options = {"forged": bobs.id}
    view.selected.value = bobs.id
    assert "no job" in view.log.object and "queued by bob" not in view.log.object


def test_panel_builds_without_a_server(store):
    viewable = panel(AppState(), service=JobService(store, JobLimits()))
    assert "jobs-panel" in viewable.css_classes


def test_says_whether_a_worker_is_alive(store):
    from app.jobs_panel import NO_WORKER

    view = JobsView(AppState(user="ana"), JobService(store, JobLimits()))
    assert view.workers.object == NO_WORKER and view.workers.alert_type == "warning"
    store.worker_seen("host:1:ab", ("repredict", "retrain"), host="node7")
    view.refresh()
    assert view.workers.alert_type == "success" and "1 job worker running: node7" in view.workers.object
    store.worker_stopped("host:1:ab")
    view.refresh()
    assert view.workers.object == NO_WORKER


def test_finished_repredict_shows_its_title_and_name(store):
    from models.jobs import SUCCEEDED, repredict_title

    request = {**REQUEST, "title": repredict_title(REQUEST), "product_name": "emulator-v1-0a1b2c3d"}
    job = store.insert("repredict", request, "ana")
    store.claim("w")
    assert store.finish(job.id, "w", SUCCEEDED, output="emulator-v1-0a1b2c3d")
    view = JobsView(AppState(user="ana"), JobService(store, JobLimits()))
    title = "LE/H re-prediction \u2212100…\u221299 E, 35…36 N, 2018-07-01…2018-07-05 (model v1)"
    assert title in view.table.object
    assert "<code>emulator-v1-0a1b2c3d</code>" in view.table.object


def test_explain_and_scenario_requests(store):
    version = "20260101T000000Z-0123abcd"
    view = JobsView(AppState(user="ana"), JobService(store, JobLimits()))
    view.bbox.value = "-100,35,-99,36"
    view.version.options, view.version.value = [version], version
    view.scenario.value = " ta+2K, precip*0.8 "
    assert view.request()["scenario"] == "ta+2K, precip*0.8"
    view.kind.value = "explain"
    explain = view.request()
    assert "scenario" not in explain  # a what-if is a re-prediction option only
    assert explain["bbox"] == [-100.0, 35.0, -99.0, 36.0] and explain["version"] == version
    assert view.submit() is None  # refused before queueing, in words
    assert f"unknown model version '{version}'" in view.message.object
    assert store.jobs(None) == []


def test_explain_job_described_in_the_table(store):
    request = {**REQUEST, "scenario": ["ta +2 K"]}
    store.insert("repredict", request, "ana")
    store.insert("explain", REQUEST, "ana")
    view = JobsView(AppState(user="ana"), JobService(store, JobLimits()))
    assert "scenario ta +2 K" in view.table.object
    assert "EF explanation (SHAP), model v1" in view.table.object
