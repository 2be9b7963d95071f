"""Downloads: map as PNG, region and period as netCDF, time series as CSV (all in memory)."""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import PurePosixPath

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import xarray as xr  # noqa: E402
from matplotlib import colors as mcolors  # noqa: E402

from app import compute  # noqa: E402
from app.map_view import coastlines  # noqa: E402
from app.ui import redact_paths  # noqa: E402
from catalog.errors import InputError  # noqa: E402


def map_png(image: xr.DataArray, *, clim, cmap: str, title: str, label: str, cats=None) -> bytes:
    """PNG of a screen raster with coastlines, colorbar (``label``) and ``title``; the classes
    ``cats`` (:class:`app.categories.Categories`) one colour each, named on the bar."""
    if cats is not None:
        cmap, clim = mcolors.ListedColormap(cats.palette()), cats.clim
    lon, lat = image["lon"].values, image["lat"].values
    dx = float(lon[1] - lon[0]) if lon.size > 1 else 1.0
    dy = float(abs(lat[0] - lat[1])) if lat.size > 1 else 1.0
    extent = (lon.min() - dx / 2, lon.max() + dx / 2, lat.min() - dy / 2, lat.max() + dy / 2)
    fig, ax = plt.subplots(figsize=(10, 5.4), dpi=110)
    try:
        im = ax.imshow(
            np.asarray(image.values, dtype="float32"),
            extent=extent,
            origin="upper",
            cmap=cmap,
            vmin=clim[0],
            vmax=clim[1],
            interpolation="nearest",
            aspect="equal",
        )
        xs, ys = coastlines()
        for x, y in zip(xs, ys, strict=True):
            ax.plot(x, y, color="#333333", linewidth=0.6)
        ax.set_xlim(extent[0], extent[1])
        ax.set_ylim(extent[2], extent[3])
        ax.set_xlabel("longitude (°E)")
        ax.set_ylabel("latitude (°N)")
        ax.set_title(title, fontsize=10)
        bar = fig.colorbar(im, ax=ax, label=label, shrink=0.85)
        if cats is not None:
            bar.set_ticks(list(cats.values), labels=list(cats.names))
        buf = io.BytesIO()
        fig.savefig(buf, format="png", bbox_inches="tight")
    finally:
        plt.close(fig)
    return buf.getvalue()


def netcdf_bytes(ds: xr.Dataset, *, compress: bool = True) -> bytes:
    """A Dataset as netCDF-4 bytes (written to a temporary file, then read back); data variables
    deflated (zlib level 1) when ``compress``."""
    fd, path = tempfile.mkstemp(suffix=".nc")
    os.close(fd)
    try:
        out = ds.load().drop_encoding()
        encoding = (
            {v: {"zlib": True, "complevel": 1} for v in out.data_vars if out[v].ndim} if compress else {}
        )
        out.to_netcdf(path, engine="h5netcdf", encoding=encoding)
        with open(path, "rb") as f:
            return f.read()
    finally:
        os.unlink(path)


def csv_bytes(table: pd.DataFrame) -> bytes:
    """CSV (UTF-8, ISO dates) of a long time-series table."""
    out = table.copy()
    if "time" in out:
        out["time"] = pd.to_datetime(out["time"]).dt.strftime("%Y-%m-%d")
    return out.to_csv(index=False).encode()


# -- region + period as netCDF ------------------------------------------------------------------

EXPORT_MAX_BYTES = 100 * 2**20
"""Largest netCDF export (uncompressed values). The file is built in the server's memory and
sent to the browser base64-encoded inside one websocket message, so a few copies of it exist at
once; 100 MiB (26 million float32 values, e.g. 1000 × 1000 px of a 1 km product over 26 days)
keeps one export from starving a shared server. A native 1 km export of the whole full demo
region for July is 2000 × 2000 px × 31 days ≈ 473 MiB and is refused with its size."""

# Provenance entries that may be carried into an export (everything else may hold server paths).
_PROVENANCE_KEYS = (
    "description",
    "contents",
    "generator",
    "reader",
    "reader_version",
    "model_version",
    "model",
    "inputs",
    "period",
    "created",
    "training_data_fingerprint",
    "time_step_note",
)
_STORE_ATTRS = ("title", "source", "reader", "time_step", "Conventions")


@dataclass
class RegionExport:
    """What a region export holds: the request, and the subset's size at the chosen level."""

    product: str
    variables: list[str]
    level: int
    resolution: float
    bbox: tuple[float, float, float, float]  # requested (W, S, E, N)
    region: str  # "selected box" | "visible region"
    start: pd.Timestamp
    end: pd.Timestamp
    n_time: int
    n_lat: int
    n_lon: int

    @property
    def n_values(self) -> int:
        return self.n_time * self.n_lat * self.n_lon * len(self.variables)

    @property
    def n_bytes(self) -> int:
        return 4 * self.n_values  # float32

    def describe(self) -> str:
        return (
            f"{self.region} W {self.bbox[0]:g} S {self.bbox[1]:g} E {self.bbox[2]:g} N {self.bbox[3]:g}, "
            f"{self.start:%Y-%m-%d} … {self.end:%Y-%m-%d}: {self.n_lon:,} × {self.n_lat:,} px × "
            f"{self.n_time:,} time step(s) × {len(self.variables)} variable(s) at level {self.level} "
            f"({self.resolution:g}°) ≈ {human_bytes(self.n_bytes)}"
        )


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def check_box(bbox, what: str = "box") -> tuple[float, float, float, float]:
    """(W, S, E, N) as floats; InputError for a missing, non-finite, reversed or empty box."""
    if bbox is None:
        raise InputError(f"no {what}: draw a box or show a region on the map")
    try:
        w, s, e, n = (float(v) for v in bbox)
    except (TypeError, ValueError):
        raise InputError(f"the {what} {bbox!r} is not four numbers W, S, E, N") from None
    if not all(np.isfinite((w, s, e, n))):
        raise InputError(f"the {what} {bbox!r} has non-finite coordinates")
    if w > e or s > n:
        raise InputError(f"the {what} is reversed (W {w:g} > E {e:g} or S {s:g} > N {n:g}): draw it again")
    if w == e or s == n:
        raise InputError(f"the {what} is empty (zero width or height): draw a larger one")
    return w, s, e, n


def plan_region_export(info, ds: xr.Dataset, variables, bbox, start, end, level: int, *, region: str):
    """The subset of ``ds`` (pyramid ``level`` of product ``info``) over ``bbox`` (W, S, E, N) and
    [start, end], with its :class:`RegionExport`; InputError for a bad or empty box, a box or
    period outside the product, or an export above :data:`EXPORT_MAX_BYTES` (the message gives
    its size and the coarsest level that would fit)."""
    w, s, e, n = check_box(bbox, region)
    pw, ps, pe, pn = info.bbox
    if e <= pw or w >= pe or n <= ps or s >= pn:
        raise InputError(
            f"the {region} (W {w:g} S {s:g} E {e:g} N {n:g}) does not overlap {info.name} "
            f"(W {pw:g} S {ps:g} E {pe:g} N {pn:g})"
        )
    missing = [v for v in variables if v not in ds.data_vars]
    if missing:
        raise InputError(f"{info.name} has no variable(s) {', '.join(missing)}")
    sub = compute.visible_window(ds[list(variables)], (w, e), (s, n), pad=0)
    start, end = pd.Timestamp(start), pd.Timestamp(end)
    if "time" in sub.dims:
        sub = sub.sel(time=slice(start, end))
    plan = RegionExport(
        product=info.name,
        variables=list(variables),
        level=int(level),
        resolution=float(info.levels[int(level)]["resolution"]),
        bbox=(w, s, e, n),
        region=region,
        start=start,
        end=end,
        n_time=int(sub.sizes.get("time", 1)),
        n_lat=int(sub.sizes["lat"]),
        n_lon=int(sub.sizes["lon"]),
    )
    if plan.n_values == 0:
        raise InputError(
            f"nothing to export: {info.name} has no time step between {start:%Y-%m-%d} and {end:%Y-%m-%d} "
            f"(it covers {info.time_start} … {info.time_end})"
            if plan.n_time == 0
            else f"nothing to export: the {region} holds no cell of {info.name} at level {level}"
        )
    if plan.n_bytes > EXPORT_MAX_BYTES:
        raise InputError(
            f"export too large: {plan.describe()}, above the limit of "
            f"{human_bytes(EXPORT_MAX_BYTES)}. {_smaller(info, plan)}"
        )
    return sub, plan


def _smaller(info, plan: RegionExport) -> str:
    """Advice for an export above the limit: a coarser level that fits, if the product has one."""
    base = info.levels[plan.level]
    for lev in info.levels:
        if lev["level"] <= plan.level:
            continue
        scale = (lev["n_lat"] * lev["n_lon"]) / (base["n_lat"] * base["n_lon"])
        estimate = plan.n_bytes * scale
        if estimate <= EXPORT_MAX_BYTES:
            return (
                f"Draw a smaller box, shorten the period, or pick level {lev['level']} "
                f"({lev['resolution']:g}°, about {human_bytes(estimate)})."
            )
    return "Draw a smaller box or shorten the period."


def source_files(provenance: dict) -> list[dict]:
    """Every source file recorded in a product's provenance (its own and those of appends), as
    ``{"name": file name, "sha256": checksum}``; never the path where it was read."""
    found: list[dict] = []

    def walk(node):
        if isinstance(node, dict):
            for item in node.get("sources") or []:
                if isinstance(item, dict) and item.get("path"):
                    found.append(
                        {
                            "name": PurePosixPath(str(item["path"]).replace("\\", "/")).name,
                            "sha256": str(item.get("sha256") or ""),
                        }
                    )
                elif isinstance(item, str):
                    found.append({"name": PurePosixPath(item.replace("\\", "/")).name, "sha256": ""})
            for value in node.values():
                if isinstance(value, (dict, list)):
                    walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(provenance or {})
    return found


def region_attrs(info, plan: RegionExport, store_attrs: dict) -> dict:
    """Global attributes of a region export: what was exported (product, level, box, period),
    the product's provenance with source file names and sha256 checksums, no server paths."""
    attrs = {k: store_attrs[k] for k in _STORE_ATTRS if k in store_attrs}
    files = source_files(info.provenance)
    prov = {k: info.provenance[k] for k in _PROVENANCE_KEYS if k in (info.provenance or {})}
    attrs.update(
        product=info.name,
        product_title=info.title or info.name,
        synthetic=int(bool(info.synthetic)),
        variables=",".join(plan.variables),
        pyramid_level=int(plan.level),
        resolution_deg=float(plan.resolution),
        native_resolution=int(plan.level == 0),
        bbox_wsen=[round(v, 6) for v in plan.bbox],
        bbox_source=plan.region,
        period=f"{plan.start:%Y-%m-%d}/{plan.end:%Y-%m-%d}",
        source_files=",".join(f["name"] for f in files),
        source_sha256=",".join(f["sha256"] for f in files),
        source_count=len(files),
        provenance=scrub_paths(json.dumps(prov, sort_keys=True, default=str)),
        history=f"{dt.datetime.now(dt.UTC):%Y-%m-%dT%H:%M:%SZ} FluxLens region export",
    )
    if not files:
        attrs["source_note"] = "the product records no source files (generated, not read from files)"
    return {k: scrub_paths(v) if isinstance(v, str) else v for k, v in attrs.items()}


def scrub_paths(text: str) -> str:
    """``text`` with absolute paths replaced by their last component."""
    return redact_paths(text, prefix="")


def region_netcdf(
    info, ds: xr.Dataset, variables, bbox, start, end, level: int, *, region: str, convert=None
):
    """(netCDF bytes, RegionExport) of a region export (see :func:`plan_region_export`).
    ``convert(subset) -> (subset, note)`` puts values in the units the user asked for (e.g. LE in
    mm d-1); its note goes into the global attribute ``units_conversion``."""
    sub, plan = plan_region_export(info, ds, variables, bbox, start, end, level, region=region)
    note = ""
    if convert is not None:
        sub, note = convert(sub)
    out = sub.copy()
    out.attrs = region_attrs(info, plan, ds.attrs)
    if note:
        out.attrs["units_conversion"] = note
    for v in out.data_vars:
        out[v].attrs = {k: scrub_paths(a) if isinstance(a, str) else a for k, a in out[v].attrs.items()}
    return netcdf_bytes(out), plan
