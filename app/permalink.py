"""Permalinks: the URL query holds the selections of an :class:`~app.state.AppState`.

Keys: ``product``, ``var``, ``date`` (YYYY-MM-DD), ``agg``, ``period`` (start~end), ``view``
(W,E,S,N), ``px`` (lon,lat), ``box`` (W,S,E,N), ``cmap``, ``clim`` (mode or mode:low,high),
``compare`` (names joined by ``~``), ``mask`` (1), ``basemap`` (1), ``proj`` (the Map tab's
projection: ``equal_earth``; ``lonlat`` is the default), ``le`` (LE units: ``mm_d`` for evaporation
in mm d-1; ``W_m2`` is the default).

A link is anyone's text. Reading one happens in two steps, neither of which raises:
:func:`decode` checks the syntax of every value (finite numbers, coordinates on the globe, real
dates, known names of options), :func:`check` checks the decoded values against the catalog (the
product exists, has the variable and covers the date and period). Each value that cannot be used
is left out, so the state keeps its default, and a :class:`Notice` says which setting was ignored
and why; the dashboard shows the notices in the page.
"""

from __future__ import annotations

import datetime as dt
import math
import unicodedata
from dataclasses import dataclass
from urllib.parse import urlencode

from app import styles
from app.state import AppState

KEYS = (
    "product",
    "var",
    "date",
    "agg",
    "period",
    "view",
    "px",
    "box",
    "cmap",
    "clim",
    "compare",
    "mask",
    "basemap",
    "proj",
    "le",
)
# URL values of the LE units (no spaces in links).
LE_UNITS_KEYS = {"W_m2": "W m-2", "mm_d": "mm d-1"}
MAX_VALUE_CHARS = 256  # longer values are not settings anyone wrote
MAX_SHOWN_CHARS = 60  # of a value quoted in a notice
MAX_COMPARED = 2
# A view may extend past the globe (a zoomed-out map), but not without end.
VIEW_MAX_LON, VIEW_MAX_LAT = 1080.0, 540.0
VIEW_MIN_SPAN = 1e-6  # degrees
CLIM_MAX_ABS = 1e15
SAFE_CHARS = ",~:"  # left unescaped in the URL (they separate values)


@dataclass(frozen=True)
class Notice:
    """One link setting that was not applied as written."""

    key: str
    value: str
    reason: str
    action: str = "ignored"

    def text(self) -> str:
        """Plain text (not escaped: the page shows it as text, never as HTML or Markdown)."""
        if not self.key:
            return f"Link settings {self.action}: {self.reason}"
        return f"Link setting {shown(self.key, 30)}={shown(self.value)} {self.action}: {self.reason}"


def shown(text: str, limit: int = MAX_SHOWN_CHARS) -> str:
    """``text`` made fit to quote: control and other invisible characters replaced by U+FFFD,
    cut to ``limit`` characters with the full length said."""
    text = str(text)
    clean = "".join("\ufffd" if unicodedata.category(c)[0] == "C" else c for c in text[: limit + 1])
    if len(text) > limit:
        return f"{clean[:limit]}… ({len(text):,} characters)"
    return clean


def _floats(text: str, n: int) -> tuple[float, ...] | None:
    """``n`` finite comma-separated numbers, else None."""
    parts = text.split(",")
    if len(parts) != n:
        return None
    try:
        values = tuple(float(v) for v in parts)
    except ValueError:
        return None
    return values if all(math.isfinite(v) for v in values) else None


def _fmt(values, digits: int = 4) -> str:
    return ",".join(f"{float(v):.{digits}f}".rstrip("0").rstrip(".") for v in values)


def to_query(state: AppState) -> dict[str, str]:
    """URL query parameters for the current state (empty values left out)."""
    q = {
        "product": state.product,
        "var": state.variable,
        "date": state.date.isoformat() if state.date else "",
        "agg": state.aggregation,
    }
    if state.aggregation == "period" and state.period:
        q["period"] = "~".join(d.isoformat() if hasattr(d, "isoformat") else str(d) for d in state.period)
    if state.x_range and state.y_range:
        q["view"] = _fmt((*state.x_range, *state.y_range))
    if state.pixel:
        q["px"] = _fmt(state.pixel)
    if state.box:
        q["box"] = _fmt(state.box)
    if state.cmap:
        q["cmap"] = state.cmap
    if state.clim_mode == "typed" and state.clim:
        q["clim"] = "typed:" + _fmt(state.clim, 6)
    elif state.clim_mode != "fixed":
        q["clim"] = state.clim_mode
    if state.compare:
        q["compare"] = "~".join(state.compare)
    if state.common_mask:
        q["mask"] = "1"
    if state.basemap:
        q["basemap"] = "1"
    if state.projection != AppState.param.projection.default:
        q["proj"] = state.projection
    if state.le_units != AppState.param.le_units.default:
        q["le"] = next(k for k, v in LE_UNITS_KEYS.items() if v == state.le_units)
    return {k: v for k, v in q.items() if v}


def query_string(query: dict[str, str]) -> str:
    """``?k=v&…`` with every value percent-encoded (``,~:`` kept readable)."""
    return "?" + urlencode(query, safe=SAFE_CHARS) if query else ""


def _date(text: str) -> dt.date | None:
    """A calendar date written ``YYYY-MM-DD`` (an ISO date-time is read as its date)."""
    text = text.strip()
    try:
        if len(text) == 10:
            return dt.date.fromisoformat(text)
        if len(text) > 10 and text[10] in "T ":
            return dt.datetime.fromisoformat(text).date()
    except ValueError:
        return None
    return None


def _lonlat_problem(lon: float, lat: float) -> str | None:
    if not -180 <= lon <= 180:
        return f"longitude {lon:g} is outside −180…180"
    if not -90 <= lat <= 90:
        return f"latitude {lat:g} is outside −90…90"
    return None


def _extent_problem(w: float, s: float, e: float, n: float, what: str) -> str | None:
    if w > e or s > n:
        return f"the {what} is reversed (west > east or south > north)"
    if w == e or s == n:
        return f"the {what} is empty (zero width or height)"
    return None


def decode(args: dict[str, str]) -> tuple[dict, list[Notice]]:
    """State updates decoded from URL query values, and a notice for every value left out."""
    out: dict = {}
    notices: list[Notice] = []

    def bad(key, reason):
        notices.append(Notice(key, args[key], reason))

    for key in args:
        if key not in KEYS:
            notices.append(Notice(key, args[key], "not a FluxLens link setting"))
    args = {k: str(v) for k, v in args.items() if k in KEYS}
    for key in list(args):
        if len(args[key]) > MAX_VALUE_CHARS:
            bad(key, f"longer than {MAX_VALUE_CHARS} characters")
            del args[key]
        elif any(unicodedata.category(c)[0] == "C" for c in args[key]):
            bad(key, "contains control characters")
            del args[key]

    if args.get("product"):
        out["product"] = args["product"]
    if args.get("var"):
        out["variable"] = args["var"]
    if args.get("date"):
        day = _date(args["date"])
        if day is None:
            bad("date", "not a date (YYYY-MM-DD)")
        else:
            out["date"] = day
    if args.get("agg"):
        if args["agg"] in AppState.param.aggregation.objects:
            out["aggregation"] = args["agg"]
        else:
            bad("agg", f"not one of {', '.join(AppState.param.aggregation.objects)}")
    if args.get("period"):
        parts = [_date(p) for p in args["period"].split("~")]
        if len(parts) != 2 or not all(parts):
            bad("period", "not two dates start~end (YYYY-MM-DD~YYYY-MM-DD)")
        else:
            if parts[0] > parts[1]:
                notices.append(Notice("period", args["period"], "start and end swapped", "reordered"))
            out["period"] = tuple(sorted(parts))
    if args.get("view"):
        view = _floats(args["view"], 4)
        if view is None:
            bad("view", "not four finite numbers W,E,S,N")
        else:
            w, e, s, n = view
            problem = _extent_problem(w, s, e, n, "view")
            if problem is None and (max(abs(w), abs(e)) > VIEW_MAX_LON or max(abs(s), abs(n)) > VIEW_MAX_LAT):
                problem = f"farther than ±{VIEW_MAX_LON:g}° lon / ±{VIEW_MAX_LAT:g}° lat"
            if problem is None and (e - w < VIEW_MIN_SPAN or n - s < VIEW_MIN_SPAN):
                problem = f"narrower than {VIEW_MIN_SPAN:g}°"
            if problem:
                bad("view", problem)
            else:
                out["x_range"], out["y_range"] = (w, e), (s, n)
    if args.get("px"):
        px = _floats(args["px"], 2)
        problem = "not two finite numbers lon,lat" if px is None else _lonlat_problem(*px)
        if problem:
            bad("px", problem)
        else:
            out["pixel"] = px
    if args.get("box"):
        box = _floats(args["box"], 4)
        if box is None:
            problem = "not four finite numbers W,S,E,N"
        else:
            problem = _lonlat_problem(box[0], box[1]) or _lonlat_problem(box[2], box[3])
            problem = problem or _extent_problem(*box, "box")
        if problem:
            bad("box", problem)
        else:
            out["box"] = box
    if args.get("cmap"):
        if args["cmap"] in styles.COLORMAPS:
            out["cmap"] = args["cmap"]
        else:
            bad("cmap", f"unknown colormap (choose one of {', '.join(styles.COLORMAPS)})")
    clim = args.get("clim", "")
    if clim.startswith("typed:"):
        lim = _floats(clim[6:], 2)
        if lim is None:
            bad("clim", "typed limits must be two finite numbers low,high")
        elif not lim[0] < lim[1]:
            bad("clim", "the low limit is not below the high limit")
        elif max(abs(v) for v in lim) > CLIM_MAX_ABS:
            bad("clim", f"limits beyond ±{CLIM_MAX_ABS:g}")
        else:
            out["clim_mode"], out["clim"] = "typed", lim
    elif clim in ("auto", "fixed"):
        out["clim_mode"] = clim
    elif clim:
        bad("clim", "not auto, fixed or typed:low,high")
    if args.get("compare"):
        names = [p for p in args["compare"].split("~") if p]
        if len(names) > MAX_COMPARED:
            notices.append(
                Notice("compare", args["compare"], f"only {MAX_COMPARED} products are compared", "shortened")
            )
        out["compare"] = names[:MAX_COMPARED]
    if args.get("proj"):
        if args["proj"] in AppState.param.projection.objects:
            out["projection"] = args["proj"]
        else:
            bad("proj", f"not one of {', '.join(AppState.param.projection.objects)}")
    if args.get("le"):
        if args["le"] in LE_UNITS_KEYS:
            out["le_units"] = LE_UNITS_KEYS[args["le"]]
        else:
            bad("le", f"not one of {', '.join(LE_UNITS_KEYS)} (LE in W m-2 or mm d-1)")
    for key, name in (("mask", "common_mask"), ("basemap", "basemap")):
        if key in args:
            if args[key] in ("1", "0"):
                out[name] = args[key] == "1"
            else:
                bad(key, "not 1 (on) or 0 (off)")
    return out, notices


def from_query(args: dict[str, str]) -> dict:
    """State updates decoded from URL query values (invalid entries are left out)."""
    return decode(args)[0]


def check(
    updates: dict,
    products: list,
    *,
    default_product: str,
    variables_of,
    query: dict[str, str] | None = None,
    tiles: bool = True,
) -> tuple[dict, list[Notice]]:
    """Decoded ``updates`` checked against the catalog's ``products`` (ProductInfo list): an
    unknown product falls back to ``default_product``, a variable it lacks (``variables_of(info)``
    lists what it can show) or a date or period outside its time range are left out (a period
    that overlaps the range is clipped to it), compared products must exist and hold the variable,
    the basemap needs a tile server (``tiles``). ``query`` holds the raw values quoted in notices."""
    query = query or {}
    out = dict(updates)
    notices: list[Notice] = []
    by_name = {p.name: p for p in products}

    def drop(name, key, reason, action="ignored"):
        value = query.get(key, str(out.get(name, "")))
        notices.append(Notice(key, value, reason, action))
        out.pop(name, None)

    if "product" in out and out["product"] not in by_name:
        drop("product", "product", "no such product in the catalog")
    product = by_name.get(out.get("product", default_product))
    if product is None:  # an empty catalog: nothing to check against
        for name, key in (("variable", "var"), ("compare", "compare")):
            if name in out:
                drop(name, key, "the catalog has no products")
        return out, notices

    variables = list(variables_of(product))
    if "variable" in out and out["variable"] not in variables:
        drop("variable", "var", f"{product.name} has no such variable (has {', '.join(variables)})")
    variable = out.get("variable", variables[0] if variables else "")

    start, end = (dt.date.fromisoformat(str(t)[:10]) for t in (product.time_start, product.time_end))
    span = f"{product.name} covers {start:%Y-%m-%d} … {end:%Y-%m-%d}"
    if "date" in out and not start <= out["date"] <= end:
        drop("date", "date", f"outside the product's time range ({span})")
    if "period" in out:
        p0, p1 = out["period"]
        if p1 < start or p0 > end:
            drop("period", "period", f"outside the product's time range ({span})")
        elif p0 < start or p1 > end:
            out["period"] = (max(p0, start), min(p1, end))
            clipped = "clipped to the product's time range"
            notices.append(Notice("period", query.get("period", ""), span, clipped))

    if "compare" in out:
        holding = {p.name for p in products if variable in p.variables}
        unknown = [n for n in out["compare"] if n not in holding]
        if unknown:
            notices.append(
                Notice(
                    "compare",
                    "~".join(unknown),
                    f"not a product with {variable!r}"
                    if len(unknown) == 1
                    else f"not products with {variable!r}",
                )
            )
            out["compare"] = [n for n in out["compare"] if n in holding]
            if not out["compare"]:
                del out["compare"]
    if out.get("basemap") and not tiles:
        drop("basemap", "basemap", "this server offers no web tiles")
    return out, notices


def session_query() -> dict[str, str]:
    """Query arguments of the current Panel session as strings (bytes that are not UTF-8 become
    U+FFFD; of a repeated key the first value counts)."""
    import panel as pn

    args = pn.state.session_args or {}
    return {
        str(k): (v[0].decode("utf-8", errors="replace") if isinstance(v[0], bytes) else str(v[0]))
        for k, v in args.items()
        if v
    }
