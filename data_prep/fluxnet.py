"""Eddy-covariance tower tables: FLUXNET2015 / ONEFlux, AmeriFlux BASE, bigleaf and REddyProc text files.

Every reader returns one station table in the FluxLens conventions (docs/architecture.md):

* ``time`` — **start** of the averaging period (``df.attrs["period"]`` gives its length),
  ``site_id`` — the FLUXNET site id (``CC-Xxx``);
* canonical variables ``LE, H, NETRAD, G, LE_CORR, H_CORR, SWC, TA, VPD, P, SW_IN, LW_IN, WS`` and
  ``<NAME>_QC`` for each. Absent variables are present as all-NaN columns, so tables of several
  sites concatenate; ``df.attrs["source_columns"][NAME]`` names the file column used (``None`` when
  absent) and ``df.attrs["units"][NAME]`` the units.

Units and signs: LE, H, NETRAD, G, SW_IN, LW_IN in W m-2; LE and H positive upward (away from the
surface, the FLUXNET convention, kept as is), G positive into the soil; TA degC; VPD hPa (bigleaf kPa is
converted); SWC m3 m-3 (FLUXNET and AmeriFlux report %, divided by 100); WS m s-1; P in mm per step at
sub-daily resolution, mm d-1 at DD/WW/MM, mm y-1 at YY (the FLUXNET2015 definitions).

Quality: ``<NAME>_QC`` is the fraction (0-1) of measured or good-quality gap-filled data. At daily and
coarser steps FLUXNET writes exactly that. At half-hourly/hourly steps FLUXNET (and bigleaf) write a
flag — 0 measured, 1 good gap-fill, 2 medium, 3 poor (for the meteorological ``*_F`` columns 2 means
downscaled from ERA-Interim) — which is converted to 1.0 for flags 0-1 and 0.0 for 2-3, the same
"measured or good gap-fill" notion the coarser fractions count; the flag itself is kept in
``<NAME>_QC_FLAG``. ``LE_CORR`` and ``H_CORR`` carry no QC of
their own in FLUXNET2015: they inherit the QC of ``LE_F_MDS`` / ``H_F_MDS`` they are derived from.
A few FLUXNET2015 daily-or-coarser files hold a flag (2 or 3) where a fraction belongs (G_F_MDS_QC = 3
at BE-Bra, CH-Dav ...): such values are read as 0 (no good data), counted in
``df.attrs["qc_flag_values_as_zero"]``.
Missing values (-9999) become NaN (Pastorello et al. 2020, Sci Data 7:225).
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import numpy as np
import pandas as pd

from catalog.errors import InputError
from catalog.igbp import IGBP_CODES

MISSING = -9999.0

CANONICAL = ("LE", "H", "NETRAD", "G", "LE_CORR", "H_CORR", "SWC", "TA", "VPD", "P", "SW_IN", "LW_IN", "WS")

UNITS = {
    "LE": "W m-2",
    "H": "W m-2",
    "NETRAD": "W m-2",
    "G": "W m-2",
    "LE_CORR": "W m-2",
    "H_CORR": "W m-2",
    "SWC": "m3 m-3",
    "TA": "degC",
    "VPD": "hPa",
    "SW_IN": "W m-2",
    "LW_IN": "W m-2",
    "WS": "m s-1",
}
PRECIP_UNITS = {
    "HH": "mm (30 min)-1",
    "HR": "mm h-1",
    "DD": "mm d-1",
    "WW": "mm d-1",
    "MM": "mm d-1",
    "YY": "mm y-1",
}
PERIODS = {"HH": "30min", "HR": "1h", "DD": "1D", "WW": "7D", "MM": "1MS", "YY": "1YS"}
SUB_DAILY = ("HH", "HR")

SIGN_CONVENTION = "LE, H positive upward (away from the surface); G positive into the soil"

# Candidate file columns for each canonical variable, in order of preference, with the QC column
# that goes with each (None: the format has none). FLUXNET2015 names first, then AmeriFlux BASE
# (which adds _<H>_<V>_<R> position qualifiers, matched by pattern), then bigleaf / REddyProc.
_FLUXNET_CANDIDATES: dict[str, list[tuple[str, str | None]]] = {
    "LE": [("LE_F_MDS", "LE_F_MDS_QC"), ("LE", "LE_QC")],
    "H": [("H_F_MDS", "H_F_MDS_QC"), ("H", "H_QC")],
    "NETRAD": [("NETRAD", "NETRAD_QC")],
    "G": [("G_F_MDS", "G_F_MDS_QC"), ("G", "G_QC")],
    "LE_CORR": [("LE_CORR", "LE_F_MDS_QC")],
    "H_CORR": [("H_CORR", "H_F_MDS_QC")],
    "SWC": [("SWC_F_MDS_1", "SWC_F_MDS_1_QC"), ("SWC", "SWC_QC")],
    "TA": [("TA_F", "TA_F_QC"), ("TA_F_MDS", "TA_F_MDS_QC"), ("TA", "TA_QC")],
    "VPD": [("VPD_F", "VPD_F_QC"), ("VPD_F_MDS", "VPD_F_MDS_QC"), ("VPD", "VPD_QC")],
    "P": [("P_F", "P_F_QC"), ("P", "P_QC")],
    "SW_IN": [("SW_IN_F", "SW_IN_F_QC"), ("SW_IN_F_MDS", "SW_IN_F_MDS_QC"), ("SW_IN", "SW_IN_QC")],
    "LW_IN": [("LW_IN_F", "LW_IN_F_QC"), ("LW_IN_F_MDS", "LW_IN_F_MDS_QC"), ("LW_IN", "LW_IN_QC")],
    "WS": [("WS_F", "WS_F_QC"), ("WS", "WS_QC")],
}
_BIGLEAF_CANDIDATES: dict[str, list[tuple[str, str | None]]] = {
    "LE": [("LE", "LE_qc")],
    "H": [("H", "H_qc")],
    "NETRAD": [("Rn", None)],
    "G": [("G", "G_qc")],
    "TA": [("Tair", "Tair_qc")],
    "VPD": [("VPD", "VPD_qc")],
    "P": [("precip", "precip_qc")],
    "SW_IN": [("Rg", None)],
    "LW_IN": [("LW_down", None)],
    "WS": [("wind", "wind_qc")],
}
_REDDYPROC_CANDIDATES: dict[str, list[tuple[str, str | None]]] = {
    "LE": [("LE", None)],
    "H": [("H", None)],
    "NETRAD": [("Rn", None)],
    "G": [("G", None)],
    "TA": [("Tair", None)],
    "VPD": [("VPD", None)],
    "P": [("Precip", None)],
    "SW_IN": [("Rg", None)],
    "WS": [("WS", None)],
}

# Multipliers from the units a file states (or its format implies) to the canonical units.
_UNIT_FACTORS = {
    ("VPD", "kPa"): 10.0,
    ("VPD", "hPa"): 1.0,
    ("SWC", "%"): 0.01,
    ("SWC", "m3 m-3"): 1.0,
}

_FLUXNET_NAME = re.compile(
    r"FLX_(?P<site>[A-Z]{2}-[A-Za-z0-9]{3})_FLUXNET2015_(?P<variant>SUBSET|FULLSET)_(?P<res>HH|HR|DD|WW|MM|YY)_"
    r"(?P<y1>\d{4})-(?P<y2>\d{4})_(?P<version>\d+-\d+)"
)
_ONEFLUX_NAME = re.compile(
    r"(?:FLX|AMF|ICOSETC)_(?P<site>[A-Z]{2}-[A-Za-z0-9]{3})_(?:FLUXNET|BASE|ERA5|FLUXNET2015)\w*?_"
    r"(?P<res>HH|HR|DD|WW|MM|YY)(?:_|\b)"
)
_SITE_IN_NAME = re.compile(r"(?<![A-Za-z])(?P<cc>[A-Z]{2})[-_]?(?P<code>[A-Z][A-Za-z0-9]{2})(?![a-z])")


# ---------------------------------------------------------------------------------------------------
# reading


def read_fluxnet(path, *, qc_min: float | None = None, site_id: str | None = None) -> pd.DataFrame:
    """Read one tower file (FLUXNET2015/ONEFlux any resolution, AmeriFlux BASE, bigleaf, REddyProc).

    ``qc_min`` (0-1): values whose ``<NAME>_QC`` is below it become NaN; the unfiltered values stay in
    ``<NAME>_RAW`` (so rejected points are ``<NAME>_RAW`` notna and ``<NAME>`` NaN) and
    ``df.attrs["qc_rejected"]`` counts them. Values whose file has no QC are kept. ``site_id``
    overrides the id taken from the file name. Raises :class:`InputError` for a file that is not a
    tower table, is truncated, or has no usable time stamps.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    if qc_min is not None and not 0.0 <= qc_min <= 1.0:
        raise InputError(f"{path}: qc_min must be a fraction between 0 and 1, got {qc_min}")
    text_head = _head(path)
    fmt = _detect_format(path, text_head)
    raw, time, resolution, units = _READERS[fmt](path, text_head)
    df = _canonical_table(raw, time, resolution, fmt, units, path)
    df.insert(1, "site_id", site_id or _site_id(path, text_head))
    df.attrs.update(
        {
            "source_file": path.name,
            "format": fmt,
            "resolution": resolution,
            "period": PERIODS[resolution],
            "time_reference": "start of period",
            "time_zone": "local standard time" if fmt in ("fluxnet", "ameriflux") else "as in the file",
            "sign_convention": SIGN_CONVENTION,
            "qc_semantics": (
                "flag 0 measured, 1 good gap-fill, 2 medium, 3 poor -> QC 1,1,0,0 (flag in <NAME>_QC_FLAG)"
                if resolution in SUB_DAILY
                else "fraction of measured and good-quality gap-filled data"
            ),
        }
    )
    m = _FLUXNET_NAME.search(path.name)
    if m:
        df.attrs["variant"] = m["variant"]
        df.attrs["version"] = m["version"]
    if qc_min is not None:
        apply_qc(df, qc_min)
    return df


def apply_qc(df: pd.DataFrame, qc_min: float) -> pd.DataFrame:
    """In place: NaN where ``<NAME>_QC < qc_min``; unfiltered values kept in ``<NAME>_RAW``."""
    rejected = {}
    for name in CANONICAL:
        qc = df[f"{name}_QC"]
        raw = df[name].copy()
        bad = (qc < qc_min) & raw.notna()
        df[f"{name}_RAW"] = raw
        df.loc[bad, name] = np.nan
        rejected[name] = int(bad.sum())
    df.attrs["qc_min"] = qc_min
    df.attrs["qc_rejected"] = rejected
    return df


def _head(path: Path, nbytes: int = 65536) -> str:
    with open(path, "rb") as fh:
        data = fh.read(nbytes)
    if b"\x00" in data:
        raise InputError(f"{path}: binary file, not a tower text table")
    return data.decode("utf-8-sig", errors="replace")


def _lines(text: str) -> list[str]:
    """Split on any line ending (LF, CRLF, CR-only) and drop empty lines."""
    return [ln for ln in re.split(r"\r\n|\n\r|\r|\n", text) if ln.strip()]


def _detect_format(path: Path, head: str) -> str:
    lines = _lines(head)
    body = [ln for ln in lines if not ln.startswith("#")]
    if not body:
        raise InputError(f"{path}: empty file, expected a tower table with a header row")
    header = body[0]
    if "\t" in header and {"Year", "DoY", "Hour"} <= set(header.split("\t")):
        return "reddyproc"
    cols = [c.strip() for c in header.split(",")]
    if {"year", "doy", "hour"} <= set(cols):
        return "bigleaf"
    if "TIMESTAMP_START" in cols or "TIMESTAMP" in cols:
        # FLUXNET products hold gap-filled (_F, _F_MDS) columns; AmeriFlux BASE only measured ones
        processed = any(re.search(r"_F(_MDS)?(_\d+)?$", c) for c in cols)
        return "fluxnet" if processed and not lines[0].startswith("#") else "ameriflux"
    raise InputError(
        f"{path}: not a FLUXNET/AmeriFlux table (no TIMESTAMP or TIMESTAMP_START column in the header "
        f"{header[:80]!r})"
    )


def _text_source(path: Path, head: str):
    """A path for pandas, or the normalised text when the file uses CR-only line endings."""
    if "\r" in head and "\n" not in head:
        return io.StringIO(path.read_bytes().decode("utf-8-sig", errors="replace").replace("\r", "\n"))
    return path


def _read_fluxnet_csv(path: Path, head: str):
    lines = [ln for ln in _lines(head) if not ln.startswith("#")]
    header = [c.strip() for c in lines[0].split(",")]
    wanted = _wanted_columns(header, _FLUXNET_CANDIDATES)
    time_cols = [c for c in ("TIMESTAMP", "TIMESTAMP_START", "TIMESTAMP_END") if c in header]
    try:
        raw = pd.read_csv(
            _text_source(path, head),
            comment="#",  # AmeriFlux BASE metadata lines; no FLUXNET field holds a '#'
            usecols=time_cols + wanted,
            dtype={c: str for c in time_cols} | dict.fromkeys(wanted, "float64"),
            na_values=[],
            keep_default_na=False,
            skipinitialspace=True,
        )
    except (ValueError, pd.errors.ParserError) as exc:
        raise InputError(f"{path}: {_field_problem(path, len(header)) or f'cannot parse ({exc})'}") from exc
    if raw.empty:
        raise InputError(f"{path}: header only, no data rows")
    if raw[wanted].isna().any(axis=None) or raw[time_cols].isna().any(axis=None):
        raise InputError(
            f"{path}: {_field_problem(path, len(header)) or 'empty fields (missing must be -9999)'}"
        )
    raw = raw.replace(MISSING, np.nan)
    time, resolution = _fluxnet_time(path, raw)
    units = {"SWC": "%"}
    return raw, time, resolution, units


def _field_problem(path: Path, n_fields: int) -> str | None:
    """Describe the first line whose field count differs from the header's, if any."""
    lines = [
        ln for ln in _lines(path.read_bytes().decode("utf-8-sig", errors="replace")) if not ln.startswith("#")
    ]
    for number, line in enumerate(lines[1:], start=2):
        fields = line.split(",")
        if len(fields) != n_fields or "" in (f.strip() for f in fields):
            return (
                f"data line {number} has {len(fields)} fields ({sum(not f.strip() for f in fields)} empty), "
                f"the header {n_fields}: truncated or malformed file (missing values must be -9999)"
            )
    return None


def _fluxnet_time(path: Path, raw: pd.DataFrame) -> tuple[pd.Series, str]:
    name_match = _FLUXNET_NAME.search(path.name) or _ONEFLUX_NAME.search(path.name)
    if "TIMESTAMP_START" in raw:
        start = _parse_stamp(path, raw["TIMESTAMP_START"], "TIMESTAMP_START")
        resolution = name_match["res"] if name_match else None
        if resolution is None:
            if "TIMESTAMP_END" not in raw:
                raise InputError(f"{path}: TIMESTAMP_START without TIMESTAMP_END; cannot tell the step")
            end = _parse_stamp(path, raw["TIMESTAMP_END"], "TIMESTAMP_END")
            step = (end - start).median()
            resolution = {
                pd.Timedelta("30min"): "HH",
                pd.Timedelta("1h"): "HR",
                pd.Timedelta("1D"): "DD",
            }.get(step, "WW" if pd.Timedelta("6D") <= step <= pd.Timedelta("9D") else None)
            if resolution is None:
                raise InputError(f"{path}: unrecognised time step {step} between TIMESTAMP_START and _END")
        return start, resolution
    if "TIMESTAMP" not in raw:
        raise InputError(f"{path}: no TIMESTAMP column")
    stamps = raw["TIMESTAMP"].str.strip()
    width = stamps.str.len().unique()
    by_width = {4: ("YY", "%Y"), 6: ("MM", "%Y%m"), 8: ("DD", "%Y%m%d")}
    if len(width) != 1 or int(width[0]) not in by_width:
        raise InputError(f"{path}: TIMESTAMP values are not YYYY, YYYYMM or YYYYMMDD")
    resolution, fmt = by_width[int(width[0])]
    if name_match and name_match["res"] != resolution:
        raise InputError(
            f"{path}: file name says resolution {name_match['res']} but TIMESTAMP is {resolution}-style"
        )
    return _parse_stamp(path, stamps, "TIMESTAMP", fmt), resolution


def _parse_stamp(path: Path, values: pd.Series, column: str, fmt: str | None = None) -> pd.Series:
    values = values.str.strip()
    if fmt is None:  # TIMESTAMP_START/END: YYYYMMDDHHMM, or YYYYMMDD in weekly files
        fmt = "%Y%m%d" if values.str.len().max() == 8 else "%Y%m%d%H%M"
    parsed = pd.to_datetime(values, format=fmt, errors="coerce")
    if parsed.isna().any():
        bad = values[parsed.isna()].iloc[0]
        raise InputError(f"{path}: {column} value {bad!r} is not a {fmt} time stamp")
    return parsed.astype("datetime64[ns]")


def _wanted_columns(header: list[str], candidates: dict[str, list[tuple[str, str | None]]]) -> list[str]:
    """The value and QC columns of ``header`` that :func:`_canonical_table` may select."""
    present = set(header)
    out = []
    for options in candidates.values():
        for value_col, qc_col in options:
            col = _match_column(header, value_col, allow_qualifiers=True)
            if col:
                out.append(col)
                if qc_col and qc_col in present:
                    out.append(qc_col)
    return list(dict.fromkeys(out))


def _match_column(header: list[str], name: str, *, allow_qualifiers: bool) -> str | None:
    """``name`` itself, or (AmeriFlux BASE) its position-qualified form such as SWC_1_1_1 / TA_1_2_1 with
    the lowest indices (gap-filled ``_F`` and ``_CORR`` names are never qualified)."""
    if name in header:
        return name
    if not allow_qualifiers or "_F" in name or name.endswith("CORR"):
        return None
    pattern = re.compile(rf"^{re.escape(name)}(_\d+){{1,3}}$")
    matches = sorted(
        (c for c in header if pattern.match(c)), key=lambda c: [int(x) for x in c.split("_")[-3:] if x]
    )
    return matches[0] if matches else None


def _read_bigleaf(path: Path, head: str):
    try:
        raw = pd.read_csv(_text_source(path, head))
    except (ValueError, pd.errors.ParserError) as exc:
        raise InputError(f"{path}: cannot parse as a half-hourly table ({exc})") from exc
    if raw.empty:
        raise InputError(f"{path}: header only, no data rows")
    for col in ("year", "doy", "hour"):
        if raw[col].isna().any():
            raise InputError(f"{path}: empty {col!r} values (truncated file?)")
    time = (
        pd.to_datetime(raw["year"].astype(int).astype(str), format="%Y")
        + pd.to_timedelta(raw["doy"] - 1, unit="D")
        + pd.to_timedelta(raw["hour"], unit="h")
    ).astype("datetime64[ns]")
    raw = raw.replace(MISSING, np.nan)
    return raw, time, _step_resolution(path, time), {"VPD": "kPa"}


def _read_reddyproc(path: Path, head: str):
    source = _text_source(path, head)
    try:
        table = pd.read_csv(source, sep="\t", header=[0, 1], skipinitialspace=True)
    except (ValueError, pd.errors.ParserError) as exc:
        raise InputError(f"{path}: cannot parse as a REddyProc text table ({exc})") from exc
    names = [str(a).strip() for a, _ in table.columns]
    file_units = {str(a).strip(): str(b).strip() for a, b in table.columns}
    table.columns = names
    raw = table.apply(pd.to_numeric, errors="coerce").replace(MISSING, np.nan)
    if raw.empty or raw[["Year", "DoY", "Hour"]].isna().any().any():
        raise InputError(f"{path}: missing Year/DoY/Hour values (truncated file?)")
    # REddyProc stamps mark the END of the half hour (Hour 0.5 ... 24.0).
    end = (
        pd.to_datetime(raw["Year"].astype(int).astype(str), format="%Y")
        + pd.to_timedelta(raw["DoY"] - 1, unit="D")
        + pd.to_timedelta(raw["Hour"], unit="h")
    )
    steps = end.diff().dropna()
    step = steps.median() if len(steps) else pd.Timedelta("30min")
    time = (end - step).astype("datetime64[ns]")
    units = {}
    for name, options in _REDDYPROC_CANDIDATES.items():
        for col, _ in options:
            if col in file_units:
                units[name] = file_units[col].replace("m-2", " m-2").replace("  ", " ")
    return raw, time, _step_resolution(path, time), units


def _step_resolution(path: Path, time: pd.Series) -> str:
    step = time.diff().dropna().median()
    for res in SUB_DAILY + ("DD",):
        if step == pd.Timedelta(PERIODS[res]):
            return res
    raise InputError(f"{path}: unrecognised time step {step}")


_READERS = {
    "fluxnet": _read_fluxnet_csv,
    "ameriflux": _read_fluxnet_csv,
    "bigleaf": _read_bigleaf,
    "reddyproc": _read_reddyproc,
}
_CANDIDATES = {
    "fluxnet": _FLUXNET_CANDIDATES,
    "ameriflux": _FLUXNET_CANDIDATES,
    "bigleaf": _BIGLEAF_CANDIDATES,
    "reddyproc": _REDDYPROC_CANDIDATES,
}


def _canonical_table(raw, time, resolution, fmt, file_units, path) -> pd.DataFrame:
    header = list(raw.columns)
    out = {"time": time.to_numpy()}
    source_columns: dict[str, str | None] = {}
    qc_columns: dict[str, str | None] = {}
    units = {}
    qc_flag_like: dict[str, int] = {}
    flag_qc = resolution in SUB_DAILY
    for name in CANONICAL:
        col = qc_col = None
        for value_col, qc_name in _CANDIDATES[fmt].get(name, []):
            col = _match_column(header, value_col, allow_qualifiers=fmt == "ameriflux")
            if col:
                qc_col = qc_name if qc_name in header else None
                break
        values = raw[col].to_numpy(dtype="float64") if col else np.full(len(raw), np.nan)
        unit_in = file_units.get(name, UNITS.get(name))
        factor = _UNIT_FACTORS.get((name, unit_in), 1.0)
        out[name] = values * factor
        qc = raw[qc_col].to_numpy(dtype="float64") if qc_col else np.full(len(raw), np.nan)
        if flag_qc:
            out[f"{name}_QC"] = np.where(np.isnan(qc), np.nan, (qc <= 1).astype("float64"))
            out[f"{name}_QC_FLAG"] = qc
        else:
            # Some FLUXNET2015 coarse files carry a half-hourly style flag (2, 3) instead of a
            # fraction, e.g. G_F_MDS_QC = 3 at BE-Bra: read as "no good data" (0), anything else > 1 NaN.
            odd = qc > 1
            if odd.any():
                qc = np.where(odd, np.where(np.isin(qc, (2.0, 3.0)), 0.0, np.nan), qc)
                qc_flag_like[name] = int(odd.sum())
            out[f"{name}_QC"] = qc
        source_columns[name] = col
        qc_columns[name] = qc_col
        units[name] = PRECIP_UNITS[resolution] if name == "P" else UNITS[name]
    if not any(source_columns.values()):
        raise InputError(f"{path}: none of the tower variables {', '.join(CANONICAL)} found")
    df = pd.DataFrame(out)
    df.attrs["source_columns"] = source_columns
    df.attrs["qc_columns"] = qc_columns
    df.attrs["units"] = units
    if qc_flag_like:
        df.attrs["qc_flag_values_as_zero"] = qc_flag_like
    return df


def _site_id(path: Path, head: str) -> str:
    for pattern in (_FLUXNET_NAME, _ONEFLUX_NAME):
        m = pattern.search(path.name)
        if m:
            return m["site"]
    for line in _lines(head)[:20]:
        m = re.match(r"#\s*Site:\s*(\S+)", line)
        if m:
            return m.group(1)
    m = _SITE_IN_NAME.search(path.stem)
    if m:
        return f"{m['cc']}-{m['code']}"
    raise InputError(f"{path}: cannot tell the site id from the file name; pass site_id=")


# ---------------------------------------------------------------------------------------------------
# aggregation


def to_daily(df: pd.DataFrame, *, min_coverage: float = 0.5) -> pd.DataFrame:
    """Aggregate a sub-daily table to days: the mean of the valid steps of each day.

    A day's value is NaN unless at least ``min_coverage`` (fraction) of its steps are valid. ``P`` is
    a total: the mean of the valid steps times the number of steps per day (mm d-1). ``<NAME>_QC``
    becomes the mean of the step QC over the day's steps, i.e. the fraction of good data (the FLUXNET
    daily definition); ``<NAME>_N`` counts the valid steps. Days are labelled by their start, 00:00
    local standard time (FLUXNET time stamps are local standard time).
    """
    resolution = df.attrs.get("resolution")
    if resolution in ("DD",):
        return df.copy()
    if resolution not in SUB_DAILY:
        raise InputError(f"to_daily needs a half-hourly or hourly table, got resolution {resolution!r}")
    if not 0.0 < min_coverage <= 1.0:
        raise InputError(f"to_daily: min_coverage must be in (0, 1], got {min_coverage}")
    steps_per_day = int(pd.Timedelta("1D") / pd.Timedelta(PERIODS[resolution]))
    pieces = []
    for site, table in df.groupby("site_id", sort=False):
        day = table["time"].dt.floor("D")
        grouped = table[list(CANONICAL) + [f"{n}_QC" for n in CANONICAL]].groupby(day)
        mean = grouped.mean()
        count = grouped.count()
        daily = pd.DataFrame(index=mean.index)
        for name in CANONICAL:
            value = mean[name].where(count[name] >= min_coverage * steps_per_day)
            daily[name] = value * steps_per_day if name == "P" else value
            daily[f"{name}_QC"] = grouped[f"{name}_QC"].sum(min_count=1) / steps_per_day
            daily[f"{name}_N"] = count[name]
        daily.index.name = "time"
        daily = daily.reset_index()
        daily.insert(1, "site_id", site)
        pieces.append(daily)
    out = pd.concat(pieces, ignore_index=True)
    out.attrs = {
        k: v for k, v in df.attrs.items() if k not in ("qc_semantics", "qc_min", "qc_rejected", "period")
    }
    units = dict(df.attrs.get("units", {}))
    units["P"] = PRECIP_UNITS["DD"]
    out.attrs.update(
        {
            "resolution": "DD",
            "period": PERIODS["DD"],
            "units": units,
            "aggregated_from": resolution,
            "min_coverage": min_coverage,
            "qc_semantics": "fraction of the day's steps that are measured or good-quality gap-filled",
        }
    )
    return out


# ---------------------------------------------------------------------------------------------------
# site tables


_SITE_LIST = "FluxNET_sites.csv"
_SITE_INVENTORY = "FluxNET_sites_info.csv"
_SITE_RENAMES = {
    "SITE_ID": "site_id",
    "SITE_NAME": "name",
    "LOCATION_LAT": "lat",
    "LOCATION_LONG": "lon",
    "LOCATION_ELEV": "elevation",
    "IGBP": "igbp",
    "FLUXNET2015": "licence",
    "FLUXNET-CH4": "licence_ch4",
    "MAT": "mat",
    "MAP": "map",
}


def read_site_table(path) -> pd.DataFrame:
    """Tower metadata: ``site_id, name, lat, lon, igbp`` (IGBP abbreviation) + ``igbp_code`` (1-17).

    ``path`` is a site list (``SITE_ID, SITE_NAME, LOCATION_LAT, LOCATION_LONG, IGBP`` ..., extra
    columns such as the FLUXNET2015 ``licence`` kept in lower case), a file inventory
    (``SITE_ID, filename, start_year, end_year, version, filetype``: merged with the site list
    ``FluxNET_sites.csv`` beside it, adding ``start_year``, ``end_year``, ``version``), or a folder
    holding them.
    """
    path = Path(path)
    if path.is_dir():
        inventory = path / _SITE_INVENTORY
        path = inventory if inventory.is_file() else path / _SITE_LIST
    if not path.is_file():
        raise InputError(f"{path}: no such site table")
    table = _read_plain_csv(path)
    if "filename" in table.columns:
        site_list = path.with_name(_SITE_LIST)
        if not site_list.is_file():
            raise InputError(
                f"{path}: a file inventory without coordinates; {site_list.name} not found beside it"
            )
        sites = _site_list(_read_plain_csv(site_list), site_list)
        years = _inventory_years(table, path)
        return sites.merge(years, on="site_id", how="left")
    return _site_list(table, path)


def _read_plain_csv(path: Path) -> pd.DataFrame:
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (ValueError, pd.errors.ParserError) as exc:
        raise InputError(f"{path}: cannot parse as CSV ({exc})") from exc
    table.columns = [c.strip() for c in table.columns]
    return table


def _site_list(table: pd.DataFrame, path: Path) -> pd.DataFrame:
    missing = {"SITE_ID", "LOCATION_LAT", "LOCATION_LONG"} - set(table.columns)
    if missing:
        raise InputError(f"{path}: not a FLUXNET site table (missing columns {sorted(missing)})")
    sites = table.rename(columns=_SITE_RENAMES)
    sites.columns = [c.lower() for c in sites.columns]
    for col in ("lat", "lon", "elevation", "mat", "map"):
        if col in sites:
            sites[col] = pd.to_numeric(sites[col].replace("", np.nan), errors="coerce")
    for col in ("name", "igbp"):
        if col not in sites:
            sites[col] = ""
    sites["igbp"] = sites["igbp"].str.strip().str.upper()
    sites["igbp_code"] = sites["igbp"].map(IGBP_CODES).astype("float64")
    if sites["site_id"].duplicated().any():
        dup = sites.loc[sites["site_id"].duplicated(), "site_id"].iloc[0]
        raise InputError(f"{path}: site {dup} listed twice")
    lead = ["site_id", "name", "lat", "lon", "igbp", "igbp_code"]
    return sites[lead + [c for c in sites.columns if c not in lead]].reset_index(drop=True)


def _inventory_years(table: pd.DataFrame, path: Path) -> pd.DataFrame:
    missing = {"SITE_ID", "start_year", "end_year"} - set(table.columns)
    if missing:
        raise InputError(f"{path}: not a FLUXNET file inventory (missing columns {sorted(missing)})")
    rows = (
        table[table.get("filetype", "FLUX-MET").str.strip() == "FLUX-MET"] if "filetype" in table else table
    )
    years = rows.assign(
        start_year=pd.to_numeric(rows["start_year"], errors="coerce"),
        end_year=pd.to_numeric(rows["end_year"], errors="coerce"),
    )
    agg = years.groupby("SITE_ID").agg(
        start_year=("start_year", "min"), end_year=("end_year", "max"), version=("version", "first")
    )
    return agg.reset_index().rename(columns={"SITE_ID": "site_id"})


# ---------------------------------------------------------------------------------------------------
# writing

# canonical name -> (FLUXNET2015 SUBSET column, its QC column, factor from canonical to file units)
_DD_COLUMNS = {
    "TA": ("TA_F", "TA_F_QC", 1.0),
    "SW_IN": ("SW_IN_F", "SW_IN_F_QC", 1.0),
    "LW_IN": ("LW_IN_F", "LW_IN_F_QC", 1.0),
    "VPD": ("VPD_F", "VPD_F_QC", 1.0),
    "P": ("P_F", "P_F_QC", 1.0),
    "WS": ("WS_F", "WS_F_QC", 1.0),
    "NETRAD": ("NETRAD", "NETRAD_QC", 1.0),
    "SWC": ("SWC_F_MDS_1", "SWC_F_MDS_1_QC", 100.0),
    "G": ("G_F_MDS", "G_F_MDS_QC", 1.0),
    "LE": ("LE_F_MDS", "LE_F_MDS_QC", 1.0),
    "LE_CORR": ("LE_CORR", None, 1.0),
    "H": ("H_F_MDS", "H_F_MDS_QC", 1.0),
    "H_CORR": ("H_CORR", None, 1.0),
}


def fluxnet_file_name(site_id: str, first_year: int, last_year: int, *, version: str = "1-4") -> str:
    """The FLUXNET2015 SUBSET daily file name of a site."""
    return f"FLX_{site_id}_FLUXNET2015_SUBSET_DD_{first_year}-{last_year}_{version}.csv"


def write_fluxnet(path, df: pd.DataFrame, *, decimals: int = 4) -> Path:
    """Write one site's daily table as a FLUXNET2015 SUBSET DD CSV (``TIMESTAMP`` YYYYMMDD).

    ``df`` holds ``time`` (daily) and any canonical columns (units as read: SWC m3 m-3, written as %)
    and ``<NAME>_QC`` fractions; absent columns and NaN are written as -9999. If ``path`` is a folder,
    the FLUXNET file name (:func:`fluxnet_file_name`, needs ``site_id``) is used inside it. The file is
    written to a temporary name and renamed, so a failed write leaves nothing behind.
    """
    path = Path(path)
    if "time" not in df or df.empty:
        raise InputError(f"{path}: the table to write has no rows or no 'time' column")
    if path.is_dir():
        if "site_id" not in df:
            raise InputError(f"{path}: a folder was given but the table has no 'site_id' for the file name")
        years = pd.to_datetime(df["time"]).dt.year
        path = path / fluxnet_file_name(str(df["site_id"].iloc[0]), int(years.min()), int(years.max()))
    if "site_id" in df and df["site_id"].nunique() > 1:
        raise InputError(f"{path}: one FLUXNET file holds one site, got {df['site_id'].nunique()}")
    time = pd.to_datetime(df["time"])
    if (time != time.dt.floor("D")).any():
        raise InputError(f"{path}: DD files hold daily steps at 00:00; aggregate with to_daily first")
    columns = {"TIMESTAMP": time.dt.strftime("%Y%m%d").to_numpy()}
    for name, (col, qc_col, factor) in _DD_COLUMNS.items():
        values = df[name].to_numpy(dtype="float64") * factor if name in df else np.full(len(df), np.nan)
        columns[col] = _fmt(values, decimals)
        if qc_col:
            qc = (
                df[f"{name}_QC"].to_numpy(dtype="float64") if f"{name}_QC" in df else np.full(len(df), np.nan)
            )
            columns[qc_col] = _fmt(qc, 3)
    out = pd.DataFrame(columns)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        out.to_csv(tmp, index=False, quoting=csv.QUOTE_NONE, lineterminator="\n")
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _fmt(values: np.ndarray, decimals: int) -> np.ndarray:
    rounded = np.round(values, decimals)
    text = np.char.mod(f"%.{decimals}f", np.nan_to_num(rounded, nan=MISSING)).astype(object)
    text = np.array([t.rstrip("0").rstrip(".") if "." in t else t for t in text], dtype=object)
    text[np.isnan(values)] = "-9999"
    return text
