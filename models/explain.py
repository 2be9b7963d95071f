"""Reading the SHAP cache of the emulator's boosters (written at training time by
:mod:`models.tree_shap`, which imports ``shap``; this module does not, so the dashboard can use it).

Per booster the version folder holds ``shap_<model>.parquet``: columns ``site_id, time, igbp``,
``x_<feature>`` (feature value), ``shap_<feature>`` (SHAP value φ_i), ``base`` (expected value φ_0)
and ``raw`` (φ_0 + Σ φ_i, the raw score: EF before clipping for the EF model (squared error; logit(EF)
for versions trained with cross-entropy), W m-2 for A and the direct models); and
``shap_interaction_<model>.parquet``: the strongest interacting pair
(columns ``site_id, time, igbp, first, second, x_first, x_second, interaction, mean_abs``, see
:func:`models.tree_shap.interaction_frame`). Formulas and references in :mod:`models.tree_shap`.

The rows are a sample of the training table stratified by site (:func:`stratified_sample`), so every
site, and with it every IGBP class present, is represented.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from models.emulator import Emulator

SAMPLE_SIZE = 2000
BEESWARM_HALF_HEIGHT = 0.4  # rows are 1 apart: points never reach a neighbour's band
SHAP_UNITS = {"ef": "EF (1)", "a": "W m-2", "le_direct": "W m-2", "h_direct": "W m-2"}


def shap_units(meta: dict, model: str) -> str:
    """Units of ``model``'s SHAP values in a version: as its ``meta.json`` records them (``logit(EF)``
    for cross-entropy versions), else today's :data:`SHAP_UNITS`."""
    return meta.get("shap", {}).get("units", SHAP_UNITS).get(model, "")


def stratified_sample(table: pd.DataFrame, n: int = SAMPLE_SIZE, *, seed: int = 0) -> pd.DataFrame:
    """About ``n`` rows with the same number (or all) rows from every site."""
    per_site = max(1, int(np.ceil(n / max(1, table["site_id"].nunique()))))
    rng = np.random.default_rng(seed)
    picks = []
    for _, grp in table.groupby("site_id", sort=True):
        k = min(per_site, len(grp))
        picks.append(grp.iloc[np.sort(rng.choice(len(grp), size=k, replace=False))])
    return pd.concat(picks).reset_index(drop=True)


def model_features(emulator: Emulator, model: str) -> list[str]:
    return emulator.a_features if model == "a" else list(emulator.features)


def feature_names(frame: pd.DataFrame) -> list[str]:
    return [c[len("shap_") :] for c in frame.columns if c.startswith("shap_")]


def global_importance(frame: pd.DataFrame) -> pd.DataFrame:
    """Mean |SHAP| per feature, largest first (columns feature, mean_abs_shap)."""
    feats = feature_names(frame)
    vals = [float(np.abs(frame[f"shap_{f}"]).mean()) for f in feats]
    return pd.DataFrame({"feature": feats, "mean_abs_shap": vals}).sort_values(
        "mean_abs_shap", ascending=False, ignore_index=True
    )


def swarm_offsets(
    values: np.ndarray, *, n_bins: int = 100, half_height: float = BEESWARM_HALF_HEIGHT
) -> np.ndarray:
    """Vertical offsets within ``±half_height`` that spread points of similar value apart, as ``shap``'s
    beeswarm does: values binned into ``n_bins`` along their range; in each bin the k-th point (in
    order of value) goes ``ceil(k / 2)`` steps up (k odd) or down (k even), and the steps are scaled
    so the fullest bin spans the band. Deterministic; NaN values get offset 0."""
    values = np.asarray(values, dtype=float)
    out = np.zeros(len(values))
    ok = np.flatnonzero(np.isfinite(values))
    if len(ok) < 2:
        return out
    v = values[ok]
    span = v.max() - v.min()
    bins = np.round(n_bins * (v - v.min()) / span).astype(int) if span > 0 else np.zeros(len(v), int)
    order = np.lexsort((v, bins))
    sorted_bins = bins[order]
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_bins)) + 1]
    k = np.arange(len(v)) - np.repeat(starts, np.diff(np.r_[starts, len(v)]))
    steps = np.ceil(k / 2) * np.where(k % 2 == 1, 1.0, -1.0)
    top = np.abs(steps).max()
    out[ok[order]] = steps * (half_height / top) if top > 0 else 0.0
    return out


def beeswarm_data(frame: pd.DataFrame, *, top: int = 10) -> pd.DataFrame:
    """Long table for a beeswarm of the ``top`` features by mean |SHAP|: ``feature``, ``row`` (0 = the
    most important), ``y`` (``top_row − row`` plus a :func:`swarm_offsets` offset, so the most important
    feature is drawn highest and every point stays within ``±BEESWARM_HALF_HEIGHT`` of its row),
    ``shap``, ``value``, ``value_rank`` (0–1 within the feature) and ``site_id``."""
    names = list(global_importance(frame)["feature"].head(top))
    parts = []
    for row, f in enumerate(names):
        x = frame[f"x_{f}"]
        shap_values = frame[f"shap_{f}"].to_numpy()
        parts.append(
            pd.DataFrame(
                {
                    "feature": f,
                    "row": row,
                    "y": (len(names) - 1 - row) + swarm_offsets(shap_values),
                    "shap": shap_values,
                    "value": x.to_numpy(),
                    "value_rank": x.rank(pct=True).to_numpy(),
                    "site_id": frame["site_id"].to_numpy(),
                }
            )
        )
    return pd.concat(parts, ignore_index=True)


def dependence_data(frame: pd.DataFrame, feature: str) -> pd.DataFrame:
    """Feature value vs its SHAP value (with IGBP class for colouring)."""
    if f"shap_{feature}" not in frame:
        raise KeyError(f"no SHAP values for feature {feature!r}; have {feature_names(frame)}")
    return pd.DataFrame(
        {
            "value": frame[f"x_{feature}"].to_numpy(),
            "shap": frame[f"shap_{feature}"].to_numpy(),
            "igbp": frame["igbp"].to_numpy(),
            "site_id": frame["site_id"].to_numpy(),
        }
    )


def site_explanation(frame: pd.DataFrame, site_id: str) -> pd.DataFrame | None:
    """Mean SHAP per feature over the sampled rows of one site (None if the site is not sampled)."""
    rows = frame[frame["site_id"] == site_id]
    if rows.empty:
        return None
    feats = feature_names(frame)
    out = pd.DataFrame(
        {
            "feature": feats,
            "mean_shap": [float(rows[f"shap_{f}"].mean()) for f in feats],
            "mean_value": [float(rows[f"x_{f}"].mean()) for f in feats],
        }
    ).sort_values("mean_shap", key=np.abs, ascending=False, ignore_index=True)
    out.attrs.update(base=float(rows["base"].mean()), raw=float(rows["raw"].mean()), n=len(rows))
    return out


def interaction_pair(frame: pd.DataFrame) -> tuple[str, str, float]:
    """``(first, second, mean |Φ|)`` of a ``shap_interaction_<model>`` table."""
    return str(frame["first"].iloc[0]), str(frame["second"].iloc[0]), float(frame["mean_abs"].iloc[0])
