"""The first-run panel above the tabs: what FluxLens is, what in the catalog is synthetic, five things
to try.

It is shown to every new browser, whatever the catalog holds (a newcomer to a deployment of real
data needs the same orientation); the paragraph on synthetic data appears only when the catalog
holds synthetic products or networks, and names them. "Dismiss" sets a cookie in the browser
(:data:`COOKIE`), which the server reads when it builds that browser's next page, so a dismissed
panel stays dismissed without any account; the About tab's "Show first-run help" clears the cookie
and shows the panel again.
"""

from __future__ import annotations

import html
import weakref
from dataclasses import dataclass

import panel as pn

from app import data
from catalog import api

COOKIE = "fluxlens_first_run"
DISMISSED = "dismissed"
COOKIE_MAX_AGE_S = 400 * 24 * 3600  # the longest lifetime browsers keep a cookie (400 days)

_SET_COOKIE = f"document.cookie = '{COOKIE}={DISMISSED}; max-age={COOKIE_MAX_AGE_S}; path=/; SameSite=Lax';"
_CLEAR_COOKIE = f"document.cookie = '{COOKIE}=; max-age=0; path=/; SameSite=Lax';"

WHAT = (
    "FluxLens is a workbench for exploring and validating gridded land-surface datasets: surface soil "
    "moisture (m3 m-3) and the latent and sensible heat fluxes LE and H (W m-2, positive upward). "
    "It maps them, compares products, checks them against flux towers and soil-moisture stations, and "
    "re-predicts LE and H with a machine-learning emulator of a land-surface model."
)

# (tab, what to do there): each names the tab and the control to use.
THINGS_TO_TRY: tuple[tuple[str, str], ...] = (
    ("Map", "press “step ▶” in the sidebar to move to the next day; click a pixel for its time series."),
    ("Compare", "choose “Product A” and “Product B” to see two products side by side and their difference."),
    (
        "Validation",
        "pick a FLUXNET site in “Find a site (id or name)” or on the site map: product against "
        "tower, day by day.",
    ),
    (
        "Models",
        "read the emulator's cross-validation scores (random, temporal and spatial splits) and "
        "its SHAP explanations.",
    ),
    (
        "Jobs",
        "type a box W,S,E,N (or “Use map view”) and press “Submit” to re-predict LE and H; the new "
        "product appears in the product picker.",
    ),
)


@dataclass(frozen=True)
class Holding:
    """One product or station network of the catalog, as the app lists it."""

    kind: str  # "product" | "network"
    name: str
    title: str
    synthetic: bool
    detail: str  # variables and period (products), sites and period (networks)


def holdings() -> list[Holding]:
    """Products and station networks of the current catalog (catalog metadata only, no data read)."""
    out = [
        Holding(
            "product",
            p.name,
            p.title,
            bool(p.synthetic),
            f"{', '.join(data.gridded_variables(p))}; {p.time_start} … {p.time_end}",
        )
        for p in data.list_products()
    ]
    for network in api.list_networks():
        meta = api.network_info(network)
        period = f"{meta.get('time_start', '?')} … {meta.get('time_end', '?')}"
        title = (meta.get("provenance") or {}).get("contents", "station network")
        sites = f"{meta.get('n_sites', '?')} sites; {period}"
        out.append(Holding("network", network, title, bool(meta.get("synthetic")), sites))
    return out


def synthetic_paragraph(items: list[Holding]) -> str:
    """HTML paragraph naming the synthetic products and networks; ``""`` when there are none."""
    names = [h.name for h in items if h.synthetic]
    if not names:
        return ""
    listed = ", ".join(f"<code>{html.escape(n)}</code>" for n in names)
    real = len(items) - len(names)
    rest = (
        f" The rest ({real} of {len(items)}) is real data."
        if real
        else " Nothing in this catalog is real data."
    )
    return (
        "<p class='first-run-synthetic' style='margin:0'><b>Synthetic data.</b> Every product and network "
        f"marked <i>synthetic</i> ({listed}) is invented: made by the FluxLens demo world, or computed from "
        "its data. The numbers are plausible, not measurements: use them to learn the app, never to "
        "draw conclusions about the land surface."
        f"{rest}</p>"
    )


def is_dismissed(cookies: dict) -> bool:
    """Whether the browser that sent ``cookies`` dismissed the panel."""
    return cookies.get(COOKIE) == DISMISSED


def content_html(items: list[Holding]) -> str:
    """The panel's text as HTML: what FluxLens is and what is synthetic beside the five things to try
    (one column when the page is narrow)."""
    steps = "".join(f"<li><b>{html.escape(tab)}</b>: {html.escape(text)}</li>" for tab, text in THINGS_TO_TRY)
    return (
        "<div class='first-run-text' style='display:grid;gap:4px 18px;font-size:13px;line-height:1.35;"
        "grid-template-columns:repeat(auto-fit,minmax(min(100%,330px),1fr))'>"
        f"<div><p style='margin:0 0 6px 0'>{html.escape(WHAT)}</p>{synthetic_paragraph(items)}</div>"
        f"<div><b>Five things to try</b><ol style='margin:2px 0 4px 0;padding-left:20px'>{steps}</ol>"
        "Data sources, citations and licences: the <b>About</b> tab.</div></div>"
    )


class FirstRun:
    """The panel of one session: hidden at once when the browser dismissed it before."""

    def __init__(self, cookies: dict | None = None):
        dismissed = is_dismissed(pn.state.cookies if cookies is None else cookies)
        self.text = pn.pane.HTML(content_html(holdings()), sizing_mode="stretch_width", margin=(0, 8, 6, 8))
        self.dismiss = pn.widgets.Button(label="Dismiss", width=90, css_classes=["first-run-dismiss"])
        self.dismiss.js_on_click(code=_SET_COOKIE)
        self.dismiss.on_click(lambda _e: self.hide())
        title = pn.pane.HTML("<h3 style='margin:0'>Welcome to FluxLens</h3>", sizing_mode="stretch_width")
        self.panel = pn.Column(
            pn.Row(title, self.dismiss, sizing_mode="stretch_width", margin=(4, 0, 0, 0)),
            self.text,
            name="first_run",
            css_classes=["first-run"],
            visible=not dismissed,
            sizing_mode="stretch_width",
            # a tint of the header colour: readable in the light and the dark theme
            styles={
                "border": "1px solid #1f5f8b",
                "border-radius": "4px",
                "background": "rgba(31,95,139,0.07)",
            },
            margin=(5, 10),
        )

    def hide(self) -> None:
        self.panel.visible = False

    def show(self) -> None:
        """Show the panel again with the catalog as it is now."""
        self.text.object = content_html(holdings())
        self.panel.visible = True


_sessions: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def attach(state, first_run: FirstRun) -> None:
    """Make ``first_run`` the panel of the session whose state is ``state`` (see :func:`of`)."""
    _sessions[state] = first_run


def of(state) -> FirstRun | None:
    """The first-run panel of the session of ``state``, if the page has one."""
    return _sessions.get(state)


def show_again_button(state) -> pn.widgets.Button:
    """The About tab's "Show first-run help": clears the dismissal cookie and shows the panel."""
    button = pn.widgets.Button(label="Show first-run help", color="primary", variant="outline", width=190)
    button.js_on_click(code=_CLEAR_COOKIE)

    def show(_event) -> None:
        first_run = of(state)
        if first_run is not None:
            first_run.show()

    button.on_click(show)
    return button
