"""Daily weather at land points: clouds, insolation (FAO-56), temperature, precipitation, vapour
pressure deficit, incoming longwave and wind, from the static fields and space-time noise."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import expit, ndtr, ndtri

from data_prep.demo_world.noise import daily_noise
from data_prep.demo_world.static import StaticFields

SIGMA = 5.670374419e-8  # Stefan–Boltzmann, W m-2 K-4
SOLAR_CONSTANT = 1361.0  # W m-2

_MONSOON_LAT = [0, 5, 12, 20, 30, 40, 90]
_MONSOON = [0.0, 0.3, 0.8, 0.9, 0.4, 0.25, 0.1]


def toa_shortwave(lat, doy, dtype=np.float64) -> np.ndarray:
    """Daily mean top-of-atmosphere insolation (W m-2), FAO-56 eqs. 21–25; shape (doy, lat).

    Computed per distinct latitude and cast to ``dtype`` before being spread to the points.
    """
    unique, inverse = np.unique(np.asarray(lat, float), return_inverse=True)
    return _toa_shortwave(unique, doy).astype(dtype, copy=False)[:, inverse]


def _toa_shortwave(lat, doy) -> np.ndarray:
    phi = np.deg2rad(np.asarray(lat, float))[None, :]
    j = np.asarray(doy, float)[:, None]
    decl = 0.409 * np.sin(2 * np.pi * j / 365 - 1.39)
    dr = 1 + 0.033 * np.cos(2 * np.pi * j / 365)
    ws = np.arccos(np.clip(-np.tan(phi) * np.tan(decl), -1, 1))
    return (
        SOLAR_CONSTANT
        / np.pi
        * dr
        * (ws * np.sin(phi) * np.sin(decl) + np.cos(phi) * np.cos(decl) * np.sin(ws))
    )


def saturation_vapour_pressure(ta) -> np.ndarray:
    """Magnus formula, hPa over water, ``ta`` in degC."""
    return 6.112 * np.exp(17.62 * ta / (243.12 + ta))


def weather(static: StaticFields, lat, lon, year: int) -> tuple[pd.DatetimeIndex, dict, dict]:
    """Daily forcing for ``year`` at points; returns time, static values at points, series."""
    time = pd.date_range(f"{year}-01-01", f"{year}-12-31", freq="D").as_unit("ns")
    n = time.size
    doy = time.day_of_year.to_numpy()
    at = {k: static.sample(k, lat, lon).astype(np.float32) for k in static.fields if k != "igbp"}
    at["igbp"] = static.sample("igbp", lat, lon, nearest=True).astype(np.int16)
    hemi = np.where(np.asarray(lat) >= 0, 1.0, -1.0).astype(np.float32)
    season = np.cos(2 * np.pi * (doy[:, None] - 200) / 365.25).astype(np.float32) * hemi[None, :]

    t_seas = at["t_ann"][None, :] + at["t_amp"][None, :] * season
    sd_t = 1.0 + 2.5 * np.clip(np.abs(lat) / 50, 0, 1.2).astype(np.float32)
    ta = t_seas + sd_t[None, :] * daily_noise("ta", lat, lon, n, 10.0, 0.75)
    del t_seas  # (time, point) temporaries are freed as soon as they are used: they set the peak memory

    monsoon = np.interp(np.abs(lat), _MONSOON_LAT, _MONSOON).astype(np.float32)
    p_seas = at["precip_ann"][None, :] * np.clip(1 + monsoon[None, :] * season, 0.05, None)
    cloud_clim = 0.12 + 0.62 * (1 - np.exp(-p_seas / 3.0))
    z_cloud = daily_noise("cloud", lat, lon, n, 6.0, 0.55)
    cloud = expit(np.log(cloud_clim / (1 - cloud_clim)) + 1.3 * z_cloud).astype(np.float32, copy=False)
    del cloud_clim
    z_storm = 0.65 * z_cloud + 0.76 * daily_noise("storm", lat, lon, n, 2.5, 0.25)
    del z_cloud
    wet_freq = np.clip(0.06 + 0.55 * (1 - np.exp(-p_seas / 2.5)), 0.03, 0.8)
    q = ndtri(1 - wet_freq)
    excess_mean = np.exp(-0.5 * q**2) / np.sqrt(2 * np.pi) / (1 - ndtr(q)) - q
    precip = np.where(z_storm > q, p_seas / wet_freq * (z_storm - q) / excess_mean, 0.0)
    precip = np.minimum(precip, 150.0).astype(np.float32, copy=False)
    del z_storm, wet_freq, q, excess_mean

    sw_in = toa_shortwave(lat, doy, np.float32) * (0.76 - 0.52 * cloud)
    sw_in *= 1 + at["elevation"][None, :] / 25000
    rh = np.clip(0.15 + 0.45 * cloud + 0.3 * (1 - np.exp(-p_seas / 2.0)), 0.08, 0.98)
    del p_seas
    es = saturation_vapour_pressure(ta)
    vpd = (es * (1 - rh)).astype(np.float32, copy=False)
    tk = ta + 273.15
    # FAO-56 eq. 39 net longwave at surface temperature = air temperature, with Rs/Rso from clouds
    emission = SIGMA * tk**4
    cloud_factor = np.clip(1.0 - 0.92 * cloud, 0.05, 1.0)
    lw_in = (emission * (1 - (0.34 - 0.14 * np.sqrt(es * rh / 10)) * cloud_factor)).astype(
        np.float32, copy=False
    )
    del tk, emission, cloud_factor, es, rh
    ws = at["windiness"][None, :] * np.exp(0.35 * daily_noise("wind", lat, lon, n, 8.0, 0.5) - 0.06)
    series = {
        "sw_in": sw_in,
        "lw_in": lw_in,
        "ta": ta.astype(np.float32, copy=False),
        "vpd": vpd,
        "precip": precip,
        "ws": ws.astype(np.float32, copy=False),
        "cloud": cloud,
    }
    return time, at, series
