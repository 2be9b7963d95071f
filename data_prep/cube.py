"""Gridded cubes from files as users download them (netCDF, GRIB, Zarr, GeoTIFF, zip archives),
turned into canonical variables by a recipe (``data_prep.recipe``), aggregated to daily values and
regridded onto one grid.

Per canonical variable, in this order (each step recorded in the returned notes, which go into the
product's provenance):

1. **Source fields.** Every file is opened lazily and brought to dims (time, lat, lon): CDS netCDF
   ``valid_time``/``latitude``/``longitude``, GRIB (cfgrib in a child process, ``data_prep.grib``;
   ``time`` × ``step`` stacked to valid times), longitudes 0…360 wrapped to −180…180, latitudes
   north first. Scale factors, offsets and fill values are applied from the file (CF decoding).
   The same source variable in several files is joined along time; a time step present twice is an
   error.
2. **Step type from the file.** ECMWF files state ``GRIB_stepType`` (``accum``, ``instant``,
   ``avg``, ``avgua``, ``avgad``…); a rule may require one, and a variable mixing two is refused.
   CF files without it are read as instantaneous or mean values unless ``cell_methods`` says
   ``time: sum``.
3. **Conversion.** Accumulations (J m-2, m) become mean rates over the recipe's accumulation period
   (ERA5: the hour ending at the valid time; ERA5-Land: de-accumulated first, since its fields
   accumulate from 00 UTC). Water masses become depths (``water_equivalent``, 1000 kg m-3), depths
   volume fractions (``layer_depth_m``); units are converted with cf-units (``data_prep.units``);
   ``sign`` turns ECMWF's downward-positive fluxes into FLUXNET's upward-positive LE and H; VPD and
   wind speed are derived (``data_prep.meteo``); classes go through a cross-walk table.
4. **Daily values.** Sub-daily fields are averaged per UTC day (accumulations labelled by the middle
   of their accumulation interval, so the 00 UTC value counts for the day before); a day needs at
   least :data:`MIN_COVERAGE` of its expected steps, else it is missing. Fields with one value per
   day or less (daily samples, dekads, months) are kept as they are, dated by their UTC day, and the
   notes say they are samples, not daily means.
5. **Regridding** onto the target grid (``data_prep.regrid``): another product's grid, a
   resolution, or the sources' own grid when all variables share one.
"""

from __future__ import annotations

import glob
import logging
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from catalog import time_steps
from catalog.errors import InputError
from catalog.variables import VARIABLES
from data_prep import meteo, regrid, units
from data_prep.recipe import Recipe, Rule, crosswalk

log = logging.getLogger(__name__)

SUFFIXES = {
    ".nc": "netcdf", ".nc4": "netcdf", ".cdf": "netcdf", ".h5": "netcdf", ".hdf5": "netcdf",
    ".grib": "grib", ".grb": "grib", ".grib1": "grib", ".grib2": "grib", ".grb2": "grib",
    ".tif": "geotiff", ".tiff": "geotiff", ".zip": "zip", ".zarr": "zarr",
}  # fmt: skip
MIN_COVERAGE = 0.75  # fraction of a day's expected sub-daily steps needed for a daily mean
STATIC_TIME = np.datetime64("2000-01-01", "ns")  # date given to layers without a time axis
DAY = np.timedelta64(1, "D")
ACCUMULATED = {"accum"}
MEANS = {"avg", "avgua", "avgad", "avgas", "avgid"}


# ---------------------------------------------------------------- finding and opening files


def expand(paths) -> list[str]:
    """Files named by ``paths``: files, folders (searched recursively), glob patterns, Zarr stores
    (folders ending in .zarr or fsspec URLs). Anything that matches nothing is an error."""
    out: list[str] = []
    for p in [paths] if isinstance(paths, (str, Path)) else paths:
        s = str(p)
        if "://" in s:
            out.append(s)
            continue
        if any(c in s for c in "*?["):
            found = sorted(glob.glob(s, recursive=True))
            if not found:
                raise InputError(f"{s}: the pattern matches no file")
            out += [f for f in found if Path(f).is_file() or f.endswith(".zarr")]
            continue
        path = Path(s)
        if path.is_dir() and path.suffix != ".zarr":
            found = sorted(str(f) for f in path.rglob("*") if f.suffix.lower() in SUFFIXES and f.is_file())
            found += sorted(str(f) for f in path.rglob("*.zarr") if f.is_dir())
            if not found:
                raise InputError(f"{path}: no gridded files ({', '.join(sorted(SUFFIXES))}) in this folder")
            out += found
        elif path.exists():
            out.append(str(path))
        else:
            raise InputError(f"{path}: no such file or folder")
    return out


def _kind(path: str) -> str:
    if "://" in path or path.rstrip("/").endswith(".zarr"):
        return "zarr"
    kind = SUFFIXES.get(Path(path).suffix.lower())
    if kind is None:
        raise InputError(f"{path}: unknown file type (expected one of {', '.join(sorted(SUFFIXES))})")
    return kind


def _open_netcdf(path: str) -> list[xr.Dataset]:
    errors = []
    for engine in ("netcdf4", "h5netcdf"):
        try:
            return [xr.open_dataset(path, engine=engine, chunks={})]
        except Exception as exc:  # noqa: BLE001 - try the next engine, report both
            errors.append(f"{engine}: {exc}")
    raise InputError(f"{path}: not a readable netCDF/HDF5 file ({'; '.join(errors)})")


def _open_grib(path: str, workdir: Path) -> list[xr.Dataset]:
    from data_prep import grib

    converted = grib.to_netcdf(path, workdir / f"grib-{Path(path).stem}")
    return [ds for nc in converted for ds in _open_netcdf(str(nc))]


def _open_geotiff(path: str) -> list[xr.Dataset]:
    import rasterio

    try:
        src = rasterio.open(path)
    except rasterio.errors.RasterioIOError as exc:
        raise InputError(f"{path}: not a readable GeoTIFF ({exc})") from exc
    with src:
        if src.crs is None or not src.crs.is_geographic:
            raise InputError(f"{path}: GeoTIFF in {src.crs}; only geographic lat/lon grids are read")
        t = src.transform
        if t.b != 0 or t.d != 0:
            raise InputError(f"{path}: rotated GeoTIFF grids are not supported")
        lon = t.c + (np.arange(src.width) + 0.5) * t.a
        lat = t.f + (np.arange(src.height) + 0.5) * t.e
        data = {}
        for b in range(1, src.count + 1):
            arr = src.read(b, masked=True).astype("float32").filled(np.nan)
            scale, offset = src.scales[b - 1], src.offsets[b - 1]
            arr = arr * scale + offset
            attrs = {"units": src.units[b - 1]} if src.units[b - 1] else {}
            data[f"band_{b}"] = (("lat", "lon"), arr, attrs)
    return [xr.Dataset(data, coords={"lat": lat, "lon": lon})]


def _open_zarr(path: str) -> list[xr.Dataset]:
    try:
        return [xr.open_zarr(path)]
    except Exception as exc:  # noqa: BLE001 - zarr and fsspec raise many types
        raise InputError(f"{path}: not a readable Zarr store ({type(exc).__name__}: {exc})") from exc


def open_file(path: str, workdir: Path) -> list[tuple[str, xr.Dataset]]:
    """(label, standardised dataset) for each dataset in ``path``; zip archives are unpacked into
    ``workdir`` and their members opened."""
    kind = _kind(path)
    if kind == "zip":
        try:
            archive = zipfile.ZipFile(path)
        except zipfile.BadZipFile as exc:
            raise InputError(f"{path}: not a readable zip archive ({exc})") from exc
        out = []
        with archive:
            members = [
                m for m in archive.namelist() if Path(m).suffix.lower() in SUFFIXES and not m.endswith("/")
            ]
            if not members:
                raise InputError(f"{path}: the archive holds no gridded files")
            target = workdir / Path(path).stem
            for m in members:
                archive.extract(m, target)
                out += [(f"{path}!{m}", ds) for _, ds in open_file(str(target / m), workdir)]
        return out
    if kind == "grib":  # decoded in a child process (see data_prep.grib)
        return [(path, standardise(ds, path)) for ds in _open_grib(path, workdir)]
    opener = {"netcdf": _open_netcdf, "geotiff": _open_geotiff, "zarr": _open_zarr}[kind]
    return [(path, standardise(ds, path)) for ds in opener(path)]


# ---------------------------------------------------------------- standard dims


def standardise(ds: xr.Dataset, label: str) -> xr.Dataset:
    """Dims (time, lat, lon), lat descending, lon ascending in −180…180, gridded variables only."""
    ren = {
        k: v
        for k, v in {"latitude": "lat", "longitude": "lon", "x": "lon", "y": "lat"}.items()
        if k in ds.variables
    }
    ds = ds.rename(ren)
    if "step" in ds.dims and "time" in ds.dims and "valid_time" in ds.coords:  # GRIB forecasts
        ds = ds.stack(vt=("time", "step"))
        ds = ds.assign_coords(vt=ds.valid_time.values).drop_vars(
            ["time", "step", "valid_time"], errors="ignore"
        )
        ds = ds.rename(vt="time")
    elif "valid_time" in ds.dims:
        ds = ds.drop_vars("time", errors="ignore").rename(valid_time="time")
    elif "valid_time" in ds.coords and "time" in ds.dims:
        ds = ds.assign_coords(time=ds.valid_time.values).drop_vars("valid_time")
    for d in ("lat", "lon"):
        if d not in ds.dims:
            raise InputError(f"{label}: no {d} dimension (dims {dict(ds.sizes)})")
    keep = [
        v
        for v, da in ds.data_vars.items()
        if {"lat", "lon"} <= set(da.dims) and set(da.dims) <= {"time", "lat", "lon"}
    ]
    if not keep:
        raise InputError(f"{label}: no variable on a lat/lon grid")
    ds = ds[keep]
    ds = ds.drop_vars([c for c in ds.coords if c not in ("time", "lat", "lon")])
    if "time" not in ds.dims:
        ds = ds.expand_dims(time=[STATIC_TIME])
    if float(ds.lon.max()) > 180:
        ds = ds.assign_coords(lon=((ds.lon + 180) % 360) - 180)
    ds = ds.sortby("lon").sortby("lat", ascending=False)
    return ds.transpose("time", "lat", "lon")


# ---------------------------------------------------------------- source fields


def _step_type(da: xr.DataArray) -> str | None:
    st = da.attrs.get("GRIB_stepType")
    if st:
        return str(st)
    if "time: sum" in str(da.attrs.get("cell_methods", "")):
        return "accum"
    return None


def index_sources(opened: list[tuple[str, xr.Dataset]]) -> dict[str, dict]:
    """{source variable: {da, step_type, files, standard_name}} with pieces joined along time."""
    pieces: dict[str, list[tuple[str, xr.DataArray]]] = {}
    for label, ds in opened:
        for v in ds.data_vars:
            pieces.setdefault(str(v), []).append((label, ds[v]))
    out = {}
    for v, parts in pieces.items():
        types = {_step_type(da) for _, da in parts}
        if len(types) > 1:
            raise InputError(
                f"variable {v!r} mixes step types {sorted(map(str, types))} across "
                f"{', '.join(lbl for lbl, _ in parts)}: ingest accumulated and instantaneous fields apart"
            )
        grids = {(da.sizes["lat"], da.sizes["lon"], float(da.lat[0]), float(da.lon[0])) for _, da in parts}
        if len(grids) > 1:
            files = ", ".join(lbl for lbl, _ in parts)
            raise InputError(f"variable {v!r} comes on {len(grids)} different grids in {files}")
        times = np.concatenate([da.time.values for _, da in parts])
        if len(np.unique(times)) < len(times):
            dup = pd.DatetimeIndex(times)[pd.DatetimeIndex(times).duplicated()][0]
            raise InputError(
                f"variable {v!r}: time {dup} appears in more than one file "
                f"({', '.join(lbl for lbl, _ in parts)}); overlapping inputs cannot be ingested together"
            )
        da = parts[0][1] if len(parts) == 1 else xr.concat([p for _, p in parts], dim="time").sortby("time")
        out[v] = {
            "da": da,
            "step_type": types.pop(),
            "files": [lbl for lbl, _ in parts],
            "standard_name": da.attrs.get("standard_name"),
        }
    return out


def _find(rule: Rule, sources: dict[str, dict]) -> list[str] | None:
    """Source variable names this rule uses, or None when the files lack them."""
    if rule.standard_name:
        found = [v for v, s in sources.items() if s["standard_name"] == rule.standard_name]
        return found[:1] or None
    return list(rule.sources) if all(s in sources for s in rule.sources) else None


def _source_units(src: dict, name: str, rule: Rule, notes: list[str]):
    text = src["da"].attrs.get("units")
    if not text:
        notes.append(f"{name}: the file gives no units; taken as {rule.units} (the recipe's)")
        text = rule.units
    return units.parse(text, f"variable {name!r} in {src['files'][0]}")


def _deaccumulate(da: xr.DataArray, name: str) -> xr.DataArray:
    """Hourly sums from ERA5-Land fields accumulated since 00 UTC: a(t) − a(t − 1 h), except at 01 UTC,
    where a(t) is already the first hour's sum (ERA5-Land documentation, 'accumulations')."""
    t = pd.DatetimeIndex(da.time.values)
    steps = np.diff(t.values).astype("timedelta64[m]").astype(int)
    if len(t) > 1 and not (steps == 60).all():
        raise InputError(f"variable {name!r}: accumulations since 00 UTC need contiguous hourly steps")
    prev = da.shift(time=1)
    hourly = xr.where(xr.DataArray(t.hour == 1, dims="time"), da, da - prev)
    if t[0].hour != 1:  # the first step has no predecessor in the files
        hourly = hourly.where(xr.DataArray(np.arange(len(t)) > 0, dims="time"))
    return hourly


def _converted(rule: Rule, name: str, src: dict, recipe: Recipe, notes: list[str]):
    """One source field in the rule's target units (or in degC / m s-1 for derivation inputs)."""
    da = src["da"].astype("float32")
    unit = _source_units(src, name, rule, notes)
    step = src["step_type"]
    if rule.step_type and step is not None and step not in rule.step_type:
        raise InputError(
            f"variable {name!r} in {src['files'][0]} has step type {step!r}; recipe {recipe.name!r} "
            f"expects {list(rule.step_type)}"
        )
    if step in ACCUMULATED:
        if recipe.accumulation_period_s is None:
            raise InputError(f"recipe {recipe.name!r} does not say over which period {name!r} is accumulated")
        if recipe.accumulation_kind == "since_00utc":
            da = _deaccumulate(da, name)
            notes.append(f"{name}: de-accumulated (accumulated since 00 UTC) to hourly sums")
        text = str(unit)
        da, unit = units.per_second(da, unit, recipe.accumulation_period_s)
        notes.append(
            f"{name}: sum over the {recipe.accumulation_period_s:g} s accumulation period ({text}) / "
            f"{recipe.accumulation_period_s:g} s → mean rate"
        )
    if rule.water_equivalent:
        da, unit = units.water_depth(da, unit)
        notes.append(f"{name}: water mass → water depth (density {units.WATER_DENSITY:g} kg m-3)")
    if rule.layer_depth_m:
        da, unit = units.per_layer_depth(da, unit, rule.layer_depth_m)
        notes.append(f"{name}: water depth in a {rule.layer_depth_m:g} m layer → volume fraction")
    return da, unit


# derive name → (function of the inputs in DERIVED order, their units, result units, note)
DERIVATIONS = {
    "vpd_from_dewpoint": (
        meteo.vpd_from_dewpoint_hpa,
        "degC",
        "hPa",
        "vpd = e_s({}) − e_s({}), Tetens/FAO-56 (data_prep.meteo)",
    ),
    "wind_speed": (meteo.wind_speed, "m s-1", "m s-1", "ws = sqrt({}² + {}²)"),
}


def canonical_field(canonical: str, rule: Rule, names: list[str], sources: dict, recipe: Recipe) -> tuple:
    """(DataArray in the rule's units on its source grid and time axis, notes)."""
    notes: list[str] = []
    where = f"{canonical} (recipe {recipe.name})"
    if rule.derive in DERIVATIONS:
        func, in_units, out_units, note = DERIVATIONS[rule.derive]
        inputs = []
        for n in names:
            part, unit = _converted(rule, n, sources[n], recipe, notes)
            inputs.append(units.convert(part, unit, in_units, where))
        da, unit = func(*xr.align(*inputs, join="inner")), units.parse(out_units, where)
        notes.append(note.format(*names))
    elif rule.crosswalk:
        table, source = crosswalk(rule.crosswalk)
        raw = sources[names[0]]["da"]
        lut = np.full(256 if not table else max(max(table), 255) + 1, np.nan, dtype="float32")
        for k, v in table.items():
            lut[k] = np.nan if v is None else v
        da = xr.apply_ufunc(
            lambda a: lut[np.clip(np.nan_to_num(a, nan=0).astype("int64"), 0, lut.size - 1)],
            raw, dask="parallelized", output_dtypes=["float32"],
        )  # fmt: skip
        unit = units.parse("1", where)
        notes.append(
            f"{names[0]} classes → {canonical} through {rule.crosswalk} ({source}); unlisted codes missing"
        )
    else:
        parts = []
        for n in names:
            part, unit = _converted(rule, n, sources[n], recipe, notes)
            parts.append(units.convert(part, unit, rule.units, where))
        da = parts[0]
        for p in parts[1:]:
            da = da + p
        if len(parts) > 1:
            notes.append(f"{canonical} = {' + '.join(names)}")
        unit = units.parse(rule.units, where)
    da = units.convert(da, unit, rule.units, where)
    if rule.sign != 1:
        da = da * rule.sign
        notes.append(
            f"{canonical}: sign {rule.sign:+g} (source flux positive downward; FLUXNET LE/H positive upward)"
        )
    var = VARIABLES.get(canonical)
    da = da.astype("float32")
    da.attrs = {"units": rule.units, "long_name": rule.long_name or (var.long_name if var else canonical)}
    if var and var.standard_name:
        da.attrs["standard_name"] = var.standard_name
    return da.rename(canonical), notes


# ---------------------------------------------------------------- daily values


def to_daily(
    da: xr.DataArray, *, accumulated: bool, period_s: float | None, min_coverage: float = MIN_COVERAGE
) -> tuple[xr.DataArray, str]:
    """Daily values of ``da`` and the rule used (see the module docstring, step 4)."""
    t = pd.DatetimeIndex(da.time.values)
    if len(t) > 1:
        step_s = float(np.median(np.diff(t.values).astype("timedelta64[s]").astype(float)))
    else:
        step_s = 86400.0
    if step_s >= 86400.0 * (1 - 1e-6):
        days = t.floor("D")
        if days.has_duplicates:
            raise InputError(
                f"variable {da.name!r}: two time steps fall on one day ({days[days.duplicated()][0].date()})"
            )
        hours = sorted({f"{x:%H:%M}" for x in t})
        return da.assign_coords(time=days.values.astype("datetime64[ns]")), (
            f"one value per time step (valid at {', '.join(hours[:4])} UTC), not a daily mean"
        )
    label = t - pd.Timedelta(seconds=(period_s or step_s) / 2) if accumulated else t
    shifted = da.assign_coords(time=label.values)
    expected = int(round(86400.0 / step_s))
    need = time_steps.min_valid_samples(expected, min_coverage)
    daily = time_steps.daily_mean(shifted, samples_per_day=expected, min_coverage=min_coverage)
    daily = daily.astype("float32")
    daily.attrs = dict(da.attrs)
    rule = (
        f"daily mean of {step_s / 3600:g}-hourly values per UTC day"
        + (" (each accumulation counted for the middle of its interval)" if accumulated else "")
        + f"; a day needs at least {need} of {expected} steps ({min_coverage:.0%}), else missing"
    )
    return daily, rule


# ---------------------------------------------------------------- the whole cube


def _subset(da: xr.DataArray, bbox, margin: float = 0.0) -> xr.DataArray:
    w, s, e, n = bbox
    out = da.sel(lat=slice(n + margin, s - margin), lon=slice(w - margin, e + margin))
    if out.sizes["lat"] == 0 or out.sizes["lon"] == 0:
        g = regrid.grid_of(da)
        raise InputError(
            f"bbox {tuple(bbox)} is outside the data (lat {g.lat[-1]:.4f}…{g.lat[0]:.4f}, "
            f"lon {g.lon[0]:.4f}…{g.lon[-1]:.4f})"
        )
    return out


def read_cube(
    paths, recipe: Recipe, *, workdir: Path, grid: regrid.Grid | None = None, resolution: float | None = None,
    bbox=None,
    only=None,
    min_coverage: float = MIN_COVERAGE,
) -> tuple[xr.Dataset, dict]:  # fmt: skip
    """The canonical cube of ``paths`` under ``recipe`` and its provenance notes
    ``{variable: {sources, conversion, time_aggregation, regridding}}``. Every variable of the
    recipe whose sources the files hold is made; ``only`` (canonical names) restricts the cube to
    those and makes each of them required."""
    files = expand(paths)
    opened = [item for f in files for item in open_file(f, workdir)]
    sources = index_sources(opened)
    if not recipe.variables:
        raise InputError(f"recipe {recipe.name!r} maps no variables; give --variables SRC=canonical,…")
    fields, notes = {}, {}
    wanted = list(recipe.variables) if not only else list(only)
    unknown = [v for v in wanted if v not in recipe.variables]
    if unknown:
        raise InputError(
            f"recipe {recipe.name!r} cannot make {unknown}; it makes {', '.join(recipe.variables)}"
        )
    for canonical in wanted:
        rules = recipe.variables[canonical]
        for rule in rules:
            names = _find(rule, sources)
            if names is None:
                continue
            da, conv = canonical_field(canonical, rule, names, sources, recipe)
            accumulated = any(sources[n]["step_type"] in ACCUMULATED | MEANS for n in names)
            if recipe.static:
                da = da.isel(time=[0])
                agg = f"static layer (first time step, {str(da.time.values[0])[:10]})"
            else:
                da, agg = to_daily(
                    da,
                    accumulated=accumulated,
                    period_s=recipe.accumulation_period_s,
                    min_coverage=min_coverage,
                )
            fields[canonical] = (da, rule)
            notes[canonical] = {
                "sources": sorted({f for n in names for f in sources[n]["files"]}),
                "source_variables": names,
                "conversion": conv,
                "time_aggregation": agg,
            }
            break
        else:
            if only:
                needs = sorted({s for r in rules for s in (r.sources or (r.standard_name,))})
                raise InputError(
                    f"recipe {recipe.name!r}: {canonical} needs {' or '.join(needs)}, which the files lack; "
                    f"they hold {', '.join(sorted(sources))}"
                )
    if not fields:
        raise InputError(
            f"recipe {recipe.name!r}: none of its variables is in the files ({', '.join(sorted(sources))})"
        )
    if grid is None and resolution is not None:
        extents = [regrid.grid_of(da) for da, _ in fields.values()]
        box = bbox or (
            min(g.lon[0] - g.dlon / 2 for g in extents), min(g.lat[-1] - g.dlat / 2 for g in extents),
            max(g.lon[-1] + g.dlon / 2 for g in extents), max(g.lat[0] + g.dlat / 2 for g in extents),
        )  # fmt: skip
        like = next(
            (g for g in extents if np.isclose(g.dlon, resolution) and np.isclose(g.dlat, resolution)), None
        )
        grid = regrid.regular_grid(resolution, box, like)
    elif grid is not None and bbox is not None:
        w, s, e, n = bbox
        grid = regrid.Grid(
            grid.lat[(grid.lat <= n) & (grid.lat >= s)], grid.lon[(grid.lon >= w) & (grid.lon <= e)]
        )
        if grid.lat.size < 2 or grid.lon.size < 2:
            raise InputError(f"bbox {tuple(bbox)} holds fewer than 2 x 2 cells of the target grid")
    out = {}
    if grid is None:
        grids = {name: regrid.grid_of(da) for name, (da, _) in fields.items()}
        first = next(iter(grids.values()))
        if not all(g.same_as(first) for g in grids.values()):
            text = "; ".join(f"{k}: {g.describe()}" for k, g in grids.items())
            raise InputError(
                f"the variables come on different grids ({text}); pass --grid PRODUCT or --resolution DEG"
            )
        for name, (da, _) in fields.items():
            out[name] = _subset(da, bbox) if bbox else da
            notes[name]["regridding"] = regrid.METHOD_TEXT["none"]
    else:
        for name, (da, rule) in fields.items():
            src = regrid.grid_of(da)
            margin = 2 * max(src.dlat, src.dlon)
            box = (grid.lon[0] - grid.dlon / 2, grid.lat[-1] - grid.dlat / 2,
                   grid.lon[-1] + grid.dlon / 2, grid.lat[0] + grid.dlat / 2)  # fmt: skip
            da = _subset(da, box, margin)
            out[name], method = regrid.regrid(da, grid, categorical=rule.categorical)
            notes[name]["regridding"] = f"{regrid.METHOD_TEXT[method]}; target {grid.describe()}"
    ds = xr.merge(list(out.values()), join="outer", combine_attrs="drop")
    for name, da in out.items():
        ds[name].attrs = dict(da.attrs)
    ds.attrs = {"title": recipe.title}
    return ds, notes
