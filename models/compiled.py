"""Fast prediction path of a model version: its boosters packed for the branch-free kernel.

Each booster of a version (``ef``, ``a``, ``le_direct``, ``h_direct``) is packed once per process
(:func:`models.forest.pack`, well under a second for a few hundred trees) and kept in memory; the C
kernel itself is model-independent and compiled once per machine. Results equal ``Booster.predict``
(checked in the tests to 1e-6 relative, in practice to float rounding of the leaf sum).
"""

from __future__ import annotations

import threading
from pathlib import Path

import lightgbm as lgb
import numpy as np

from models import registry
from models.emulator import MODEL_NAMES
from models.forest import Forest


class CompiledModels:
    """The packed boosters of the model versions of one models folder, packed on first use and kept
    (the context object that owns this cache; :func:`compiled_models` gives the current data
    directory's)."""

    def __init__(self, models_dir: Path):
        self.models_dir = Path(models_dir)
        self._lock = threading.Lock()
        self._packed: dict[tuple[str, str], Forest] = {}

    def get(self, version: str, model: str) -> Forest:
        """The packed booster ``model`` of ``version``."""
        if model not in MODEL_NAMES:
            raise ValueError(f"model must be one of {MODEL_NAMES}, not {model!r}")
        with self._lock:
            if (version, model) not in self._packed:
                text = registry.version_dir(version) / f"{model}.txt"
                self._packed[(version, model)] = Forest.from_booster(lgb.Booster(model_file=str(text)))
            return self._packed[(version, model)]


_contexts_lock = threading.Lock()
_contexts: dict[Path, CompiledModels] = {}


def compiled_models() -> CompiledModels:
    """The :class:`CompiledModels` of the current data directory's models folder."""
    root = registry.models_dir().resolve()
    with _contexts_lock:
        if root not in _contexts:
            _contexts[root] = CompiledModels(root)
        return _contexts[root]


def compiled_model(version: str, model: str) -> Forest:
    """The packed booster ``model`` of ``version`` (packed on first use, then kept)."""
    return compiled_models().get(version, model)


def predict(version: str, model: str, x: np.ndarray, *, n_jobs: int = 2) -> np.ndarray:
    """Predictions of booster ``model`` of ``version`` for the matrix ``x`` (rows × features)."""
    return compiled_model(version, model).predict(x, n_jobs=n_jobs)
