"""A re-prediction on a real 2-process LocalCluster: the prediction tasks run on the cluster's
workers (from the scheduler's task stream), the product equals the threaded one bit for bit, a
cancel registers nothing, and a worker killed mid-run does not lose the run."""

from __future__ import annotations

import os
import signal
import threading

import numpy as np
import pytest
import xarray as xr

from models import predict
from models.cluster import dask_scheduler
from tests.conftest import demo_copy_with_model
from tests.stores import level_path

distributed = pytest.importorskip("distributed")

BBOX = (-110.0, 20.0, -80.0, 50.0)
PERIOD = ("2018-06-03", "2018-06-12")
BLOCK = (4, 8, 8)


@pytest.fixture(scope="module")
def world(demo_world, tmp_path_factory):
    d = tmp_path_factory.mktemp("predict_cluster") / "data"
    settings = dict(num_boost_round=15, n_folds=2, params={"min_data_in_leaf": 5}, shap_sample=100)
    with demo_copy_with_model(demo_world, d, **settings) as version:
        yield d, version


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as c:
        yield c


@pytest.fixture(scope="module")
def threaded(world):
    d, version = world
    name = predict.predict_region(version, BBOX, *PERIOD, product_name="emu-threads", block=BLOCK)
    return xr.open_zarr(level_path(d, name), consolidated=False).load()


def _products(d):
    return sorted(p.name for p in (d / "products").iterdir())


def test_cluster_prediction_runs_on_workers_and_equals_threaded(world, cluster, threaded):
    d, version = world
    with dask_scheduler(cluster.scheduler_address), distributed.get_task_stream() as stream:
        name = predict.predict_region(version, BBOX, *PERIOD, product_name="emu-cluster", block=BLOCK)
    out = xr.open_zarr(level_path(d, name), consolidated=False).load()
    for v in ("le", "h", "ef"):
        np.testing.assert_array_equal(out[v].values, threaded[v].values)
    assert np.isfinite(out.le.values).sum() > 100
    blocks = [r for r in stream.data if str(r["key"]).startswith("predict-block-")]
    workers = set(cluster.scheduler_info["workers"])
    assert blocks and {r["worker"] for r in blocks} <= workers
    assert len({r["worker"] for r in blocks}) == 2
    from catalog import api

    assert api.product_info(name).provenance["computed_on"].startswith("dask.distributed cluster")


def test_cluster_cancel_registers_nothing(world, cluster):
    d, version = world
    before, seen = _products(d), []
    with dask_scheduler(cluster.scheduler_address), pytest.raises(predict.Cancelled):
        predict.predict_region(
            version, BBOX, *PERIOD, product_name="emu-cluster-cancel", block=BLOCK,
            progress=lambda done, total: seen.append(done), should_cancel=lambda: len(seen) >= 3,
        )  # fmt: skip
    assert 3 <= len(seen) < 100
    assert _products(d) == before
    assert not list((d / "tmp").iterdir())


def test_killed_worker_mid_run_still_completes(world, cluster, threaded):
    d, version = world
    killed = threading.Event()
    with dask_scheduler(cluster.scheduler_address):
        client = distributed.get_client()
        victim = next(iter(client.run(os.getpid).values()))

        def kill_once(done, total):
            if done >= 2 and not killed.is_set():
                killed.set()
                os.kill(victim, signal.SIGKILL)

        name = predict.predict_region(
            version, BBOX, *PERIOD, product_name="emu-cluster-killed", block=BLOCK, progress=kill_once
        )
        client.wait_for_workers(2, timeout=60)
    assert killed.is_set()
    out = xr.open_zarr(level_path(d, name), consolidated=False).load()
    for v in ("le", "h", "ef"):
        np.testing.assert_array_equal(out[v].values, threaded[v].values)


def test_cluster_scenario_runs_on_workers_and_equals_threaded(world, cluster):
    """The perturbation happens inside each block task: on the cluster's workers, with the same
    values (range flags included) as on threads."""
    d, version = world
    scenario = "ta+2K, precip*0.8"
    here = predict.predict_region(version, BBOX, *PERIOD, product_name="scen-threads", block=BLOCK,
                                  scenario=scenario)  # fmt: skip
    with dask_scheduler(cluster.scheduler_address), distributed.get_task_stream() as stream:
        there = predict.predict_region(version, BBOX, *PERIOD, product_name="scen-cluster", block=BLOCK,
                                       scenario=scenario)  # fmt: skip
    a = xr.open_zarr(level_path(d, here), consolidated=False).load()
    b = xr.open_zarr(level_path(d, there), consolidated=False).load()
    assert {"scenario_outside_range", "scenario_pushed_outside"} <= set(b.data_vars)
    for v in a.data_vars:
        assert a[v].values.tobytes() == b[v].values.tobytes(), v
    blocks = [r for r in stream.data if str(r["key"]).startswith("predict-block-")]
    assert blocks and {r["worker"] for r in blocks} <= set(cluster.scheduler_info["workers"])
