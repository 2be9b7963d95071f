"""Ingest recipes: one YAML per source product (``data_prep/recipes/<name>.yaml``), mapping source
variables to the canonical names of docs/architecture.md and declaring each conversion.

A recipe::

    name: era5
    title: ERA5 single levels
    reference: …
    accumulation: {kind: per_step | since_00utc, period_s: 3600}   # how accumulated fields count
    static: false                 # true: one time step (land cover, DEM)
    variables:
      <canonical>: <rule> | [<rule>, <rule>, …]   # alternatives, the first one the files hold wins

A rule names its input with one of ``from: SRC``, ``sum_of: [SRC, …]``, ``standard_name: CF_NAME``
or ``derive: vpd_from_dewpoint`` (``temperature:``, ``dewpoint:``) / ``wind_speed`` (``u:``, ``v:``),
and may state ``step_type: [accum, …]`` (what GRIB_stepType the file must declare), ``sign: -1``,
``water_equivalent: true`` (kg m-2 of water → m), ``layer_depth_m: 0.1`` (m of water → m3 m-3),
``crosswalk: FILE.yaml`` with ``categorical: true``, ``long_name:`` and the target ``units:``
(converted from the file's units with cf-units). A recipe lists what it can make: an ingest makes
every variable whose sources the files hold (``--only`` names the ones that must be there).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from catalog.errors import InputError

RECIPE_DIR = Path(__file__).resolve().parent / "recipes"
ACCUMULATION_KINDS = ("per_step", "since_00utc")
DERIVED = {"vpd_from_dewpoint": ("temperature", "dewpoint"), "wind_speed": ("u", "v")}
RULE_KEYS = {
    "from", "sum_of", "standard_name", "derive", "temperature", "dewpoint", "u", "v", "step_type", "sign",
    "water_equivalent", "layer_depth_m", "crosswalk", "categorical", "long_name", "units",
}  # fmt: skip


@dataclass(frozen=True)
class Rule:
    """One way of making a canonical variable from source variables."""

    canonical: str
    units: str
    sources: tuple[str, ...] = ()  # from / sum_of, or the derive inputs in DERIVED order
    standard_name: str | None = None
    derive: str | None = None
    step_type: tuple[str, ...] = ()
    sign: float = 1.0
    water_equivalent: bool = False
    layer_depth_m: float | None = None
    crosswalk: str | None = None
    categorical: bool = False
    long_name: str | None = None

    @property
    def summed(self) -> bool:
        return self.derive is None and len(self.sources) > 1


@dataclass(frozen=True)
class Recipe:
    name: str
    title: str
    reference: str
    accumulation_kind: str = "per_step"
    accumulation_period_s: float | None = None
    static: bool = False
    variables: dict[str, tuple[Rule, ...]] = field(default_factory=dict)
    path: str = ""


def available() -> list[str]:
    """Names of the recipes shipped with FluxLens."""
    return sorted(p.stem for p in RECIPE_DIR.glob("*.yaml") if not p.stem.startswith("landcover_"))


def _rule(canonical: str, spec: dict, where: str) -> Rule:
    if not isinstance(spec, dict):
        raise InputError(f"{where}: variable {canonical!r} must be a mapping, got {spec!r}")
    unknown = set(spec) - RULE_KEYS
    if unknown:
        raise InputError(f"{where}: variable {canonical!r} has unknown keys {sorted(unknown)}")
    if "units" not in spec:
        raise InputError(f"{where}: variable {canonical!r} states no target units")
    given = [k for k in ("from", "sum_of", "standard_name", "derive") if k in spec]
    if len(given) != 1:
        raise InputError(
            f"{where}: variable {canonical!r} needs exactly one of from/sum_of/standard_name/derive"
        )
    sources: tuple[str, ...] = ()
    derive = spec.get("derive")
    if "from" in spec:
        sources = (str(spec["from"]),)
    elif "sum_of" in spec:
        sources = tuple(str(s) for s in spec["sum_of"])
    elif derive is not None:
        if derive not in DERIVED:
            raise InputError(
                f"{where}: variable {canonical!r}: unknown derivation {derive!r} ({sorted(DERIVED)})"
            )
        missing = [k for k in DERIVED[derive] if k not in spec]
        if missing:
            raise InputError(f"{where}: variable {canonical!r}: {derive} needs {missing}")
        sources = tuple(str(spec[k]) for k in DERIVED[derive])
    step = spec.get("step_type") or ()
    return Rule(
        canonical=canonical,
        units=str(spec["units"]),
        sources=sources,
        standard_name=spec.get("standard_name"),
        derive=derive,
        step_type=tuple([step] if isinstance(step, str) else step),
        sign=float(spec.get("sign", 1.0)),
        water_equivalent=bool(spec.get("water_equivalent", False)),
        layer_depth_m=None if spec.get("layer_depth_m") is None else float(spec["layer_depth_m"]),
        crosswalk=spec.get("crosswalk"),
        categorical=bool(spec.get("categorical", False)),
        long_name=spec.get("long_name"),
    )


def from_dict(d: dict, where: str) -> Recipe:
    """A :class:`Recipe` from its YAML mapping; :class:`InputError` naming ``where`` if malformed."""
    if not isinstance(d, dict) or "name" not in d:
        raise InputError(f"{where}: not a recipe (a mapping with name, title, variables)")
    acc = d.get("accumulation") or {}
    kind = acc.get("kind", "per_step")
    if kind not in ACCUMULATION_KINDS:
        raise InputError(f"{where}: accumulation kind {kind!r} is not one of {ACCUMULATION_KINDS}")
    variables = {}
    for canonical, spec in (d.get("variables") or {}).items():
        alts = spec if isinstance(spec, list) else [spec]
        variables[str(canonical)] = tuple(_rule(str(canonical), s, where) for s in alts)
    return Recipe(
        name=str(d["name"]),
        title=str(d.get("title", d["name"])),
        reference=str(d.get("reference", "")),
        accumulation_kind=kind,
        accumulation_period_s=acc.get("period_s"),
        static=bool(d.get("static", False)),
        variables=variables,
        path=where,
    )


def load(name_or_path: str) -> Recipe:
    """A shipped recipe by name, or a user recipe YAML by path; unknown → InputError listing them."""
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml") and p.is_file():
        path = p
    else:
        path = RECIPE_DIR / f"{name_or_path}.yaml"
        if not path.is_file() or name_or_path.startswith("landcover_"):
            raise InputError(
                f"unknown recipe {name_or_path!r}; recipes: {', '.join(available())} (or a YAML file)"
            )
    try:
        d = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise InputError(f"recipe {path}: not valid YAML ({exc})") from exc
    return from_dict(d, str(path))


def with_mapping(recipe: Recipe, mapping: str) -> Recipe:
    """``recipe`` with ``SRC=canonical[:units],…`` from the command line added (and preferred)."""
    variables = dict(recipe.variables)
    for item in filter(None, (s.strip() for s in mapping.split(","))):
        if "=" not in item:
            raise InputError(f"--variables: {item!r} is not SRC=canonical")
        src, target = (s.strip() for s in item.split("=", 1))
        canonical, _, units = target.partition(":")
        from catalog.variables import VARIABLES

        if not units:
            if canonical not in VARIABLES:
                raise InputError(
                    f"--variables: {canonical!r} is not a canonical variable "
                    f"({', '.join(sorted(VARIABLES))}); give its units as SRC=name:units"
                )
            units = VARIABLES[canonical].units
        rule = Rule(canonical=canonical, units=units, sources=(src,),
                    categorical=canonical in ("igbp", "flag"))  # fmt: skip
        variables[canonical] = (rule, *variables.get(canonical, ()))
    return Recipe(**{**recipe.__dict__, "variables": variables})


def crosswalk(name: str) -> tuple[dict[int, int | None], str]:
    """(code → code, source text) of a cross-walk table shipped beside the recipes."""
    path = RECIPE_DIR / name
    if not path.is_file():
        raise InputError(f"cross-walk table {name!r} not found in {RECIPE_DIR}")
    d = yaml.safe_load(path.read_text())
    table = d.get("lccs_to_igbp") or d.get("table") or {}
    return {int(k): (None if v is None else int(v)) for k, v in table.items()}, str(d.get("source", ""))
