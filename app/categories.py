"""Categorical variables: integer codes with CF ``flag_values`` / ``flag_meanings`` (an explanation
map's ``dominant_driver``), drawn with one colour per class, a legend naming every class with its
share of the map's pixels (the colour bar keeps the colours only: twenty names beside it would widen the map),
the class name in the hover, and aggregated over time by the most frequent class, not a mean."""

from __future__ import annotations

import html
from dataclasses import dataclass

import numpy as np
import xarray as xr
from bokeh.models import CustomJSHover, FixedTicker
from matplotlib import colormaps
from matplotlib import colors as mcolors

from app import styles

NO_CLASS = "#bdbdbd"  # an integer between two classes' codes (non-contiguous flag_values)


@dataclass(frozen=True)
class Categories:
    """The classes of a categorical variable: their codes and names (same order)."""

    values: tuple[int, ...]
    names: tuple[str, ...]

    @property
    def clim(self) -> tuple[float, float]:
        """Colour limits that centre each code on its colour."""
        return (min(self.values) - 0.5, max(self.values) + 0.5)

    def palette(self) -> list[str]:
        """One colour per integer from the lowest to the highest code (tab10, or tab20 beyond ten
        classes); integers that are no class are grey."""
        n = len(self.values)
        cmap = colormaps["tab10" if n <= 10 else "tab20"]
        colour = {v: mcolors.to_hex(cmap(i % cmap.N)) for i, v in enumerate(self.values)}
        return [colour.get(v, NO_CLASS) for v in range(min(self.values), max(self.values) + 1)]

    def name(self, code) -> str:
        """The class name of ``code`` ('' for NaN or an unknown code)."""
        if code is None or not np.isfinite(code):
            return ""
        lookup = dict(zip(self.values, self.names, strict=True))
        return lookup.get(int(round(float(code))), "")


def of(attrs: dict) -> Categories | None:
    """The classes a variable's attributes declare (CF ``flag_values`` and the blank-separated
    ``flag_meanings``), or None for a continuous variable or an inconsistent declaration."""
    values, meanings = attrs.get("flag_values"), attrs.get("flag_meanings")
    if values is None or not meanings:
        return None
    codes = tuple(int(v) for v in np.atleast_1d(values))
    names = tuple(str(meanings).split())
    if not codes or len(codes) != len(names):
        return None
    return Categories(codes, names)


def most_frequent(da: xr.DataArray, cats: Categories, dim: str = "time") -> xr.DataArray:
    """The most frequent class along ``dim`` at each point (the lowest code among ties), NaN where
    no step holds a class. Stays lazy for dask-backed input."""
    counts = xr.concat([(da == v).sum(dim) for v in cats.values], dim="category")
    codes = np.asarray(cats.values, dtype="float32")
    best = xr.apply_ufunc(
        lambda i: codes[i], counts.argmax("category"), dask="parallelized", output_dtypes=[codes.dtype]
    )
    out = best.where(counts.max("category") > 0)
    out = out.drop_vars([c for c in out.coords if c not in da.coords or dim in da[c].dims], errors="ignore")
    out.attrs = dict(da.attrs)
    return out


# The class name of the hovered code (``codes``/``names`` as arguments, '' for NaN).
_NAME_JS = """
const i = codes.indexOf(Math.round(value));
return i < 0 ? '' : names[i];
"""


def style_map(mapper, colorbar, cats: Categories | None, clim, cmap: str) -> None:
    """Colour a map's Bokeh mapper and colour bar: one colour per class, a tick at each class and no
    tick labels for ``cats`` (:func:`legend_html` names them), else ``cmap`` over ``clim`` with
    automatic ticks."""
    if cats is None:
        mapper.update(low=float(clim[0]), high=float(clim[1]), palette=styles.palette(cmap))
        colorbar.update(ticker="auto", major_label_overrides={})
        return
    low, high = cats.clim
    mapper.update(low=low, high=high, palette=cats.palette())
    colorbar.update(
        ticker=FixedTicker(ticks=list(cats.values)),
        major_label_overrides={int(v): "" for v in cats.values},
    )


def shares(cats: Categories, values) -> dict[int, float]:
    """Fraction of the finite ``values`` holding each class code."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    return {c: float((v == c).mean()) if v.size else 0.0 for c in cats.values}


def legend_html(cats: Categories, values) -> str:
    """The map's legend: a colour swatch and the name of every class with its share of the shown
    ``values``, classes present first (largest share first), absent ones after, greyed."""
    palette, low = cats.palette(), min(cats.values)
    share = shares(cats, values)
    order = sorted(cats.values, key=lambda c: (-share[c], cats.values.index(c)))
    items = []
    for c in order:
        colour = palette[c - low]
        absent = " class-absent" if share[c] == 0 else ""
        items.append(
            f"<span class='class-item{absent}' data-code='{c}' data-colour='{colour}'>"
            f"<span class='class-swatch' style='background:{colour}'></span>"
            f"{html.escape(cats.name(c))} <small>{100 * share[c]:.0f} %</small></span>"
        )
    return "<div class='class-legend-items'>" + "".join(items) + "</div>"


LEGEND_CSS = """
.class-legend-items { display: flex; flex-wrap: wrap; gap: 2px 12px; font-size: 12px; }
.class-item { white-space: nowrap; }
.class-item.class-absent { color: #999; }
.class-swatch { display: inline-block; width: 11px; height: 11px; margin-right: 4px;
  vertical-align: -1px; border: 1px solid rgba(0, 0, 0, 0.25); }
"""


def hover_value(cats: Categories | None, units: str, fmt: str) -> str:
    """A map's image value in its hover: the class name (:func:`hover_formatter`), or number and units."""
    return "@image{custom}" if cats is not None else f"@image{{{fmt}}} {units}"


def hover_formatters(cats: Categories | None) -> dict:
    """Hover formatters :func:`hover_value` needs: the code → class name lookup, or none."""
    if cats is None:
        return {}
    names = CustomJSHover(code=_NAME_JS, args={"codes": list(cats.values), "names": list(cats.names)})
    return {"@image": names}
