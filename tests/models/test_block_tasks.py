"""Prediction blocks as Dask tasks: the same store from the threaded scheduler and from a real
2-process LocalCluster, tasks run on the cluster's workers (the scheduler's task stream says so),
cancel and a killed worker."""

from __future__ import annotations

import os
import signal
import threading
import time

import dask.array as da
import lightgbm as lgb
import numpy as np
import pytest
import xarray as xr

from models import block_tasks
from models.forest import Forest

distributed = pytest.importorskip("distributed")

SHAPE = (8, 12, 10)  # time, lat, lon
BLOCK = (4, 6, 5)


def _forest() -> Forest:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2000, 2))
    y = np.sin(x[:, 0]) + 0.5 * x[:, 1]
    booster = lgb.train({"verbose": -1, "num_leaves": 15}, lgb.Dataset(x, y), num_boost_round=20)
    return Forest.from_booster(booster)


def _inputs() -> xr.Dataset:
    rng = np.random.default_rng(1)
    dims = ("time", "lat", "lon")
    data = {v: (dims, da.from_array(rng.normal(size=SHAPE), chunks=BLOCK)) for v in ("u", "w")}
    return xr.Dataset(data, coords={d: np.arange(n) for d, n in zip(dims, SHAPE, strict=True)})


def compute_block(forests, arrays, delay_s):
    """y = forest(u, w) for one block (a module-level function: workers import it)."""
    time.sleep(delay_s)
    shape = arrays["u"].shape
    x = np.column_stack([arrays["u"].reshape(-1), arrays["w"].reshape(-1)])
    return {"y": forests["m"].predict(x, n_jobs=1).reshape(shape).astype(np.float32)}


def _blocks():
    out = []
    for i in range(0, SHAPE[0], BLOCK[0]):
        for j in range(0, SHAPE[1], BLOCK[1]):
            for k in range(0, SHAPE[2], BLOCK[2]):
                region = {
                    "time": slice(i, i + BLOCK[0]),
                    "lat": slice(j, j + BLOCK[1]),
                    "lon": slice(k, k + BLOCK[2]),
                }
                out.append(block_tasks.Block(len(out), region))
    return out


def _empty_store(path) -> str:
    full = da.full(SHAPE, np.nan, dtype=np.float32, chunks=BLOCK)
    xr.Dataset({"y": (("time", "lat", "lon"), full)}).to_zarr(
        path, compute=False, mode="w", consolidated=False
    )
    return str(path)


def _running_blocks(dask_scheduler):
    """Block tasks still to run or running (finished ones may stay in memory while referenced)."""
    return [
        (str(k), ts.state)
        for k, ts in dask_scheduler.tasks.items()
        if "predict-block" in str(k) and ts.state not in ("memory", "released", "forgotten", "erred")
    ]


def _run(tmp_path, name, *, delay_s=0.0, **kw):
    store = _empty_store(tmp_path / name)
    forests = block_tasks.share({"m": _forest()})
    tasks = block_tasks.block_tasks(compute_block, forests, _inputs(), _blocks(), lambda b: (delay_s,), store)
    how = block_tasks.run(tasks, **kw)
    return how, xr.open_zarr(store, consolidated=False)["y"].values


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as c:
        yield c


def test_threaded_run_fills_every_block(tmp_path):
    done = []
    how, y = _run(tmp_path, "threads.zarr", progress=lambda d, t: done.append((d, t)))
    assert how == "dask local threaded scheduler"
    assert np.isfinite(y).all()
    assert done[-1] == (len(_blocks()), len(_blocks()))


def test_cluster_run_equals_threaded_and_runs_on_the_workers(tmp_path, cluster):
    _, expected = _run(tmp_path, "threads.zarr")
    with distributed.Client(cluster) as client, distributed.get_task_stream(client) as stream:
        how, y = _run(tmp_path, "cluster.zarr")
    assert how.startswith("dask.distributed cluster")
    np.testing.assert_array_equal(y, expected)  # bit for bit
    records = [r for r in stream.data if str(r["key"]).startswith("predict-block-")]
    assert len({str(r["key"]) for r in records}) == len(_blocks())
    workers = set(cluster.scheduler_info["workers"])
    assert {r["worker"] for r in records} <= workers
    assert len({r["worker"] for r in records}) == 2  # both worker processes predicted blocks
    assert all(r["worker"] for r in records)


def test_cluster_cancel_stops_the_futures(tmp_path, cluster):
    seen = []
    with distributed.Client(cluster) as client:
        with pytest.raises(block_tasks.Cancelled, match="cancelled after"):
            _run(tmp_path, "cancel.zarr", delay_s=0.5, progress=lambda d, t: seen.append(d),
                 should_cancel=lambda: len(seen) >= 2)  # fmt: skip
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            left = client.run_on_scheduler(_running_blocks)
            if not left:
                break
            time.sleep(0.2)
    assert not left, f"tasks still on the scheduler after cancel: {left}"
    assert len(seen) < len(_blocks())


def test_killed_worker_block_is_recomputed(tmp_path, cluster):
    _, expected = _run(tmp_path, "threads.zarr")
    with distributed.Client(cluster) as client:
        pids = client.run(os.getpid)
        victim = next(iter(pids.values()))
        killed = threading.Event()

        def kill_once(done, total):
            if not killed.is_set():
                killed.set()
                os.kill(victim, signal.SIGKILL)

        _, y = _run(tmp_path, "killed.zarr", delay_s=0.3, progress=kill_once)
        client.wait_for_workers(2, timeout=60)
    assert killed.is_set()
    np.testing.assert_array_equal(y, expected)
