"""Browser-test fixtures: a served dashboard and a Chromium page that fails the test on any console
error. The plain helpers they use live in ``tests/browser.py``."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.browser import CHROMIUM, ServerDidNotStart, launch_chromium, serving


@pytest.fixture(scope="session")
def chromium() -> str:
    """The Debian Chromium's path; skips with a reason where it or Playwright is missing."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"Chromium not found at {CHROMIUM} (apt-get install chromium)")
    pytest.importorskip("playwright.sync_api", reason="playwright (python) is not installed")
    return CHROMIUM


@contextmanager
def serve_or_fail(env: dict, log_path: Path, *serve_args: str) -> Iterator[str]:
    """:func:`tests.browser.serving`, failing the test (with the server log's tail) when the server
    does not come up."""
    try:
        with serving(env, log_path, *serve_args) as base:
            yield base
    except ServerDidNotStart as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="session")
def serve_dashboard(chromium):
    """:func:`serve_or_fail`, for tests that serve a data directory of their own."""
    return serve_or_fail


@pytest.fixture(scope="session")
def demo_server(chromium, demo_world, tmp_path_factory) -> Iterator[dict]:
    """``fluxlens serve`` on a hard-link copy of the session's small demo world, shared by the browser
    tests that only read it (stores are written by atomic replace, never in place, so the session's
    ``demo_world`` stays untouched). ``url`` is the app page, ``data_dir`` the served directory,
    ``env`` the server's environment (for a job worker beside it)."""
    base = tmp_path_factory.mktemp("demo-server")
    data_dir = base / "fluxlens-data"
    shutil.copytree(demo_world, data_dir, copy_function=os.link)
    env = dict(os.environ, FLUXLENS_DATA_DIR=str(data_dir), FLUXLENS_VALIDATION_CACHE=str(base / "cache"))
    with serve_or_fail(env, base / "serve.log") as url:
        yield {"url": f"{url}/app", "data_dir": data_dir, "env": env}


@pytest.fixture
def viewport() -> dict:
    """Browser window size; a test module overrides this fixture for a different one."""
    return {"width": 1400, "height": 1000}


@pytest.fixture
def browser_page(chromium, viewport, tmp_path) -> Iterator[tuple]:
    """``(page, errors)``: a page in a fresh Chromium profile, and the console errors and uncaught
    page errors seen so far. Any error fails the test after the browser closes."""
    from playwright.sync_api import sync_playwright

    errors: list[str] = []
    with sync_playwright() as p:
        ctx = launch_chromium(p, tmp_path / "profile", viewport, accept_downloads=True)
        page = ctx.new_page()
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        try:
            yield page, errors
        finally:
            ctx.close()
    assert not errors, f"browser console errors: {errors}"


@pytest.fixture
def demo_catalog(demo_world, monkeypatch) -> Path:
    """The session's small demo world as the current data directory (read-only), with the views'
    product list read afresh."""
    from app import data

    monkeypatch.setenv("FLUXLENS_DATA_DIR", str(demo_world))
    data.view_data().forget_products()
    return demo_world


def tiny_cube(value: float = 0.25, start: str = "2018-07-01", periods: int = 2):
    """A 2 × 3 px daily ``ssm`` cube (m3 m-3) to write as a product of one's own."""
    import numpy as np
    import pandas as pd
    import xarray as xr

    ssm = np.full((periods, 2, 3), value, dtype="float32")
    return xr.Dataset(
        {"ssm": (("time", "lat", "lon"), ssm, {"units": "m3 m-3", "long_name": "surface soil moisture"})},
        coords={"time": pd.date_range(start, periods=periods), "lat": [1.5, 0.5], "lon": [0.5, 1.5, 2.5]},
    )
