"""Eddy-covariance tower tables: FLUXNET2015 / ONEFlux, AmeriFlux BASE, bigleaf and REddyProc text files,
FLUXNET tables saved as .xlsx workbooks, AmeriFlux BASE-BADM zips; site tables (csv, xlsx, BADM).

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
import datetime as dt
import io
import re
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
import pandas as pd

from catalog import time_steps
from catalog.errors import InputError
from catalog.igbp import IGBP_CODES
from data_prep import badm

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

    Besides text tables, ``path`` may be an ``.xlsx`` workbook holding one FLUXNET/AmeriFlux table
    (the sheet whose header row has ``TIMESTAMP`` or ``TIMESTAMP_START``; ``attrs["sheet"]``), read as
    its csv export would be, or a ``.zip`` holding one tower csv, such as the AmeriFlux
    ``AMF_<SITE>_BASE-BADM_<version>.zip`` download (its BASE csv; ``attrs["archive_member"]``; the BADM
    site metadata beside it is read by :func:`read_site_table` / ``data_prep.badm.read_badm``).

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
    suffix = path.suffix.lower()
    if suffix == ".zip":
        src, extra = _zip_source(path)
    elif suffix in (".xlsx", ".xlsm"):
        src, extra = _xlsx_source(path)
    else:
        src, extra = _Source(str(path), path.name, path=path), {}
    text_head = _head(src)
    fmt = _detect_format(src, text_head)
    raw, time, resolution, units = _READERS[fmt](src, text_head)
    df = _canonical_table(raw, time, resolution, fmt, units, src)
    df.insert(1, "site_id", site_id or _site_id(src, text_head))
    df.attrs.update(
        {
            "source_file": path.name,
            **extra,
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
    m = _FLUXNET_NAME.search(src.name)
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


@dataclass
class _Source:
    """A tower table to parse: a text file, or text held in memory (a zip member, a converted sheet)."""

    label: str  # how messages name it: the path, "<zip> [<member>]" or "<xlsx> [sheet '<name>']"
    name: str  # the file name the site id and resolution are read from
    path: Path | None = None
    data: bytes | None = None

    def __str__(self) -> str:
        return self.label

    @property
    def stem(self) -> str:
        return PurePosixPath(self.name).stem

    def read_bytes(self) -> bytes:
        return self.data if self.data is not None else self.path.read_bytes()

    def head(self, nbytes: int) -> bytes:
        if self.data is not None:
            return self.data[:nbytes]
        with open(self.path, "rb") as fh:
            return fh.read(nbytes)

    def for_pandas(self):
        return io.BytesIO(self.data) if self.data is not None else self.path


def _head(src: _Source, nbytes: int = 65536) -> str:
    data = src.head(nbytes)
    if b"\x00" in data:
        raise InputError(f"{src}: binary file, not a tower text table")
    return data.decode("utf-8-sig", errors="replace")


# tower tables inside a zip: AmeriFlux BASE (AMF_<SITE>_BASE_<HH|HR>_<ver>.csv) or FLUXNET/ONEFlux files
_TOWER_MEMBER = re.compile(r"\.(csv|txt)$", re.IGNORECASE)
_ZIP_LIMIT = 4 << 30  # refuse members that would inflate beyond 4 GiB


def _zip_source(path: Path) -> tuple[_Source, dict]:
    try:
        with zipfile.ZipFile(path) as zf:
            names = [n for n in zf.namelist() if not n.endswith("/") and "__MACOSX" not in n]
            towers = [n for n in names if _TOWER_MEMBER.search(n) and _is_tower_name(PurePosixPath(n).name)]
            if not towers:
                raise InputError(
                    f"{path}: no tower table inside the zip (expected an AmeriFlux BASE csv "
                    f"AMF_<SITE>_BASE_<HH|HR>_<version>.csv or a FLUXNET csv; it holds {sorted(names)[:10]})"
                )
            if len(towers) > 1:
                raise InputError(
                    f"{path}: {len(towers)} tower tables inside the zip ({sorted(towers)[:6]}); "
                    "extract the one to ingest"
                )
            member = towers[0]
            if zf.getinfo(member).file_size > _ZIP_LIMIT:
                raise InputError(f"{path}: {member} inflates to more than {_ZIP_LIMIT >> 30} GiB")
            data = zf.read(member)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, OSError, EOFError) as exc:
        raise InputError(f"{path}: not a readable zip archive ({type(exc).__name__}: {exc})") from exc
    name = PurePosixPath(member).name
    return _Source(f"{path} [{member}]", name, data=data), {"archive_member": member}


def _is_tower_name(name: str) -> bool:
    return bool(_FLUXNET_NAME.search(name) or _ONEFLUX_NAME.search(name))


def _xlsx_source(path: Path) -> tuple[_Source, dict]:
    """The data sheet of a workbook as the csv text its export would be."""
    label = str(path)
    with badm.open_workbook(path, label) as wb:
        data_sheets, bif_sheets = [], []
        for ws in wb.worksheets:
            found = badm.sheet_header(ws, label)
            if found is None:
                continue
            if {"TIMESTAMP", "TIMESTAMP_START"} & set(found[1]):
                data_sheets.append(ws)
            elif badm.is_bif_header(found[1]):
                bif_sheets.append(ws.title)
        if not data_sheets:
            if bif_sheets:
                raise InputError(
                    f"{path}: a BADM site-metadata workbook (sheet {bif_sheets[0]!r}), not a tower table; "
                    "give it as the site table"
                )
            raise InputError(
                f"{path}: no data sheet: no sheet has a header row with TIMESTAMP or TIMESTAMP_START "
                f"(sheets {wb.sheetnames})"
            )
        if len(data_sheets) > 1:
            raise InputError(
                f"{path}: several data sheets {[ws.title for ws in data_sheets]}; save the one to read as "
                "its own workbook or csv"
            )
        ws = data_sheets[0]
        sheet_label = f"{path} [sheet {ws.title!r}]"
        text = _sheet_csv(ws, sheet_label)
    return _Source(sheet_label, path.name, data=text.encode()), {"sheet": ws.title}


_STAMP_FORMATS = {"TIMESTAMP_START": "%Y%m%d%H%M", "TIMESTAMP_END": "%Y%m%d%H%M", "TIMESTAMP": "%Y%m%d"}


def _sheet_csv(ws, label: str) -> str:
    """A FLUXNET/AmeriFlux sheet as csv text: '#' rows kept as comment lines, blank rows dropped, numbers
    written at full precision; empty cells, Excel errors and cells beyond the header are refused."""
    from openpyxl.utils import get_column_letter

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    header: list[str] | None = None
    for number, row in badm.sheet_rows(ws, label):
        if badm.is_blank(row):
            continue
        where = f"{label}: cell"
        first = badm.cell_text(row[0])
        if first.startswith("#"):
            out.write(" ".join(badm.cell_text(v) for v in row if v is not None) + "\n")
            continue
        if header is None:
            header = [badm.cell_text(v) for v in row]
            while header and not header[-1]:
                header.pop()
            if "" in header:
                col = get_column_letter(header.index("") + 1)
                raise InputError(f"{label}: header cell {col}{number} is empty")
            writer.writerow(header)
            continue
        cells = []
        for i, value in enumerate(row):
            if i >= len(header):
                if value is not None and badm.cell_text(value):
                    col = get_column_letter(i + 1)
                    raise InputError(f"{where} {col}{number} holds a value beyond the header's last column")
                continue
            if isinstance(value, dt.date):
                if header[i] not in _STAMP_FORMATS:
                    raise InputError(f"{where} {get_column_letter(i + 1)}{number} holds a date, not a number")
                cells.append(value.strftime(_STAMP_FORMATS[header[i]]))
                continue
            text = badm.cell_text(value)
            if not text:
                raise InputError(
                    f"{label}: cell {get_column_letter(i + 1)}{number} ({header[i]}) is empty "
                    "(missing values must be -9999)"
                )
            if text.startswith("#"):
                raise InputError(f"{where} {get_column_letter(i + 1)}{number} holds the Excel error {text}")
            cells.append(text)
        if len(cells) < len(header):
            col = get_column_letter(len(cells) + 1)
            raise InputError(f"{label}: cell {col}{number} ({header[len(cells)]}) is empty "
                             "(missing values must be -9999)")  # fmt: skip
        writer.writerow(cells)
    if header is None:
        raise InputError(f"{label}: empty sheet")
    return out.getvalue()


def _lines(text: str) -> list[str]:
    """Split on any line ending (LF, CRLF, CR-only) and drop empty lines."""
    return [ln for ln in re.split(r"\r\n|\n\r|\r|\n", text) if ln.strip()]


def _detect_format(src: _Source, head: str) -> str:
    lines = _lines(head)
    body = [ln for ln in lines if not ln.startswith("#")]
    if not body:
        raise InputError(f"{src}: empty file, expected a tower table with a header row")
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
        f"{src}: not a FLUXNET/AmeriFlux table (no TIMESTAMP or TIMESTAMP_START column in the header "
        f"{header[:80]!r})"
    )


def _text_source(src: _Source, head: str):
    """A path or buffer for pandas, or the normalised text when the file uses CR-only line endings."""
    if "\r" in head and "\n" not in head:
        return io.StringIO(src.read_bytes().decode("utf-8-sig", errors="replace").replace("\r", "\n"))
    return src.for_pandas()


def _read_fluxnet_csv(src: _Source, head: str):
    lines = [ln for ln in _lines(head) if not ln.startswith("#")]
    header = [c.strip() for c in lines[0].split(",")]
    wanted = _wanted_columns(header, _FLUXNET_CANDIDATES)
    time_cols = [c for c in ("TIMESTAMP", "TIMESTAMP_START", "TIMESTAMP_END") if c in header]
    try:
        raw = pd.read_csv(
            _text_source(src, head),
            comment="#",  # AmeriFlux BASE metadata lines; no FLUXNET field holds a '#'
            usecols=time_cols + wanted,
            dtype={c: str for c in time_cols} | dict.fromkeys(wanted, "float64"),
            na_values=[],
            keep_default_na=False,
            skipinitialspace=True,
        )
    except (ValueError, pd.errors.ParserError) as exc:
        raise InputError(f"{src}: {_field_problem(src, len(header)) or f'cannot parse ({exc})'}") from exc
    if raw.empty:
        raise InputError(f"{src}: header only, no data rows")
    if raw[wanted].isna().any(axis=None) or raw[time_cols].isna().any(axis=None):
        raise InputError(
            f"{src}: {_field_problem(src, len(header)) or 'empty fields (missing must be -9999)'}"
        )
    raw = raw.replace(MISSING, np.nan)
    time, resolution = _fluxnet_time(src, raw)
    units = {"SWC": "%"}
    return raw, time, resolution, units


def _field_problem(src: _Source, n_fields: int) -> str | None:
    """Describe the first line whose field count differs from the header's, if any."""
    lines = [
        ln for ln in _lines(src.read_bytes().decode("utf-8-sig", errors="replace")) if not ln.startswith("#")
    ]
    for number, line in enumerate(lines[1:], start=2):
        fields = line.split(",")
        if len(fields) != n_fields or "" in (f.strip() for f in fields):
            return (
                f"data line {number} has {len(fields)} fields ({sum(not f.strip() for f in fields)} empty), "
                f"the header {n_fields}: truncated or malformed file (missing values must be -9999)"
            )
    return None


def _fluxnet_time(src: _Source, raw: pd.DataFrame) -> tuple[pd.Series, str]:
    name_match = _FLUXNET_NAME.search(src.name) or _ONEFLUX_NAME.search(src.name)
    if "TIMESTAMP_START" in raw:
        start = _parse_stamp(src, raw["TIMESTAMP_START"], "TIMESTAMP_START")
        resolution = name_match["res"] if name_match else None
        if resolution is None:
            if "TIMESTAMP_END" not in raw:
                raise InputError(f"{src}: TIMESTAMP_START without TIMESTAMP_END; cannot tell the step")
            end = _parse_stamp(src, raw["TIMESTAMP_END"], "TIMESTAMP_END")
            step = (end - start).median()
            resolution = {
                pd.Timedelta("30min"): "HH",
                pd.Timedelta("1h"): "HR",
                pd.Timedelta("1D"): "DD",
            }.get(step, "WW" if pd.Timedelta("6D") <= step <= pd.Timedelta("9D") else None)
            if resolution is None:
                raise InputError(f"{src}: unrecognised time step {step} between TIMESTAMP_START and _END")
        return start, resolution
    if "TIMESTAMP" not in raw:
        raise InputError(f"{src}: no TIMESTAMP column")
    stamps = raw["TIMESTAMP"].str.strip()
    width = stamps.str.len().unique()
    by_width = {4: ("YY", "%Y"), 6: ("MM", "%Y%m"), 8: ("DD", "%Y%m%d")}
    if len(width) != 1 or int(width[0]) not in by_width:
        raise InputError(f"{src}: TIMESTAMP values are not YYYY, YYYYMM or YYYYMMDD")
    resolution, fmt = by_width[int(width[0])]
    if name_match and name_match["res"] != resolution:
        raise InputError(
            f"{src}: file name says resolution {name_match['res']} but TIMESTAMP is {resolution}-style"
        )
    return _parse_stamp(src, stamps, "TIMESTAMP", fmt), resolution


def _parse_stamp(src: _Source, values: pd.Series, column: str, fmt: str | None = None) -> pd.Series:
    values = values.str.strip()
    if fmt is None:  # TIMESTAMP_START/END: YYYYMMDDHHMM, or YYYYMMDD in weekly files
        fmt = "%Y%m%d" if values.str.len().max() == 8 else "%Y%m%d%H%M"
    parsed = pd.to_datetime(values, format=fmt, errors="coerce")
    if parsed.isna().any():
        bad = values[parsed.isna()].iloc[0]
        raise InputError(f"{src}: {column} value {bad!r} is not a {fmt} time stamp")
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


def _read_bigleaf(src: _Source, head: str):
    try:
        raw = pd.read_csv(_text_source(src, head))
    except (ValueError, pd.errors.ParserError) as exc:
        raise InputError(f"{src}: cannot parse as a half-hourly table ({exc})") from exc
    if raw.empty:
        raise InputError(f"{src}: header only, no data rows")
    for col in ("year", "doy", "hour"):
        if raw[col].isna().any():
            raise InputError(f"{src}: empty {col!r} values (truncated file?)")
    time = (
        pd.to_datetime(raw["year"].astype(int).astype(str), format="%Y")
        + pd.to_timedelta(raw["doy"] - 1, unit="D")
        + pd.to_timedelta(raw["hour"], unit="h")
    ).astype("datetime64[ns]")
    raw = raw.replace(MISSING, np.nan)
    return raw, time, _step_resolution(src, time), {"VPD": "kPa"}


def _read_reddyproc(src: _Source, head: str):
    source = _text_source(src, head)
    try:
        table = pd.read_csv(source, sep="\t", header=[0, 1], skipinitialspace=True)
    except (ValueError, pd.errors.ParserError) as exc:
        raise InputError(f"{src}: cannot parse as a REddyProc text table ({exc})") from exc
    names = [str(a).strip() for a, _ in table.columns]
    file_units = {str(a).strip(): str(b).strip() for a, b in table.columns}
    table.columns = names
    raw = table.apply(pd.to_numeric, errors="coerce").replace(MISSING, np.nan)
    if raw.empty or raw[["Year", "DoY", "Hour"]].isna().any().any():
        raise InputError(f"{src}: missing Year/DoY/Hour values (truncated file?)")
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
    return raw, time, _step_resolution(src, time), units


def _step_resolution(src: _Source, time: pd.Series) -> str:
    step = time.diff().dropna().median()
    for res in SUB_DAILY + ("DD",):
        if step == pd.Timedelta(PERIODS[res]):
            return res
    raise InputError(f"{src}: unrecognised time step {step}")


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


def _canonical_table(raw, time, resolution, fmt, file_units, src: _Source) -> pd.DataFrame:
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
        raise InputError(f"{src}: none of the tower variables {', '.join(CANONICAL)} found")
    df = pd.DataFrame(out)
    df.attrs["source_columns"] = source_columns
    df.attrs["qc_columns"] = qc_columns
    df.attrs["units"] = units
    if qc_flag_like:
        df.attrs["qc_flag_values_as_zero"] = qc_flag_like
    return df


def _site_id(src: _Source, head: str) -> str:
    for pattern in (_FLUXNET_NAME, _ONEFLUX_NAME):
        m = pattern.search(src.name)
        if m:
            return m["site"]
    for line in _lines(head)[:20]:
        m = re.match(r"#\s*Site:\s*(\S+)", line)
        if m:
            return m.group(1)
    m = _SITE_IN_NAME.search(src.stem)
    if m:
        return f"{m['cc']}-{m['code']}"
    raise InputError(f"{src}: cannot tell the site id from the file name; pass site_id=")


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
    qc_columns = [f"{n}_QC" for n in CANONICAL]
    for site, table in df.groupby("site_id", sort=False):
        steps = table.set_index("time")
        mean = time_steps.daily_mean(
            steps[list(CANONICAL)], samples_per_day=steps_per_day, min_coverage=min_coverage
        )
        present = mean.index.isin(steps.index.floor("D"))  # resample adds days without rows: drop them
        mean = mean[present]
        count = steps[list(CANONICAL)].resample("1D").count()[present]
        qc_sum = steps[qc_columns].resample("1D").sum(min_count=1)[present]
        daily = pd.DataFrame(index=mean.index)
        for name in CANONICAL:
            daily[name] = mean[name] * steps_per_day if name == "P" else mean[name]
            daily[f"{name}_QC"] = qc_sum[f"{name}_QC"] / steps_per_day
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
SITE_TABLE_NAMES = (
    _SITE_INVENTORY, "FluxNET_sites_info.xlsx", _SITE_LIST, "FluxNET_sites.xlsx",
)  # fmt: skip
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
    ``FluxNET_sites.csv`` (or ``.xlsx``) beside it, adding ``start_year``, ``end_year``, ``version``), a
    BADM file (``data_prep.badm.read_badm``: an AmeriFlux/FLUXNET BIF workbook, or the
    ``AMF_<SITE>_BASE-BADM_<version>.zip`` holding one), or a folder holding a site list or inventory.
    Site lists and inventories may be csv files or ``.xlsx`` workbooks (the first sheet whose header
    row has ``SITE_ID``). ``attrs["source_files"]`` lists the files read.
    """
    path = Path(path)
    if path.is_dir():
        path = next((path / n for n in SITE_TABLE_NAMES if (path / n).is_file()), path / _SITE_LIST)
    if not path.is_file():
        raise InputError(f"{path}: no such site table")
    sites, files = _site_table_of(path)
    sites.attrs["source_files"] = [str(f) for f in files]
    return sites


def _site_table_of(path: Path) -> tuple[pd.DataFrame, list[Path]]:
    if path.suffix.lower() == ".zip":
        return badm.read_badm(path), [path]
    table = _read_site_file(path)
    if badm.is_bif_header(table.columns):
        sites = badm.bif_site_table(table, str(path))
        sites.attrs["source_file"] = path.name
        return sites, [path]
    if "filename" in table.columns:
        beside = (path.with_name(_SITE_LIST), path.with_name("FluxNET_sites.xlsx"))
        site_list = next((p for p in beside if p.is_file()), None)
        if site_list is None:
            raise InputError(
                f"{path}: a file inventory without coordinates; {_SITE_LIST} not found beside it"
            )
        sites = _site_list(_read_site_file(site_list), site_list)
        years = _inventory_years(table, path)
        return sites.merge(years, on="site_id", how="left"), [path, site_list]
    return _site_list(table, path), [path]


def _read_site_file(path: Path) -> pd.DataFrame:
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        return _read_site_sheet(path)
    return _read_plain_csv(path)


def _read_site_sheet(path: Path) -> pd.DataFrame:
    """The first sheet of a workbook whose header row names SITE_ID, as text like a csv export."""
    label = str(path)
    with badm.open_workbook(path, label) as wb:
        for ws in wb.worksheets:
            found = badm.sheet_header(ws, label)
            if found and "SITE_ID" in {c.upper() for c in found[1]}:
                table = badm.sheet_table(ws, f"{label} [sheet {ws.title!r}]")
                table.columns = [str(c).strip() for c in table.columns]
                return table
        raise InputError(
            f"{path}: no site-table sheet: no sheet has a header row with SITE_ID (sheets {wb.sheetnames})"
        )


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
