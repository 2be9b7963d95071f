"""The About tab: what the catalog holds (synthetic or real), the data sources FluxLens reads with
their citations and licences, the software it runs on (installed versions) and its own licence."""

from __future__ import annotations

import html
from dataclasses import dataclass
from importlib import metadata

import panel as pn

from app import welcome


@dataclass(frozen=True)
class Source:
    """A data source FluxLens reads: what it is, how to cite it, under which licence."""

    name: str
    what: str
    citation: str
    licence: str


SOURCES: tuple[Source, ...] = (
    Source(
        "GSSM1km",
        "global daily 1 km surface soil moisture (0–5 cm, m3 m-3), 2000–2020, GeoTIFF",
        "Han, Q., Zeng, Y., Zhang, L. et al. (2023) Global long term daily 1 km surface soil moisture "
        "dataset with physics informed machine learning. Sci. Data 10, 101. doi:10.1038/s41597-023-02011-7 "
        "(data: figshare 21806457)",
        "CC-BY-4.0",
    ),
    Source(
        "STEMMUS-SCOPE",
        "the land-surface model whose LE/H the emulator learns; LE/H upscaling at flux sites",
        "Wang, Y., Zeng, Y. et al. (2021) STEMMUS-SCOPE v1.0.0. Geosci. Model Dev. 14, 1379–1407. "
        "doi:10.5194/gmd-14-1379-2021; Han, Q. et al. (2025) Earth Syst. Sci. Data 17, 7101. "
        "doi:10.5194/essd-17-7101-2025",
        "model code GPL-3.0; papers CC-BY-4.0",
    ),
    Source(
        "ESA CCI SM",
        "satellite surface soil moisture, 0.25°, daily (combined, active, passive), netCDF",
        "Dorigo, W. et al. (2017) Remote Sens. Environ. 203, 185–215. doi:10.1016/j.rse.2017.07.001; "
        "Gruber, A. et al. (2019) Earth Syst. Sci. Data 11, 717–739. doi:10.5194/essd-11-717-2019",
        "CC-BY-4.0",
    ),
    Source(
        "SMAP L3",
        "NASA SMAP radiometer soil moisture (SPL3SMP 36 km, SPL3SMP_E 9 km, EASE-Grid 2.0), HDF5",
        "O'Neill, P. E. et al. SMAP L3 Radiometer Global Daily EASE-Grid Soil Moisture, NASA NSIDC DAAC; "
        "Entekhabi, D. et al. (2010) Proc. IEEE 98, 704–716. doi:10.1109/JPROC.2010.2043918",
        "NASA data: public domain",
    ),
    Source(
        "FLUXNET2015",
        "eddy-covariance tower fluxes LE, H, Rn, G and meteorology (daily, monthly CSV)",
        "Pastorello, G. et al. (2020) The FLUXNET2015 dataset and the ONEFlux processing pipeline for "
        "eddy covariance data. Sci. Data 7, 225. doi:10.1038/s41597-020-0534-3; and each site's DOI",
        "CC-BY-4.0",
    ),
    Source(
        "ISMN",
        "in-situ soil moisture stations (International Soil Moisture Network)",
        "Dorigo, W. et al. (2021) The International Soil Moisture Network. Hydrol. Earth Syst. Sci. 25, "
        "5749–5804. doi:10.5194/hess-25-5749-2021; and each network used",
        "ISMN terms of use",
    ),
    Source(
        "ERA5 / ERA5-Land",
        "reanalysis forcing (radiation, temperature, humidity, wind, pressure, precipitation) and fluxes",
        "Hersbach, H. et al. (2020) Q. J. R. Meteorol. Soc. 146, 1999–2049. doi:10.1002/qj.3803; "
        "Muñoz-Sabater, J. et al. (2021) Earth Syst. Sci. Data 13, 4349–4383. doi:10.5194/essd-13-4349-2021",
        "Copernicus licence (“Contains modified Copernicus Climate Change Service information”)",
    ),
    Source(
        "GLDAS-2.1",
        "Noah land-model soil moisture (kg m-2 per layer), 0.25°, 3-hourly",
        "Rodell, M. et al. (2004) The Global Land Data Assimilation System. Bull. Amer. Meteor. Soc. 85, "
        "381–394. doi:10.1175/BAMS-85-3-381",
        "NASA data: no restriction on use",
    ),
    Source(
        "C3S LAI and land cover",
        "Copernicus LAI v3 (PROBA-V) and C3S / ESA CCI land cover (LCCS classes)",
        "Copernicus Climate Change Service, Climate Data Store: satellite-lai-fapar and satellite-land-cover",
        "Copernicus licence",
    ),
    Source(
        "Natural Earth",
        "1:110m coastlines and land polygons: the maps' coastlines and the demo world's land mask",
        "Natural Earth, naturalearthdata.com",
        "public domain",
    ),
)

# (distribution, what FluxLens uses it for)
SOFTWARE: tuple[tuple[str, str], ...] = (
    ("panel", "the web dashboard"),
    ("bokeh", "plots in the browser"),
    ("holoviews", "plots"),
    ("pyproj", "the Equal Earth projection (EPSG:8857)"),
    ("datashader", "maps rendered to screen pixels"),
    ("xarray", "gridded products"),
    ("zarr", "stored products"),
    ("dask", "lazy reads and prediction jobs"),
    ("intake", "the catalog"),
    ("lightgbm", "the LE/H emulator"),
    ("shap", "emulator explanations"),
    ("scikit-learn", "cross-validation splits"),
)


def licence_of(dist: str) -> str:
    """A distribution's licence from its installed metadata: the SPDX ``License-Expression``, else
    the licence classifiers, else a short ``License`` field."""
    meta = metadata.metadata(dist)
    if meta.get("License-Expression"):
        return meta["License-Expression"]
    classifiers = [
        c.rsplit(" :: ", 1)[-1] for c in meta.get_all("Classifier") or [] if c.startswith("License ::")
    ]
    if classifiers:
        return ", ".join(classifiers)
    text = (meta.get("License") or "").strip()
    return text if text and "\n" not in text and len(text) <= 40 else "see the package's metadata"


def installed(dist: str) -> tuple[str, str]:
    """``(version, licence)`` of an installed distribution; ``("not installed", "")`` otherwise."""
    try:
        return metadata.version(dist), licence_of(dist)
    except metadata.PackageNotFoundError:
        return "not installed", ""


def _table(head: tuple[str, ...], widths: tuple[int, ...], rows: list[tuple[str, ...]], css: str) -> str:
    """An HTML table (cells already escaped) that wraps its text instead of growing wider than the page."""
    cols = "".join(f"<col style='width:{w}%'>" for w in widths)
    cell = "padding:2px 8px 2px 0;vertical-align:top"
    th = "".join(f"<th style='text-align:left;{cell}'>{h}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td style='{cell}'>{c}</td>" for c in row) + "</tr>" for row in rows)
    return (
        f"<table class='{css}' style='width:100%;table-layout:fixed;border-collapse:collapse;"
        f"overflow-wrap:anywhere;font-size:13px'>{cols}<tr>{th}</tr>{body}</table>"
    )


def holdings_html(items: list[welcome.Holding]) -> str:
    """What the catalog holds, each entry marked synthetic or real."""
    if not items:
        return "<p>The catalog is empty.</p>"
    n_syn = sum(h.synthetic for h in items)
    rows = [
        (
            h.kind,
            f"<code>{html.escape(h.name)}</code>",
            html.escape(h.title),
            html.escape(h.detail),
            "<b style='color:#a05a00'>synthetic</b>" if h.synthetic else "real",
        )
        for h in items
    ]
    table = _table(("kind", "name", "title", "contents", "data"), (9, 19, 36, 26, 10), rows, "about-holdings")
    return (
        f"<p>Products and networks: {len(items)} ({n_syn} synthetic, {len(items) - n_syn} real).</p>{table}"
    )


def sources_html() -> str:
    rows = [
        (html.escape(s.name), html.escape(s.what), html.escape(s.citation), html.escape(s.licence))
        for s in SOURCES
    ]
    return _table(("source", "what", "cite", "licence"), (14, 26, 44, 16), rows, "about-sources")


def software_html() -> str:
    rows = []
    for dist, use in SOFTWARE:
        version, licence = installed(dist)
        rows.append((f"<code>{dist}</code>", html.escape(version), html.escape(licence), html.escape(use)))
    return _table(("package", "version", "licence", "used for"), (22, 16, 24, 38), rows, "about-software")


def fluxlens_html() -> str:
    version, licence = installed("fluxlens")
    return (
        f"<p>FluxLens {html.escape(version)} is free software under the <b>{html.escape(licence)}</b> "
        "licence. Data keep their own licences (below): cite the sources of any result you show.</p>"
    )


def panel(state) -> pn.viewable.Viewable:
    """The About tab; its catalog list is read again each time the tab is opened."""
    holdings = pn.pane.HTML(
        holdings_html(welcome.holdings()), sizing_mode="stretch_width", margin=(0, 10), name="about_holdings"
    )

    def refresh(event) -> None:
        if event.new == "About":
            holdings.object = holdings_html(welcome.holdings())

    state.param.watch(refresh, "tab")
    text = dict(sizing_mode="stretch_width", margin=(0, 10))
    return pn.Column(
        pn.pane.HTML("<h2 style='margin:4px 0'>About FluxLens</h2>" + fluxlens_html(), **text),
        welcome.show_again_button(state),
        pn.pane.HTML("<h3>What this catalog holds</h3>", **text),
        holdings,
        pn.pane.HTML("<h3>Data sources</h3>" + sources_html(), **text),
        pn.pane.HTML("<h3>Software</h3>" + software_html(), **text),
        name="About",
        sizing_mode="stretch_width",
    )
