import numpy as np
import pandas as pd
import pytest

from catalog.errors import InputError
from catalog.geo import haversine_km
from models import evaluation as V
from models import site_clusters as C

KM_PER_DEG_LAT = 111.195  # one degree of latitude on the IUGG mean sphere


def _sites_table(lat, lon, *, months: int = 3) -> pd.DataFrame:
    rows = []
    for i, (y, x) in enumerate(zip(lat, lon, strict=True)):
        for m in range(months):
            rows.append({"site_id": f"S{i:03d}", "lat": y, "lon": x, "time": pd.Timestamp(2010, m + 1, 1)})
    return pd.DataFrame(rows)


def _min_cross_fold_km(table: pd.DataFrame, train, test) -> float:
    a = table.iloc[train].drop_duplicates("site_id")
    b = table.iloc[test].drop_duplicates("site_id")
    d = haversine_km(
        a["lon"].to_numpy()[:, None], a["lat"].to_numpy()[:, None], b["lon"].to_numpy(), b["lat"].to_numpy()
    )
    return float(d.min())


def test_single_linkage_chains_neighbours_of_neighbours():
    step = 40.0 / KM_PER_DEG_LAT  # 40 km apart along a meridian: A-B, B-C within 50 km, A-C 80 km
    lat = [10.0, 10.0 + step, 10.0 + 2 * step, 30.0, 30.0 + 60.0 / KM_PER_DEG_LAT]
    labels = C.cluster_labels(lat, [5.0] * 5, 50.0)
    assert labels[0] == labels[1] == labels[2]
    assert len({labels[0], labels[3], labels[4]}) == 3  # 60 km apart: not linked
    assert len(set(C.cluster_labels(lat, [5.0] * 5, 70.0))) == 2
    with pytest.raises(InputError, match="lack coordinates"):
        C.cluster_labels([1.0, np.nan], [1.0, 2.0])


@pytest.mark.parametrize("distance_km", [25.0, 50.0, 150.0])
def test_no_fold_has_towers_closer_than_d_on_both_sides_constructed(distance_km):
    rng = np.random.default_rng(1)
    # dense groups of towers (a few km to ~100 km apart) and isolated ones
    centres = rng.uniform([-40, -120], [60, 120], size=(15, 2))
    pts = [c + rng.normal(0, 0.4, 2) for c in centres for _ in range(rng.integers(1, 5))]
    lat, lon = np.array(pts).T
    table = _sites_table(lat, lon)
    folds = V.split_folds(table, "cluster", n_folds=5, cluster_km=distance_km)
    assert len(folds) >= 2
    tests = np.concatenate([t for _, t in folds])
    assert np.array_equal(np.sort(tests), np.arange(len(table)))
    for train, test in folds:
        assert _min_cross_fold_km(table, train, test) > distance_km
    # the spatial split does put close towers on both sides of some fold
    spatial = V.split_folds(table, "spatial", n_folds=5)
    assert min(_min_cross_fold_km(table, tr, te) for tr, te in spatial) < 25.0


def test_no_fold_has_towers_closer_than_50_km_on_both_sides_real_sites(shared_data):
    from data_prep.fluxnet import read_site_table

    sites = read_site_table(shared_data / "fluxnet2015_monthly").dropna(subset=["lat", "lon"])
    table = _sites_table(sites["lat"].to_numpy(float), sites["lon"].to_numpy(float), months=1)
    summary = C.cluster_summary(table, 50.0)
    assert summary["sites_with_neighbour"] > 0 and summary["n_clusters"] < summary["n_sites"]
    folds = V.split_folds(table, "cluster", n_folds=5, cluster_km=50.0)
    assert len(folds) == 5
    for train, test in folds:
        assert _min_cross_fold_km(table, train, test) > 50.0


def test_too_few_clusters_is_a_clear_error_and_skipped_in_the_plan():
    table = _sites_table([45.0, 45.1, 45.2], [7.0, 7.0, 7.1])  # all within 50 km: one cluster
    with pytest.raises(InputError, match="at least 2 tower clusters"):
        V.split_folds(table, "cluster", cluster_km=50.0)
    folds, skipped = V.fold_plan(table, ("spatial", "cluster"), n_folds=3)
    assert list(folds) == ["spatial"] and "tower clusters" in skipped["cluster"]
