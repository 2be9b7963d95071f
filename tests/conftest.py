"""Shared fixtures: the real sample data beside the repo, and temporary data directories."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("FLUXLENS_SHARED_DATA", REPO.parent / "shared" / "data"))


def _shared_required() -> bool:
    return bool(os.environ.get("FLUXLENS_REQUIRE_SHARED_DATA") or os.environ.get("CI"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data``; skips with a reason where it is absent, fails in CI where it must exist."""
    if not SHARED_DATA.is_dir():
        msg = f"real sample data not found at {SHARED_DATA} (set FLUXLENS_SHARED_DATA)"
        if _shared_required():
            pytest.fail(msg)
        pytest.skip(msg)
    return SHARED_DATA


@pytest.fixture
def data_dir(tmp_path, monkeypatch) -> Path:
    """An empty FluxLens data directory, set as ``$FLUXLENS_DATA_DIR`` for the test."""
    d = tmp_path / "fluxlens-data"
    d.mkdir()
    monkeypatch.setenv("FLUXLENS_DATA_DIR", str(d))
    return d


@pytest.fixture(scope="session")
def demo_world(tmp_path_factory) -> Path:
    """The small demo world, built once per test session (read-only for tests)."""
    from data_prep.demo import build_demo

    d = tmp_path_factory.mktemp("demo-world") / "fluxlens-data"
    build_demo(d, small=True)
    return d


@contextmanager
def demo_copy_with_model(demo_world: Path, dest: Path, **settings) -> Iterator[str]:
    """A writable hard-link copy of the demo world at ``dest`` (stores are replaced, never modified
    in place) holding one emulator trained on its towers with ``settings``; ``$FLUXLENS_DATA_DIR``
    points at it until the context ends. Yields the model version."""
    from models import training

    shutil.copytree(demo_world, dest, copy_function=os.link)
    mp = pytest.MonkeyPatch()
    mp.setenv("FLUXLENS_DATA_DIR", str(dest))
    try:
        yield training.train(training.TrainSettings(sites_source="fluxnet_demo", **settings))
    finally:
        mp.undo()
