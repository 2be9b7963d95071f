"""FluxLens's settings: the one place that reads the process environment.

A :class:`Settings` object is built from a snapshot of the environment and the command line's
options (``fluxlens --data-dir``) and is what every layer asks (:func:`current`). The command line
never writes ``os.environ``: it installs its settings with :func:`configure`, and child processes
(the job worker beside the server, the GRIB decoder) get theirs with :func:`child_environment`.
Without :func:`configure` the settings follow the environment as it is (tests change it per test).

Values are kept as given; the module that owns a setting parses and checks it where it is used
(a bad ``$FLUXLENS_AUTH`` fails ``fluxlens serve``, not ``fluxlens ingest``), with the shared rules
:meth:`Settings.number` and :meth:`Settings.flag`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from catalog.errors import InputError

ENV_DATA_DIR = "FLUXLENS_DATA_DIR"
ENV_TILE_URL = "FLUXLENS_TILE_URL"
ENV_SHARED_DATA = "FLUXLENS_SHARED_DATA"
DEFAULT_SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"  # beside the checkout
DEFAULT_TILE_URL = "https://tile.openstreetmap.org/{Z}/{X}/{Y}.png"
OTHER_VARIABLES = ("PORT", "CC", "PYTHONPATH", "HOME")  # read besides every FLUXLENS_* variable
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _relevant(environ: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in environ.items() if k.startswith("FLUXLENS_") or k in OTHER_VARIABLES}


@dataclass(frozen=True)
class Settings:
    """The environment's FluxLens variables (``environ``) and the command line's overrides."""

    environ: Mapping[str, str] = field(default_factory=dict)
    data_dir_option: Path | None = None  # fluxlens --data-dir

    def text(self, name: str, default: str = "") -> str:
        """The variable ``name`` as given, stripped; ``default`` when unset or empty."""
        return (self.environ.get(name) or "").strip() or default

    def number(self, name: str, default: float, kind: type = int) -> float:
        """A positive ``kind`` (int or float) from variable ``name``; ``default`` when unset or empty.
        InputError naming the variable for anything else."""
        raw = self.text(name)
        if not raw:
            return default
        try:
            value = kind(raw)
        except ValueError:
            raise InputError(f"${name}={raw!r}: expected a {kind.__name__}") from None
        if value <= 0:
            raise InputError(f"${name}={raw!r}: must be > 0")
        return value

    def flag(self, name: str, default: bool) -> bool:
        """A yes/no variable (1/true/yes/on, 0/false/no/off); ``default`` when unset or empty."""
        raw = self.text(name).lower()
        if not raw:
            return default
        if raw not in _TRUE | _FALSE:
            raise InputError(f"${name}={raw!r}: expected 1 or 0")
        return raw in _TRUE

    @property
    def data_dir(self) -> Path:
        """``--data-dir``, else ``$FLUXLENS_DATA_DIR``, else ``./fluxlens-data``."""
        if self.data_dir_option is not None:
            return Path(self.data_dir_option)
        return Path(self.text(ENV_DATA_DIR) or Path.cwd() / "fluxlens-data")

    @property
    def tile_url(self) -> str | None:
        """URL template ({Z}/{X}/{Y}) of the web tiles under the map's optional basemap:
        ``$FLUXLENS_TILE_URL`` if set, else OpenStreetMap's standard tiles; None when the variable
        is set empty (no basemap offered)."""
        return (self.environ.get(ENV_TILE_URL, DEFAULT_TILE_URL) or "").strip() or None

    @property
    def shared_data_dir(self) -> Path:
        """The folder of real sample downloads: ``$FLUXLENS_SHARED_DATA``, else ``../shared/data``
        beside the checkout."""
        return Path(self.text(ENV_SHARED_DATA) or DEFAULT_SHARED_DATA)

    @property
    def cache_dir(self) -> Path:
        """Where compiled kernels are kept: ``$FLUXLENS_CACHE_DIR`` or ``~/.cache/fluxlens``."""
        return Path(self.text("FLUXLENS_CACHE_DIR") or Path.home() / ".cache" / "fluxlens")


_configured: Settings | None = None
_from_environment: tuple[tuple[tuple[str, str], ...], Settings] | None = None


def from_environment(environ: Mapping[str, str] | None = None, *, data_dir=None) -> Settings:
    """Settings of ``environ`` (default: this process's environment) and the command line's
    ``data_dir``."""
    values = _relevant(os.environ if environ is None else environ)
    return Settings(MappingProxyType(values), None if data_dir is None else Path(data_dir))


def configure(settings: Settings | None) -> None:
    """Make ``settings`` this process's settings (the command line does, once); None: follow the
    environment again."""
    global _configured
    _configured = settings


def current() -> Settings:
    """This process's settings: those :func:`configure` installed, else the environment's (built
    again only when the environment changed)."""
    global _from_environment
    if _configured is not None:
        return _configured
    snapshot = tuple(sorted(_relevant(os.environ).items()))
    if _from_environment is None or _from_environment[0] != snapshot:
        _from_environment = (snapshot, Settings(MappingProxyType(dict(snapshot))))
    return _from_environment[1]


def child_environment(**extra: str) -> dict[str, str]:
    """The environment of a FluxLens child process: this one's, with the data directory of
    :func:`current` (so ``--data-dir`` reaches it) and ``extra`` set."""
    return {**os.environ, ENV_DATA_DIR: str(current().data_dir.resolve()), **extra}


def data_dir(path: str | os.PathLike | None = None) -> Path:
    """The data directory: ``path`` if given, else the current settings'."""
    return Path(path) if path is not None else current().data_dir


def tile_url() -> str | None:
    return current().tile_url


def shared_data_dir() -> Path:
    return current().shared_data_dir
