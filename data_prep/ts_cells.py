"""Time-series cell files (one netCDF per grid cell, e.g. ``0165.nc``, beside a ``grid.nc``).

Two CF discrete-sampling layouts occur (CF 1.6 §H.2): *orthogonal multidimensional*
("OrthoMultiTs": variables on (locations, time), one shared time axis) and *indexed ragged*
("IndexedRaggedTs": one row per observation on dim ``time``, with ``locationIndex`` pointing into
``locations``). Both have per-location ``lon``, ``lat``, ``alt``, ``location_id`` (the grid point
id, ``gpi`` in ``grid.nc``). Missing values are ``_FillValue`` or -9999 (declared or not);
netCDF4's CF masking also drops values outside ``valid_min``/``valid_max``.
"""

from __future__ import annotations

import re
from pathlib import Path

import netCDF4
import numpy as np
import pandas as pd
import xarray as xr

from catalog.errors import InputError
from catalog.geo import nearest_point

CELL_NAME = re.compile(r"^\d{4}\.nc$")
MISSING = -9999
LOCATION_VARS = {
    "lon",
    "lat",
    "alt",
    "location_id",
    "location_description",
    "locationIndex",
    "time",
    "row_size",
}
# Soil moisture under the canonical names of the architecture; other variables keep their names.
CANONICAL = {"sm": "ssm", "soil_moisture": "ssm", "sm_uncertainty": "ssm_uncertainty"}
SM_UNITS = {"m3 m-3", "cm**3/cm**3", "m3/m3", "m**3/m**3"}
# Encoding attributes and pointers into the source file's own layout do not describe the result.
DROPPED_ATTRS = {"_FillValue", "missing_value", "coordinates", "name"}
MAX_CELLS = 50_000_000  # (locations x distinct times) above which a ragged file must be subset


def _cell_files(path: Path) -> list[Path]:
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if CELL_NAME.match(p.name))
        if not files:
            raise InputError(f"{path}: no time-series cell files (NNNN.nc)")
        return files
    if not path.is_file():
        raise InputError(f"{path}: no such file or directory")
    return [path]


def _values(var) -> np.ndarray:
    """A variable as float (float64 for time stamps, float32 otherwise) with missing values NaN."""
    data = var[:]
    is_time = "since" in str(getattr(var, "units", ""))
    out = np.ma.filled(np.ma.asarray(data).astype(np.float64 if is_time else np.float32), np.nan)
    out[np.ma.getdata(data) == MISSING] = np.nan
    return out


def _times(var, path: Path) -> pd.DatetimeIndex:
    try:
        dates = netCDF4.num2date(
            var[:],
            var.units,
            getattr(var, "calendar", "standard"),
            only_use_cftime_datetimes=False,
            only_use_python_datetimes=True,
        )
    except (AttributeError, ValueError, TypeError) as err:
        raise InputError(f"{path}: cannot decode 'time' ({err})") from err
    return pd.DatetimeIndex(pd.to_datetime(np.asarray(dates).ravel())).as_unit("ns")


def _read_cell(path: Path, variables, location_ids) -> xr.Dataset:
    try:
        nc = netCDF4.Dataset(path)
    except OSError as err:
        raise InputError(f"{path}: not a readable netCDF file ({err})") from err
    with nc:
        missing = [v for v in ("lon", "lat", "location_id", "time") if v not in nc.variables]
        if missing or "locations" not in nc.dimensions:
            raise InputError(f"{path}: not a time-series cell file (no {', '.join(missing) or 'locations'})")
        if "row_size" in nc.variables:
            raise InputError(f"{path}: contiguous ragged time series are not supported")
        ragged = "locationIndex" in nc.variables
        data_vars = [n for n in nc.variables if n not in LOCATION_VARS and "time" in nc[n].dimensions]
        if variables is not None:
            unknown = sorted(set(variables) - set(data_vars))
            if unknown:
                raise InputError(f"{path}: no variable(s) {', '.join(unknown)} (has {', '.join(data_vars)})")
            data_vars = list(variables)
        try:
            ids = np.asarray(nc["location_id"][:]).astype(np.int64)
            lon = np.asarray(nc["lon"][:], dtype=np.float64)
            lat = np.asarray(nc["lat"][:], dtype=np.float64)
            alt = (
                np.ma.filled(np.ma.asarray(nc["alt"][:], dtype=np.float64), np.nan)
                if "alt" in nc.variables
                else None
            )
            time = _times(nc["time"], path)
            values = {n: _values(nc[n]) for n in data_vars}
            attrs = {
                n: {k: nc[n].getncattr(k) for k in nc[n].ncattrs() if k not in DROPPED_ATTRS}
                for n in data_vars
            }
            where = np.asarray(nc["locationIndex"][:]).astype(np.int64) if ragged else None
        except (OSError, RuntimeError, IndexError) as err:
            raise InputError(f"{path}: cannot read the time series ({err})") from err
        layout = "indexed ragged" if ragged else "orthogonal"
    keep = np.ones(ids.size, bool) if location_ids is None else np.isin(ids, list(location_ids))

    if ragged:
        obs = keep[where]
        where, time = where[obs], time[obs]
        positions = np.cumsum(keep) - 1
        unique_times, t_index = np.unique(time.values, return_inverse=True)
        if keep.sum() * unique_times.size > MAX_CELLS:
            raise InputError(f"{path}: too many locations x times to grid; pass location_ids")
        grids = {}
        for n, v in values.items():
            grid = np.full((int(keep.sum()), unique_times.size), np.nan, v.dtype)
            grid[positions[where], t_index] = v[obs]
            grids[n] = grid
        time = pd.DatetimeIndex(unique_times)
    else:
        grids = {}
        for n, v in values.items():
            if v.shape != (ids.size, time.size):
                raise InputError(f"{path}: variable '{n}' is not on (locations, time)")
            grids[n] = v[keep]

    ds = xr.Dataset(
        {n: (("location", "time"), grids[n], attrs[n]) for n in data_vars},
        coords={
            "location": ("location", ids[keep]),
            "lon": ("location", lon[keep], {"units": "degrees_east", "standard_name": "longitude"}),
            "lat": ("location", lat[keep], {"units": "degrees_north", "standard_name": "latitude"}),
            "time": ("time", time),
        },
    )
    if alt is not None:
        ds = ds.assign_coords(alt=("location", alt[keep], {"units": "m"}))
    ds.attrs["layout"] = layout
    return ds


def _grid_points(g: netCDF4.Dataset, grid_file: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Flat ``gpi``, ``lon``, ``lat`` (int64, float64, float64) of a grid file, masked points left out.

    ``gpi`` is 1-D on ``gp`` (current cell sets), or 2-D on (lat, lon) with ``lat``/``lon`` either
    1-D axes along those dimensions or 2-D like ``gpi`` (older C3S / ESA CCI cell sets).
    """
    gpi_var = g["gpi"]
    gpi = np.ma.asarray(gpi_var[:])
    positions = {}
    for name in ("lon", "lat"):
        var = g[name]
        values = np.ma.getdata(np.ma.asarray(var[:], np.float64))
        dims = gpi_var.dimensions
        axis = dims.index(var.dimensions[0]) if var.dimensions and var.dimensions[0] in dims else -1
        if values.shape == gpi.shape and gpi.ndim in (1, 2):
            positions[name] = values
        elif gpi.ndim == 2 and values.ndim == 1 and axis >= 0 and values.size == gpi.shape[axis]:
            shape = [1, 1]
            shape[axis] = values.size
            positions[name] = np.broadcast_to(values.reshape(shape), gpi.shape)
        else:
            raise InputError(
                f"{grid_file}: 'gpi' on {gpi_var.dimensions}, '{name}' on {var.dimensions}: expected one "
                "grid-point dimension, or a (lat, lon) grid with 1-D axes or 2-D positions"
            )
    keep = ~np.ma.getmaskarray(gpi).ravel()
    return (
        np.ma.getdata(gpi).ravel()[keep].astype(np.int64),
        positions["lon"].ravel()[keep],
        positions["lat"].ravel()[keep],
    )


def _grid_positions(folder: Path, ds: xr.Dataset) -> xr.Dataset:
    """Replace per-location lon/lat by the grid file's (float64) values where ``grid.nc`` exists."""
    grid_file = folder / "grid.nc"
    if not grid_file.is_file() or ds.sizes["location"] == 0:
        return ds
    try:
        with netCDF4.Dataset(grid_file) as g:
            gpi, lon, lat = _grid_points(g, grid_file)
    except (OSError, IndexError, KeyError) as err:
        raise InputError(f"{grid_file}: not a readable grid file ({err})") from err
    order = np.argsort(gpi)
    pos = np.searchsorted(gpi, ds["location"].values, sorter=order)
    pos = order[np.clip(pos, 0, gpi.size - 1)]
    if not np.array_equal(gpi[pos], ds["location"].values):
        raise InputError(f"{grid_file}: does not list every location of the cell files")
    if np.abs(lat[pos] - ds["lat"].values).max() > 1e-3 or np.abs(lon[pos] - ds["lon"].values).max() > 1e-3:
        raise InputError(f"{grid_file}: positions disagree with the cell files")
    return ds.assign_coords(
        lon=("location", lon[pos], ds["lon"].attrs), lat=("location", lat[pos], ds["lat"].attrs)
    )


def read_ts_cells(path, *, variables=None, location_ids=None) -> xr.Dataset:
    """Read time-series cell file(s) into a (location, time) Dataset.

    ``path``: one cell file (``0165.nc``) or a directory of them (all are read and joined on time).
    ``variables``: names to read (default all); ``location_ids``: grid point ids to keep. Both
    layouts give the same result: dim ``location`` (coordinate = grid point id) with ``lon``,
    ``lat`` (from ``grid.nc`` when present) and ``alt``; ``time`` as stored (daily for ESA CCI,
    acquisition times for ragged SMAP files). Soil moisture (``sm`` / ``soil_moisture``) is
    renamed ``ssm`` (m3 m-3) and ``sm_uncertainty`` ``ssm_uncertainty``; all other variables
    (e.g. SMAP ``retrieval_qual_flag``, ``surface_flag``, ``Overpass``; CCI ``flag``) keep their
    names, as float with NaN for missing, so that callers can filter on them.
    """
    path = Path(path)
    files = _cell_files(path)
    cells = [_read_cell(f, variables, location_ids) for f in files]
    if len({c.attrs["layout"] for c in cells}) > 1:
        raise InputError(f"{path}: cell files mix layouts")
    ds = (
        cells[0]
        if len(cells) == 1
        else xr.concat(cells, dim="location", join="outer", combine_attrs="override")
    )
    ds = _grid_positions(files[0].parent, ds)
    rename = {}
    for name, canonical in CANONICAL.items():
        if name in ds and canonical not in ds:
            units = str(ds[name].attrs.get("units", "m3 m-3"))
            if units not in SM_UNITS:
                raise InputError(f"{path}: '{name}' has units {units!r}, expected volumetric (m3 m-3)")
            rename[name] = canonical
    ds = ds.rename(rename)
    for old, new in rename.items():
        ds[new].attrs = {
            "units": "m3 m-3",
            "long_name": ds[new].attrs.get("long_name", old),
            "source_name": old,
        }
    if "ssm" in ds:
        ds["ssm"].attrs["standard_name"] = "volume_fraction_of_condensed_water_in_soil"
    ds.attrs = {
        "layout": cells[0].attrs["layout"],
        "source_files": "; ".join(str(f) for f in files),
        "reader": "data_prep.ts_cells.read_ts_cells",
    }
    return ds


def nearest_series(
    ds: xr.Dataset, lon: float, lat: float, *, max_distance_km: float | None = None
) -> xr.Dataset:
    """The series of the location nearest to (lon, lat); attrs ``location_id``, ``pixel_lon``,
    ``pixel_lat`` and ``distance_km`` (great-circle). InputError if none lies within
    ``max_distance_km``."""
    if ds.sizes.get("location", 0) == 0:
        raise InputError("nearest_series: the dataset has no locations")
    i, distance = nearest_point(ds["lon"].values, ds["lat"].values, lon, lat)
    if max_distance_km is not None and distance > max_distance_km:
        raise InputError(
            f"no location within {max_distance_km} km of ({lon}, {lat}); nearest is {distance:.1f} km away"
        )
    series = ds.isel(location=i)
    series.attrs = {
        **ds.attrs,
        "location_id": int(series["location"]),
        "pixel_lon": float(series["lon"]),
        "pixel_lat": float(series["lat"]),
        "distance_km": distance,
    }
    return series
