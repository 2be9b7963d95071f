"""A small synthetic training table with a known evaporative fraction (for fast emulator tests)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from models import features as F

IGBP = ("ENF", "GRA", "CRO", "DBF")


def synthetic_table(n_sites: int = 12, years=(2010, 2011, 2012), seed: int = 0) -> pd.DataFrame:
    """Monthly rows; EF = sigmoid(1.5 - 0.25 vpd + 0.4 precip); A from sw_in; raw = 0.8 × corrected."""
    rng = np.random.default_rng(seed)
    rows = []
    for s in range(n_sites):
        lat = float(np.linspace(-45, 65, n_sites)[s])
        igbp = IGBP[s % len(IGBP)]
        time = pd.date_range(f"{years[0]}-01-01", f"{years[-1]}-12-01", freq="MS")
        n = len(time)
        sw = np.clip(
            F.sw_in_pot(np.full(n, lat), time, time_step="month") * rng.uniform(0.4, 0.8, n), 5, None
        )
        ta = rng.normal(12, 8, n)
        vpd = np.clip(rng.gamma(2.0, 3.0, n), 0.1, None)
        precip = rng.gamma(1.5, 1.5, n)
        g = rng.normal(3, 2, n)
        rn = 0.65 * sw - 25 + rng.normal(0, 5, n)
        a = rn - g
        ef = 1 / (1 + np.exp(-(1.5 - 0.25 * vpd + 0.4 * precip)))
        le_c = ef * a + rng.normal(0, 3, n)
        h_c = a - le_c
        rows.append(
            pd.DataFrame(
                {
                    "site_id": f"XX-S{s:02d}",
                    "time": time,
                    "year": time.year,
                    "lat": lat,
                    "lon": float(rng.uniform(-100, 100)),
                    "igbp": float(F.IGBP_CODES[igbp]),
                    "igbp_name": igbp,
                    "ta": ta,
                    "sw_in": sw,
                    "lw_in": rng.normal(320, 30, n),
                    "vpd": vpd,
                    "precip": precip,
                    "ws": rng.gamma(3, 1, n),
                    "le_raw": 0.8 * le_c,
                    "h_raw": 0.8 * h_c,
                    "le_corr": le_c,
                    "h_corr": h_c,
                    "rn": rn,
                    "g": g,
                    "a": a,
                    "month": time.month.astype(float),
                    "sw_in_pot": F.sw_in_pot(np.full(n, lat), time, time_step="month"),
                }
            )
        )
    table = F.add_climatology(pd.concat(rows, ignore_index=True))
    table.attrs.update(source="synthetic test table", time_step="month", synthetic=True)
    return table


FAST = {"num_boost_round": 20, "params": {"min_data_in_leaf": 5}}
