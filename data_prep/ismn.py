"""In-situ soil moisture of the International Soil Moisture Network (ISMN; Dorigo et al. 2021, HESS 25).

ISMN downloads come in two text layouts, both with the extension ``.stm``, one file per sensor:

* "header + values": a header line ``CSE network station lat lon elevation depth_from depth_to sensor``
  then lines ``YYYY/MM/DD HH:MM value ismn_flag provider_flag``;
* "separate files" (CEOP-style): every line ``YYYY/MM/DD HH:MM YYYY/MM/DD HH:MM CSE network station lat
  lon elevation depth_from depth_to value ismn_flag provider_flag`` (nominal then actual UTC time).

Both are read into the FluxLens ISMN table: ``time`` (UTC, nominal), ``soil_moisture`` (m3 m-3),
``depth_from``, ``depth_to`` (m below the surface), ``flag`` (ISMN quality flag), ``flag_provider``.
Line endings may be LF, CRLF or CR only.

ISMN quality flags (one or several codes, comma separated, e.g. ``D01,D03``): ``G`` good; ``M`` value
missing; ``C01`` soil moisture < 0, ``C02`` > 0.6 m3 m-3, ``C03`` > saturation (HWSD); ``D01``-``D05``
frozen or rain-free rises (in situ / GLDAS soil and air temperature, precipitation), ``D06`` spike,
``D07`` negative break, ``D08`` positive break, ``D09`` low constant values, ``D10`` saturated plateau;
older downloads mark unchecked values ``U``. A value is kept when every code of its flag is in ``flags``.
"""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

from catalog.errors import InputError

UNITS = "m3 m-3"
MISSING = -9999.0

_FILE_NAME = re.compile(
    r"^(?P<cse>[^_]+)_(?P<network>[^_]+)_(?P<station>.+)_(?P<variable>[a-z_]+?)_"
    r"(?P<depth_from>-?\d+\.\d+)_(?P<depth_to>-?\d+\.\d+)_(?P<sensor>.+)_(?P<start>\d{8})_(?P<end>\d{8})\.stm$"
)
_STAMP = re.compile(r"^\d{4}/\d{2}/\d{2}$")
_LINE_SPLIT = re.compile(r"\r\n|\n\r|\r|\n")


def read_ismn(path, *, flags: tuple[str, ...] | None = ("G",)) -> tuple[dict, pd.DataFrame]:
    """Read one ISMN soil-moisture ``.stm`` file of either layout.

    Returns ``(metadata, table)``: metadata holds ``network, station, site_id, cse, lat, lon, elevation,
    depth_from, depth_to, sensor, variable, units, format, source_file`` (and ``static_variables`` when
    the station's ``*_static_variables.csv`` lies beside the file). Values whose flag has a code outside
    ``flags`` become NaN (``flags=None`` keeps all); the unfiltered values stay in ``soil_moisture_raw``.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    metadata, table = parse_stm(path.read_bytes(), path.name, flags=flags)
    static = _static_file(path)
    if static is not None:
        metadata["static_variables"] = parse_static_variables(static.read_bytes(), static.name)
    return metadata, table


def parse_stm(data: bytes, name: str, *, flags: tuple[str, ...] | None = ("G",)) -> tuple[dict, pd.DataFrame]:
    """Parse the bytes of one ``.stm`` file (``name`` is used for messages and the variable)."""
    text = data.decode("utf-8-sig", errors="replace")
    lines = [ln for ln in _LINE_SPLIT.split(text) if ln.strip()]
    if not lines:
        raise InputError(f"{name}: empty file, expected ISMN station data")
    first = lines[0].split()
    if len(first) > 2 and _STAMP.match(first[0]) and _STAMP.match(first[2]):
        metadata, table = _parse_ceop(lines, name)
        metadata["format"] = "separate_files"
    elif first and not _STAMP.match(first[0]):
        metadata = _parse_header(first, name)
        table = _parse_values(lines[1:], name)
        metadata["format"] = "header_values"
    else:
        raise InputError(f"{name}: not an ISMN file (first line {lines[0][:60]!r})")
    m = _FILE_NAME.match(Path(name).name)
    if m:
        # the file name carries the depths to 6 decimals, the header to 2 (SCAN 0.0508 m -> 0.05)
        from_name = float(m["depth_from"]), float(m["depth_to"])
        if np.allclose(from_name, (metadata["depth_from"], metadata["depth_to"]), atol=0.006):
            metadata["depth_from"], metadata["depth_to"] = from_name
    variable = m["variable"] if m else "sm"
    if variable != "sm":
        raise InputError(f"{name}: ISMN variable {variable!r}, expected soil moisture ('sm')")
    metadata.update(
        variable="soil_moisture",
        units=UNITS,
        source_file=Path(name).name,
        site_id=site_id(metadata["network"], metadata["station"]),
    )
    table.insert(1, "soil_moisture", table.pop("value"))
    table.loc[table["soil_moisture"] == MISSING, "soil_moisture"] = np.nan
    table.loc[table["flag"].str.contains("M", regex=False), "soil_moisture"] = np.nan
    table.insert(2, "depth_from", metadata["depth_from"])
    table.insert(3, "depth_to", metadata["depth_to"])
    if flags is not None:
        table["soil_moisture_raw"] = table["soil_moisture"]
        keep = flag_mask(table["flag"], flags)
        table.loc[~keep, "soil_moisture"] = np.nan
        metadata["flags_kept"] = tuple(flags)
        metadata["n_rejected"] = int((~keep & table["soil_moisture_raw"].notna()).sum())
    table.attrs = {"units": {"soil_moisture": UNITS, "depth_from": "m", "depth_to": "m"}, "time_zone": "UTC"}
    return metadata, table


def site_id(network: str, station: str) -> str:
    """The FluxLens id of an ISMN station: ``<network>.<station>``."""
    return f"{network}.{station}"


def flag_mask(flag: pd.Series, keep: tuple[str, ...]) -> pd.Series:
    """True where every comma-separated code of ``flag`` is one of ``keep``."""
    allowed = {k.strip() for k in keep}
    codes = {f: set(c.strip() for c in f.split(",")) <= allowed for f in flag.unique()}
    return flag.map(codes).astype(bool)


def _parse_header(tokens: list[str], name: str) -> dict:
    """``CSE network station lat lon elevation depth_from depth_to sensor`` (station may hold spaces)."""
    for i in range(2, len(tokens) - 4):
        numbers = _floats(tokens[i : i + 5])
        if numbers is not None:
            if i < 3:
                break
            lat, lon, elevation, depth_from, depth_to = numbers
            meta = {
                "cse": tokens[0],
                "network": tokens[1],
                "station": " ".join(tokens[2:i]),
                "lat": lat,
                "lon": lon,
                "elevation": elevation,
                "depth_from": depth_from,
                "depth_to": depth_to,
                "sensor": " ".join(tokens[i + 5 :]) or None,
            }
            _check_location(meta, name)
            return meta
    raise InputError(
        f"{name}: not an ISMN file: the first line must be 'CSE network station lat lon elevation "
        f"depth_from depth_to sensor', got {' '.join(tokens)[:80]!r}"
    )


def _floats(tokens: list[str]) -> list[float] | None:
    try:
        return [float(t) for t in tokens]
    except ValueError:
        return None


def _check_location(meta: dict, name: str) -> None:
    if not (-90 <= meta["lat"] <= 90 and -180 <= meta["lon"] <= 360):
        raise InputError(f"{name}: station position lat={meta['lat']}, lon={meta['lon']} is not on Earth")
    if meta["depth_to"] < meta["depth_from"]:
        raise InputError(f"{name}: depth_to {meta['depth_to']} above depth_from {meta['depth_from']}")


def _read_columns(lines: list[str], names: list[str], name: str) -> pd.DataFrame:
    try:
        table = pd.read_csv(
            io.StringIO("\n".join(lines)),
            sep=r"\s+",
            header=None,
            names=names,
            dtype=str,
            keep_default_na=False,
        )
    except (ValueError, pd.errors.ParserError) as exc:
        raise InputError(f"{name}: cannot parse the ISMN data lines ({exc})") from exc
    return table


def _finish(table: pd.DataFrame, name: str) -> pd.DataFrame:
    time = pd.to_datetime(table["date"] + " " + table["clock"], format="%Y/%m/%d %H:%M", errors="coerce")
    value = pd.to_numeric(table["value"], errors="coerce")
    bad = time.isna() | (value.isna() & ~table["value"].str.lower().isin(("nan", "")))
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise InputError(f"{name}: data line {i + 1} is not 'date time value flag': {table.iloc[i].tolist()}")
    flag = table["flag"].fillna("U").replace("", "U")  # a line without ISMN flag: unchecked
    return pd.DataFrame(
        {
            "time": time.astype("datetime64[ns]"),
            "value": value.astype("float64"),
            "flag": flag.astype(object),
            "flag_provider": table["flag_provider"].astype(object),
        }
    )


def _parse_values(lines: list[str], name: str) -> pd.DataFrame:
    if not lines:
        raise InputError(f"{name}: header only, no data lines")
    table = _read_columns(lines, ["date", "clock", "value", "flag", "flag_provider"], name)
    return _finish(table, name)


_CEOP_COLUMNS = [
    "date",
    "clock",
    "date_actual",
    "clock_actual",
    "cse",
    "network",
    "station",
    "lat",
    "lon",
    "elevation",
    "depth_from",
    "depth_to",
    "value",
    "flag",
    "flag_provider",
]


def _parse_ceop(lines: list[str], name: str) -> tuple[dict, pd.DataFrame]:
    table = _read_columns(lines, _CEOP_COLUMNS, name)
    first = table.iloc[0]
    numbers = _floats([first[c] for c in ("lat", "lon", "elevation", "depth_from", "depth_to")])
    if numbers is None:
        raise InputError(f"{name}: not an ISMN separate-files line: {lines[0][:80]!r}")
    lat, lon, elevation, depth_from, depth_to = numbers
    meta = {
        "cse": first["cse"],
        "network": first["network"],
        "station": first["station"],
        "lat": lat,
        "lon": lon,
        "elevation": elevation,
        "depth_from": depth_from,
        "depth_to": depth_to,
        "sensor": None,
    }
    m = _FILE_NAME.match(Path(name).name)
    if m:
        meta["sensor"] = m["sensor"]
    _check_location(meta, name)
    if table["station"].nunique() != 1 or table["depth_from"].nunique() != 1:
        raise InputError(f"{name}: lines of several stations or depths in one separate-files file")
    return meta, _finish(table, name)


def _static_file(path: Path) -> Path | None:
    """The station's ``<CSE>_<network>_<station>_static_variables.csv`` beside ``path``, if any."""
    m = _FILE_NAME.match(path.name)
    if not m:
        return None
    static = path.with_name(f"{m['cse']}_{m['network']}_{m['station']}_static_variables.csv")
    return static if static.is_file() else None


def parse_static_variables(data: bytes, name: str) -> list[dict]:
    """Rows of an ISMN ``*_static_variables.csv`` (``quantity_name;unit;depth_from[m];...``)."""
    text = data.decode("utf-8-sig", errors="replace")
    try:
        table = pd.read_csv(io.StringIO(text.replace("\r", "")), sep=";", dtype=str, keep_default_na=False)
    except (ValueError, pd.errors.ParserError) as exc:
        raise InputError(f"{name}: cannot parse ISMN static variables ({exc})") from exc
    wanted = {
        "quantity_name": "quantity",
        "unit": "unit",
        "depth_from[m]": "depth_from",
        "depth_to[m]": "depth_to",
        "value": "value",
        "description": "description",
        "quantity_source_name": "source",
    }
    missing = set(wanted) - set(table.columns)
    if missing:
        raise InputError(f"{name}: not an ISMN static-variables file (missing {sorted(missing)})")
    rows = table[list(wanted)].rename(columns=wanted)
    return rows.to_dict(orient="records")


# ---------------------------------------------------------------------------------------------------
# whole downloads


def read_ismn_folder(path, *, flags: tuple[str, ...] | None = ("G",)) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read every soil-moisture ``.stm`` file of an ISMN download (a folder, a zip, or zips in a folder).

    Returns ``(sites, observations)``: sites one row per station (``site_id, name, lat, lon, igbp,
    network_ismn, station, elevation, start, end, n_sensors, depths``; ``igbp`` is NaN, ISMN gives
    none; the store's ``network`` column names the FluxLens network, so the ISMN one is ``network_ismn``),
    observations ``site_id, time, soil_moisture, depth_from, depth_to, sensor, flag, flag_provider``.
    ``start``/``end`` span the values kept by ``flags`` (NaT when none is kept). Files of other ISMN
    variables (soil temperature, precipitation ...) are skipped, and so is a sensor met a second time
    (listed in ``observations.attrs["duplicate_files_skipped"]``).
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such folder or archive")
    metas, tables, seen, duplicates = [], [], set(), []
    for name, data in _stm_members(path):
        m = _FILE_NAME.match(Path(name).name)
        if m and m["variable"] != "sm":
            continue
        meta, table = parse_stm(data, name, flags=flags)
        sensor_key = (meta["site_id"], meta["depth_from"], meta["depth_to"], meta["sensor"])
        if sensor_key in seen:  # the same sensor again (a folder holding the download and its zip)
            duplicates.append(name)
            continue
        seen.add(sensor_key)
        table.insert(0, "site_id", meta["site_id"])
        table["sensor"] = meta["sensor"]
        metas.append(meta)
        tables.append(table)
    if not tables:
        raise InputError(f"{path}: no ISMN soil-moisture .stm files found")
    observations = pd.concat(tables, ignore_index=True)
    observations = observations.sort_values(["site_id", "depth_from", "sensor", "time"], kind="stable")
    observations = observations.reset_index(drop=True)
    observations.attrs = dict(tables[0].attrs, duplicate_files_skipped=duplicates)
    return _site_rows(metas, observations), observations


def _stm_members(path: Path):
    """(name, bytes) of each ``.stm`` file under ``path``, looking inside zip archives."""
    if path.is_file():
        if zipfile.is_zipfile(path):
            yield from _zip_members(path)
        elif path.suffix == ".stm":
            yield str(path), path.read_bytes()
        else:
            raise InputError(f"{path}: neither an ISMN .stm file nor a zip archive")
        return
    for file in sorted(path.rglob("*")):
        if file.suffix == ".stm":
            yield str(file), file.read_bytes()
        elif file.suffix == ".zip":
            yield from _zip_members(file)


def _zip_members(path: Path):
    try:
        with zipfile.ZipFile(path) as archive:
            for info in sorted(archive.infolist(), key=lambda i: i.filename):
                if info.filename.endswith(".stm") and not info.is_dir():
                    yield f"{path}!{info.filename}", archive.read(info)
    except zipfile.BadZipFile as exc:
        raise InputError(f"{path}: broken zip archive ({exc})") from exc


def _site_rows(metas: list[dict], observations: pd.DataFrame) -> pd.DataFrame:
    rows = {}
    for meta in metas:
        row = rows.setdefault(
            meta["site_id"],
            {
                "site_id": meta["site_id"],
                "name": meta["station"],
                "lat": meta["lat"],
                "lon": meta["lon"],
                "igbp": np.nan,
                "network_ismn": meta["network"],
                "station": meta["station"],
                "elevation": meta["elevation"],
                "depths": set(),
                "n_sensors": 0,
            },
        )
        row["depths"].add((meta["depth_from"], meta["depth_to"]))
        row["n_sensors"] += 1
    sites = pd.DataFrame(list(rows.values()))
    sites["depths"] = sites["depths"].map(lambda d: ";".join(f"{a:g}-{b:g}" for a, b in sorted(d)))
    valid = observations.dropna(subset=["soil_moisture"]).groupby("site_id")["time"]
    span = pd.DataFrame({"start": valid.min(), "end": valid.max()}).reindex(sites["site_id"])
    sites["start"] = span["start"].to_numpy(dtype="datetime64[ns]")
    sites["end"] = span["end"].to_numpy(dtype="datetime64[ns]")
    return sites


# ---------------------------------------------------------------------------------------------------
# writing


def ismn_file_name(metadata: dict, start, end) -> str:
    """ISMN's file name: ``<CSE>_<network>_<station>_sm_<from>_<to>_<sensor>_<start>_<end>.stm``."""
    return (
        f"{metadata.get('cse', metadata['network'])}_{metadata['network']}_{metadata['station']}_sm_"
        f"{metadata['depth_from']:.6f}_{metadata['depth_to']:.6f}_{metadata.get('sensor') or 'unknown'}_"
        f"{pd.Timestamp(start):%Y%m%d}_{pd.Timestamp(end):%Y%m%d}.stm"
    )


def write_ismn(path, metadata: dict, df: pd.DataFrame) -> Path:
    """Write one sensor's series in the ISMN "header + values" layout.

    ``metadata`` needs ``network, station, lat, lon, elevation, depth_from, depth_to`` (``cse`` defaults
    to the network, ``sensor`` to ``unknown``); ``df`` holds ``time`` and ``soil_moisture`` (m3 m-3),
    optionally ``flag`` (default ``G``, ``M`` where the value is missing) and ``flag_provider``; a
    table read with flag filtering is written with its unfiltered ``soil_moisture_raw``. If
    ``path`` is a folder, the ISMN file name is used inside it. Written to a temporary name and renamed.
    """
    path = Path(path)
    missing = {"network", "station", "lat", "lon", "elevation", "depth_from", "depth_to"} - set(metadata)
    if missing:
        raise InputError(f"{path}: ISMN metadata lacks {sorted(missing)}")
    for key in ("network", "station", "sensor", "cse"):
        if metadata.get(key) and re.search(r"\s", str(metadata[key])):
            raise InputError(f"{path}: ISMN {key} {metadata[key]!r} must not contain spaces")
    if not {"time", "soil_moisture"} <= set(df.columns) or df.empty:
        raise InputError(f"{path}: the ISMN table to write needs rows with 'time' and 'soil_moisture'")
    time = pd.to_datetime(df["time"])
    if path.is_dir():
        path = path / ismn_file_name(metadata, time.min(), time.max())
    # an ISMN file holds every value with its flag; flag filtering is a read-time choice
    value = df["soil_moisture_raw" if "soil_moisture_raw" in df else "soil_moisture"].to_numpy(
        dtype="float64"
    )
    if np.nanmax(value, initial=0) > 1.0:
        raise InputError(f"{path}: soil_moisture above 1: expected m3 m-3, not %")
    flag = (
        df["flag"].astype(str).to_numpy()
        if "flag" in df
        else np.where(np.isnan(value), "M", "G").astype(object)
    )
    provider = df["flag_provider"].astype(str).to_numpy() if "flag_provider" in df else np.full(len(df), "M")
    header = (
        f"{metadata.get('cse', metadata['network']):<10} {metadata['network']:<15} {metadata['station']:<17} "
        f"{metadata['lat']:>10.5f} {metadata['lon']:>11.5f} {metadata['elevation']:>7.2f} "
        f"{metadata['depth_from']:>7.4f} {metadata['depth_to']:>7.4f} {metadata.get('sensor') or 'unknown'}"
    )
    stamps = time.dt.strftime("%Y/%m/%d %H:%M").to_numpy()
    numbers = np.char.mod("%8.4f", value)
    lines = [f"{s} {v} {f} {p}" for s, v, f, p in zip(stamps, numbers, flag, provider, strict=True)]
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_text(header + "\n" + "\n".join(lines) + "\n")
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
