"""SMAP passive soil moisture: L3 daily EASE-Grid 2.0 files (SPL3SMP 36 km, SPL3SMP_E 9 km) and L2
half-orbit swaths (SPL2SMP).

L3 layout (NSIDC SPL3SMP / SPL3SMP_E product specification): groups
``Soil_Moisture_Retrieval_Data_AM`` (descending, 6 AM) and ``Soil_Moisture_Retrieval_Data_PM``
(ascending, 6 PM; dataset names end in ``_pm``), each with 2-D (row, col) datasets on the global
EASE2 grid: ``soil_moisture`` (cm3 cm-3 = m3 m-3, fill -9999.0), ``retrieval_qual_flag`` (uint16,
fill 65534; bit 0 set = retrieval not recommended), ``surface_flag``, ``latitude``/``longitude`` of
the cell centre (-9999.0 where the day has no data), ``EASE_row_index``/``EASE_column_index``. The
date is in the file name: ``SMAP_L3_SM_P_YYYYMMDD_R*_NNN.h5`` (``SMAP_L3_SM_P_E_…`` for 9 km).
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path

import dask
import dask.array as da
import numpy as np
import pandas as pd
import xarray as xr

from catalog.errors import InputError
from data_prep import ease2
from data_prep.hdf5 import (
    dataset,
    decode_attrs,
    has_dataset,
    open_file,
    read_raw,
    read_variable,
    write_variable,
)

FILE_NAME = re.compile(r"^SMAP_L3_SM_P_(E_)?(\d{8})_R\d+_\d{3}\.h5$")
GROUPS = {"AM": "Soil_Moisture_Retrieval_Data_AM", "PM": "Soil_Moisture_Retrieval_Data_PM"}
SUFFIX = {"AM": "", "PM": "_pm"}
FILL = -9999.0
FLAG_FILL = 65534
NOT_RECOMMENDED = 1  # retrieval_qual_flag bit 0
DEFAULT_RESOLUTION = {"M36": 0.25, "M09": 1 / 12}
# Allowed gap between a file's cell-centre latitudes and the EASE2 definition (float32 storage).
GEOMETRY_TOLERANCE_DEG = 0.01
SSM_ATTRS = {
    "units": "m3 m-3",
    "long_name": "surface soil moisture (0-5 cm)",
    "standard_name": "volume_fraction_of_condensed_water_in_soil",
}
FLAG_ATTRS = {
    "units": "1",
    "long_name": "SMAP retrieval_qual_flag, bitwise OR over the passes used "
    "(1 not recommended, 2 not attempted, 4 not successful, 8 freeze/thaw not successful)",
}
QUAL_FLAG_ATTRS = {
    "flag_masks": "1s, 2s, 4s, 8s",
    "flag_meanings": "Soil_moisture_retrieval_recommended Soil_moisture_retrieval_attempted "
    "Soil_moisture_retrieval_success FT_retrieval_success",
    "long_name": "Bit flags that record the conditions and the quality of the retrieval algorithms that "
    "generate soil moisture within each grid cell",
}
SURFACE_FLAG_ATTRS = {
    "flag_masks": "1s, 2s, 4s, 8s, 16s, 32s, 64s, 128s, 256s, 512s, 1024s, 2048s",
    "flag_meanings": "36_km_static_water_body 36_km_radar_water_body_detection 36_km_coastal_proximity "
    "36_km_urban_area 36_km_precipitation 36_km_snow_or_ice 36_km_permanent_snow_or_ice "
    "36_km_radiometer_frozen_ground 36_km_model_frozen_ground 36_km_mountainous_terrain "
    "36_km_dense_vegetation 36_km_nadir_region",
    "long_name": "Bit flags that record ambient surface conditions within each grid cell",
}


def smap_l3_file_name(date, *, grid: str = "M36", crid: str = "R19240", counter: int = 1) -> str:
    """The NSIDC file name of an L3 daily file, e.g. ``SMAP_L3_SM_P_20180701_R19240_001.h5``."""
    enhanced = "E_" if ease2.grid(grid) is ease2.M09 else ""
    return f"SMAP_L3_SM_P_{enhanced}{pd.Timestamp(date):%Y%m%d}_{crid}_{counter:03d}.h5"


def _name_date(path: Path) -> tuple[pd.Timestamp, ease2.Ease2Grid]:
    match = FILE_NAME.match(path.name)
    if not match:
        raise InputError(f"{path}: not an SMAP L3 file name (expected SMAP_L3_SM_P_[E_]YYYYMMDD_R*_NNN.h5)")
    try:
        date = pd.Timestamp(match[2])
    except ValueError as err:
        raise InputError(f"{path}: impossible date in the file name") from err
    return date, ease2.M09 if match[1] else ease2.M36


def _check_l3(path: Path, passes, expected: ease2.Ease2Grid) -> None:
    """InputError unless the file holds the passes' soil moisture and flags on ``expected``."""
    with open_file(path) as f:
        for p in passes:
            for base in ("soil_moisture", "retrieval_qual_flag", "latitude"):
                name = f"{GROUPS[p]}/{base}{SUFFIX[p]}"
                if not has_dataset(f, name):
                    raise InputError(f"{path}: no dataset '{name}' (not an SMAP L3 SM_P file?)")
                shape = dataset(f, name).shape
                if shape != expected.shape:
                    raise InputError(
                        f"{path}: '{name}' is {shape}, expected {expected.shape} ({expected.name})"
                    )


def _pass_values(f, path, p, recommended_only, row_lat) -> tuple[np.ndarray, np.ndarray]:
    """(soil moisture with NaN, uint32 flag with 65534 fill) of one pass on the EASE2 grid."""
    group, suffix = GROUPS[p], SUFFIX[p]
    sm = read_variable(f, f"{group}/soil_moisture{suffix}")
    qual = read_raw(f, f"{group}/retrieval_qual_flag{suffix}").astype(np.uint32)
    lat = read_variable(f, f"{group}/latitude{suffix}")
    lat[lat == FILL] = np.nan  # older files store -9999.0 without declaring a _FillValue
    offset = np.abs(lat - row_lat[:, None])
    if np.nanmax(offset, initial=0.0) > GEOMETRY_TOLERANCE_DEG:
        raise InputError(f"{path}: {group} latitudes do not match the EASE-Grid 2.0 rows")
    if recommended_only:
        sm[(qual == FLAG_FILL) | ((qual & NOT_RECOMMENDED) != 0)] = np.nan
    return sm, qual


def _read_l3_day(path: Path, passes, recommended_only, g, rows, cols) -> np.ndarray:
    """(2, n_lat, n_lon) float32: combined soil moisture and flag on the regular lat/lon grid."""
    row_lat = ease2.row_latitudes(g)
    with open_file(path) as f:
        per_pass = [_pass_values(f, path, p, recommended_only, row_lat) for p in passes]
    sms = np.stack([sm for sm, _ in per_pass])
    valid = np.isfinite(sms)
    n_valid = valid.sum(axis=0)
    with np.errstate(invalid="ignore"):
        ssm = np.where(valid, sms, 0).sum(axis=0) / n_valid
    flag = np.zeros(g.shape, np.uint32)
    for (_, qual), used in zip(per_pass, valid, strict=True):
        flag |= np.where(used, qual, 0).astype(np.uint32)
    flag_f = np.where(n_valid > 0, flag, np.nan).astype(np.float32)
    out = np.full((2, rows.size, cols.size), np.nan, np.float32)
    inside = rows >= 0
    out[0, inside] = ssm[np.ix_(rows[inside], cols)]
    out[1, inside] = flag_f[np.ix_(rows[inside], cols)]
    return out


def _as_paths(paths) -> list[Path]:
    if isinstance(paths, str | os.PathLike):
        paths = [paths]
    out = [Path(p) for p in paths]
    if not out:
        raise InputError("read_smap_l3: no files given")
    return out


def read_smap_l3(paths, *, passes=("AM", "PM"), recommended_only=True, resolution=None) -> xr.Dataset:
    """Open SMAP L3 SM_P daily files lazily as ``ssm`` (m3 m-3) and ``flag`` on a regular lat/lon grid.

    Per day and EASE2 cell, ``ssm`` is the mean of the valid retrievals of the requested ``passes``;
    with ``recommended_only`` a retrieval counts only if retrieval_qual_flag bit 0 is 0 (recommended
    quality). ``flag`` is the bitwise OR of retrieval_qual_flag over the retrievals used (NaN where
    none). Regridding: each cell of the global regular grid (``resolution`` degrees, default 0.25
    for 36 km and 1/12 for 9 km) takes the value of the EASE2 cell that contains its centre
    (nearest-cell sampling, no averaging; NaN beyond the EASE2 extent of about ±85.04°). The method
    is recorded in ``attrs``. Dates come from the file names; all files must share one grid.
    """
    files = _as_paths(paths)
    passes = tuple(passes)
    if not passes or any(p not in GROUPS for p in passes) or len(set(passes)) != len(passes):
        raise InputError(f"read_smap_l3: passes must be a subset of ('AM', 'PM'), got {passes}")
    named = sorted((_name_date(p) + (p,) for p in files), key=lambda t: t[0])
    grids = {g.name for _, g, _ in named}
    if len(grids) > 1:
        raise InputError(f"36 km and 9 km files cannot be mixed: {', '.join(map(str, files))}")
    dates = [d for d, _, _ in named]
    if len(set(dates)) != len(dates):
        raise InputError(f"the same date appears in more than one file: {', '.join(map(str, files))}")
    g = named[0][1]
    for _, _, path in named:
        _check_l3(path, passes, g)

    res = float(resolution or DEFAULT_RESOLUTION[g.name])
    n_lat, n_lon = round(180 / res), round(360 / res)
    lat = 90 - (np.arange(n_lat) + 0.5) * res
    lon = -180 + (np.arange(n_lon) + 0.5) * res
    rows, cols = ease2.rows_for_latitudes(g, lat), ease2.columns_for_longitudes(g, lon)
    days = [
        da.from_delayed(
            dask.delayed(_read_l3_day)(path, passes, recommended_only, g, rows, cols),
            shape=(2, n_lat, n_lon),
            dtype=np.float32,
        )
        for _, _, path in named
    ]
    stack = da.stack(days)
    ds = xr.Dataset(
        {
            "ssm": (("time", "lat", "lon"), stack[:, 0], dict(SSM_ATTRS)),
            "flag": (("time", "lat", "lon"), stack[:, 1], dict(FLAG_ATTRS)),
        },
        coords={
            "time": ("time", pd.DatetimeIndex(dates).as_unit("ns")),
            "lat": ("lat", lat, {"units": "degrees_north", "standard_name": "latitude"}),
            "lon": ("lon", lon, {"units": "degrees_east", "standard_name": "longitude"}),
        },
    )
    product = "SPL3SMP_E (9 km)" if g is ease2.M09 else "SPL3SMP (36 km)"
    ds.attrs = {
        "source": f"SMAP L3 radiometer soil moisture {product}, EASE-Grid 2.0 global (EPSG:6933, {g.name})",
        "source_files": "; ".join(str(p) for _, _, p in named),
        "reader": "data_prep.smap.read_smap_l3",
        "reader_options": json.dumps(
            {"passes": list(passes), "recommended_only": recommended_only, "resolution": res}
        ),
        "regridding": f"each {res:g} degree lat/lon cell takes the value of the EASE-Grid 2.0 {g.name} cell "
        "containing its centre (nearest-cell sampling, no averaging)",
        "pass_combination": f"mean of the valid {'/'.join(passes)} retrievals of the day",
        "quality_filter": "retrieval_qual_flag bit 0 == 0 (recommended quality)"
        if recommended_only
        else "none",
    }
    return ds


def read_smap_l2(path) -> xr.Dataset:
    """An SPL2SMP half-orbit swath as point data on dim ``obs``: ``ssm`` (m3 m-3, fills → NaN),
    ``retrieval_qual_flag`` and ``surface_flag`` (NaN for fill), ``lat``/``lon`` and ``time``
    (UTC of the brightness temperatures) coordinates, EASE2 row/column indices."""
    path = Path(path)
    group = "Soil_Moisture_Retrieval_Data"
    with open_file(path) as f:
        if not has_dataset(f, f"{group}/soil_moisture"):
            raise InputError(f"{path}: no '{group}/soil_moisture' (not an SMAP L2 SM_P swath?)")
        data = {
            name: read_variable(f, f"{group}/{name}") for name in ("soil_moisture", "latitude", "longitude")
        }
        for name in ("retrieval_qual_flag", "surface_flag", "EASE_row_index", "EASE_column_index"):
            data[name] = read_variable(f, f"{group}/{name}")
        utc = read_raw(f, f"{group}/tb_time_utc")
        info = (
            decode_attrs(f["Metadata/DatasetIdentification"]) if "Metadata/DatasetIdentification" in f else {}
        )
    time = (
        pd.to_datetime([t.decode() for t in utc], utc=True, errors="coerce").tz_localize(None).as_unit("ns")
    )
    return xr.Dataset(
        {
            "ssm": ("obs", data["soil_moisture"], dict(SSM_ATTRS)),
            "retrieval_qual_flag": (
                "obs",
                data["retrieval_qual_flag"],
                {"long_name": QUAL_FLAG_ATTRS["long_name"]},
            ),
            "surface_flag": ("obs", data["surface_flag"], {"long_name": SURFACE_FLAG_ATTRS["long_name"]}),
            "ease_row": ("obs", data["EASE_row_index"]),
            "ease_col": ("obs", data["EASE_column_index"]),
        },
        coords={
            "lat": ("obs", data["latitude"].astype(np.float64), {"units": "degrees_north"}),
            "lon": ("obs", data["longitude"].astype(np.float64), {"units": "degrees_east"}),
            "time": ("obs", time),
        },
        attrs={
            "source_files": str(path),
            "reader": "data_prep.smap.read_smap_l2",
            "product": info.get("shortName", ""),
        },
    )


def _on_ease2(field: xr.DataArray | None, g: ease2.Ease2Grid, row_lat, col_lon) -> np.ndarray:
    """Sample a regular (lat, lon) field at EASE2 cell centres (nearest cell within half a cell)."""
    if field is None:
        return np.full(g.shape, np.nan)
    if set(field.dims) != {"lat", "lon"}:
        raise InputError(f"write_smap_l3: fields must have dims (lat, lon), got {field.dims}")
    field = field.transpose("lat", "lon").sortby("lat", ascending=False).sortby("lon")
    tol = 0.5001 * max(
        abs(float(field["lat"][1] - field["lat"][0])), float(field["lon"][1] - field["lon"][0])
    )
    sampled = field.reindex(lat=row_lat, lon=col_lon, method="nearest", tolerance=tol)
    return np.asarray(sampled.values, dtype=np.float64)


def write_smap_l3(
    path, ssm_am: xr.DataArray, ssm_pm: xr.DataArray | None = None, *, qual_am=None, qual_pm=None
):
    """Write a daily SMAP L3 SM_P file (real SPL3SMP / SPL3SMP_E layout) from regular lat/lon fields.

    ``path`` must carry an NSIDC name (``smap_l3_file_name``): it gives the date and the grid (36 km,
    or 9 km for ``SMAP_L3_SM_P_E_…``). ``ssm_am``/``ssm_pm`` (m3 m-3, dims lat/lon) are sampled at
    each EASE2 cell centre (nearest input cell); ``qual_am``/``qual_pm`` optional retrieval_qual_flag
    fields (default 0 = recommended where there is a value). Cells without value or flag get the
    fills (-9999.0, 65534) and -9999.0 latitude/longitude, as in the real files. The file appears
    only when complete.
    """
    path = Path(path)
    date, g = _name_date(path)
    row_lat, col_lon = ease2.row_latitudes(g), ease2.column_longitudes(g)
    lat2d = np.broadcast_to(row_lat[:, None], g.shape)
    lon2d = np.broadcast_to(col_lon[None, :], g.shape)
    rows2d, cols2d = np.indices(g.shape)
    fd, tmp = tempfile.mkstemp(suffix=".h5.part", dir=path.parent)
    os.close(fd)
    try:
        with open_file(tmp, "w") as f:
            for p, ssm, qual in (("AM", ssm_am, qual_am), ("PM", ssm_pm, qual_pm)):
                sm = _on_ease2(ssm, g, row_lat, col_lon)
                has_sm = np.isfinite(sm)
                q = _on_ease2(qual, g, row_lat, col_lon) if qual is not None else np.where(has_sm, 0, np.nan)
                present = has_sm | np.isfinite(q)
                _write_pass(
                    f.create_group(GROUPS[p]), p, g, date, sm, q, present, lat2d, lon2d, rows2d, cols2d
                )
            _write_metadata(f, path.name, g, date)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _write_pass(group, p, g, date, sm, qual, present, lat2d, lon2d, rows2d, cols2d) -> None:
    s = SUFFIX[p]
    coords = f"/{group.name.strip('/')}/latitude{s} /{group.name.strip('/')}/longitude{s}"
    local_hour = 6 if p == "AM" else 18
    # seconds since 2000-01-01 12:00 UTC at the local solar overpass time (6 AM / 6 PM)
    seconds = (date - pd.Timestamp("2000-01-01T12:00")).total_seconds() + (local_hour - lon2d / 15.0) * 3600
    write_variable(
        group,
        f"soil_moisture{s}",
        np.where(np.isfinite(sm), sm, FILL).astype(np.float32),
        fill_value=FILL,
        attrs={
            "long_name": "Representative soil moisture measurement for the Earth based grid cell.",
            "units": "cm**3/cm**3",
            "valid_min": np.float32(0.02),
            "valid_max": np.float32(0.5),
            "coordinates": coords,
        },
    )
    write_variable(
        group,
        f"retrieval_qual_flag{s}",
        np.where(np.isfinite(qual), qual, FLAG_FILL).astype(np.uint16),
        fill_value=FLAG_FILL,
        attrs={**QUAL_FLAG_ATTRS, "coordinates": coords},
    )
    write_variable(
        group,
        f"surface_flag{s}",
        np.where(present, 0, FLAG_FILL).astype(np.uint16),
        fill_value=FLAG_FILL,
        attrs={**SURFACE_FLAG_ATTRS, "coordinates": coords},
    )
    write_variable(
        group,
        f"latitude{s}",
        np.where(present, lat2d, FILL).astype(np.float32),
        fill_value=FILL,
        attrs={
            "long_name": "Latitude of the center of the Earth based grid cell.",
            "units": "degrees_north",
            "valid_min": np.float32(-90.0),
            "valid_max": np.float32(90.0),
        },
    )
    write_variable(
        group,
        f"longitude{s}",
        np.where(present, lon2d, FILL).astype(np.float32),
        fill_value=FILL,
        attrs={
            "long_name": "Longitude of the center of the Earth based grid cell.",
            "units": "degrees_east",
            "valid_min": np.float32(-180.0),
            "valid_max": np.float32(179.999),
        },
    )
    for name, index, top in (
        ("EASE_row_index", rows2d, g.n_rows - 1),
        ("EASE_column_index", cols2d, g.n_cols - 1),
    ):
        kind = "row" if "row" in name else "column"
        write_variable(
            group,
            f"{name}{s}",
            np.where(present, index, FLAG_FILL).astype(np.uint16),
            fill_value=FLAG_FILL,
            attrs={
                "long_name": f"The {kind} index of the {g.name[1:]} km EASE grid cell that contains the "
                "associated data.",
                "valid_min": np.uint16(0),
                "valid_max": np.uint16(top),
                "coordinates": coords,
            },
        )
    write_variable(
        group,
        f"tb_time_seconds{s}",
        np.where(present, seconds, FILL),
        fill_value=FILL,
        attrs={
            "long_name": "Arithmetic average of the acquisition time of all of the brightness temperature "
            "footprints with a center that falls within the EASE grid cell in seconds since noon on "
            "January 1, 2000 UTC.",
            "units": "seconds",
            "coordinates": coords,
        },
    )


def _write_metadata(f, file_name: str, g: ease2.Ease2Grid, date: pd.Timestamp) -> None:
    enhanced = g is ease2.M09
    ident = f.create_group("Metadata/DatasetIdentification")
    for key, value in {
        "shortName": "SPL3SMP_E" if enhanced else "SPL3SMP",
        "SMAPShortName": "L3_SM_P_E" if enhanced else "L3_SM_P",
        "fileName": file_name,
        "format": "HDF5",
        "abstract": "Synthetic daily soil moisture in the SMAP L3 radiometer product layout "
        f"(EASE-Grid 2.0 {g.name}); not SMAP observations.",
    }.items():
        ident.attrs[key] = np.bytes_(value)
    extent = f.create_group("Metadata/Extent")
    extent.attrs["rangeBeginningDateTime"] = np.bytes_(f"{date:%Y-%m-%d}T00:00:00.000Z")
    extent.attrs["rangeEndingDateTime"] = np.bytes_(f"{date:%Y-%m-%d}T23:59:59.999Z")
