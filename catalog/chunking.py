"""Chunk policy of gridded stores.

Chunking (decision and measurements; ``bench/bench_data_layer.py --chunk-study`` reproduces the
table): every pyramid level is chunked (1, 256, 256) for maps and level 0 is stored a second time,
chunked (512, 64, 64), in ``series.zarr`` for whole-record pixel series (grids of at least 256 x 256
px with more than one time step). Measured on a 365 x 2000 x 2000 float32 cube (zstd, zarr 3, 2 cores
shared with other jobs, load 9-12, so absolute times are pessimistic), median of 5 reads:

    chunk (t, lat, lon)   write s  size GB  one-day map s  one-pixel record s
    (1, 1000, 1000)         235     1.86       0.075            4.10
    (1, 2000, 2000)         179     1.91       0.116           21.1
    (8, 500, 500)           227     1.79       0.389            1.94
    (32, 256, 256)          240     1.75       2.03             0.191
    (73, 250, 250)          342     1.73       6.10             0.582
    (365, 64, 64)           339     1.73      19.2              0.016

No single chunk shape serves both reads (the balanced ones are 2-6 s on one of them), so the series
copy is worth its disk space (about +100 %). Building it out of core: dask's rechunk from
(1, 1024, 1024) map chunks to (512, 64, 64) held the whole cube (peak RSS 2.7 GB for a
300 x 1024 x 2048 cube of 2.5 GB); from (1, 256, 256) chunks the peak was 415 MB (113 s), since each
group of 16 series chunks needs only 512 x 256 x 256 values. One-day reads of that cube: 0.05-0.06 s
with (1, 256, 256) chunks, 0.04-0.08 s with (1, 1024, 1024); zarr 3 sharding (1024^2 shards of
256^2 chunks) was slower to read (0.12-1.9 s) and is not used. Hence map chunks (1, 256, 256);
grids of at most 1024 x 1024 px keep whole days, several a chunk (:func:`map_chunks`). The
series time chunk is min(n_time, 512) (see :func:`series_chunks`).
"""

from __future__ import annotations

# Chunking (see module docstring): map-chunked levels and a time-chunked series copy of level 0.
MAP_CHUNK = (1, 256, 256)  # (time, lat, lon) of every pyramid level of a large grid
WHOLE_DAY_PIXELS = 1024 * 1024  # grids up to this size: whole days a chunk (see map_chunks)
SERIES_CHUNK = (512, 64, 64)  # (time, lat, lon) of the series copy; time fixed so appends stay cheap
SERIES_MIN_PIXELS = 256 * 256  # smaller grids serve pixel series well enough from map chunks


def map_chunks(n_time: int, n_lat: int, n_lon: int) -> tuple[int, int, int]:
    """(time, lat, lon) chunk of the map-oriented pyramid levels.

    Grids of at most ``WHOLE_DAY_PIXELS`` keep whole days in one chunk, several days together
    (about ``WHOLE_DAY_PIXELS`` values a chunk): a 0.5 degree global year is 92 chunks a variable
    instead of 2190 (256 x 256 tiles), which took most of the demo build's time.
    """
    pixels = n_lat * n_lon
    if pixels <= WHOLE_DAY_PIXELS:
        return (max(1, min(n_time, WHOLE_DAY_PIXELS // pixels)), n_lat, n_lon)
    return (min(MAP_CHUNK[0], n_time), min(MAP_CHUNK[1], n_lat), min(MAP_CHUNK[2], n_lon))


def series_chunks(n_time: int, n_lat: int, n_lon: int) -> tuple[int, int, int]:
    """(time, lat, lon) chunk of the time-oriented copy of level 0.

    The time chunk is ``min(n_time, 512)``: a chunk longer than the record would be written padded
    in full (costly). While it is below 512, an append rebuilds the copy with a longer chunk; from
    512 on, appends fill the last chunk.
    """
    return (min(SERIES_CHUNK[0], n_time), min(SERIES_CHUNK[1], n_lat), min(SERIES_CHUNK[2], n_lon))


def needs_series(n_lat: int, n_lon: int, n_time: int) -> bool:
    """Whether a product gets a series copy: more than one time step and a large enough grid."""
    return n_time > 1 and n_lat * n_lon >= SERIES_MIN_PIXELS


def aligned_chunks(wanted: dict, stored: tuple[int, int, int]) -> dict:
    """Dask chunks for reading: each wanted size rounded up to a whole number of stored chunks."""
    return {
        dim: -(-wanted[dim] // size) * size for dim, size in zip(("time", "lat", "lon"), stored, strict=True)
    }


# Dask chunks for reading a written level: to coarsen it (whole stored chunks, 4 x 4 of them) and to
# build the series copy (16 days of each stored chunk; a group of series chunks then needs at most
# SERIES_CHUNK[0] x 256 x 256 values in memory).
COARSEN_READ = {"time": 1, "lat": 1024, "lon": 1024}
# Dask chunks the catalog opens the levels with: 4 x 4 stored chunks per task. A one-day read of
# 2000 x 4000 px took 0.11 s with them and 0.19 s with the stored (1, 256, 256) chunks; a 400 x 400 px
# window 0.009 s vs 0.013 s (dask fuses the slice into the read, so only the stored chunks needed
# are decompressed).
MAP_READ = {"time": 1, "lat": 1024, "lon": 1024}
SERIES_READ = {"time": 16, "lat": MAP_CHUNK[1], "lon": MAP_CHUNK[2]}
# Dask blocks the writes use, rounded up to whole stored chunks (``aligned_chunks``): zarr encodes the
# chunks of one block together. Writing 8 days of 2000 x 4000 px in (1, 256, 256) chunks took 4.1 s
# with one task per chunk and 1.8 s with (1, 1024, 1024) blocks. The series copy is written in
# blocks of 4 x 4 series chunks (512 x 256 x 256 float32 = 134 MB).
WRITE_BLOCK = {"time": 1, "lat": 1024, "lon": 1024}
SERIES_WRITE = {"time": 1, "lat": 256, "lon": 256}
