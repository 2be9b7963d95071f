"""Explanation maps: per-pixel-day SHAP contributions of the EF model over a region, as a product.

For every pixel-day a prediction would partition (A ≥ ``a_min``), LightGBM's TreeSHAP
(``Booster.predict(x, pred_contrib=True)``; Lundberg et al. 2020, Nat. Mach. Intell. 2:56) splits the
EF model's raw score ``s`` into one contribution per feature plus the base value ``s0`` (the expected
raw score over the training data): ``s = s0 + Σ φ_i`` exactly. EF = g(s) with the version's link g
(:func:`models.emulator.ef_link`): clip(s, 0, 1) for the squared-error EF model, σ(s) = logit⁻¹ for
versions trained with cross-entropy. Stored:

* ``shap_<feature>`` — φ_i in raw-score units (EF, or logit(EF) for a cross-entropy version);
* ``shap_le_<feature>`` — the same contribution in W m-2 of LE, by the secant linearisation of
  ``LE = A g(s)`` between ``s0`` and ``s`` at the pixel-day's A: ``c_i = φ_i · (LE − LE0) / (s − s0)``
  with ``LE0 = A g(s0)`` (where ``|s − s0| < 1e-9``: the tangent ``A g'(s)``), so ``LE0 + Σ c_i = LE``
  exactly; with the identity link and no clipping this is ``c_i = A φ_i``;
* ``le_base`` — LE0 = A g(s0) (W m-2), and ``ef`` — g(s);
* ``dominant_driver`` — the index of the feature with the largest |φ_i| (CF ``flag_values`` /
  ``flag_meanings`` give the legend).

Pixel-days with A < ``a_min`` (where the constrained model takes LE from its direct model), or a
missing input, are NaN. Measured (bench/bench_explain.py): ``pred_contrib`` is the cost; the packed
forest (:mod:`models.forest`) gives predictions only.
"""

from __future__ import annotations

from collections.abc import Callable

import lightgbm as lgb
import numpy as np

from catalog.errors import InputError
from models import compiled, predict, registry
from models.emulator import ef_from_raw, ef_link
from models.region_products import Output, run_into_product

BLOCK_PIXEL_DAYS = 250_000  # pred_contrib holds (rows × features+1) float64 and is ~10× slower than predict
TANGENT_EPS = 1e-9


RAW_UNITS = {"identity": "EF", "logit": "logit(EF)"}


def _link_slope(s: np.ndarray, link: str) -> np.ndarray:
    """g'(s): σ(s)(1 − σ(s)) for the logit link; 1 inside (0, 1) and 0 outside for clip(s, 0, 1)."""
    if link == "logit":
        ef = ef_from_raw(s, link)
        return ef * (1.0 - ef)
    return ((s > 0.0) & (s < 1.0)).astype(float)


def le_contributions(
    phi: np.ndarray, base: np.ndarray, a: np.ndarray, link: str = "identity"
) -> tuple[np.ndarray, np.ndarray]:
    """Contributions in W m-2 of LE (rows × features) and LE0 = A g(s0) from raw-score contributions
    ``phi`` (rows × features), base values ``base`` and available energy ``a`` (secant
    linearisation, see the module docstring): ``le0 + c.sum(1) == A g(s0 + Σφ)``."""
    s = base + phi.sum(axis=1)
    le, le0 = a * ef_from_raw(s, link), a * ef_from_raw(base, link)
    ds = s - base
    tangent = a * _link_slope(s, link)
    with np.errstate(invalid="ignore", divide="ignore"):
        slope = np.where(np.abs(ds) < TANGENT_EPS, tangent, (le - le0) / ds)
    return phi * slope[:, None], le0


def dominant_driver(phi: np.ndarray) -> np.ndarray:
    """Index of the feature with the largest |contribution| per row."""
    return np.argmax(np.abs(phi), axis=1)


def outputs(features: list[str], link: str = "identity") -> dict[str, Output]:
    """The product's variables for a model with ``features`` and EF ``link``."""
    raw = RAW_UNITS[link]
    out = {
        f"shap_{f}": Output({"units": "1", "long_name": f"SHAP contribution of {f} to {raw}"})
        for f in features
    }
    out.update(
        {
            f"shap_le_{f}": Output(
                {"units": "W m-2", "long_name": f"SHAP contribution of {f} to LE (secant linearisation)"}
            )
            for f in features
        }
    )
    out["le_base"] = Output({"units": "W m-2", "long_name": "LE at the EF model's base value, A·g(s0)"})
    out["ef"] = Output({"units": "1", "long_name": "evaporative fraction g(s0 + Σφ) (emulated)"})
    out["dominant_driver"] = Output(
        {
            "units": "1",
            "long_name": f"feature with the largest |SHAP contribution| to {raw}",
            "flag_values": list(range(len(features))),
            "flag_meanings": " ".join(features),
        }
    )
    return out


def explain_block(models: dict, arrays: dict, spec: predict.BlockSpec, times, lats, nx: int) -> dict:
    """The explanation variables of one block (see :func:`outputs`); ``models``: the EF booster
    (``ef_booster``), its link (``ef_link``) and the packed A model (``a``, when A is not given by a
    radiation product)."""
    shape, flat, x, a = predict.block_features(models, arrays, spec, times, lats, nx)
    link = models["ef_link"]
    names = outputs(spec.features, link)
    out = {v: np.full(flat.size, np.nan, dtype=np.float32) for v in names}
    if x is not None:
        keep = a >= spec.a_min
        rows = np.flatnonzero(flat)[keep]
        if rows.size:
            contrib = models["ef_booster"].predict(x[keep], pred_contrib=True, num_threads=spec.n_jobs)
            phi, base = contrib[:, :-1], contrib[:, -1]
            c_le, le0 = le_contributions(phi, base, a[keep], link)
            for i, f in enumerate(spec.features):
                out[f"shap_{f}"][rows] = phi[:, i]
                out[f"shap_le_{f}"][rows] = c_le[:, i]
            out["le_base"][rows] = le0
            out["ef"][rows] = ef_from_raw(base + phi.sum(axis=1), link)
            out["dominant_driver"][rows] = dominant_driver(phi)
    return {v: arr.reshape(shape) for v, arr in out.items()}


def _block(grid) -> tuple[int, int, int]:
    bt, by, bx = predict.default_block(grid)
    while bt > 1 and bt * by * bx > BLOCK_PIXEL_DAYS:
        bt //= 2
    return bt, by, bx


def explain_region(
    version: str,
    bbox,
    start,
    end,
    *,
    product_name: str | None = None,
    title: str | None = None,
    progress: Callable[[int, int], None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
    inputs: dict | None = None,
    feature_set=None,
    allow_mismatch: bool = False,
    block: tuple[int, int, int] | None = None,
    n_jobs: int = 2,
) -> str:
    """Explanation map of model ``version``'s EF over ``bbox`` and [start, end] into a new product
    (inputs resolved and checked as :func:`models.predict.predict_region` does); returns its name.
    Only constrained models have an EF model to explain. ``title``: the catalog title (default
    ``EF explanation <box>, <period> (model <version>)``)."""
    meta = registry.read_meta(version)
    if not meta["constrained"]:
        raise InputError(f"model {version} is a direct LE/H model: it has no EF model to explain")
    req = predict._prepare(version, bbox, start, end, inputs, feature_set, allow_mismatch, block, n_jobs)
    if block is None:
        req = predict._prepare(
            version, bbox, start, end, inputs, feature_set, allow_mismatch, _block(req.grid), n_jobs
        )
    w, s, e, n = req.bbox
    name = product_name or predict._request_name(version, req.bbox, req.t0, req.t1, req.used, "explain")
    predict.check_new_name(name)
    booster = lgb.Booster(model_file=str(registry.version_dir(version) / "ef.txt"))
    link = ef_link(booster)
    models = {"ef_booster": booster, "ef_link": link}
    base = models["ef_booster"].predict(np.zeros((1, len(req.spec.features))), pred_contrib=True)[0, -1]
    if "rn" not in req.grid:
        models["a"] = compiled.compiled_model(version, "a")
    period = f"{req.t0.date()}…{req.t1.date()}"
    title = title or f"EF explanation {w:g}…{e:g} E, {s:g}…{n:g} N, {period} (model {version})"
    provenance = {
        "model_version": version,
        "explained": f"EF model raw score ({RAW_UNITS[link]}), LightGBM TreeSHAP (pred_contrib)",
        "ef_link": "EF = sigmoid(s)" if link == "logit" else "EF = clip(s, 0, 1)",
        "le_linearisation": "secant of LE = A·g(s) between the base value s0 and s: "
        "c_i = φ_i (LE − A g(s0)) / (s − s0); tangent A g'(s) where |s − s0| < 1e-9",
        "a_source": f"rn - g of {req.used['radiation']}" if "radiation" in req.used else "emulator A model",
        "a_min": req.spec.a_min,
        "inputs": req.used,
        "bbox": list(req.bbox),
        "period": [str(req.t0.date()), str(req.t1.date())],
        "features": list(req.spec.features),
        "ef_base_raw": float(base),
    }
    run_into_product(
        req.grid, req.blocks, req.block, explain_block, models, req.block_args,
        outputs(req.spec.features, link),
        name=name, title=title, provenance=provenance, synthetic=req.synthetic(), progress=progress,
        should_cancel=should_cancel, attrs={"time_step": req.time_step, **req.grid_attrs()},
    )  # fmt: skip
    return name
