"""Regional LE/H prediction: feature cubes from the catalog → emulator → a new catalog product.

The feature cubes are read lazily through :mod:`catalog.api` (forcing: ``sw_in, lw_in, ta, vpd,
precip, ws, lai, ndvi``; static: ``elevation, igbp``; soil moisture: ``ssm``; optionally a radiation
product with ``rn`` and ``g``), aligned on the forcing grid, and predicted block by block (Dask reads
one block at a time, so memory is bounded by the block size) with the compiled models
(:mod:`models.compiled`). Blocks are written into a temporary Zarr store in the data directory, which
is then handed to :func:`catalog.store.write_product` (pyramid, atomic registration) and removed.

Outputs ``le``, ``h`` (W m-2, positive upward) and ``ef`` (1). With the constrained model
``le + h == a`` where ``a = rn − g`` comes from the radiation product if given, else from the
emulator's A model; where ``a`` is below the model's ``a_min`` LE comes from the direct model,
H = A − LE and ``ef`` is NaN (see :mod:`models.emulator`). Pixels where a forcing or static input
is missing (ocean, no data) are NaN; a missing ``ssm`` is routed by the trees as missing.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from datetime import UTC, datetime
from itertools import product as cartesian

import dask
import numpy as np
import pandas as pd
import xarray as xr

from catalog import api, settings, store
from catalog.errors import FluxLensError, InputError
from models import compiled, registry
from models import features as F
from models.emulator import constrained_fluxes

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


class Cancelled(FluxLensError):
    """The prediction was cancelled between two blocks; nothing was registered."""


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


def _covers(info: api.ProductInfo, bbox, t0, t1, role: str) -> None:
    w, s, e, n = bbox
    pw, ps, pe, pn = info.bbox
    if w < pw or e > pe or s < ps or n > pn:
        raise InputError(
            f"bbox {bbox} is outside the {role} product {info.name!r} (bbox W,S,E,N = {info.bbox})"
        )
    if info.n_time > 1 and (t0 < pd.Timestamp(info.time_start) or t1 > pd.Timestamp(info.time_end)):
        raise InputError(
            f"period {t0.date()} .. {t1.date()} is outside the {role} product {info.name!r} "
            f"({info.time_start} .. {info.time_end})"
        )


def lacks_error(role: str, product: str, have, missing: list[str], products=None) -> InputError:
    """InputError: ``product`` (the ``role`` input) lacks ``missing``; names the products that have them.

    ``products``: the catalog's :class:`ProductInfo` list (default: :func:`catalog.api.list_products`).
    """
    products = api.list_products() if products is None else products
    needed = ", ".join(F.cube_variable_text(v) for v in missing)
    have = sorted(have)
    both = [p.name for p in products if p.name != product and set(missing) <= set(p.variables)]
    if both:
        hint = f"products that have {'them' if len(missing) > 1 else 'it'}: {', '.join(both)} (--{role})"
    else:
        per_var = []
        for v in missing:
            names = [q.name for q in products if v in q.variables]
            per_var.append(f"{v} in {', '.join(names) or 'no product'}")
        hint = f"no single product has {'them all' if len(missing) > 1 else 'it'} ({'; '.join(per_var)})"
        hint += "; ingest one and pass it with --" + role
    return InputError(
        f"the model needs {needed} from the {role} product, but {product!r} has only "
        f"{', '.join(have) or 'no variables'}; {hint}"
    )


def _roles(features: list[str]) -> dict[str, list[str]]:
    """Cube variables needed per role (``a`` handled separately)."""
    out: dict[str, list[str]] = {}
    for name in features:
        spec = F.spec(name)
        if name == "a" or spec.source in ("derived", "climatology"):
            continue
        out.setdefault(spec.cube_role, []).append(spec.cube_variable)
    return out


def _on_grid(ds: xr.Dataset, grid: xr.Dataset) -> xr.Dataset:
    """``ds`` on the lat/lon (and time) of ``grid``: nearest pixel within half a cell, else NaN."""
    res_lat = abs(float(grid.lat[1] - grid.lat[0])) if grid.sizes["lat"] > 1 else 1.0
    res_lon = abs(float(grid.lon[1] - grid.lon[0])) if grid.sizes["lon"] > 1 else 1.0
    ds = ds.reindex(lat=grid.lat, method="nearest", tolerance=res_lat / 2)
    ds = ds.reindex(lon=grid.lon, method="nearest", tolerance=res_lon / 2)
    if "time" in ds.dims:
        if ds.sizes["time"] == 1:
            ds = ds.isel(time=0, drop=True)
        else:
            ds = ds.reindex(time=grid.time)
    return ds


def open_inputs(meta: dict, bbox, t0, t1, inputs: dict) -> tuple[xr.Dataset, dict]:
    """Lazy dataset of every cube variable the model needs on the forcing grid, and the products used."""
    features = [f["name"] for f in meta["features"]]
    roles = _roles(features)
    roles.setdefault("forcing", [])
    used = {}
    w, s, e, n = bbox
    fname = inputs.get("forcing")
    if not fname:
        raise InputError("no forcing product given for the prediction")
    finfo = api.product_info(fname)
    _covers(finfo, bbox, t0, t1, "forcing")
    forcing = api.open_product(fname).sel(lat=slice(n, s), lon=slice(w, e), time=slice(t0, t1))
    missing = [v for v in roles["forcing"] if v not in forcing.data_vars]
    if missing:
        raise lacks_error("forcing", fname, forcing.data_vars, missing)
    if not all(forcing.sizes[d] for d in ("time", "lat", "lon")):
        raise InputError(f"bbox {bbox} and period {t0.date()} .. {t1.date()} hold no pixel of {fname!r}")
    used["forcing"] = fname
    parts = [forcing[roles["forcing"]]] if roles["forcing"] else []
    wanted = dict(roles)
    if inputs.get("radiation"):
        wanted["radiation"] = ["rn", "g"]
    for role, variables in wanted.items():
        if role == "forcing":
            continue
        name = inputs.get(role)
        if not name:
            raise InputError(f"the model needs {variables} from a {role!r} product; none given")
        info = api.product_info(name)
        _covers(info, bbox, t0, t1, role)
        ds = api.open_product(name)
        missing = [v for v in variables if v not in ds.data_vars]
        if missing:
            raise lacks_error(role, name, ds.data_vars, missing)
        parts.append(_on_grid(ds[variables], forcing))
        used[role] = name
    grid = xr.merge(parts, compat="override", join="override") if parts else forcing[[]]
    grid = grid.assign_coords(time=forcing.time, lat=forcing.lat, lon=forcing.lon)
    clim = [f for f in features if F.spec(f).source == "climatology"]
    if clim:
        grid = grid.assign(record_climatology(fname, bbox, clim))
    return grid, used


def record_climatology(forcing: str, bbox, names: list[str]) -> dict[str, xr.DataArray]:
    """Climatology features on the bbox's pixels: means over the forcing product's whole record."""
    w, s, e, n = bbox
    ds = api.open_product(forcing).sel(lat=slice(n, s), lon=slice(w, e))
    variables = sorted({F.CLIMATOLOGY[c] for c in F.CLIMATOLOGY if c in names or "dryness" in names})
    missing = [v for v in variables if v not in ds.data_vars]
    if missing:
        raise lacks_error("forcing", forcing, ds.data_vars, missing)
    means = dask.compute(*[ds[v].mean("time").data for v in variables])
    by_var = {
        v: xr.DataArray(
            np.asarray(m, dtype=np.float64), dims=("lat", "lon"), coords={"lat": ds.lat, "lon": ds.lon}
        )
        for v, m in zip(variables, means, strict=True)
    }
    out = {c: by_var[v] for c, v in F.CLIMATOLOGY.items() if c in names}
    if "dryness" in names:
        out["dryness"] = F.dryness(by_var["sw_in"], by_var["precip"])
    return out


def _block_matrix(block: dict[str, np.ndarray], features: list[str], times, lats, time_step: str):
    """Feature matrix (rows = time × lat × lon, C order) from one block of cube arrays."""
    nt, ny, nx = len(times), len(lats), next(iter(block.values())).shape[-1]
    x = np.empty((nt, ny, nx, len(features)))
    tt = pd.DatetimeIndex(times)
    for i, name in enumerate(features):
        spec = F.spec(name)
        if name == "lat":
            col = lats[None, :, None]
        elif name == "month":
            col = tt.month.to_numpy(dtype=float)[:, None, None]
        elif name == "sw_in_pot":
            if time_step == "month":
                pot = np.stack([F.sw_in_pot(lats, [t] * len(lats), time_step="month") for t in tt])
            else:
                pot = F.daily_sw_in_pot(lats[None, :], tt.day_of_year.to_numpy()[:, None])
            col = pot[:, :, None]
        else:
            col = block[name if name == "a" or spec.source == "climatology" else spec.cube_variable]
        x[..., i] = col  # broadcast in the assignment: one pass, no temporary
    return x.reshape(nt * ny * nx, len(features))


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


def _request_name(version: str, bbox, t0, t1, used: dict) -> str:
    key = json.dumps([version, list(bbox), str(t0.date()), str(t1.date()), used], sort_keys=True)
    return f"emulator-{version[:15].lower()}-{hashlib.sha256(key.encode()).hexdigest()[:8]}"


def predict_region(
    version: str,
    bbox,
    start,
    end,
    *,
    product_name: str | None = None,
    progress: Callable[[int, int], None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
    inputs: dict | None = None,
    block: tuple[int, int, int] | None = None,
    n_jobs: int = 2,
) -> str:
    """Predict LE, H, EF over ``bbox`` (W, S, E, N) and [start, end]; returns the product name.

    ``inputs``: products per role (``forcing``, ``static``, ``ssm``, ``radiation``), default
    :data:`DEFAULT_INPUTS` (no radiation product: A from the emulator's A model). Unknown version,
    bbox/period outside the inputs, or too large a request → :class:`InputError` before any work;
    ``should_cancel()`` true between blocks → :class:`Cancelled`, nothing registered. ``block``:
    (time, lat, lon) size of a prediction block; default :func:`default_block`.
    """
    meta = registry.read_meta(version)
    bbox, t0, t1 = _check_request(bbox, start, end)
    inputs = {**DEFAULT_INPUTS, **(inputs or {})}
    grid, used = open_inputs(meta, bbox, t0, t1, inputs)
    features = [f["name"] for f in meta["features"]]
    a_features = list(meta["a_features"])
    constrained = bool(meta["constrained"])
    nt, ny, nx = grid.sizes["time"], grid.sizes["lat"], grid.sizes["lon"]
    if nt * ny * nx > MAX_PIXEL_DAYS:
        raise InputError(f"request of {nt * ny * nx:,} pixel-days exceeds the limit of {MAX_PIXEL_DAYS:,}")
    time_step = api.product_info(used["forcing"]).time_step
    name = product_name or _request_name(version, bbox, t0, t1, used)
    if not store.NAME_RE.match(name):
        raise InputError(f"bad product name {name!r}: use lower-case letters, digits, _ and -")
    if any(p.name == name for p in api.list_products()):
        raise InputError(f"product {name!r} already exists; choose another --name")
    synthetic = bool(meta["training_data"].get("synthetic")) or any(
        api.product_info(p).synthetic for p in used.values()
    )
    # every variable whose absence makes a pixel unpredictable (ssm may be missing)
    required = [v for role, vs in _roles(features).items() if role != "ssm" for v in vs]

    bt, by, bx = block or default_block(grid)
    block = (bt, by, bx)
    plan = list(cartesian(range(0, nt, bt), range(0, ny, by), range(0, nx, bx)))
    scratch = settings.data_dir() / "tmp"
    scratch.mkdir(parents=True, exist_ok=True)
    store.clean_stale(scratch)  # left by a worker that was killed mid-job
    tmp = store.temp_dir(scratch, name)
    coords = {"time": grid.time.values, "lat": grid.lat.values, "lon": grid.lon.values}
    template = xr.Dataset(
        {
            v: (("time", "lat", "lon"), dask.array.full((nt, ny, nx), np.nan, dtype=np.float32, chunks=block))
            for v in OUTPUT_ATTRS
        },
        coords=coords,
    )
    try:
        template.to_zarr(tmp, compute=False, mode="w", consolidated=False)
        lats = grid.lat.values.astype(float)
        for done, (i, j, k) in enumerate(plan):
            if should_cancel is not None and should_cancel():
                raise Cancelled(f"prediction {name!r} cancelled after {done} of {len(plan)} blocks")
            sl = dict(time=slice(i, i + bt), lat=slice(j, j + by), lon=slice(k, k + bx))
            sub = grid.isel(sl)
            arrays = dict(
                zip(
                    sub.data_vars,
                    dask.compute(*[sub[v].data for v in sub.data_vars]),
                    strict=True,
                )
            )
            shape = (sub.sizes["time"], sub.sizes["lat"], sub.sizes["lon"])
            out = _predict_block(
                version,
                arrays,
                features,
                a_features,
                constrained,
                float(meta["a_min"]),
                required,
                sub.time.values,
                lats[j : j + by],
                shape,
                time_step,
                n_jobs,
            )
            xr.Dataset({v: (("time", "lat", "lon"), out[v]) for v in OUTPUT_ATTRS}).to_zarr(
                tmp, region=sl, consolidated=False
            )
            if progress is not None:
                progress(done + 1, len(plan))
        if should_cancel is not None and should_cancel():
            raise Cancelled(f"prediction {name!r} cancelled before registering")
        result = xr.open_zarr(tmp, consolidated=False)
        for v, attrs in OUTPUT_ATTRS.items():
            result[v].attrs = dict(attrs)
        result.attrs = {"title": f"LE/H emulator {version}", "time_step": time_step}
        provenance = {
            "model_version": version,
            "model": "constrained (LE = EF·A, H = A − LE; direct LE where A < a_min)"
            if constrained
            else "direct LE/H baseline",
            "model_targets": meta["targets"]["set"],
            "inputs": used,
            "a_source": f"rn - g of {used['radiation']}" if "radiation" in used else "emulator A model",
            "bbox": list(bbox),
            "period": [str(t0.date()), str(t1.date())],
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "training_data_fingerprint": meta["training_data"]["fingerprint_sha256"],
        }
        note = time_step_note(meta["training_data"].get("time_step"), time_step)
        if note:
            provenance["time_step_note"] = note
        store.write_product(
            result,
            name,
            provenance=provenance,
            synthetic=synthetic,
            mode="create",
            title=f"LE/H emulator {version}",
            kind="flux",
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return name


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


def _predict_block(
    version, arrays, features, a_features, constrained, a_min, required, times, lats, shape, time_step, n_jobs
) -> dict[str, np.ndarray]:
    """le, h, ef float32 arrays of one block (NaN where a required input is missing)."""
    nt, ny, nx = shape
    full = {k: np.broadcast_to(np.asarray(v, dtype=np.float64), shape) for k, v in arrays.items()}
    valid = np.ones(shape, dtype=bool)
    for v in required:
        valid &= np.isfinite(full[v])
    if "rn" in full:
        a = full["rn"] - full["g"]
        valid &= np.isfinite(a)
    else:
        a = None
    flat = valid.reshape(-1)
    out = {v: np.full(nt * ny * nx, np.nan, dtype=np.float32) for v in OUTPUT_ATTRS}
    if flat.any():
        if a is None:
            xa = _valid_rows(_block_matrix(full, a_features, times, lats, time_step), flat)
            a_flat = compiled.predict(version, "a", xa, n_jobs=n_jobs)
        else:
            a_flat = a.reshape(-1)[flat]
        full["a"] = np.zeros(shape)
        x = _valid_rows(_block_matrix(full, features, times, lats, time_step), flat)
        if "a" in features:
            x[:, features.index("a")] = a_flat
        if constrained:
            ef = compiled.predict(version, "ef", x, n_jobs=n_jobs)
            small = ~(a_flat >= a_min)
            le_direct = np.full(len(a_flat), np.nan)
            if small.any():
                le_direct[small] = compiled.predict(version, "le_direct", x[small], n_jobs=n_jobs)
            le, h, ef = constrained_fluxes(ef, a_flat, le_direct, a_min=a_min)
        else:
            le = compiled.predict(version, "le_direct", x, n_jobs=n_jobs)
            h = compiled.predict(version, "h_direct", x, n_jobs=n_jobs)
            with np.errstate(invalid="ignore", divide="ignore"):
                ef = le / (le + h)
        out["le"][flat], out["h"][flat], out["ef"][flat] = le, h, ef
    return {v: arr.reshape(shape) for v, arr in out.items()}
