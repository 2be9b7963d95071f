"""``fluxlens train``, ``fluxlens predict`` and ``fluxlens models``."""

from __future__ import annotations

import argparse
import json


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


def _progress(done: int, total: int) -> None:
    print(f"\r{done}/{total}", end="\n" if done == total else "", flush=True)


def cmd_train(args) -> int:
    from models import training

    settings = training.TrainSettings(
        sites_source=args.sites_source,
        targets=args.targets,
        constrained=not args.no_constraint,
        features=tuple(args.features.split(",")) if args.features else None,
        qc_min=args.qc_min,
        n_folds=args.folds,
        num_boost_round=args.trees,
        monotone=args.monotone or {},
    )
    version = training.train(settings, progress=_progress)
    print(version)
    return 0


def cmd_predict(args) -> int:
    from models import predict, registry

    version = args.model or registry.latest_version()
    inputs = {
        k: v
        for k, v in (
            ("forcing", args.forcing),
            ("static", args.static),
            ("ssm", args.ssm),
            ("radiation", args.radiation),
        )
        if v
    }
    name = predict.predict_region(
        version, args.bbox, args.start, args.end, product_name=args.name, inputs=inputs, progress=_progress
    )
    print(name)
    return 0


def format_versions(versions: list[dict]) -> str:
    """One block per version: header line, then R² / RMSE / bias per split, model and variable."""
    lines = []
    for v in versions:
        lines.append(
            f"{v['version']}  {'constrained' if v['constrained'] else 'direct'}  targets={v['targets']}  "
            f"rows={v['n_rows']}  source={v['source']}  synthetic={v['synthetic']}"
        )
        for r in v["cv"]:
            if r["targets"] != v["targets"]:
                continue
            lines.append(
                f"    {r['split']:<9} {r['model']:<12} {r['variable']:<3} R2 {r['r2']:6.3f}  "
                f"RMSE {r['rmse']:7.2f}  bias {r['bias']:6.2f}  EB residual max "
                f"{r['eb_residual_max_abs']:.2g} W m-2"
            )
    return "\n".join(lines)


def cmd_models(args) -> int:
    from models import registry

    versions = registry.list_versions()
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
        default="fluxnet2015_monthly",
        help="folder of FLUXNET files, a catalog station network (fluxnet_demo), or a folder name "
        "under $FLUXLENS_SHARED_DATA (default fluxnet2015_monthly)",
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
    p.add_argument("--features", help="comma-separated feature names (default: per source)")
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
    p.add_argument("--forcing", help="forcing product (default forcing_demo)")
    p.add_argument("--static", help="static product (default static_demo)")
    p.add_argument("--ssm", help="soil-moisture product (default ssm_global_demo)")
    p.add_argument("--radiation", help="product with rn and g for A = rn - g (default: the A model)")
    p.set_defaults(func=cmd_predict)

    p = subparsers.add_parser("models", help="list trained emulator versions with their CV scores")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_models)
