"""How variables are drawn: default colour limits, colormaps, labels."""

from __future__ import annotations

import matplotlib
import numpy as np
from matplotlib import colors as mcolors

# Fixed colour limits (in the variable's units) used unless the user asks for auto or typed limits.
DEFAULT_CLIM: dict[str, tuple[float, float]] = {
    "ssm": (0.0, 0.5),
    "ssm_uncertainty": (0.0, 0.1),
    "le": (-50.0, 300.0),
    "h": (-100.0, 300.0),
    "rn": (-100.0, 400.0),
    "g": (-50.0, 50.0),
    "ef": (0.0, 1.0),
    "sw_in": (0.0, 400.0),
    "lw_in": (150.0, 500.0),
    "ta": (-30.0, 40.0),
    "vpd": (0.0, 40.0),
    "precip": (0.0, 20.0),
    "ws": (0.0, 15.0),
    "lai": (0.0, 7.0),
    "ndvi": (-0.2, 1.0),
    "elevation": (0.0, 5000.0),
    "igbp": (1.0, 17.0),
}

# Fixed colour limits of a variable shown in other units than its stored ones: LE as evaporation
# (−50…300 W m-2 is −1.8…10.6 mm d-1 at 20 °C).
DEFAULT_CLIM_IN: dict[tuple[str, str], tuple[float, float]] = {("le", "mm d-1"): (-2.0, 10.0)}

DEFAULT_CMAP: dict[str, str] = {
    "ssm": "YlGnBu",
    "le": "viridis",
    "h": "magma",
    "rn": "inferno",
    "g": "RdBu_r",
    "ta": "RdYlBu_r",
    "precip": "Blues",
    "elevation": "terrain",
    "igbp": "tab20",
}

COLORMAPS = (
    "viridis",
    "cividis",
    "YlGnBu",
    "Blues",
    "magma",
    "inferno",
    "RdYlBu_r",
    "RdBu_r",
    "BrBG",
    "terrain",
)
DIFF_CMAP = "RdBu_r"
# Width of the Map, Compare and Profile tabs' content (px): the main area of a 1280 px window beside the
# 300 px sidebar, less the template's padding.
TAB_WIDTH = 880
# Line colours of products in series and profile plots (one per product, in order).
SERIES_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf")
# Coastline colours: dark lines on the light theme, light lines on the dark theme.
COASTLINE_COLOUR = {False: "#333333", True: "#e6e6e6"}


def palette(name: str, n: int = 256) -> list[str]:
    """``n`` hex colours of a matplotlib colormap."""
    cmap = matplotlib.colormaps[name].resampled(n)
    return [mcolors.to_hex(cmap(i)) for i in range(n)]


def default_cmap(variable: str) -> str:
    return DEFAULT_CMAP.get(variable, "viridis")


def auto_clim(values: np.ndarray, symmetric: bool = False) -> tuple[float, float]:
    """2nd–98th percentile of the valid values (±98th of |x| when ``symmetric``)."""
    v = np.asarray(values, dtype="float64").ravel()
    v = v[np.isfinite(v)]
    if v.size == 0:
        return (0.0, 1.0)
    if symmetric:
        m = float(np.percentile(np.abs(v), 98)) or 1.0
        return (-m, m)
    lo, hi = (float(x) for x in np.percentile(v, [2, 98]))
    if hi <= lo:
        hi = lo + (abs(lo) or 1.0) * 0.01
    return (lo, hi)


def clim_for(variable: str, mode: str, typed, values, units: str | None = None) -> tuple[float, float]:
    """Colour limits for ``mode`` fixed (per-variable default, in ``units`` when the variable is
    shown converted) / auto (from the data) / typed."""
    if mode == "typed" and typed and typed[0] < typed[1]:
        return (float(typed[0]), float(typed[1]))
    if mode == "fixed" and (variable, units) in DEFAULT_CLIM_IN:
        return DEFAULT_CLIM_IN[(variable, units)]
    if mode == "fixed" and variable in DEFAULT_CLIM:
        return DEFAULT_CLIM[variable]
    return auto_clim(values)


LABEL_MAX = 60  # characters the main map's colour bar (350 px, 11 px font) shows whole


def label(variable: str, info) -> str:
    """'<long name> [<variable>] (<units>)' for a colorbar or an axis; a long name that would make it
    longer than :data:`LABEL_MAX` loses its bracketed remarks and what follows them (e.g. an interval
    bound's 'latent heat flux, upper bound [le_q95] (W m-2)'), so the units stay on screen."""
    meta = (info.variables or {}).get(variable, {}) if info is not None else {}
    name = meta.get("long_name") or variable
    units = meta.get("units") or ""
    tail = f" [{variable}] ({units})" if units else f" [{variable}]"
    if len(name) + len(tail) > LABEL_MAX:
        name = name.split(" (")[0]
    return name + tail


def units(variable: str, info) -> str:
    meta = (info.variables or {}).get(variable, {}) if info is not None else {}
    return meta.get("units") or ""


def coastline_colour(dark: bool) -> str:
    """Colour of the coastlines for the light (``dark=False``) or dark page theme."""
    return COASTLINE_COLOUR[bool(dark)]
