"""Honest cross-validation of the emulator: random, temporal, spatial and cluster splits side by side.

- ``random``: shuffled K-fold over rows (flatters: neighbouring months of a site sit on both sides);
- ``temporal``: calendar years held out (GroupKFold on year), no year in both train and test; a
  table spanning a single year (the demo world) holds out calendar months instead;
- ``spatial``: sites held out (GroupKFold on site), no site in both train and test;
- ``cluster``: clusters of towers within ``cluster_km`` (default 50 km, single linkage,
  :mod:`models.site_clusters`) held out (GroupKFold on cluster): no tower on the training side lies
  within ``cluster_km`` of a test tower, as for a map pixel far from every tower.

Every fold trains with the same fixed parameters (nothing is tuned on a test fold). Both the
constrained (EF-closed) and the direct baseline models are scored, against the targets they were
trained on and against the other target set where the table has it, each row saying which.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
from sklearn.model_selection import GroupKFold, KFold

from catalog.errors import InputError
from models.emulator import A_MIN, TARGET_COLUMNS, fit_emulator
from models.site_clusters import CLUSTER_KM, row_clusters
from validation import metrics

SPLITS = ("random", "temporal", "spatial", "cluster")
MODELS = ("constrained", "direct")
CV_METRICS = ("r2", "rmse", "bias", "n")


def temporal_unit(table: pd.DataFrame) -> str:
    """ "year" when the table spans several calendar years, else "month"."""
    return "year" if table["time"].dt.year.nunique() > 1 else "month"


def temporal_groups(table: pd.DataFrame) -> np.ndarray:
    """Group labels of the temporal split: the year, or the year-month for single-year tables."""
    t = table["time"].dt
    return (t.year if temporal_unit(table) == "year" else t.year * 100 + t.month).to_numpy()


GROUP_NAMES = {"temporal": "time groups", "spatial": "sites", "cluster": "tower clusters"}


def split_folds(
    table: pd.DataFrame, split: str, *, n_folds: int = 5, seed: int = 0, cluster_km: float = CLUSTER_KM
):
    """(train_index, test_index) positional arrays for ``split`` over the table's rows.

    Grouped splits use min(n_folds, number of groups) folds; InputError when there are fewer than 2
    groups (e.g. every tower of a small set within ``cluster_km`` of another)."""
    n = len(table)
    idx = np.arange(n)
    if split == "random":
        return list(KFold(n_splits=n_folds, shuffle=True, random_state=seed).split(idx))
    if split == "temporal":
        groups = temporal_groups(table)
    elif split == "spatial":
        groups = table["site_id"].to_numpy()
    elif split == "cluster":
        groups = row_clusters(table, cluster_km)
    else:
        raise ValueError(f"split must be one of {SPLITS}, not {split!r}")
    k = min(n_folds, len(np.unique(groups)))
    if k < 2:
        within = f" (towers within {cluster_km:g} km linked)" if split == "cluster" else ""
        raise InputError(f"{split} split needs at least 2 {GROUP_NAMES[split]}{within}, the table has {k}")
    return list(GroupKFold(n_splits=k).split(idx, groups=groups))


def fold_plan(
    table: pd.DataFrame, splits, *, n_folds: int = 5, cluster_km: float = CLUSTER_KM
) -> tuple[dict[str, list], dict[str, str]]:
    """Folds of each split that can be made, and the reason for each one that cannot."""
    folds, skipped = {}, {}
    for split in splits:
        try:
            folds[split] = split_folds(table, split, n_folds=n_folds, cluster_km=cluster_km)
        except InputError as exc:
            skipped[split] = str(exc)
    return folds, skipped


A_OBSERVED = "observed"
A_MODEL = "a_model"


def a_sources(table: pd.DataFrame) -> dict[str, str]:
    """The available energies the CV closes on: ``observed`` (the towers' Rn − G), ``a_model`` (the
    emulator's A model, as a map without a radiation product gets A) and, where the table has
    ``a_gridded``, the radiation product's rn − g under the product's name. Name → table column
    (``a_model`` is computed per fold, not a column)."""
    out = {A_OBSERVED: "a", A_MODEL: ""}
    if "a_gridded" in table.columns and np.isfinite(table["a_gridded"].to_numpy(float)).any():
        source = table.attrs.get("feature_source") or {}
        out[source.get("radiation") or "radiation product"] = "a_gridded"
    return out


def a_regime_labels(a_obs, threshold: float = A_MIN) -> np.ndarray:
    """``"A>=10"`` / ``"A<10"`` (the threshold in W m-2) by the observed A of each row: small-A rows
    (nights of the year: winter months, high latitudes) are scored apart, as EF is undefined there."""
    a_obs = np.asarray(a_obs, dtype=float)
    with np.errstate(invalid="ignore"):
        return np.where(a_obs >= threshold, f"A>={threshold:g}", f"A<{threshold:g}")


def headline_regime(threshold: float = A_MIN) -> str:
    """The regime of the headline numbers (rows with observed A at or above the threshold)."""
    return f"A>={threshold:g}"


def out_of_fold_predictions(
    table: pd.DataFrame,
    features: list[str],
    *,
    targets: str = "corrected",
    splits: tuple[str, ...] = SPLITS,
    n_folds: int = 5,
    cluster_km: float = CLUSTER_KM,
    fit_kwargs: dict | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> pd.DataFrame:
    """Out-of-fold LE, H, EF of both models for every row, split and A source (long table).

    Columns: split, fold, row, site_id, time, igbp, model, a_source (:func:`a_sources`), le, h, ef,
    a (the A the chain closed on, W m-2), a_obs (observed Rn − G), a_model (the fold's A model).
    With ``a_model`` as the source A is also the ``a`` feature of both models, as in a map. Splits
    that cannot be made raise InputError (see :func:`fold_plan` to leave them out first).
    """
    table = table.reset_index(drop=True)
    sources = a_sources(table)
    plan = [(s, f) for s in splits for f in split_folds(table, s, n_folds=n_folds, cluster_km=cluster_km)]
    out = []
    for step, (split, (train, test)) in enumerate(plan):
        emu = fit_emulator(table.iloc[train], features, targets=targets, **(fit_kwargs or {}))
        held = table.iloc[test]
        a_obs = held["a"].to_numpy(dtype=float)
        a_model = emu.predict_a(held)
        for source, column in sources.items():
            a = a_model if source == A_MODEL else held[column].to_numpy(dtype=float)
            for model in MODELS:
                pred = emu.predict(held, a=a, model=model)
                out.append(
                    pd.DataFrame(
                        {
                            "split": split,
                            "fold": step,
                            "row": test,
                            "site_id": held["site_id"].to_numpy(),
                            "time": held["time"].to_numpy(),
                            "igbp": held["igbp"].to_numpy(dtype=float),
                            "model": model,
                            "a_source": source,
                            "le": pred["le"].to_numpy(),
                            "h": pred["h"].to_numpy(),
                            "ef": pred["ef"].to_numpy(),
                            "a": a,
                            "a_obs": a_obs,
                            "a_model": a_model,
                        }
                    )
                )
        if progress:
            progress(step + 1, len(plan))
    return pd.concat(out, ignore_index=True)


def _scores(obs: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    return {
        "r2": metrics.r2(obs, pred),
        "rmse": metrics.rmse(obs, pred),
        "bias": metrics.bias(obs, pred),
        "n": metrics.n_pairs(obs, pred),
    }


def score_table(
    oof: pd.DataFrame,
    table: pd.DataFrame,
    *,
    by_igbp: bool = False,
    min_n: int = 30,
    a_threshold: float = A_MIN,
) -> pd.DataFrame:
    """R² (1 − SS_res/SS_tot), RMSE, bias (W m-2), n per split, model, A source, A regime, target set
    and variable (and IGBP class).

    ``a_source``: the A the chain closed on (:func:`a_sources`); ``a_regime``: rows with observed A
    at or above ``a_threshold`` (W m-2; the headline numbers) and below it, always apart. Groups with
    fewer than ``min_n`` rows keep their ``n`` with NaN scores. Also each model's energy-balance
    residual LE + H − A against the A it closed on: ``eb_residual_mean`` and ``eb_residual_max_abs``
    (W m-2). Target sets missing from the table are skipped.
    """
    table = table.reset_index(drop=True)
    oof = oof.assign(a_regime=a_regime_labels(oof["a_obs"], a_threshold))
    rows = []
    keys = ["split", "model", "a_source", "a_regime"] + (["igbp"] if by_igbp else [])
    for key, grp in oof.groupby(keys, sort=False, dropna=False):
        key = dict(zip(keys, key if isinstance(key, tuple) else (key,), strict=True))
        resid = grp["le"].to_numpy() + grp["h"].to_numpy() - grp["a"].to_numpy()
        resid = resid[np.isfinite(resid)]
        eb = {
            "eb_residual_mean": float(resid.mean()) if resid.size else np.nan,
            "eb_residual_max_abs": float(np.abs(resid).max()) if resid.size else np.nan,
        }
        for target_set, cols in TARGET_COLUMNS.items():
            if not all(c in table.columns for c in cols):
                continue
            for var, col in zip(("le", "h"), cols, strict=True):
                obs = table[col].to_numpy(dtype=float)[grp["row"].to_numpy()]
                score = _scores(obs, grp[var].to_numpy())
                if score["n"] < min_n:
                    score.update(r2=np.nan, rmse=np.nan, bias=np.nan)
                rows.append({**key, "targets": target_set, "variable": var, **score, **eb})
    return pd.DataFrame(rows)


def headline(scores: pd.DataFrame, a_threshold: float = A_MIN) -> pd.DataFrame:
    """The headline rows of a score table: A observed, rows with observed A ≥ the threshold."""
    return scores[(scores["a_source"] == A_OBSERVED) & (scores["a_regime"] == headline_regime(a_threshold))]


def observed_closure(table: pd.DataFrame) -> dict[str, float]:
    """Median (LE + H) / (Rn − G) of the observations, raw and corrected, where A ≥ 10 W m-2."""
    out = {}
    a = table["a"].to_numpy(dtype=float)
    for target_set, (le, h) in TARGET_COLUMNS.items():
        if le in table.columns and h in table.columns:
            s = table[le].to_numpy(dtype=float) + table[h].to_numpy(dtype=float)
            ok = np.isfinite(s) & np.isfinite(a) & (a >= 10.0)
            out[target_set] = float(np.median(s[ok] / a[ok])) if ok.any() else np.nan
    return out


def a_model_scores(oof: pd.DataFrame) -> pd.DataFrame:
    """R², RMSE, bias of the A model (Rn − G, W m-2) against the observed A per split."""
    one = oof[(oof["model"] == MODELS[0]) & (oof["a_source"] == A_OBSERVED)]
    rows = [
        {"split": split, "variable": "a", **_scores(g["a_obs"].to_numpy(), g["a_model"].to_numpy())}
        for split, g in one.groupby("split", sort=False)
    ]
    return pd.DataFrame(rows)


def compare_feature_sources(gridded: pd.DataFrame, tower: pd.DataFrame) -> pd.DataFrame:
    """Gridded-feature and tower-meteorology CV scores side by side (same rows and folds): one row per
    split, model, target set and variable with ``r2``, ``rmse``, ``bias`` of each (suffixes
    ``_gridded``, ``_tower``) and ``n``."""
    keys = ["split", "model", "a_source", "a_regime", "targets", "variable"]
    cols = ["r2", "rmse", "bias"]
    both = gridded[keys + cols + ["n"]].merge(
        tower[keys + cols], on=keys, how="left", suffixes=("_gridded", "_tower")
    )
    return both[keys + [f"{c}_{s}" for c in cols for s in ("gridded", "tower")] + ["n"]]


def a_agreement(table: pd.DataFrame) -> dict[str, float]:
    """R², RMSE and bias (W m-2) of a radiation product's rn − g (``a_gridded``) against the towers'
    Rn − G (``a``) on the training rows."""
    return {
        k: float(v)
        for k, v in _scores(table["a"].to_numpy(float), table["a_gridded"].to_numpy(float)).items()
    }
