"""The FluxLens dashboard: sidebar of controls, tabs (map, comparison, profile, then the panels
of the other parts of the application), permalinks in the URL query."""

from __future__ import annotations

import importlib
import logging

import holoviews as hv
import panel as pn
from panel.theme import fast as panel_fast

from app import auth, permalink
from app.controls import Controls
from app.state import AppState

log = logging.getLogger("app")

TITLE = "FluxLens — soil moisture and land heat flux explorer"

# Extra tabs: (title, module). Each module exposes ``panel(state) -> Viewable``; modules not
# present in this installation are left out.
EXTRA_PANELS: list[tuple[str, str]] = [
    ("Validation", "app.validation_panel"),
    ("Models", "app.model_panel"),
    ("Jobs", "app.jobs_panel"),
]

CORE_PANELS: list[tuple[str, str]] = [
    ("Map", "app.map_panel"),
    ("Compare", "app.compare_panel"),
    ("Profile", "app.profile_panel"),
]

_extensions_loaded = False


class Fast(panel_fast.Fast):
    """The Fast design without its web font: the page must work without internet. (Same class
    name as Panel's, which locates the bundled design files by it.)"""

    _resources = {k: v for k, v in panel_fast.Fast._resources.items() if k != "font"}


def _load_extensions() -> None:
    global _extensions_loaded
    if not _extensions_loaded:
        hv.extension("bokeh", logo=False)
        pn.extension("tabulator", notifications=True, defer_load=False)
        _extensions_loaded = True


def _tab(title: str, module_name: str, state: AppState):
    """The tab of one panel module; a failure becomes a message inside the tab."""
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name == module_name:
            return None
        raise
    try:
        return (title, module.panel(state))
    except Exception as exc:  # one broken tab must not take the dashboard down
        log.exception("tab %s failed", title)
        return (title, pn.pane.Alert(f"The {title} tab could not be built: {exc}", alert_type="danger"))


def create_dashboard() -> pn.template.base.BasePage:
    """One session's page."""
    _load_extensions()
    state = AppState(user=auth.current_user())
    restored = permalink.from_query(permalink.session_query())
    if restored:
        state.param.update(**restored)
    controls = Controls(state)
    if restored.get("variable"):
        state.variable = restored["variable"]

    message = pn.pane.Alert("", alert_type="danger", visible=False, name="message", margin=(5, 10))
    state.param.watch(lambda e: message.param.update(object=e.new, visible=bool(e.new)), "message")

    tabs = pn.Tabs(dynamic=False, name="tabs")
    for title, module_name in CORE_PANELS + EXTRA_PANELS:
        tab = _tab(title, module_name, state)
        if tab is not None:
            tabs.append(tab)

    tabs.param.watch(lambda e: setattr(state, "tab", tabs._names[e.new]), "active")
    link = pn.widgets.TextInput(name="Permalink", value="", width=260, disabled=False)

    def sync_url(*events):
        query = permalink.to_query(state)
        if pn.state.location is not None:
            pn.state.location.search = "?" + "&".join(f"{k}={v}" for k, v in query.items())
            loc = pn.state.location
            host = f"{loc.hostname}:{loc.port}" if loc.port else loc.hostname
            link.value = f"{loc.protocol}//{host}{loc.pathname}{loc.search}"

    state.param.watch(sync_url, [p for p in AppState.param if p not in ("name", "message", "user", "tab")])
    pn.state.onload(sync_url)

    template = pn.template.FastListTemplate(
        title=TITLE,
        sidebar=[controls.panel(), pn.layout.Divider(), link, pn.pane.Markdown(f"User: `{state.user}`")],
        main=[pn.Column(message, tabs, sizing_mode="stretch_width")],
        sidebar_width=300,
        theme_toggle=True,
        design=Fast,
        font="DejaVu Sans, Arial, sans-serif",
        header_background="#1f5f8b",
        accent_base_color="#1f5f8b",
    )
    return template
