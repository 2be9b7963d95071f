"""The validation configuration (``validation.yaml``) and the options of one validation run."""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from catalog.errors import InputError

CONFIG_PATH = Path(__file__).with_name("validation.yaml")


@functools.cache
def load_config(path: str | Path = CONFIG_PATH) -> dict:
    """The parsed configuration file (cached)."""
    with open(path, encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def variables() -> dict[str, dict]:
    """Product variable -> station column, units, long name."""
    return load_config()["variables"]


def variable_spec(variable: str) -> dict:
    """Configuration of one product variable; ``InputError`` when it cannot be validated."""
    spec = variables().get(variable)
    if spec is None:
        known = sorted(variables())
        raise InputError(f"validation: variable {variable!r} cannot be validated; known: {known}")
    return spec


@dataclasses.dataclass(frozen=True)
class ValidationOptions:
    """How observations and a product are matched; defaults from ``validation.yaml``."""

    spatial: str = "nearest"
    min_coverage: float = 0.5
    qc_min: float | None = 0.8
    min_pairs: int = 10
    anomaly: bool = False
    anomaly_window_days: int = 31
    use_corrected: bool = False
    depth: tuple[float, float] = (0.0, 0.1)
    ismn_flags: tuple[str, ...] = ("G",)
    period: tuple[str, str] | None = None
    le_units: str = "W m-2"  # LE pairs and metrics in W m-2, or as evaporation in mm d-1

    @classmethod
    def from_config(cls, **overrides) -> ValidationOptions:
        """Defaults of the configuration file, with ``overrides`` (None values ignored)."""
        values = dict(load_config()["defaults"])
        values.update({k: v for k, v in overrides.items() if v is not None})
        unknown = set(values) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise InputError(f"validation: unknown options {sorted(unknown)}")
        values["depth"] = tuple(float(d) for d in values["depth"])
        values["ismn_flags"] = tuple(values["ismn_flags"])
        if values.get("period") is not None:
            values["period"] = tuple(str(p) for p in values["period"])
        opts = cls(**values)
        opts.check()
        return opts

    def check(self) -> None:
        """``InputError`` for options out of range."""
        if self.spatial not in ("nearest", "bilinear"):
            raise InputError(f"validation: spatial matching {self.spatial!r} is not 'nearest' or 'bilinear'")
        if not 0.0 < self.min_coverage <= 1.0:
            raise InputError(f"validation: min_coverage {self.min_coverage} must be in (0, 1]")
        if self.qc_min is not None and not 0.0 <= self.qc_min <= 1.0:
            raise InputError(f"validation: qc_min {self.qc_min} must be in [0, 1]")
        if self.min_pairs < 3:
            raise InputError(f"validation: min_pairs {self.min_pairs} must be at least 3")
        if self.le_units not in ("W m-2", "mm d-1"):
            raise InputError(f"validation: LE units {self.le_units!r} are not 'W m-2' or 'mm d-1'")
        if self.depth[0] > self.depth[1]:
            raise InputError(f"validation: depth range {self.depth} is reversed")
        if self.period is not None:
            start, end = (pd.Timestamp(p) for p in self.period)
            if start > end:
                raise InputError(f"validation: period {self.period} is reversed")

    def as_dict(self) -> dict:
        """Plain JSON-able dict (for cache keys and CSV headers)."""
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(self).items()}


def quality_rule(product_name: str) -> dict | None:
    """The product-flag rule whose ``match`` occurs in the product name, or None."""
    name = product_name.lower()
    for rule in load_config()["quality"]:
        if rule["match"] in name:
            return rule
    return None


def flag_keep_mask(flag, rule: dict | None) -> np.ndarray:
    """True where a product value with this ``flag`` is kept under ``rule`` (all True without a rule).

    ``bit_clear``: the given bit is 0 (SMAP L3 ``retrieval_qual_flag`` bit 0 = recommended quality,
    O'Neill et al., SMAP L3 product specification); ``equals``: flag is one of ``values``
    (ESA CCI SM / C3S: 0 = no issue). Values listed in ``fill`` and NaN flags are never kept.
    """
    f = np.asarray(flag, dtype="float64")
    if rule is None:
        return np.ones(f.shape, dtype=bool)
    finite = np.isfinite(f)
    fi = np.where(finite, f, 0).astype("int64")
    finite &= ~np.isin(fi, list(rule.get("fill", ())))
    if rule["rule"] == "bit_clear":
        return finite & ((fi >> int(rule["bit"])) & 1 == 0)
    if rule["rule"] == "equals":
        return finite & np.isin(fi, list(rule["values"]))
    raise InputError(f"validation: unknown quality rule {rule['rule']!r} in {CONFIG_PATH}")
