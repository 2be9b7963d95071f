"""Meteorological quantities derived from reanalysis fields (pure array functions, lazy-safe)."""

from __future__ import annotations

import numpy as np


def saturation_vapour_pressure_hpa(t_degc):
    """Saturation vapour pressure over water, hPa, at air temperature ``t_degc`` (°C):

        e_s(T) = 6.108 exp(17.27 T / (T + 237.3))

    (Tetens 1930 in the form of Allen et al. 1998, FAO Irrigation and Drainage Paper 56, eq. 11,
    there in kPa: 0.6108 exp(...)).
    """
    return 6.108 * np.exp(17.27 * t_degc / (t_degc + 237.3))


def vpd_from_dewpoint_hpa(t_degc, td_degc):
    """Vapour pressure deficit, hPa, from air and dewpoint temperature (°C):

        VPD = e_s(T) − e_a,   e_a = e_s(T_d)

    (FAO-56, Allen et al. 1998, eq. 14 for e_a from the dewpoint, eq. 11 for e_s). Clipped at 0:
    a dewpoint above the air temperature (supersaturation in the analysis) gives no deficit.
    """
    vpd = saturation_vapour_pressure_hpa(t_degc) - saturation_vapour_pressure_hpa(td_degc)
    return np.maximum(vpd, 0.0)


def wind_speed(u, v):
    """Horizontal wind speed from its eastward and northward components: sqrt(u² + v²) (m s-1)."""
    return np.sqrt(u * u + v * v)
