"""Latent heat flux LE (W m-2) as evaporation E (mm d-1) and back.

E = LE · 86400 / λ(T): 1 kg m-2 of liquid water is 1 mm, so J m-2 s-1 × s d-1 / (J kg-1) = mm d-1.
λ(T) is the latent heat of vaporisation, λ = 2.501 − 0.002361·T MJ kg-1 with T the air temperature
in °C (Harrison 1963, the form used in FAO-56, Allen et al. 1998, Annex 3 eq. 3-1). Where no air
temperature is available (per element: None or NaN) T = 20 °C, λ = 2.45378 MJ kg-1 (FAO-56 rounds it
to 2.45). λ changes by ≈ 0.1 % per °C, so the fallback errs by about 1 % for a day 10 °C off.

Sign is kept: negative LE (condensation, dew) gives negative E. NaN LE gives NaN E. Works on
scalars, numpy arrays and xarray objects (broadcasting LE against T).

API for the app and the validation views:

* ``le_to_mm_per_day(le, ta_celsius=None)``, ``mm_per_day_to_le(e, ta_celsius=None)``;
* ``latent_heat_of_vaporisation(ta_celsius=None)`` in J kg-1;
* ``convert_le(le, units, ta_celsius=None)`` for ``units`` in ``LE_UNITS`` (``"W m-2"``, ``"mm d-1"``);
* ``le_label(units)`` ("LE (W m-2)" / "evaporation (mm d-1)") and
  ``lambda_note(ta_source)`` — the sentence stating which temperature λ used.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from catalog.errors import InputError

SECONDS_PER_DAY = 86400.0
REFERENCE_TA_C = 20.0
W_M2 = "W m-2"
MM_D = "mm d-1"
LE_UNITS = (W_M2, MM_D)
_TA_RANGE_C = (-100.0, 65.0)  # catalog.variables "ta"


def _ta(ta_celsius):
    """Air temperature in °C, the reference 20 °C where it is None or NaN; out-of-range is an error."""
    if ta_celsius is None:
        return REFERENCE_TA_C
    ta = ta_celsius if isinstance(ta_celsius, xr.DataArray) else np.asarray(ta_celsius, dtype=float)
    lo, hi = _TA_RANGE_C
    if bool(((ta < lo) | (ta > hi)).any()):
        raise InputError(f"air temperature outside {lo:g}…{hi:g} °C: is it in kelvin? λ(T) needs °C")
    if isinstance(ta, xr.DataArray):
        return ta.fillna(REFERENCE_TA_C)
    return np.where(np.isnan(ta), REFERENCE_TA_C, ta)


def latent_heat_of_vaporisation(ta_celsius=None):
    """λ in J kg-1: (2.501 − 0.002361·T) × 1e6, T in °C (Harrison 1963; FAO-56 Annex 3 eq. 3-1)."""
    return (2.501 - 0.002361 * _ta(ta_celsius)) * 1e6


def le_to_mm_per_day(le, ta_celsius=None):
    """Evaporation E (mm d-1) from LE (W m-2): E = LE · 86400 / λ(T)."""
    return _keep_kind(le, le * SECONDS_PER_DAY / latent_heat_of_vaporisation(ta_celsius))


def mm_per_day_to_le(e, ta_celsius=None):
    """LE (W m-2) from evaporation E (mm d-1): LE = E · λ(T) / 86400."""
    return _keep_kind(e, e * latent_heat_of_vaporisation(ta_celsius) / SECONDS_PER_DAY)


def convert_le(le, units: str, ta_celsius=None):
    """LE (W m-2) in ``units``: unchanged for W m-2, E = LE · 86400 / λ(T) for mm d-1. A DataArray
    gets the new ``units`` and ``long_name`` attributes."""
    check_units(units)
    if units == W_M2:
        return le
    out = le_to_mm_per_day(le, ta_celsius)
    if isinstance(out, xr.DataArray):
        out.attrs = {**le.attrs, "units": MM_D, "long_name": "evaporation (LE / λ(T))"}
    return out


def check_units(units: str) -> None:
    if units not in LE_UNITS:
        raise InputError(f"bad LE units {units!r}; use one of {LE_UNITS}")


def le_label(units: str) -> str:
    """Axis / colour-bar label of LE in ``units``."""
    check_units(units)
    return f"LE ({W_M2})" if units == W_M2 else f"evaporation ({MM_D})"


def lambda_note(ta_source: str | None = None) -> str:
    """The sentence that states the temperature behind λ: ``ta_source`` names the air temperature
    used (e.g. "the tower's TA"), None means the fixed 20 °C."""
    formula = "E = LE·86400/λ, λ = 2.501 − 0.002361·T MJ kg-1 (FAO-56 eq. 3-1)"
    if ta_source is None:
        return f"{formula}; T = {REFERENCE_TA_C:g} °C fixed (λ = 2.454 MJ kg-1)"
    return f"{formula}; T = {ta_source}, {REFERENCE_TA_C:g} °C where missing"


def _keep_kind(like, out):
    """A Python float for scalar input, else the array / xarray result as is."""
    return float(out) if np.ndim(like) == 0 and not isinstance(like, xr.DataArray | np.ndarray) else out
