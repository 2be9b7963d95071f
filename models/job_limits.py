"""Limits and timings for on-demand jobs, read from the environment.

| variable | default | meaning |
|---|---|---|
| ``FLUXLENS_JOBS_DB`` | ``<data_dir>/jobs.sqlite`` | path, ``sqlite:///…`` or ``postgresql://…`` |
| ``FLUXLENS_JOB_MAX_PIXEL_DAYS`` | 100 000 000 | largest re-prediction (lat × lon × days) |
| ``FLUXLENS_JOB_MAX_EXPLAIN_PIXEL_DAYS`` | 10 000 000 | largest explanation map (lat × lon × days) |
| ``FLUXLENS_JOB_MAX_ACTIVE`` | 3 | queued + running jobs one user may have |
| ``FLUXLENS_JOB_MAX_ATTEMPTS`` | 2 | runs of a job before a dead worker's job is failed |
| ``FLUXLENS_JOB_HEARTBEAT_S`` | 5 | seconds between a worker's heartbeats |
| ``FLUXLENS_JOB_STALE_S`` | 60 | heartbeat age after which a running job's worker is dead |
| ``FLUXLENS_JOB_BLOCK`` | predict's | re-prediction block ``time,lat,lon`` (step of progress, cancel) |

An explanation map costs about ten times a re-prediction per pixel-day (TreeSHAP instead of a
prediction) and writes 2 × features + 3 variables instead of 3 to 7, hence its smaller limit.
"""

from __future__ import annotations

import datetime as dt
import math
import secrets
from dataclasses import dataclass

from catalog import settings
from catalog.errors import InputError


def _env_block(name: str) -> tuple[int, int, int] | None:
    raw = settings.current().text(name)
    if not raw:
        return None
    try:
        block = tuple(int(v) for v in raw.split(","))
    except ValueError:
        block = ()
    if len(block) != 3 or min(block) <= 0:
        raise InputError(f"${name}={raw!r}: expected three positive integers time,lat,lon")
    return block


@dataclass(frozen=True)
class JobLimits:
    """What one job and one user may ask for, and how workers detect each other's death."""

    max_pixel_days: int = 100_000_000
    max_active_per_user: int = 3
    max_attempts: int = 2
    heartbeat_s: float = 5.0
    stale_s: float = 60.0
    block: tuple[int, int, int] | None = None
    max_explain_pixel_days: int = 10_000_000

    @classmethod
    def from_env(cls) -> JobLimits:
        env = settings.current()
        return cls(
            max_pixel_days=int(env.number("FLUXLENS_JOB_MAX_PIXEL_DAYS", cls.max_pixel_days)),
            max_active_per_user=int(env.number("FLUXLENS_JOB_MAX_ACTIVE", cls.max_active_per_user)),
            max_attempts=int(env.number("FLUXLENS_JOB_MAX_ATTEMPTS", cls.max_attempts)),
            heartbeat_s=float(env.number("FLUXLENS_JOB_HEARTBEAT_S", cls.heartbeat_s, float)),
            stale_s=float(env.number("FLUXLENS_JOB_STALE_S", cls.stale_s, float)),
            block=_env_block("FLUXLENS_JOB_BLOCK"),
            max_explain_pixel_days=int(
                env.number("FLUXLENS_JOB_MAX_EXPLAIN_PIXEL_DAYS", cls.max_explain_pixel_days)
            ),
        )


def _date(value, what: str, where: str) -> dt.date:
    try:
        return dt.date.fromisoformat(str(value)[:10])
    except ValueError:
        raise InputError(f"{where}: {what} {value!r} is not a date (YYYY-MM-DD)") from None


def _period(request: dict, where: str, *, required: bool) -> tuple[dt.date | None, dt.date | None]:
    start, end = request.get("start"), request.get("end")
    if required and (not start or not end):
        raise InputError(f"{where}: a period (start and end) is required")
    start = _date(start, "start", where) if start else None
    end = _date(end, "end", where) if end else None
    if start and end and start > end:
        raise InputError(f"{where}: start {start} is after end {end}")
    return start, end


def _bbox(value, where: str) -> tuple[float, float, float, float]:
    try:
        w, s, e, n = (float(v) for v in value)
    except (TypeError, ValueError):
        raise InputError(f"{where}: box {value!r} must be four numbers W, S, E, N (degrees)") from None
    if not all(math.isfinite(v) for v in (w, s, e, n)):
        raise InputError(f"{where}: box {value!r} has a non-finite coordinate")
    if not (-180 <= w < e <= 180 and -90 <= s < n <= 90):
        raise InputError(
            f"{where}: box W={w}, S={s}, E={e}, N={n} needs -180 ≤ W < E ≤ 180, -90 ≤ S < N ≤ 90"
        )
    return w, s, e, n


def validate(kind: str, request: dict, limits: JobLimits) -> dict:
    """Check a job request before it is queued; returns it normalised (InputError if refused)."""
    if not isinstance(request, dict):
        raise InputError(f"{kind} request must be a mapping, not {type(request).__name__}")
    if kind == "repredict":
        return _validate_repredict(request, limits)
    if kind == "retrain":
        return _validate_retrain(request)
    if kind == "explain":
        return _validate_explain(request, limits)
    raise InputError(f"unknown job kind {kind!r}; known: repredict, retrain, explain")


RETRAIN_TARGETS = ("corrected", "raw")
MAX_BOOST_ROUNDS = 2000


def default_sites_source() -> str:
    """The training sites of a retrain when none is named: the catalog's FLUXNET-like network
    (the demo world's ``fluxnet_demo``) if there is one, else the trainer's default."""
    from catalog import api
    from models.training import TrainSettings

    networks = api.list_networks()
    fluxnet = [n for n in networks if n.startswith("fluxnet")]
    return fluxnet[0] if fluxnet else TrainSettings.sites_source


def _validate_retrain(request: dict) -> dict:
    from catalog import api
    from models import features as F
    from models import training_table as T

    where = "retrain"
    unknown = set(request) - {
        "sites_source",
        "targets",
        "constraint",
        "features",
        "sites",
        "start",
        "end",
        "num_boost_round",
        "n_folds",
    }
    if unknown:
        raise InputError(f"{where}: unknown settings {sorted(unknown)}")
    source = request.get("sites_source") or default_sites_source()
    network = T.resolve_source(source)
    targets = request.get("targets", "corrected")
    if targets not in RETRAIN_TARGETS:
        raise InputError(f"{where}: targets must be one of {RETRAIN_TARGETS}, not {targets!r}")
    features = request.get("features") or None
    if features is not None:
        features = [str(f) for f in features]
        bad = [f for f in features if f not in F.FEATURES]
        if bad:
            raise InputError(f"{where}: unknown features {bad}; declared: {sorted(F.FEATURES)}")
    sites = request.get("sites") or None
    if sites is not None:
        sites = [str(s) for s in sites]
        known = set(api.sites(network)["site_id"].astype(str))
        bad = [s for s in sites if s not in known]
        if bad:
            raise InputError(f"{where}: sites {bad} are not in network {network!r}")
    start, end = _period(request, where, required=False)
    out = {
        "sites_source": source,
        "targets": targets,
        "constraint": bool(request.get("constraint", True)),
        "features": features,
        "sites": sites,
        "start": start.isoformat() if start else None,
        "end": end.isoformat() if end else None,
    }
    rounds = request.get("num_boost_round")
    if rounds is not None:
        if not (isinstance(rounds, int) and 1 <= rounds <= MAX_BOOST_ROUNDS):
            raise InputError(f"{where}: num_boost_round must be an integer in 1..{MAX_BOOST_ROUNDS}")
        out["num_boost_round"] = rounds
    folds = request.get("n_folds")
    if folds is not None:
        if not (isinstance(folds, int) and 2 <= folds <= 10):
            raise InputError(f"{where}: n_folds must be an integer in 2..10")
        out["n_folds"] = folds
    return out


def prediction_domain(version: str, inputs: dict | None = None) -> dict:
    """Where and when a model version can predict with ``inputs`` (products per role, see
    ``models.predict.resolve_inputs``), by default its own (a gridded model: the products it was
    trained on; a tower model: ``models.predict``'s default inputs): the intersection of the
    bounding boxes (outer edges) and time ranges of the products it reads (``bbox``, ``start``,
    ``end``), the grid product the prediction uses (``grid``: its ProductInfo) and why those inputs
    do not match the model (``mismatches``, e.g. another time step; empty if they do, else a
    re-prediction is refused). InputError for an unknown version."""
    from catalog import api
    from models import predict, registry

    meta = registry.read_meta(version)
    fs = predict.resolve_inputs(meta, inputs)  # default: the model's own (tower models: the default inputs)
    infos = [api.product_info(p) for p in fs.products()]
    timed = [i for i in infos if i.n_time > 1]
    return {
        "bbox": (
            max(i.bbox[0] for i in infos),
            max(i.bbox[1] for i in infos),
            min(i.bbox[2] for i in infos),
            min(i.bbox[3] for i in infos),
        ),
        "start": max(_date(i.time_start, "start", i.name) for i in timed),
        "end": min(_date(i.time_end, "end", i.name) for i in timed),
        "grid": api.product_info(fs.grid),
        "mismatches": predict.input_mismatches(meta, fs),
    }


def _centres_inside(lo: float, hi: float, edge0: float, res: float, n: int) -> int:
    """How many of the ``n`` cell centres ``edge0 + (k + ½)·res`` lie in [lo, hi]."""
    first = max(0, math.ceil((lo - edge0) / res - 0.5 - 1e-9))
    last = min(n - 1, math.floor((hi - edge0) / res - 0.5 + 1e-9))
    return max(0, last - first + 1)


INPUT_ROLES = ("forcing", "static", "ssm", "radiation")


def _inputs(value, where: str) -> dict | None:
    """``{role: "product[,product…]"}`` checked against the catalog, or None."""
    if not value:
        return None
    from catalog import api

    if not isinstance(value, dict) or set(value) - set(INPUT_ROLES):
        raise InputError(f"{where}: inputs must map roles {INPUT_ROLES} to products, got {value!r}")
    known = {p.name for p in api.list_products()}
    out = {}
    for role, products in value.items():
        names = [
            p.strip() for p in (products.split(",") if isinstance(products, str) else products) if p.strip()
        ]
        missing = [p for p in names if p not in known]
        if missing:
            raise InputError(f"{where}: {role} product(s) {missing} are not in the catalog")
        if names:
            out[role] = ",".join(names)
    return out or None


REGION_SETTINGS = {"version", "bbox", "start", "end", "product_name", "pixels", "inputs"}


def _validate_repredict(request: dict, limits: JobLimits) -> dict:
    """A re-prediction, optionally under a ``scenario`` (perturbation items, ``models.scenarios``)."""
    from models import predict, registry

    where = "re-prediction"
    unknown = set(request) - REGION_SETTINGS - {"scenario"}
    if unknown:
        raise InputError(f"{where}: unknown settings {sorted(unknown)}")
    scenario = ()
    if request.get("scenario"):
        meta = registry.read_meta(str(request.get("version") or "")) if request.get("version") else None
        if meta is None:
            raise InputError(f"{where}: choose a model version")
        try:
            scenario = predict.scenario_request(meta, request["scenario"])
        except InputError as exc:
            raise InputError(f"{where}: {exc}") from None
    prefix = "scenario" if scenario else "emulator"
    out = _validate_region(request, limits.max_pixel_days, where, prefix, "FLUXLENS_JOB_MAX_PIXEL_DAYS")
    if scenario:
        out["scenario"] = [str(p) for p in scenario]
    return out


def _validate_explain(request: dict, limits: JobLimits) -> dict:
    """An explanation map (``models.explain_map``) of a constrained model's EF."""
    from models import registry

    where = "explanation map"
    unknown = set(request) - REGION_SETTINGS
    if unknown:
        raise InputError(f"{where}: unknown settings {sorted(unknown)}")
    if request.get("version") and not registry.read_meta(str(request["version"]))["constrained"]:
        raise InputError(
            f"{where}: model {request['version']} is a direct LE/H model: it has no EF model to explain"
        )
    return _validate_region(
        request, limits.max_explain_pixel_days, where, "explain", "FLUXLENS_JOB_MAX_EXPLAIN_PIXEL_DAYS"
    )


def _validate_region(request: dict, max_pixel_days: int, where: str, prefix: str, limit_env: str) -> dict:
    """The model version, box, period, inputs and product name of a job over a region, checked
    against the model's data domain and ``max_pixel_days``."""
    from catalog import api
    from catalog.store import NAME_RE

    version = request.get("version")
    if not version:
        raise InputError(f"{where}: choose a model version")
    inputs = _inputs(request.get("inputs"), where)
    domain = prediction_domain(str(version), inputs)  # InputError naming the known versions
    if domain["mismatches"]:  # the worker would refuse it: say so now
        raise InputError(
            f"{where}: model {version} does not match its inputs: {'; '.join(domain['mismatches'])}"
        )
    w, s, e, n = _bbox(request.get("bbox"), where)
    dw, ds, de, dn = domain["bbox"]
    tol = 1e-9
    if w < dw - tol or s < ds - tol or e > de + tol or n > dn + tol:
        raise InputError(
            f"{where}: box W={w}, S={s}, E={e}, N={n} is not inside the data of model {version} "
            f"(W={dw}, S={ds}, E={de}, N={dn})"
        )
    start, end = _period(request, where, required=True)
    if start < domain["start"] or end > domain["end"]:
        raise InputError(
            f"{where}: period {start}..{end} is not inside the data of model {version} "
            f"({domain['start']}..{domain['end']})"
        )
    grid = domain["grid"]
    level0 = grid.levels[0]
    res = float(grid.resolution)
    n_lon = _centres_inside(w, e, grid.bbox[0], res, int(level0["n_lon"]))
    n_lat = _centres_inside(s, n, grid.bbox[1], res, int(level0["n_lat"]))
    if not n_lat or not n_lon:
        raise InputError(f"{where}: box W={w}, S={s}, E={e}, N={n} holds no pixel of the {res}° grid")
    n_days = (end - start).days + 1
    pixel_days = n_lat * n_lon * n_days
    if pixel_days > max_pixel_days:
        raise InputError(
            f"{where}: {n_lat} × {n_lon} pixels × {n_days} days = {pixel_days:,} pixel-days exceeds the "
            f"limit of {max_pixel_days:,} (${limit_env}); use a smaller box or period"
        )
    out = {"version": str(version), "bbox": [w, s, e, n], "start": start.isoformat(), "end": end.isoformat()}
    if inputs:
        out["inputs"] = inputs
    # A name fixed now (unique, random suffix) lets a retried job recognise its own finished product.
    name = (
        request.get("product_name") or ""
    ).strip() or f"{prefix}-{out['version'][:15].lower()}-{secrets.token_hex(4)}"
    if not NAME_RE.match(name):
        raise InputError(f"{where}: product name {name!r} must be lower-case letters, digits, _ or -")
    if name in {p.name for p in api.list_products()}:
        raise InputError(f"{where}: a product named {name!r} already exists")
    out["product_name"] = name
    out["pixels"] = [n_lat, n_lon, n_days]
    return out
