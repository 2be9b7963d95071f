"""Matched LE pairs as evaporation (mm d-1), converted with the tower's own air temperature.

E = LE · 86400 / λ(T), λ = 2.501 − 0.002361 T MJ kg-1 (Harrison 1963; FAO-56 Annex 3 eq. 3-1; see
:mod:`catalog.evaporation`). T is the tower's daily mean TA (°C) on the pair's day, or its monthly
mean for monthly pairs; 20 °C where the tower has none. Observation and product of a pair are
converted with the same T, so a metric in mm d-1 compares the two fluxes, not two temperatures.
Metrics are computed again on the converted pairs: bias and RMSE are not a fixed multiple of their
W m-2 values, because λ varies from day to day.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from catalog import evaporation
from validation import matching
from validation.analyses import SiteMatch


def tower_ta(table: pd.DataFrame | None, *, min_coverage: float = 0.5) -> pd.Series | None:
    """The tower's daily mean air temperature (°C) from its ``TA`` column, None without one."""
    if table is None or "TA" not in table.columns or not table["TA"].notna().any():
        return None
    series = pd.Series(table["TA"].astype("float64").to_numpy(), index=pd.DatetimeIndex(table["time"]))
    return matching.to_daily(series, min_coverage=min_coverage)


def ta_on(index, ta: pd.Series | None, time_step: str = "day") -> np.ndarray | None:
    """``ta`` on the stamps ``index`` (monthly means for ``time_step`` "month"); NaN where missing."""
    if ta is None:
        return None
    if time_step == "month":
        ta = ta.resample("MS").mean()
    return ta.reindex(pd.DatetimeIndex(index).normalize()).to_numpy()


def match_in_units(match: SiteMatch, units: str, *, min_coverage: float = 0.5) -> SiteMatch:
    """``match`` with its LE pairs in ``units``: unchanged for W m-2 or another variable; for mm d-1
    both columns converted with the tower's TA on each pair's stamp (see the module docstring). The
    station table (energy-balance closure, in W m-2) is left as it is."""
    evaporation.check_units(units)
    if match.variable != "le" or units == evaporation.W_M2:
        return match
    pairs = match.pairs
    ta = ta_on(pairs.index, tower_ta(match.station_table, min_coverage=min_coverage), match.time_step)
    converted = pairs.copy()
    for column in ("obs", "pred"):
        converted[column] = evaporation.le_to_mm_per_day(pairs[column].to_numpy(dtype="float64"), ta)
    return dataclasses.replace(match, pairs=converted)
