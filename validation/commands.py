"""``fluxlens validate``: the dashboard's scoreboard for one product variable, written as CSV;
``fluxlens validate scorecard``: the ILAMB scorecard of products against a reference (CSV and HTML);
``fluxlens validate qa4sm``: QA4SM-style soil-moisture validation against an ISMN network (CSV)."""

from __future__ import annotations

import argparse
import json
import math
import os
import tempfile
from pathlib import Path

import pandas as pd

from catalog.errors import InputError
from validation import export, matching, qa4sm, scaling, scoreboard, scorecard
from validation.config import ValidationOptions, variable_spec


def add_commands(subparsers) -> None:
    """Register ``validate`` on the ``fluxlens`` subparsers."""
    p = subparsers.add_parser(
        "validate",
        help="validate a product variable against a station network (per-site metrics CSV); "
        "'validate scorecard': ILAMB scorecard",
        description=__doc__,
    )
    p.add_argument("--product", help="catalog product name (required)")
    p.add_argument("--variable", help="product variable (le, h, rn, g, ssm) (required)")
    p.add_argument("--network", help="station network in the catalog (required)")
    p.add_argument("--sites", help="comma-separated site ids (default: every site)")
    p.add_argument("--out", type=Path, help="metrics CSV to write (required)")
    p.add_argument("--spatial", choices=["nearest", "bilinear"], help="pixel matching")
    p.add_argument("--anomaly", action="store_true", default=None, help="metrics on seasonal anomalies")
    p.add_argument("--use-corrected", action="store_true", default=None, help="compare with LE_CORR/H_CORR")
    p.add_argument("--qc-min", type=float, help="minimum FLUXNET _QC fraction of a used day")
    p.add_argument("--min-coverage", type=float, help="fraction of a day/month needed for a mean")
    p.add_argument("--min-pairs", type=int, help="fewer pairs: metrics are NaN")
    p.add_argument("--period", nargs=2, metavar=("START", "END"), help="ISO dates")
    p.add_argument("--depth", nargs=2, type=float, metavar=("FROM", "TO"), help="ISMN depth range in m")
    p.add_argument("--no-cache", action="store_true", help="recompute even when cached")
    p.set_defaults(func=run_validate)
    what = p.add_subparsers(dest="validate_what", metavar="{scorecard,qa4sm}")
    add_scorecard_command(what)
    add_qa4sm_command(what)


def add_qa4sm_command(subparsers) -> None:
    """Register ``validate qa4sm``."""
    p = subparsers.add_parser(
        "qa4sm",
        help="QA4SM-style soil-moisture validation of products against an ISMN network (CSV)",
        description="Soil-moisture products of the catalog (at each station's nearest cell) against an "
        "ISMN network of the catalog, per sensor or station, with QA4SM's options: nearest-in-time "
        "pairing (either side as the temporal reference) or FluxLens's daily means, scaling before the "
        "metrics, the product's quality-flag rule on/off, metrics per season, and triple collocation "
        "(Gruber et al. 2016) of the station and two products. bias = product - reference (QA4SM's "
        "BIAS has the other sign; --qa4sm-names writes its names and signs). Nothing is written on an error.",
    )
    p.add_argument("--product", required=True, action="append", help="catalog product (repeat for several)")
    p.add_argument("--network", required=True, help="ISMN-like station network of the catalog")
    p.add_argument("--csv", type=Path, required=True, help="metrics CSV to write")
    p.add_argument("--pairing", choices=list(matching.PAIRINGS), default="daily_mean")
    p.add_argument("--window-hours", type=float, default=12.0, help="nearest-in-time window (default 12)")
    p.add_argument("--temporal-reference", choices=list(matching.TEMPORAL_REFERENCES), default="station")
    p.add_argument(
        "--scaling", choices=list(scaling.METHODS), default="none", help="product scaled to the station"
    )
    p.add_argument("--per", choices=list(qa4sm.PER), default="sensor", help="one row per sensor or station")
    p.add_argument("--quality", choices=list(qa4sm.QUALITY_SWITCH), default="on", help="product flag rule")
    p.add_argument("--seasons", action="store_true", help="metrics also per DJF, MAM, JJA, SON")
    p.add_argument("--period", nargs=2, metavar=("START", "END"), help="ISO dates")
    p.add_argument("--depth", nargs=2, type=float, metavar=("FROM", "TO"), help="ISMN depth range in m")
    p.add_argument("--qa4sm-names", action="store_true", help="columns under QA4SM's names and signs")
    p.add_argument(
        "--triple-csv", type=Path, help="with two products: triple collocation (station, both products) CSV"
    )
    p.set_defaults(func=run_qa4sm)


def run_qa4sm(args: argparse.Namespace) -> int:
    if args.triple_csv is not None and len(args.product) != 2:
        raise InputError("validate qa4sm: --triple-csv takes exactly two --product (with the station, three)")
    base = ValidationOptions.from_config(period=args.period, depth=args.depth)
    options = qa4sm.Qa4smOptions(
        base=base,
        pairing=args.pairing,
        window_hours=args.window_hours,
        temporal_reference=args.temporal_reference,
        scaling=args.scaling,
        per=args.per,
        quality=args.quality,
        seasons=args.seasons,
    )
    table = qa4sm.validate_catalog(args.product, args.network, options)
    if table.empty or not (table["n"] > 0).any():
        why = "; ".join(f"{s}: {w}" for s, w in table.attrs.get("skipped", [])[:3])
        raise InputError(f"validate qa4sm: no pair of any product and station{f' ({why})' if why else ''}")
    shown = qa4sm.as_qa4sm(table) if args.qa4sm_names else table
    head = {
        "products": ", ".join(args.product),
        "network": args.network,
        "variable": "ssm (m3 m-3)",
        "options": json.dumps({**options.described(), "per": args.per, "seasons": args.seasons}),
        "conventions": json.dumps(qa4sm.CONVENTIONS),
    }
    texts = [
        (
            args.csv,
            "".join(f"# {k}: {v}\n" for k, v in head.items())
            + shown.to_csv(index=False, float_format="%.6g"),
        )
    ]
    if args.triple_csv is not None:
        from catalog import api

        sites = api.sites(args.network)
        points = {p: qa4sm.catalog_points(p, sites)[0].drop_vars("site_id") for p in args.product}
        obs = pd.concat(
            [api.site_observations(args.network, s).assign(site_id=s) for s in sites["site_id"].astype(str)],
            ignore_index=True,
        )
        tc_table = qa4sm.station_triple_collocation(points, sites, obs, options)
        texts.append((args.triple_csv, "".join(f"# {k}: {v}\n" for k, v in head.items())
                      + tc_table.to_csv(index=False, float_format="%.6g")))  # fmt: skip
    for path, text in texts:
        _write_atomic(path, text)
    done = table[table["n"] > 0]
    print(
        f"qa4sm {', '.join(args.product)} vs {args.network}: {done['site_id'].nunique()} stations, "
        f"{len(done)} rows with pairs ({args.pairing} pairing, scaling {args.scaling}, "
        f"quality {args.quality}); "
        f"written {', '.join(str(p) for p, _ in texts)}"
    )
    for product, rows in done[done["season"] == "all"].groupby("product"):
        print(f"  {product}: median n {rows['n'].median():.0f}, R {rows['r'].median():.3f}, "
              f"ubRMSD {rows['ubrmse'].median():.4f} m3 m-3")  # fmt: skip
    return 0


def add_scorecard_command(subparsers) -> None:
    """Register ``validate scorecard``."""
    p = subparsers.add_parser(
        "scorecard",
        help="ILAMB scores of products against a station network or a gridded reference (CSV, HTML)",
        description="ILAMB scores (bias, RMSE, phase, interannual variability, spatial distribution, "
        "overall; Collier et al. 2018, JAMES 10:2731) of one or more catalog products against a "
        "station network or a gridded reference product, per region and IGBP class, on monthly "
        "means of the paired time steps. Cached by the inputs; nothing is written on an error.",
    )
    p.add_argument("--product", required=True, action="append", help="catalog product (repeat for several)")
    p.add_argument(
        "--variable", required=True, action="append", help="variable (le, h, rn, g, ssm; repeat for several)"
    )
    p.add_argument("--reference", required=True, help="station network or gridded product of the catalog")
    p.add_argument("--csv", type=Path, help="scorecard CSV to write")
    p.add_argument("--html", type=Path, help="self-contained HTML scorecard to write")
    p.add_argument(
        "--colouring",
        choices=["absolute", "relative"],
        default="absolute",
        help="HTML cell colours: the score itself, or relative to the other products (ILAMB's scale)",
    )
    p.add_argument("--period", nargs=2, metavar=("START", "END"), help="ISO dates")
    p.add_argument("--regions", help="comma-separated countries or continents to add as rows")
    p.add_argument(
        "--polygon", action="append", metavar="NAME=FILE", help="a GeoJSON polygon file as a region row"
    )
    p.add_argument("--no-continents", action="store_true", help="no row per continent")
    p.add_argument("--no-igbp", action="store_true", help="no row per IGBP class")
    p.add_argument("--min-months", type=int, help="paired months a location needs (default 12)")
    p.add_argument("--spatial", choices=["nearest", "bilinear"], help="pixel matching at stations")
    p.add_argument("--use-corrected", action="store_true", default=None, help="compare with LE_CORR/H_CORR")
    p.add_argument("--qc-min", type=float, help="minimum FLUXNET _QC fraction of a used time step")
    p.add_argument("--min-coverage", type=float, help="fraction of a day/month needed for a mean")
    p.add_argument("--depth", nargs=2, type=float, metavar=("FROM", "TO"), help="ISMN depth range in m")
    p.add_argument("--no-cache", action="store_true", help="recompute even when cached")
    p.set_defaults(func=run_scorecard)


def _polygons(specs: list[str] | None) -> list[tuple[str, str]]:
    out = []
    for spec in specs or []:
        name, sep, path = spec.partition("=")
        if not sep or not name.strip() or not path.strip():
            raise InputError(f"--polygon {spec!r}: use NAME=FILE")
        try:
            out.append((name.strip(), Path(path.strip()).read_text(encoding="utf-8")))
        except (OSError, UnicodeDecodeError) as err:
            raise InputError(f"--polygon {spec!r}: cannot read {path.strip()} ({err})") from err
    return out


def _matching_options(args: argparse.Namespace, **extra) -> ValidationOptions:
    """The matching options both commands take (None: the configuration's default), and ``extra``."""
    return ValidationOptions.from_config(
        spatial=args.spatial,
        use_corrected=args.use_corrected,
        qc_min=args.qc_min,
        min_coverage=args.min_coverage,
        period=args.period,
        depth=args.depth,
        **extra,
    )


def run_scorecard(args: argparse.Namespace) -> int:
    if args.csv is None and args.html is None:
        raise InputError("validate scorecard: give --csv and/or --html (the files to write)")
    base = _matching_options(args)
    options = scorecard.ScorecardOptions.from_config(
        base=base,
        regions=[r.strip() for r in args.regions.split(",") if r.strip()] if args.regions else None,
        polygons=_polygons(args.polygon),
        continents=False if args.no_continents else None,
        igbp=False if args.no_igbp else None,
        min_months=args.min_months,
    )
    single = len(args.variable) == 1
    if single:  # every product must hold the variable
        card = scorecard.compute_scorecard(
            args.product, args.variable[0], args.reference, options=options, use_cache=not args.no_cache
        )
        cards = scorecard.ScorecardSet({args.variable[0]: card})
    else:  # each variable with the products holding it
        cards = scorecard.compute_scorecards(
            args.product, args.variable, args.reference, options=options, use_cache=not args.no_cache
        )
    texts = []
    if args.csv is not None:
        one = next(iter(cards.cards.values()))
        texts.append((args.csv, export.scorecard_csv(one) if single else export.scorecard_set_csv(cards)))
    if args.html is not None:
        texts.append((args.html, export.scorecard_html(cards, colouring=args.colouring)))
    for path, text in texts:
        _write_atomic(path, text)
    for card in cards.cards.values():
        meta = card.meta
        print(
            f"scorecard {', '.join(meta['products'])} {meta['variable']} ({meta['units']}) "
            f"vs {meta['reference']} ({meta['reference_kind']}), {meta['period'][0]}…{meta['period'][1]}"
            f"{' (cached)' if card.cached else ''}"
        )
        shown = card.table[card.table["region_kind"] == "all"]
        for _, row in shown.iterrows():
            scores = "  ".join(f"{s} {row[s]:.3f}" for s in scorecard.SCORE_NAMES)
            print(f"  {row['product']}: {int(row['n_locations'])} locations  {scores}")
    for variable, why in cards.skipped.items():
        print(f"{variable}: no scorecard ({why})")
    print(f"written {', '.join(str(p) for p, _ in texts)}")
    return 0


def run_validate(args: argparse.Namespace) -> int:
    from catalog import api

    missing = [f"--{k}" for k in ("product", "variable", "network", "out") if getattr(args, k) is None]
    if missing:
        raise InputError(f"the following arguments are required: {', '.join(missing)}")

    options = _matching_options(args, anomaly=args.anomaly, min_pairs=args.min_pairs)
    site_ids = [s.strip() for s in args.sites.split(",") if s.strip()] if args.sites else None
    label = f"{args.product} {args.variable} vs {args.network}"
    variable_spec(args.variable)  # InputError for a variable no station network observes
    info = api.product_info(args.product)
    if args.variable not in info.variables:
        raise InputError(
            f"product {args.product!r} has no variable {args.variable!r}; it has {', '.join(info.variables)}"
        )
    start, end = matching.validation_window(
        info.time_start, info.time_end, info.time_step, options.period, product=f"product {args.product!r}"
    )
    window = f"{start:%Y-%m-%d}…{end:%Y-%m-%d}"
    sites = scoreboard.select_sites(args.network, site_ids)
    inside = matching.require_overlap(sites, start, end, label=label)
    board = scoreboard.compute_scoreboard(
        args.product,
        args.variable,
        args.network,
        site_ids=site_ids,
        options=options,
        use_cache=not args.no_cache,
    )
    table = board.table
    ok = table[table["error"].fillna("") == ""]
    paired = ok[ok["n"].fillna(0) > 0]
    if paired.empty:
        raise InputError(
            f"{label}: 0 of {len(table)} sites have pairs in {window}{_reasons(table)}; nothing written"
        )
    _write_atomic(args.out, export.metrics_csv(board, options))
    outside = int((~inside).sum())
    print(
        f"{label}: {len(ok)} of {len(table)} sites matched, {len(paired)} with pairs in {window}"
        f"{f' ({outside} outside it)' if outside else ''}{' (cached)' if board.cached else ''}; "
        f"written {args.out}"
    )
    for name in ("n", "bias", "rmse", "ubrmse", "r", "kge"):
        med = ok[name].median() if len(ok) else math.nan
        print(f"  {name:7s} median per site {med:10.4g}   pooled {board.pooled.get(name, math.nan):10.4g}")
    return 0


def _reasons(table) -> str:
    """The most frequent per-site errors, for the message when no site has pairs."""
    errors = table["error"].fillna("")
    counts = errors[errors != ""].value_counts()
    no_pairs = int((errors == "").sum())
    parts = [f"{n} site(s): {text}" for text, n in counts.head(3).items()]
    if no_pairs:
        parts.append(f"{no_pairs} site(s) without a valid observation on a product day")
    return f" ({'; '.join(parts)})" if parts else ""


def _write_atomic(path: Path, text: str) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        if exc.filename is None:  # a failed write names no file: name the one being written
            raise OSError(exc.errno, exc.strerror, str(path)) from exc
        raise
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
