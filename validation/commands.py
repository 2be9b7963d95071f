"""``fluxlens validate``: the dashboard's scoreboard for one product variable, written as CSV;
``fluxlens validate scorecard``: the ILAMB scorecard of products against a reference (CSV and HTML)."""

from __future__ import annotations

import argparse
import math
import os
import tempfile
from pathlib import Path

from catalog.errors import InputError
from validation import export, matching, scoreboard, scorecard
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
    what = p.add_subparsers(dest="validate_what", metavar="{scorecard}")
    add_scorecard_command(what)


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
