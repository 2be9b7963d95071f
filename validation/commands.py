"""``fluxlens validate``: the dashboard's scoreboard for one product variable, written as CSV."""

from __future__ import annotations

import argparse
import math
import os
import tempfile
from pathlib import Path

from catalog.errors import InputError
from validation import export, matching, scoreboard
from validation.config import ValidationOptions, variable_spec


def add_commands(subparsers) -> None:
    """Register ``validate`` on the ``fluxlens`` subparsers."""
    p = subparsers.add_parser(
        "validate",
        help="validate a product variable against a station network (per-site metrics CSV)",
        description=__doc__,
    )
    p.add_argument("--product", required=True, help="catalog product name")
    p.add_argument("--variable", required=True, help="product variable (le, h, rn, g, ssm)")
    p.add_argument("--network", required=True, help="station network in the catalog")
    p.add_argument("--sites", help="comma-separated site ids (default: every site)")
    p.add_argument("--out", required=True, type=Path, help="metrics CSV to write")
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


def run_validate(args: argparse.Namespace) -> int:
    from catalog import api

    options = ValidationOptions.from_config(
        spatial=args.spatial,
        anomaly=args.anomaly,
        use_corrected=args.use_corrected,
        qc_min=args.qc_min,
        min_coverage=args.min_coverage,
        min_pairs=args.min_pairs,
        period=args.period,
        depth=args.depth,
    )
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
