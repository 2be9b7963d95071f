"""SHAP explanations of the emulator's boosters (LightGBM TreeSHAP).

``Booster.predict(x, pred_contrib=True)`` returns, per row, one exact TreeSHAP value per feature and
the expected value (last column); they sum to the raw score (Lundberg et al. 2020, Nat. Mach. Intell.
2:56). For the EF model the raw score is logit(EF) (cross-entropy objective); for A and the direct
models it is W m-2.

Computing SHAP over a cube is not interactive, so it runs once per model version on a sample of the
training table stratified by site (so every site, and with it every IGBP class present, is
represented) and is cached in the version folder as ``shap_<model>.parquet``: columns ``site_id, time,
igbp``, ``x_<feature>`` (feature value), ``shap_<feature>``, ``base`` and ``raw``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from models import features as F
from models.emulator import MODEL_NAMES, Emulator

SAMPLE_SIZE = 2000
SHAP_UNITS = {"ef": "logit(EF)", "a": "W m-2", "le_direct": "W m-2", "h_direct": "W m-2"}


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


def shap_frame(emulator: Emulator, model: str, sample: pd.DataFrame) -> pd.DataFrame:
    """TreeSHAP values of booster ``model`` on the rows of ``sample``."""
    feats = model_features(emulator, model)
    x = F.feature_matrix(sample, feats)
    contrib = emulator.boosters[model].predict(x, pred_contrib=True)
    out = pd.DataFrame(
        {
            "site_id": sample["site_id"].to_numpy(),
            "time": sample["time"].to_numpy(),
            "igbp": sample["igbp"].to_numpy(dtype=float),
        }
    )
    for i, f in enumerate(feats):
        out[f"x_{f}"] = x[:, i]
    for i, f in enumerate(feats):
        out[f"shap_{f}"] = contrib[:, i]
    out["base"] = contrib[:, -1]
    out["raw"] = contrib.sum(axis=1)
    return out


def compute(emulator: Emulator, table: pd.DataFrame, *, n: int = SAMPLE_SIZE, seed: int = 0) -> dict:
    """``{"shap_<model>": frame}`` for every booster, on one stratified sample."""
    sample = stratified_sample(table, n, seed=seed)
    return {f"shap_{m}": shap_frame(emulator, m, sample) for m in MODEL_NAMES}


def feature_names(frame: pd.DataFrame) -> list[str]:
    return [c[len("shap_") :] for c in frame.columns if c.startswith("shap_")]


def global_importance(frame: pd.DataFrame) -> pd.DataFrame:
    """Mean |SHAP| per feature, largest first (columns feature, mean_abs_shap)."""
    feats = feature_names(frame)
    vals = [float(np.abs(frame[f"shap_{f}"]).mean()) for f in feats]
    return pd.DataFrame({"feature": feats, "mean_abs_shap": vals}).sort_values(
        "mean_abs_shap", ascending=False, ignore_index=True
    )


def beeswarm_data(frame: pd.DataFrame, *, top: int = 10) -> pd.DataFrame:
    """Long table (feature, shap, value, value_rank 0-1 within the feature) for the ``top`` features."""
    parts = []
    for f in global_importance(frame)["feature"].head(top):
        x = frame[f"x_{f}"]
        parts.append(
            pd.DataFrame(
                {
                    "feature": f,
                    "shap": frame[f"shap_{f}"].to_numpy(),
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
