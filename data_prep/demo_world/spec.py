"""Sizes of the demo world (``FULL``, ``SMALL``, ``FINE``), its seed and the globe's bounds."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

SEED = 2018_07_01
GLOBE = (-180.0, -90.0, 180.0, 90.0)  # W, S, E, N


@dataclass(frozen=True)
class DemoSpec:
    """Sizes of one demo world. ``FULL``, ``SMALL`` and ``FINE`` share names, seeds and equations."""

    label: str
    global_res: float  # deg, the cubes (global unless ``bbox`` says otherwise)
    period: tuple[str, str]  # inclusive dates of the cubes
    region: tuple[float, float, float, float]  # GSSM W, S, E, N
    gssm_res: float
    gssm_period: tuple[str, str]
    comparison_period: tuple[str, str]  # ESA CCI-like product
    smap_period: tuple[str, str]  # SMAP-like product (one granule per day; overlaps the GSSM month)
    cci_res: float
    n_towers: int
    n_towers_region: int
    n_stations: int
    n_stations_region: int
    year: int = 2018
    bbox: tuple[float, float, float, float] = GLOBE  # W, S, E, N of the cubes and the simulated cells
    satellite_products: bool = True  # the GSSM1km-, ESA CCI- and SMAP-like products (else cubes, stations)

    def dates(self, period: tuple[str, str]) -> pd.DatetimeIndex:
        return pd.date_range(period[0], period[1], freq="D").as_unit("ns")


FULL = DemoSpec(
    label="full",
    global_res=0.5,
    period=("2018-01-01", "2018-12-31"),
    region=(-105.0, 30.0, -85.0, 50.0),
    gssm_res=0.01,
    gssm_period=("2018-07-01", "2018-07-31"),
    comparison_period=("2018-06-01", "2018-08-31"),
    smap_period=("2018-07-01", "2018-07-31"),
    cci_res=0.5,
    n_towers=56,
    n_towers_region=8,
    n_stations=24,
    n_stations_region=8,
)
SMALL = DemoSpec(
    label="small",
    global_res=2.0,
    period=("2018-06-01", "2018-07-30"),
    region=(-99.0, 36.0, -95.0, 40.0),
    gssm_res=0.01,
    gssm_period=("2018-07-01", "2018-07-30"),
    comparison_period=("2018-07-01", "2018-07-30"),
    smap_period=("2018-07-01", "2018-07-30"),
    cci_res=2.0,
    n_towers=12,
    n_towers_region=3,
    n_stations=6,
    n_stations_region=3,
)


# Feature cubes of at least 500 × 500 px × 30 days for re-prediction benchmarks: 0.1° over 50° × 50°
# of Central and East Asia (97 % land), July only (the cells are still run over the whole year, spin-up
# included, and cut to the period). No 1 km or satellite products; towers and probes inside the box.
FINE = DemoSpec(
    label="fine",
    global_res=0.1,
    period=("2018-07-01", "2018-07-31"),
    region=(86.0, 50.0, 90.0, 54.0),
    gssm_res=0.01,
    gssm_period=("2018-07-01", "2018-07-31"),
    comparison_period=("2018-07-01", "2018-07-31"),
    smap_period=("2018-07-01", "2018-07-31"),
    cci_res=0.5,
    n_towers=40,
    n_towers_region=4,
    n_stations=8,
    n_stations_region=2,
    bbox=(60.0, 20.0, 110.0, 70.0),
    satellite_products=False,
)
