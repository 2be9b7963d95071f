"""The About tab: software versions and licences from the installed metadata (and the pins of
pyproject.toml), FluxLens's own licence, the catalog's holdings marked synthetic or real and
re-read when the tab is opened, and the button that brings the first-run panel back."""

from __future__ import annotations

import re
import tomllib
from importlib import metadata

from app import about, data, welcome
from app.state import AppState
from catalog import store
from tests.app.conftest import tiny_cube
from tests.conftest import REPO

PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())


def _pins() -> dict[str, str]:
    pins = {}
    for dep in PYPROJECT["project"]["dependencies"]:
        m = re.match(r"^\s*([A-Za-z0-9_.\-]+)\s*==\s*([^\s;#]+)", dep)
        if m:
            pins[m.group(1).lower()] = m.group(2)
    return pins


def test_software_table_shows_the_installed_pinned_versions():
    html = about.software_html()
    pins = _pins()
    for dist, _use in about.SOFTWARE:
        version = metadata.version(dist)
        assert f">{version}</td>" in html, dist
        if dist in pins:
            assert version == pins[dist], (dist, version, pins[dist])
    assert {"panel", "holoviews", "datashader", "xarray", "intake", "lightgbm", "shap", "scikit-learn"} <= {
        d for d, _ in about.SOFTWARE
    }


def test_licence_from_metadata_each_fallback():
    assert about.licence_of("lightgbm") == "MIT"  # License-Expression
    assert about.licence_of("panel") == "BSD License"  # no expression: the classifier
    assert about.installed("no-such-distribution-fluxlens") == ("not installed", "")


def test_fluxlens_licence_is_the_one_in_pyproject():
    expected = PYPROJECT["project"]["license"]["text"]
    assert about.installed("fluxlens")[1] == expected
    assert f"<b>{expected}</b>" in about.fluxlens_html()


def test_every_source_has_a_citation_and_a_licence():
    names = {s.name for s in about.SOURCES}
    wanted = {"GSSM1km", "STEMMUS-SCOPE", "ESA CCI SM", "SMAP L3", "FLUXNET2015", "ISMN", "ERA5 / ERA5-Land"}
    assert wanted | {"GLDAS-2.1", "C3S LAI and land cover", "Natural Earth"} <= names
    for s in about.SOURCES:
        assert s.citation and s.licence, s.name
    html = about.sources_html()
    assert "CC-BY-4.0" in html and "Copernicus licence" in html and "public domain" in html


def test_holdings_marked_and_reread_when_the_tab_opens(data_dir):
    store.write_product(tiny_cube(), "measured", provenance={}, synthetic=False)
    data.view_data().forget_products()
    state = AppState()
    tab = about.panel(state)
    holdings = next(p for p in tab.objects if p.name == "about_holdings")
    assert "<code>measured</code>" in holdings.object
    assert "networks: 1 (0 synthetic, 1 real)" in holdings.object
    assert "synthetic</b>" not in holdings.object

    store.write_product(tiny_cube(0.3), "invented", provenance={}, synthetic=True)
    data.view_data().forget_products()
    assert "invented" not in holdings.object
    state.tab = "About"
    assert "<code>invented</code>" in holdings.object and "2 (1 synthetic, 1 real)" in holdings.object


def test_show_first_run_help_brings_the_dismissed_panel_back(data_dir):
    state = AppState()
    first_run = welcome.FirstRun(cookies={welcome.COOKIE: welcome.DISMISSED})
    welcome.attach(state, first_run)
    tab = about.panel(state)
    [button] = [b for b in tab.objects if getattr(b, "label", "") == "Show first-run help"]
    assert not first_run.panel.visible
    button.clicks += 1
    assert first_run.panel.visible
