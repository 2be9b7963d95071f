"""The physics-constrained LE/H emulator and its unconstrained baseline.

Constrained model (default). A LightGBM model predicts the evaporative fraction EF = LE / (LE + H)
with a squared-error (L2) objective, rows weighted by A, and its prediction is clipped to [0, 1]. Then

    LE = EF · A,    H = A − LE    with A = Rn − G,

so LE + H = Rn − G by construction (to float rounding). A is the observed Rn − G where it is known
(towers, a radiation product) and otherwise the prediction of the emulator's own A model (LightGBM
regression of Rn − G on the same predictors minus A).

Why L2 and not ``cross_entropy`` (LightGBM's loss for labels in [0, 1], output sigmoid(raw) inside
(0, 1)): on the leave-cluster-out split of the real FLUXNET2015 monthly set the L2 EF model scored
R² 0.704 / 0.672 (LE / H) against 0.676 / 0.657, gains larger than the spread of three seeds
(bench/bench_skill.py ``--experiments``). Versions trained with ``cross_entropy`` before keep their
sigmoid link: :func:`ef_link` reads it from the booster.

Small available energy. EF is undefined when LE + H → 0 and meaningless when A ≤ 0 (nights,
polar winter, monthly means at high latitudes). Rows with A < ``a_min`` or target LE + H < ``a_min``
(default 10 W m-2) are excluded from EF training; EF targets outside [0, 1] (H < 0 under advection,
LE < 0 with dew) are clipped to [0, 1]. EF rows are weighted by A, so the loss approximates an error in
W m-2 of LE rather than of a dimensionless fraction. At prediction time, where A < ``a_min`` the EF
is undefined: LE comes from the direct LE model, H = A − LE (closure still exact) and the reported
EF is NaN. (LE = EF · A would give LE < 0 in a winter month with A < 0 but LE > 0.)

Baseline. Two unconstrained LightGBM L2 regressions predict LE and H directly from the same
predictors; their sum is free to differ from Rn − G.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import lightgbm as lgb
import numpy as np
import pandas as pd

from models import features as F

A_MIN = 10.0  # W m-2: below this A (or target LE + H) the EF target is undefined
EF_OBJECTIVE = "regression"  # squared error on EF, prediction clipped to [0, 1] (module docstring)
SIGMOID_OBJECTIVES = ("cross_entropy", "xentropy", "binary")

DEFAULT_PARAMS: dict = {
    "learning_rate": 0.05,
    "num_leaves": 31,
    "min_data_in_leaf": 20,
    "feature_fraction": 0.9,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "lambda_l2": 1.0,
    "num_threads": 1,  # station tables are small: one thread beats OpenMP overhead and contention
    "seed": 0,
    "deterministic": True,
    "verbose": -1,
}
DEFAULT_ROUNDS = 400

# Target columns of a training table for each choice of targets.
TARGET_COLUMNS: dict[str, tuple[str, str]] = {
    "corrected": ("le_corr", "h_corr"),
    "raw": ("le_raw", "h_raw"),
}
# The boosters an emulator holds, by role.
MODEL_NAMES = ("ef", "a", "le_direct", "h_direct")


def ef_target(le, h, a, *, a_min: float = A_MIN) -> tuple[np.ndarray, np.ndarray]:
    """EF = LE / (LE + H) clipped to [0, 1], and the mask of rows where it is defined.

    Defined where LE, H and A are finite, A ≥ ``a_min`` and LE + H ≥ ``a_min`` (W m-2).
    Undefined rows carry NaN.
    """
    le, h, a = (np.asarray(x, dtype=float) for x in (le, h, a))
    total = le + h
    with np.errstate(invalid="ignore"):
        ok = np.isfinite(total) & np.isfinite(a) & (a >= a_min) & (total >= a_min)
    ef = np.full(le.shape, np.nan)
    ef[ok] = np.clip(le[ok] / total[ok], 0.0, 1.0)
    return ef, ok


def ef_link(booster: lgb.Booster) -> str:
    """How the EF booster's raw score s maps to EF: ``"logit"`` (EF = σ(s), a ``cross_entropy``
    version) or ``"identity"`` (EF = clip(s, 0, 1), squared error)."""
    objective = str(booster.params.get("objective", EF_OBJECTIVE)).split()[0]
    return "logit" if objective in SIGMOID_OBJECTIVES else "identity"


def ef_from_raw(s, link: str) -> np.ndarray:
    """EF from the EF booster's raw score ``s`` under ``link`` (see :func:`ef_link`)."""
    s = np.asarray(s, dtype=float)
    if link == "logit":
        return 1.0 / (1.0 + np.exp(-s))
    return np.clip(s, 0.0, 1.0)


def close_energy_balance(ef, a) -> tuple[np.ndarray, np.ndarray]:
    """LE = EF · A and H = A − LE (W m-2): LE + H equals A to float rounding."""
    ef = np.asarray(ef, dtype=float)
    a = np.asarray(a, dtype=float)
    le = ef * a
    return le, a - le


def constrained_fluxes(ef, a, le_direct, *, a_min: float = A_MIN):
    """LE, H, EF of the constrained model: EF-partitioned A where A ≥ ``a_min``, elsewhere LE from
    the direct model; H = A − LE everywhere, so LE + H = A to float rounding. The EF model's output is
    clipped to [0, 1] (an L2 booster can leave it; a sigmoid one never does). EF is NaN where
    A < ``a_min`` (and where A is missing)."""
    ef = np.clip(np.asarray(ef, dtype=float), 0.0, 1.0)
    a = np.asarray(a, dtype=float)
    with np.errstate(invalid="ignore"):
        partitioned = a >= a_min
    le = np.where(partitioned, ef * a, np.asarray(le_direct, dtype=float))
    return le, a - le, np.where(partitioned, ef, np.nan)


def _monotone_vector(features: list[str], monotone: dict[str, int] | None) -> list[int] | None:
    if not monotone:
        return None
    unknown = sorted(set(monotone) - set(features))
    if unknown:
        raise ValueError(f"monotone constraints on features the model does not use: {unknown}")
    for name, sign in monotone.items():
        if sign not in (-1, 0, 1):
            raise ValueError(f"monotone constraint for {name!r} must be -1, 0 or 1, not {sign!r}")
        if F.spec(name).categorical:
            raise ValueError(f"monotone constraint on categorical feature {name!r}")
    return [int(monotone.get(f, 0)) for f in features]


def fit_booster(
    x: np.ndarray,
    y: np.ndarray,
    features: list[str],
    *,
    objective: str = "regression",
    weight: np.ndarray | None = None,
    params: dict | None = None,
    num_boost_round: int = DEFAULT_ROUNDS,
    monotone: dict[str, int] | None = None,
) -> lgb.Booster:
    """Fit one LightGBM model on rows with a finite target; fixed parameters (no tuning)."""
    y = np.asarray(y, dtype=float)
    keep = np.isfinite(y)
    if keep.sum() < 10:
        raise ValueError(f"only {int(keep.sum())} rows with a finite target: too few to fit")
    p = {**DEFAULT_PARAMS, **(params or {}), "objective": objective}
    mono = _monotone_vector(list(features), monotone)
    if mono is not None:
        p["monotone_constraints"] = mono
    data = lgb.Dataset(
        x[keep],
        label=y[keep],
        weight=None if weight is None else np.asarray(weight, dtype=float)[keep],
        feature_name=list(features),
        categorical_feature=F.categorical_indices(features) or "auto",
        free_raw_data=True,
    )
    return lgb.train(p, data, num_boost_round=num_boost_round)


@dataclass
class Emulator:
    """The boosters of one model version and how to combine them.

    ``features``: predictors of the EF and direct models (in matrix order); ``a_features``: of the
    A model. ``constrained`` says which of the two is the model's primary output.
    """

    features: list[str]
    boosters: dict[str, lgb.Booster]
    constrained: bool = True
    a_min: float = A_MIN
    meta: dict = field(default_factory=dict)

    @property
    def a_features(self) -> list[str]:
        return F.available_energy_features(self.features)

    def predict_a(self, table: pd.DataFrame) -> np.ndarray:
        """Available energy Rn − G (W m-2) from the A model."""
        return self.boosters["a"].predict(F.feature_matrix(table, self.a_features))

    def predict(self, table: pd.DataFrame, *, a=None, model: str | None = None) -> pd.DataFrame:
        """LE, H, EF and A (W m-2, W m-2, 1, W m-2) for each row of ``table``.

        ``a``: the available energy to close on; default the table's ``a`` column where finite, else
        the A model. ``model``: "constrained" or "direct" (default: the version's primary model).
        """
        model = model or ("constrained" if self.constrained else "direct")
        if a is None:
            a = table["a"].to_numpy(dtype=float) if "a" in table.columns else np.full(len(table), np.nan)
            missing = ~np.isfinite(a)
            if missing.any():
                a = a.copy()
                a[missing] = self.predict_a(table.loc[missing])
        a = np.asarray(a, dtype=float)
        frame = table.assign(a=a) if "a" in self.features else table
        x = F.feature_matrix(frame, self.features)
        if model == "constrained":
            ef = self.boosters["ef"].predict(x)
            le_direct = np.full(len(a), np.nan)
            with np.errstate(invalid="ignore"):
                small = ~(a >= self.a_min)
            if small.any():
                le_direct[small] = self.boosters["le_direct"].predict(x[small])
            le, h, ef = constrained_fluxes(ef, a, le_direct, a_min=self.a_min)
        elif model == "direct":
            le = self.boosters["le_direct"].predict(x)
            h = self.boosters["h_direct"].predict(x)
            with np.errstate(invalid="ignore", divide="ignore"):
                ef = np.where(np.abs(le + h) > 0, le / (le + h), np.nan)
        else:
            raise ValueError(f"model must be 'constrained' or 'direct', not {model!r}")
        return pd.DataFrame({"le": le, "h": h, "ef": ef, "a": a}, index=table.index)


def fit_emulator(
    table: pd.DataFrame,
    features: list[str] | tuple[str, ...],
    *,
    targets: str = "corrected",
    constrained: bool = True,
    params: dict | None = None,
    num_boost_round: int = DEFAULT_ROUNDS,
    monotone: dict[str, int] | None = None,
    a_min: float = A_MIN,
) -> Emulator:
    """Train the EF, A and direct LE/H boosters on a training table (see ``training_table``).

    Both the constrained and the direct models are always trained, so every report compares them;
    ``constrained`` only chooses the primary one.
    """
    features = list(features)
    le_col, h_col = TARGET_COLUMNS[targets]
    x = F.feature_matrix(table, features)
    a = table["a"].to_numpy(dtype=float)
    ef, ok = ef_target(table[le_col], table[h_col], a, a_min=a_min)
    common = dict(params=params, num_boost_round=num_boost_round)
    boosters = {
        "ef": fit_booster(
            x,
            ef,
            features,
            objective=EF_OBJECTIVE,
            weight=np.where(ok, a, 0.0),
            monotone=monotone,
            **common,
        ),
        "a": fit_booster(
            F.feature_matrix(table, F.available_energy_features(features)),
            a,
            F.available_energy_features(features),
            **common,
        ),
        "le_direct": fit_booster(x, table[le_col].to_numpy(dtype=float), features, **common),
        "h_direct": fit_booster(x, table[h_col].to_numpy(dtype=float), features, **common),
    }
    return Emulator(features=features, boosters=boosters, constrained=constrained, a_min=a_min)
