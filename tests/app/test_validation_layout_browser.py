"""The Validation and Jobs tabs fit 1280 × 720 and 1400 × 900 windows: in a real Chromium against a
real ``fluxlens serve`` (with its default job worker) on the small demo world, no table, plot or
text pane is wider than its box (``scrollWidth > clientWidth`` on the Bokeh elements and in the
Tabulator tables, a cell or header cut short, a plot title longer than its plot, an element past
the window's right edge). The site search answers Enter on typed text; the Taylor diagram's axes
reach every site. Screenshots go to ``artifacts/screenshots/``."""

from __future__ import annotations

import pytest

from tests.browser import save_screenshot, wait_idle

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# Every visible Bokeh element inside the tabs (plot internals left out) whose content is wider
# than its box.
OVERFLOW = """(() => {
  const out = [];
  const inTabs = (v) => { for (let p = v; p; p = p.parent)
    if (p.model && String(p.model.type).endsWith("Tabs")) return true; return false; };
  const inPlot = (v) => { for (let p = v.parent; p; p = p.parent)
    if (p.model && ["Plot", "Figure", "GMap"].includes(p.model.type)) return true; return false; };
  for (const v of Bokeh.index.all_views()) {
    const e = v.el;
    if (!(e instanceof Element) || !e.isConnected || !v.model || !inTabs(v) || inPlot(v)) continue;
    const r = e.getBoundingClientRect();
    if (r.width === 0 || r.height === 0) continue;
    const type = String(v.model.type);
    const what = `${type}${v.model.title && v.model.title.text ? " '" + v.model.title.text + "'" : ""}` +
      `${(v.model.css_classes || []).length ? " ." + v.model.css_classes.join(".") : ""}`;
    if (type.includes("markup.")) {  // a text pane: its content against the pane
      for (const c of v.shadow_el.children)
        if (c.tagName === "DIV" && c.scrollWidth > e.clientWidth + 1)
          out.push(`${what}: content ${c.scrollWidth} > ${e.clientWidth}`);
    } else if (e.scrollWidth > e.clientWidth + 1) {
      out.push(`${what}: scrollWidth ${e.scrollWidth} > clientWidth ${e.clientWidth}`);
    }
    if (r.right > window.innerWidth + 1)
      out.push(`${what}: right edge ${Math.round(r.right)} > ${window.innerWidth}`);
    if (v.axis_views !== undefined && v.model.title && v.model.title.text) {
      for (const a of v.computed_renderer_views ?? v.renderer_views.values())
        if (a.model.type === "Title" && a.get_size().width > v.bbox.width + 1)
          out.push(`${what}: title needs ${Math.round(a.get_size().width)} px of ${v.bbox.width}`);
    }
    const root = v.shadow_el;
    if (!root) continue;
    for (const t of root.querySelectorAll(".tabulator-tableholder"))
      if (t.scrollWidth > t.clientWidth + 1) out.push(`${what} table: ${t.scrollWidth} > ${t.clientWidth}`);
    for (const t of root.querySelectorAll(".tabulator-col-title, .tabulator-cell"))
      if (t.scrollWidth > t.clientWidth + 1 && t.getBoundingClientRect().width > 0)
        out.push(`${what} cell '${t.textContent.slice(0, 30)}' cut: ${t.scrollWidth} > ${t.clientWidth}`);
  }
  return out;
})()"""
PLOT_TITLES = """(() => { const out = [];
  for (const m of Bokeh.documents[0].all_models) { if (m.title && m.title.text) out.push(m.title.text); }
  return out; })()"""
# The Taylor diagram's sites in data coordinates and its axis ranges.
TAYLOR = """(() => { for (const m of Bokeh.documents[0].all_models) {
    if (!(m.title && m.title.text && m.title.text.startsWith('Taylor diagram'))) continue;
    const xs = [], ys = [];
    for (const r of m.renderers) { const d = r.data_source && r.data_source.data;
      if (d && d.site_id) { xs.push(...d.x); ys.push(...d.y); } }
    return {xs, ys, x: [m.x_range.start, m.x_range.end], y: [m.y_range.start, m.y_range.end]}; }
  return null; })()"""


@pytest.fixture(params=[(1280, 720), (1400, 900)], ids=lambda wh: f"{wh[0]}x{wh[1]}")
def viewport(request) -> dict:
    return {"width": request.param[0], "height": request.param[1]}


# Scroll the page's scrolling box (the template's main area) down by ``dy`` pixels.
SCROLL = """(dy) => { const m = document.querySelector('#main');
  (m && m.scrollHeight > m.clientHeight ? m : document.scrollingElement).scrollBy(0, dy); }"""


def _no_overflow(page, where: str) -> None:
    wait_idle(page)
    problems = page.evaluate(OVERFLOW)
    assert not problems, f"{where}: {problems}"


def _shots(page, name: str, n: int) -> None:
    """``n`` screenshots of the window from the top of the page, scrolling down between them."""
    page.evaluate(SCROLL, -100_000)
    box = page.viewport_size
    for i in range(n):
        save_screenshot(page, f"{name}_{i + 1}_{box['width']}x{box['height']}", full_page=False)
        page.evaluate(SCROLL, box["height"] * 0.8)
        page.wait_for_timeout(400)


def test_validation_and_jobs_tabs_fit_the_window(demo_server, browser_page, viewport):
    page, errors = browser_page
    page.goto(demo_server["url"])
    wait_idle(page, 120_000)
    page.locator(".bk-tab", has_text="Validation").first.click()
    search = page.get_by_placeholder("type a site id or name")
    search.wait_for(timeout=60_000)
    wait_idle(page)
    assert page.locator("select").filter(has_text="le").count() > 0

    search.click()
    search.type("grassland 03", delay=30)
    search.press("Enter")  # typed text, not a clicked completion
    page.locator("h3", has_text="US-D03 — Demo grassland 03").first.wait_for(timeout=90_000)
    page.locator(".site-metrics .tabulator-row", has_text="fluxes_demo").first.wait_for(timeout=60_000)
    page.wait_for_function(f"({PLOT_TITLES}).some(t => t.startsWith('Closure:'))", timeout=60_000)
    _no_overflow(page, "site view")
    headers = page.locator(".site-metrics .tabulator-col-title").all_inner_texts()
    assert "NSE" in headers and "r2" not in headers and len(headers) == len(set(headers))
    page.get_by_role("button", name="mm d-1").first.click()  # LE as evaporation
    page.get_by_text("E = LE·86400/λ").first.wait_for(timeout=30_000)
    _no_overflow(page, "site view in mm d-1")
    page.mouse.move(10, 10)
    _shots(page, "validation_site", 4)

    page.locator(".bk-tab", has_text="Scoreboard").first.click()
    page.get_by_role("button", name="Compute scoreboard").click()  # the server's own worker runs it
    page.get_by_text("sites matched").first.wait_for(timeout=180_000)
    page.wait_for_function(f"({TAYLOR}) !== null && ({TAYLOR}).xs.length > 0", timeout=60_000)
    _no_overflow(page, "scoreboard")
    taylor = page.evaluate(TAYLOR)
    assert min(taylor["xs"]) > taylor["x"][0] and max(taylor["xs"]) < taylor["x"][1]
    assert min(taylor["ys"]) > taylor["y"][0] and max(taylor["ys"]) < taylor["y"][1]
    assert page.get_by_text("Pooled over").count() > 0
    _shots(page, "validation_scoreboard", 4)

    page.locator(".bk-tab", has_text="Jobs").first.click()
    page.locator(".jobs-table").first.wait_for(timeout=60_000)
    page.locator(".job-row").first.wait_for(timeout=30_000)  # the scoreboard job is listed
    page.get_by_role("button", name="Cancel job").wait_for(timeout=30_000)
    _no_overflow(page, "jobs")
    _shots(page, "jobs", 2)
    assert not errors
