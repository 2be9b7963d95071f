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

PRODUCTS_REFRESH_MS = 10_000

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


def _module(module_name: str):
    """The panel module, or None when it is not part of this installation."""
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name == module_name:
            return None
        raise


def _build(title: str, module, state: AppState):
    """The content of one tab; a failure becomes a message inside the tab."""
    try:
        return module.panel(state)
    except Exception as exc:  # one broken tab must not take the dashboard down
        log.exception("tab %s failed", title)
        return pn.pane.Alert(f"The {title} tab could not be built: {exc}", alert_type="danger")


class LazyTabs:
    """Tabs whose content is built the first time they are opened (the first one at once), so a
    page shows its map without waiting for every tab."""

    def __init__(self, state: AppState, panels: list[tuple[str, str]]):
        self.state = state
        self.tabs = pn.Tabs(dynamic=True, name="tabs")
        self._pending: dict[str, tuple] = {}
        for title, module_name in panels:
            module = _module(module_name)
            if module is None:
                continue
            if len(self.tabs) == 0:
                self.tabs.append((title, _build(title, module, state)))
            else:
                holder = pn.Column(sizing_mode="stretch_width")
                self._pending[title] = (module, holder)
                self.tabs.append((title, holder))
        self.tabs.param.watch(self._on_active, "active")

    def _on_active(self, event) -> None:
        title = self.tabs._names[event.new]
        pending = self._pending.pop(title, None)
        if pending is not None:
            module, holder = pending
            holder[:] = [_build(title, module, self.state)]
        self.state.tab = title


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

    tabs = LazyTabs(state, CORE_PANELS + EXTRA_PANELS).tabs
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
    # New products (finished jobs) appear in the picker without a reload.
    pn.state.onload(lambda: pn.state.add_periodic_callback(controls.refresh_products, PRODUCTS_REFRESH_MS))

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
