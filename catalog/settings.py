"""Where FluxLens keeps its data, and where the map's optional basemap tiles come from."""

from __future__ import annotations

import os
from pathlib import Path

ENV_DATA_DIR = "FLUXLENS_DATA_DIR"
ENV_TILE_URL = "FLUXLENS_TILE_URL"
ENV_SHARED_DATA = "FLUXLENS_SHARED_DATA"
DEFAULT_SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"  # beside the checkout
DEFAULT_TILE_URL = "https://tile.openstreetmap.org/{Z}/{X}/{Y}.png"


def data_dir(path: str | os.PathLike | None = None) -> Path:
    """The data directory: ``path`` if given, else ``$FLUXLENS_DATA_DIR``, else ``./fluxlens-data``."""
    if path is not None:
        return Path(path)
    return Path(os.environ.get(ENV_DATA_DIR) or Path.cwd() / "fluxlens-data")


def tile_url() -> str | None:
    """URL template ({Z}/{X}/{Y}) of the web tiles under the map's optional basemap:
    ``$FLUXLENS_TILE_URL`` if set, else OpenStreetMap's standard tiles; None when the variable is
    set empty (no basemap offered)."""
    url = os.environ.get(ENV_TILE_URL, DEFAULT_TILE_URL).strip()
    return url or None


def shared_data_dir() -> Path:
    """The folder of real sample downloads: ``$FLUXLENS_SHARED_DATA``, else ``../shared/data``
    beside the checkout."""
    return Path(os.environ.get(ENV_SHARED_DATA) or DEFAULT_SHARED_DATA)
