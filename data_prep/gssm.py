"""GSSM1km GeoTIFFs: lazy, out-of-core reader and a chunked writer.

The GSSM1km exports (Han et al. 2023, Sci Data 10:101) are UInt16 GeoTIFFs in EPSG:4326 holding
``round(SSM * 1000)`` (m3 m-3), one band per day described ``band_YYYY_MM_DD_classification``. A
year may be split into tiles (same dates, adjacent extents) and a period into several files (one per
year). The reader mosaics tiles, concatenates periods and returns a dask-backed Dataset whose chunks
are read with windowed reads, each task opening the files it needs.

Corrupt files are refused, never decoded into plausible-looking garbage: libtiff stops inflating a
DEFLATE block once it has the block's bytes, so it never reaches the block's Adler-32 checksum and
flipped bytes inside a block usually decode without any GDAL error. Before a window is read, every
DEFLATE block it touches is therefore inflated here with its checksum checked (once per block and
process); a bad block, a GDAL decoding error or a truncated file is an :class:`InputError` naming
the file, the band (and its date) and the block. Other codecs (LZW, uncompressed) carry no checksum:
only what GDAL detects is reported for them.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import tempfile
import threading
import zlib
from dataclasses import dataclass
from pathlib import Path

import dask.array as da
import numpy as np
import pandas as pd
import rasterio
import xarray as xr
from rasterio.enums import Interleaving
from rasterio.windows import Window

from catalog import packing
from catalog.errors import InputError

SCALE = 1000.0
# Stored as the files hold it: UInt16 = round(SSM x 1000) (catalog.packing).
PACKING = {"ssm": packing.SSM_MILLI}
BAND_PATTERN = re.compile(r"^band_(\d{4})_(\d{2})_(\d{2})_classification$")
SSM_ATTRS = {
    "units": "m3 m-3",
    "long_name": "surface soil moisture (0-5 cm)",
    "standard_name": "volume_fraction_of_condensed_water_in_soil",
}
WRITE_BLOCK = 512
# Above this uncompressed size the classic 4 GiB TIFF offsets may overflow: write BigTIFF.
BIGTIFF_THRESHOLD = 3_500_000_000
# Memory for one block of rows x days while writing (about 12 bytes per pixel while encoding).
WRITE_MEMORY = 256 * 2**20
# Blocks already checked in this process: (path, mtime, size, band, block column, block row).
_CHECKED: set[tuple] = set()
_CHECKED_MAX = 2_000_000
_CHECKED_LOCK = threading.Lock()
INFLATE_STEP = 4 * 2**20  # bytes inflated at a time while checking a block (bounded memory)


@dataclass(frozen=True)
class _Tile:
    path: str
    row_off: int
    col_off: int
    height: int
    width: int
    nodata: float | None


@dataclass(frozen=True)
class _FileInfo:
    path: str
    dates: tuple[pd.Timestamp, ...]
    transform: rasterio.Affine
    crs: object
    height: int
    width: int
    nodata: float | None
    band_interleaved: bool


def _as_paths(paths) -> list[str]:
    if isinstance(paths, str | os.PathLike):
        paths = [paths]
    out = [str(p) for p in paths]
    if not out:
        raise InputError("read_gssm_geotiff: no files given")
    return out


def _band_date(path: str, band: int, description: str | None) -> pd.Timestamp:
    match = BAND_PATTERN.match((description or "").strip())  # the publisher's table pads some names
    if not match:
        raise InputError(
            f"{path}: band {band} is described {description!r}, expected 'band_YYYY_MM_DD_classification'"
        )
    try:
        return pd.Timestamp(int(match[1]), int(match[2]), int(match[3]))
    except ValueError as err:
        raise InputError(f"{path}: band {band} names an impossible date {description!r}") from err


def _check_complete(src, path: str) -> None:
    """InputError if the last data block of a band lies beyond the end of the file (truncated)."""
    size = os.path.getsize(path)
    block_h, block_w = src.block_shapes[0]
    last = f"{-(-src.width // block_w) - 1}_{-(-src.height // block_h) - 1}"
    bands = range(1, src.count + 1) if src.interleaving == Interleaving.band else [1]
    for band in bands:
        offset = src.get_tag_item(f"BLOCK_OFFSET_{last}", "TIFF", bidx=band)
        length = src.get_tag_item(f"BLOCK_SIZE_{last}", "TIFF", bidx=band)
        if offset and length and int(offset) + int(length) > size:
            raise InputError(f"{path}: truncated file (band {band} data end beyond {size} bytes)")


def _tiff_hint(path: str) -> str:
    """A hint when an unreadable file starts like a TIFF: it is damaged or truncated."""
    try:
        with open(path, "rb") as fh:
            magic = fh.read(4)
        size = os.path.getsize(path)
    except OSError:
        return ""
    if magic in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return f"; it starts like a TIFF, so it is damaged or truncated ({size:,} bytes)"
    return ""


def _inspect(path: str) -> _FileInfo:
    try:
        src = rasterio.open(path)
    except rasterio.errors.RasterioIOError as err:
        raise InputError(f"{path}: not a readable GeoTIFF ({err}){_tiff_hint(path)}") from err
    with src:
        if src.driver != "GTiff":
            raise InputError(f"{path}: format {src.driver}, expected a GeoTIFF")
        if any(dt != "uint16" for dt in src.dtypes):
            raise InputError(f"{path}: data type {src.dtypes[0]}, GSSM1km files are UInt16 (SSM x 1000)")
        if src.crs is None or src.crs.to_epsg() != 4326:
            raise InputError(f"{path}: CRS {src.crs}, expected EPSG:4326")
        t = src.transform
        if t.b != 0 or t.d != 0 or t.a <= 0 or t.e >= 0:
            raise InputError(f"{path}: rotated or flipped geotransform {tuple(t)[:6]} is not supported")
        _check_complete(src, path)
        dates = tuple(_band_date(path, i + 1, d) for i, d in enumerate(src.descriptions))
        if len(set(dates)) != len(dates):
            raise InputError(f"{path}: the same date appears in more than one band")
        return _FileInfo(
            path=path,
            dates=dates,
            transform=t,
            crs=src.crs,
            height=src.height,
            width=src.width,
            nodata=src.nodata,
            band_interleaved=src.interleaving == Interleaving.band,
        )


def _mosaic_grid(files: list[_FileInfo]) -> tuple[rasterio.Affine, int, int, list[_Tile]]:
    """Common grid of tiles that share dates; InputError if they do not align."""
    names = ", ".join(f.path for f in files)
    res_x, res_y = files[0].transform.a, files[0].transform.e
    for f in files[1:]:
        if not (np.isclose(f.transform.a, res_x, rtol=1e-9) and np.isclose(f.transform.e, res_y, rtol=1e-9)):
            raise InputError(f"tiles with different pixel sizes cannot be mosaicked: {names}")
    left = min(f.transform.c for f in files)
    top = max(f.transform.f for f in files)
    tiles, right_px, bottom_px = [], 0, 0
    for f in files:
        col = (f.transform.c - left) / res_x
        row = (f.transform.f - top) / res_y
        if abs(col - round(col)) > 1e-3 or abs(row - round(row)) > 1e-3:
            raise InputError(f"tiles are not aligned on one pixel grid: {names}")
        tile = _Tile(f.path, round(row), round(col), f.height, f.width, f.nodata)
        tiles.append(tile)
        right_px = max(right_px, tile.col_off + f.width)
        bottom_px = max(bottom_px, tile.row_off + f.height)
    transform = rasterio.Affine(res_x, 0.0, left, 0.0, res_y, top)
    return transform, bottom_px, right_px, tiles


class _GeoTiffStack:
    """Array-like (time, row, col) float32 view over groups of tiles; read per window on demand."""

    def __init__(self, groups: list[list[_Tile]], bands: list[tuple[int, int]], shape, nodata, zero_missing):
        self.groups = groups  # tile lists, one per file group
        self.bands = bands  # per time step: (group index, 1-based band index)
        self.shape = shape
        self.dtype = np.dtype("float32")
        self.ndim = 3
        self.nodata = nodata
        self.zero_missing = zero_missing

    def __dask_tokenize__(self):
        stamps = [(t.path, os.stat(t.path).st_mtime_ns) for g in self.groups for t in g]
        return ("gssm-geotiff", stamps, self.bands, self.shape, self.nodata, self.zero_missing)

    def __getitem__(self, key):
        t_sl, r_sl, c_sl = (k if isinstance(k, slice) else slice(k, k + 1) for k in key)
        steps = self.bands[t_sl]
        r0, r1, _ = r_sl.indices(self.shape[1])
        c0, c1, _ = c_sl.indices(self.shape[2])
        out = np.full((len(steps), r1 - r0, c1 - c0), np.nan, dtype=np.float32)
        for group in sorted({g for g, _ in steps}):
            positions = [i for i, (g, _) in enumerate(steps) if g == group]
            indexes = [steps[i][1] for i in positions]
            for tile in self.groups[group]:
                rr0, rr1 = max(r0, tile.row_off), min(r1, tile.row_off + tile.height)
                cc0, cc1 = max(c0, tile.col_off), min(c1, tile.col_off + tile.width)
                if rr0 >= rr1 or cc0 >= cc1:
                    continue
                window = Window(cc0 - tile.col_off, rr0 - tile.row_off, cc1 - cc0, rr1 - rr0)
                raw = _read_window(tile.path, indexes, window)
                values = _decode(
                    raw, self.nodata if self.nodata is not None else tile.nodata, self.zero_missing
                )
                target = out[positions, rr0 - r0 : rr1 - r0, cc0 - c0 : cc1 - c0]
                target = np.where(np.isnan(values), target, values)
                out[positions, rr0 - r0 : rr1 - r0, cc0 - c0 : cc1 - c0] = target
        drop = tuple(0 if not isinstance(k, slice) else slice(None) for k in key)
        return out[drop]


def _read_window(path: str, indexes: list[int], window: Window) -> np.ndarray:
    """Bands ``indexes`` of ``window`` as stored; InputError naming the file and band if corrupt."""
    try:
        src = rasterio.open(path)
    except rasterio.errors.RasterioError as err:
        raise InputError(f"{path}: cannot be opened any more ({_gdal_reason(err)})") from err
    with src:
        _check_blocks(src, path, indexes, window)
        try:
            return src.read(indexes, window=window)
        except rasterio.errors.RasterioError as err:
            raise InputError(
                f"{path}: {_bands_text(src, indexes)}: the data cannot be decoded ({_gdal_reason(err)}); "
                "the file is corrupt, nothing was ingested"
            ) from err


def _gdal_reason(err: BaseException) -> str:
    """The GDAL messages behind a rasterio error, innermost (the decoder's) first."""
    messages, seen = [], set()
    e: BaseException | None = err
    while e is not None and len(messages) < 6:
        text = str(e).strip()
        if text and "See previous exception" not in text and text not in seen:
            messages.append(text)
            seen.add(text)
        e = e.__cause__ or e.__context__
    return "; ".join(reversed(messages)) or type(err).__name__


def _band_text(src, band: int) -> str:
    description = src.descriptions[band - 1] if band - 1 < len(src.descriptions) else None
    match = BAND_PATTERN.match((description or "").strip())  # the publisher's table pads some names
    return f"band {band} ({match[1]}-{match[2]}-{match[3]})" if match else f"band {band}"


def _bands_text(src, indexes: list[int]) -> str:
    if len(indexes) == 1:
        return _band_text(src, indexes[0])
    return f"bands {_band_text(src, indexes[0])[5:]} to {_band_text(src, indexes[-1])[5:]}"


def _check_blocks(src, path: str, indexes: list[int], window: Window) -> None:
    """Inflate every DEFLATE block ``window`` touches in bands ``indexes`` with its checksum checked.

    InputError naming the file, band and block when a block does not inflate, fails its Adler-32
    check, has the wrong size or lies beyond the end of the file. No-op for other codecs.
    """
    if src.compression is None or src.compression.name != "deflate":
        return
    stat = os.stat(path)
    block_h, block_w = src.block_shapes[0]
    tiled = block_w < src.width or src.profile.get("tiled", False)
    band_interleaved = src.interleaving == Interleaving.band or src.count == 1
    samples = 1 if band_interleaved else src.count
    itemsize = np.dtype(src.dtypes[0]).itemsize
    bands = sorted(set(indexes)) if band_interleaved else [1]
    rows = range(int(window.row_off) // block_h, -(-int(window.row_off + window.height) // block_h))
    cols = range(int(window.col_off) // block_w, -(-int(window.col_off + window.width) // block_w))
    todo = [
        (band, bx, by)
        for band in bands
        for by in rows
        for bx in cols
        if (path, stat.st_mtime_ns, stat.st_size, band, bx, by) not in _CHECKED
    ]
    if not todo:
        return
    with open(path, "rb") as fh:
        for band, bx, by in todo:
            offset = src.get_tag_item(f"BLOCK_OFFSET_{bx}_{by}", "TIFF", bidx=band)
            length = src.get_tag_item(f"BLOCK_SIZE_{bx}_{by}", "TIFF", bidx=band)
            if not offset or not length or int(length) == 0:
                continue  # sparse block: not stored, reads as nodata
            offset, length = int(offset), int(length)
            where = (
                f"{path}: {_band_text(src, band) if band_interleaved else 'pixel-interleaved block'}, "
                f"block at row {by * block_h}, column {bx * block_w} (bytes {offset}..{offset + length - 1})"
            )
            if offset + length > stat.st_size:
                raise InputError(f"{where}: beyond the end of the file ({stat.st_size} bytes): truncated")
            rows_in_block = block_h if tiled else min(block_h, src.height - by * block_h)
            expected = rows_in_block * block_w * samples * itemsize
            fh.seek(offset)
            problem = _inflate_problem(fh.read(length), expected)
            if problem:
                raise InputError(
                    f"{where}: corrupt DEFLATE data ({problem}); the file is damaged (re-download or "
                    "re-export it), nothing was ingested"
                )
            with _CHECKED_LOCK:
                if len(_CHECKED) >= _CHECKED_MAX:
                    _CHECKED.clear()
                _CHECKED.add((path, stat.st_mtime_ns, stat.st_size, band, bx, by))


def _inflate_problem(data: bytes, expected: int) -> str | None:
    """Why ``data`` is not a complete zlib stream of ``expected`` bytes (checksum checked), or None."""
    inflater = zlib.decompressobj()
    total, pending = 0, data
    try:
        while True:
            total += len(inflater.decompress(pending, INFLATE_STEP))
            if total > expected:
                return f"decodes to more than the block's {expected} bytes"
            pending = inflater.unconsumed_tail
            if not pending:
                break
        total += len(inflater.flush())
    except zlib.error as err:
        return _zlib_reason(err)
    if not inflater.eof:
        return "the compressed stream ends early"
    if total != expected:
        return f"{total} bytes decoded, the block holds {expected}"
    return None


def _zlib_reason(err: zlib.error) -> str:
    """zlib's message without its "Error -3 while decompressing data: " prefix."""
    return re.sub(r"^Error -?\d+ while decompressing data: ", "", str(err))


def _decode(raw: np.ndarray, nodata: float | None, zero_missing: bool) -> np.ndarray:
    values = raw.astype(np.float32) / np.float32(SCALE)
    missing = np.zeros(raw.shape, dtype=bool)
    if nodata is not None:
        missing |= raw == nodata
    if zero_missing:
        missing |= raw == 0
    values[missing] = np.nan
    return values


def read_gssm_geotiff(paths, *, nodata=None, zero_is_missing=True, chunks=None) -> xr.Dataset:
    """Open GSSM1km GeoTIFFs lazily as a Dataset with ``ssm`` (m3 m-3) on (time, lat, lon).

    ``paths``: one file or several. Files with identical dates are tiles and are mosaicked; groups of
    different dates are concatenated in time (their mosaics must share one grid). ``nodata`` overrides
    the files' nodata value; 0 is missing as well when ``zero_is_missing`` (Earth Engine writes masked
    pixels as 0). ``chunks``: optional ``{"time", "lat", "lon"}`` sizes; by default one day and
    2048 x 2048 pixels per chunk for band-interleaved files (a day is then read alone), 16 days and
    1024 x 1024 pixels for pixel-interleaved ones.
    """
    infos = [_inspect(p) for p in _as_paths(paths)]
    crs = infos[0].crs
    for info in infos[1:]:
        if info.crs != crs:
            raise InputError(f"files have different CRS: {infos[0].path} ({crs}), {info.path} ({info.crs})")

    by_dates: dict[tuple, list[_FileInfo]] = {}
    for info in infos:
        by_dates.setdefault(info.dates, []).append(info)
    grids = [(dates, *_mosaic_grid(files)) for dates, files in by_dates.items()]
    transform, height, width = grids[0][1:4]
    for _, g_transform, g_height, g_width, tiles in grids[1:]:
        if not (g_transform.almost_equals(transform) and (g_height, g_width) == (height, width)):
            first = ", ".join(t.path for t in grids[0][4])
            other = ", ".join(t.path for t in tiles)
            raise InputError(f"files of different dates cover different grids: [{first}] vs [{other}]")

    steps = sorted(
        ((date, group, band + 1) for group, grid in enumerate(grids) for band, date in enumerate(grid[0])),
        key=lambda s: s[0],
    )
    times = [s[0] for s in steps]
    if len(set(times)) != len(times):
        dup = pd.Series(times)[pd.Series(times).duplicated()].iloc[0]
        files = ", ".join(i.path for i in infos)
        raise InputError(f"date {dup.date()} appears in more than one file group: {files}")

    stack = _GeoTiffStack(
        groups=[grid[4] for grid in grids],
        bands=[(g, b) for _, g, b in steps],
        shape=(len(steps), height, width),
        nodata=nodata,
        zero_missing=zero_is_missing,
    )
    chunks = chunks or {}
    band_interleaved = all(i.band_interleaved for i in infos)
    # One day per chunk where days are stored apart; otherwise a block holds every day, so read
    # 16 days at once over a smaller window (16 x 1024 x 1024 float32 = 64 MiB).
    default_t, default_px = (1, 2048) if band_interleaved else (min(len(steps), 16), 1024)
    dask_chunks = (
        chunks.get("time", default_t),
        min(chunks.get("lat", default_px), height),
        min(chunks.get("lon", default_px), width),
    )
    data = da.from_array(
        stack, chunks=dask_chunks, lock=False, asarray=False, meta=np.empty((0, 0, 0), np.float32)
    )

    lon = transform.c + (np.arange(width) + 0.5) * transform.a
    lat = transform.f + (np.arange(height) + 0.5) * transform.e
    ds = xr.Dataset(
        {"ssm": (("time", "lat", "lon"), data, dict(SSM_ATTRS))},
        coords={
            "time": ("time", pd.DatetimeIndex(times).as_unit("ns")),
            "lat": ("lat", lat, {"units": "degrees_north", "standard_name": "latitude"}),
            "lon": ("lon", lon, {"units": "degrees_east", "standard_name": "longitude"}),
        },
    )
    ds.attrs = {
        "source": "GSSM1km GeoTIFF (UInt16 = round(SSM x 1000), EPSG:4326)",
        "source_files": "; ".join(i.path for i in infos),
        "reader": "data_prep.gssm.read_gssm_geotiff",
        "reader_options": json.dumps({"nodata": nodata, "zero_is_missing": zero_is_missing}),
    }
    return ds


def _grid_transform(ssm: xr.DataArray) -> tuple[rasterio.Affine, bool]:
    """Affine of a regular (lat, lon) grid of cell centres; also whether lat must be flipped."""
    lat, lon = ssm["lat"].values.astype(float), ssm["lon"].values.astype(float)
    if lat.size < 2 or lon.size < 2:
        raise InputError("write_gssm_geotiff: need at least 2 latitudes and 2 longitudes")
    dlat, dlon = np.diff(lat), np.diff(lon)
    if not (np.allclose(dlon, dlon[0], rtol=1e-6) and np.allclose(dlat, dlat[0], rtol=1e-6)) or dlon[0] <= 0:
        raise InputError("write_gssm_geotiff: lat/lon must be regularly spaced, lon ascending")
    flip = dlat[0] > 0
    res_x = (lon[-1] - lon[0]) / (lon.size - 1)
    res_y = abs(lat[-1] - lat[0]) / (lat.size - 1)
    top = lat.max() + res_y / 2
    return rasterio.Affine(res_x, 0.0, lon[0] - res_x / 2, 0.0, -res_y, top), flip


def _encode(values: np.ndarray) -> np.ndarray:
    """SSM (m3 m-3) → UInt16 round(SSM*1000); NaN → 0 (nodata); valid values clipped to 1…65535."""
    scaled = np.rint(np.asarray(values, dtype=np.float32) * np.float32(SCALE))
    valid = np.isfinite(scaled)
    np.clip(scaled, 1, np.iinfo(np.uint16).max, out=scaled)
    scaled[~valid] = 0
    return scaled.astype(np.uint16)


def write_gssm_geotiff(path, ssm: xr.DataArray) -> Path:
    """Write ``ssm`` (time, lat, lon; m3 m-3) as a GSSM1km-style GeoTIFF and return its path.

    UInt16 = round(SSM x 1000), nodata 0 (NaN → 0; a valid value below 0.0005 is stored as 1 so it
    stays distinct from nodata), one band per day described ``band_YYYY_MM_DD_classification``,
    EPSG:4326, 512 x 512 tiles, DEFLATE, band-interleaved, BigTIFF when large. The array
    is written 512 rows at a time (a few days at once), so a dask-backed input is never loaded whole.
    The file appears only when complete.
    """
    if set(ssm.dims) != {"time", "lat", "lon"}:
        raise InputError(f"write_gssm_geotiff: dims {ssm.dims}, expected (time, lat, lon)")
    ssm = ssm.transpose("time", "lat", "lon")
    transform, flip = _grid_transform(ssm)
    if flip:
        ssm = ssm.isel(lat=slice(None, None, -1))
    n_time, height, width = ssm.shape
    dates = pd.DatetimeIndex(ssm["time"].values)
    path = Path(path)
    profile = {
        "driver": "GTiff",
        "dtype": "uint16",
        "count": n_time,
        "height": height,
        "width": width,
        "crs": "EPSG:4326",
        "transform": transform,
        "nodata": 0,
        "tiled": True,
        "blockxsize": WRITE_BLOCK,
        "blockysize": WRITE_BLOCK,
        "compress": "deflate",
        "predictor": 2,
        "interleave": "band",
        "bigtiff": "YES" if n_time * height * width * 2 > BIGTIFF_THRESHOLD else "NO",
    }
    fd, tmp = tempfile.mkstemp(suffix=".tif.part", dir=path.parent)
    os.close(fd)
    try:
        with rasterio.open(tmp, "w", **profile) as dst:
            for band, date in enumerate(dates, start=1):
                dst.set_band_description(band, f"band_{date:%Y_%m_%d}_classification")
            days_per_block = max(1, WRITE_MEMORY // (WRITE_BLOCK * width * 12))
            for row in range(0, height, WRITE_BLOCK):
                rows = slice(row, min(row + WRITE_BLOCK, height))
                window = Window(0, row, width, rows.stop - row)
                for t0 in range(0, n_time, days_per_block):
                    t1 = min(t0 + days_per_block, n_time)
                    block = np.asarray(ssm[t0:t1, rows, :].values)
                    dst.write(_encode(block), indexes=list(range(t0 + 1, t1 + 1)), window=window)
            dst.update_tags(units="m3 m-3", scale_factor=str(1 / SCALE), nodata="0")
        os.replace(tmp, path)
    except rasterio.errors.RasterioError as err:
        full = _disk_full_error(err, path, n_time * height * width * 2)
        Path(tmp).unlink(missing_ok=True)
        if full is None:
            raise
        raise full from err
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


# A write that fails with less than this free on the disk failed for want of space (libtiff reports
# ENOSPC only on stderr, GDAL only "Write error at scanline").
FULL_DISK_BYTES = 16 * 2**20


def _disk_full_error(err: Exception, path: Path, needed: int) -> OSError | None:
    """An ``OSError(ENOSPC)`` naming ``path`` when a GDAL write failed on a (nearly) full disk."""
    try:
        free = shutil.disk_usage(path.parent).free
    except OSError:
        return None
    if free >= FULL_DISK_BYTES:
        return None
    return OSError(
        errno.ENOSPC,
        f"No space left on device; GDAL: {_gdal_reason(err)}; the GeoTIFF needs up to about "
        f"{needed / 2**20:,.1f} MiB",
        str(path),
    )
