"""``fluxlens ingest`` and ``fluxlens catalog`` (``fluxlens demo``, which also trains a model, is
:mod:`fluxlens.demo`)."""

from __future__ import annotations

import argparse

from catalog import settings
from catalog.errors import InputError


def add_commands(subparsers) -> None:
    p = subparsers.add_parser(
        "ingest",
        help="read real files and write them to the catalog",
        description="Read files of one kind and write them as a catalog product (gridded kinds) "
        "or station network (fluxnet, ismn). Folders are searched for files of the kind.",
    )
    p.add_argument("kind", choices=("gssm", "esacci", "smap", "cube", "fluxnet", "ismn"), help="input kind")
    p.add_argument("paths", nargs="+", help="files or folders")
    p.add_argument("--name", required=True, help="product or network name (lower case, digits, _ -)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--replace", action="store_true", help="replace an existing product or network")
    mode.add_argument("--append", action="store_true", help="add later dates to an existing product")
    p.add_argument("--synthetic", action="store_true", help="mark the data as synthetic (not observations)")
    p.add_argument(
        "--mask-out-of-range",
        action="store_true",
        help="store values outside a variable's valid range (e.g. soil moisture outside 0-1 m3 m-3) as "
        "missing and count them in the provenance; default: refuse the input (gridded kinds only)",
    )
    g = p.add_argument_group("gssm options")
    g.add_argument("--nodata", type=float, help="override the GeoTIFF nodata value")
    g.add_argument("--keep-zero", action="store_true", help="keep 0 as a value (default: 0 is missing)")
    g = p.add_argument_group("esacci options")
    g.add_argument(
        "--keep-flags",
        default="0",
        help="comma-separated flag values whose soil moisture is kept, or 'all' (default 0)",
    )
    g = p.add_argument_group("smap options")
    g.add_argument("--passes", default="AM,PM", help="overpasses to use: AM, PM or AM,PM (default)")
    g.add_argument("--all-quality", action="store_true", help="keep retrievals not of recommended quality")
    g.add_argument(
        "--resolution",
        type=float,
        help="regular grid step in degrees (smap: default by product; cube: regrid)",
    )
    g = p.add_argument_group(
        "cube options",
        "forcing, flux, vegetation and static cubes (netCDF, GRIB, Zarr, GeoTIFF, zip) through a recipe",
    )
    g.add_argument("--recipe", help="recipe name (era5, era5-land, gldas-noah, c3s-lai, c3s-landcover, dem, "
                   "flux-cf, generic) or a recipe YAML file")  # fmt: skip
    g.add_argument("--grid", help="regrid onto the grid of this catalog product")
    g.add_argument("--bbox", help="W,S,E,N in degrees: keep only this region (write --bbox=-10,35,30,60)")
    g.add_argument(
        "--variables", help="extra mapping SRC=canonical[:units],... (e.g. for the generic recipe)"
    )
    g.add_argument("--only", help="comma-separated canonical variables to make (each must be in the files)")
    g.add_argument(
        "--min-coverage", type=float,
        help="fraction of a day's sub-daily steps needed for a daily mean (default 0.75)",
    )  # fmt: skip
    g = p.add_argument_group("fluxnet options")
    g.add_argument(
        "--sites",
        help="site table: FLUXNET site list or inventory (csv, xlsx), AmeriFlux BADM workbook or BASE-BADM "
        "zip, or a folder; default: the BADM among the inputs, else the site list beside the files",
    )
    g.add_argument("--qc-min", type=float, help="drop values whose QC fraction is below this (0-1)")
    g = p.add_argument_group("ismn options")
    g.add_argument(
        "--ismn-flags", default="G", help="comma-separated ISMN flag codes kept, or 'all' (default G)"
    )
    p.set_defaults(func=run_ingest)

    p = subparsers.add_parser("catalog", help="list the products and station networks")
    p.set_defaults(func=run_catalog)


def _flag_list(text: str, what: str, cast=str):
    if text.strip().lower() == "all":
        return None
    try:
        return tuple(cast(v.strip()) for v in text.split(",") if v.strip())
    except ValueError as exc:
        raise InputError(f"bad {what} {text!r}: {exc}") from exc


def reader_options(args: argparse.Namespace) -> dict:
    """Reader keyword arguments of ``args.kind`` from the command-line options."""
    if args.kind == "gssm":
        return {"nodata": args.nodata, "zero_is_missing": not args.keep_zero}
    if args.kind == "esacci":
        return {"keep_flags": _flag_list(args.keep_flags, "--keep-flags", int)}
    if args.kind == "smap":
        passes = tuple(p.strip().upper() for p in args.passes.split(",") if p.strip())
        if not passes or set(passes) - {"AM", "PM"}:
            raise InputError(f"bad --passes {args.passes!r}: use AM, PM or AM,PM")
        return {"passes": passes, "recommended_only": not args.all_quality, "resolution": args.resolution}
    if args.kind == "cube":
        if not args.recipe:
            raise InputError("ingest cube needs --recipe (one of the shipped recipes or a YAML file)")
        only = _flag_list(args.only, "--only") if args.only else None
        return {"recipe": args.recipe, "grid": args.grid, "resolution": args.resolution, "bbox": args.bbox,
                "variables": args.variables, "only": only, "min_coverage": args.min_coverage}  # fmt: skip
    if args.kind == "fluxnet":
        return {"sites_path": args.sites, "qc_min": args.qc_min}
    return {"flags": _flag_list(args.ismn_flags, "--ismn-flags")}


def run_ingest(args: argparse.Namespace) -> int:
    from data_prep import ingest

    mode = "replace" if args.replace else "append" if args.append else "create"
    out_of_range = "mask" if args.mask_out_of_range else "fail"
    result = ingest.ingest(
        args.kind,
        args.paths,
        name=args.name,
        mode=mode,
        synthetic=args.synthetic,
        out_of_range=out_of_range,
        **reader_options(args),
    )
    if isinstance(result, dict):
        print(f"network {args.name}: {result['n_sites']} sites, {result['n_observations']} observations")
    else:
        print(
            f"product {result.name}: {', '.join(result.variables)}, {result.n_time} time steps "
            f"{result.time_start}..{result.time_end}, {len(result.levels)} levels"
        )
        masked = _masked_counts(result.provenance)
        if masked:
            counts = ", ".join(f"{v}: {n:,}" for v, n in masked.items())
            print(f"  stored as missing (outside the valid range, --mask-out-of-range): {counts}")
    return 0


def _masked_counts(provenance: dict) -> dict[str, int]:
    """Values masked by ``--mask-out-of-range`` in this ingest (the last append, or the whole write)."""
    appended = provenance.get("appended") or []
    masked = appended[-1].get("masked_out_of_range") if appended else provenance.get("masked_out_of_range")
    return {v: int(n) for v, n in (masked or {}).items() if n}


def run_catalog(args: argparse.Namespace) -> int:
    from catalog import api

    print(f"catalog: {settings.data_dir() / 'catalog.yaml'}")
    products = api.list_products()
    print(f"products ({len(products)}):")
    for p in products:
        variables = ", ".join(f"{v} [{m.get('units', '?')}]" for v, m in p.variables.items())
        w, s, e, n = p.bbox
        print(
            f"  {p.name}{'  (synthetic)' if p.synthetic else ''}: {variables}; {p.resolution:g} deg, "
            f"{p.levels[0]['n_lat']} x {p.levels[0]['n_lon']} px, {len(p.levels)} levels; "
            f"{p.time_start}..{p.time_end} ({p.n_time} {p.time_step}{'s' if p.n_time != 1 else ''}); "
            f"bbox W{w:g} S{s:g} E{e:g} N{n:g}"
        )
        prov = p.provenance or {}
        sources = prov.get("sources") or []
        hashed = sum(1 for src in sources if isinstance(src, dict) and src.get("sha256"))
        recipe = (prov.get("recipe") or {}).get("name")
        print(f"      provenance: {prov.get('reader', 'n/a')}{f', recipe {recipe}' if recipe else ''}; "
              f"{len(sources)} source file(s), {hashed} with sha256")  # fmt: skip
        for var, note in (prov.get("variables") or {}).items():
            print(f"      {var}: {note.get('time_aggregation')}; regridding: {note.get('regridding')}")
    networks = api.list_networks()
    print(f"station networks ({len(networks)}):")
    for name in networks:
        m = api.network_info(name)
        print(
            f"  {name}{'  (synthetic)' if m.get('synthetic') else ''}: {m['n_sites']} sites, "
            f"{m['n_observations']} observations, {m.get('time_start')}..{m.get('time_end')}; "
            f"variables {', '.join(m.get('variables', []))}"
        )
    return 0
