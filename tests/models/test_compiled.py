import numpy as np
import pytest

from models import compiled, registry
from models import emulator as E
from models import features as F
from models import training_table as T
from tests.models.emulator_tables import synthetic_table


@pytest.fixture
def version(data_dir):
    table = synthetic_table()
    emu = E.fit_emulator(table, list(F.FLUXNET_FEATURES), num_boost_round=60, params={"min_data_in_leaf": 5})
    meta = {"features": [F.spec(f).to_dict() for f in emu.features], "constrained": True, "a_min": emu.a_min}
    v = registry.new_version(T.fingerprint(table))
    registry.save(emu, meta, {}, version=v)
    return v


def _random_inputs(features, n, seed):
    rng = np.random.default_rng(seed)
    cols = []
    for f in features:
        if f == "igbp":
            cols.append(rng.choice([1.0, 4.0, 10.0, 12.0, 17.0, 40.0, -3.0, np.nan], n))
        else:
            cols.append(rng.normal(0, 1, n) * rng.choice([1, 10, 300], n))
    x = np.column_stack(cols)
    x[rng.uniform(size=x.shape) < 0.05] = np.nan
    return x


@pytest.mark.parametrize("model", ["ef", "a", "le_direct", "h_direct"])
def test_compiled_equals_booster(version, model):
    emu = registry.load(version)
    feats = emu.a_features if model == "a" else emu.features
    x = _random_inputs(feats, 20000, seed=3)
    ref = emu.boosters[model].predict(x)
    fast = compiled.predict(version, model, x)
    assert np.all(np.abs(fast - ref) <= 1e-6 * np.maximum(np.abs(ref), 1e-12))
    assert np.isfinite(fast).all()  # missing inputs follow the trees' default branches


def test_compiled_model_is_kept(version):
    assert compiled.compiled_model(version, "ef") is compiled.compiled_model(version, "ef")
    with pytest.raises(ValueError, match="model must be one of"):
        compiled.compiled_model(version, "le")
