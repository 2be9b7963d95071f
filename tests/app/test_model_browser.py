"""The Models tab in a real Chromium against a real ``fluxlens serve`` on the small demo world with an
emulator trained on its towers: the CV tables (three splits, constrained vs baseline) and the SHAP
plots show. Screenshots go to ``artifacts/screenshots/``; any browser console error fails the test.
"""

from __future__ import annotations

import os

import pytest

from tests.browser import save_screenshot, wait_idle
from tests.conftest import demo_copy_with_model

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PLOT_TITLES = """(() => { const out = [];
  for (const m of Bokeh.documents[0].all_models) { if (m.title && m.title.text) out.push(m.title.text); }
  return out; })()"""


@pytest.fixture(scope="module")
def model_server(demo_world, serve_dashboard, tmp_path_factory):
    """A served copy of the small demo world holding one emulator version trained on its towers."""
    base = tmp_path_factory.mktemp("model-browser")
    data_dir = base / "fluxlens-data"
    settings = dict(n_folds=3, num_boost_round=30, shap_sample=200)
    with demo_copy_with_model(demo_world, data_dir, **settings) as version:
        env = dict(os.environ, FLUXLENS_DATA_DIR=str(data_dir))
        with serve_dashboard(env, base / "serve.log") as url:
            yield {"url": f"{url}/app", "version": version}


@pytest.fixture
def viewport() -> dict:
    return {"width": 1500, "height": 2400}


def test_model_tab_shows_cv_tables_and_shap(model_server, browser_page):
    page, errors = browser_page
    page.goto(model_server["url"])
    wait_idle(page, 120_000)
    page.locator(".bk-tab", has_text="Models").first.click()
    page.wait_for_function(
        f"{PLOT_TITLES}.some(t => t.startsWith('global importance'))", timeout=120_000, polling=500
    )
    wait_idle(page)
    # Playwright locators pierce Bokeh's shadow roots (page.inner_text("body") does not)
    assert page.get_by_text(model_server["version"]).count() > 0
    tables = "\n".join(page.locator("table").all_inner_texts())
    for split in ("random", "temporal", "spatial"):
        assert split in tables
    assert "constrained" in tables and "direct" in tables
    titles = page.evaluate(PLOT_TITLES)
    assert any(t.startswith("beeswarm") for t in titles), titles
    assert any(t.startswith("dependence:") for t in titles), titles
    for split in ("random", "temporal", "spatial"):
        assert any(t.endswith(f"{split} split") for t in titles), titles
    save_screenshot(page, "models_01_cv_and_shap")
    assert not errors
