"""Station networks: a site table and observations as Parquet, committed like products.

``<data_dir>/stations/<network>/v<k>/`` holds ``sites.parquet``, ``observations.parquet`` and
``network.json``; the catalog names the version (see ``catalog.commit``).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import uuid
from pathlib import Path

import pandas as pd

from catalog import commit, intake_catalog, settings
from catalog.errors import InputError, StoreConflictError
from catalog.names import check_name
from catalog.provenance import input_digest, jsonable

log = logging.getLogger(__name__)

AREA = "stations"


def _read_json(path: Path) -> dict | None:
    if not path.exists():
        return None
    return json.loads(path.read_text())


def stored_network(network: str, data_dir: Path | None = None) -> tuple[Path | None, dict | None]:
    """(store folder, network.json) of the version the catalog names; (None, None) if unlisted."""
    data_dir = settings.data_dir() if data_dir is None else data_dir
    current = commit.current_store_dir(data_dir, AREA, network)
    if current is None:
        return None, None
    return current, _read_json(current / "network.json")


SITE_COLUMNS = ("site_id", "name", "lat", "lon", "igbp", "start", "end", "network", "synthetic")


def write_stations(
    network: str,
    sites: pd.DataFrame,
    observations: pd.DataFrame,
    *,
    provenance: dict,
    synthetic: bool,
    mode: str = "replace",
    data_dir: str | os.PathLike | None = None,
) -> dict:
    """Write a station network (site table + observations) as Parquet and register it in the
    catalog of ``data_dir`` (default: :func:`catalog.settings.data_dir`); atomic.

    ``sites`` needs ``site_id``, ``lat``, ``lon`` (``name``, ``igbp``, ``start``, ``end`` are filled
    when absent); ``observations`` needs ``site_id`` and ``time``. ``mode="replace"`` (default)
    replaces a network of the same name, ``"create"`` refuses to (:class:`StoreConflictError`);
    re-writing the same input (same provenance digest) changes nothing. Returns the catalog
    metadata of the network.
    """
    check_name(network, "network")
    for col in ("site_id", "lat", "lon"):
        if col not in sites.columns:
            raise InputError(
                f"network {network!r}: site table lacks column {col!r} (has {list(sites.columns)})"
            )
    for col in ("site_id", "time"):
        if col not in observations.columns:
            raise InputError(f"network {network!r}: observations lack column {col!r}")
    if sites["site_id"].duplicated().any():
        dup = sites.loc[sites["site_id"].duplicated(), "site_id"].tolist()[:5]
        raise InputError(f"network {network!r}: duplicate site ids {dup}")
    obs = observations.copy()
    obs["site_id"] = obs["site_id"].astype(str)
    obs["time"] = pd.to_datetime(obs["time"]).astype("datetime64[ns]")
    unknown = sorted(set(obs["site_id"]) - set(sites["site_id"].astype(str)))
    if unknown:
        raise InputError(
            f"network {network!r}: observations for sites missing from the site table: {unknown[:5]}"
        )
    obs = obs.sort_values(["site_id", "time"]).reset_index(drop=True)
    st = sites.copy()
    st["site_id"] = st["site_id"].astype(str)
    st["lat"] = st["lat"].astype(float)
    st["lon"] = st["lon"].astype(float)
    if "name" not in st:
        st["name"] = st["site_id"]
    if "igbp" not in st:
        st["igbp"] = None
    span = obs.groupby("site_id")["time"].agg(["min", "max"])
    for col, agg in (("start", "min"), ("end", "max")):
        filled = st["site_id"].map(span[agg])
        st[col] = pd.to_datetime(st[col]).astype("datetime64[ns]").fillna(filled) if col in st else filled
    st["network"] = network
    st["synthetic"] = bool(synthetic)
    st = st[list(SITE_COLUMNS) + [c for c in st.columns if c not in SITE_COLUMNS]]

    if mode not in ("create", "replace"):
        raise InputError(f"bad write mode {mode!r} for network {network!r}; use create or replace")
    data_dir = settings.data_dir(data_dir)
    parent = data_dir / AREA
    parent.mkdir(parents=True, exist_ok=True)
    commit.tidy(data_dir, AREA)
    digest = input_digest(provenance, synthetic)
    current, existing = stored_network(network, data_dir)
    if existing is not None:
        if digest is not None and existing.get("input_digest") == digest:
            log.info("network %s: input already ingested (digest %s), nothing to do", network, digest[:12])
            return existing
        if mode == "create":
            raise StoreConflictError(
                f"station network {network!r} already exists with different content; use replace (--replace)"
            )
    times = obs["time"]
    meta = jsonable(
        {
            "network": network,
            "synthetic": bool(synthetic),
            "store_id": uuid.uuid4().hex,
            "n_sites": len(st),
            "n_observations": len(obs),
            "variables": [c for c in obs.columns if c not in ("site_id", "time")],
            "time_start": str(times.min().date()) if len(times) else None,
            "time_end": str(times.max().date()) if len(times) else None,
            "bbox": [float(st.lon.min()), float(st.lat.min()), float(st.lon.max()), float(st.lat.max())],
            "provenance": provenance,
            "input_digest": digest,
        }
    )
    tmp = commit.temp_dir(parent, network)
    try:
        tmp.mkdir()
        st.to_parquet(tmp / "sites.parquet", index=False)
        obs.to_parquet(tmp / "observations.parquet", index=False, row_group_size=100_000)
        (tmp / "network.json").write_text(json.dumps(meta, indent=2))

        def register(store_dir: Path) -> None:
            entries = {}
            for table in ("sites", "observations"):
                url = intake_catalog.catalog_url(data_dir, store_dir / f"{table}.parquet")
                m = {
                    **meta,
                    "entry_kind": f"station_{table}",
                    "store_dir": commit.store_dir_text(data_dir, store_dir),
                }
                entries[intake_catalog.station_entry(network, table)] = intake_catalog.parquet_reader(url, m)
            intake_catalog.set_entries(data_dir, "network", network, entries)

        commit.commit(data_dir, AREA, network, tmp, register, base=current if existing is not None else None)
    except OSError as exc:
        err = commit.space_error(exc, data_dir, None, f"network {network!r}")
        if err is None:
            raise
        raise err from exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return meta
