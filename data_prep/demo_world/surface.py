"""The land-surface model at points: degree-day snow, a 0–5 cm soil-moisture bucket over a root
zone, vegetation (LAI, NDVI) and a surface energy balance that closes exactly (rn − g = le + h)."""

from __future__ import annotations

import numpy as np
from scipy.special import expit

from data_prep.demo_world.grid import quantize
from data_prep.demo_world.weather import SIGMA

LE_TO_MM = 86400.0 / 2.45e6  # W m-2 of LE → mm d-1 of evaporation
SURFACE_LAYER_MM = 50.0  # 0–5 cm
SPIN_UP_FROM = 243  # day index (1 September) from which the spin-up run starts

# Per IGBP class: maximum LAI, evergreen share of it, snow-free albedo, tree cover.
_LAI_MAX = np.array([0, 4.5, 5.5, 3.5, 5.0, 5.0, 2.0, 1.0, 2.5, 2.0, 2.2, 3.0, 3.6, 1.0, 3.0, 0.0, 0.1])
_EVERGREEN = np.array([0, 0.75, 0.9, 0.15, 0.15, 0.45, 0.5, 0.35, 0.4, 0.25, 0.15, 0.3, 0.05, 0.2, 0.1, 0, 0])
_ALBEDO = np.array(
    [0.2, 0.12, 0.13, 0.14, 0.16, 0.15, 0.17, 0.22, 0.16, 0.19, 0.2, 0.14, 0.19, 0.18, 0.18, 0.75, 0.3]
)
_TREE = np.array([0, 0.9, 0.95, 0.85, 0.85, 0.85, 0.2, 0.05, 0.45, 0.2, 0.02, 0.1, 0.0, 0.05, 0.2, 0, 0])


def land_surface(at: dict, series: dict) -> dict:
    """Run the snow, bucket, vegetation and energy-balance model over the year (float32).

    The state starts from climatology on ``SPIN_UP_FROM`` (day of year) and runs to the end of the
    year once; the kept run starts on 1 January from that end state.
    """
    f4 = np.float32
    igbp = at["igbp"]
    lai_max = _LAI_MAX[igbp].astype(f4)
    lai_min = lai_max * _EVERGREEN[igbp].astype(f4)
    albedo_veg, tree = _ALBEDO[igbp].astype(f4), _TREE[igbp].astype(f4)
    sat = at["theta_sat"].astype(f4)
    fc, wp = 0.72 * sat, 0.2 * sat
    ice = igbp == 15
    ta, sw, lw, precip, cloud = (series[k] for k in ("ta", "sw_in", "lw_in", "precip", "cloud"))
    n_days, n = ta.shape

    wet0 = np.clip(at["aridity"], 0, 1).astype(f4)
    theta = wp + (fc - wp) * wet0
    theta_rz, beta_root = theta.copy(), wet0.copy()
    swe = np.where(at["t_ann"] < 0, -10.0 * at["t_ann"], 0.0).astype(f4)
    ta_mem = ta[SPIN_UP_FROM].copy()
    lai = lai_min + (lai_max - lai_min) * 0.5
    kept = ("ssm", "ef", "rn", "g", "lai", "ndvi")
    out = {k: np.empty((n_days, n), f4) for k in kept}
    out["frozen"] = np.empty((n_days, n), bool)
    out["snow"] = np.empty((n_days, n), bool)

    for days, keep in ((range(SPIN_UP_FROM, n_days), False), (range(n_days), True)):
        for t in days:
            ta_t = ta[t]
            snowfall = np.where(ta_t < 0.5, precip[t], f4(0))
            melt = np.minimum(swe + snowfall, 3.0 * np.maximum(ta_t, 0))
            swe = swe + snowfall - melt
            snow_frac = np.minimum(1.0, swe / 10.0)
            ta_mem += (ta_t - ta_mem) / 5.0
            frozen = ta_mem < -0.5

            greenness = expit((ta_mem - 6.0) / 3.0) * np.minimum(1.0, 1.25 * beta_root)
            lai += (lai_min + (lai_max - lai_min) * greenness - lai) / 15.0
            cover = 1 - np.exp(-0.5 * lai)

            snow_vis = snow_frac * (1 - 0.6 * tree)
            albedo = albedo_veg * (1 - snow_vis) + 0.72 * snow_vis
            beta_s = np.clip((theta - wp) / (fc - wp), 0, 1)
            beta_soil = np.clip((theta - 0.03) / (fc - 0.03), 0, 1) ** 2
            beta = cover * np.minimum(1.0, 1.2 * beta_root) + (1 - cover) * beta_soil
            ef = 0.04 + 0.82 * beta * (0.45 + 0.55 * cover) * expit((ta_t - 3.0) / 3.0)
            ef = np.where(frozen | ice, 0.04 + 0.08 * snow_frac, ef)
            ts_k = ta_t + 273.15 + 0.03 * (1 - albedo) * sw[t] * (1 - ef)
            rn = (1 - albedo) * sw[t] + 0.97 * (lw[t] - SIGMA * ts_k**4)
            g = (0.04 + 0.10 * np.exp(-0.5 * lai)) * rn

            evap = np.maximum(ef * (rn - g), 0) * LE_TO_MM * ((1 - cover) + 0.25 * cover)
            infiltration = np.where(frozen, 0.15, 1.0) * (precip[t] - snowfall + melt)
            theta = np.minimum(theta + (infiltration - evap) / SURFACE_LAYER_MM, sat)
            theta -= 0.4 * np.maximum(theta - fc, 0)
            theta += (theta_rz - theta) / 12.0
            theta = np.clip(theta, 0.02, sat)
            theta_rz += (theta - theta_rz) / 30.0
            beta_root += (beta_s - beta_root) / 20.0

            if keep:
                out["rn"][t], out["g"][t], out["ef"][t] = rn, g, ef
                out["ssm"][t] = np.where(ice, np.nan, theta)
                out["lai"][t] = lai
                out["ndvi"][t] = (0.08 + 0.8 * (1 - np.exp(-0.55 * lai))) * (1 - 0.85 * snow_frac) + 0.02
                out["frozen"][t], out["snow"][t] = frozen, swe > 1.0
    # Fluxes on a 1/4 W m-2 lattice: every sum below is exact in float32, so rn - g == le + h.
    out["rn"], out["g"] = quantize(out["rn"], 2), quantize(out["g"], 2)
    out["le"] = quantize(out.pop("ef") * (out["rn"] - out["g"]), 2)
    out["h"] = out["rn"] - out["g"] - out["le"]
    return out
