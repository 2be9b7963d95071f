"""Train a model version: training table → four-split CV → final fit → SHAP cache → registry.

Feature sources: ``tower`` (default: the towers' own meteorology, plus cube-only features sampled at
the tower pixels for the demo set) or ``gridded`` (every feature from catalog cubes at the tower
pixels and time steps, :func:`models.training_table.build_gridded`; targets stay the towers' LE/H).
A gridded model is cross-validated twice on the same rows and folds: with its gridded features and
with tower meteorology, so the two skills stand side by side in ``meta.json`` (``cv_comparison``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from catalog.errors import InputError
from models import evaluation, explain, intervals, registry, site_clusters, tree_shap, verdict
from models import features as F
from models import training_table as T
from models.emulator import A_MIN, DEFAULT_PARAMS, DEFAULT_ROUNDS, TARGET_COLUMNS, fit_emulator

FEATURE_SOURCES = ("tower", "gridded")
A_SOURCE_TEXT = {
    evaluation.A_OBSERVED: "the towers' NETRAD - G",
    evaluation.A_MODEL: "the A model of each fold, also as the a feature (as a map without radiation data)",
}
EF_OBJECTIVE_TEXT = (
    "LightGBM squared error (regression) on EF = LE/(LE+H) clipped to [0,1]; predictions clipped to [0,1]; "
    "rows with A or LE+H below a_min excluded; rows weighted by A"
)


@dataclass
class TrainSettings:
    """What to train on and how. ``features=None``: per source (:func:`models.training_table.
    default_features`; gridded: every feature the products give). ``feature_source``: "tower" or
    "gridded"; ``gridded_inputs``: role → product(s) and ``feature_set``: a feature-set YAML (gridded
    only); ``site_list``: records (``site_id`` and, where given, ``lat, lon, igbp, name``)
    restricting (and locating) the sites, read from ``site_list_file``."""

    sites_source: str = "fluxnet2015_monthly"
    targets: str = "corrected"  # "corrected" (LE_CORR/H_CORR) or "raw" (LE_F_MDS/H_F_MDS)
    constrained: bool = True
    features: tuple[str, ...] | None = None
    cube_products: dict[str, str] | None = None
    qc_min: float = T.QC_MIN
    n_folds: int = 5
    num_boost_round: int = DEFAULT_ROUNDS
    params: dict = field(default_factory=dict)
    monotone: dict[str, int] = field(default_factory=dict)
    a_min: float = A_MIN
    shap_sample: int = explain.SAMPLE_SIZE
    shap_interaction_sample: int = tree_shap.INTERACTION_SAMPLE
    splits: tuple[str, ...] = evaluation.SPLITS
    cluster_km: float = site_clusters.CLUSTER_KM
    feature_source: str = "tower"
    gridded_inputs: dict | None = None
    feature_set: str | None = None
    site_list: tuple[dict, ...] | None = None
    site_list_file: str | None = None


def _check(settings: TrainSettings) -> None:
    if settings.targets not in TARGET_COLUMNS:
        raise InputError(f"targets must be one of {sorted(TARGET_COLUMNS)}, not {settings.targets!r}")
    for name in settings.features or ():
        if name not in F.FEATURES:
            raise InputError(f"unknown feature {name!r}; declared features: {sorted(F.FEATURES)}")
    if settings.feature_source not in FEATURE_SOURCES:
        raise InputError(f"feature source must be one of {FEATURE_SOURCES}, not {settings.feature_source!r}")
    if settings.feature_source == "tower" and (settings.gridded_inputs or settings.feature_set):
        given = sorted(k for k, v in (settings.gridded_inputs or {}).items() if v)
        raise InputError(
            f"products given ({', '.join(given) or 'feature set'}) but the features are the towers'; "
            "train with --features gridded to sample them from the products"
        )
    bad = [s for s in settings.splits if s not in evaluation.SPLITS]
    if bad or not settings.splits:
        raise InputError(f"splits must be among {evaluation.SPLITS}, not {list(settings.splits)}")
    if not settings.cluster_km > 0:
        raise InputError(f"cluster distance must be a positive number of km, not {settings.cluster_km!r}")


def cv_summary(scores: pd.DataFrame) -> list[dict]:
    """Compact CV rows for ``meta.json`` / ``fluxlens models``."""
    cols = [
        "split",
        "model",
        "a_source",
        "a_regime",
        "targets",
        "variable",
        "r2",
        "rmse",
        "bias",
        "n",
        "eb_residual_mean",
        "eb_residual_max_abs",
    ]
    return [
        {k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()}
        for row in scores[cols].to_dict("records")
    ]


def _site_list(settings: TrainSettings) -> pd.DataFrame | None:
    if settings.site_list is None:
        return None
    listed = pd.DataFrame(list(settings.site_list))
    listed.attrs["source"] = settings.site_list_file or "site list"
    return listed


def _tables(settings: TrainSettings):
    """(table, features, tower table or None, tower features) for the settings' source."""
    if settings.feature_source == "gridded":
        table, tower = T.build_gridded(
            settings.sites_source,
            inputs=settings.gridded_inputs,
            feature_set=settings.feature_set,
            features=list(settings.features) if settings.features else None,
            qc_min=settings.qc_min,
            site_list=_site_list(settings),
        )
        return table, list(table.attrs["features"]), tower, list(tower.attrs["features"])
    features = list(settings.features or T.default_features(settings.sites_source))
    table = T.build(
        settings.sites_source,
        features=features,
        cube_products=settings.cube_products,
        qc_min=settings.qc_min,
        site_list=_site_list(settings),
    )
    return table, features, None, None


def _intervals(
    oof: pd.DataFrame, table: pd.DataFrame, settings: TrainSettings, splits
) -> tuple[dict, pd.DataFrame]:
    """The interval calibration stored with the model (quantiles per A source from the residuals of
    the calibration split) and the CV coverage table (:mod:`models.intervals`)."""
    model = "constrained" if settings.constrained else "direct"
    split = intervals.calibration_split(splits)
    common = dict(model=model, targets=settings.targets, a_min=settings.a_min, level=intervals.LEVEL)
    quantiles = intervals.calibrate(oof[oof["split"] == split], table, **common)
    bounded = intervals.cv_bounds(oof, table, **common)
    coverage = intervals.cv_coverage(bounded, a_min=settings.a_min)
    pooled = coverage[coverage["igbp"].isna()]
    return (
        {
            "level": intervals.LEVEL,
            "bounds": list(intervals.bound_names(intervals.LEVEL)),
            "model": model,
            "calibration_split": split,
            "method": intervals.METHOD,
            "quantiles": quantiles,
            "quantile_units": {"ef": "1 (LE/A)", "le": "W m-2", "h": "W m-2"},
            "cv_coverage": pooled.drop(columns="igbp").to_dict("records"),
        },
        coverage,
        bounded[bounded["split"] == split],
    )


def train(
    settings: TrainSettings,
    *,
    progress: Callable[[int, int], None] | None = None,
    table: pd.DataFrame | None = None,
) -> str:
    """Train, cross-validate, explain and register a model; returns the new version.

    ``table``: a ready training table (skips reading ``settings.sites_source``; tower features).
    """
    _check(settings)
    tower_table = tower_features = None
    if table is None:
        table, features, tower_table, tower_features = _tables(settings)
    else:
        features = list(settings.features or F.FLUXNET_FEATURES)
    le_col, h_col = TARGET_COLUMNS[settings.targets]
    if table[[le_col, h_col]].notna().all(axis=1).sum() < 50:
        raise InputError(
            f"{table.attrs.get('source', 'training table')}: fewer than 50 rows with {settings.targets} "
            f"targets ({le_col}, {h_col}); try --targets raw"
        )
    missing = [f for f in features if f not in table.columns]
    if missing:
        raise InputError(f"{table.attrs.get('source')}: the training table lacks features {missing}")

    folds, skipped = evaluation.fold_plan(
        table, settings.splits, n_folds=settings.n_folds, cluster_km=settings.cluster_km
    )
    if not folds:
        raise InputError(f"no cross-validation split can be made: {'; '.join(skipped.values())}")
    splits = tuple(folds)
    n_cv = sum(len(f) for f in folds.values())
    n_runs = 2 if tower_table is not None else 1
    total = n_runs * n_cv + 2

    def cv_progress(offset):
        def report(done, _total):
            if progress:
                progress(offset + done, total)

        return report

    fit_kwargs = dict(
        params=settings.params,
        num_boost_round=settings.num_boost_round,
        monotone=settings.monotone or None,
        a_min=settings.a_min,
    )
    oof = evaluation.out_of_fold_predictions(
        table,
        features,
        targets=settings.targets,
        splits=splits,
        n_folds=settings.n_folds,
        cluster_km=settings.cluster_km,
        fit_kwargs=fit_kwargs,
        progress=cv_progress(0),
    )
    scores = evaluation.score_table(oof, table, a_threshold=settings.a_min)
    scores_igbp = evaluation.score_table(oof, table, by_igbp=True, a_threshold=settings.a_min)
    a_scores = evaluation.a_model_scores(oof)
    verdicts = verdict.verdicts(oof, table, targets=settings.targets, a_threshold=settings.a_min)
    interval_meta, coverage, cv_bounds = _intervals(oof, table, settings, splits)
    tower_scores = None
    if tower_table is not None:
        tower_monotone = {k: v for k, v in (settings.monotone or {}).items() if k in tower_features}
        tower_oof = evaluation.out_of_fold_predictions(
            tower_table,
            tower_features,
            targets=settings.targets,
            splits=splits,
            n_folds=settings.n_folds,
            cluster_km=settings.cluster_km,
            fit_kwargs={**fit_kwargs, "monotone": tower_monotone or None},
            progress=cv_progress(n_cv),
        )
        tower_scores = evaluation.score_table(tower_oof, tower_table, a_threshold=settings.a_min)

    emulator = fit_emulator(
        table, features, targets=settings.targets, constrained=settings.constrained, **fit_kwargs
    )
    if progress:
        progress(n_runs * n_cv + 1, total)
    shap_tables, shap_info = tree_shap.compute(
        emulator, table, n=settings.shap_sample, n_interaction=settings.shap_interaction_sample
    )

    fp = T.fingerprint(table)
    version = registry.new_version(fp)
    oof_out = oof.assign(
        **{
            f"obs_{c}": table[c].to_numpy(dtype=float)[oof["row"].to_numpy()]
            for cols in TARGET_COLUMNS.values()
            for c in cols
            if c in table.columns
        }
    )
    feature_source = table.attrs.get("feature_source") or {
        "kind": "tower",
        "cube_products": table.attrs.get("cube_products"),
    }
    meta = {
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "constrained": settings.constrained,
        "primary_model": "constrained" if settings.constrained else "direct",
        "features": [F.spec(f).to_dict() for f in features],
        "a_features": F.available_energy_features(features),
        "feature_source": feature_source,
        "targets": {
            "set": settings.targets,
            "le": le_col,
            "h": h_col,
            "source_columns": {
                "le_raw": "LE_F_MDS",
                "h_raw": "H_F_MDS",
                "le_corr": "LE_CORR",
                "h_corr": "H_CORR",
                "a": "NETRAD - G_F_MDS",
            },
        },
        "a_min": settings.a_min,
        "ef_objective": EF_OBJECTIVE_TEXT,
        "params": {**DEFAULT_PARAMS, **settings.params},
        "num_boost_round": settings.num_boost_round,
        "monotone": settings.monotone,
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(settings).items()},
        "training_data": {
            "source": table.attrs.get("source", settings.sites_source),
            "fingerprint_sha256": fp,
            "n_rows": len(table),
            "n_sites": int(table["site_id"].nunique()),
            "years": [int(table["year"].min()), int(table["year"].max())],
            "time_step": table.attrs.get("time_step"),
            "qc_min": settings.qc_min,
            "synthetic": bool(table.attrs.get("synthetic", False)),
            "cube_products": table.attrs.get("cube_products"),
            "observed_closure_median": evaluation.observed_closure(table),
            "igbp_classes": sorted(int(c) for c in table["igbp"].dropna().unique()),
        },
        "cv_summary": cv_summary(scores),
        "cv_reporting": {
            "r2": "coefficient of determination 1 - SS_res/SS_tot of the out-of-fold predictions (= NSE)",
            "a_sources": {
                k: A_SOURCE_TEXT.get(k, f"rn - g of the radiation product {k}")
                for k in evaluation.a_sources(table)
            },
            "a_regimes": f"rows with observed A >= {settings.a_min:g} W m-2 and below it, scored apart",
            "headline": f"a_source observed, a_regime {evaluation.headline_regime(settings.a_min)}",
            "small_a_fraction": float((table["a"].to_numpy(float) < settings.a_min).mean()),
        },
        "a_model_cv": a_scores.to_dict("records"),
        "cv_verdicts": verdicts.to_dict("records"),
        "intervals": interval_meta,
        "cv_settings": {
            "splits": list(splits),
            "skipped_splits": skipped,
            "n_folds": settings.n_folds,
            "folds": {s: len(f) for s, f in folds.items()},
            "temporal_unit": evaluation.temporal_unit(table),
            "clusters": site_clusters.cluster_summary(table, settings.cluster_km)
            if "cluster" in folds
            else None,
            "tuning": "none (fixed parameters)",
        },
        "shap": {**shap_info, "units": explain.SHAP_UNITS, "method": tree_shap.METHOD},
        "libraries": registry.library_versions(),
    }
    tables = {
        "cv_scores": scores,
        "cv_scores_igbp": scores_igbp,
        "cv_predictions": oof_out,
        "cv_verdicts": verdicts,
        "cv_coverage": coverage,
        "cv_bounds": cv_bounds,
        **shap_tables,
    }
    if tower_scores is not None:
        meta["cv_tower_meteorology"] = {
            "features": tower_features,
            "from_towers": [f for f in tower_features if f not in tower_table.attrs["gridded_in_both"]],
            "gridded_in_both": list(tower_table.attrs["gridded_in_both"]),
            "rows": "the same rows, sites, times and folds as the gridded model",
            "cv_summary": cv_summary(tower_scores),
        }
        comparison = evaluation.compare_feature_sources(scores, tower_scores)
        meta["cv_comparison"] = comparison.to_dict("records")
        if "a_gridded" in table.columns:
            meta["feature_source"]["radiation_a_vs_tower"] = evaluation.a_agreement(table)
        tables["cv_scores_tower"] = tower_scores
    registry.save(emulator, meta, tables, version=version)
    if progress:
        progress(total, total)
    return version
