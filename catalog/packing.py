"""CF packing of stored variables: integers on disk, floats in every reader.

A packed variable is stored as ``dtype`` with CF ``scale_factor`` and ``_FillValue`` (CF-1.8 §8.1
"Packed data"): ``stored = round(value / scale_factor)``, ``value = stored × scale_factor``, NaN ↔
``_FillValue``. The catalog reads it back as float32, so views, validation and models read floats
as before (see :func:`as_float32`).

A reader declares the packing of its own precision; nothing is packed by default, because rounding a
float32 source to a coarser step would lose information. GSSM1km stores SSM as UInt16 =
round(SSM × 1000) (Han et al. 2023, Sci. Data 10:101; the files' own scale), so ``SSM_MILLI`` loses
nothing: a file's value k decodes to exactly the reader's float32 k / 1000 and re-encodes to k.
Coarser pyramid levels (2 × 2 means) are rounded to the same step (±0.0005 m3 m-3, half the
product's own precision).

Fluxes (LE, H, Rn, G, EF) stay float32, measured: 60 days of the demo's 0.5° fluxes took 24.1 MB as
float32 and 20.7 MB as int16 × 0.1 W m-2 (zstd level 1 both, −14 %), and packing broke the energy
balance the emulator closes by construction (LE + H = Rn − G exactly in float32; up to 0.2 W m-2 off
once packed).

CF's ``valid_min``/``valid_max`` are in packed units for a packed variable, which readers confuse
with the physical range; packed variables are therefore stored without them (the range is
``catalog.variables``'s and is checked at ingest as for every variable).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xarray as xr

from catalog.errors import InputError


@dataclass(frozen=True)
class Packing:
    """Integer storage of a float variable: ``dtype``, ``scale_factor``, ``fill_value``."""

    dtype: str
    scale_factor: float
    fill_value: int

    def encoding(self) -> dict:
        """The xarray/zarr encoding keys that store a variable packed."""
        return {
            "dtype": self.dtype,
            "scale_factor": float(self.scale_factor),
            "_FillValue": np.dtype(self.dtype).type(self.fill_value),
        }

    def representable(self) -> tuple[float, float]:
        """(lowest, highest) value the packed integers can hold (the fill value excluded)."""
        info = np.iinfo(self.dtype)
        lo, hi = info.min, info.max
        if self.fill_value == hi:
            hi -= 1
        elif self.fill_value == lo:
            lo += 1
        return lo * self.scale_factor, hi * self.scale_factor

    def to_dict(self) -> dict:
        return {"dtype": self.dtype, "scale_factor": self.scale_factor, "_FillValue": self.fill_value}

    @classmethod
    def from_dict(cls, d: dict) -> Packing:
        return cls(str(d["dtype"]), float(d["scale_factor"]), int(d["_FillValue"]))


# Soil moisture in m3 m-3 at GSSM1km's precision (UInt16 = round(SSM x 1000)); 65535 is missing.
SSM_MILLI = Packing("uint16", 0.001, 65535)


def check(packing: dict[str, Packing], ranges: dict[str, tuple[float, float]], name: str) -> None:
    """InputError unless each packed variable has a valid range its integers can hold."""
    for var, p in packing.items():
        if var not in ranges:
            raise InputError(f"product {name!r}: cannot pack {var!r}: no valid range known for it")
        lo, hi = ranges[var]
        can_lo, can_hi = p.representable()
        if lo < can_lo - 1e-9 or hi > can_hi + 1e-9:
            raise InputError(
                f"product {name!r}: {var!r} valid range {lo}..{hi} does not fit {p.dtype} "
                f"× {p.scale_factor} ({can_lo}..{can_hi})"
            )


def as_float32(ds: xr.Dataset) -> xr.Dataset:
    """``ds`` with its packed variables as float32 (lazy).

    xarray decodes a scale factor read from a store's JSON attributes (a float64) to float64; the
    cast to float32 gives, for every UInt16 k, exactly the float32 k / 1000 of the GSSM reader
    (checked over all 65 535 values), and halves the memory."""
    packed = [
        v
        for v, da_ in ds.data_vars.items()
        if da_.dtype == np.float64 and "scale_factor" in da_.encoding
        and np.dtype(da_.encoding.get("dtype", "f8")).kind in "iu"
    ]  # fmt: skip
    if not packed:
        return ds
    ds = ds.copy(deep=False)
    for v in packed:
        attrs, encoding = ds[v].attrs, ds[v].encoding
        ds[v] = ds[v].astype(np.float32)
        ds[v].attrs, ds[v].encoding = attrs, encoding
    return ds
