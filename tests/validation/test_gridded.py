"""Giovanni-style analyses through the catalog (validation.gridded): requests checked before any read,
results with known answers from real Zarr stores, the cache and the ``analysis`` job run by a worker.

The product ``known`` is daily, 2018-01-01 … 2019-12-31, 1° cells over lon −20…20, lat 30…60, with
v(t, φ, λ) = φ + λ / 10 + d(t) / 100 (d the day number), a hole of NaN in one cell in January 2018
and ``twin`` = 2 · known + 1 (perfectly correlated).
"""

from __future__ import annotations

import json
import os
import subprocess

import numpy as np
import pandas as pd
import pytest
import xarray as xr

TIMES = pd.date_range("2018-01-01", "2019-12-31", freq="D")
LAT = np.arange(59.5, 30, -1.0)
LON = np.arange(-19.5, 20, 1.0)


def _field() -> np.ndarray:
    d = np.arange(TIMES.size, dtype="float64")
    v = LAT[None, :, None] + LON[None, None, :] / 10 + d[:, None, None] / 100
    v[:31, 5, 7] = np.nan  # January 2018 missing in one cell
    return v


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from catalog import store

    root = tmp_path_factory.mktemp("gridded")
    mp = pytest.MonkeyPatch()
    mp.setenv("FLUXLENS_DATA_DIR", str(root / "data"))
    mp.setenv("FLUXLENS_VALIDATION_CACHE", str(root / "cache"))
    v = _field()
    for name, values in (("known", v), ("twin", 2 * v + 1)):
        ds = xr.Dataset(
            {"le": (("time", "lat", "lon"), values.astype("float32"), {"units": "W m-2", "long_name": "LE"})},
            coords={"time": TIMES.values, "lat": LAT, "lon": LON},
            attrs={"time_step": "day"},
        )
        store.write_product(ds, name, provenance={"test": "known field"}, synthetic=True)
    yield {"root": root, "values": v.astype("float32").astype("float64")}
    mp.undo()


def _compute(**request):
    from validation import gridded

    return gridded.compute_analysis({"product": "known", "variable": "le", **request})


def test_hovmoller_over_a_box_has_the_known_answer(world):
    v = world["values"]
    key, lat_t = _compute(analysis="hovmoller_lat", bbox=[-5, 40, 5, 50], period=["2018-03-01", "2018-03-31"])
    rows, cols = (LAT >= 40) & (LAT <= 50), (LON >= -5) & (LON <= 5)
    t = (TIMES >= "2018-03-01") & (TIMES <= "2018-03-31")
    want = v[t][:, rows][:, :, cols].mean(axis=2)  # plain mean over the box's longitudes
    assert lat_t["le"].dims == ("time", "lat") and lat_t["le"].shape == (31, rows.sum())
    np.testing.assert_allclose(lat_t["le"].values, want, rtol=1e-6)
    assert lat_t.attrs["units"] == "W m-2" and lat_t.attrs["where"] == "lon -5…5, lat 40…50"
    _, lon_t = _compute(analysis="hovmoller_lon", bbox=[-5, 40, 5, 50], period=["2018-03-01", "2018-03-31"])
    w = np.cos(np.deg2rad(LAT[rows]))
    want = (v[t][:, rows][:, :, cols] * w[None, :, None]).sum(axis=1) / w.sum()
    np.testing.assert_allclose(lon_t["le"].values, want, rtol=1e-6)
    assert "cos" in lon_t.attrs["formula"] and json.loads(lon_t.attrs["period"]) == [
        "2018-03-01",
        "2018-03-31",
    ]


def test_climatology_seasonal_and_anomaly_maps(world):
    v = world["values"]
    _, clim = _compute(analysis="climatology")
    assert clim["le"].dims == ("month", "lat", "lon") and list(clim["month"].values) == list(range(1, 13))
    july = TIMES.month == 7
    np.testing.assert_allclose(clim["le"].sel(month=7).values, np.nanmean(v[july], axis=0), rtol=1e-6)
    assert np.isfinite(clim["le"].sel(month=1).values[5, 7])  # January 2019 is there
    _, seasons = _compute(analysis="seasonal")
    assert list(seasons["season"].values) == ["DJF", "MAM", "JJA", "SON"]
    jja = np.isin(TIMES.month, [6, 7, 8])
    np.testing.assert_allclose(seasons["le"].sel(season="JJA").values, v[jja].mean(axis=0), rtol=1e-6)
    _, anom = _compute(analysis="anomaly", period=["2019-07-01", "2019-07-31"])
    in_july_2019 = (TIMES >= "2019-07-01") & (TIMES <= "2019-07-31")
    want = v[in_july_2019] - np.nanmean(v[july], axis=0)  # climatology of the whole record
    np.testing.assert_allclose(anom["le"].values, want, rtol=1e-5, atol=1e-4)
    # July's climatology has day number (196 + 561) / 2 = 378.5; 1 and 31 July 2019 are days 546 and 576
    first_last = anom["le"].mean(("lat", "lon")).values[[0, -1]]
    np.testing.assert_allclose(first_last, [(546 - 378.5) / 100, (576 - 378.5) / 100], atol=1e-4)


def test_correlation_map_with_a_linear_twin_is_one_where_valid(world):
    _, corr = _compute(analysis="correlation", product_b="twin", period=["2018-01-01", "2018-02-28"])
    r, n = corr["r"].values, corr["n"].values
    assert n[5, 7] == 59 - 31 and (np.delete(n.ravel(), 5 * LON.size + 7) == 59).all()
    np.testing.assert_allclose(r, 1.0, atol=1e-6)
    assert corr.attrs["product_b"] == "twin" and corr["r"].attrs["units"] == "1"


def test_polygon_series_equals_the_uncropped_area_weighted_mean(world):
    """The series over an uploaded triangle equals regions.polygon_mean over the whole product (the
    analysis reads only the polygon's bounds and a margin of one cell)."""
    from catalog import api
    from validation import regions

    tri = {"type": "Polygon", "coordinates": [[[-10.3, 35.2], [8.7, 41.1], [-2.2, 55.6], [-10.3, 35.2]]]}
    _, got = _compute(analysis="region_series", polygon=["triangle", json.dumps(tri)])
    full = api.open_product("known")["le"]
    want = regions.polygon_mean(full, regions.read_geojson(tri)).values
    assert got["le"].dims == ("time",) and got["le"].size == TIMES.size
    np.testing.assert_allclose(got["le"].values, want, rtol=1e-6)
    assert got.attrs["where"] == "polygon triangle"
    assert "sha256:" in got.attrs["request"] and "coordinates" not in got.attrs["request"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"analysis": "wavelet"}, "unknown analysis 'wavelet'"),
        ({"product": "nope"}, "unknown product 'nope'"),
        ({"variable": "h"}, "product 'known' has no variable 'h'; it has le"),
        ({"bbox": [100, 10, 120, 20]}, "lies outside 'known'"),
        ({"bbox": [10, 20, 5, 30]}, "must have -180 ≤ W < E ≤ 180"),
        ({"period": ["2030-01-01", "2030-02-01"]}, "lies outside 'known' (2018-01-01…2019-12-31)"),
        ({"analysis": "correlation"}, "needs a second product"),
        ({"analysis": "region_series"}, "either a named region or a polygon"),
        ({"analysis": "region_series", "region": "Atlantis"}, "no country or continent named 'Atlantis'"),
        ({"analysis": "region_series", "region": "Australia"}, "Australia lies outside 'known'"),
        (
            {"analysis": "region_series", "polygon": ["bad", "{not json"]},
            "polygon 'bad': regions: the upload",
        ),
        ({"colour": "red"}, "unknown settings ['colour']"),
    ],
)
def test_bad_requests_are_clear_errors_before_any_read(world, change, message):
    from catalog.errors import InputError
    from validation import gridded

    request = {"analysis": "climatology", "product": "known", "variable": "le", **change}
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        gridded.AnalysisRequest.from_dict(request)


def test_a_request_too_large_is_refused(world, monkeypatch):
    from catalog.errors import InputError
    from validation import gridded

    monkeypatch.setattr(gridded, "MAX_READ_VALUES", 1000)
    with pytest.raises(InputError, match="values to read .* choose a smaller box or a shorter period"):
        gridded.AnalysisRequest.from_dict({"analysis": "seasonal", "product": "known", "variable": "le"})


def test_cache_and_the_job_run_by_a_worker(world, tmp_path, monkeypatch):
    from models.jobs import ANONYMOUS, SUCCEEDED, JobService, JobStore
    from tests.models.test_jobs_cli import worker_command
    from validation import gridded
    from validation import jobs as validation_jobs

    monkeypatch.setenv("FLUXLENS_JOBS_DB", str(tmp_path / "jobs.sqlite"))
    monkeypatch.setenv("FLUXLENS_VALIDATION_CACHE", str(tmp_path / "cache"))
    request = {"analysis": "hovmoller_lat", "product": "known", "variable": "le", "bbox": "-2,31,2,35"}
    service = JobService(JobStore())
    job = service.submit(validation_jobs.ANALYSIS_KIND, request, ANONYMOUS)
    assert job.request["bbox"] == [-2.0, 31.0, 2.0, 35.0] and job.request["period"] == [
        "2018-01-01",
        "2019-12-31",
    ]
    key = gridded.analysis_key(gridded.AnalysisRequest.from_dict(request))
    assert gridded.cached_analysis(key) is None
    with open(tmp_path / "worker.log", "w") as log:
        done = subprocess.run(
            [*worker_command(), "--once"], env=dict(os.environ), stdout=log, stderr=log, timeout=600
        )
    assert done.returncode == 0, (tmp_path / "worker.log").read_text()
    job = service.job(job.id, ANONYMOUS)
    assert job.status == SUCCEEDED and job.output == key
    cached = gridded.cached_analysis(key)
    assert cached is not None and cached["le"].shape == (TIMES.size, 4)
    assert not list((tmp_path / "cache" / "analysis").glob(".tmp-*"))
    again_key, again = gridded.compute_analysis(request)
    assert again_key == key and again.identical(cached)
