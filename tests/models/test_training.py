import json

import numpy as np

from models import registry, training
from models import training_table as T
from tests.models.emulator_tables import synthetic_table


def test_train_registers_version_with_cv_for_both_models(data_dir):
    table = synthetic_table()
    calls = []
    settings = training.TrainSettings(
        num_boost_round=15, n_folds=3, params={"min_data_in_leaf": 5}, shap_sample=120
    )
    version = training.train(settings, table=table, progress=lambda d, n: calls.append((d, n)))
    assert calls[-1][0] == calls[-1][1] and [c[0] for c in calls] == sorted(c[0] for c in calls)
    meta = json.loads((data_dir / "models" / version / "meta.json").read_text())
    assert meta["training_data"]["fingerprint_sha256"] == T.fingerprint(table)
    assert meta["targets"]["set"] == "corrected" and meta["targets"]["le"] == "le_corr"
    assert {"lightgbm", "numpy", "pandas", "shap"} <= set(meta["libraries"])
    assert [f["name"] for f in meta["features"]][:3] == ["ta", "sw_in", "lw_in"]
    assert all(f["units"] for f in meta["features"])
    cv = meta["cv_summary"]
    assert {(r["split"], r["model"]) for r in cv} == {
        (s, m) for s in ("random", "temporal", "spatial", "cluster") for m in ("constrained", "direct")
    }
    cv_settings = meta["cv_settings"]
    assert cv_settings["temporal_unit"] == "year" and cv_settings["skipped_splits"] == {}
    assert cv_settings["clusters"]["n_clusters"] == table["site_id"].nunique()  # sites far apart
    closed = [r for r in cv if r["model"] == "constrained"]
    assert max(r["eb_residual_max_abs"] for r in closed) < 1e-9
    for name in (
        "cv_scores",
        "cv_scores_igbp",
        "cv_predictions",
        "shap_ef",
        "shap_a",
        "shap_interaction_h_direct",
    ):
        assert len(registry.read_table(version, name)) > 0
    assert meta["shap"]["sample_size"] == 120 and meta["shap"]["interaction_sample_size"] == 120
    iv = meta["intervals"]
    assert iv["calibration_split"] == "cluster" and iv["bounds"] == ["q05", "q95"] and iv["level"] == 0.9
    assert set(iv["quantiles"]) == {"observed", "a_model"}
    q = iv["quantiles"]["a_model"]["ef"]
    assert q["q_lo"] < 0 < q["q_hi"] and q["n"] > 100
    coverage = registry.read_table(version, "cv_coverage")
    assert set(coverage["split"]) == set(cv_settings["splits"]) and coverage["coverage"].between(0, 1).all()
    assert {r["a_regime"] for r in iv["cv_coverage"]} == {"all", "A>=10", "A<10"}
    oof = registry.read_table(version, "cv_predictions")
    assert np.allclose(oof["obs_le_corr"], table["le_corr"].to_numpy()[oof["row"]])


def test_cluster_split_skipped_with_its_reason_when_all_towers_are_neighbours(data_dir):
    table = synthetic_table(n_sites=6, years=(2018,))
    table["lat"] = 45.0 + table["site_id"].str[-2:].astype(int) * 0.05  # 5.6 km apart
    table["lon"] = 7.0
    settings = training.TrainSettings(
        num_boost_round=5,
        n_folds=3,
        params={"min_data_in_leaf": 5},
        shap_sample=50,
        shap_interaction_sample=50,
    )
    meta = registry.read_meta(training.train(settings, table=table))
    assert meta["cv_settings"]["temporal_unit"] == "month"
    assert "cluster" not in meta["cv_settings"]["splits"]
    assert "at least 2 tower clusters" in meta["cv_settings"]["skipped_splits"]["cluster"]
    assert {r["split"] for r in meta["cv_summary"]} == {"random", "temporal", "spatial"}
