"""Fast prediction path of a model version: its boosters packed for the branch-free kernel.

Each booster of a version (``ef``, ``a``, ``le_direct``, ``h_direct``) is packed once per process
(:func:`models.forest.pack`, well under a second for a few hundred trees) and kept in memory; the C
kernel itself is model-independent and compiled once per machine. Results equal ``Booster.predict``
(checked in the tests to 1e-6 relative, in practice to float rounding of the leaf sum).
"""

from __future__ import annotations

import threading

import lightgbm as lgb
import numpy as np

from models import registry
from models.emulator import MODEL_NAMES
from models.forest import Forest

_lock = threading.Lock()
_loaded: dict[tuple[str, str], Forest] = {}


def compiled_model(version: str, model: str) -> Forest:
    """The packed booster ``model`` of ``version`` (packed on first use, then kept)."""
    if model not in MODEL_NAMES:
        raise ValueError(f"model must be one of {MODEL_NAMES}, not {model!r}")
    key = (str(registry.version_dir(version)), model)
    with _lock:
        if key not in _loaded:
            text = registry.version_dir(version) / f"{model}.txt"
            _loaded[key] = Forest.from_booster(lgb.Booster(model_file=str(text)))
        return _loaded[key]


def predict(version: str, model: str, x: np.ndarray, *, n_jobs: int = 2) -> np.ndarray:
    """Predictions of booster ``model`` of ``version`` for the matrix ``x`` (rows × features)."""
    return compiled_model(version, model).predict(x, n_jobs=n_jobs)
