"""Ingest: real files → reader → ``catalog.store`` (analysis-ready Zarr or Parquet, registered).

One function per kind of input. Each expands folders into the files of its kind, records the
sources with their sha256 checksums, the reader, its version and options as provenance, and hands the
reader's output to the store, which writes atomically. Readers are imported when used.
"""

from __future__ import annotations

import importlib.metadata
import logging
from pathlib import Path

import pandas as pd

from catalog import store
from catalog.api import ProductInfo
from catalog.errors import InputError

log = logging.getLogger(__name__)

GRID_KINDS = ("gssm", "esacci", "smap", "cube")
STATION_KINDS = ("fluxnet", "ismn")
KINDS = GRID_KINDS + STATION_KINDS

# File name patterns of each kind when a folder is given.
PATTERNS = {
    "gssm": ("*.tif", "*.tiff", "*.TIF", "*.TIFF"),
    "esacci": ("*.nc",),
    "smap": ("*.h5", "*.he5", "*.H5"),
    "fluxnet": ("*.csv", "*.txt", "*.xlsx", "AMF_*BASE*.zip"),
}


def _version() -> str:
    try:
        return importlib.metadata.version("fluxlens")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def expand_paths(paths, kind: str) -> list[Path]:
    """Files of ``kind`` named by ``paths`` (files kept as given, folders searched recursively)."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(
                {f for pattern in PATTERNS.get(kind, ("*",)) for f in p.rglob(pattern) if f.is_file()}
            )
            if not found:
                raise InputError(f"{p}: no {kind} files ({', '.join(PATTERNS.get(kind, ()))}) in this folder")
            out.extend(found)
        elif p.is_file():
            out.append(p)
        else:
            raise InputError(f"{p}: no such file or folder")
    if not out:
        raise InputError(f"no input files given for {kind}")
    return out


def _provenance(files, reader: str, options: dict) -> dict:
    return store.source_provenance(files, reader=reader, reader_version=_version(), options=options)


def ingest_gssm(paths, *, name: str, mode: str = "create", synthetic: bool = False, nodata=None,
                zero_is_missing: bool = True, out_of_range: str = "fail") -> ProductInfo:  # fmt: skip
    """GSSM1km GeoTIFFs (``data_prep.gssm.read_gssm_geotiff``) → product ``name``."""
    from data_prep import gssm

    files = expand_paths(paths, "gssm")
    options = {"nodata": nodata, "zero_is_missing": zero_is_missing}
    provenance = _provenance(files, "data_prep.gssm.read_gssm_geotiff", options)
    ds = gssm.read_gssm_geotiff([str(f) for f in files], nodata=nodata, zero_is_missing=zero_is_missing)
    return _write(ds, name, provenance, synthetic, mode, out_of_range, packed=gssm.PACKING)


def ingest_esacci(paths, *, name: str, mode: str = "create", synthetic: bool = False,
                  keep_flags=(0,), out_of_range: str = "fail") -> ProductInfo:  # fmt: skip
    """ESA CCI SM / C3S netCDF images (``data_prep.esacci.read_esacci``) → product ``name``."""
    from data_prep import esacci

    files = expand_paths(paths, "esacci")
    options = {"keep_flags": None if keep_flags is None else sorted(int(f) for f in keep_flags)}
    provenance = _provenance(files, "data_prep.esacci.read_esacci", options)
    ds = esacci.read_esacci([str(f) for f in files], keep_flags=keep_flags)
    return _write(ds, name, provenance, synthetic, mode, out_of_range)


def ingest_smap(paths, *, name: str, mode: str = "create", synthetic: bool = False, passes=("AM", "PM"),
                recommended_only: bool = True, resolution: float | None = None,
                out_of_range: str = "fail") -> ProductInfo:  # fmt: skip
    """SMAP L3 HDF5 granules (``data_prep.smap.read_smap_l3``, regridded to ``resolution``°) → ``name``."""
    from data_prep import smap

    files = expand_paths(paths, "smap")
    options = {"passes": list(passes), "recommended_only": recommended_only, "resolution": resolution}
    provenance = _provenance(files, "data_prep.smap.read_smap_l3", options)
    ds = smap.read_smap_l3(
        [str(f) for f in files],
        passes=tuple(passes),
        recommended_only=recommended_only,
        resolution=resolution,
    )
    return _write(ds, name, provenance, synthetic, mode, out_of_range)


def ingest_cube(paths, *, name: str, recipe: str, mode: str = "create", synthetic: bool = False,
                grid: str | None = None, resolution: float | None = None, bbox=None,
                variables: str | None = None, only=None, min_coverage: float | None = None,
                out_of_range: str = "fail") -> ProductInfo:  # fmt: skip
    """Forcing, flux, vegetation or static cubes (``data_prep.cube.read_cube`` under a recipe of
    ``data_prep/recipes``) → product ``name``, regridded onto product ``grid``'s grid or a regular
    ``resolution``° grid when given. The provenance records, per variable, its source files and
    variables, every conversion, the daily aggregation rule and the regridding method."""
    import tempfile

    from catalog import api
    from data_prep import cube, regrid
    from data_prep import recipe as recipes

    rec = recipes.load(recipe)
    if variables:
        rec = recipes.with_mapping(rec, variables)
    if grid is not None and resolution is not None:
        raise InputError("give --grid or --resolution, not both")
    target = None
    if grid is not None:
        target = regrid.grid_of(api.open_product(grid))
    box = _bbox(bbox)
    files = cube.expand(paths)
    local = [Path(f) for f in files if "://" not in f]
    coverage = cube.MIN_COVERAGE if min_coverage is None else float(min_coverage)
    if not 0 < coverage <= 1:
        raise InputError(f"--min-coverage must be in (0, 1], got {coverage}")
    options = {
        "recipe": rec.name, "recipe_file": Path(rec.path).name, "grid": grid, "resolution": resolution,
        "bbox": list(box) if box else None, "variables": variables, "only": list(only) if only else None,
        "min_coverage": coverage,
    }  # fmt: skip
    provenance = _provenance(local, "data_prep.cube.read_cube", options)
    provenance["sources"] += [{"path": f, "size": None, "sha256": None} for f in files if "://" in f]
    provenance["recipe"] = {"name": rec.name, "title": rec.title, "reference": rec.reference,
                            "sha256": store.sha256_file(rec.path)}  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="fluxlens-cube-") as workdir:
        ds, notes = cube.read_cube(
            files, rec, workdir=Path(workdir), grid=target, resolution=resolution, bbox=box, only=only,
            min_coverage=coverage,
        )  # fmt: skip
        provenance["variables"] = notes
        return store.write_product(
            ds, name, provenance=provenance, synthetic=synthetic, mode=mode, title=rec.title,
            kind="static" if rec.static else None, out_of_range=out_of_range,
        )  # fmt: skip


def _bbox(bbox):
    """(W, S, E, N) floats from a tuple or 'W,S,E,N' text, or None; InputError if malformed."""
    if bbox is None:
        return None
    parts = bbox.split(",") if isinstance(bbox, str) else list(bbox)
    try:
        w, s, e, n = (float(v) for v in parts)
    except (TypeError, ValueError) as exc:
        raise InputError(f"bad bbox {bbox!r}: give W,S,E,N in degrees") from exc
    if not (-180 <= w < e <= 180 and -90 <= s < n <= 90):
        raise InputError(f"bad bbox {bbox!r}: need -180 <= W < E <= 180 and -90 <= S < N <= 90")
    return (w, s, e, n)


def _write(ds, name: str, provenance: dict, synthetic: bool, mode: str, out_of_range: str,
           packed=None) -> ProductInfo:  # fmt: skip
    """Hand a gridded reader's output to the store; ``out_of_range``: ``"fail"`` or ``"mask"``;
    ``packed``: the reader's own precision (``catalog.packing``)."""
    return store.write_product(
        ds, name, provenance=provenance, synthetic=synthetic, mode=mode, kind="soil_moisture",
        out_of_range=out_of_range, packed=packed,
    )  # fmt: skip


def _concat_tables(tables: list[pd.DataFrame]) -> pd.DataFrame:
    for t in tables:
        t.attrs = {}
    return pd.concat(tables, ignore_index=True)


def ingest_fluxnet(paths, *, name: str, mode: str = "create", sites_path=None, synthetic: bool = False,
                   qc_min: float | None = None) -> dict:  # fmt: skip
    """FLUXNET-style tower files (``data_prep.fluxnet.read_fluxnet``, one per site) → network ``name``.

    Tower files are csv/txt tables, ``.xlsx`` workbooks and AmeriFlux ``AMF_<SITE>_BASE-BADM_<v>.zip``
    downloads. Site coordinates come, in this order of precedence, from ``sites_path``
    (``read_site_table``: site list, inventory, BADM file or a folder holding one), from BADM workbooks
    among ``paths``, from the BADM inside each BASE-BADM zip, and, for sites still missing, from the
    site table in the folder of the first file. A folder's ``.xlsx`` with a ``.csv`` of the same name
    beside it is taken to be the same table and skipped. All files must share one time step.
    ``mode``: ``create`` or ``replace``.
    """
    from data_prep import badm, fluxnet

    given = [paths] if isinstance(paths, (str, Path)) else list(paths)
    towers, badm_files = [], []
    for f in _fluxnet_files(given):
        if _is_site_table(f):
            continue
        (badm_files if _is_badm(f) else towers).append(f)
    if not towers:
        raise InputError(f"no tower files among {list(map(str, given))}")

    tables, resolutions, units = [], set(), {}
    for f in towers:
        df = fluxnet.read_fluxnet(f, qc_min=qc_min)
        resolutions.add(df.attrs.get("resolution"))
        units.update(df.attrs.get("units") or {})
        tables.append(df)
    if len(resolutions) > 1:
        raise InputError(
            f"tower files have different time steps {sorted(map(str, resolutions))}: ingest them separately"
        )
    # site ids of the zips, read before the tables lose their attrs in the concatenation
    zip_sites = {f: str(t["site_id"].iloc[0]) for f, t in zip(towers, tables, strict=True) if _is_zip(f)}
    obs = _concat_tables(tables)
    dup = obs.duplicated(["site_id", "time"])
    if dup.any():
        first = obs.loc[dup, ["site_id", "time"]].iloc[0]
        raise InputError(
            f"site {first.site_id} has time {first.time} in more than one file; give each site once"
        )

    site_tables, site_files, described = [], [], []
    if sites_path:
        sites_path = Path(sites_path)
        site_tables.append(fluxnet.read_site_table(sites_path))
        site_files += map(Path, site_tables[-1].attrs["source_files"])
        described.append(str(sites_path))
    for f in badm_files:
        site_tables.append(badm.read_badm(f))
        site_files.append(f)
        described.append(str(f))
    badm_problems: dict[str, InputError] = {}
    for f, site in zip_sites.items():
        try:
            site_tables.append(badm.read_badm(f))
            described.append(f"the BADM in {f.name}")
        except InputError as exc:  # fatal only if no other source places the site
            badm_problems.setdefault(site, exc)
    needed = set(obs["site_id"])
    if not sites_path and needed - _site_ids(site_tables):
        folder = towers[0].parent
        if _site_table_files(folder) or not (badm_files or zip_sites):
            site_tables.append(fluxnet.read_site_table(folder))
            site_files += map(Path, site_tables[-1].attrs["source_files"])
            described.append(str(folder))
    missing = sorted(needed - _site_ids(site_tables))
    if missing:
        if missing[0] in badm_problems:
            raise badm_problems[missing[0]]
        sources = "; ".join(described) or "none"
        raise InputError(f"sites {missing[:10]} are not in the site table(s) ({sources}); pass --sites")
    site_table = pd.concat([t.assign(site_id=t["site_id"].astype(str)) for t in site_tables])
    site_table = site_table.drop_duplicates("site_id", keep="first")
    sites = site_table[site_table["site_id"].isin(needed)].reset_index(drop=True)
    options = {"qc_min": qc_min, "resolution": resolutions.pop(), "units": units}
    sources = towers + list(dict.fromkeys(site_files))
    provenance = _provenance(sources, "data_prep.fluxnet.read_fluxnet", options)
    return store.write_stations(name, sites, obs, provenance=provenance, synthetic=synthetic, mode=mode)


def _fluxnet_files(paths: list) -> list[Path]:
    """The files named by ``paths``; a folder's ``.xlsx`` with a same-named ``.csv`` beside it is skipped
    (the csv export of one workbook; files named explicitly are always kept)."""
    out: list[Path] = []
    for p in map(Path, paths):
        found = expand_paths([p], "fluxnet")
        if p.is_dir():
            twins = [f for f in found if f.suffix.lower() == ".xlsx" and f.with_suffix(".csv") in set(found)]
            for f in twins:
                log.info("%s: skipped, the same table as %s", f, f.with_suffix(".csv").name)
            found = [f for f in found if f not in twins]
        out.extend(found)
    if not out:
        raise InputError("no input files given for fluxnet")
    return list(dict.fromkeys(out))


def _is_site_table(path: Path) -> bool:
    from data_prep.fluxnet import SITE_TABLE_NAMES

    return path.name in SITE_TABLE_NAMES


def _is_zip(path: Path) -> bool:
    return path.suffix.lower() == ".zip"


def _is_badm(path: Path) -> bool:
    """A BADM (BIF) workbook or csv, told by its header row (SITE_ID, GROUP_ID, VARIABLE_GROUP, ...)."""
    from data_prep import badm

    suffix = path.suffix.lower()
    if suffix in (".xlsx", ".xlsm"):
        with badm.open_workbook(path, str(path)) as wb:
            for ws in wb.worksheets:
                found = badm.sheet_header(ws, str(path))
                if found and badm.is_bif_header(found[1]):
                    return True
        return False
    if suffix == ".csv":
        with open(path, "rb") as fh:
            first = fh.readline(4096).decode("utf-8-sig", errors="replace")
        return badm.is_bif_header(c.strip().strip('"') for c in first.split(","))
    return False


def _site_ids(tables: list[pd.DataFrame]) -> set[str]:
    return {str(s) for t in tables for s in t["site_id"]}


def _site_table_files(folder: Path) -> list[Path]:
    from data_prep.fluxnet import SITE_TABLE_NAMES

    return [folder / n for n in SITE_TABLE_NAMES if (folder / n).is_file()]


def ingest_ismn(paths, *, name: str, mode: str = "create", synthetic: bool = False, flags=("G",)) -> dict:
    """ISMN ``.stm`` files, station folders or zip downloads (``data_prep.ismn``) → network ``name``."""
    from data_prep import ismn

    sites, tables, sources = [], [], []
    for p in map(Path, [paths] if isinstance(paths, (str, Path)) else paths):
        if not p.exists():
            raise InputError(f"{p}: no such file or folder")
        if p.is_dir() or p.suffix.lower() == ".zip":
            s, o = ismn.read_ismn_folder(p, flags=flags)
            sites.append(s)
            tables.append(o)
        else:
            meta, table = ismn.read_ismn(p, flags=flags)
            table = table.copy()
            table.insert(0, "site_id", meta["site_id"])
            tables.append(table)
            sites.append(_ismn_site_row(meta, table))
        sources.append(p)
    site_table = _concat_tables(sites)
    site_table = _merge_site_rows(site_table)
    obs = _concat_tables(tables)
    options = {"flags": None if flags is None else list(flags)}
    provenance = _provenance(sources, "data_prep.ismn.read_ismn", options)
    return store.write_stations(name, site_table, obs, provenance=provenance, synthetic=synthetic, mode=mode)


def _ismn_site_row(meta: dict, table: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "site_id": meta["site_id"],
                "name": meta.get("station", meta["site_id"]),
                "lat": meta["lat"],
                "lon": meta["lon"],
                "igbp": None,
                "network_ismn": meta.get("network"),
                "elevation": meta.get("elevation"),
                "start": table["time"].min(),
                "end": table["time"].max(),
            }
        ]
    )


def _merge_site_rows(sites: pd.DataFrame) -> pd.DataFrame:
    """One row per site (several sensors or files of one station give several rows)."""
    agg = {c: "first" for c in sites.columns if c not in ("site_id", "start", "end")}
    if "start" in sites:
        agg["start"] = "min"
    if "end" in sites:
        agg["end"] = "max"
    return sites.groupby("site_id", as_index=False, sort=True).agg(agg)


def ingest(
    kind: str, paths, *, name: str, mode: str = "create", synthetic: bool = False, out_of_range: str = "fail",
    **options,
):  # fmt: skip
    """Dispatch to the ingest of ``kind`` (one of :data:`KINDS`).

    ``out_of_range`` (gridded kinds): ``"fail"`` refuses values outside a variable's valid range,
    ``"mask"`` stores them as missing (counted in the provenance); see ``catalog.store.write_product``.
    """
    if kind not in KINDS:
        raise InputError(f"unknown input kind {kind!r}; use one of {', '.join(KINDS)}")
    if out_of_range not in ("fail", "mask"):
        raise InputError(f"bad out_of_range {out_of_range!r}; use 'fail' or 'mask'")
    if kind in STATION_KINDS:
        if mode == "append":
            raise InputError(f"{kind}: station networks are replaced as a whole, --append does not apply")
        if out_of_range != "fail":
            raise InputError(f"{kind}: --mask-out-of-range applies to gridded products, not station networks")
        func = ingest_fluxnet if kind == "fluxnet" else ingest_ismn
        return func(paths, name=name, mode=mode, synthetic=synthetic, **options)
    func = {"gssm": ingest_gssm, "esacci": ingest_esacci, "smap": ingest_smap, "cube": ingest_cube}[kind]
    return func(paths, name=name, mode=mode, synthetic=synthetic, out_of_range=out_of_range, **options)
