import pytest

from fluxlens.cli import main
from models import training
from tests.models.emulator_tables import synthetic_table


def test_models_command_lists_versions(data_dir, capsys):
    assert main(["models"]) == 0
    assert "no trained models" in capsys.readouterr().out
    version = training.train(
        training.TrainSettings(num_boost_round=5, n_folds=2, params={"min_data_in_leaf": 5}, shap_sample=50),
        table=synthetic_table(n_sites=6),
    )
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert version in out and "spatial" in out and "constrained" in out and "direct" in out
    assert (
        "cluster" in out and "| A a_model: R2" in out and "| A<10 (n " in out and "1 - SS_res/SS_tot" in out
    )


def test_predict_command_rejects_unknown_model(data_dir, capsys):
    rc = main(
        [
            "predict",
            "--model",
            "20200101T000000Z-deadbeef",
            "--bbox",
            "0,0,1,1",
            "--start",
            "2018-01-01",
            "--end",
            "2018-01-02",
        ]
    )
    assert rc == 2 and "unknown model version" in capsys.readouterr().err


def test_train_command_rejects_unknown_source(data_dir, capsys):
    assert main(["train", "--sites-source", "nowhere"]) == 2
    assert "nowhere" in capsys.readouterr().err


def test_feature_spec_parsing():
    from models.commands import _feature_spec

    assert _feature_spec(None) == ("tower", None)
    assert _feature_spec("gridded") == ("gridded", None)
    assert _feature_spec("tower") == ("tower", None)
    assert _feature_spec("gridded:ta,ws") == ("gridded", ("ta", "ws"))
    assert _feature_spec("ta, vpd") == ("tower", ("ta", "vpd"))


def test_train_command_refuses_products_for_tower_features_and_bad_splits(data_dir, capsys):
    assert main(["train", "--forcing", "era5", "--sites-source", "nowhere"]) == 2
    assert "train with --features gridded" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["train", "--splits", "random,bogus"])
    assert "bad splits 'random,bogus'" in capsys.readouterr().err
