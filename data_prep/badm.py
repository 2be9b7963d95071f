"""AmeriFlux / FLUXNET BADM site metadata (BADM Interchange Format, "BIF") as a FluxLens site table.

A BIF is a long table with one row per reported value and the columns
``SITE_ID, GROUP_ID, VARIABLE_GROUP, VARIABLE, DATAVALUE``; the values of one reported instance of a
variable group share a ``GROUP_ID``. AmeriFlux delivers it as an Excel workbook (one sheet, ``AMF-BIF``;
FLUXNET's is ``FLX-BIF``): alone (``AMF_<SITE>_BIF_<date>.xlsx``, or ``AMF_AA-Flx_BIF_<...>.xlsx`` for all
sites) or inside the ``AMF_<SITE>_BASE-BADM_<version>.zip`` download beside the BASE csv
(https://ameriflux.lbl.gov/data/aboutdata/badm-data-product/).

The site table (:func:`read_badm`) has the columns of ``data_prep.fluxnet.read_site_table``:

==================  ============================================================================
column              BADM variable (variable group)
==================  ============================================================================
``name``            ``SITE_NAME`` (``GRP_HEADER`` in AmeriFlux files, ``GRP_SITE_NAME`` in others)
``lat``, ``lon``    ``LOCATION_LAT``, ``LOCATION_LONG`` (``GRP_LOCATION``), decimal degrees
``elevation``       ``LOCATION_ELEV`` (``GRP_LOCATION``), m
``igbp``            ``IGBP`` (``GRP_IGBP``), plus ``igbp_code`` 1-17
``mat``, ``map``    ``MAT`` (degC), ``MAP`` (mm y-1) (``GRP_CLIM_AVG``), ``climate_koeppen``
``utc_offset``      ``UTC_OFFSET`` (``GRP_UTC_OFFSET``), h
``country``         ``COUNTRY`` (``GRP_COUNTRY``)
==================  ============================================================================

Variables are found by name whatever group holds them. A site reporting several locations (a moved
tower) or IGBP classes over time gets the instance with the latest ``*_DATE_START`` (undated
instances count as the oldest); ``location_date_start`` tells which location was used. Sites without
coordinates are left out and listed in ``attrs["sites_without_coordinates"]``; a file in which no site
has coordinates is an :class:`InputError`.
"""

from __future__ import annotations

import datetime as dt
import io
import zipfile
import zlib
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from xml.etree.ElementTree import ParseError

import numpy as np
import pandas as pd

from catalog.errors import InputError
from catalog.igbp import IGBP_CODES

BIF_COLUMNS = ("SITE_ID", "GROUP_ID", "VARIABLE_GROUP", "VARIABLE", "DATAVALUE")
BIF_SHEETS = ("AMF-BIF", "FLX-BIF")

# site-table column -> BADM variable
_VALUES = {
    "name": "SITE_NAME",
    "igbp": "IGBP",
    "mat": "MAT",
    "map": "MAP",
    "climate_koeppen": "CLIMATE_KOEPPEN",
    "utc_offset": "UTC_OFFSET",
    "country": "COUNTRY",
}
_NUMERIC = ("elevation", "mat", "map", "utc_offset")
COLUMNS = ("site_id", "name", "lat", "lon", "igbp", "igbp_code", "elevation", "mat", "map",
           "climate_koeppen", "utc_offset", "country", "location_date_start")  # fmt: skip

# what openpyxl raises on a damaged workbook or sheet
_XLSX_ERRORS = (
    zipfile.BadZipFile, zipfile.LargeZipFile, KeyError, ValueError, TypeError, OSError, ParseError,
)  # fmt: skip


# ---------------------------------------------------------------------------------------------------
# workbooks (shared with data_prep.fluxnet)


@contextmanager
def open_workbook(source, label: str):
    """An openpyxl workbook (read-only, cached values) of a path or binary file object; InputError if
    it is not a readable .xlsx."""
    import openpyxl
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        wb = openpyxl.load_workbook(source, read_only=True, data_only=True)
    except (*_XLSX_ERRORS, InvalidFileException) as exc:
        raise InputError(f"{label}: not a readable .xlsx workbook ({type(exc).__name__}: {exc})") from exc
    try:
        yield wb
    finally:
        wb.close()


def sheet_rows(ws, label: str):
    """(row number, cell values) of every row of a worksheet; InputError for a damaged sheet."""
    try:
        yield from enumerate(ws.iter_rows(values_only=True), start=1)
    except _XLSX_ERRORS as exc:
        raise InputError(f"{label}: sheet {ws.title!r} cannot be read ({type(exc).__name__}: {exc})") from exc


def is_blank(row) -> bool:
    return all(v is None or (isinstance(v, str) and not v.strip()) for v in row)


def sheet_header(ws, label: str, max_rows: int = 50) -> tuple[int, list[str]] | None:
    """Row number and cell texts of a sheet's header: its first non-blank row not starting with '#'
    (None for a sheet without one in its first ``max_rows`` rows)."""
    for number, row in sheet_rows(ws, label):
        if number > max_rows:
            break
        if is_blank(row) or cell_text(row[0]).startswith("#"):
            continue
        cells = [cell_text(v) for v in row]
        while cells and not cells[-1]:
            cells.pop()
        return number, cells
    return None


def cell_text(value) -> str:
    """A cell's value as the text a csv export would hold: integers without '.0', floats at full
    precision (``repr``), dates as ISO YYYYMMDD[HHMM] (the BADM and FLUXNET date form)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).upper()
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    if isinstance(value, dt.datetime):
        return value.strftime("%Y%m%d%H%M" if (value.hour, value.minute) != (0, 0) else "%Y%m%d")
    if isinstance(value, dt.date):
        return value.strftime("%Y%m%d")
    return str(value).strip()


def sheet_table(ws, label: str) -> pd.DataFrame:
    """A sheet with a header row as a DataFrame of cell texts (blank rows dropped)."""
    found = sheet_header(ws, label)
    if found is None:
        return pd.DataFrame()
    header_row, header = found
    rows = []
    for number, row in sheet_rows(ws, label):
        if number <= header_row or is_blank(row):
            continue
        cells = [cell_text(v) for v in row[: len(header)]]
        rows.append(cells + [""] * (len(header) - len(cells)))
    return pd.DataFrame(rows, columns=header, dtype=str)


def is_bif_header(columns) -> bool:
    return set(BIF_COLUMNS) <= {str(c).strip().upper() for c in columns}


# ---------------------------------------------------------------------------------------------------
# BADM


def read_badm(path) -> pd.DataFrame:
    """The site table of a BADM file: a BIF ``.xlsx`` (or a ``.csv`` export of one), or an AmeriFlux
    ``BASE-BADM`` zip holding one. InputError naming the file for a workbook without a BIF sheet, a zip
    without a BADM workbook, or a BADM without site coordinates."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such BADM file")
    suffix = path.suffix.lower()
    if suffix == ".zip":
        member, data = _zip_workbook(path)
        label = f"{path} [{member}]"
        records = _workbook_records(io.BytesIO(data), label)
    elif suffix in (".xlsx", ".xlsm"):
        label = str(path)
        records = _workbook_records(path, label)
    else:
        label = str(path)
        try:
            records = pd.read_csv(path, dtype=str, keep_default_na=False)
        except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as exc:
            raise InputError(f"{path}: cannot parse as a BADM csv ({exc})") from exc
    table = bif_site_table(records, label)
    table.attrs["source_file"] = path.name
    return table


def _zip_workbook(path: Path) -> tuple[str, bytes]:
    try:
        with zipfile.ZipFile(path) as zf:
            books = [
                n for n in zf.namelist()
                if n.lower().endswith((".xlsx", ".xlsm")) and "__MACOSX" not in n
                and not PurePosixPath(n).name.startswith("~$")
            ]  # fmt: skip
            if not books:
                raise InputError(
                    f"{path}: no BADM workbook inside (expected AMF_<SITE>_BIF_<date>.xlsx; the zip holds "
                    f"{sorted(zf.namelist())[:10]})"
                )
            if len(books) > 1:
                named = [n for n in books if "BIF" in n.upper() or "BADM" in n.upper()]
                if len(named) != 1:
                    raise InputError(f"{path}: several workbooks inside ({books[:5]}); which is the BADM?")
                books = named
            return books[0], zf.read(books[0])
    except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, OSError, EOFError) as exc:
        raise InputError(f"{path}: not a readable zip archive ({exc})") from exc


def _workbook_records(source, label: str) -> pd.DataFrame:
    with open_workbook(source, label) as wb:
        sheets = sorted(wb.worksheets, key=lambda ws: ws.title not in BIF_SHEETS)
        for ws in sheets:
            found = sheet_header(ws, label)
            if found and is_bif_header(found[1]):
                return sheet_table(ws, f"{label} [sheet {ws.title!r}]")
        raise InputError(
            f"{label}: no BADM sheet: no sheet has the header {', '.join(BIF_COLUMNS)} "
            f"(sheets {wb.sheetnames})"
        )


def bif_site_table(records: pd.DataFrame, label: str) -> pd.DataFrame:
    """One site-table row per site of a BIF table (columns :data:`BIF_COLUMNS`, values as text)."""
    records = records.rename(columns=lambda c: str(c).strip().upper())
    missing = [c for c in BIF_COLUMNS if c not in records.columns]
    if missing:
        raise InputError(f"{label}: not a BADM table (missing columns {missing})")
    records = records[list(BIF_COLUMNS)].map(lambda v: cell_text(v) if not isinstance(v, str) else v.strip())
    records = records[records["SITE_ID"] != ""]
    if records.empty:
        raise InputError(f"{label}: BADM table without rows")
    rows, without = [], []
    for site, site_rows in records.groupby("SITE_ID", sort=False):
        instances = _instances(site_rows)
        location = _latest(instances, ("LOCATION_LAT", "LOCATION_LONG"), "LOCATION_DATE_START")
        if location is None:
            without.append(site)
            continue
        row = {
            "site_id": site,
            "lat": _coordinate(location["LOCATION_LAT"], -90, 90, "LOCATION_LAT", site, label),
            "lon": _coordinate(location["LOCATION_LONG"], -180, 180, "LOCATION_LONG", site, label),
            "elevation": location.get("LOCATION_ELEV", ""),
            "location_date_start": location.get("LOCATION_DATE_START", ""),
        }
        for column, variable in _VALUES.items():
            chosen = _latest(instances, (variable,), f"{variable}_DATE_START")  # IGBP_DATE_START ...
            row[column] = chosen[variable] if chosen else ""
        rows.append(row)
    if not rows:
        raise InputError(
            f"{label}: BADM without site coordinates: no GRP_LOCATION with LOCATION_LAT and LOCATION_LONG "
            f"for site(s) {without[:10]}"
        )
    table = pd.DataFrame(rows)
    for column in _NUMERIC:
        table[column] = pd.to_numeric(table[column].replace("", np.nan), errors="coerce")
    table["igbp"] = table["igbp"].str.strip().str.upper()
    table["igbp_code"] = table["igbp"].map(IGBP_CODES).astype("float64")
    table = table[list(COLUMNS)].reset_index(drop=True)
    table.attrs["sites_without_coordinates"] = without
    return table


def _instances(site_rows: pd.DataFrame) -> list[dict[str, str]]:
    """The reported instances (variable -> value) of one site, in file order, by GROUP_ID."""
    groups: dict[tuple[str, str], dict[str, str]] = {}
    columns = ["GROUP_ID", "VARIABLE_GROUP", "VARIABLE", "DATAVALUE"]
    for gid, group, variable, value in site_rows[columns].itertuples(index=False):
        if value not in ("", "-9999"):
            groups.setdefault((gid, group), {})[variable.strip().upper()] = value
    return list(groups.values())


def _latest(instances, needed: tuple[str, ...], date_variable: str) -> dict[str, str] | None:
    """The instance holding all ``needed`` variables with the latest ``date_variable`` (undated: oldest;
    equal dates: the last in the file)."""
    candidates = [(i, inst) for i, inst in enumerate(instances) if all(v in inst for v in needed)]
    if not candidates:
        return None
    return max(candidates, key=lambda c: (_date_key(c[1].get(date_variable, "")), c[0]))[1]


def _date_key(text: str) -> str:
    digits = "".join(ch for ch in text if ch.isdigit())
    return digits.ljust(12, "0") if digits else ""


def _coordinate(text: str, low: float, high: float, variable: str, site: str, label: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise InputError(f"{label}: site {site}: {variable} {text!r} is not a number") from None
    if not low <= value <= high:
        raise InputError(f"{label}: site {site}: {variable} {value} outside {low}..{high} degrees")
    return value
