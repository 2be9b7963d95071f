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
from tests.conftest import demo_copy_with_model

# The re-prediction of the band world (band_world): the demo's North American towers (US-D01 … US-D03,
# US-D08) lie inside the box.
BAND_BBOX = (-110.0, 20.0, -80.0, 50.0)
BAND_PERIOD = ("2018-06-03", "2018-06-05")
BAND_PRODUCT = "emu-bands"


@pytest.fixture(scope="session")
def chromium() -> str:
    """The Debian Chromium's path; skips with a reason where it or Playwright is missing."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"Chromium not found at {CHROMIUM} (apt-get install chromium)")
    pytest.importorskip("playwright.sync_api", reason="playwright (python) is not installed")
    return CHROMIUM


@contextmanager
def serve_or_fail(
    env: dict, log_path: Path, *serve_args: str, command: list[str] | None = None
) -> Iterator[str]:
    """:func:`tests.browser.serving`, failing the test (with the server log's tail) when the server
    does not come up."""
    try:
        with serving(env, log_path, *serve_args, command=command) as base:
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


@pytest.fixture(scope="session")
def band_world(demo_world, tmp_path_factory) -> dict:
    """A copy of the small demo world with one emulator trained on its towers (three folds, 30
    rounds) and its re-prediction :data:`BAND_PRODUCT` over :data:`BAND_BBOX` and :data:`BAND_PERIOD`,
    which carries the 90 % interval bounds (``le_q05`` … ``h_q95``). Read-only for tests: ``data_dir``,
    ``version``."""
    from models import predict

    data_dir = tmp_path_factory.mktemp("band-world") / "fluxlens-data"
    settings = dict(n_folds=3, num_boost_round=30, shap_sample=200)
    with demo_copy_with_model(demo_world, data_dir, **settings) as version:
        predict.predict_region(version, BAND_BBOX, *BAND_PERIOD, product_name=BAND_PRODUCT)
    return {"data_dir": data_dir, "version": version}


@pytest.fixture(scope="session")
def model_server(band_world, serve_dashboard, tmp_path_factory) -> Iterator[dict]:
    """``fluxlens serve`` on the :func:`band_world` (the Models tab's model, the re-prediction with
    interval bounds): ``url`` (the app page), ``version``, ``data_dir``."""
    base = tmp_path_factory.mktemp("model-server")
    data_dir = str(band_world["data_dir"])
    env = dict(os.environ, FLUXLENS_DATA_DIR=data_dir, FLUXLENS_VALIDATION_CACHE=str(base / "cache"))
    with serve_dashboard(env, base / "serve.log") as url:
        yield {"url": f"{url}/app", **band_world}


@pytest.fixture
def viewport() -> dict:
    """Browser window size; a test module overrides this fixture for a different one."""
    return {"width": 1400, "height": 1000}


@pytest.fixture
def first_run() -> bool:
    """Whether pages open as a new visitor's, with the first-run panel (a module overrides this)."""
    return False


@pytest.fixture
def browser_page(chromium, viewport, first_run, tmp_path) -> Iterator[tuple]:
    """``(page, errors)``: a page in a fresh Chromium profile, and the console errors and uncaught
    page errors seen so far. Any error fails the test after the browser closes. The first-run panel
    comes dismissed unless the module's ``first_run`` fixture says otherwise."""
    from playwright.sync_api import sync_playwright

    errors: list[str] = []
    with sync_playwright() as p:
        ctx = launch_chromium(p, tmp_path / "profile", viewport, accept_downloads=True)
        if not first_run:  # the first-run panel sits above the tabs and would move every map on dismissal
            from app.welcome import COOKIE, DISMISSED

            ctx.add_cookies([{"name": COOKIE, "value": DISMISSED, "domain": "localhost", "path": "/"}])
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


# --- page checks shared by the first-hour test and bench/bench_browser_speed.py ----------------

# The named map figure's image array (a new array with every new image), or null before there is one.
MAP_IMAGE = """((name) => { const d = window.Bokeh && Bokeh.documents[0];
  const m = d && d.get_model_by_name(name);
  const r = m && m.renderers.find(r => r.glyph && r.glyph.type === 'Image');
  return r ? r.data_source.data.image[0] : null; })"""
HAS_FINITE = """((img) => {
  for (let i = 0; img && i < img.length; i++) { if (Number.isFinite(img[i])) return true; }
  return false; })"""
# ``(name) => bool``: the named map figure shows an image with finite values.
MAP_DRAWN = f"(name) => {HAS_FINITE}({MAP_IMAGE}(name))"
PAINTED = "() => new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)))"
# ``(title) => state``: what the main tabs' active tab shows, or null when ``title`` is not the
# active tab: ``empty`` (the holder of an unopened tab), the elements still showing Panel's loading
# indicator, the visible plots not yet drawn (a hidden plot is never painted: left out) and the number
# of drawn plots.
TAB_STATE = """((title) => {
  const tabs = Bokeh.index.all_views().find(v => v.model.type.endsWith('Tabs') && v.model.tabs &&
    v.model.tabs.some(t => t.title === 'Map'));
  if (!tabs) return null;
  const tab = tabs.model.tabs[tabs.model.active];
  if (tab.title !== title) return null;
  const inside = (v) => {
    for (let p = v; p; p = p.parent) { if (p.model === tab.child) return true; }
    return false; };
  const out = {empty: Boolean(tab.child.children && tab.child.children.length === 0), loading: [],
               unfinished: [], drawn: 0};
  for (const v of Bokeh.index.all_views()) {
    if (!inside(v) || !(v.el instanceof HTMLElement) || !v.el.isConnected) continue;
    if (v.el.classList.contains('pn-loading')) out.loading.push(`${v.model.type} ${v.model.name || ''}`);
    if ((v.model.type === 'Figure' || v.model.type === 'Plot') && v.el.getBoundingClientRect().width > 0) {
      if (v.has_finished()) out.drawn++;
      else out.unfinished.push(String((v.model.title && v.model.title.text) || v.model.name || v.model.id));
    }
  }
  return out; })"""
# ``({title, plots}) => bool``: :data:`TAB_STATE` says the tab is built, nothing in it is loading,
# every visible plot is drawn and, when ``plots``, at least one is.
TAB_READY = f"""({{title, plots}}) => {{ const s = {TAB_STATE}(title);
  return Boolean(s && !s.empty && !s.loading.length && !s.unfinished.length && (!plots || s.drawn > 0)); }}"""
# Everything on screen that is wider than its box: the document against the window, every visible
# Bokeh/Panel layout element (``scrollWidth > clientWidth``, beyond its own right margin when its
# overflow is visible; or its right edge past the window) and every Tabulator table against its
# holder. Hidden elements (inactive tabs, invisible widgets) are left out.
OVERFLOW = """() => {
  const out = [];
  const root = document.documentElement, vw = root.clientWidth;
  if (root.scrollWidth > vw + 1)
    out.push({what: 'document wider than the window', scrollWidth: root.scrollWidth, clientWidth: vw});
  for (const v of Bokeh.index.all_views()) {
    const e = v.el;
    if (!(e instanceof HTMLElement) || !e.isConnected || v.model.sizing_mode === undefined) continue;
    if (!e.checkVisibility({checkVisibilityCSS: true, visibilityProperty: true})) continue;
    const r = e.getBoundingClientRect();
    if (r.width === 0 || r.height === 0) continue;
    const id = {model: v.model.type.replace('panel.models.', ''), name: v.model.name || '',
                css: (v.model.css_classes || []).join(' ')};
    // content reaching into the element's own right margin (overflow visible) covers nothing and
    // is not cut: Panel's Markdown and HTML panes put their 100 %-wide text box inside 7 px padding
    const style = getComputedStyle(e);
    const slack = style.overflowX === 'visible' ? (parseFloat(style.marginRight) || 0) : 0;
    if (e.scrollWidth > e.clientWidth + slack + 1)
      out.push({...id, what: 'content wider than its box', scrollWidth: e.scrollWidth,
                clientWidth: e.clientWidth, marginRight: style.marginRight});
    else if (r.right > vw + 1)
      out.push({...id, what: 'right edge past the window', right: Math.round(r.right), window: vw});
    if (v.model.type.includes('Tabulator') && v.shadow_el)
      for (const t of v.shadow_el.querySelectorAll('.tabulator-tableholder'))
        if (t.scrollWidth > t.clientWidth + 1)
          out.push({...id, what: 'table wider than its holder', scrollWidth: t.scrollWidth,
                    clientWidth: t.clientWidth});
  }
  return out; }"""
# ``() => [...]``: the page's scrolling containers (outside Bokeh's shadow roots; the dashboard
# template scrolls its main area, not the document), each as [index, scrollHeight, clientHeight].
SCROLLERS = """() => Array.from(document.querySelectorAll('*')).map((e, i) => [i, e])
  .filter(([i, e]) => e.scrollHeight > e.clientHeight + 1 &&
          ['auto', 'scroll'].includes(getComputedStyle(e).overflowY) && e.clientHeight > 200)
  .map(([i, e]) => [i, e.scrollHeight, e.clientHeight])"""
SCROLL_TO = "([i, y]) => { document.querySelectorAll('*')[i].scrollTop = y; }"


def screenshots(page, path_stem) -> list:
    """Screenshots of the whole content (the page, or its tallest scrolling container scrolled one
    screen at a time, at most 5): ``<path_stem>.png``, ``<path_stem>-2.png`` …"""
    scrollers = page.evaluate(SCROLLERS)
    if not scrollers:
        page.screenshot(path=f"{path_stem}.png", full_page=True)
        return [f"{path_stem}.png"]
    index, height, screen = max(scrollers, key=lambda s: s[1])
    paths = []
    for k, y in enumerate(range(0, height, max(screen - 40, 100))[:5]):
        page.evaluate(SCROLL_TO, [index, y])
        page.wait_for_timeout(150)
        paths.append(f"{path_stem}{'' if k == 0 else f'-{k + 1}'}.png")
        page.screenshot(path=paths[-1])
    page.evaluate(SCROLL_TO, [index, 0])
    return paths
