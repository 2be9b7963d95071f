"""Meteorological seasons: DJF (December–February), MAM, JJA, SON, by calendar month of each stamp."""

from __future__ import annotations

import numpy as np
import pandas as pd

SEASONS = ("DJF", "MAM", "JJA", "SON")
_BY_MONTH = np.array(["DJF", "DJF", "MAM", "MAM", "MAM", "JJA", "JJA", "JJA", "SON", "SON", "SON", "DJF"])


def season_of(times) -> np.ndarray:
    """The season label of each time stamp (a December belongs to the DJF that follows it)."""
    months = pd.DatetimeIndex(np.asarray(times, dtype="datetime64[ns]")).month.to_numpy()
    return _BY_MONTH[months - 1]
