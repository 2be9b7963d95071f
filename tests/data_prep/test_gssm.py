"""GSSM1km GeoTIFF writer → reader round trips, laziness, mosaics and bad input."""

from __future__ import annotations

import dask
import dask.array
import numpy as np
import pandas as pd
import pytest
import rasterio
import xarray as xr

from catalog.errors import InputError
from data_prep import gssm
from data_prep.gssm import read_gssm_geotiff, write_gssm_geotiff


def _ssm(n_days=4, n_lat=60, n_lon=80, start="2018-07-01", lat_top=50.0, lon_left=-105.0, res=0.01, seed=0):
    rng = np.random.default_rng(seed)
    values = rng.uniform(0.02, 0.55, (n_days, n_lat, n_lon)).astype(np.float32)
    values[0, 0, 0] = np.nan
    values[-1, 5:9, 10:20] = np.nan
    lat = lat_top - (np.arange(n_lat) + 0.5) * res
    lon = lon_left + (np.arange(n_lon) + 0.5) * res
    time = pd.date_range(start, periods=n_days)
    return xr.DataArray(values, dims=("time", "lat", "lon"), coords={"time": time, "lat": lat, "lon": lon})


def test_round_trip_band_names_scale_nodata(tmp_path):
    ssm = _ssm()
    path = write_gssm_geotiff(tmp_path / "gssm.tif", ssm)
    with rasterio.open(path) as src:
        assert src.dtypes == ("uint16",) * 4
        assert src.nodata == 0
        assert src.crs.to_epsg() == 4326
        assert src.descriptions[0] == "band_2018_07_01_classification"
        assert src.descriptions[3] == "band_2018_07_04_classification"
        assert src.profile["tiled"] and src.block_shapes[0] == (512, 512)
        assert src.compression.name == "deflate"
        raw = src.read()
    assert path.read_bytes()[:4] == b"II*\x00"  # classic TIFF while small
    assert raw[0, 0, 0] == 0  # NaN stored as nodata
    assert raw[1, 7, 3] == round(float(ssm[1, 7, 3]) * 1000)

    ds = read_gssm_geotiff(path)
    assert isinstance(ds["ssm"].data, dask.array.Array)
    assert ds["ssm"].dtype == np.float32
    assert ds["ssm"].attrs["units"] == "m3 m-3"
    assert ds.attrs["source_files"] == str(path)
    np.testing.assert_allclose(ds["lat"], ssm["lat"], atol=1e-9)
    np.testing.assert_allclose(ds["lon"], ssm["lon"], atol=1e-9)
    assert (ds["time"].values == ssm["time"].values).all()
    got = ds["ssm"].values
    assert np.array_equal(np.isnan(got), np.isnan(ssm.values))
    assert np.nanmax(np.abs(got - ssm.values)) <= 0.0005 + 1e-6
    assert got[1, 7, 3] == pytest.approx(raw[1, 7, 3] / 1000, abs=1e-7)


def test_bigtiff_when_large(tmp_path, monkeypatch):
    monkeypatch.setattr(gssm, "BIGTIFF_THRESHOLD", 1000)
    path = write_gssm_geotiff(tmp_path / "big.tif", _ssm(n_days=2))
    assert path.read_bytes()[:4] == b"II+\x00"  # BigTIFF magic number 43
    assert read_gssm_geotiff(path).sizes == {"time": 2, "lat": 60, "lon": 80}


def test_ascending_latitudes_are_flipped(tmp_path):
    ssm = _ssm(n_days=2)
    path = write_gssm_geotiff(tmp_path / "asc.tif", ssm.isel(lat=slice(None, None, -1)))
    ds = read_gssm_geotiff(path)
    assert ds["lat"][0] > ds["lat"][-1]
    np.testing.assert_allclose(ds["ssm"].values, ssm.values, atol=0.0005 + 1e-6)


def test_zero_and_nodata_options(tmp_path):
    ssm = _ssm(n_days=1)
    path = tmp_path / "zeros.tif"
    profile = dict(driver="GTiff", dtype="uint16", count=1, width=80, height=60, crs="EPSG:4326")
    profile["transform"] = rasterio.Affine(0.01, 0, -105, 0, -0.01, 50)
    raw = np.full((60, 80), 250, np.uint16)
    raw[0, :3] = 0
    raw[1, :3] = 65535
    with rasterio.open(path, "w", **profile) as dst:  # no nodata in the file, like Earth Engine exports
        dst.write(raw, 1)
        dst.set_band_description(1, "band_2018_07_01_classification")
    default = read_gssm_geotiff(path)["ssm"].values[0]
    assert np.isnan(default[0, :3]).all() and default[1, 0] == pytest.approx(65.535)
    kept_zero = read_gssm_geotiff(path, zero_is_missing=False, nodata=65535)["ssm"].values[0]
    assert (kept_zero[0, :3] == 0).all() and np.isnan(kept_zero[1, :3]).all()
    assert kept_zero[2, 2] == pytest.approx(0.25)
    assert ssm.shape[1:] == default.shape


def test_reading_one_day_touches_a_small_part_of_the_file(tmp_path):
    ssm = _ssm(n_days=24, n_lat=512, n_lon=512)
    path = write_gssm_geotiff(tmp_path / "year.tif", ssm)
    ds = read_gssm_geotiff(path)
    day = ds["ssm"].sel(time="2018-07-10")
    assert day.data.npartitions == 1  # one day of a band-interleaved file is one chunk
    assert ds["ssm"].data.npartitions == 24

    def bytes_read():
        with open("/proc/self/io") as f:
            return int(dict(line.split(": ") for line in f.read().splitlines())["rchar"])

    file_size = path.stat().st_size
    before = bytes_read()
    with dask.config.set(scheduler="synchronous"):
        values = day.values
    read = bytes_read() - before
    assert np.nanmax(np.abs(values - ssm.sel(time="2018-07-10").values)) <= 0.0005 + 1e-6
    assert read < file_size / 8, f"read {read} bytes of a {file_size}-byte file for one day"


def test_tiles_are_mosaicked_and_years_concatenated(tmp_path):
    ssm = _ssm(n_days=3, n_lat=40, n_lon=60)
    tiles = [
        ssm.isel(lat=slice(0, 25), lon=slice(0, 35)),
        ssm.isel(lat=slice(0, 25), lon=slice(35, None)),
        ssm.isel(lat=slice(25, None), lon=slice(0, 35)),
        ssm.isel(lat=slice(25, None), lon=slice(35, None)),
    ]
    paths = [write_gssm_geotiff(tmp_path / f"2018-{i}.tif", t) for i, t in enumerate(tiles)]
    later = ssm.assign_coords(time=pd.date_range("2019-01-01", periods=3)) * 0.5
    paths.append(write_gssm_geotiff(tmp_path / "2019.tif", later))

    ds = read_gssm_geotiff(paths[::-1], chunks={"time": 2, "lat": 16, "lon": 16})
    assert ds.sizes == {"time": 6, "lat": 40, "lon": 60}
    assert list(ds["time"].dt.year.values) == [2018] * 3 + [2019] * 3
    expected = xr.concat([ssm, later], "time").values
    np.testing.assert_allclose(ds["ssm"].values, expected, atol=0.0005 + 1e-6)


def test_mismatching_grids_name_the_files(tmp_path):
    a = write_gssm_geotiff(tmp_path / "a.tif", _ssm(n_days=2))
    b = write_gssm_geotiff(tmp_path / "b.tif", _ssm(n_days=2, start="2019-01-01", lon_left=-104.0))
    with pytest.raises(InputError, match="different grids") as err:
        read_gssm_geotiff([a, b])
    assert "a.tif" in str(err.value) and "b.tif" in str(err.value)
    c = write_gssm_geotiff(tmp_path / "c.tif", _ssm(n_days=2, res=0.02))
    with pytest.raises(InputError, match="pixel sizes"):
        read_gssm_geotiff([a, c])
    d = write_gssm_geotiff(tmp_path / "d.tif", _ssm(n_days=3, start="2018-07-02"))
    with pytest.raises(InputError, match="2018-07-02"):
        read_gssm_geotiff([a, d])


def _write_raw(path, data, descriptions, crs="EPSG:4326"):
    profile = dict(driver="GTiff", dtype=data.dtype.name, count=data.shape[0], height=data.shape[1])
    profile.update(width=data.shape[2], crs=crs, transform=rasterio.Affine(0.01, 0, -105, 0, -0.01, 50))
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
        for i, d in enumerate(descriptions, start=1):
            dst.set_band_description(i, d)
    return path


def test_bad_input_names_the_file(tmp_path):
    data = np.ones((2, 20, 20), np.uint16)
    wrong_name = _write_raw(tmp_path / "names.tif", data, ["band_2018_07_01_classification", "ssm_day2"])
    with pytest.raises(InputError, match=r"names\.tif.*band 2.*ssm_day2"):
        read_gssm_geotiff(wrong_name)
    no_names = _write_raw(tmp_path / "nonames.tif", data, [])
    with pytest.raises(InputError, match=r"nonames\.tif"):
        read_gssm_geotiff(no_names)
    floats = _write_raw(
        tmp_path / "float.tif", data.astype(np.float32), ["band_2018_07_01_classification"] * 2
    )
    with pytest.raises(InputError, match=r"float\.tif.*float32.*UInt16"):
        read_gssm_geotiff(floats)
    utm = _write_raw(
        tmp_path / "utm.tif", data, ["band_2018_07_01_classification", "band_2018_07_02_classification"]
    )
    with rasterio.open(utm, "r+") as dst:
        dst.crs = "EPSG:32614"
    with pytest.raises(InputError, match=r"utm\.tif.*EPSG:4326"):
        read_gssm_geotiff(utm)
    text = tmp_path / "notes.tif"
    text.write_text("not a raster")
    with pytest.raises(InputError, match=r"notes\.tif"):
        read_gssm_geotiff(text)


def test_truncated_file_names_the_file(tmp_path):
    path = write_gssm_geotiff(tmp_path / "cut.tif", _ssm(n_days=6, n_lat=300, n_lon=300))
    raw = path.read_bytes()
    truncated = tmp_path / "cut_half.tif"
    truncated.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(InputError, match=r"cut_half\.tif"):
        read_gssm_geotiff(truncated).load()


def test_writer_rejects_irregular_grid(tmp_path):
    ssm = _ssm(n_days=1)
    lon = ssm["lon"].values.copy()
    lon[-1] += 0.5
    with pytest.raises(InputError, match="regularly spaced"):
        write_gssm_geotiff(tmp_path / "x.tif", ssm.assign_coords(lon=lon))
    assert not list(tmp_path.iterdir())


def _block(path, band, bx=0, by=0):
    """(file offset, length) of one compressed block, from GDAL's TIFF metadata domain."""
    with rasterio.open(path) as src:
        offset = src.get_tag_item(f"BLOCK_OFFSET_{bx}_{by}", "TIFF", bidx=band)
        size = src.get_tag_item(f"BLOCK_SIZE_{bx}_{by}", "TIFF", bidx=band)
    return int(offset), int(size)


def _damage(path, out, start, n=4096, how="invert"):
    """A copy of ``path`` with ``n`` bytes from ``start`` inverted, zeroed or with a bit flipped every 64."""
    data = bytearray(path.read_bytes())
    chunk = np.frombuffer(bytes(data[start : start + n]), np.uint8).copy()
    if how == "invert":
        chunk ^= 0xFF
    elif how == "zeros":
        chunk[:] = 0
    else:
        chunk[::64] ^= 1
    data[start : start + n] = chunk.tobytes()
    out.write_bytes(bytes(data))
    return out


@pytest.mark.parametrize("how", ["invert", "zeros", "bits"])
def test_corrupt_deflate_block_is_refused_naming_band_and_block(tmp_path, how):
    """4 KB damaged in the middle of one DEFLATE tile: libtiff decodes it to garbage without an error
    (values up to 65.5 m3 m-3); the reader checks the block's checksum and refuses it."""
    path = write_gssm_geotiff(tmp_path / "good.tif", _ssm(n_days=3, n_lat=600, n_lon=700))
    offset, size = _block(path, band=2)
    assert size > 3 * 4096
    bad = _damage(path, tmp_path / "bad.tif", offset + size // 2, how=how)
    ds = read_gssm_geotiff(bad)
    good = read_gssm_geotiff(path)
    # the intact day and the intact tiles of the damaged day still read
    np.testing.assert_array_equal(ds["ssm"][0].values, good["ssm"][0].values)
    np.testing.assert_array_equal(ds["ssm"][1, 512:, 512:].values, good["ssm"][1, 512:, 512:].values)
    with pytest.raises(InputError) as err:
        ds["ssm"][1].load()
    msg = str(err.value)
    assert msg.startswith(f"{bad}: band 2 (2018-07-02), block at row 0, column 0")
    assert f"bytes {offset}..{offset + size - 1}" in msg and "corrupt DEFLATE data" in msg


def test_corrupt_pixel_interleaved_block_is_refused(tmp_path):
    ssm = _ssm(n_days=3, n_lat=300, n_lon=300)
    raw = np.rint(np.nan_to_num(ssm.values) * 1000).astype(np.uint16)
    names = [f"band_2018_07_0{d}_classification" for d in (1, 2, 3)]
    path = tmp_path / "pixel.tif"
    profile = dict(driver="GTiff", dtype="uint16", count=3, height=300, width=300, crs="EPSG:4326")
    profile.update(transform=rasterio.Affine(0.01, 0, -105, 0, -0.01, 50), tiled=True, blockxsize=256)
    profile.update(blockysize=256, compress="deflate", interleave="pixel", nodata=0)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(raw)
        for i, d in enumerate(names, start=1):
            dst.set_band_description(i, d)
    expected = np.where(raw == 0, np.nan, raw / 1000.0)
    np.testing.assert_allclose(read_gssm_geotiff(path)["ssm"].values, expected, atol=1e-6)
    offset, size = _block(path, band=1, bx=1, by=1)
    bad = _damage(path, tmp_path / "pixel_bad.tif", offset + size // 3, n=min(4096, size // 3))
    with pytest.raises(
        InputError, match=r"pixel_bad\.tif: pixel-interleaved block, block at row 256, column 256"
    ):
        read_gssm_geotiff(bad).load()


def test_decoder_error_names_the_band(tmp_path):
    """LZW has no checksum: a damaged LZW tile is what GDAL itself reports; the message names the band."""
    src = write_gssm_geotiff(tmp_path / "good.tif", _ssm(n_days=3, n_lat=600, n_lon=700))
    with rasterio.open(src) as s:
        profile, data, descriptions = s.profile, s.read(), s.descriptions
    profile.update(compress="lzw")
    lzw = tmp_path / "lzw.tif"
    with rasterio.open(lzw, "w", **profile) as dst:
        dst.write(data)
        for i, d in enumerate(descriptions, start=1):
            dst.set_band_description(i, d)
    offset, size = _block(lzw, band=3)
    bad = _damage(lzw, tmp_path / "lzw_bad.tif", offset + size // 2)
    with pytest.raises(
        InputError, match=r"lzw_bad\.tif: band 3 \(2018-07-03\): the data cannot be decoded \(.*"
    ):
        read_gssm_geotiff(bad)["ssm"][2].load()


def test_block_beyond_the_end_is_a_truncated_file(tmp_path):
    path = write_gssm_geotiff(tmp_path / "cut.tif", _ssm(n_days=3, n_lat=600, n_lon=700))
    offset, size = _block(path, band=2)
    cut = tmp_path / "cut_in_band2.tif"
    cut.write_bytes(path.read_bytes()[: offset + size // 2])
    with pytest.raises(InputError, match=r"cut_in_band2\.tif.*truncated"):
        read_gssm_geotiff(cut).load()
