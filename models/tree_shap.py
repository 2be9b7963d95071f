"""SHAP values and SHAP interaction values of the emulator's boosters, computed with ``shap.TreeExplainer``.

Run at training time only (:func:`models.training.train`); the results are cached in the version
folder and read by :mod:`models.explain`, so the web process never imports ``shap``.

**SHAP values** (Lundberg & Lee 2017): for a model ``f`` of ``M`` features and a row ``x``, feature
``i`` gets

    φ_i = Σ_{S ⊆ F∖{i}} |S|! (M − |S| − 1)! / M! · [f_x(S ∪ {i}) − f_x(S)],

with ``f_x(S) = E[f(X) | X_S = x_S]``; they add up to the raw score, ``f(x) = φ_0 + Σ_i φ_i``, with
the expected value ``φ_0 = E[f(X)]``. TreeSHAP (Lundberg et al. 2020) computes them exactly in
polynomial time, taking ``E[f(X) | X_S = x_S]`` down each tree's paths weighted by the training rows
("cover") of each branch (``feature_perturbation="tree_path_dependent"``; ``φ_0`` is the
cover-weighted mean leaf value). For a LightGBM ``Booster``, ``TreeExplainer.shap_values`` returns
LightGBM's own TreeSHAP (``Booster.predict(x, pred_contrib=True)``); the explainer's expected value
comes from the trees ``shap`` parsed from the booster's dump (tests check both against
``pred_contrib`` to 1e-6).

**SHAP interaction values** (Lundberg et al. 2020, after the Shapley interaction index of Fujimoto,
Kojadinovic & Marichal 2006): for ``i ≠ j``

    Φ_ij = Σ_{S ⊆ F∖{i,j}} |S|! (M − |S| − 2)! / (2 (M − 1)!) · ∇_ij(S),
    ∇_ij(S) = f_x(S ∪ {i, j}) − f_x(S ∪ {i}) − f_x(S ∪ {j}) + f_x(S),

symmetric (``Φ_ij = Φ_ji``, each half of the pair's interaction effect), and the main effect
``Φ_ii = φ_i − Σ_{j≠i} Φ_ij``, so every row of the ``M × M`` matrix sums to ``φ_i``. ``shap``
computes them with its own C TreeSHAP on the parsed trees, in time ``O(T L D² M)`` per row (``T``
trees, ``L`` leaves, depth ``D``): about ``M`` times the cost of the SHAP values, hence the smaller
sample (:data:`INTERACTION_SAMPLE`).

Both run on one sample of the training table stratified by site (:func:`models.explain.
stratified_sample`); the interaction rows are a stratified subset of the SHAP rows.

References: Lundberg, S. M. & Lee, S.-I. (2017), A unified approach to interpreting model predictions,
Advances in Neural Information Processing Systems 30 (NeurIPS 2017), 4765–4774. Lundberg, S. M.,
Erion, G., Chen, H., DeGrave, A., Prutkin, J. M., Nair, B., Katz, R., Himmelfarb, J., Bansal, N. &
Lee, S.-I. (2020), From local explanations to global understanding with explainable AI for trees,
Nature Machine Intelligence 2, 56–67, doi:10.1038/s42256-019-0138-9.
"""

from __future__ import annotations

import time
from importlib import metadata
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from models import explain
from models import features as F
from models.emulator import MODEL_NAMES, Emulator

if TYPE_CHECKING:
    import shap

INTERACTION_SAMPLE = 250
METHOD = f"shap {metadata.version('shap')} TreeExplainer (feature_perturbation=tree_path_dependent)"


def explainer(emulator: Emulator, model: str) -> shap.TreeExplainer:
    """Path-dependent TreeSHAP explainer of booster ``model`` (no background data: the trees' cover)."""
    # imported here: importing shap takes about 6 s, and processes that only check a retrain request
    # import models.training (models.job_limits) without explaining anything
    import shap

    return shap.TreeExplainer(emulator.boosters[model], feature_perturbation="tree_path_dependent")


def expected_value(tree_explainer: shap.TreeExplainer) -> float:
    """``φ_0`` of a freshly built explainer (``shap_values`` replaces it by LightGBM's own)."""
    return float(np.ravel(tree_explainer.expected_value)[0])


def _row_keys(sample: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "site_id": sample["site_id"].to_numpy(),
            "time": sample["time"].to_numpy(),
            "igbp": sample["igbp"].to_numpy(dtype=float),
        }
    )


def shap_frame(emulator: Emulator, model: str, sample: pd.DataFrame) -> pd.DataFrame:
    """SHAP values of booster ``model`` on the rows of ``sample``: columns ``site_id, time, igbp``,
    ``x_<feature>``, ``shap_<feature>``, ``base`` (``φ_0``) and ``raw`` (``φ_0 + Σ φ_i``)."""
    feats = explain.model_features(emulator, model)
    x = F.feature_matrix(sample, feats)
    tree_explainer = explainer(emulator, model)
    base = expected_value(tree_explainer)
    values = tree_explainer.shap_values(x)
    out = _row_keys(sample)
    for i, f in enumerate(feats):
        out[f"x_{f}"] = x[:, i]
    for i, f in enumerate(feats):
        out[f"shap_{f}"] = values[:, i]
    out["base"] = base
    out["raw"] = base + values.sum(axis=1)
    return out


def strongest_pair(interactions: np.ndarray) -> tuple[int, int]:
    """Indices ``(i, j)`` of the largest mean ``|Φ_ij|`` off the diagonal (rows × M × M); ``i`` is the
    one with the larger mean ``|φ|`` of the two (its row sum), so the pair reads "i, modulated by j"."""
    strength = np.abs(interactions).mean(axis=0)
    np.fill_diagonal(strength, -np.inf)
    i, j = np.unravel_index(int(np.argmax(strength)), strength.shape)
    phi = np.abs(interactions.sum(axis=2)).mean(axis=0)
    return (int(i), int(j)) if phi[i] >= phi[j] else (int(j), int(i))


def interaction_frame(emulator: Emulator, model: str, sample: pd.DataFrame) -> pd.DataFrame:
    """The strongest interacting pair of booster ``model`` on the rows of ``sample``: columns
    ``site_id, time, igbp``, ``first``, ``second`` (the pair's feature names, the same on every row),
    ``x_first``, ``x_second`` (their values), ``interaction`` (``Φ_first,second``, half the pair's
    interaction effect) and ``mean_abs`` (its mean ``|Φ|`` over the rows, the ranking key)."""
    feats = explain.model_features(emulator, model)
    x = F.feature_matrix(sample, feats)
    interactions = explainer(emulator, model).shap_interaction_values(x)
    i, j = strongest_pair(interactions)
    out = _row_keys(sample)
    out["first"] = feats[i]
    out["second"] = feats[j]
    out["x_first"] = x[:, i]
    out["x_second"] = x[:, j]
    out["interaction"] = interactions[:, i, j]
    out["mean_abs"] = float(np.abs(interactions[:, i, j]).mean())
    return out


def compute(
    emulator: Emulator,
    table: pd.DataFrame,
    *,
    n: int = explain.SAMPLE_SIZE,
    n_interaction: int = INTERACTION_SAMPLE,
    seed: int = 0,
) -> tuple[dict[str, pd.DataFrame], dict]:
    """``({"shap_<model>": frame, "shap_interaction_<model>": frame}, info)`` for every booster: SHAP
    values on one site-stratified sample of about ``n`` rows, interaction values on a stratified subset
    of about ``n_interaction`` of them. ``info``: the two sample sizes and the seconds the interaction
    values took per model."""
    sample = explain.stratified_sample(table, n, seed=seed)
    subset = explain.stratified_sample(sample, min(n_interaction, len(sample)), seed=seed)
    tables: dict[str, pd.DataFrame] = {}
    seconds = {}
    for m in MODEL_NAMES:
        tables[f"shap_{m}"] = shap_frame(emulator, m, sample)
        t0 = time.perf_counter()
        tables[f"shap_interaction_{m}"] = interaction_frame(emulator, m, subset)
        seconds[m] = round(time.perf_counter() - t0, 3)
    info = {
        "sample_size": len(sample),
        "interaction_sample_size": len(subset),
        "interaction_seconds": seconds,
    }
    return tables, info
