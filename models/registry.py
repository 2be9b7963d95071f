"""The emulator registry: one folder per model version under ``<data_dir>/models/``.

``<version>/`` holds the LightGBM text models (``ef.txt``, ``a.txt``, ``le_direct.txt``,
``h_direct.txt``, written by ``Booster.save_model``), ``meta.json`` (features with units, parameters,
targets used, training-data fingerprint, CV scores, library versions, creation time), the
cross-validation tables (``cv_*.parquet``) and the SHAP cache (``shap/``). Nothing is pickled.
A version is written to a temporary folder and renamed into place, so a half-written version is never listed.
"""

from __future__ import annotations

import json
import platform
import re
import shutil
import tempfile
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

import lightgbm as lgb
import pandas as pd

from catalog import settings
from catalog.errors import InputError
from models.emulator import MODEL_NAMES, Emulator

_VERSION_RE = re.compile(r"^[0-9]{8}T[0-9]{6}Z-[0-9a-f]{8}(-[0-9]+)?$")
LIBRARIES = ("lightgbm", "numpy", "pandas", "scikit-learn", "shap", "xarray")


def models_dir() -> Path:
    return settings.data_dir() / "models"


def library_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for lib in LIBRARIES:
        try:
            out[lib] = metadata.version(lib)
        except metadata.PackageNotFoundError:
            out[lib] = "not installed"
    return out


def new_version(fingerprint: str, *, now: datetime | None = None) -> str:
    """``<UTC time>-<first 8 hex of the data fingerprint>``, suffixed if that folder exists."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    base = f"{stamp}-{fingerprint[:8]}"
    version, k = base, 1
    while (models_dir() / version).exists():
        version, k = f"{base}-{k}", k + 1
    return version


def version_dir(version: str) -> Path:
    """Folder of an existing version; :class:`InputError` naming the known ones otherwise."""
    if not isinstance(version, str) or not _VERSION_RE.match(version):
        raise InputError(f"{version!r} is not a model version (expected e.g. 20260101T000000Z-0123abcd)")
    path = models_dir() / version
    if not (path / "meta.json").is_file():
        known = ", ".join(v["version"] for v in list_versions()) or "none"
        raise InputError(f"unknown model version {version!r}; known versions: {known}")
    return path


def save(emulator: Emulator, meta: dict, tables: dict[str, pd.DataFrame], *, version: str) -> Path:
    """Write a new version atomically; returns its folder."""
    root = models_dir()
    root.mkdir(parents=True, exist_ok=True)
    final = root / version
    if final.exists():
        raise InputError(f"model version {version!r} already exists")
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{version}-", dir=root))
    try:
        for name in MODEL_NAMES:
            emulator.boosters[name].save_model(str(tmp / f"{name}.txt"))
        for name, table in tables.items():
            table.to_parquet(tmp / f"{name}.parquet", index=False)
        meta = {**meta, "version": version, "model_files": {n: f"{n}.txt" for n in MODEL_NAMES}}
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2, default=_json_default))
        tmp.chmod(0o755)  # mkdtemp creates 0700; versions are read by the web process too
        tmp.rename(final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def _json_default(value):
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, (pd.Timestamp, datetime)):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def read_meta(version: str) -> dict:
    return json.loads((version_dir(version) / "meta.json").read_text())


def read_table(version: str, name: str) -> pd.DataFrame:
    """A parquet table saved with the version (e.g. ``cv_scores``); InputError if absent."""
    path = version_dir(version) / f"{name}.parquet"
    if not path.is_file():
        raise InputError(f"model version {version!r} has no table {name!r}")
    return pd.read_parquet(path)


def list_versions() -> list[dict]:
    """Versions, newest first: ``version, created, constrained, targets, source, n_rows, synthetic,
    time_step, feature_source`` (text), ``cv`` and ``cv_comparison`` (gridded models) from meta."""
    root = models_dir()
    if not root.is_dir():
        return []
    out = []
    for path in root.iterdir():
        if not (_VERSION_RE.match(path.name) and (path / "meta.json").is_file()):
            continue
        meta = json.loads((path / "meta.json").read_text())
        out.append(
            {
                "version": path.name,
                "created": meta.get("created"),
                "constrained": meta.get("constrained"),
                "targets": meta.get("targets", {}).get("set"),
                "source": meta.get("training_data", {}).get("source"),
                "n_rows": meta.get("training_data", {}).get("n_rows"),
                "synthetic": meta.get("training_data", {}).get("synthetic"),
                "time_step": meta.get("training_data", {}).get("time_step"),
                "feature_source": feature_source_text(meta),
                "cv": meta.get("cv_summary", []),
                "cv_comparison": meta.get("cv_comparison", []),
            }
        )
    return sorted(out, key=lambda v: v["version"], reverse=True)


def feature_source_text(meta: dict) -> str:
    """``tower`` or ``gridded(<products>)``: where a version's features came from."""
    source = meta.get("feature_source") or {"kind": "tower"}
    if source.get("kind") != "gridded":
        return "tower"
    return f"gridded({','.join(sorted(set(source['feature_set']['variables'].values())))})"


def latest_version() -> str:
    versions = list_versions()
    if not versions:
        raise InputError(f"no trained model in {models_dir()}; run `fluxlens train` first")
    return versions[0]["version"]


def load(version: str) -> Emulator:
    """The emulator of ``version`` from its text models and ``meta.json``."""
    path = version_dir(version)
    meta = json.loads((path / "meta.json").read_text())
    boosters = {name: lgb.Booster(model_file=str(path / f"{name}.txt")) for name in MODEL_NAMES}
    return Emulator(
        features=[f["name"] for f in meta["features"]],
        boosters=boosters,
        constrained=bool(meta["constrained"]),
        a_min=float(meta["a_min"]),
        meta=meta,
    )
