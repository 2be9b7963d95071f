"""The emulator's predictors: names, units, where each comes from and how it is derived.

This module is the one place that declares a feature. A model saves the names of the features it
was trained on (in this order) in its ``meta.json``; station training tables and regional feature
cubes are both turned into the same matrix by :func:`feature_matrix`.

Sources of a feature:

- ``station``: a column of the FLUXNET station table (tower meteorology), or in the regional cubes
  the variable ``cube_variable`` of the product playing ``cube_role``;
- ``cube``: only in gridded products (sampled at the tower pixel for training);
- ``derived``: computed from coordinates (latitude, time) the same way for towers and pixels;
- ``climatology``: the mean of a station/forcing variable over the whole record of the site (towers)
  or of the forcing product at the pixel (cubes). They describe the site's climate (humid or dry),
  which the monthly weather alone does not, and help most where sites are held out.

LightGBM is invariant to monotone transforms of a predictor, so features enter untransformed in
their physical units; the only transforms are the derivations listed in ``derivation``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from catalog.igbp import IGBP_CODES, IGBP_NAMES

SOLAR_CONSTANT = 1367.0  # W m-2 (FAO-56 uses 0.0820 MJ m-2 min-1 = 1367 W m-2)


@dataclass(frozen=True)
class FeatureSpec:
    """One predictor of the emulator."""

    name: str
    units: str
    long_name: str
    source: str  # "station" | "cube" | "derived"
    station_column: str | None = None  # column of the canonical station table
    cube_role: str | None = None  # "forcing" | "static" | "ssm" | "radiation"
    cube_variable: str | None = None
    categorical: bool = False
    derivation: str = "none"

    def to_dict(self) -> dict:
        return asdict(self)


FEATURES: dict[str, FeatureSpec] = {
    spec.name: spec
    for spec in (
        FeatureSpec("ta", "degC", "air temperature", "station", "TA", "forcing", "ta"),
        FeatureSpec("sw_in", "W m-2", "incoming shortwave radiation", "station", "SW_IN", "forcing", "sw_in"),
        FeatureSpec("lw_in", "W m-2", "incoming longwave radiation", "station", "LW_IN", "forcing", "lw_in"),
        FeatureSpec("vpd", "hPa", "vapour pressure deficit", "station", "VPD", "forcing", "vpd"),
        FeatureSpec("precip", "mm d-1", "precipitation", "station", "P", "forcing", "precip"),
        FeatureSpec("ws", "m s-1", "wind speed", "station", "WS", "forcing", "ws"),
        FeatureSpec(
            "a",
            "W m-2",
            "available energy Rn - G",
            "station",
            None,
            "radiation",
            None,
            derivation="NETRAD - G (towers); rn - g (radiation product) or the emulator's A model",
        ),
        FeatureSpec("lai", "m2 m-2", "leaf area index", "cube", None, "forcing", "lai"),
        FeatureSpec("ndvi", "1", "normalised difference vegetation index", "cube", None, "forcing", "ndvi"),
        FeatureSpec("ssm", "m3 m-3", "surface soil moisture", "cube", None, "ssm", "ssm"),
        FeatureSpec("elevation", "m", "elevation", "cube", None, "static", "elevation"),
        FeatureSpec(
            "igbp",
            "1",
            "IGBP land-cover class code (1-17)",
            "station",
            None,
            "static",
            "igbp",
            categorical=True,
            derivation="site IGBP class name mapped to its MODIS code",
        ),
        FeatureSpec("lat", "degrees_north", "latitude", "derived", derivation="site / pixel-centre latitude"),
        FeatureSpec("month", "1", "month of the year (1-12)", "derived", derivation="calendar month of time"),
        FeatureSpec(
            "sw_in_pot",
            "W m-2",
            "potential (top-of-atmosphere) shortwave radiation, daily mean",
            "derived",
            derivation="FAO-56 eq. 21 extraterrestrial radiation from latitude and day of year "
            "(monthly steps: mean over the month's days)",
        ),
        FeatureSpec(
            "precip_clim",
            "mm d-1",
            "mean precipitation over the record",
            "climatology",
            derivation="mean of precip over the site's / forcing product's record",
        ),
        FeatureSpec(
            "vpd_clim",
            "hPa",
            "mean vapour pressure deficit over the record",
            "climatology",
            derivation="mean of vpd over the record",
        ),
        FeatureSpec(
            "ta_clim",
            "degC",
            "mean air temperature over the record",
            "climatology",
            derivation="mean of ta over the record",
        ),
        FeatureSpec(
            "sw_in_clim",
            "W m-2",
            "mean incoming shortwave over the record",
            "climatology",
            derivation="mean of sw_in over the record",
        ),
        FeatureSpec(
            "dryness",
            "1",
            "radiative dryness sw_in_clim / (L · precip_clim + 1 W m-2)",
            "climatology",
            derivation="sw_in_clim / (28.36 W m-2 per mm d-1 × precip_clim + 1)",
        ),
    )
}
# Climatology features: name → the variable averaged (``dryness`` is derived from two of them).
CLIMATOLOGY: dict[str, str] = {
    "precip_clim": "precip",
    "vpd_clim": "vpd",
    "ta_clim": "ta",
    "sw_in_clim": "sw_in",
}
LATENT_HEAT_MM_DAY = 28.36  # W m-2 carried away by evaporating 1 mm d-1 (lambda = 2.45 MJ kg-1)

# Tower meteorology and coordinates only: what the FLUXNET files provide at every site.
FLUXNET_FEATURES: tuple[str, ...] = (
    "ta",
    "sw_in",
    "lw_in",
    "vpd",
    "precip",
    "ws",
    "a",
    "igbp",
    "lat",
    "month",
    "sw_in_pot",
    "precip_clim",
    "vpd_clim",
    "ta_clim",
    "sw_in_clim",
    "dryness",
)
# The demo world adds vegetation, soil moisture and elevation from its feature cubes.
DEMO_FEATURES: tuple[str, ...] = FLUXNET_FEATURES + ("lai", "ndvi", "ssm", "elevation")


def spec(name: str) -> FeatureSpec:
    """The declared feature ``name``; KeyError names the unknown feature."""
    try:
        return FEATURES[name]
    except KeyError:
        raise KeyError(f"unknown feature {name!r}; declared: {sorted(FEATURES)}") from None


def cube_variable_text(variable: str) -> str:
    """A cube variable with what it is, e.g. ``"ta (air temperature, degC)"`` (for messages)."""
    for s in FEATURES.values():
        if s.cube_variable == variable:
            return f"{variable} ({s.long_name}, {s.units})"
    return {"rn": "rn (net radiation, W m-2)", "g": "g (ground heat flux, W m-2)"}.get(variable, variable)


def available_energy_features(features: tuple[str, ...] | list[str]) -> list[str]:
    """The features of the available-energy (A) model: the EF features without A itself."""
    return [f for f in features if f != "a"]


def categorical_indices(features: list[str] | tuple[str, ...]) -> list[int]:
    """Column indices of the categorical features (for LightGBM ``categorical_feature``)."""
    return [i for i, f in enumerate(features) if spec(f).categorical]


def igbp_code(names) -> np.ndarray:
    """IGBP class names (e.g. ``"ENF"``) or codes → float codes 1-17; unknown/missing → NaN."""
    out = []
    for v in np.asarray(names, dtype=object).ravel():
        if isinstance(v, str):
            out.append(float(IGBP_CODES.get(v.strip().upper(), np.nan)))
        elif v is None or (isinstance(v, float) and np.isnan(v)):
            out.append(np.nan)
        else:
            code = float(v)
            out.append(code if code in IGBP_NAMES else np.nan)
    return np.asarray(out, dtype=float)


def daily_sw_in_pot(lat_deg, doy) -> np.ndarray:
    """Daily mean extraterrestrial shortwave radiation on a horizontal surface, W m-2.

    FAO-56 (Allen et al. 1998) eqs. 21-25: Ra = Gsc/pi * dr * (ws sin(phi) sin(delta)
    + cos(phi) cos(delta) sin(ws)), dr = 1 + 0.033 cos(2 pi J / 365), delta = 0.409 sin(2 pi J / 365
    - 1.39), ws = arccos(-tan(phi) tan(delta)) clipped to [0, pi] (polar day / night).
    """
    phi = np.deg2rad(np.asarray(lat_deg, dtype=float))
    j = np.asarray(doy, dtype=float)
    dr = 1.0 + 0.033 * np.cos(2.0 * np.pi * j / 365.0)
    delta = 0.409 * np.sin(2.0 * np.pi * j / 365.0 - 1.39)
    ws = np.arccos(np.clip(-np.tan(phi) * np.tan(delta), -1.0, 1.0))
    ra = (
        SOLAR_CONSTANT
        / np.pi
        * dr
        * (ws * np.sin(phi) * np.sin(delta) + np.cos(phi) * np.cos(delta) * np.sin(ws))
    )
    return np.maximum(ra, 0.0)


def sw_in_pot(lat_deg, time, *, time_step: str = "day") -> np.ndarray:
    """Potential shortwave for each (lat, time) pair; monthly steps average over the month's days."""
    lat = np.asarray(lat_deg, dtype=float)
    t = pd.DatetimeIndex(np.asarray(time, dtype="datetime64[ns]").ravel())
    if time_step == "day":
        return daily_sw_in_pot(lat, t.day_of_year.to_numpy())
    if time_step != "month":
        raise ValueError(f"time_step must be 'day' or 'month', not {time_step!r}")
    start = t.to_period("M").to_timestamp()
    doy0 = start.day_of_year.to_numpy()
    ndays = start.days_in_month.to_numpy()
    total = np.zeros(np.broadcast_shapes(lat.shape, doy0.shape))
    for k in range(31):
        inside = k < ndays
        total += np.where(inside, daily_sw_in_pot(lat, doy0 + k), 0.0)
    return total / ndays


def add_climatology(table: pd.DataFrame, by: str = "site_id") -> pd.DataFrame:
    """Add the climatology features: per-``by`` record means of precip, vpd, ta, sw_in, and dryness."""
    groups = table.groupby(by, sort=False)
    for name, var in CLIMATOLOGY.items():
        table[name] = groups[var].transform("mean") if var in table else np.nan
    table["dryness"] = dryness(table["sw_in_clim"], table["precip_clim"])
    return table


def dryness(sw_in_clim, precip_clim):
    """Radiative dryness: mean shortwave over the energy that mean precipitation could evaporate."""
    return sw_in_clim / (LATENT_HEAT_MM_DAY * precip_clim + 1.0)


def feature_matrix(table: pd.DataFrame, features: list[str] | tuple[str, ...]) -> np.ndarray:
    """The float64 matrix (rows × features, in this order) from a table with one column per feature."""
    missing = [f for f in features if f not in table.columns]
    if missing:
        raise KeyError(f"table lacks feature columns {missing}")
    return np.column_stack([table[f].to_numpy(dtype=float, na_value=np.nan) for f in features])
