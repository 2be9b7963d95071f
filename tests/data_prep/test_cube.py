"""Gridded cubes through recipes, on the real files of ../shared/data/gridded_real: every value is
checked against an independent read (netCDF4, h5py, eccodes) and the conversion written out here."""

from __future__ import annotations

import io
import subprocess
import sys
import zipfile
from pathlib import Path

import h5py
import netCDF4
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from catalog.errors import InputError
from data_prep import cube, recipe, regrid
from data_prep.gssm import BAND_PATTERN

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def gridded(shared_data):
    return shared_data / "gridded_real"


def read(paths, name, tmp_path, **kw):
    ds, notes = cube.read_cube(paths, recipe.load(name), workdir=tmp_path, **kw)
    return ds.load(), notes


def nc_values(path, var):
    with netCDF4.Dataset(path) as nc:
        nc.set_auto_mask(False)
        return np.asarray(nc[var][:], dtype="float64"), nc["latitude"][:], nc["longitude"][:]


def test_valdivia_fluxes_positive_upward_from_hourly_accumulations(gridded, tmp_path):
    path = gridded / "era5_cds" / "era5_valdivia_accum_slhf_sshf_ssr_str.nc"
    ds, notes = read([path], "era5", tmp_path)
    assert set(ds.data_vars) == {"le", "h", "rn"}
    slhf, lat, lon = nc_values(path, "slhf")
    sshf, ssr, strad = (nc_values(path, v)[0] for v in ("sshf", "ssr", "str"))
    for t, i, j in [(0, 0, 0), (123, 2, 3), (599, 4, 1)]:
        sel = dict(lat=lat[i], lon=lon[j])
        got = ds.isel(time=t).sel(sel)
        assert float(got.le) == pytest.approx(-slhf[t, i, j] / 3600.0, rel=1e-5)
        assert float(got.h) == pytest.approx(-sshf[t, i, j] / 3600.0, rel=1e-5)
        assert float(got.rn) == pytest.approx((ssr[t, i, j] + strad[t, i, j]) / 3600.0, rel=1e-5)
    assert float(ds.le.mean()) > 0  # evaporation: upward in the FLUXNET convention
    assert ds.le.attrs["units"] == "W m-2"
    assert pd.Timestamp(ds.time.values[1]) == pd.Timestamp("2000-01-15")  # dated by UTC day
    assert "not a daily mean" in notes["le"]["time_aggregation"]
    assert "sign -1" in " ".join(notes["le"]["conversion"])


def test_morocco_year_daily_degc_and_mm_per_day(gridded, tmp_path):
    t2m_path = gridded / "era5_cds" / "era5_daily_morocco_2024_t2m.nc"
    tp_path = gridded / "era5_cds" / "era5_daily_morocco_2024_tp.nc"
    ds, _ = read([t2m_path, tp_path], "era5", tmp_path)
    assert ds.sizes["time"] == 366 and pd.Timestamp(ds.time.values[-1]) == pd.Timestamp("2024-12-31")
    t2m, lat, lon = nc_values(t2m_path, "t2m")
    tp = nc_values(tp_path, "tp")[0]
    for t, i, j in [(0, 0, 0), (200, 30, 40), (365, 60, 64)]:
        got = ds.isel(time=t).sel(lat=lat[i], lon=lon[j])
        assert float(got.ta) == pytest.approx(t2m[t, i, j] - 273.15, abs=1e-4)
        # tp: metres of water over the hour ending at 12 UTC → mm per day at that rate
        assert float(got.precip) == pytest.approx(tp[t, i, j] * 1000.0 * 24.0, rel=1e-5, abs=1e-6)


def test_uk_grib_hourly_to_daily_means(gridded, tmp_path):
    path = gridded / "era5_cds" / "era5-2mt-2019-03-uk.grib"
    ds, notes = read([path], "era5", tmp_path)
    assert ds.sizes == {"time": 31, "lat": 33, "lon": 49}
    # independent read: the GRIB messages of 2019-03-15 with the ecCodes API itself, in a child process
    # (ecCodes is never loaded into a FluxLens process, see data_prep.grib)
    code = (
        "import eccodes, numpy as np, sys\n"
        "msgs = []\n"
        f"fh = open({str(path)!r}, 'rb')\n"
        "while (h := eccodes.codes_grib_new_from_file(fh)) is not None:\n"
        "    if eccodes.codes_get(h, 'dataDate') == 20190315:\n"
        "        msgs.append(eccodes.codes_get_values(h).reshape(eccodes.codes_get(h, 'Nj'), "
        "eccodes.codes_get(h, 'Ni')))\n"
        "    eccodes.codes_release(h)\n"
        "np.save(sys.stdout.buffer, np.stack(msgs))\n"
    )
    from data_prep import grib

    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, check=True, env=grib.child_env())
    messages = np.load(io.BytesIO(proc.stdout))
    assert messages.shape == (24, 33, 49)
    expected = messages.mean(axis=0) - 273.15
    np.testing.assert_allclose(ds.ta.sel(time="2019-03-15").values, expected, rtol=0, atol=1e-3)
    assert "24 steps" in notes["ta"]["time_aggregation"]


def test_zampy_set_wind_speed_and_vpd(gridded, tmp_path):
    folder = gridded / "era5_cds" / "zampy_4x4"
    with pytest.raises(InputError, match="different grids"):  # ERA5 0.25 deg and ERA5-Land 0.1 deg
        read([folder], "era5", tmp_path)
    ds, notes = read([folder], "era5", tmp_path, resolution=0.25, min_coverage=0.1)
    u, lat, lon = nc_values(folder / "era5_eastward_component_of_wind_2020-1.nc", "u10")
    v = nc_values(folder / "era5_northward_component_of_wind_2020-1.nc", "v10")[0]
    expected = np.sqrt(u**2 + v**2).mean(axis=0)  # the four hours of 2020-01-01
    got = ds.ws.sel(time="2020-01-01").sel(lat=lat, lon=lon).values
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    # ERA5-Land is land-only and these 16 cells are North Sea: t2m and d2m are all missing in the file
    t2m = nc_values(folder / "era5-land_air_temperature_2020-1.nc", "t2m")[0]
    assert np.isnan(t2m).all() and ds.vpd.isnull().all()
    assert notes["ws"]["regridding"].startswith("none")
    assert notes["vpd"]["regridding"].startswith("area-weighted mean")


def write_cds_netcdf(path, name, values, units, step_type, times, lat, lon):
    """A netCDF in the CDS layout (valid_time, latitude, longitude, GRIB_stepType)."""
    ds = xr.Dataset(
        {name: (("valid_time", "latitude", "longitude"), values.astype("float32"),
                {"units": units, "GRIB_stepType": step_type})},
        coords={"valid_time": times, "latitude": lat, "longitude": lon},
    )  # fmt: skip
    ds.to_netcdf(path)
    return path


def test_vpd_from_dewpoint_formula_on_a_cds_layout_file(tmp_path):
    times = pd.date_range("2020-07-01", periods=24, freq="h")
    lat, lon = np.array([52.0, 51.9]), np.array([5.0, 5.1])
    rng = np.random.default_rng(1)
    t2m = 288 + rng.uniform(0, 12, (24, 2, 2))
    d2m = t2m - rng.uniform(0.5, 9, (24, 2, 2))
    a = write_cds_netcdf(tmp_path / "t.nc", "t2m", t2m, "K", "instant", times, lat, lon)
    b = write_cds_netcdf(tmp_path / "d.nc", "d2m", d2m, "K", "instant", times, lat, lon)
    ds, _ = read([a, b], "era5", tmp_path)

    def es(tc):  # FAO-56 eq. 11, in hPa
        return 6.108 * np.exp(17.27 * tc / (tc + 237.3))

    hourly = es(t2m - 273.15) - es(d2m - 273.15)
    np.testing.assert_allclose(ds.vpd.values[0], hourly.mean(axis=0), rtol=1e-4)
    np.testing.assert_allclose(ds.ta.values[0], (t2m - 273.15).mean(axis=0), rtol=1e-5)


def test_era5_land_accumulations_are_deaccumulated(tmp_path):
    """ERA5-Land sums run from 00 UTC; the 01 UTC value is the first hour's sum."""
    times = pd.date_range("2020-07-01 01:00", periods=24, freq="h")  # 01 UTC … 00 UTC next day
    hourly = np.linspace(1.0, 24.0, 24)[:, None, None] * np.ones((24, 2, 2)) * 3600.0  # J m-2 per hour
    accumulated = np.cumsum(hourly, axis=0)
    path = write_cds_netcdf(tmp_path / "ssrd.nc", "ssrd", accumulated, "J m**-2", "accum", times,
                            np.array([52.0, 51.9]), np.array([5.0, 5.1]))  # fmt: skip
    ds, notes = read([path], "era5-land", tmp_path)
    # de-accumulated W m-2: 1 … 24, all counted for 2020-07-01 (interval midpoints), mean 12.5
    assert float(ds.sw_in.sel(time="2020-07-01").mean()) == pytest.approx(12.5, rel=1e-5)
    assert "de-accumulated" in " ".join(notes["sw_in"]["conversion"])


def test_gldas_soil_moisture_in_m3_per_m3_with_fill_as_nan(gridded, tmp_path):
    folder = gridded / "gldas_noah025_3h"
    ds, notes = read([folder], "gldas-noah", tmp_path)
    files = sorted(folder.glob("*.nc4"))
    raw = []
    for f in files:
        with h5py.File(f) as h:
            v = h["SoilMoi0_10cm_inst"][0].astype("float64")
            fill = h["SoilMoi0_10cm_inst"].attrs["_FillValue"][0]
            raw.append(np.where(v == fill, np.nan, v) / 100.0)  # kg m-2 / (1000 kg m-3 x 0.1 m)
            lat = h["lat"][:]
    expected = np.nanmean(np.stack(raw), axis=0)[::-1]  # file is south first; products are north first
    np.testing.assert_allclose(ds.ssm.values[0], expected, rtol=1e-5, equal_nan=True)
    assert np.isnan(ds.ssm.values).sum() == np.isnan(expected).sum() > 0  # ocean and Antarctica
    assert float(ds.lat[0]) == pytest.approx(lat[-1])
    assert "at least 6 of 8 steps" in notes["ssm"]["time_aggregation"]
    assert ds.ssm.attrs["units"] == "m3 m-3"


def test_c3s_lai_scale_and_fill_from_the_file(gridded, tmp_path):
    src = gridded / "c3s_lai_landcover" / "satellite-lai-fapar_2020-1.zip"
    ds, notes = read([src], "c3s-lai", tmp_path)
    assert list(pd.DatetimeIndex(ds.time.values).day) == [10, 20, 31]
    assert ds.lai.isnull().all()  # the subset is North Sea: every LAI value is the fill value 65535
    # a copy with real counts written into the zipped file decodes with the file's scale factor
    with zipfile.ZipFile(src) as z:
        member = sorted(z.namelist())[0]
        z.extract(member, tmp_path / "unz")
    nc_path = tmp_path / "unz" / member
    with netCDF4.Dataset(nc_path, "a") as nc:
        nc["LAI"].set_auto_maskandscale(False)
        counts = nc["LAI"][:]
        counts[0, 10:12, 20:23] = [[1000, 20000, 65534], [0, 5, 30000]]
        nc["LAI"][:] = counts
        scale = float(nc["LAI"].scale_factor)
    ds2, _ = read([nc_path], "c3s-lai", tmp_path)
    written = np.array([[1000, 20000, 65534], [0, 5, 30000]])
    np.testing.assert_allclose(ds2.lai.values[0, 10:12, 20:23], written * scale, rtol=1e-6)
    assert int(ds2.lai.notnull().sum()) == 6


def test_land_cover_classes_to_igbp_through_the_table(gridded, tmp_path):
    src = gridded / "c3s_lai_landcover" / "land-cover_LCCS_MAP_300m_2020.zip"
    ds, notes = read([src], "c3s-landcover", tmp_path)
    table, source = recipe.crosswalk("landcover_lccs_igbp.yaml")
    assert table[210] == 17 and table[50] == 2 and table[70] == 1 and table[0] is None
    assert "Loveland & Belward 1997" in source
    assert ds.sizes["time"] == 1 and (ds.igbp.values == 17).all()  # all water (LCCS 210) in this subset
    # every LCCS code the product defines is in the table
    with zipfile.ZipFile(src) as z:
        z.extractall(tmp_path / "lc")
    with netCDF4.Dataset(next((tmp_path / "lc").glob("*.nc"))) as nc:
        codes = [int(c) for c in nc["lccs_class"].flag_values]
    assert sorted(codes) == sorted(table)


def test_landcover_mode_regridding_keeps_classes(tmp_path):
    lat, lon = 60 - (np.arange(8) + 0.5) / 8, (np.arange(8) + 0.5) / 8
    classes = np.full((1, 8, 8), 10, dtype="uint8")
    classes[0, :4, :4] = 70  # NW quarter needleleaved evergreen
    classes[0, :3, 4:] = 210
    ds = xr.Dataset({"lccs_class": (("time", "lat", "lon"), classes)},
                    coords={"time": [np.datetime64("2020-01-01", "ns")], "lat": lat, "lon": lon})  # fmt: skip
    ds.to_netcdf(tmp_path / "lc.nc")
    out, notes = read([tmp_path / "lc.nc"], "c3s-landcover", tmp_path, resolution=0.5)
    assert out.igbp.values[0].tolist() == [[1.0, 17.0], [12.0, 12.0]]
    assert notes["igbp"]["regridding"].startswith("the class covering most of each target cell")


def test_area_mode_is_the_block_majority_with_ties_to_the_lower_code():
    rng = np.random.default_rng(3)
    src = regrid.Grid(50 - (np.arange(40) + 0.5) * 0.01, (np.arange(60) + 0.5) * 0.01)
    dst = regrid.regular_grid(0.05, (0, 49.6, 0.6, 50))
    classes = rng.integers(1, 4, (40, 60)).astype("float32")
    classes[:5, :5] = np.nan  # a block with no valid cell
    got = regrid.mode_by_area(classes, src, dst)
    for i in range(8):
        for j in range(12):
            block = classes[5 * i : 5 * i + 5, 5 * j : 5 * j + 5]
            vals = block[np.isfinite(block)]
            if vals.size == 0:
                assert np.isnan(got[i, j])
                continue
            counts = np.bincount(vals.astype(int), minlength=4)
            assert got[i, j] == np.flatnonzero(counts == counts.max())[0]  # lowest code among the tied


def test_dem_geotiff_coarsened_by_area_mean(tmp_path):
    import rasterio
    from rasterio.transform import from_origin

    elev = np.arange(16, dtype="float32").reshape(4, 4) * 10
    profile = dict(driver="GTiff", width=4, height=4, count=1, dtype="float32", crs="EPSG:4326",
                   transform=from_origin(10, 50, 0.25, 0.25))  # fmt: skip
    with rasterio.open(tmp_path / "dem.tif", "w", **profile) as dst:
        dst.write(elev, 1)
    ds, notes = read([tmp_path / "dem.tif"], "dem", tmp_path, resolution=0.5)
    assert ds.elevation.values[0].tolist() == [[elev[:2, :2].mean(), elev[:2, 2:].mean()],
                                               [elev[2:, :2].mean(), elev[2:, 2:].mean()]]  # fmt: skip
    assert "no units" in " ".join(notes["elevation"]["conversion"])


def test_flux_cf_by_standard_name_and_generic_mapping(tmp_path):
    lat, lon = np.array([10.0, 9.0]), np.array([20.0, 21.0])
    times = pd.date_range("2018-01-01", periods=3)
    v = np.full((3, 2, 2), 100.0, dtype="float32")
    xr.Dataset(
        {
            "LE_down": (("time", "lat", "lon"), -v,
                        {"units": "W m-2", "standard_name": "surface_downward_latent_heat_flux"}),
            "sens": (("time", "lat", "lon"), v / 2, {"units": "mW m-2"}),
        },
        coords={"time": times, "lat": lat, "lon": lon},
    ).to_netcdf(tmp_path / "f.nc")  # fmt: skip
    ds, _ = read([tmp_path / "f.nc"], "flux-cf", tmp_path)
    assert float(ds.le.mean()) == pytest.approx(100.0)  # downward −100 → upward +100
    generic = recipe.with_mapping(recipe.load("generic"), "sens=h")
    out, _ = cube.read_cube([tmp_path / "f.nc"], generic, workdir=tmp_path)
    assert float(out.h.mean()) == pytest.approx(0.05)  # mW m-2 → W m-2


def test_every_gssm_band_name_in_the_publishers_table_parses(gridded):
    import openpyxl

    sheet = openpyxl.load_workbook(gridded / "gssm1km_band_names" / "bandNames2000-2020.xlsx", read_only=True)
    rows = list(sheet.worksheets[0].iter_rows(values_only=True))
    years = rows[0][1:]
    n, all_dates = 0, []
    for col, year in enumerate(years, start=1):
        names = [r[col] for r in rows[1:] if r[col] is not None]
        dates = []
        for name in names:
            m = BAND_PATTERN.match(name.strip())
            assert m, name
            dates.append(pd.Timestamp(int(m.group(1)), int(m.group(2)), int(m.group(3))))
        assert all(d.year == year for d in dates)
        assert pd.DatetimeIndex(dates).is_monotonic_increasing and not pd.DatetimeIndex(dates).has_duplicates
        n += len(names)
        all_dates += dates
    # the product has gaps (e.g. 2000-08-06…17): a band's date comes from its name, never its index
    assert pd.Timestamp("2000-08-05") in all_dates and pd.Timestamp("2000-08-06") not in all_dates
    assert n == 7549 and rows[1][1].strip() == "band_2000_03_05_classification"


def test_bad_input_is_a_clear_error(gridded, tmp_path):
    valdivia = gridded / "era5_cds" / "era5_valdivia_accum_slhf_sshf_ssr_str.nc"
    with pytest.raises(InputError, match="unknown recipe 'nope'"):
        recipe.load("nope")
    with pytest.raises(InputError, match="ta needs t2m"):
        read([valdivia], "era5", tmp_path, only=["le", "ta"])
    with pytest.raises(InputError, match="appears in more than one file"):
        copy = tmp_path / "copy.nc"
        copy.write_bytes(valdivia.read_bytes())
        read([valdivia, copy], "era5", tmp_path)
    with pytest.raises(InputError, match="does not say over which period 'slhf' is accumulated"):
        cube.read_cube([valdivia], recipe.with_mapping(recipe.load("generic"), "slhf=le"), workdir=tmp_path)
    t2m = gridded / "era5_cds" / "era5_daily_morocco_2024_t2m.nc"
    with pytest.raises(InputError, match="cannot convert K to mm d-1"):
        cube.read_cube([t2m], recipe.with_mapping(recipe.load("generic"), "t2m=precip"), workdir=tmp_path)
    with pytest.raises(InputError, match="outside the data"):
        read([valdivia], "era5", tmp_path, bbox=(10, 10, 11, 11))
    with pytest.raises(InputError, match="no such file"):
        read([tmp_path / "missing.nc"], "era5", tmp_path)
    with pytest.raises(InputError, match="matches no file"):
        read([str(tmp_path / "*.grib")], "era5", tmp_path)
    bad = tmp_path / "bad.nc"
    bad.write_bytes(b"CDF\x01 truncated")
    with pytest.raises(InputError, match="not a readable netCDF"):
        read([bad], "era5", tmp_path)
    with pytest.raises(InputError, match="expects"):  # a file declaring slhf instantaneous
        times = pd.date_range("2020-01-01", periods=2, freq="h")
        write_cds_netcdf(tmp_path / "i.nc", "slhf", np.zeros((2, 2, 2)), "J m**-2", "instant", times,
                         np.array([1.0, 0.0]), np.array([0.0, 1.0]))  # fmt: skip
        read([tmp_path / "i.nc"], "era5", tmp_path)


def test_mixed_step_types_in_one_variable_are_refused(tmp_path):
    lat, lon = np.array([1.0, 0.0]), np.array([0.0, 1.0])
    a = write_cds_netcdf(tmp_path / "a.nc", "ssrd", np.zeros((2, 2, 2)), "J m**-2", "accum",
                         pd.date_range("2020-01-01", periods=2, freq="h"), lat, lon)  # fmt: skip
    b = write_cds_netcdf(tmp_path / "b.nc", "ssrd", np.zeros((2, 2, 2)), "W m**-2", "instant",
                         pd.date_range("2020-01-02", periods=2, freq="h"), lat, lon)  # fmt: skip
    with pytest.raises(InputError, match="mixes step types"):
        read([a, b], "era5", tmp_path)


def test_pyproj_still_works_after_a_grib_file_was_read(gridded):
    """eccodes' bundled PROJ must not take over pyproj's (EASE2 grids need pyproj)."""
    code = (
        "from pathlib import Path; import tempfile\n"
        "from data_prep import cube\n"
        f"cube.open_file({str(gridded / 'era5_cds' / 'era5-2mt-2019-03-uk.grib')!r}, "
        "Path(tempfile.gettempdir()))\n"
        "from data_prep import ease2\n"
        "import pyproj; print(pyproj.CRS('EPSG:6933').name)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "EASE-Grid 2.0" in proc.stdout


def test_postgresql_client_survives_a_grib_read(gridded):
    """The ecCodes wheel's OpenSSL 1.1 in the global symbol scope crashed psycopg's libpq at exit."""
    code = (
        "from pathlib import Path; import tempfile\n"
        "from data_prep import cube\n"
        f"cube.open_file({str(gridded / 'era5_cds' / 'era5-2mt-2019-03-uk.grib')!r}, "
        "Path(tempfile.mkdtemp()))\n"
        "import psycopg, sys; print('eccodes' in ' '.join(sys.modules))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "False"  # ecCodes stayed in the child process


def test_grib_libraries_stay_out_of_fluxlens_processes():
    """cfgrib's xarray plugin must not be visible: listing xarray's engines would load ecCodes."""
    code = "import sys, xarray; xarray.backends.list_engines(); print('eccodes' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "False"


def test_regular_grid_keeps_a_source_grid_of_the_same_step():
    like = regrid.Grid(np.array([60.0, 59.75]), np.array([0.0, 0.25]))
    g = regrid.regular_grid(0.25, (-0.125, 59.125, 0.875, 60.125), like)
    assert g.lat.tolist() == [60.0, 59.75, 59.5, 59.25] and g.lon.tolist() == [0.0, 0.25, 0.5, 0.75]
    g = regrid.regular_grid(0.5, (-105, 30, -85, 50))
    assert (g.lat.size, g.lon.size) == (40, 40) and g.lon[0] == -104.75 and g.lat[0] == 49.75


def test_zarr_store_and_multiband_geotiff_inputs(tmp_path):
    import rasterio
    from rasterio.transform import from_origin

    times = pd.date_range("2020-07-01", periods=3)
    lat, lon = np.array([45.5, 45.0, 44.5]), np.array([10.0, 10.5, 11.0])
    ta = np.arange(27, dtype="float32").reshape(3, 3, 3) + 280
    src = xr.Dataset({"t2m": (("time", "latitude", "longitude"), ta, {"units": "K"})},
                     coords={"time": times, "latitude": lat, "longitude": lon})  # fmt: skip
    src.to_zarr(tmp_path / "t.zarr")
    ds, _ = read([tmp_path / "t.zarr"], "era5", tmp_path)
    np.testing.assert_allclose(ds.ta.values, ta - 273.15, rtol=1e-6)
    profile = dict(driver="GTiff", width=3, height=3, count=2, dtype="float32", crs="EPSG:4326",
                   transform=from_origin(9.75, 45.75, 0.5, 0.5))  # fmt: skip
    with rasterio.open(tmp_path / "two.tif", "w", **profile) as dst:
        dst.write(np.full((3, 3), 1.5, "float32"), 1)
        dst.write(np.full((3, 3), 0.25, "float32"), 2)
    mapping = recipe.with_mapping(recipe.load("generic"), "band_1=lai,band_2=ssm")
    out, _ = cube.read_cube([tmp_path / "two.tif"], mapping, workdir=tmp_path)
    assert float(out.lai.mean()) == 1.5 and float(out.ssm.mean()) == 0.25
