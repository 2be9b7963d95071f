"""Prediction-interval bands of LE and H products: which variables bound a variable (e.g. ``le_q05``
and ``le_q95`` beside ``le``, written by :mod:`models.predict` with :func:`models.intervals.bound_names`),
what the band is (level, method and calibration, as stored with the product) and how many observations
fall inside it.

Pure functions (no I/O): the views pass the product's variable attributes and provenance.
"""

from __future__ import annotations

import re

import numpy as np

BANDED = ("le", "h")  # the variables whose re-prediction products carry interval bounds
# How the stored calibration split held data out (models.evaluation.SPLITS, GROUP_NAMES).
SPLIT_WORDS = {
    "cluster": "leave-cluster-out CV (tower clusters held out)",
    "spatial": "leave-site-out CV (sites held out)",
    "temporal": "CV with time groups held out",
    "random": "random-fold CV",
}
# The A sources a prediction's quantiles come from (models.evaluation.A_MODEL, A_OBSERVED, or a product).
A_SOURCES = {"a_model": "rows with A from the emulator's A model", "observed": "rows with observed A"}


def bound_variables(variables, variable: str) -> tuple[str, str] | None:
    """``(lower, upper)``: the interval bounds ``<variable>_qNN`` and ``<variable>_q(100-NN)`` among
    a product's ``variables`` (the widest pair when there are several), None for a variable without
    bounds or one not in :data:`BANDED`."""
    if variable not in BANDED:
        return None
    names = set(variables)
    pattern = re.compile(rf"^{re.escape(variable)}_q(\d\d)$")
    lows = sorted(int(m.group(1)) for v in names if (m := pattern.match(v)))
    for lo in lows:
        upper = f"{variable}_q{100 - lo:02d}"
        if lo < 50 and upper in names:
            return f"{variable}_q{lo:02d}", upper
    return None


def level_of(lower: str, attrs: dict | None = None) -> float:
    """The interval's level (e.g. 0.9): the bound's stored ``interval_level``, else from its name
    (``q05`` → 1 − 2·0.05)."""
    stored = (attrs or {}).get("interval_level")
    if stored is not None:
        return float(stored)
    return 1 - 2 * int(lower[-2:]) / 100


def level_label(level: float) -> str:
    """``'90 %'`` for 0.9."""
    return f"{100 * level:g} %"


def describe(title: str, lower: str, upper: str, attrs: dict | None, provenance: dict | None) -> str:
    """One sentence on a product's band from what is stored with it: the level and method
    (``interval_level``, ``interval_method`` of the bound variable), the calibration split and the
    model version (provenance ``intervals``, ``model_version``)."""
    attrs, provenance = attrs or {}, provenance or {}
    stored = provenance.get("intervals")
    stored = stored if isinstance(stored, dict) else {}
    method = str(attrs.get("interval_method") or "")
    split = stored.get("calibration_split")
    if split is None:
        found = re.search(r"calibrated on the (\w+) split", method)
        split = found.group(1) if found else None
    head = method.split(" (")[0].split(";")[0].strip()
    level = level_label(level_of(lower, attrs))
    text = f"Shaded: the {level} prediction interval of {title} ({lower} … {upper})"
    text += f", {head}" if head else ", method not recorded"
    if split:
        text += f", calibrated on the out-of-fold residuals of the {SPLIT_WORDS.get(split, f'{split} split')}"
        version = provenance.get("model_version")
        text += f" of model {version}" if version else ""
    source = stored.get("calibrated_on_a_source")
    if source:
        text += f" (quantiles of {A_SOURCES.get(source, f'A from {source}')})"
    return text + "."


def coverage(obs, lower, upper) -> tuple[int, int]:
    """``(n inside, n)``: of the time steps where the observation and both bounds are finite, how
    many observations lie in [lower, upper] (bounds included)."""
    o, lo, hi = (np.asarray(x, dtype="float64") for x in (obs, lower, upper))
    ok = np.isfinite(o) & np.isfinite(lo) & np.isfinite(hi)
    inside = (o[ok] >= lo[ok]) & (o[ok] <= hi[ok])
    return int(inside.sum()), int(ok.sum())


def coverage_text(n_inside: int, n: int, level: float) -> str:
    """``'Tower observations inside the 90 % band: 17 / 20 (85 %).'``; says so when there is none."""
    if n == 0:
        return f"No tower observation on a day with the {level_label(level)} band."
    share = f"{100 * n_inside / n:.0f} %"
    return f"Tower observations inside the {level_label(level)} band: {n_inside} / {n} ({share})."
