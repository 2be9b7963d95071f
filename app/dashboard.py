"""The FluxLens dashboard: sidebar of controls, tabs (map, comparison, profile, then the panels
of the other parts of the application), permalinks in the URL query."""

from __future__ import annotations

import importlib
import logging

import holoviews as hv
import panel as pn
from panel.theme import fast as panel_fast

from app import auth, data, permalink, ui, welcome
from app.controls import Controls, default_product
from app.state import AppState
from catalog import settings

log = logging.getLogger("app")

TITLE = "FluxLens — soil moisture and land heat flux explorer"

# Extra tabs: (title, module). Each module exposes ``panel(state) -> Viewable``; modules not
# present in this installation are left out.
EXTRA_PANELS: list[tuple[str, str]] = [
    ("Validation", "app.validation_panel"),
    ("Analyses", "app.analyses_panel"),
    ("Models", "app.model_panel"),
    ("Jobs", "app.jobs_panel"),
    ("About", "app.about"),
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


def _without_mathjax() -> None:
    """Serve pages without BokehJS's MathJax bundle: Panel adds it (1.8 MB of script the browser parses
    before the map shows) to every page holding a text pane, for TeX the dashboard never writes. Text
    panes then show their text as it is (BokehJS finds no MathJax and typesets nothing)."""
    from panel.io import resources

    if callable(getattr(resources, "_panel_use_mathjax", None)):
        resources._panel_use_mathjax = lambda roots: False


def _without_webgl() -> None:
    """Serve pages without BokehJS's WebGL bundle (190 kB of script the browser parses before the map
    shows): no plot of the dashboard asks for the WebGL output backend."""
    from panel.io import server

    bundle = server.bundle_resources
    if getattr(bundle, "_without_webgl", False):
        return

    def bundle_resources(roots, resources, *args, **kwargs):
        components = getattr(resources, "components", None)
        if components is not None and "bokeh-gl" in components:
            resources = resources.clone(components=[c for c in components if c != "bokeh-gl"])
        return bundle(roots, resources, *args, **kwargs)

    bundle_resources._without_webgl = True
    server.bundle_resources = bundle_resources


def _load_extensions() -> None:
    global _extensions_loaded
    if not _extensions_loaded:
        hv.extension("bokeh", logo=False)
        pn.extension("tabulator", notifications=True, defer_load=False)
        _without_mathjax()
        _without_webgl()
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
    """The content of one tab; a failure becomes a message inside the tab (the traceback goes to
    the server log)."""
    try:
        return module.panel(state)
    except Exception as exc:  # one broken tab must not take the dashboard down
        log.exception("tab %s failed", title)
        pane = ui.alert("danger", name="tab_error")
        ui.show_alert(pane, f"The {title} tab could not be built ({type(exc).__name__}: {exc}).")
        return pane


class LazyTabs:
    """Tabs whose content is built the first time they are opened (the first one at once), so a
    page shows its map without waiting for every tab."""

    def __init__(self, state: AppState, panels: list[tuple[str, str]]):
        self.state = state
        # Not dynamic: Panel 1.9 detaches the models of hidden dynamic tabs, and updating a detached
        # text pane (e.g. the map's export note when the aggregation changes on another tab) rewrites
        # the page's shared loading.css stylesheet to the CDN address, which the Content-Security-Policy
        # blocks (console errors, lost loading spinner). Unopened tabs are empty holders anyway.
        self.tabs = pn.Tabs(dynamic=False, name="tabs")
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


def create_dashboard() -> pn.viewable.Viewable:
    """One session's page. Whatever goes wrong while building it, the visitor gets a page with a
    plain message, never Panel's traceback; the traceback goes to the server log."""
    query, notices = {}, []
    try:
        _load_extensions()
        query = permalink.session_query()
    except Exception as exc:
        log.exception("reading the page's query failed")
        notices.append(permalink.Notice("", "", f"could not be read ({type(exc).__name__}); defaults shown"))
    try:
        return build_dashboard(query, user=auth.current_user(), notices=notices)
    except Exception as exc:
        log.exception("building the dashboard failed (query %r)", query)
        return error_page(exc)


def error_page(exc: BaseException) -> pn.viewable.Viewable:
    """A page saying the dashboard could not be built, with a link to the default page."""
    pane = ui.alert("danger", name="message")
    ui.show_alert(
        pane,
        f"The dashboard could not be built ({type(exc).__name__}: {exc}). The details are in the "
        "server log. Try the page without link settings, or reload later.",
    )
    return pn.Column(
        pn.pane.HTML(f"<h2>{ui.as_html(TITLE)}</h2>"),
        pane,
        pn.pane.HTML('<a href="?">Open FluxLens with its default settings</a>'),
        sizing_mode="stretch_width",
    )


def restore(query: dict[str, str]) -> tuple[dict, list[permalink.Notice]]:
    """The state updates of a permalink's query, checked against the catalog, and the notices
    for the settings left out. Never raises: a failure ignores the whole link."""
    try:
        updates, notices = permalink.decode(query)
        products = data.list_products()
        checked, more = permalink.check(
            updates,
            products,
            default_product=default_product([p.name for p in products]),
            variables_of=data.gridded_variables,
            query=query,
            tiles=settings.tile_url() is not None,
        )
        return checked, notices + more
    except Exception as exc:
        log.exception("permalink %r could not be read", query)
        return {}, [permalink.Notice("", "", f"could not be read ({type(exc).__name__}); defaults shown")]


def _state_and_controls(user: str, updates: dict, notices: list) -> tuple[AppState, Controls]:
    """The session's state with the link's ``updates`` and its sidebar; if applying the link
    fails, the defaults (with a notice in ``notices``)."""
    state = AppState(user=user)
    try:
        state.param.update(**updates)
        controls = Controls(state)
        if updates.get("variable"):
            state.variable = updates["variable"]
        return state, controls
    except Exception as exc:
        if not updates:
            raise
        log.exception("applying permalink settings %r failed", updates)
        notices.append(
            permalink.Notice("", "", f"could not be applied ({type(exc).__name__}); defaults shown")
        )
    state = AppState(user=user)
    return state, Controls(state)


def build_dashboard(
    query: dict[str, str], *, user: str = "anonymous", notices: list | None = None
) -> pn.template.base.BasePage:
    """The page for a permalink ``query`` (URL query values as strings); ``notices`` are shown
    before those of the query's settings."""
    _load_extensions()
    updates, more = restore(query)
    notices = [*(notices or []), *more]
    state, controls = _state_and_controls(user, updates, notices)

    message = ui.alert("danger", name="message")
    state.param.watch(lambda e: ui.show_alert(message, e.new), "message")
    link_notes = ui.alert("warning", name="link_notices")
    ui.show_alert(link_notes, [n.text() for n in notices])
    if notices:
        log.warning("permalink settings ignored: %s", "; ".join(n.text() for n in notices))
    dismiss = pn.widgets.Button(name="Dismiss", width=90, visible=bool(notices))
    dismiss.on_click(lambda e: (link_notes.param.update(visible=False), dismiss.param.update(visible=False)))

    first_run = welcome.FirstRun()  # above the tabs; the About tab can show it again
    welcome.attach(state, first_run)
    tabs = LazyTabs(state, CORE_PANELS + EXTRA_PANELS).tabs
    link = pn.widgets.TextInput(name="Permalink", value="", width=260, disabled=False)

    def sync_url(*events):
        search = permalink.query_string(permalink.to_query(state))
        if pn.state.location is not None:
            pn.state.location.search = search
            loc = pn.state.location
            host = f"{loc.hostname}:{loc.port}" if loc.port else loc.hostname
            link.value = f"{loc.protocol}//{host}{loc.pathname}{search}"

    state.param.watch(sync_url, [p for p in AppState.param if p not in ("name", "message", "user", "tab")])
    pn.state.onload(sync_url)
    # New products (finished jobs) appear in the picker without a reload.
    pn.state.onload(lambda: pn.state.add_periodic_callback(controls.refresh_products, PRODUCTS_REFRESH_MS))

    template = pn.template.FastListTemplate(
        title=TITLE,
        sidebar=[
            controls.panel(),
            pn.layout.Divider(),
            link,
            pn.pane.HTML(f"User: <code>{ui.as_html(state.user)}</code>"),
        ],
        main=[
            pn.Column(
                pn.Row(link_notes, dismiss), message, first_run.panel, tabs, sizing_mode="stretch_width"
            )
        ],
        sidebar_width=300,
        theme_toggle=True,
        design=Fast,
        font="DejaVu Sans, Arial, sans-serif",
        header_background="#1f5f8b",
        accent_base_color="#1f5f8b",
    )
    return template
