"""Permalinks: the URL query holds the selections of an :class:`~app.state.AppState`.

Keys: ``product``, ``var``, ``date`` (YYYY-MM-DD), ``agg``, ``period`` (start~end), ``view``
(W,E,S,N), ``px`` (lon,lat), ``box`` (W,S,E,N), ``cmap``, ``clim`` (mode or mode:low,high),
``compare`` (names joined by ``~``), ``mask`` (1).
"""

from __future__ import annotations

import datetime as dt

from app.state import AppState


def _floats(text: str, n: int) -> tuple[float, ...] | None:
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        return None
    return values if len(values) == n else None


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
    return {k: v for k, v in q.items() if v}


def _date(text: str) -> dt.date | None:
    try:
        return dt.date.fromisoformat(text[:10])
    except ValueError:
        return None


def from_query(args: dict[str, str]) -> dict:
    """State updates decoded from URL query values (invalid entries are ignored)."""
    out: dict = {}
    if args.get("product"):
        out["product"] = args["product"]
    if args.get("var"):
        out["variable"] = args["var"]
    if args.get("date") and _date(args["date"]):
        out["date"] = _date(args["date"])
    if args.get("agg") in AppState.param.aggregation.objects:
        out["aggregation"] = args["agg"]
    if args.get("period"):
        parts = [_date(p) for p in args["period"].split("~")]
        if len(parts) == 2 and all(parts):
            out["period"] = tuple(sorted(parts))
    view = _floats(args.get("view", ""), 4)
    if view and view[0] < view[1] and view[2] < view[3]:
        out["x_range"], out["y_range"] = (view[0], view[1]), (view[2], view[3])
    px = _floats(args.get("px", ""), 2)
    if px:
        out["pixel"] = px
    box = _floats(args.get("box", ""), 4)
    if box and box[0] < box[2] and box[1] < box[3]:
        out["box"] = box
    if args.get("cmap"):
        out["cmap"] = args["cmap"]
    clim = args.get("clim", "")
    if clim.startswith("typed:"):
        lim = _floats(clim[6:], 2)
        if lim and lim[0] < lim[1]:
            out["clim_mode"], out["clim"] = "typed", lim
    elif clim in ("auto", "fixed"):
        out["clim_mode"] = clim
    if args.get("compare"):
        out["compare"] = [p for p in args["compare"].split("~") if p]
    if args.get("mask") == "1":
        out["common_mask"] = True
    if args.get("basemap") == "1":
        out["basemap"] = True
    return out


def session_query() -> dict[str, str]:
    """Query arguments of the current Panel session as strings."""
    import panel as pn

    args = pn.state.session_args or {}
    return {k: (v[0].decode() if isinstance(v[0], bytes) else str(v[0])) for k, v in args.items() if v}
