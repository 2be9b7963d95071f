"""What a product is, in words: variables with units and sign conventions, grid, time steps and how
it was made (recipe, conversions, time aggregation, regridding, source files, model), from its
catalog entry. Pure functions giving plain text, and the box of the map tab that shows them
(escaped: provenance strings come from files and are never read as HTML)."""

from __future__ import annotations

import html
from pathlib import PurePath

import pandas as pd
import panel as pn

from app import compute

# Sign conventions of the canonical flux variables (docs/architecture.md, "Conventions").
SIGN_CONVENTIONS = {
    "le": "positive upward (surface to atmosphere), as FLUXNET",
    "h": "positive upward (surface to atmosphere), as FLUXNET",
    "rn": "positive downward (net radiation gained by the surface)",
    "g": "positive into the soil",
    "sw_in": "downward",
    "lw_in": "downward",
}
NOT_DAILY_MEAN = "not a daily mean"
MAX_LIST = 6


def sign_convention(variable: str) -> str:
    return SIGN_CONVENTIONS.get(variable, "")


def variable_line(info, variable: str) -> str:
    """'le: latent heat flux (positive upward), W m-2; positive upward (…)'."""
    meta = (info.variables or {}).get(variable, {})
    text = f"{variable}: {meta.get('long_name') or variable}"
    if meta.get("units"):
        text += f" [{meta['units']}]"
    if sign_convention(variable):
        text += f"; sign: {sign_convention(variable)}"
    return text


def time_aggregation(info, variable: str) -> str:
    """The provenance's note on how ``variable``'s time steps were made ('' when it has none)."""
    notes = _variable_notes(info).get(variable) or {}
    return str(notes.get("time_aggregation") or "")


def is_not_daily_mean(info, variable: str) -> bool:
    """Whether the provenance says the values are samples, not daily means."""
    return NOT_DAILY_MEAN in time_aggregation(info, variable)


def sampling_caveat(info, variable: str) -> str:
    """A one-line warning for views that treat values as daily: '' for daily means."""
    if not is_not_daily_mean(info, variable):
        return ""
    return f"{info.name} {variable}: {time_aggregation(info, variable)}"


def _variable_notes(info) -> dict:
    notes = (info.provenance or {}).get("variables")
    return notes if isinstance(notes, dict) else {}


def _file_name(path) -> str:
    return PurePath(str(path)).name


def _short_list(items, limit: int = MAX_LIST) -> str:
    items = [str(i) for i in items]
    more = f" and {len(items) - limit} more" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more


def describe(info, times=None) -> list[tuple[str, list[str]]]:
    """Sections ``(heading, lines)`` of plain text describing product ``info`` (a ProductInfo);
    ``times`` its time steps (for the sampling)."""
    prov = info.provenance or {}
    head = [
        f"{info.title or info.name} ({info.name})",
        "synthetic (made from demo data: not for conclusions)"
        if info.synthetic
        else "real data (not synthetic)",
    ]
    if info.kind:
        head.append(f"kind: {info.kind}")
    variables = [variable_line(info, v) for v in info.variables if v != "flag"]
    w, s, e, n = info.bbox
    level0 = info.levels[0] if info.levels else {}
    res_lat = level0.get("resolution_lat", info.resolution)
    grid = [
        f"{info.resolution:g}° × {res_lat:g}° (lon × lat) cells"
        + (f", {level0['n_lat']} × {level0['n_lon']} (lat × lon)" if level0 else ""),
        f"bbox W {w:g} S {s:g} E {e:g} N {n:g}",
        f"{len(info.levels)} pyramid level(s)",
    ]
    when = f"{str(info.time_start)[:10]} … {str(info.time_end)[:10]}"
    time = [when + (f"; {compute.sampling(pd.DatetimeIndex(times))}" if times is not None else "")]
    aggregations = sorted({time_aggregation(info, v) for v in info.variables if time_aggregation(info, v)})
    if len(aggregations) == 1:
        time.append(f"each value: {aggregations[0]}")
    method = []
    recipe = prov.get("recipe")
    if isinstance(recipe, dict):
        method.append(
            f"recipe {recipe.get('name', '?')}"
            + (f" ({recipe['title']})" if recipe.get("title") else "")
            + (f"; {recipe['reference']}" if recipe.get("reference") else "")
        )
    if prov.get("reader"):
        method.append(
            f"reader {prov['reader']}" + (f" {prov['reader_version']}" if prov.get("reader_version") else "")
        )
    if prov.get("model_version"):
        method.append(f"emulator {prov['model_version']}: {prov.get('model', '')}".rstrip(": "))
        inputs = prov.get("inputs")
        if isinstance(inputs, dict) and inputs:
            method.append("inputs: " + ", ".join(f"{k} {v}" for k, v in inputs.items()))
        if prov.get("a_source"):
            method.append(f"available energy A from {prov['a_source']}")
        if prov.get("period"):
            method.append("requested period " + " … ".join(str(p) for p in prov["period"]))
    for var, notes in _variable_notes(info).items():
        if not isinstance(notes, dict):
            continue
        parts = []
        if notes.get("source_variables"):
            parts.append("from " + _short_list(notes["source_variables"]))
        if notes.get("conversion"):
            conv = notes["conversion"]
            parts.append("; ".join(str(c) for c in (conv if isinstance(conv, list) else [conv])))
        if notes.get("time_aggregation") and len(aggregations) > 1:
            parts.append(f"time: {notes['time_aggregation']}")
        if notes.get("regridding"):
            parts.append(f"regridding: {notes['regridding']}")
        if parts:
            method.append(f"{var}: " + "; ".join(parts))
    sources = prov.get("sources")
    if isinstance(sources, list) and sources:
        names = [
            _file_name(src.get("path", "?"))
            + (f" (sha256 {src['sha256'][:12]}…)" if src.get("sha256") else "")
            for src in sources
            if isinstance(src, dict)
        ]
        method.append(f"{len(sources)} source file(s): {_short_list(names)}")
    if not method:
        method.append(str(prov.get("description") or "no provenance recorded"))
    return [("Product", head), ("Variables", variables), ("Grid", grid), ("Time", time), ("Method", method)]


def as_text(sections: list[tuple[str, list[str]]]) -> str:
    return "\n".join(f"{h}: " + " | ".join(lines) for h, lines in sections)


def as_html(sections: list[tuple[str, list[str]]]) -> str:
    """The sections as an escaped HTML definition list."""
    rows = []
    for heading, lines in sections:
        items = "".join(f"<li>{html.escape(line)}</li>" for line in lines)
        rows.append(f"<dt>{html.escape(heading)}</dt><dd><ul>{items}</ul></dd>")
    return f'<dl class="product-info">{"".join(rows)}</dl>'


STYLE = """
.product-info { margin: 0; font-size: 13px; }
.product-info dt { font-weight: bold; margin-top: 4px; }
.product-info dd { margin: 0 0 0 12px; }
.product-info ul { margin: 0; padding-left: 16px; }
"""


class ProductInfoBox:
    """A card on the map tab describing the product on the map (refreshed when it changes)."""

    def __init__(self, state, data_module):
        self.state = state
        self._data = data_module
        self.body = pn.pane.HTML("", name="product_info", stylesheets=[STYLE], sizing_mode="stretch_width")
        self.card = pn.Card(
            self.body, title="Product info", collapsed=False, width=900, name="product_info_card"
        )
        state.param.watch(lambda e: self.update(), "product")
        self.update()

    def update(self) -> None:
        name = self.state.product
        if not name:
            self.body.object = ""
            return
        try:
            info = self._data.info(name)
            sections = describe(info, self._data.time_axis(name))
        except Exception as exc:  # described in the page, never a traceback
            self.body.object = html.escape(f"product info unavailable ({type(exc).__name__})")
            return
        self.card.title = f"Product info: {name}"
        self.body.object = as_html(sections)
