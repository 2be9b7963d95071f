"""The first-run panel: what is synthetic comes from the catalog (demo world, real products, a mix),
the dismissal cookie hides it, and the five things to try name tabs and controls the dashboard has."""

from __future__ import annotations

import os
import re
import shutil

import panel as pn
import pytest

from app import dashboard, data, welcome
from app.controls import Controls
from app.state import AppState
from catalog import api, store
from tests.app.conftest import tiny_cube


def test_demo_world_every_product_and_network_is_named_synthetic(demo_catalog):
    items = welcome.holdings()
    products = {p.name for p in api.list_products()}
    networks = set(api.list_networks())
    assert {h.name for h in items if h.kind == "product"} == products
    assert {h.name for h in items if h.kind == "network"} == networks
    assert all(h.synthetic for h in items)
    text = welcome.synthetic_paragraph(items)
    for name in products | networks:
        assert f"<code>{name}</code>" in text
    assert "Nothing in this catalog is real data" in text
    assert "Synthetic data" in welcome.content_html(items)


def test_real_products_only_no_synthetic_paragraph(data_dir):
    store.write_product(tiny_cube(), "measured", provenance={"source": "field campaign"}, synthetic=False)
    data.view_data().forget_products()
    items = welcome.holdings()
    assert [(h.name, h.synthetic) for h in items] == [("measured", False)]
    assert welcome.synthetic_paragraph(items) == ""
    html = welcome.content_html(items)
    assert "Synthetic data" not in html and "Five things to try" in html


def test_a_mix_names_only_the_synthetic_ones(demo_world, tmp_path, monkeypatch):
    mixed = tmp_path / "fluxlens-data"
    shutil.copytree(demo_world, mixed, copy_function=os.link)
    monkeypatch.setenv("FLUXLENS_DATA_DIR", str(mixed))
    store.write_product(tiny_cube(), "measured", provenance={}, synthetic=False)
    data.view_data().forget_products()
    items = welcome.holdings()
    text = welcome.synthetic_paragraph(items)
    assert "<code>measured</code>" not in text and "<code>fluxes_demo</code>" in text
    assert f"The rest (1 of {len(items)}) is real data" in text


def test_dismissal_cookie_hides_the_panel_and_show_brings_it_back(demo_catalog):
    assert welcome.FirstRun(cookies={}).panel.visible
    assert welcome.FirstRun(cookies={"other": "x"}).panel.visible
    hidden = welcome.FirstRun(cookies={welcome.COOKIE: welcome.DISMISSED})
    assert not hidden.panel.visible
    hidden.show()
    assert hidden.panel.visible
    hidden.dismiss.clicks += 1  # the server side of a click on "Dismiss"
    assert not hidden.panel.visible


def test_the_cookie_scripts_set_and_clear_the_cookie_the_server_reads():
    assert f"{welcome.COOKIE}={welcome.DISMISSED};" in welcome._SET_COOKIE
    assert f"{welcome.COOKIE}=;" in welcome._CLEAR_COOKIE and "max-age=0" in welcome._CLEAR_COOKIE


def _labels(viewable) -> set[str]:
    out = set()
    for w in viewable.select(pn.widgets.Widget):
        for attr in ("name", "label", "placeholder"):
            value = getattr(w, attr, None)
            if isinstance(value, str) and value:
                out.add(value)
    return out


@pytest.mark.slow
def test_things_to_try_name_real_tabs_and_controls(demo_catalog):
    """Each of the five names a dashboard tab, and every control it quotes (“…”) is a widget of that
    tab or of the sidebar."""
    tabs = dict(dashboard.CORE_PANELS + dashboard.EXTRA_PANELS)
    assert len(welcome.THINGS_TO_TRY) == 5
    state = AppState()
    sidebar = _labels(Controls(state).panel())
    for tab, text in welcome.THINGS_TO_TRY:
        assert tab in tabs, tab
        quoted = re.findall(r"“([^”]+)”", text)
        assert quoted or tab == "Models", text
        labels = sidebar | _labels(dashboard._module(tabs[tab]).panel(state))
        for control in quoted:
            assert control in labels, (tab, control, sorted(labels))
