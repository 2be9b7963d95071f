"""``fluxlens train``, ``fluxlens predict`` and ``fluxlens models``."""

from __future__ import annotations

import argparse
import json
import sys

from models.scenarios import CLI_HELP


def _monotone(text: str) -> dict[str, int]:
    out = {}
    for item in filter(None, (t.strip() for t in text.split(","))):
        name, _, sign = item.partition("=")
        try:
            out[name.strip()] = int(sign)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"bad monotone constraint {item!r}; use e.g. ssm=1,vpd=-1"
            ) from None
    return out


def _bbox(text: str) -> tuple[float, float, float, float]:
    try:
        w, s, e, n = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad bbox {text!r}; use W,S,E,N in degrees") from None
    return w, s, e, n


SPLITS = ("random", "temporal", "spatial", "cluster")  # models.evaluation.SPLITS, without importing it


def _splits(text: str) -> tuple[str, ...]:
    out = tuple(s.strip() for s in text.split(",") if s.strip())
    bad = [s for s in out if s not in SPLITS]
    if bad or not out:
        raise argparse.ArgumentTypeError(f"bad splits {text!r}; use some of {','.join(SPLITS)}")
    return out


def _km(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 0:
        raise argparse.ArgumentTypeError(f"bad distance {text!r}; use a positive number of km")
    return value


def _progress(done: int, total: int) -> None:
    print(f"\r{done}/{total}", end="\n" if done == total else "", flush=True)


def _feature_spec(text: str | None) -> tuple[str, tuple[str, ...] | None]:
    """``--features``: ``tower``, ``gridded``, ``gridded:NAME,NAME`` or ``tower:…`` or ``NAME,NAME``
    (tower) → (feature source, feature names or None for the source's default)."""
    if not text:
        return "tower", None
    source, sep, names = text.partition(":")
    if source.strip() in ("tower", "gridded"):
        names = names if sep else ""
    else:
        source, names = "tower", text
    listed = tuple(n.strip() for n in names.split(",") if n.strip())
    return source.strip(), listed or None


def _role_inputs(args) -> dict[str, str]:
    return {
        role: value
        for role in ("forcing", "static", "ssm", "radiation")
        if (value := getattr(args, role, None))
    }


def format_comparison(meta: dict) -> str:
    """Gridded-feature vs tower-meteorology CV skill of a model (its targets), one line each."""
    rows = [
        r for r in meta.get("cv_comparison") or [] if r["targets"] == meta["targets"]["set"] and _headline(r)
    ]
    if not rows:
        return ""
    fs = meta["feature_source"]["feature_set"]
    lines = [
        f"CV on {meta['targets']['set']} targets, same rows and folds: gridded features "
        f"({', '.join(sorted(set(fs['variables'].values())))}) vs tower meteorology"
    ]
    for r in rows:
        lines.append(
            f"    {r['split']:<9} {r['model']:<12} {r['variable']:<3} R2 gridded {r['r2_gridded']:6.3f}  "
            f"tower {r['r2_tower']:6.3f}   RMSE gridded {r['rmse_gridded']:7.2f}  tower "
            f"{r['rmse_tower']:7.2f} W m-2  (n {r['n']})"
        )
    dropped = meta["feature_source"].get("dropped_features") or {}
    if dropped:
        lines.append("    features left out: " + "; ".join(f"{k}: {v}" for k, v in dropped.items()))
    return "\n".join(lines)


def cmd_train(args) -> int:
    from models import registry, training

    source, features = _feature_spec(args.features)
    inputs = _role_inputs(args)
    settings = training.TrainSettings(
        sites_source=args.sites_source,
        targets=args.targets,
        constrained=not args.no_constraint,
        features=features,
        qc_min=args.qc_min,
        n_folds=args.folds,
        num_boost_round=args.trees,
        monotone=args.monotone or {},
        feature_source=source,
        gridded_inputs=inputs or None,
        feature_set=args.feature_set,
        site_list=getattr(args, "site_list", None),
        site_list_file=args.sites,
        splits=tuple(args.splits),
        cluster_km=args.cluster_km,
    )
    version = training.train(settings, progress=_progress)
    print(version)
    for split, reason in registry.read_meta(version)["cv_settings"].get("skipped_splits", {}).items():
        print(f"{split} split skipped: {reason}")
    comparison = format_comparison(registry.read_meta(version))
    if comparison:
        print(comparison)
    return 0


def cmd_predict(args) -> int:
    from models import predict, registry
    from models.cluster import dask_scheduler

    version = args.model or registry.latest_version()
    request = dict(
        inputs=_role_inputs(args),
        feature_set=args.feature_set,
        allow_mismatch=args.allow_mismatch,
        scenario=args.scenario,
    )
    if args.dry_run:
        plan = predict.plan_region(version, args.bbox, args.start, args.end, **request)
        print("\n".join(plan.lines()))
        return 0
    with dask_scheduler(args.scheduler) as where:
        name = predict.predict_region(
            version, args.bbox, args.start, args.end, product_name=args.name, progress=_progress, **request
        )
    print(f"computed on the {where}", file=sys.stderr)
    print(name)
    return 0


def _headline(row: dict) -> bool:
    """A CV row of the headline numbers: A observed, observed A at or above the threshold (versions
    trained before A sources and regimes were recorded have only those)."""
    return row.get("a_source", "observed") == "observed" and str(row.get("a_regime", "A>=")).startswith("A>=")


def _num(value, fmt: str) -> str:
    return "nan" if value is None or value != value else format(value, fmt)


def format_versions(versions: list[dict]) -> str:
    """One block per version: header line, then per split, model and variable the headline R²
    (1 − SS_res/SS_tot) / RMSE / bias (A observed, A ≥ threshold), the same with A from the A model,
    the small-A rows apart (n, R², RMSE), and the closed-vs-direct verdicts (``verdicts``)."""
    from models.verdict import verdict_text

    lines = []
    for v in versions:
        lines.append(
            f"{v['version']}  {'constrained' if v['constrained'] else 'direct'}  targets={v['targets']}  "
            f"rows={v['n_rows']}  source={v['source']}  features={v.get('feature_source') or 'tower'}  "
            f"step={v.get('time_step')}  synthetic={v['synthetic']}"
        )
        rows = [r for r in v["cv"] if r["targets"] == v["targets"]]
        if any("a_regime" in r for r in rows):
            lines.append(
                "    R2 = 1 - SS_res/SS_tot; headline: A observed, rows with A >= threshold; "
                "'A model': the chain closed on the A model; small-A rows apart; RMSE, bias in W m-2"
            )
        others = {}
        for r in rows:
            if not _headline(r):
                key = (r["split"], r["model"], r["variable"])
                others.setdefault(key, []).append(r)
        for r in filter(_headline, rows):
            line = (
                f"    {r['split']:<9} {r['model']:<12} {r['variable']:<3} R2 {_num(r['r2'], '6.3f')}  "
                f"RMSE {_num(r['rmse'], '7.2f')}  bias {_num(r['bias'], '6.2f')}  n {r['n']}"
            )
            for o in others.get((r["split"], r["model"], r["variable"]), []):
                if o["a_regime"] == r.get("a_regime") and o["a_source"] != "observed":
                    line += (
                        f"  | A {o['a_source']}: R2 {_num(o['r2'], '6.3f')} RMSE {_num(o['rmse'], '6.2f')}"
                    )
                elif o["a_source"] == "observed":
                    line += (
                        f"  | {o['a_regime']} (n {o['n']}): R2 {_num(o['r2'], '6.3f')} "
                        f"RMSE {_num(o['rmse'], '6.2f')}"
                    )
            line += f"  | EB residual max {_num(r['eb_residual_max_abs'], '.2g')} W m-2"
            lines.append(line)
        for r in v.get("verdicts") or []:
            lines.append(
                f"    verdict {r['split']:<9} A {r['a_source']:<9} {r['variable']:<3} {verdict_text(r)}"
            )
    return "\n".join(lines)


def cmd_models(args) -> int:
    from models import registry

    versions = [
        {**v, "verdicts": registry.read_meta(v["version"]).get("cv_verdicts", [])}
        for v in registry.list_versions()
    ]
    if args.json:
        print(json.dumps(versions, indent=2))
    elif not versions:
        print("no trained models")
    else:
        print(format_versions(versions))
    return 0


def add_commands(subparsers) -> None:
    p = subparsers.add_parser("train", help="train, cross-validate and register an LE/H emulator")
    p.add_argument(
        "--sites-source",
        default=None,
        help="a catalog station network (fluxnet_demo), or a folder of FLUXNET files or the name of one "
        "under $FLUXLENS_SHARED_DATA, ingested as a network first (default: the catalog's flux "
        "network, e.g. fluxnet_demo after fluxlens demo)",
    )
    p.add_argument(
        "--no-constraint",
        action="store_true",
        help="primary model = direct LE/H baseline instead of the EF-closed model",
    )
    p.add_argument(
        "--targets",
        choices=("corrected", "raw"),
        default="corrected",
        help="LE_CORR/H_CORR (default) or LE_F_MDS/H_F_MDS",
    )
    p.add_argument(
        "--features",
        help="feature source and/or names: 'tower' (default: the towers' meteorology), 'gridded' (every "
        "feature from the products below at the tower pixels and time steps; targets stay the towers' "
        "LE/H), 'gridded:ta,sw_in,…', or comma-separated names (tower)",
    )
    p.add_argument(
        "--forcing", help="gridded: forcing product(s), comma-separated (the first gives the grid)"
    )
    p.add_argument("--static", help="gridded: static product(s) with elevation / igbp")
    p.add_argument("--ssm", help="gridded: soil-moisture product(s)")
    p.add_argument(
        "--radiation",
        help="gridded: product with rn and g (prediction closes on rn - g; compared with towers)",
    )
    p.add_argument(
        "--feature-set",
        help="gridded: YAML naming the product of each variable (grid, forcing, static, ssm, radiation, "
        "variables)",
    )
    p.add_argument(
        "--sites",
        help="site list restricting (and locating) the sites: a FLUXNET site table, a CSV with site_id "
        "[,lat,lon,igbp] or one site id per line",
    )
    p.add_argument(
        "--splits",
        type=_splits,
        default=SPLITS,
        help=f"CV splits, comma-separated (default {','.join(SPLITS)}; cluster: towers within "
        "--cluster-km of each other held out together)",
    )
    p.add_argument(
        "--cluster-km",
        type=_km,
        default=50.0,
        help="cluster split: towers within this great-circle distance are linked (single linkage; "
        "default 50 km)",
    )
    p.add_argument("--qc-min", type=float, default=0.5, help="minimum QC fraction of LE, H, NETRAD, G")
    p.add_argument("--folds", type=int, default=5, help="folds per split (default 5)")
    p.add_argument("--trees", type=int, default=400, help="boosting rounds (default 400)")
    p.add_argument("--monotone", type=_monotone, help="EF monotone constraints, e.g. ssm=1,vpd=-1")
    p.set_defaults(func=cmd_train)

    p = subparsers.add_parser("predict", help="predict LE, H, EF over a region into a new product")
    p.add_argument("--model", help="model version (default: the newest)")
    p.add_argument("--bbox", type=_bbox, required=True, help="W,S,E,N in degrees")
    p.add_argument("--start", required=True, help="first day (YYYY-MM-DD)")
    p.add_argument("--end", required=True, help="last day (YYYY-MM-DD)")
    p.add_argument("--name", help="product name (default derived from model and request)")
    p.add_argument(
        "--forcing",
        help="forcing product(s), comma-separated: each variable from the first that has it, the first "
        "gives the grid (default: the model's own; tower models forcing_demo)",
    )
    p.add_argument("--static", help="static product(s) (default: the model's own; tower models static_demo)")
    p.add_argument(
        "--ssm", help="soil-moisture product(s) (default: the model's own; tower models ssm_global_demo)"
    )
    p.add_argument("--radiation", help="product with rn and g for A = rn - g (default: the A model)")
    p.add_argument(
        "--feature-set",
        help="YAML naming the product of each variable (grid, forcing/static/ssm/radiation, variables); "
        "role options override its roles; variables from other products are put on the grid product's "
        "pixels by nearest source cell",
    )
    p.add_argument(
        "--allow-mismatch",
        action="store_true",
        help="predict although the model's time step or gridded products differ from the inputs' (the "
        "reason goes into the provenance)",
    )
    p.add_argument("--scenario", help=CLI_HELP)
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="print pixel-days, blocks, bytes written and the time estimated from one block measured here; "
        "write nothing",
    )
    p.add_argument(
        "--scheduler", help="dask.distributed scheduler address to predict on ($FLUXLENS_DASK_SCHEDULER)"
    )
    p.set_defaults(func=cmd_predict)

    p = subparsers.add_parser("models", help="list trained emulator versions with their CV scores")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_models)
