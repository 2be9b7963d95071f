"""Where FluxLens keeps its data."""

from __future__ import annotations

import os
from pathlib import Path

ENV_DATA_DIR = "FLUXLENS_DATA_DIR"


def data_dir(path: str | os.PathLike | None = None) -> Path:
    """The data directory: ``path`` if given, else ``$FLUXLENS_DATA_DIR``, else ``./fluxlens-data``."""
    if path is not None:
        return Path(path)
    return Path(os.environ.get(ENV_DATA_DIR) or Path.cwd() / "fluxlens-data")
