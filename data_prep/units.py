"""Unit conversion of gridded fields with cf-units (UDUNITS-2, the CF conventions' units library).

cf-units parses unit strings exactly as CF and ECMWF files write them (``J m**-2``, ``m2.m-2``,
``kg m-2 s-1``) and converts between any two commensurable units, offsets included (K → degC), so
recipes state units, never factors. Conversions are applied as ``a + b·x`` with ``a`` and ``b``
taken from cf-units, which keeps dask arrays lazy.
"""

from __future__ import annotations

import cf_units

from catalog.errors import InputError

WATER_DENSITY = 1000.0  # kg m-3, liquid water: 1 kg m-2 of water is a 1 mm layer


def parse(text: str, where: str) -> cf_units.Unit:
    try:
        unit = cf_units.Unit(text)
    except ValueError as exc:
        raise InputError(f"{where}: units {text!r} cannot be understood ({exc})") from exc
    if unit.is_unknown() or unit.is_no_unit():
        raise InputError(f"{where}: units {text!r} cannot be understood")
    return unit


def convert(values, src: cf_units.Unit, dst_text: str, where: str):
    """``values`` (numpy, dask or xarray) in ``src`` → ``dst_text``; InputError if incommensurable."""
    dst = parse(dst_text, where)
    if not src.is_convertible(dst):
        raise InputError(f"{where}: cannot convert {src} to {dst_text}")
    offset = float(src.convert(0.0, dst))
    scale = float(src.convert(1.0, dst)) - offset
    if offset == 0.0 and scale == 1.0:
        return values
    return values * scale + offset if offset else values * scale


def per_second(values, src: cf_units.Unit, period_s: float):
    """An amount accumulated over ``period_s`` seconds → the mean rate over that period."""
    return values / float(period_s), src / cf_units.Unit("s")


def water_depth(values, src: cf_units.Unit):
    """A water mass per area (kg m-2, or its rate) → the water depth (m, or m s-1) it makes."""
    return values / WATER_DENSITY, src / cf_units.Unit("kg m-3")


def per_layer_depth(values, src: cf_units.Unit, depth_m: float):
    """A water depth in a soil layer (m) → the volume fraction (m3 m-3) of a layer ``depth_m`` thick."""
    return values / float(depth_m), src / cf_units.Unit("m")
