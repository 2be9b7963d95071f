"""What the user has selected, shared by every tab of one dashboard session."""

from __future__ import annotations

import datetime as dt

import param

from app.compute import AGGREGATIONS
from catalog.evaporation import LE_UNITS


class AppState(param.Parameterized):
    """Selections of one session. Tabs read and set these; none holds data."""

    product = param.String(default="", doc="catalog product shown on the map")
    variable = param.String(default="", doc="variable of the product")
    date = param.CalendarDate(default=dt.date(2018, 7, 1), doc="day shown (or inside the aggregate)")
    aggregation = param.Selector(default="day", objects=list(AGGREGATIONS), doc="time aggregation")
    period = param.Tuple(default=None, length=2, allow_None=True, doc="(start, end) for 'period'")
    x_range = param.Tuple(default=None, length=2, allow_None=True, doc="visible lon range (W, E)")
    y_range = param.Tuple(default=None, length=2, allow_None=True, doc="visible lat range (S, N)")
    pixel = param.Tuple(default=None, length=2, allow_None=True, doc="selected (lon, lat)")
    box = param.Tuple(default=None, length=4, allow_None=True, doc="selected (W, S, E, N)")
    site = param.Tuple(default=None, length=2, allow_None=True, doc="selected (network, site_id)")
    user = param.String(default="anonymous", doc="who is looking")
    cmap = param.String(default="", doc="colormap name ('' = the variable's default)")
    clim_mode = param.Selector(default="fixed", objects=["fixed", "auto", "typed"])
    clim = param.Tuple(default=None, length=2, allow_None=True, doc="typed colour limits (low, high)")
    compare = param.List(default=[], item_type=str, doc="products compared side by side")
    common_mask = param.Boolean(default=False, doc="only pixels valid in every compared product")
    basemap = param.Boolean(default=False, doc="web tiles under the maps (Web Mercator view)")
    projection = param.Selector(
        default="lonlat", objects=["lonlat", "equal_earth"], doc="Map tab: lon/lat or Equal Earth globe"
    )
    le_units = param.Selector(
        default=LE_UNITS[0], objects=list(LE_UNITS), doc="LE as W m-2 or as evaporation in mm d-1"
    )
    tab = param.String(default="Map", doc="title of the tab on screen (hidden tabs do not redraw)")
    message = param.String(default="", doc="last error or notice shown to the user")

    def view_bbox(self) -> tuple[float, float, float, float] | None:
        """(W, S, E, N) of the visible region, or None before the map has a view."""
        if self.x_range is None or self.y_range is None:
            return None
        return (self.x_range[0], self.y_range[0], self.x_range[1], self.y_range[1])
