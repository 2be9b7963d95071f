"""Hostile permalinks in a real Chromium against a real ``fluxlens serve`` (small demo world, no web
tiles offered): for every link the page shows the dashboard with an in-page notice naming the
setting it ignored, shows user text as text (no injected markup runs), never a traceback or a
server path, and the server keeps answering. Screenshots go to the test's temporary directory.
Any browser console error fails the test."""

from __future__ import annotations

import os
import shutil
import urllib.request
from pathlib import Path

import pytest

from tests.browser import REPO, wait_idle

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# (name, query as sent, text the notice must contain)
LINKS = [
    (
        "period_out_of_range",
        "product=gssm1km_demo&agg=period&period=2017-01-01~2017-02-01",
        "period=2017-01-01",
    ),
    ("script_product", "product=%3Cscript%3Ealert(1)%3C/script%3E", "product=<script>alert(1)</script>"),
    ("unknown_variable", "product=gssm1km_demo&var=le", "var=le ignored"),
    ("nan_view", "view=nan,nan,nan,nan", "view=nan,nan,nan,nan ignored"),
    ("huge_view", "view=-1e308,1e308,-1e308,1e308", "farther than"),
    ("inf_view", "view=-inf,inf,0,1", "finite numbers"),
    ("unknown_cmap", "cmap=jet", "unknown colormap"),
    (
        "img_onerror_cmap",
        "cmap=%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E",
        "cmap=<img src=x onerror=alert(1)>",
    ),
    ("very_long", "product=" + "A" * 5000, "(5,000 characters)"),
    ("unicode", "product=%F0%9F%8C%8D%E6%97%A5%E6%9C%AC%C3%BC%E2%80%AE", "product=🌍日本ü"),
    ("percent_junk", "product=%E0%A4%A&var=%ZZ%00%", "contains control characters"),
    ("bad_date", "date=2018-02-30", "date=2018-02-30 ignored"),
    ("date_out_of_range", "date=2030-01-01", "outside the product's time range"),
    ("reversed_box", "box=5,5,1,1", "box is reversed"),
    ("nan_box", "box=nan,1,2,3", "box=nan,1,2,3 ignored"),
    ("bad_basemap", "basemap=yes", "basemap=yes ignored"),
    ("basemap_without_tiles", "basemap=1", "offers no web tiles"),
    ("svg_onload_basemap", "basemap=1%27%22%3E%3Csvg%20onload%3Dalert(1)%3E", "<svg onload=alert(1)>"),
    ("inf_pixel_nan_clim", "px=inf,-inf&clim=typed:1,nan", "clim=typed:1,nan ignored"),
    (
        "hostile_key_and_compare",
        "%3Cscript%3E=1&compare=nope~%3Cb%20id%3Dinjected%3Eb%3C/b%3E~x&agg=decade",
        "agg=decade",
    ),
]

# Every piece of text in the document, shadow roots included (script and style contents left out).
PAGE_TEXT = """() => { const out = [];
  const walk = (root) => {
    const it = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
    for (let n = it.nextNode(); n; n = it.nextNode()) {
      const p = n.parentElement ? n.parentElement.tagName : '';
      if (p !== 'SCRIPT' && p !== 'STYLE') out.push(n.nodeValue);
    }
    for (const el of root.querySelectorAll('*')) { if (el.shadowRoot) walk(el.shadowRoot); }
  };
  walk(document); return out.join(' '); }"""

# Elements a link could have injected (anywhere, shadow roots included).
INJECTED = """() => { let n = 0;
  const walk = (root) => {
    for (const el of root.querySelectorAll('#injected, img[onerror], svg[onload], iframe')) n++;
    for (const el of root.querySelectorAll('script')) { if (el.textContent.includes('alert(1)')) n++; }
    for (const el of root.querySelectorAll('*')) { if (el.shadowRoot) walk(el.shadowRoot); }
  };
  walk(document); return n; }"""

LEAKS = ("Traceback", 'File "', '.py", line', "site-packages", ".venv", str(REPO))


@pytest.fixture
def viewport() -> dict:
    return {"width": 1400, "height": 900}


@pytest.fixture(scope="module")
def hostile_server(demo_world, serve_dashboard, tmp_path_factory):
    """``fluxlens serve`` on a hard-link copy of the demo world, with no web tiles configured."""
    base = tmp_path_factory.mktemp("hostile-server")
    data_dir = base / "fluxlens-data"
    shutil.copytree(demo_world, data_dir, copy_function=os.link)
    env = dict(
        os.environ,
        FLUXLENS_DATA_DIR=str(data_dir),
        FLUXLENS_VALIDATION_CACHE=str(base / "cache"),
        FLUXLENS_TILE_URL="",
    )
    log = base / "serve.log"
    with serve_dashboard(env, log) as url:
        yield {"url": f"{url}/app", "data_dir": data_dir, "log": log}


def _answers(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=30) as r:
        return r.status == 200 and b"<html" in r.read().lower()


def test_hostile_permalinks(hostile_server, browser_page, tmp_path):
    page, errors = browser_page
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    shots = tmp_path / "screenshots"
    shots.mkdir()
    leaks = (*LEAKS, str(hostile_server["data_dir"]), str(Path(hostile_server["data_dir"]).parent))
    for i, (name, query, expected) in enumerate(LINKS):
        page.goto(f"{hostile_server['url']}?{query}")
        wait_idle(page)
        notice = page.get_by_text("Link setting").first
        try:
            notice.wait_for(state="visible", timeout=30_000)
            page.wait_for_function("location.search.includes('product=')", timeout=30_000)
            wait_idle(page)
        finally:
            page.screenshot(path=str(shots / f"{i:02d}_{name}.png"), full_page=False)
        text = page.evaluate(PAGE_TEXT)
        for leak in leaks:
            assert leak not in text, (name, leak)
        assert "Traceback" not in page.content(), name
        notices = notice.inner_text()
        assert expected in notices, (name, notices)
        assert page.get_by_text("pyramid level").count() > 0, f"{name}: the map was not drawn"
        assert page.evaluate(INJECTED) == 0, name
        # the address bar now holds the settings actually shown, not the hostile text
        search = page.evaluate("decodeURIComponent(location.search)")
        for bad in ("<", "nan", "inf", "jet", "AAAA", "2030", "decade"):
            assert bad not in search, (name, search)
        assert _answers(hostile_server["url"]), f"server stopped answering after {name}"
    assert dialogs == [] and errors == []
    page.get_by_role("button", name="Dismiss").click()
    notice.wait_for(state="hidden", timeout=30_000)

    # after all that, a good link still restores what it says
    page.goto(f"{hostile_server['url']}?product=ssm_global_demo&var=ssm&date=2018-07-03&cmap=magma")
    wait_idle(page)
    page.get_by_text("pyramid level").filter(has_text="2018-07-03").first.wait_for(timeout=30_000)
    assert page.get_by_text("Link setting").count() == 0
    page.screenshot(path=str(shots / "20_good_link.png"), full_page=False)
    log = hostile_server["log"].read_text(errors="replace")
    assert "permalink settings ignored" in log  # the server log says what was dropped


def test_netcdf_export_of_a_linked_box(hostile_server, browser_page, tmp_path):
    """The export button takes the box of the link (not the view), at native resolution, and the
    file names its source with the checksum of the raw file, without the server's paths."""
    import hashlib

    import xarray as xr

    page, errors = browser_page
    box = "-97.5,37,-97,37.25"
    page.goto(f"{hostile_server['url']}?product=gssm1km_demo&var=ssm&date=2018-07-02&box={box}")
    wait_idle(page)
    info = page.get_by_text("netCDF export:").first
    info.wait_for(state="visible", timeout=30_000)
    assert "selected box W -97.5 S 37 E -97 N 37.25" in info.inner_text()
    assert "50 × 25 px × 1 time step(s)" in info.inner_text() and "level 0 (0.01°)" in info.inner_text()
    with page.expect_download(timeout=60_000) as dl:
        page.get_by_role("button", name="Region + period as netCDF").click()
    path = tmp_path / "region.nc"
    path.write_bytes(Path(dl.value.path()).read_bytes())
    assert dl.value.suggested_filename == "gssm1km_demo_ssm_20180702_20180702_L0.nc"
    out = xr.open_dataset(path)
    assert out.sizes == {"time": 1, "lat": 25, "lon": 50}
    assert out.attrs["bbox_source"] == "selected box" and out.attrs["pyramid_level"] == 0
    raw = hostile_server["data_dir"] / "raw" / "demo" / "gssm" / "GSSM1km_demo_2018_07.tif"
    assert out.attrs["source_files"] == raw.name
    assert out.attrs["source_sha256"] == hashlib.sha256(raw.read_bytes()).hexdigest()
    assert str(hostile_server["data_dir"]) not in repr(dict(out.attrs))
    page.screenshot(path=str(tmp_path / "export.png"), full_page=False)
