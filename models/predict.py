"""Regional LE/H prediction: feature cubes from the catalog → emulator → a new catalog product.

The feature cubes are read lazily through :mod:`catalog.api` (forcing: ``sw_in, lw_in, ta, vpd,
precip, ws, lai, ndvi``; static: ``elevation, igbp``; soil moisture: ``ssm``; optionally a radiation
product with ``rn`` and ``g``; or any product per variable, see :func:`resolve_inputs`), put on the
forcing product's grid by nearest source cell (:func:`models.features.open_cubes`; training on
gridded features samples the towers with the same functions), and predicted block by block (Dask reads
one block at a time, so memory is bounded by the block size) with the compiled models
(:mod:`models.compiled`). Blocks are written into a temporary Zarr store in the data directory, which
is then handed to :func:`catalog.store.write_product` (pyramid, atomic registration) and removed.

Outputs ``le``, ``h`` (W m-2, positive upward) and ``ef`` (1), and, for models calibrated at training
time (``meta.json`` ``intervals``, :mod:`models.intervals`), the bounds of the 90 % prediction
interval ``le_q05``, ``le_q95``, ``h_q05``, ``h_q95`` (W m-2) from the same EF bounds and A, so
``le_q05 + h_q95 == a`` and ``le_q95 + h_q05 == a``. With the constrained model
``le + h == a`` where ``a = rn − g`` comes from the radiation product if given, else from the
emulator's A model; where ``a`` is below the model's ``a_min`` LE comes from the direct model,
H = A − LE and ``ef`` is NaN (see :mod:`models.emulator`). Pixels where a forcing or static input
is missing (ocean, no data) are NaN; a missing ``ssm`` is routed by the trees as missing.

What-if re-prediction (``scenario``, :mod:`models.scenarios`): every block's input cubes are
perturbed (e.g. ``ta +2 K`` with VPD at constant relative humidity) inside the block task, before
its feature matrix is built, so it runs wherever the block runs (threads or Dask workers). A comes
from the perturbed inputs too: the emulator's A model is re-run on them, a radiation product's
rn − g is not perturbed. Two more variables then count, per pixel-day, the model features outside
the training range of the model that predicts (LightGBM ``feature_infos`` of the EF model, or the
direct LE model of a direct baseline): ``scenario_outside_range`` under the scenario and
``scenario_pushed_outside`` of those the baseline inputs kept inside (the ones the scenario pushed
out; NaN where nothing is predicted). The provenance records the scenario, the ranges and the counts
of pixel-days flagged. A zero perturbation gives the plain re-prediction's values bit for bit.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from itertools import product as cartesian

import dask
import numpy as np
import pandas as pd
import xarray as xr

from catalog import api, settings, store
from catalog.errors import InputError
from catalog.pyramid import level_shapes
from models import block_tasks, compiled, intervals, registry, scenarios
from models import features as F
from models.emulator import constrained_fluxes
from models.region_products import Output, run_into_product

DEFAULT_INPUTS = {
    "forcing": "forcing_demo",
    "static": "static_demo",
    "ssm": "ssm_global_demo",
    "radiation": None,
}
BLOCK_PIXEL_DAYS = 2_000_000  # target size of one prediction block (≈ 0.5 GB of float64 features)
MAX_PIXEL_DAYS = 2_000_000_000
OUTPUT_ATTRS = {
    "le": {
        "units": "W m-2",
        "long_name": "latent heat flux (emulated, positive upward)",
        "standard_name": "surface_upward_latent_heat_flux",
    },
    "h": {
        "units": "W m-2",
        "long_name": "sensible heat flux (emulated, positive upward)",
        "standard_name": "surface_upward_sensible_heat_flux",
    },
    "ef": {"units": "1", "long_name": "evaporative fraction LE / (LE + H) (emulated)"},
}


SCENARIO_ATTRS = {
    "scenario_outside_range": {
        "units": "1",
        "long_name": "number of model features outside their training range under the scenario",
    },
    "scenario_pushed_outside": {
        "units": "1",
        "long_name": "number of model features the scenario pushed outside their training range "
        "(inside it with the baseline inputs)",
    },
}

Cancelled = block_tasks.Cancelled  # the prediction was cancelled; nothing was registered


def scenario_request(meta: dict, scenario) -> tuple[scenarios.Perturbation, ...]:
    """The perturbations of ``scenario`` (text or list, :func:`models.scenarios.parse`), checked: known
    variables, magnitudes within :data:`models.scenarios.LIMITS`, and variables the model reads;
    InputError naming the item otherwise. Empty for no scenario."""
    parsed = scenarios.parse(scenario)
    scenarios.check_magnitudes(parsed)
    features = [f["name"] for f in meta["features"]]
    reads = {v for f in (features, meta["a_features"]) for vs in F.cube_variables(f).values() for v in vs}
    for p in parsed:
        if p.variable not in reads:
            raise InputError(
                f"scenario item {p}: model {meta.get('version', '')} does not read {p.variable} "
                f"(it reads {', '.join(sorted(reads))})"
            )
    return parsed


def training_ranges(version: str, meta: dict) -> tuple[str, dict[str, tuple[float, float]]]:
    """The model file whose training ranges flag a scenario's inputs (the EF model, or the direct LE
    model of a direct baseline) and {feature: (min, max)} from its ``feature_infos``."""
    model = "ef" if meta["constrained"] else "le_direct"
    features = [f["name"] for f in meta["features"]]
    text = (registry.version_dir(version) / f"{model}.txt").read_text()
    return model, scenarios.training_ranges(text, features)


def interval_attrs(meta: dict) -> dict[str, dict]:
    """Variable → attributes of the interval bounds (``le_q05, le_q95, h_q05, h_q95`` for 90 %) a
    model's products carry; none for a model trained before intervals were calibrated."""
    info = meta.get("intervals")
    if not info:
        return {}
    level = round(100 * info["level"])
    out = {}
    for var, what in (("le", "latent"), ("h", "sensible")):
        for side, name in zip(("lower", "upper"), info["bounds"], strict=True):
            out[f"{var}_{name}"] = {
                "units": "W m-2",
                "long_name": f"{what} heat flux, {side} bound ({name[1:]} %) of the {level} % prediction "
                "interval (emulated, positive upward)",
                "interval_level": float(info["level"]),
                "interval_method": f"{info['method']}; calibrated on the {info['calibration_split']} split",
            }
    return out


def _interval(meta: dict, used: dict) -> dict | None:
    """The quantiles that bound this prediction (those of its A source) and the bound variables."""
    names = list(interval_attrs(meta))
    if not names:
        return None
    quantiles = meta["intervals"]["quantiles"]
    source = intervals.prediction_source(quantiles, used.get("radiation"))
    return {"names": names, "quantiles": quantiles[source], "a_source": source}


def _check_request(bbox, start, end) -> tuple[tuple[float, float, float, float], pd.Timestamp, pd.Timestamp]:
    try:
        w, s, e, n = (float(v) for v in bbox)
        t0, t1 = pd.Timestamp(start), pd.Timestamp(end)
    except (TypeError, ValueError) as exc:
        raise InputError(f"bad prediction request bbox={bbox!r} start={start!r} end={end!r}: {exc}") from exc
    if not (w < e and s < n):
        raise InputError(f"bad bbox {tuple(bbox)}: need west < east and south < north")
    if t1 < t0:
        raise InputError(f"bad period {start} .. {end}: end before start")
    return (w, s, e, n), t0, t1


def _covers(info: api.ProductInfo, bbox, t0, t1, role: str, *, whole_period: bool = True) -> None:
    w, s, e, n = bbox
    pw, ps, pe, pn = info.bbox
    if w < pw or e > pe or s < ps or n > pn:
        raise InputError(
            f"bbox {bbox} is outside the {role} product {info.name!r} (bbox W,S,E,N = {info.bbox})"
        )
    if info.n_time > 1:
        p0, p1 = pd.Timestamp(info.time_start), pd.Timestamp(info.time_end)
        outside = (
            (t0 < p0 or t1 > p1)
            if whole_period
            else (t1 < p0 - pd.Timedelta(days=31) or t0 > p1 + pd.Timedelta(days=31))
        )
        if outside:
            raise InputError(
                f"period {t0.date()} .. {t1.date()} is outside the {role} product {info.name!r} "
                f"({info.time_start} .. {info.time_end})"
            )


lacks_error = F.lacks_error  # the model needs X from a product that lacks it (names the ones that have it)


def model_feature_source(meta: dict) -> dict:
    """The model's feature source: ``{"kind": "tower", ...}`` (tower meteorology; also versions
    trained before feature sources were recorded) or ``{"kind": "gridded", "feature_set": ...}``."""
    return meta.get("feature_source") or {"kind": "tower"}


def resolve_inputs(meta: dict, inputs: dict | None = None, feature_set=None) -> F.FeatureSet:
    """The products that give each cube variable the model needs (see :class:`models.features.FeatureSet`).

    Precedence: ``feature_set`` (a YAML path or the dict of :func:`models.features.read_feature_set_file`)
    ``variables``; then the products given per role (``inputs``: role → product, comma-separated
    products or a list, each variable from the first that has it; ``None`` for a role: none); then the
    feature set's roles; then the model's own: a gridded model the products it was trained on, a
    tower model :data:`DEFAULT_INPUTS`. The grid is the feature set's ``grid``, else the first forcing
    product (a gridded model: its training grid unless another forcing is given).
    """
    features = [f["name"] for f in meta["features"]]
    source = model_feature_source(meta)
    if feature_set is None:
        spec = {"grid": None, "roles": {}, "variables": {}}
    elif isinstance(feature_set, dict):
        spec = {"grid": feature_set.get("grid"), "roles": feature_set.get("roles") or {},
                "variables": feature_set.get("variables") or {}}  # fmt: skip
    else:
        spec = F.read_feature_set_file(feature_set)
    roles = {**{r: F.product_list(v) for r, v in spec["roles"].items()}}
    roles.update({r: F.product_list(v) for r, v in (inputs or {}).items()})
    variables = dict(spec["variables"])
    grid = spec["grid"]
    if source["kind"] == "gridded":
        trained = F.FeatureSet.from_dict(source["feature_set"])
        for v, product in trained.variables.items():
            if v not in variables and trained.roles.get(v, "forcing") not in roles:
                variables[v] = product
        if grid is None and "forcing" not in roles:
            grid = trained.grid
        if "radiation" not in roles and source.get("radiation"):
            roles["radiation"] = [source["radiation"]]
    else:
        for role, product in DEFAULT_INPUTS.items():
            roles.setdefault(role, F.product_list(product))
    radiation = bool(roles.get("radiation")) or "rn" in variables
    needs = F.cube_variables(features, radiation=radiation)
    fs, _ = F.resolve_feature_set(
        needs, roles, variables=variables, climatology=F.climatology_variables(features), grid=grid
    )
    return fs


def input_mismatches(meta: dict, fs: F.FeatureSet) -> list[str]:
    """Why the inputs do not match what the model was trained on: another time step than the grid
    product's, or (gridded models) other products for its variables or another grid. Empty if none."""
    problems = []
    trained_step = meta["training_data"].get("time_step")
    applied = api.product_info(fs.grid).time_step
    if trained_step and applied and trained_step != applied:
        problems.append(
            f"the model was trained on {trained_step} data but the grid product {fs.grid!r} is {applied}: "
            f"fluxes respond non-linearly to their drivers, so {applied} predictions from a {trained_step} "
            "model carry a scale error the cross-validation does not measure"
        )
    source = model_feature_source(meta)
    if source["kind"] == "gridded":
        trained = F.FeatureSet.from_dict(source["feature_set"])
        other = [
            f"{v} from {fs.variables.get(v)!r} (trained: {p!r})"
            for v, p in trained.variables.items()
            if fs.variables.get(v) != p and v not in F.RADIATION_VARIABLES  # A: any radiation product
        ]
        if trained.grid != fs.grid:
            other.insert(0, f"the grid of {fs.grid!r} (trained: {trained.grid!r})")
        if other:
            problems.append(
                "the model was trained on gridded features of "
                f"{', '.join(trained.products())} and learnt their biases, but these inputs take "
                + ", ".join(other)
            )
    return problems


def feature_source_note(meta: dict, fs: F.FeatureSet) -> str | None:
    """A note for a tower-meteorology model applied to gridded inputs (what every tower model does)."""
    if model_feature_source(meta)["kind"] != "tower":
        return None
    return (
        "model trained on tower meteorology, applied to the gridded products "
        f"{', '.join(fs.products())}: its cross-validated skill is measured with tower inputs; the "
        "products' own biases are not in it (train with --features gridded to measure that)"
    )


def open_inputs(meta: dict, bbox, t0, t1, fs: F.FeatureSet) -> tuple[xr.Dataset, dict]:
    """Lazy dataset of every cube variable the model needs on the grid product's pixels in ``bbox``
    (see :func:`models.features.open_cubes`), and the products used per role."""
    features = [f["name"] for f in meta["features"]]
    grid_info = api.product_info(fs.grid)
    _covers(grid_info, bbox, t0, t1, "forcing")
    for product in fs.products():
        if product != fs.grid:
            role = next((fs.roles[v] for v in fs.variables if fs.variables[v] == product and v in fs.roles),
                        "forcing")  # fmt: skip
            _covers(api.product_info(product), bbox, t0, t1, role, whole_period=False)
    grid = F.open_cubes(fs, features, bbox, t0, t1)
    used = fs.role_products()
    used.setdefault("forcing", fs.grid)
    return grid, used


def feature_rows(version: str, bbox, start, end, *, inputs=None, feature_set=None) -> pd.DataFrame:
    """The feature rows prediction builds for ``bbox`` and [start, end] (``time, lat, lon`` and the
    model's features; ``a`` = rn − g of a radiation product, else NaN: the A model fills it), from
    :func:`models.features.cube_rows`, the function training on gridded features uses too."""
    meta = registry.read_meta(version)
    bbox, t0, t1 = _check_request(bbox, start, end)
    fs = resolve_inputs(meta, inputs, feature_set)
    grid, _ = open_inputs(meta, bbox, t0, t1, fs)
    features = [f["name"] for f in meta["features"]]
    return F.cube_rows(grid, features, api.product_info(fs.grid).time_step)


_block_matrix = F.block_matrix  # rows of one prediction block (kept for bench/bench_predict.py)


def default_block(grid: xr.Dataset) -> tuple[int, int, int]:
    """Blocks aligned with the forcing's spatial chunks, as many days as fit in BLOCK_PIXEL_DAYS."""
    ct, cy, cx = (1, grid.sizes["lat"], grid.sizes["lon"])
    for v in grid.data_vars:
        if grid[v].chunks is not None and grid[v].ndim == 3:
            ct, cy, cx = (c[0] for c in grid[v].chunks)
            break
    cy, cx = min(cy, grid.sizes["lat"]), min(cx, grid.sizes["lon"])
    bt = max(ct, (BLOCK_PIXEL_DAYS // (cy * cx)) // ct * ct, 1)
    return min(bt, grid.sizes["time"]), cy, cx


def _request_name(version: str, bbox, t0, t1, used: dict, prefix: str = "emulator") -> str:
    key = json.dumps([version, list(bbox), str(t0.date()), str(t1.date()), used], sort_keys=True)
    return f"{prefix}-{version[:15].lower()}-{hashlib.sha256(key.encode()).hexdigest()[:8]}"


def check_new_name(name: str) -> None:
    """InputError unless ``name`` is a valid product name not yet in the catalog."""
    if not store.NAME_RE.match(name):
        raise InputError(f"bad product name {name!r}: use lower-case letters, digits, _ and -")
    if any(p.name == name for p in api.list_products()):
        raise InputError(f"product {name!r} already exists; choose another --name")


@dataclass
class _Request:
    """A checked prediction request: the model, its inputs opened lazily, the blocks."""

    meta: dict
    fs: F.FeatureSet
    grid: xr.Dataset
    used: dict
    problems: list[str]
    bbox: tuple
    t0: pd.Timestamp
    t1: pd.Timestamp
    time_step: str
    spec: BlockSpec
    block: tuple[int, int, int]
    blocks: list

    @property
    def pixel_days(self) -> int:
        return self.grid.sizes["time"] * self.grid.sizes["lat"] * self.grid.sizes["lon"]

    def synthetic(self) -> bool:
        """Whether anything behind the product is synthetic: the model's training data or an input."""
        return bool(self.meta["training_data"].get("synthetic")) or any(
            api.product_info(p).synthetic for p in self.fs.products()
        )

    def grid_attrs(self) -> dict:
        """The grid product's own steps (a one-column or one-row product cannot infer them)."""
        gi = api.product_info(self.fs.grid).levels[0]
        return {
            "resolution_lon": float(gi["resolution"]),
            "resolution_lat": float(gi.get("resolution_lat", gi["resolution"])),
        }

    def block_args(self, b: block_tasks.Block) -> tuple:
        """The arguments of :func:`predict_block` after ``forests`` and ``arrays`` for block ``b``."""
        r = b.region
        times, lats = self.grid.time.values[r["time"]], self.grid.lat.values[r["lat"]].astype(float)
        return (self.spec, times, lats, self.grid.lon.values[r["lon"]].size)


def _prepare(
    version, bbox, start, end, inputs, feature_set, allow_mismatch, block, n_jobs, scenario=None
) -> _Request:
    """Check a request and open its inputs (no heavy reading); InputError for anything wrong."""
    meta = registry.read_meta(version)
    bbox, t0, t1 = _check_request(bbox, start, end)
    perturbations = scenario_request(meta, scenario)
    ranges = training_ranges(version, meta)[1] if perturbations else None
    fs = resolve_inputs(meta, inputs, feature_set)
    problems = input_mismatches(meta, fs)
    if problems and not allow_mismatch:
        raise InputError(
            f"model {version} does not match these inputs: {'; '.join(problems)}. Predict with the "
            "products and time step it was trained on, or pass --allow-mismatch to predict anyway"
        )
    features = [f["name"] for f in meta["features"]]
    a_features = list(meta["a_features"])
    constrained = bool(meta["constrained"])
    w, s, e, n = bbox
    extent = api.open_product(fs.grid).sel(lat=slice(n, s), lon=slice(w, e), time=slice(t0, t1))
    size = extent.sizes["time"] * extent.sizes["lat"] * extent.sizes["lon"]
    if size > MAX_PIXEL_DAYS:
        raise InputError(f"request of {size:,} pixel-days exceeds the limit of {MAX_PIXEL_DAYS:,}")
    grid, used = open_inputs(meta, bbox, t0, t1, fs)
    unread = [str(p) for p in perturbations if p.variable not in grid.data_vars]
    if unread:  # e.g. ssm when no soil-moisture product is used
        raise InputError(f"scenario items {unread} perturb variables none of the inputs {used} gives")
    nt, ny, nx = grid.sizes["time"], grid.sizes["lat"], grid.sizes["lon"]
    time_step = api.product_info(fs.grid).time_step
    # every variable whose absence makes a pixel unpredictable (ssm may be missing)
    required = [F.spec(f).cube_variable for f in F.required_features(features)]

    bt, by, bx = block or default_block(grid)
    block = (bt, by, bx)
    blocks = [
        block_tasks.Block(n, {"time": slice(i, i + bt), "lat": slice(j, j + by), "lon": slice(k, k + bx)})
        for n, (i, j, k) in enumerate(cartesian(range(0, nt, bt), range(0, ny, by), range(0, nx, bx)))
    ]
    spec = BlockSpec(
        features, a_features, constrained, float(meta["a_min"]), required, time_step, n_jobs,
        _interval(meta, used), perturbations, ranges,
    )
    return _Request(meta, fs, grid, used, problems, bbox, t0, t1, time_step, spec, block, blocks)


@dataclass(frozen=True)
class RunPlan:
    """What a prediction request amounts to, before running it (``fluxlens predict --dry-run``)."""

    pixel_days: int
    shape: tuple[int, int, int]  # time, lat, lon
    block: tuple[int, int, int]
    n_blocks: int
    bytes_written: int  # uncompressed float32: scratch store, pyramid levels, series copy
    measured_block_s: float | None  # one block read, predicted and written here
    measured_pixel_days: int | None  # the pixel-days of that block
    n_jobs: int

    @property
    def pixel_days_per_core_s(self) -> float | None:
        """Measured throughput per core (read + predict + write of one block over ``n_jobs`` threads)."""
        if not self.measured_block_s:
            return None
        return self.measured_pixel_days / (self.measured_block_s * self.n_jobs)

    def estimated_s(self, cores: int) -> float | None:
        """Blocks' time on ``cores`` cores at the measured throughput (the final catalog write,
        pyramid and series copy, comes on top: see ``bench/bench_predict.py``)."""
        rate = self.pixel_days_per_core_s
        return None if rate is None else self.pixel_days / (rate * cores)

    def lines(self, cores: tuple[int, ...] = (2, 32, 512)) -> list[str]:
        out = [
            f"pixel-days: {self.pixel_days:,} (time × lat × lon = {' × '.join(map(str, self.shape))})",
            f"blocks: {self.n_blocks:,} of {' × '.join(map(str, self.block))}",
            "bytes written (uncompressed float32, scratch + pyramid + series copy): "
            + _size(self.bytes_written),
        ]
        if self.measured_block_s is None:
            out.append("time: not measured (no block with valid pixels)")
            return out
        out.append(
            f"measured here on one block: {self.measured_pixel_days:,} pixel-days in "
            f"{self.measured_block_s:.2f} s on {self.n_jobs} threads = "
            f"{self.pixel_days_per_core_s:,.0f} pixel-days/s per core"
        )
        out += [f"estimated time on {c} cores: {_duration(self.estimated_s(c))}" for c in cores]
        return out


def _size(n: int) -> str:
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6)):
        if n >= scale:
            return f"{n / scale:,.1f} {unit}"
    return f"{n / 1e3:,.1f} kB"


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:,.1f} h"


def plan_region(
    version: str,
    bbox,
    start,
    end,
    *,
    inputs: dict | None = None,
    feature_set=None,
    allow_mismatch: bool = False,
    block: tuple[int, int, int] | None = None,
    n_jobs: int = 2,
    measure: bool = True,
    scenario=None,
) -> RunPlan:
    """The size of a :func:`predict_region` request and, with ``measure``, its time estimated from
    one block read, predicted and written here (the block nearest the middle with valid pixels).
    Checks the request as :func:`predict_region` does; registers and keeps nothing."""
    req = _prepare(version, bbox, start, end, inputs, feature_set, allow_mismatch, block, n_jobs, scenario)
    nt, ny, nx = (req.grid.sizes[d] for d in ("time", "lat", "lon"))
    level_px = sum(a * b for a, b in level_shapes(ny, nx))
    per_step = 4 * len(req.spec.outputs())
    written = per_step * nt * (ny * nx + level_px + (ny * nx if store.needs_series(ny, nx, nt) else 0))
    measured_s = measured_n = None
    if measure and req.blocks:
        forests = _forests(version, req.spec.constrained, radiation="rn" in req.grid)
        order = sorted(req.blocks, key=lambda b: abs(b.index - len(req.blocks) // 2))
        scratch = settings.data_dir() / "tmp"
        scratch.mkdir(parents=True, exist_ok=True)
        for b in order[:8]:
            t = time.perf_counter()
            sub = req.grid.isel(b.region)
            names = list(sub.data_vars)
            arrays = dict(zip(names, dask.compute(*[sub[v].data for v in names]), strict=True))
            out = predict_block(forests, arrays, *req.block_args(b))
            if not np.isfinite(out["le"]).any():
                continue
            tmp = store.temp_dir(scratch, "dry-run")
            try:
                xr.Dataset({v: (("time", "lat", "lon"), a) for v, a in out.items()}).to_zarr(
                    tmp, mode="w", consolidated=False
                )
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
            measured_s, measured_n = time.perf_counter() - t, int(out["le"].size)
            break
    return RunPlan(
        nt * ny * nx, (nt, ny, nx), req.block, len(req.blocks), written, measured_s, measured_n, n_jobs
    )


def predict_region(
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
    scenario=None,
) -> str:
    """Predict LE, H, EF over ``bbox`` (W, S, E, N) and [start, end]; returns the product name.

    ``inputs``: products per role (``forcing``, ``static``, ``ssm``, ``radiation``; comma-separated
    or a list: each variable from the first that has it) and ``feature_set`` (a feature-set YAML or
    its dict: product per variable), resolved by :func:`resolve_inputs`; default the model's own
    (a gridded model: the products it was trained on; a tower model: :data:`DEFAULT_INPUTS`; no
    radiation product: A from the emulator's A model). Every variable is put on the grid product's
    pixels by nearest source cell (:data:`models.features.REGRIDDING`). A model trained on another
    time step than the grid product's, or (gridded) on other products, is refused with the reason
    (:func:`input_mismatches`) unless ``allow_mismatch``; then the reason goes into the provenance.
    Unknown version, bbox/period outside the inputs, or too large a request → :class:`InputError`
    before any work; ``should_cancel()`` true between blocks → :class:`Cancelled`, nothing
    registered. ``block``: (time, lat, lon) size of a prediction block; default :func:`default_block`.
    ``title``: the product's catalog title (default ``LE/H emulator <version>``).
    ``scenario``: perturbations of the inputs (``"ta+2K, precip*0.8"`` or a list of items, see
    :mod:`models.scenarios` and the module docstring), checked by :func:`scenario_request` before
    any work; the title gains ``scenario <items>`` and the product the range flags.
    """
    req = _prepare(version, bbox, start, end, inputs, feature_set, allow_mismatch, block, n_jobs, scenario)
    meta, fs, grid, used, problems = req.meta, req.fs, req.grid, req.used, req.problems
    bbox, t0, t1, time_step, spec = req.bbox, req.t0, req.t1, req.time_step, req.spec
    constrained = spec.constrained
    what_if = scenarios.text(spec.scenario)
    if spec.scenario:
        name = product_name or _request_name(version, bbox, t0, t1, {**used, "scenario": what_if}, "scenario")
    else:
        name = product_name or _request_name(version, bbox, t0, t1, used)
    title = title or f"LE/H emulator {version}"
    if spec.scenario and what_if not in title:
        title = f"{title}, scenario {what_if}"
    check_new_name(name)
    attrs = {**OUTPUT_ATTRS, **interval_attrs(meta)}
    provenance = {
        "model_version": version,
        "model": "constrained (LE = EF·A, H = A − LE; direct LE where A < a_min)"
        if constrained
        else "direct LE/H baseline",
        "model_targets": meta["targets"]["set"],
        "inputs": used,
        "a_source": f"rn - g of {used['radiation']}" if "radiation" in used else "emulator A model",
        "intervals": (
            {
                "variables": spec.interval["names"],
                "level": meta["intervals"]["level"],
                "calibrated_on_a_source": spec.interval["a_source"],
                "calibration_split": meta["intervals"]["calibration_split"],
            }
            if spec.interval
            else "none: the model was trained before prediction intervals were calibrated"
        ),
        "bbox": list(bbox),
        "period": [str(t0.date()), str(t1.date())],
        "training_data_fingerprint": meta["training_data"]["fingerprint_sha256"],
    }
    provenance["feature_set"] = fs.to_dict()
    provenance["model_feature_source"] = model_feature_source(meta)["kind"]
    note = time_step_note(meta["training_data"].get("time_step"), time_step)
    if note:
        provenance["time_step_note"] = note
    if problems:
        provenance["mismatch_allowed"] = problems
    source_note = feature_source_note(meta, fs)
    if source_note:
        provenance["feature_source_note"] = source_note
    summarise = None
    if spec.scenario:
        attrs.update(SCENARIO_ATTRS)
        provenance["scenario"] = scenario_provenance(version, meta, spec, "radiation" in used)
        summarise = _scenario_counts
    try:
        run_into_product(
            grid, req.blocks, req.block, predict_block,
            _forests(version, constrained, radiation="rn" in grid), req.block_args,
            {v: Output(attrs[v]) for v in spec.outputs()},
            name=name, title=title, attrs={"time_step": time_step, **req.grid_attrs()},
            provenance=provenance, synthetic=req.synthetic(), progress=progress, should_cancel=should_cancel,
            summarise=summarise,
        )  # fmt: skip
    except block_tasks.Cancelled as exc:
        raise Cancelled(f"prediction {name!r} {exc}") from None
    return name


def scenario_provenance(version: str, meta: dict, spec: BlockSpec, radiation: bool) -> dict:
    """What a scenario product records of its scenario (the counts are added when it is written)."""
    model, _ = training_ranges(version, meta)
    return {
        "text": scenarios.text(spec.scenario),
        "perturbations": [{"variable": p.variable, "op": p.op, "value": p.value} for p in spec.scenario],
        "method": "input cubes perturbed in every block before its features are built; ta changes carry "
        "vpd at constant relative humidity, VPD' = VPD e_s(T') / e_s(T), e_s(T) = 0.6108 "
        "exp(17.27 T / (T + 237.3)) kPa (FAO-56 eq. 11); climatology features unchanged; physical "
        "lower bounds kept",
        "a_under_scenario": "rn - g of the radiation product, not perturbed"
        if radiation
        else "the emulator's A model re-run on the perturbed inputs",
        "training_ranges_of": f"{model}.txt feature_infos (LightGBM's record of its training data)",
        "training_ranges": {f: list(r) for f, r in spec.ranges.items()},
        "baseline": "the same request without the scenario (scenario minus baseline: "
        "models.scenarios.difference)",
    }


def _scenario_counts(result: xr.Dataset) -> dict:
    """Pixel-days predicted, outside the training range under the scenario, and pushed outside by it."""
    outside, pushed = result["scenario_outside_range"], result["scenario_pushed_outside"]
    n, n_out, n_pushed = dask.compute(outside.notnull().sum(), (outside > 0).sum(), (pushed > 0).sum())
    return {
        "scenario_counts": {
            "pixel_days_predicted": int(n),
            "pixel_days_outside_range": int(n_out),
            "pixel_days_pushed_outside": int(n_pushed),
        }
    }


def time_step_note(trained: str | None, applied: str | None) -> str | None:
    """A warning when a model trained on one time step (e.g. monthly means) predicts another (days)."""
    if not trained or not applied or trained == applied:
        return None
    return (
        f"model trained on {trained} data, applied to {applied} inputs: fluxes respond non-linearly to "
        f"their drivers, so {applied} predictions carry a scale error the cross-validation does not measure"
    )


def _valid_rows(x: np.ndarray, flat: np.ndarray) -> np.ndarray:
    """The rows of ``x`` where ``flat`` is true (no copy when all are)."""
    return x if flat.all() else x[flat]


@dataclass(frozen=True)
class BlockSpec:
    """What every block of one prediction shares (sent with each block task)."""

    features: list[str]
    a_features: list[str]
    constrained: bool
    a_min: float
    required: list[str]  # cube variables whose absence makes a pixel unpredictable
    time_step: str
    n_jobs: int
    interval: dict | None = None  # names of the bound variables and the quantiles (models.intervals)
    scenario: tuple = ()  # models.scenarios.Perturbation applied to the input cubes
    ranges: dict | None = None  # feature -> (min, max) training range, flagged under a scenario

    def outputs(self) -> list[str]:
        """The variables a block writes: le, h, ef, the interval bounds and the scenario's flags."""
        return (
            list(OUTPUT_ATTRS)
            + (self.interval["names"] if self.interval else [])
            + (list(SCENARIO_ATTRS) if self.scenario else [])
        )


def _forests(version: str, constrained: bool, *, radiation: bool) -> dict:
    """The packed boosters a prediction of ``version`` uses, by model name."""
    names = ["ef", "le_direct"] if constrained else ["le_direct", "h_direct"]
    if not radiation:
        names.append("a")
    return {m: compiled.compiled_model(version, m) for m in names}


def block_features(forests: dict, arrays: dict, spec: BlockSpec, times, lats, nx: int):
    """The rows of one block of ``times`` × ``lats`` × ``nx`` pixels that can be predicted: ``(shape,
    flat, x, a)`` with ``flat`` the mask of those pixel-days (C order), ``x`` their feature matrix and
    ``a`` their available energy (rn − g of a radiation product, else the A model's); ``x`` and ``a``
    are None when no pixel-day has every required input."""
    nt, ny = len(times), len(lats)
    shape = (nt, ny, nx)
    full = {k: np.broadcast_to(np.asarray(v, dtype=np.float64), shape) for k, v in arrays.items()}
    valid = np.ones(shape, dtype=bool)
    for v in spec.required:
        valid &= np.isfinite(full[v])
    if "rn" in full:
        a = full["rn"] - full["g"]
        valid &= np.isfinite(a)
    else:
        a = None
    flat = valid.reshape(-1)
    if not flat.any():
        return shape, flat, None, None
    if a is None:
        xa = _valid_rows(F.block_matrix(full, spec.a_features, times, lats, spec.time_step), flat)
        a_flat = forests["a"].predict(xa, n_jobs=spec.n_jobs)
    else:
        a_flat = a.reshape(-1)[flat]
    full["a"] = np.zeros(shape)
    x = _valid_rows(F.block_matrix(full, spec.features, times, lats, spec.time_step), flat)
    if "a" in spec.features:
        x[:, spec.features.index("a")] = a_flat
    return shape, flat, x, a_flat


def _range_flags(out: dict, spec: BlockSpec, flat: np.ndarray, x: np.ndarray, baseline: tuple) -> None:
    """Fill ``scenario_outside_range`` and ``scenario_pushed_outside`` (flat arrays of the block) from
    the scenario's feature rows ``x`` (the pixel-days ``flat``) and the baseline's ``block_features``."""
    outside = scenarios.outside_matrix(x, spec.features, spec.ranges)
    before = np.zeros((flat.size, len(spec.features)), dtype=bool)
    _, flat0, x0, _ = baseline
    if x0 is not None:
        before[flat0] = scenarios.outside_matrix(x0, spec.features, spec.ranges)
    out["scenario_outside_range"][flat] = outside.sum(axis=1)
    out["scenario_pushed_outside"][flat] = (outside & ~before[flat]).sum(axis=1)


def predict_block(
    forests: dict, arrays: dict, spec: BlockSpec, times, lats, nx: int
) -> dict[str, np.ndarray]:
    """le, h, ef float32 arrays of one block of ``times`` × ``lats`` × ``nx`` pixels (NaN where a
    required input is missing) from its input ``arrays`` (cube variables broadcastable to
    (time, lat, lon)) and the packed ``forests``; and the interval bounds of ``spec.interval``
    (:func:`models.intervals.bounds`: LE lower, LE upper, H lower, H upper). With ``spec.scenario``
    the arrays are perturbed first (:func:`models.scenarios.apply`) and the range flags written
    (:data:`SCENARIO_ATTRS`: features outside ``spec.ranges`` with the perturbed inputs, and those of
    them inside with the baseline inputs, whose features are built for that alone)."""
    baseline = None
    if spec.scenario:
        baseline = block_features(forests, arrays, spec, times, lats, nx)
        arrays = scenarios.apply(arrays, spec.scenario)
    shape, flat, x, a_flat = block_features(forests, arrays, spec, times, lats, nx)
    out = {v: np.full(flat.size, np.nan, dtype=np.float32) for v in spec.outputs()}
    if baseline is not None and x is not None:
        _range_flags(out, spec, flat, x, baseline)
    n_jobs = spec.n_jobs
    if x is not None:
        if spec.constrained:
            ef = forests["ef"].predict(x, n_jobs=n_jobs)
            small = ~(a_flat >= spec.a_min)
            le_direct = np.full(len(a_flat), np.nan)
            if small.any():
                le_direct[small] = forests["le_direct"].predict(x[small], n_jobs=n_jobs)
            le, h, ef = constrained_fluxes(ef, a_flat, le_direct, a_min=spec.a_min)
        else:
            le = forests["le_direct"].predict(x, n_jobs=n_jobs)
            h = forests["h_direct"].predict(x, n_jobs=n_jobs)
            with np.errstate(invalid="ignore", divide="ignore"):
                ef = le / (le + h)
        out["le"][flat], out["h"][flat], out["ef"][flat] = le, h, ef
        if spec.interval:
            model = "constrained" if spec.constrained else "direct"
            b = intervals.bounds(le, h, ef, a_flat, spec.interval["quantiles"], model=model, a_min=spec.a_min)
            for name, key in zip(spec.interval["names"], ("le_lo", "le_hi", "h_lo", "h_hi"), strict=True):
                out[name][flat] = b[key]
    return {v: arr.reshape(shape) for v, arr in out.items()}
