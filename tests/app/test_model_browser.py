"""The Models tab in a real Chromium against a real ``fluxlens serve`` on the small demo world with an
emulator trained on its towers: the CV tables (three splits, constrained vs baseline) and the SHAP
plots show, at 1280×720 and 1400×900, laid out so nothing overlaps or overflows. Screenshots go to
``artifacts/screenshots/``; any browser console error fails the test.
"""

from __future__ import annotations

import pytest

from models import explain, registry
from tests.app.conftest import BAND_PRODUCT  # model_server (tests/app/conftest.py) serves it
from tests.browser import save_screenshot, wait_idle

pytestmark = [pytest.mark.browser, pytest.mark.slow]

IMAGE_VALUES = """((name) => { const m = Bokeh.documents[0].get_model_by_name(name);
  const img = m.renderers.find(r => r.glyph.type === 'Image' || r.glyph.constructor.name === 'Image');
  const a = img.data_source.data.image[0]; const seen = new Set();
  for (let i = 0; i < a.length; i++) { if (Number.isFinite(a[i])) seen.add(a[i]); }
  return Array.from(seen); })"""

PLOT_TITLES = """(() => { const out = [];
  for (const m of Bokeh.documents[0].all_models) { if (m.title && m.title.text) out.push(m.title.text); }
  return out; })()"""

# Per drawn, visible plot with a title: its box on the page, its canvas size, its title / legend / colour bar
# boxes (canvas pixels) with the size the title text needs, its y tick labels (screen centre, height,
# text) and the layout boxes between it and the tab that scroll sideways (content wider than the box).
PLOT_LAYOUT = """(() => {
  const plots = [];
  for (const v of Bokeh.index.all_views()) {
    if (v.axis_views === undefined || !v.el.isConnected || !(v.model.title && v.model.title.text)) continue;
    const r = v.el.getBoundingClientRect();
    // an inactive tab keeps its size, hidden by visibility (Bokeh 3.9 stacks a tab's children)
    if (r.width === 0 || !v.el.checkVisibility({visibilityProperty: true})) continue;
    const annotations = [];
    for (const a of v.computed_renderer_views ?? v.renderer_views.values()) {
      if (!["Title", "Legend", "ColorBar"].includes(a.model.type) || a.bbox === undefined) continue;
      const b = a.bbox;
      const need = a.model.type === "Title" ? a.get_size().width : 0;
      annotations.push(
        {kind: a.model.type, left: b.left, right: b.right, top: b.top, bottom: b.bottom, need});
    }
    const yticks = [];
    for (const ax of v.axis_views) {
      if (ax.dimension !== 1) continue;
      const major = ax.tick_coords.major;
      const sy = ax.scoords(major)[1];
      const labels = ax.compute_labels(major[1]);
      const text = ax.visuals.major_label_text.values();
      labels.items.forEach((l, i) => {
        l.visuals = text;
        yticks.push({sy: sy[i], h: l.size().height, text: String(l.text)});
      });
    }
    const overflow = [];
    let tab = null;
    for (let p = v.parent; p; p = p.parent) {
      if (p.model.type.endsWith("Tabs")) { tab = p.el.getBoundingClientRect(); break; }
      const e = p.el;
      if (e.scrollWidth > e.clientWidth + 1)
        overflow.push(`${p.model.type} ${e.scrollWidth}>${e.clientWidth}`)
    }
    plots.push({title: v.model.title.text, left: r.left, right: r.right, top: r.top, bottom: r.bottom,
                width: v.bbox.width, height: v.bbox.height, annotations, yticks, overflow,
                tab_left: tab ? tab.left : null, tab_right: tab ? tab.right : null});
  }
  return plots;
})()"""

SCROLL_TO_PLOT = """(prefix) => {
  for (const v of Bokeh.index.all_views()) {
    if (v.axis_views !== undefined && v.model.title && String(v.model.title.text).startsWith(prefix)) {
      v.el.scrollIntoView({block: "start"}); return true;
    }
  }
  return false;
}"""


def _models_tab_plot(title: str) -> bool:
    starts = ("global importance", "beeswarm", "dependence:", "interaction:")
    return title.startswith(starts) or title.endswith(" split") or ": mean SHAP" in title


@pytest.fixture(params=[(1280, 720), (1400, 900)], ids=lambda wh: f"{wh[0]}x{wh[1]}")
def viewport(request) -> dict:
    return {"width": request.param[0], "height": request.param[1]}


def _open_models_tab(page, url: str, section: str = "SHAP") -> None:
    """Open the Models tab, ask for the scatter plots of every split, then open ``section``
    (Cross-validation or SHAP; both are built on first use)."""
    page.goto(url)
    wait_idle(page, 120_000)
    page.locator(".bk-tab", has_text="Models").first.click()
    page.wait_for_function(f"{PLOT_TITLES}.some(t => t.endsWith(' split'))", timeout=120_000, polling=500)
    wait_idle(page)
    page.get_by_role("button", name="Scatter plots of every split").click()
    page.wait_for_function(
        f"{PLOT_TITLES}.filter(t => t.endsWith(' split')).length > 2", timeout=120_000, polling=500
    )
    wait_idle(page)
    if section == "SHAP":
        page.locator(".bk-tab", has_text="SHAP").first.click()
        page.wait_for_function(
            f"{PLOT_TITLES}.some(t => t.startsWith('interaction:'))", timeout=120_000, polling=500
        )
        wait_idle(page)


def test_model_tab_shows_cv_tables_and_shap(model_server, browser_page, viewport):
    page, errors = browser_page
    _open_models_tab(page, model_server["url"])
    # Playwright locators pierce Bokeh's shadow roots (page.inner_text("body") does not)
    assert page.get_by_text(model_server["version"]).count() > 0
    tables = "\n".join(page.locator("table").all_inner_texts())
    for split in ("random", "temporal", "spatial"):
        assert split in tables
    assert "constrained" in tables and "direct" in tables
    titles = page.evaluate(PLOT_TITLES)
    for start in ("global importance", "beeswarm", "dependence:", "interaction:"):
        assert any(t.startswith(start) for t in titles), titles
    for split in ("random", "temporal", "spatial"):
        assert any(t.endswith(f"{split} split") for t in titles), titles
    size = f"{viewport['width']}x{viewport['height']}"
    save_screenshot(page, f"models_01_shap_{size}", full_page=False)
    page.locator(".bk-tab", has_text="Cross-validation").first.click()
    wait_idle(page)
    save_screenshot(page, f"models_01_cv_{size}", full_page=False)
    page.locator(".bk-tab", has_text="SHAP").first.click()
    wait_idle(page)
    for k, prefix in enumerate(("global importance", "dependence:"), start=2):
        assert page.evaluate(SCROLL_TO_PLOT, prefix)
        page.wait_for_timeout(500)
        save_screenshot(page, f"models_0{k}_shap_{size}", full_page=False)
    assert not errors


def _overlap(a: dict, b: dict) -> bool:
    return (
        a["left"] < b["right"] - 1
        and b["left"] < a["right"] - 1
        and a["top"] < b["bottom"] - 1
        and (b["top"] < a["bottom"] - 1)
    )


def _section_plots(page, section: str) -> list[dict]:
    """The drawn plots of one section of the Models tab (the other section's are hidden)."""
    page.locator(".bk-tab", has_text=section).first.click()
    wait_idle(page)
    return [p for p in page.evaluate(PLOT_LAYOUT) if _models_tab_plot(p["title"])]


def test_model_tab_plots_neither_overlap_nor_overflow(model_server, browser_page):
    page, errors = browser_page
    _open_models_tab(page, model_server["url"])
    scatters, shap = _section_plots(page, "Cross-validation"), _section_plots(page, "SHAP")
    assert len(scatters) >= 6, [p["title"] for p in scatters]  # six CV scatters
    assert len(shap) >= 4, [p["title"] for p in shap]  # and four SHAP plots
    check_layout(scatters)
    check_layout(shap)
    bee = next(p for p in shap if p["title"].startswith("beeswarm"))
    top_down = [t["text"] for t in sorted(bee["yticks"], key=lambda t: t["sy"])]
    with pytest.MonkeyPatch.context() as mp:  # the served data directory, read in this process
        mp.setenv("FLUXLENS_DATA_DIR", str(model_server["data_dir"]))
        importance = explain.global_importance(registry.read_table(model_server["version"], "shap_ef"))
    assert top_down == list(importance["feature"].head(len(top_down)))  # by name, most important on top
    assert not errors


def check_layout(plots: list[dict]) -> None:
    """No plot overflows its box or the tab, cuts its title, crowds its y labels or overlaps another."""
    for p in plots:
        name = p["title"]
        assert not p["overflow"], (name, p["overflow"])
        assert p["tab_left"] - 1 <= p["left"] and p["right"] <= p["tab_right"] + 1, (name, p)
        for a in p["annotations"]:
            assert a["left"] >= -1 and a["right"] <= p["width"] + 1, (name, a)
            assert a["top"] >= -1 and a["bottom"] <= p["height"] + 1, (name, a)
            if a["kind"] == "Title":  # left-aligned: the text must end inside the canvas
                assert a["left"] + a["need"] <= p["width"] + 1, (name, a, p["width"])
        ticks = sorted(p["yticks"], key=lambda t: t["sy"])
        for upper, lower in zip(ticks, ticks[1:], strict=False):
            gap = lower["sy"] - upper["sy"]
            assert gap >= (upper["h"] + lower["h"]) / 2, (name, upper, lower)
    for i, a in enumerate(plots):
        for b in plots[i + 1 :]:
            assert not _overlap(a, b), (a["title"], b["title"])


def test_uncertainty_map_and_interval_coverage(model_server, browser_page, viewport):
    """The prediction product's upper LE bound is a map of the Map tab (its values, no other), and the
    Models tab shows the verdicts and the intervals' CV coverage."""
    import numpy as np
    import xarray as xr

    from tests.stores import level_path

    page, errors = browser_page
    size = f"{viewport['width']}x{viewport['height']}"
    page.goto(f"{model_server['url']}?product={BAND_PRODUCT}&var=le_q95&date=2018-06-04")
    wait_idle(page, 120_000)
    store = xr.open_zarr(level_path(model_server["data_dir"], BAND_PRODUCT), consolidated=False)
    assert {"le_q05", "le_q95", "h_q05", "h_q95"} <= set(store.data_vars)
    upper = store["le_q95"].sel(time="2018-06-04").values.astype("float32")
    assert np.isfinite(upper).sum() > 20
    assert (upper[np.isfinite(upper)] >= store["le"].sel(time="2018-06-04").values[np.isfinite(upper)]).all()
    expect = sorted({float(v) for v in upper.ravel() if np.isfinite(v)})
    page.wait_for_function(
        f"(() => {{ try {{ return {IMAGE_VALUES}('main_map').length === {len(expect)}; }} "
        "catch (e) { return false; } })()",
        timeout=60_000,
        polling=500,
    )
    assert sorted(page.evaluate(f"{IMAGE_VALUES}('main_map')")) == expect
    save_screenshot(page, f"models_05_uncertainty_map_{size}", full_page=False)

    _open_models_tab(page, model_server["url"], section="Cross-validation")
    tables = "\n".join(page.locator("table").all_inner_texts())
    assert "LE coverage" in tables and "ΔR² [95 %]" in tables and "cluster" in tables
    page.get_by_text("90 % prediction intervals").first.evaluate("e => e.scrollIntoView({block: 'start'})")
    page.wait_for_timeout(500)
    save_screenshot(page, f"models_06_intervals_{size}", full_page=False)
    assert not errors
