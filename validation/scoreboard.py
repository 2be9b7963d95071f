"""Scoreboard: one product variable against every site of a network, cached on disk.

The dashboard has it computed by the job worker (the ``scoreboard`` job kind, :mod:`validation.jobs`);
``fluxlens validate`` computes it in its own process. The cache key hashes the product (name and
``store_id``, which changes on every rewrite), the network (``store_id``), the variable, the
options, the site list and the analyses; a hit is read from ``<cache_dir>/<key>.parquet`` (see
:func:`cache_dir`).
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from catalog import api, settings
from catalog.errors import FluxLensError, InputError
from validation import analyses as analyses_mod
from validation import evaporation_pairs, matching, metrics
from validation.config import ValidationOptions
from validation.sources import match_site, products_at_sites

log = logging.getLogger(__name__)

CACHE_VERSION = 3  # 2: no r2 column (it repeated NSE); 3: LE units in the options
CACHE_ENV = "FLUXLENS_VALIDATION_CACHE"
SITE_COLUMNS = ["site_id", "name", "network", "lat", "lon", "igbp", "start", "end"]
PIXEL_COLUMNS = ["method", "pixel_lon", "pixel_lat", "distance_km", "obs_column", "error"]
SUMMARY_METRICS = ("n", "bias", "rmse", "ubrmse", "r", "rho", "kge", "nse")

SITE_THREADS = 2  # sites matched at once


def select_sites(network: str, site_ids: list[str] | None = None) -> pd.DataFrame:
    """The network's site table, restricted to ``site_ids`` (``InputError`` naming unknown ids)."""
    table = api.sites(network)
    if site_ids:
        unknown = sorted(set(site_ids) - set(table["site_id"].astype(str)))
        if unknown:
            raise InputError(f"network {network!r} has no site(s) {unknown}")
        table = table[table["site_id"].astype(str).isin(site_ids)]
    return table.reset_index(drop=True)


@dataclasses.dataclass
class Scoreboard:
    """Per-site metrics table and the metrics of all sites' pairs pooled together."""

    table: pd.DataFrame
    pooled: dict[str, float]
    product: str
    variable: str
    network: str
    key: str  # the cache key (see :func:`cached_scoreboard`)
    cached: bool = False


def cache_key(
    product: str,
    variable: str,
    network: str,
    options: ValidationOptions,
    site_ids: list[str],
    analyses: list[str],
) -> str:
    """Hash of everything a scoreboard depends on (data fingerprints included)."""
    info = api.product_info(product)
    net = api.network_info(network)
    payload = {
        "version": CACHE_VERSION,
        "product": [product, info.store_id, info.time_start, info.time_end, info.n_time],
        "network": [network, net.get("store_id", ""), net.get("n_sites")],
        "variable": variable,
        "options": options.as_dict(),
        "sites": sorted(site_ids),
        "analyses": analyses,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:32]


def scoreboard_key(
    product: str,
    variable: str,
    network: str,
    *,
    site_ids: list[str] | None = None,
    options: ValidationOptions | None = None,
    analyses: list[str] | None = None,
) -> str:
    """The cache key of :func:`compute_scoreboard` called with these arguments."""
    return _plan(product, variable, network, site_ids, options, analyses)[3]


def _plan(product, variable, network, site_ids, options, analyses):
    """(options, analyses, sites, cache key) of a scoreboard request, defaults filled in."""
    options = options or ValidationOptions.from_config()
    chosen = analyses_mod.configured_analyses(analyses)
    sites = select_sites(network, site_ids)
    ids, names = sites["site_id"].astype(str).tolist(), [a.name for a in chosen]
    return options, chosen, sites, cache_key(product, variable, network, options, ids, names)


def cache_dir() -> Path:
    """``$FLUXLENS_VALIDATION_CACHE`` if set, else ``<data_dir>/cache/validation``."""
    override = settings.current().text(CACHE_ENV)
    return Path(override) if override else settings.data_dir() / "cache" / "validation"


def cached_scoreboard(key: str, product: str, variable: str, network: str) -> Scoreboard | None:
    """The scoreboard cached under ``key``, or None when it is not (or no longer) cached."""
    path = cache_dir() / f"{key}.parquet"
    pooled_path = path.with_suffix(".json")
    if not (path.exists() and pooled_path.exists()):
        return None
    pooled = json.loads(pooled_path.read_text())
    return Scoreboard(pd.read_parquet(path), pooled, product, variable, network, key, cached=True)


def compute_scoreboard(
    product: str,
    variable: str,
    network: str,
    *,
    site_ids: list[str] | None = None,
    options: ValidationOptions | None = None,
    analyses: list[str] | None = None,
    use_cache: bool = True,
    progress=None,
) -> Scoreboard:
    """Per-site table (site columns, pixel used, every configured analysis' numbers) and pooled metrics.

    A site the product does not cover (or without the variable) keeps its row with NaN metrics and
    the reason in ``error``. Pooled metrics use every site's pairs together (on anomalies when
    ``options.anomaly``): pooled R is usually far higher than per-site R. ``progress(done, total)``
    is called as sites finish; an exception it raises stops the sites not started yet and is raised.
    LE is scored in ``options.le_units`` (as evaporation: :mod:`validation.evaporation_pairs`).
    """
    options, chosen, sites, key = _plan(product, variable, network, site_ids, options, analyses)
    if use_cache and (hit := cached_scoreboard(key, product, variable, network)) is not None:
        return hit
    path = cache_dir() / f"{key}.parquet"
    metric_columns = [c for a in chosen for c in a.columns()]

    at_sites = products_at_sites(product, variable, sites, options)

    def one(site: pd.Series) -> tuple[dict, pd.DataFrame | None]:
        row = {c: site.get(c) for c in SITE_COLUMNS}
        row.update(dict.fromkeys(metric_columns, np.nan))
        product_ds = at_sites[str(site["site_id"])]
        if isinstance(product_ds, InputError):
            row["error"] = str(product_ds)
            return row, None
        try:
            match = match_site(network, site, product, variable, options, product_ds=product_ds)
        except FluxLensError as exc:
            row["error"] = str(exc)
            return row, None
        match = evaporation_pairs.match_in_units(match, options.le_units, min_coverage=options.min_coverage)
        row.update(match.pixel)
        row["obs_column"] = match.obs_column
        row.update(analyses_mod.run_analyses(match, options, chosen))
        row["error"] = ""
        pairs = match.pairs
        if options.anomaly:
            pairs = matching.paired_anomalies(pairs, window_days=options.anomaly_window_days)
        return row, pairs

    rows, all_pairs = [], []
    with concurrent.futures.ThreadPoolExecutor(max_workers=SITE_THREADS) as pool:
        futures = [pool.submit(one, site) for _, site in sites.iterrows()]
        try:
            for done, fut in enumerate(concurrent.futures.as_completed(futures), 1):
                row, pairs = fut.result()
                rows.append(row)
                if pairs is not None and not pairs.empty:
                    all_pairs.append(pairs)
                if progress is not None:
                    progress(done, len(futures))
        except BaseException:
            pool.shutdown(cancel_futures=True)
            raise
    columns = SITE_COLUMNS + PIXEL_COLUMNS + metric_columns
    table = pd.DataFrame(rows).reindex(columns=columns)
    table = table.sort_values("site_id").reset_index(drop=True)
    for c in ("start", "end"):
        table[c] = pd.to_datetime(table[c], errors="coerce").dt.strftime("%Y-%m-%d")
    pooled_pairs = pd.concat(all_pairs) if all_pairs else pd.DataFrame({"obs": [], "pred": []})
    pooled = metrics.all_metrics(pooled_pairs["obs"], pooled_pairs["pred"], min_n=options.min_pairs)
    pooled["sites"] = len(all_pairs)
    _write_atomic(table, path)
    path.with_suffix(".json").write_text(json.dumps(pooled))
    return Scoreboard(table, pooled, product, variable, network, key)


def _write_atomic(table: pd.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    os.close(fd)
    try:
        table.to_parquet(tmp, index=False)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def igbp_summary(table: pd.DataFrame, metric_names=SUMMARY_METRICS) -> pd.DataFrame:
    """Median of each metric per IGBP class over the sites with metrics, with the site count."""
    ok = table[table["n"].fillna(0) > 0] if "n" in table else table
    cols = [m for m in metric_names if m in ok and m != "n"]
    grouped = ok.groupby(ok["igbp"].astype(str), dropna=False)
    out = grouped[cols].median()
    out.insert(0, "sites", grouped.size())
    return out.reset_index()
