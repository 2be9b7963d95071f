import numpy as np
import pandas as pd

from models import evaluation as V
from models import features as F
from tests.models.emulator_tables import FAST, synthetic_table


def test_spatial_and_temporal_splits_disjoint():
    table = synthetic_table()
    for train, test in V.split_folds(table, "spatial"):
        assert not set(table["site_id"].iloc[train]) & set(table["site_id"].iloc[test])
    folds = V.split_folds(table, "temporal", n_folds=3)
    assert len(folds) == 3
    for train, test in folds:
        assert not set(table["time"].dt.year.iloc[train]) & set(table["time"].dt.year.iloc[test])
    tests = np.concatenate([t for _, t in V.split_folds(table, "random")])
    assert np.array_equal(np.sort(tests), np.arange(len(table)))


def test_single_year_table_holds_out_months():
    table = synthetic_table(years=(2018,))
    assert V.temporal_unit(table) == "month"
    for train, test in V.split_folds(table, "temporal"):
        tr = set(zip(table["time"].dt.year.iloc[train], table["time"].dt.month.iloc[train], strict=True))
        te = set(zip(table["time"].dt.year.iloc[test], table["time"].dt.month.iloc[test], strict=True))
        assert not tr & te


def test_out_of_fold_scores_and_energy_balance_residual():
    table = synthetic_table()
    oof = V.out_of_fold_predictions(table, list(F.FLUXNET_FEATURES), n_folds=3, fit_kwargs=FAST)
    for _key, grp in oof.groupby(["split", "model", "a_source"]):
        assert sorted(grp["row"]) == list(range(len(table)))
    assert set(oof["a_source"]) == {"observed", "a_model"}
    chain = oof[oof["a_source"] == "a_model"]
    assert np.array_equal(chain["a"], chain["a_model"]) and not np.allclose(chain["a"], chain["a_obs"])
    scores = V.score_table(oof, table)
    assert set(scores["split"]) == set(V.SPLITS) and set(scores["targets"]) == {"corrected", "raw"}
    closed = scores[scores["model"] == "constrained"]
    direct = scores[scores["model"] == "direct"]
    assert (closed["eb_residual_max_abs"] < 1e-9).all()  # closed on the A it used, whichever
    assert (direct["eb_residual_max_abs"] > 1).all()
    # the scores are the metrics of the saved out-of-fold predictions, small-A rows apart
    for source in ("observed", "a_model"):
        one = oof[(oof["split"] == "spatial") & (oof["model"] == "constrained") & (oof["a_source"] == source)]
        one = one[one["a_obs"] >= 10]
        obs = table["le_corr"].to_numpy()[one["row"]]
        r2 = 1 - np.sum((one["le"] - obs) ** 2) / np.sum((obs - obs.mean()) ** 2)
        row = scores.query(
            "split == 'spatial' and model == 'constrained' and targets == 'corrected' and variable == 'le' "
            f"and a_source == '{source}' and a_regime == 'A>=10'"
        )
        assert np.isclose(row["r2"].item(), r2) and row["n"].item() == len(one)
    small = scores.query("a_regime == 'A<10' and a_source == 'observed' and targets == 'corrected'")
    n_small = int((table["a"] < 10).sum())
    assert n_small > 0 and (small["n"] == n_small).all()
    head = V.headline(scores)
    assert set(head["a_regime"]) == {"A>=10"} and set(head["a_source"]) == {"observed"}
    assert (head["n"] == len(table) - n_small).all()
    by = V.score_table(oof, table, by_igbp=True, min_n=1)
    assert set(by["igbp"]) == set(table["igbp"])


def test_observed_closure():
    table = synthetic_table()
    c = V.observed_closure(table)
    assert abs(c["corrected"] - 1) < 0.05 and abs(c["raw"] - 0.8) < 0.05
    assert isinstance(
        V.a_model_scores(pd.DataFrame({c: [] for c in ("model", "split", "a_source", "a_obs", "a_model")})),
        pd.DataFrame,
    )
