import json

import numpy as np
import pandas as pd
import pytest

from catalog.errors import InputError
from models import emulator as E
from models import features as F
from models import registry
from models import training_table as T
from tests.models.emulator_tables import FAST, synthetic_table


def test_round_trip_same_predictions(data_dir):
    table = synthetic_table()
    emu = E.fit_emulator(table, list(F.FLUXNET_FEATURES), **FAST)
    meta = {
        "features": [F.spec(f).to_dict() for f in emu.features],
        "constrained": True,
        "a_min": emu.a_min,
        "training_data": {"fingerprint_sha256": T.fingerprint(table)},
    }
    version = registry.new_version(T.fingerprint(table))
    path = registry.save(emu, meta, {"cv_scores": pd.DataFrame({"r2": [0.5]})}, version=version)
    assert path == data_dir / "models" / version
    assert not list(path.rglob("*.pkl")) and not list(path.rglob("*.pickle"))
    loaded = registry.load(version)
    for model in ("constrained", "direct"):
        a = emu.predict(table, model=model)
        b = loaded.predict(table, model=model)
        assert np.array_equal(a.to_numpy(), b.to_numpy(), equal_nan=True)
    assert json.loads((path / "meta.json").read_text())["version"] == version
    assert registry.read_table(version, "cv_scores")["r2"].tolist() == [0.5]
    assert [v["version"] for v in registry.list_versions()] == [version]
    assert registry.latest_version() == version
    # a second version of the same data gets a distinct name
    assert (
        registry.new_version(T.fingerprint(table)) != version or not (data_dir / "models" / version).exists()
    )


def test_unknown_version(data_dir):
    with pytest.raises(InputError, match="unknown model version"):
        registry.load("20200101T000000Z-deadbeef")
    with pytest.raises(InputError, match="not a model version"):
        registry.load("../../etc")
    with pytest.raises(InputError, match="no trained model"):
        registry.latest_version()
    assert registry.list_versions() == []


def test_fingerprint_is_sha256_of_content():
    table = synthetic_table()
    fp = T.fingerprint(table)
    assert len(fp) == 64 and fp == T.fingerprint(table.copy())
    changed = table.copy()
    changed.loc[5, "le_corr"] += 1e-9
    assert T.fingerprint(changed) != fp
