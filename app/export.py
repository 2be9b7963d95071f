"""Downloads: map as PNG, region and period as netCDF, time series as CSV (all in memory)."""

from __future__ import annotations

import io
import os
import tempfile

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import xarray as xr  # noqa: E402

from app.map_view import coastlines  # noqa: E402


def map_png(image: xr.DataArray, *, clim, cmap: str, title: str, label: str) -> bytes:
    """PNG of a screen raster with coastlines, colorbar (``label``) and ``title``."""
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
        fig.colorbar(im, ax=ax, label=label, shrink=0.85)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", bbox_inches="tight")
    finally:
        plt.close(fig)
    return buf.getvalue()


def netcdf_bytes(ds: xr.Dataset) -> bytes:
    """A Dataset as netCDF-4 bytes (written to a temporary file, then read back)."""
    fd, path = tempfile.mkstemp(suffix=".nc")
    os.close(fd)
    try:
        out = ds.load().drop_encoding()
        out.to_netcdf(path, engine="h5netcdf")
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
