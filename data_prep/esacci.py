"""ESA CCI SM / C3S soil moisture netCDF images (regular 0.25° grid): reader and writer.

Layout (one image per file, daily or monthly): dims (time, lat, lon), ``sm`` and ``sm_uncertainty``
(m3 m-3, fill -9999), ``flag`` (int8 bits, fill 127: 1 snow/frozen, 2 dense vegetation, 4 no
convergence, 8 out of physical range, 16 low weight, 32 all inputs unreliable), ``time`` in days
since 1970-01-01. Monthly files carry ``sm`` only (plus counts), with time_coverage_duration P1M.

Reading is lazy; a block that cannot be read when the data are computed (a compressed HDF5 chunk
failing its checksum, a truncated file) is an :class:`InputError` naming the file, the variable and,
where it can be found, the corrupt chunk, instead of netCDF4's bare ``RuntimeError: NetCDF: HDF
error``.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Collection
from pathlib import Path

import dask.array as da
import netCDF4
import numpy as np
import pandas as pd
import xarray as xr

from catalog.errors import InputError

FILL = -9999.0
FLAG_FILL = 127
FLAG_VALUES = [0, 1, 2, 3, 4, 5, 6, 7, 8, 16, 17, 20, 32, 127]
FLAG_MEANINGS = (
    "no_data_inconsistency_detected snow_coverage_or_temperature_below_zero dense_vegetation "
    "combination_of_flag_values_1_and_2 others_no_convergence_in_the_model_thus_no_valid_sm_estimates "
    "combination_of_flag_values_1_and_4 combination_of_flag_values_2_and_4 "
    "combination_of_flag_values_1_and_2_and_4 soil_moisture_value_exceeds_physical_boundary "
    "weight_of_measurement_below_threshold combination_of_flag_values_1_and_16 "
    "combination_of_flag_values_4_and_16 all_datasets_deemed_unreliable NaN"
)
FLAG_BITS = (
    "1 snow/frozen, 2 dense vegetation, 4 no convergence, 8 out of range, 16 low weight, 32 unreliable inputs"
)
SSM_ATTRS = {
    "units": "m3 m-3",
    "long_name": "surface soil moisture",
    "standard_name": "volume_fraction_of_condensed_water_in_soil",
}
UNCERTAINTY_ATTRS = {
    "units": "m3 m-3",
    "long_name": "surface soil moisture uncertainty (estimated standard deviation)",
}
FLAG_ATTRS = {"units": "1", "long_name": f"product quality flag bits ({FLAG_BITS}); 0 = no inconsistency"}
UNCERTAINTY_DESCRIPTION = "Uncertainty is the estimated standard deviation of the observation"
VALID_SM = np.array([0, 1], np.float32)
TIME_UNITS = "days since 1970-01-01 00:00:00 UTC"


def _as_paths(paths) -> list[str]:
    if isinstance(paths, str | os.PathLike):
        paths = [paths]
    out = [str(p) for p in paths]
    if not out:
        raise InputError("read_esacci: no files given")
    return out


class _CheckedVariable:
    """Array-like over one lazily opened netCDF variable whose reads fail with an InputError."""

    def __init__(self, var: xr.Variable, path: str, name: str):
        self.var, self.path, self.name = var, path, name
        self.shape, self.dtype, self.ndim = var.shape, var.dtype, var.ndim

    def __dask_tokenize__(self):
        stat = os.stat(self.path)
        return ("esacci", self.path, stat.st_mtime_ns, stat.st_size, self.name)

    def __getitem__(self, key):
        try:
            return np.asarray(self.var[key].values)
        except (RuntimeError, OSError, ValueError) as err:  # netCDF4: RuntimeError("NetCDF: HDF error")
            where = _bad_chunk(self.path, self.name)
            raise InputError(
                f"{self.path}: variable '{self.name}' cannot be read ({err}){f'; {where}' if where else ''}; "
                "the file is corrupt or truncated"
            ) from err


def _bad_chunk(path: str, name: str) -> str | None:
    """The corrupt gzip chunk of variable ``name`` (netCDF4 files are HDF5), best effort."""
    import h5py

    from data_prep.hdf5 import bad_chunk

    try:
        with h5py.File(path, "r") as f:
            return bad_chunk(f[name])
    except (OSError, RuntimeError, KeyError, ValueError):
        return None


def _checked(raw: xr.Dataset, path: str, names) -> xr.Dataset:
    """``raw`` with variables ``names`` as dask arrays (one block per netCDF chunk) of checked reads."""
    out = raw.copy()
    for name in names:
        var = raw[name].variable
        chunks = var.encoding.get("chunksizes") or var.shape
        data = da.from_array(
            _CheckedVariable(var, path, name),
            chunks=tuple(min(c, n) for c, n in zip(chunks, var.shape, strict=True)),
            meta=np.empty((0,) * var.ndim, var.dtype),
        )
        out[name] = raw[name].copy(data=data)
    return out


def _open_one(path: str) -> tuple[xr.Dataset, str]:
    """One image as (ssm, ssm_uncertainty?, flag?) with raw flag values, and its time step."""
    try:
        raw = xr.open_dataset(path, engine="netcdf4", chunks=None, decode_times=True)
    except (OSError, RuntimeError, ValueError) as err:
        raise InputError(f"{path}: not a readable netCDF file ({err})") from err
    if "sm" not in raw:
        raise InputError(f"{path}: no 'sm' variable (has {', '.join(map(str, raw.data_vars))})")
    if set(raw["sm"].dims) != {"time", "lat", "lon"}:
        raise InputError(f"{path}: 'sm' has dims {raw['sm'].dims}, expected (time, lat, lon)")
    monthly = raw.attrs.get("time_coverage_duration") == "P1M" or "MONTHLY" in Path(path).name.upper()
    keep = [v for v in ("sm", "sm_uncertainty", "flag") if v in raw]
    ds = _checked(raw[keep], path, keep).transpose("time", "lat", "lon")
    times = pd.DatetimeIndex(ds["time"].values)
    times = times.to_period("M").to_timestamp() if monthly else times.floor("D")
    return ds.assign_coords(time=times.as_unit("ns")), "month" if monthly else "day"


def _valid_range(var: xr.DataArray) -> xr.DataArray:
    """Values outside the variable's valid_range (if declared) become NaN."""
    bounds = var.encoding.get("valid_range", var.attrs.get("valid_range"))
    if bounds is None:
        return var
    return var.where((var >= bounds[0]) & (var <= bounds[1]))


def read_esacci(paths, *, keep_flags: Collection[int] | None = (0,)) -> xr.Dataset:
    """Open ESA CCI SM / C3S images lazily as ``ssm``, ``ssm_uncertainty``, ``flag`` on (time, lat, lon).

    Fill values (-9999, flag 127) and values outside ``valid_range`` become NaN. ``keep_flags``: the
    flag values whose soil moisture is kept (default: only 0, no inconsistency detected); ``None``
    keeps every retrieval. ``flag`` is returned unmasked (float32, NaN where the file has no flag) so
    callers can filter differently. Monthly images (time_coverage_duration P1M) get
    ``attrs["time_step"] = "month"`` and time = first day of the month; they hold no flag or
    uncertainty, so only ``ssm`` is returned for them. All files must share one grid and time step.
    """
    files = _as_paths(paths)
    opened = [_open_one(p) for p in files]
    steps = {step for _, step in opened}
    if len(steps) > 1:
        raise InputError(f"daily and monthly images cannot be mixed: {', '.join(files)}")
    ref = opened[0][0]
    for path, (ds, _) in zip(files[1:], opened[1:], strict=True):
        same_grid = ds.sizes["lat"] == ref.sizes["lat"] and ds.sizes["lon"] == ref.sizes["lon"]
        if not same_grid or not (np.allclose(ds["lat"], ref["lat"]) and np.allclose(ds["lon"], ref["lon"])):
            raise InputError(f"{path}: grid differs from {files[0]}")
        if set(ds.data_vars) != set(ref.data_vars):
            raise InputError(f"{path}: variables {sorted(ds.data_vars)} differ from {files[0]}")
    combined = xr.concat(
        [ds for ds, _ in opened], dim="time", data_vars="all", coords="minimal", join="exact"
    )
    combined = combined.sortby("time").sortby("lat", ascending=False).sortby("lon")
    if combined.indexes["time"].has_duplicates:
        raise InputError(f"the same date appears in more than one file: {', '.join(files)}")

    ssm = _valid_range(combined["sm"]).astype(np.float32)
    out = {}
    if "flag" in combined:
        flag = combined["flag"].astype(np.float32)
        if keep_flags is not None:
            ssm = ssm.where(flag.isin(list(keep_flags)))
        out["flag"] = flag.assign_attrs(FLAG_ATTRS)
    out["ssm"] = ssm.assign_attrs(SSM_ATTRS)
    if "sm_uncertainty" in combined:
        unc = _valid_range(combined["sm_uncertainty"]).astype(np.float32)
        out["ssm_uncertainty"] = unc.where(ssm.notnull()).assign_attrs(UNCERTAINTY_ATTRS)
    result = xr.Dataset({k: out[k] for k in ("ssm", "ssm_uncertainty", "flag") if k in out})
    for v in result.data_vars.values():
        v.encoding = {}
    result["lat"] = (
        result["lat"].astype(np.float64).assign_attrs(units="degrees_north", standard_name="latitude")
    )
    result["lon"] = (
        result["lon"].astype(np.float64).assign_attrs(units="degrees_east", standard_name="longitude")
    )
    result.attrs = {
        "source": ref.attrs.get("title", "ESA CCI SM / C3S soil moisture images"),
        "product_version": ", ".join(sorted({str(ds.attrs.get("product_version", "")) for ds, _ in opened})),
        "source_files": "; ".join(files),
        "reader": "data_prep.esacci.read_esacci",
        "reader_options": json.dumps({"keep_flags": None if keep_flags is None else sorted(keep_flags)}),
    }
    if steps == {"month"}:
        result.attrs["time_step"] = "month"
    return result


def _nc_var(nc, name, dtype, fill, attrs, data):
    var = nc.createVariable(
        name,
        dtype,
        ("time", "lat", "lon"),
        fill_value=fill,
        zlib=True,
        complevel=6,
        chunksizes=(1, data.shape[1], data.shape[2]),
    )
    var.setncatts(attrs)
    var[:] = data
    return var


def write_esacci(path, ds: xr.Dataset) -> Path:
    """Write ``ds`` (``ssm`` and optionally ``ssm_uncertainty``, ``flag``) as an ESA CCI SM image file.

    Same layout as the real product: NETCDF4_CLASSIC, dims (time, lat, lon) with lat descending,
    ``sm``/``sm_uncertainty`` float32 fill -9999 valid_range [0, 1], ``flag`` int8 fill 127 with
    flag_values/flag_meanings (0 where ``ssm`` is valid and no flag is given), time in days since
    1970-01-01, CF-1.6 global attributes. ``attrs["time_step"] == "month"`` writes a monthly image
    (``sm`` only, time_coverage_duration P1M). The file appears only when complete.
    """
    if "ssm" not in ds or set(ds["ssm"].dims) != {"time", "lat", "lon"}:
        raise InputError("write_esacci: need an 'ssm' variable on (time, lat, lon)")
    ds = ds.transpose("time", "lat", "lon").sortby("lat", ascending=False).sortby("lon")
    monthly = ds.attrs.get("time_step") == "month"
    times = pd.DatetimeIndex(ds["time"].values)
    path = Path(path)
    lat, lon = ds["lat"].values, ds["lon"].values
    res_lat = abs(float(lat[0] - lat[1])) if lat.size > 1 else 0.25
    res_lon = abs(float(lon[1] - lon[0])) if lon.size > 1 else 0.25

    def filled(name, fill, dtype):
        values = np.asarray(ds[name].values, dtype=np.float64)
        return np.where(np.isfinite(values), values, fill).astype(dtype)

    fd, tmp = tempfile.mkstemp(suffix=".nc.part", dir=path.parent)
    os.close(fd)
    try:
        with netCDF4.Dataset(tmp, "w", format="NETCDF4_CLASSIC") as nc:
            nc.createDimension("time", times.size)
            nc.createDimension("lat", lat.size)
            nc.createDimension("lon", lon.size)
            v = nc.createVariable("lat", "f4", ("lat",))
            v.setncatts({"units": "degrees_north", "standard_name": "latitude", "valid_range": [-90.0, 90.0]})
            v[:] = lat
            v = nc.createVariable("lon", "f4", ("lon",))
            v.setncatts(
                {"units": "degrees_east", "standard_name": "longitude", "valid_range": [-180.0, 180.0]}
            )
            v[:] = lon
            v = nc.createVariable("time", "f8", ("time",))
            v.setncatts({"units": TIME_UNITS, "standard_name": "time", "calendar": "standard"})
            v[:] = netCDF4.date2num(times.to_pydatetime(), TIME_UNITS, "standard")
            sm = filled("ssm", FILL, np.float32)
            attrs = {"long_name": "Volumetric Soil Moisture", "units": "m3 m-3", "valid_range": VALID_SM}
            _nc_var(nc, "sm", "f4", FILL, attrs, sm)
            if not monthly:
                if "ssm_uncertainty" in ds:
                    unc = filled("ssm_uncertainty", FILL, np.float32)
                    attrs = {
                        "long_name": "Volumetric Soil Moisture Uncertainty",
                        "units": "m3 m-3",
                        "valid_range": VALID_SM,
                        "description": UNCERTAINTY_DESCRIPTION,
                    }
                    _nc_var(nc, "sm_uncertainty", "f4", FILL, attrs, unc)
                if "flag" in ds:
                    flag = filled("flag", FLAG_FILL, np.int8)
                else:
                    flag = np.where(sm != FILL, 0, FLAG_FILL).astype(np.int8)
                attrs = {
                    "long_name": "Flag",
                    "flag_values": np.array(FLAG_VALUES, np.int8),
                    "flag_meanings": FLAG_MEANINGS,
                }
                _nc_var(nc, "flag", "i1", FLAG_FILL, attrs, flag)
            start = times[0] - pd.Timedelta(hours=12)
            end = (
                times[-1] + pd.offsets.MonthBegin(1) if monthly else times[-1] + pd.Timedelta(days=1)
            ) - pd.Timedelta(hours=12)
            nc.setncatts(
                {
                    "title": ds.attrs.get("title", "Surface soil moisture image (ESA CCI SM layout)"),
                    "Conventions": "CF-1.6",
                    "product_version": ds.attrs.get("product_version", "demo"),
                    "id": path.name,
                    "time_coverage_start": f"{start:%Y%m%dT%H%M%SZ}",
                    "time_coverage_end": f"{end:%Y%m%dT%H%M%SZ}",
                    "time_coverage_duration": "P1M" if monthly else "P1D",
                    "time_coverage_resolution": "P1M" if monthly else "P1D",
                    "geospatial_lat_min": float(lat.min() - res_lat / 2),
                    "geospatial_lat_max": float(lat.max() + res_lat / 2),
                    "geospatial_lon_min": float(lon.min() - res_lon / 2),
                    "geospatial_lon_max": float(lon.max() + res_lon / 2),
                    "geospatial_lat_resolution": f"{res_lat:g} degree",
                    "geospatial_lon_resolution": f"{res_lon:g} degree",
                }
            )
            if "synthetic" in ds.attrs:
                nc.setncattr("synthetic", str(ds.attrs["synthetic"]).lower())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
