"""The one table of canonical variables: CF metadata and the plausible range of each.

``VARIABLES[name] = Variable(units, long_name, standard_name, valid_min, valid_max)``. The range is
written as CF ``valid_min`` / ``valid_max`` on every stored variable and checked at ingest
(:mod:`catalog.plausibility`): a value outside it is a decoding or unit error, not a measurement.
Ranges are physical bounds for daily (or finer) values, wide enough for any real land pixel:

* soil moisture is a volume fraction, 0–1 m3 m-3;
* LE −200…1000 W m-2 (the issue's bound; dew and strong advection give small negative daily LE,
  1000 W m-2 exceeds any half-hourly LE measured at FLUXNET towers); H −500…1000 W m-2;
  Rn −500…1500 W m-2 and SW_in 0…1500 W m-2 (the solar constant is 1361 W m-2, Kopp & Lean 2011,
  GRL 38:L01706); G −500…500 W m-2; LW_in 0…700 W m-2;
* air temperature −100…65 °C (records −89.2 °C at Vostok and 56.7 °C in Death Valley, WMO archive;
  snow surfaces of the East Antarctic Plateau reach −98 °C, Scambos et al. 2018, GRL 45:6124);
  VPD 0…200 hPa (saturation vapour pressure at 60 °C is 199 hPa, Tetens formula);
  precipitation 0…2000 mm d-1 (the 24 h world record is 1825 mm, La Réunion 1966, WMO);
  wind speed 0…120 m s-1; surface pressure 30…110 kPa (Everest's summit about 33 kPa, the sea-level
  record 108.4 kPa); LAI 0…15 m2 m-2; NDVI −1…1; EF 0…1 (the emulator clips it);
* elevation −500…9000 m (Dead Sea shore −430 m, Everest 8849 m); IGBP classes 0…17 (0 = water in
  some products).
"""

from __future__ import annotations

from typing import NamedTuple


class Variable(NamedTuple):
    units: str
    long_name: str
    standard_name: str | None
    valid_min: float | None = None
    valid_max: float | None = None


VARIABLES: dict[str, Variable] = {
    "ssm": Variable("m3 m-3", "surface soil moisture", "volume_fraction_of_condensed_water_in_soil", 0, 1),
    "ssm_uncertainty": Variable("m3 m-3", "surface soil moisture uncertainty", None, 0, 1),
    "flag": Variable("1", "product quality flag bits", None),
    "le": Variable(
        "W m-2", "latent heat flux (positive upward)", "surface_upward_latent_heat_flux", -200, 1000
    ),
    "h": Variable(
        "W m-2", "sensible heat flux (positive upward)", "surface_upward_sensible_heat_flux", -500, 1000
    ),
    "rn": Variable("W m-2", "net radiation", "surface_net_downward_radiative_flux", -500, 1500),
    "g": Variable(
        "W m-2", "ground heat flux (positive into the soil)", "downward_heat_flux_in_soil", -500, 500
    ),
    "ef": Variable("1", "evaporative fraction LE / (LE + H)", None, 0, 1),
    "sw_in": Variable(
        "W m-2", "incoming shortwave radiation", "surface_downwelling_shortwave_flux_in_air", 0, 1500
    ),
    "lw_in": Variable(
        "W m-2", "incoming longwave radiation", "surface_downwelling_longwave_flux_in_air", 0, 700
    ),
    "ta": Variable("degC", "air temperature", "air_temperature", -100, 65),
    "vpd": Variable("hPa", "vapour pressure deficit", "water_vapor_saturation_deficit_in_air", 0, 200),
    "precip": Variable("mm d-1", "precipitation", "lwe_precipitation_rate", 0, 2000),
    "ws": Variable("m s-1", "wind speed", "wind_speed", 0, 120),
    "ps": Variable("kPa", "surface air pressure", "surface_air_pressure", 30, 110),
    "lai": Variable("m2 m-2", "leaf area index", "leaf_area_index", 0, 15),
    "ndvi": Variable(
        "1", "normalized difference vegetation index", "normalized_difference_vegetation_index", -1, 1
    ),
    "elevation": Variable("m", "surface elevation", "surface_altitude", -500, 9000),
    "igbp": Variable("1", "IGBP land cover class (1-17)", None, 0, 17),
}

COORD_ATTRS = {
    "lat": {"units": "degrees_north", "standard_name": "latitude", "long_name": "latitude", "axis": "Y"},
    "lon": {"units": "degrees_east", "standard_name": "longitude", "long_name": "longitude", "axis": "X"},
    "time": {"standard_name": "time", "long_name": "time", "axis": "T"},
}


def valid_range(name: str, units: str | None = None) -> tuple[float, float] | None:
    """(valid_min, valid_max) of a canonical variable in its canonical units, or None when the
    variable has no range or is stored in other units than the table's."""
    var = VARIABLES.get(name)
    if var is None or var.valid_min is None or (units is not None and units != var.units):
        return None
    return float(var.valid_min), float(var.valid_max)
