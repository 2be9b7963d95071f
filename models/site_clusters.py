"""Clusters of nearby towers for the leave-cluster-out split.

Towers closer than a few tens of km share weather, soils and often land cover, so holding out one
tower while its neighbour trains flatters the spatial split (Roberts et al. 2017, Ecography 40:913,
"block cross-validation"). Here a cluster is a connected component of the graph linking every pair of
towers within ``distance_km`` great-circle distance (single-linkage clustering cut at that height,
Gower & Ross 1969, Appl. Stat. 18:54): towers in different clusters are always farther apart than
``distance_km``, so no fold has a neighbour of a test tower on its training side.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components

from catalog.errors import InputError
from catalog.geo import haversine_km

CLUSTER_KM = 50.0  # default linking distance (km)


def pairwise_km(lat, lon) -> np.ndarray:
    """Great-circle distances (km) between every pair of points (degrees), an n × n matrix."""
    lat = np.asarray(lat, dtype=float)
    lon = np.asarray(lon, dtype=float)
    return haversine_km(lon[:, None], lat[:, None], lon[None, :], lat[None, :])


def cluster_labels(lat, lon, distance_km: float = CLUSTER_KM) -> np.ndarray:
    """Cluster label (0..k-1) of each point: single-linkage components of the "within ``distance_km``"
    graph (d ≤ distance_km links two points). InputError for missing coordinates or a bad distance."""
    lat = np.asarray(lat, dtype=float)
    lon = np.asarray(lon, dtype=float)
    if not (np.isfinite(distance_km) and distance_km >= 0):
        raise InputError(f"cluster distance must be a non-negative number of km, not {distance_km!r}")
    bad = ~(np.isfinite(lat) & np.isfinite(lon))
    if bad.any():
        raise InputError(f"{int(bad.sum())} towers lack coordinates: the cluster split needs lat and lon")
    if lat.size == 0:
        return np.zeros(0, dtype=int)
    linked = pairwise_km(lat, lon) <= distance_km
    _, labels = connected_components(csr_matrix(linked), directed=False)
    return labels


def site_clusters(table: pd.DataFrame, distance_km: float = CLUSTER_KM) -> pd.Series:
    """Cluster label per site of a training table (``site_id, lat, lon``), indexed by site_id."""
    sites = table.drop_duplicates("site_id")[["site_id", "lat", "lon"]]
    labels = cluster_labels(sites["lat"], sites["lon"], distance_km)
    return pd.Series(labels, index=sites["site_id"].to_numpy(), name="cluster")


def row_clusters(table: pd.DataFrame, distance_km: float = CLUSTER_KM) -> np.ndarray:
    """Cluster label of every row of a training table (the group labels of the cluster split)."""
    return site_clusters(table, distance_km).loc[table["site_id"].to_numpy()].to_numpy()


def cluster_summary(table: pd.DataFrame, distance_km: float = CLUSTER_KM) -> dict:
    """How the towers cluster: number of sites, of clusters, of sites with a neighbour within
    ``distance_km`` and the size of the largest cluster."""
    sites = table.drop_duplicates("site_id")
    d = pairwise_km(sites["lat"], sites["lon"])
    np.fill_diagonal(d, np.inf)
    sizes = site_clusters(table, distance_km).value_counts()
    return {
        "distance_km": float(distance_km),
        "linkage": "single (connected components of d <= distance_km), haversine",
        "n_sites": int(len(sites)),
        "n_clusters": int(len(sizes)),
        "sites_with_neighbour": int((d.min(axis=1) <= distance_km).sum()) if len(sites) > 1 else 0,
        "largest_cluster": int(sizes.max()) if len(sizes) else 0,
    }
