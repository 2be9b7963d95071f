"""Thin HDF5 layer (h5py): open files with clear errors, read datasets with fill values, scale factors
and valid ranges applied, decode attributes, write datasets with CF-style attributes.

A dataset that cannot be read (a compressed chunk whose filter fails, e.g. a gzip chunk failing
its Adler-32 check, a Fletcher-32 mismatch, a chunk beyond the end of a truncated file, broken
metadata) is an :class:`InputError` naming the file and the dataset and, for gzip chunks, the chunk
and its byte range in the file.
"""

from __future__ import annotations

import re
import zlib

import h5py
import numpy as np

from catalog.errors import InputError


def open_file(path, mode: str = "r") -> h5py.File:
    """Open an HDF5 file; InputError naming the file when it is missing, truncated or not HDF5."""
    try:
        return h5py.File(path, mode)
    except (OSError, ValueError) as err:
        raise InputError(f"{path}: not a readable HDF5 file ({err})") from err


def decode_attrs(obj: h5py.HLObject) -> dict[str, object]:
    """Attributes of a group or dataset with bytes decoded to str and numpy scalars to Python."""
    out = {}
    for key, value in obj.attrs.items():
        if isinstance(value, bytes | np.bytes_):
            value = value.decode("utf-8", "replace")
        elif isinstance(value, np.ndarray) and value.dtype.kind == "S":
            value = [v.decode("utf-8", "replace") for v in value.ravel()]
        elif isinstance(value, np.generic):
            value = value.item()
        out[key] = value
    return out


def dataset(file: h5py.File, name: str) -> h5py.Dataset:
    """Dataset ``name`` of ``file``; InputError naming the file when it is missing or unreadable."""
    try:
        obj = file.get(name)
    except (OSError, RuntimeError, KeyError, ValueError) as err:
        raise InputError(
            f"{file.filename}: the metadata of '{name}' cannot be read ({err}); the file is corrupt"
        ) from err
    if not isinstance(obj, h5py.Dataset):
        raise InputError(f"{file.filename}: no dataset '{name}'")
    return obj


def has_dataset(file: h5py.File, name: str) -> bool:
    """Whether ``name`` exists in ``file``; InputError naming the file when its metadata is corrupt."""
    try:
        return name in file
    except (OSError, RuntimeError, KeyError, ValueError) as err:
        raise InputError(f"{file.filename}: cannot look up '{name}' ({err}); the file is corrupt") from err


def _read(ds: h5py.Dataset, name: str, index=()) -> np.ndarray:
    """``ds[index]``; InputError naming the file, the dataset and (gzip) the corrupt chunk."""
    try:
        return ds[index]
    except (OSError, RuntimeError, ValueError) as err:
        where = bad_chunk(ds)
        raise InputError(
            f"{ds.file.filename}: cannot read '{name}' ({err}){f'; {where}' if where else ''}; the file is "
            "corrupt or truncated, nothing was read from it"
        ) from err


def bad_chunk(ds: h5py.Dataset, limit: int = 100_000) -> str | None:
    """Where a gzip-compressed dataset holds a chunk that does not inflate (checksum checked), or None.

    Best effort, for error messages: other filters and unchunked datasets give None."""
    try:
        if ds.chunks is None or ds.compression != "gzip":
            return None
        for i in range(min(ds.id.get_num_chunks(), limit)):
            info = ds.id.get_chunk_info(i)
            if info.byte_offset is None:
                continue
            span = f"bytes {info.byte_offset}..{info.byte_offset + info.size - 1}"
            try:
                _, raw = ds.id.read_direct_chunk(info.chunk_offset)
            except (OSError, RuntimeError, ValueError) as err:
                return f"chunk at {info.chunk_offset} ({span}) cannot be read ({err})"
            try:
                zlib.decompress(raw)
            except zlib.error as err:
                reason = _zlib_reason(err)
                return f"chunk at {info.chunk_offset} ({span}) is corrupt ({reason})"
    except (OSError, RuntimeError, ValueError):
        return None
    return None


def _zlib_reason(err: zlib.error) -> str:
    """zlib's message without its "Error -3 while decompressing data: " prefix."""
    return re.sub(r"^Error -?\d+ while decompressing data: ", "", str(err))


def read_variable(file: h5py.File, name: str, *, valid_range: bool = False, index=()) -> np.ndarray:
    """Read dataset ``name`` (optionally a slice ``index``) as floats with missing values as NaN.

    ``_FillValue`` (and ``missing_value``) become NaN, then ``scale_factor`` / ``add_offset`` are
    applied (CF order: value = stored * scale_factor + add_offset). With ``valid_range``, values
    outside ``valid_min``/``valid_max`` (or ``valid_range``) become NaN too; as in CF, the bounds
    are compared with the stored (packed) values. Integer and float32 data
    come back as float32 (exact for up to 24-bit integers such as uint16 flags), float64 as float64.
    """
    ds = dataset(file, name)
    raw = _read(ds, name, index)
    if raw.dtype.kind not in "iuf":
        raise InputError(f"{file.filename}: '{name}' holds {raw.dtype}, not numbers")
    try:
        attrs = dict(ds.attrs)
    except (OSError, RuntimeError, KeyError, ValueError) as err:
        raise InputError(f"{file.filename}: the attributes of '{name}' cannot be read ({err})") from err
    dtype = np.float64 if raw.dtype == np.float64 else np.float32
    values = raw.astype(dtype)
    missing = np.zeros(raw.shape, dtype=bool)
    for key in ("_FillValue", "missing_value"):
        if key in attrs:
            missing |= raw == np.asarray(attrs[key]).astype(raw.dtype)
    if valid_range:
        low, high = _valid_bounds(attrs)
        if low is not None:
            missing |= raw < low
        if high is not None:
            missing |= raw > high
    if "scale_factor" in attrs:
        values *= dtype(np.asarray(attrs["scale_factor"]).item())
    if "add_offset" in attrs:
        values += dtype(np.asarray(attrs["add_offset"]).item())
    values[missing] = np.nan
    return values


def _valid_bounds(attrs) -> tuple[float | None, float | None]:
    if "valid_range" in attrs:
        low, high = np.asarray(attrs["valid_range"]).tolist()
        return low, high
    low = np.asarray(attrs["valid_min"]).item() if "valid_min" in attrs else None
    high = np.asarray(attrs["valid_max"]).item() if "valid_max" in attrs else None
    return low, high


def read_raw(file: h5py.File, name: str, index=()) -> np.ndarray:
    """Stored values of dataset ``name`` unchanged (e.g. bit flags to test before NaN conversion)."""
    return _read(dataset(file, name), name, index)


def write_variable(
    group: h5py.Group, name: str, data: np.ndarray, *, fill_value=None, attrs=None
) -> h5py.Dataset:
    """Write ``data`` gzip-compressed with ``_FillValue`` (same dtype as the data) and string
    attributes stored as fixed-length byte strings, as NASA HDF5 products do."""
    data = np.asarray(data)
    chunks = True if data.ndim and data.size > 1 else None
    ds = group.create_dataset(name, data=data, compression="gzip" if chunks else None, chunks=chunks)
    if fill_value is not None:
        ds.attrs["_FillValue"] = np.asarray(fill_value, dtype=data.dtype)
    for key, value in (attrs or {}).items():
        ds.attrs[key] = np.bytes_(value) if isinstance(value, str) else value
    return ds
