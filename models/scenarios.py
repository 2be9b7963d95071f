"""What-if scenarios: perturbations of a prediction's input cubes, and the training range they leave.

A scenario is a list of perturbations, written ``ta+2K, precip*0.8, ssm-0.05, lai*1.1`` (``+``/``-``
add in the variable's units — ``K`` is accepted for ``ta`` in °C, a difference of 1 K being 1 °C —
``*``/``×`` scale). They are applied to the input cubes of every block before the feature matrix is
built, so derived features (e.g. the day's potential radiation) follow and climatology features
(``*_clim``, a pixel's normal) do not. A perturbation never pushes a value below the variable's
physical lower bound (precipitation, soil moisture, LAI, radiation, VPD, wind ≥ 0), and leaves a
value already below it (a data artefact) as it was, so a zero perturbation changes nothing.
Magnitudes are limited (:data:`LIMITS`) to what-if changes of plausible size: beyond them most
pixel-days leave the training range, where the trees answer flat.

Air temperature changes at constant relative humidity: with ``RH = 1 − VPD / e_s(T)``,
``VPD' = e_s(T') (1 − RH) = VPD · e_s(T') / e_s(T)``, ``e_s(T) = 0.6108 exp(17.27 T / (T + 237.3))`` kPa
(T in °C; Allen et al. 1998, FAO Irrigation and Drainage Paper 56, eq. 11). The ratio makes the
result independent of VPD's units.

A tree model extrapolates flat outside the range it was trained on, so a scenario's pixel-days
whose features leave that range are flagged: the range of each numerical feature is LightGBM's own
record of its training data (``feature_infos`` ``[min:max]`` in the model file).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from catalog.errors import InputError

SCALE_OPS = ("*", "×")
VARIABLES = {  # cube variable -> (units of an added value, lower physical bound or None)
    "ta": ("degC", None),
    "precip": ("mm d-1", 0.0),
    "ssm": ("m3 m-3", 0.0),
    "lai": ("m2 m-2", 0.0),
    "ndvi": ("1", None),
    "sw_in": ("W m-2", 0.0),
    "lw_in": ("W m-2", 0.0),
    "vpd": ("hPa", 0.0),
    "ws": ("m s-1", 0.0),
}
# cube variable -> largest |added value| (variable's units); every factor must lie in FACTOR_RANGE
LIMITS = {
    "ta": 10.0,  # K
    "precip": 20.0,  # mm d-1
    "ssm": 0.3,  # m3 m-3
    "lai": 3.0,  # m2 m-2
    "ndvi": 0.5,  # 1
    "sw_in": 100.0,  # W m-2
    "lw_in": 100.0,  # W m-2
    "vpd": 20.0,  # hPa
    "ws": 5.0,  # m s-1
}
FACTOR_RANGE = (0.0, 3.0)
CLI_HELP = (
    "what-if perturbations of the inputs, comma-separated, e.g. 'ta+2K, precip*0.8, ssm-0.05, lai*1.1': "
    "+ or - adds in the variable's units (ta in K; VPD then follows at constant relative humidity), "
    "* scales; pixel-days whose features the scenario pushes outside the model's training range are "
    "flagged in the product"
)
_ITEM = re.compile(r"^\s*([a-z_]+)\s*([+\-*×])\s*([0-9.eE+\-]+)\s*([A-Za-z0-9 \-]*)$")


@dataclass(frozen=True)
class Perturbation:
    """``variable op value``: op ``+`` adds ``value`` (variable's units), ``*`` scales by it."""

    variable: str
    op: str  # "+" or "*"
    value: float

    def __str__(self) -> str:
        if self.op == "*":
            return f"{self.variable} ×{self.value:g}"
        units = VARIABLES[self.variable][0]
        return f"{self.variable} {self.value:+g} {'K' if self.variable == 'ta' else units}"


def parse(text: str | list | None) -> tuple[Perturbation, ...]:
    """The perturbations of ``"ta+2K, precip*0.8"`` (or a list of such items); InputError naming
    the item for anything else (unknown variable, bad number, units that do not match)."""
    if not text:
        return ()
    items = text if isinstance(text, list | tuple) else str(text).split(",")
    out = []
    for item in (str(i) for i in items if str(i).strip()):
        m = _ITEM.match(item)
        if not m:
            raise InputError(f"bad scenario item {item.strip()!r}: write e.g. ta+2K, precip*0.8, ssm-0.05")
        var, op, number, units = m.group(1), m.group(2), m.group(3), m.group(4).strip()
        if var not in VARIABLES:
            raise InputError(f"scenario item {item.strip()!r}: can perturb {sorted(VARIABLES)}, not {var!r}")
        try:
            value = float(number)
        except ValueError:
            raise InputError(f"scenario item {item.strip()!r}: {number!r} is not a number") from None
        if op in SCALE_OPS:
            if units:
                raise InputError(f"scenario item {item.strip()!r}: a factor has no units")
            out.append(Perturbation(var, "*", value))
            continue
        allowed = {"", VARIABLES[var][0]} | ({"K", "degC", "°C"} if var == "ta" else set())
        if units not in allowed:
            raise InputError(
                f"scenario item {item.strip()!r}: {var} changes in {VARIABLES[var][0]}, not {units!r}"
            )
        out.append(Perturbation(var, "+", 0.0 - value if op == "-" else value))  # "-0" is +0
    seen = [p.variable for p in out]
    if len(set(seen)) != len(seen):
        raise InputError(f"scenario {text!r} perturbs a variable twice")
    return tuple(out)


def saturation_vapour_pressure(t_celsius):
    """e_s(T) in kPa, T in °C (FAO-56 eq. 11)."""
    t = np.asarray(t_celsius, dtype=float)
    return 0.6108 * np.exp(17.27 * t / (t + 237.3))


def apply(arrays: dict, scenario: tuple[Perturbation, ...]) -> dict:
    """The input ``arrays`` (cube variable → array) with the perturbations applied (new arrays; the
    inputs are not modified). ``ta`` changes carry ``vpd`` along at constant RH; physical lower
    bounds (precipitation, soil moisture, LAI ≥ 0) are kept by clipping what the perturbation moved
    below them (a value already below stays: ``max(new, min(old, bound))``)."""
    out = dict(arrays)
    for p in scenario:
        if p.variable not in out:
            raise InputError(f"scenario perturbs {p.variable}, which the model does not read")
        x = np.asarray(out[p.variable], dtype=float)
        new = x * p.value if p.op == "*" else x + p.value
        lower = VARIABLES[p.variable][1]
        if lower is not None:
            new = np.maximum(new, np.minimum(x, lower))
        if p.variable == "ta" and "vpd" in out:
            ratio = saturation_vapour_pressure(new) / saturation_vapour_pressure(x)
            out["vpd"] = np.asarray(out["vpd"], dtype=float) * ratio
        out[p.variable] = new
    return out


def training_ranges(model_text: str, features: list[str]) -> dict[str, tuple[float, float]]:
    """{feature: (min, max)} of the numerical features, from a LightGBM model file's
    ``feature_infos`` (categorical and unused features left out)."""
    for line in model_text.splitlines():
        if line.startswith("feature_infos="):
            infos = line.split("=", 1)[1].split()
            break
    else:
        raise InputError("the model file has no feature_infos line")
    if len(infos) != len(features):
        raise InputError(f"the model file describes {len(infos)} features, the model has {len(features)}")
    out = {}
    for name, info in zip(features, infos, strict=True):
        if info.startswith("[") and info.endswith("]"):
            lo, hi = info[1:-1].split(":")
            out[name] = (float(lo), float(hi))
    return out


def outside_range(x: np.ndarray, features: list[str], ranges: dict[str, tuple[float, float]]) -> np.ndarray:
    """Per row of the feature matrix ``x``: the number of features outside their training range
    (NaN is missing, not outside)."""
    return outside_matrix(x, features, ranges).sum(axis=1, dtype=np.int32)


def check_magnitudes(scenario: tuple[Perturbation, ...]) -> None:
    """InputError naming the first perturbation larger than :data:`LIMITS` / :data:`FACTOR_RANGE`."""
    lo, hi = FACTOR_RANGE
    for p in scenario:
        if p.op == "*":
            if not lo <= p.value <= hi:
                raise InputError(f"scenario item {p}: a factor must lie in {lo:g}..{hi:g}")
        elif abs(p.value) > LIMITS[p.variable]:
            units = "K" if p.variable == "ta" else VARIABLES[p.variable][0]
            raise InputError(
                f"scenario item {p}: {p.variable} may change by at most ±{LIMITS[p.variable]:g} {units}"
            )


def text(scenario: tuple[Perturbation, ...]) -> str:
    """``"ta +2 K, precip ×0.8"``: the scenario as titles and provenance show it (:func:`parse` reads it)."""
    return ", ".join(str(p) for p in scenario)


def outside_matrix(x: np.ndarray, features: list[str], ranges: dict[str, tuple[float, float]]) -> np.ndarray:
    """Rows × features booleans: the feature's value is outside its training range (NaN is not)."""
    out = np.zeros(x.shape, dtype=bool)
    for i, name in enumerate(features):
        if name in ranges:
            lo, hi = ranges[name]
            with np.errstate(invalid="ignore"):
                out[:, i] = (x[:, i] < lo) | (x[:, i] > hi)
    return out


def difference(scenario_product: str, baseline_product: str, variables=("le", "h")):
    """Scenario minus baseline of ``variables`` (lazy, both opened through :mod:`catalog.api`), in the
    variables' own units (W m-2 for LE and H: a difference of fluxes has the fluxes' units).

    InputError unless ``scenario_product`` is a scenario re-prediction (provenance ``scenario``) and
    ``baseline_product`` a re-prediction of the same model version, box and period on the same grid
    and days (its own scenario, if any, is what the difference is taken from)."""
    import xarray as xr

    from catalog import api

    s_info, b_info = api.product_info(scenario_product), api.product_info(baseline_product)
    if "scenario" not in s_info.provenance:
        raise InputError(f"product {scenario_product!r} is not a scenario re-prediction")
    for key in ("model_version", "bbox", "period"):
        if s_info.provenance.get(key) != b_info.provenance.get(key):
            raise InputError(
                f"{scenario_product!r} and {baseline_product!r} differ in {key}: "
                f"{s_info.provenance.get(key)!r} vs {b_info.provenance.get(key)!r}"
            )
    s_ds, b_ds = api.open_product(scenario_product), api.open_product(baseline_product)
    for dim in ("time", "lat", "lon"):
        if s_ds.sizes[dim] != b_ds.sizes[dim] or not np.array_equal(s_ds[dim].values, b_ds[dim].values):
            raise InputError(f"{scenario_product!r} and {baseline_product!r} are on different {dim} axes")
    missing = [v for v in variables if v not in s_ds or v not in b_ds]
    if missing:
        raise InputError(f"variables {missing} are not in both products")
    out = xr.Dataset()
    what_if = s_info.provenance["scenario"]["text"]
    for v in variables:
        diff = s_ds[v] - b_ds[v]
        diff.attrs = {
            "units": s_ds[v].attrs.get("units", ""),
            "long_name": f"{s_ds[v].attrs.get('long_name', v)}: scenario ({what_if}) minus baseline",
        }
        out[v] = diff
    out.attrs = {"scenario_product": scenario_product, "baseline_product": baseline_product}
    return out
