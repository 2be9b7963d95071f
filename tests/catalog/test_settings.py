"""The one settings object: built from the environment and the command line, never writing the
environment; the shared parsing rules name the variable in their errors."""

import os

import pytest

from catalog import settings
from catalog.errors import InputError


def test_follows_the_environment_until_configured(tmp_path, monkeypatch):
    monkeypatch.setenv(settings.ENV_DATA_DIR, str(tmp_path / "a"))
    assert settings.data_dir() == tmp_path / "a"
    monkeypatch.setenv(settings.ENV_DATA_DIR, str(tmp_path / "b"))
    assert settings.current().data_dir == tmp_path / "b"  # built again: the environment changed
    before = dict(os.environ)
    settings.configure(settings.from_environment(data_dir=tmp_path / "cli"))
    try:
        assert settings.data_dir() == tmp_path / "cli"
        assert settings.data_dir(tmp_path / "given") == tmp_path / "given"
        assert settings.child_environment(X="1")[settings.ENV_DATA_DIR] == str((tmp_path / "cli").resolve())
        assert dict(os.environ) == before  # the command line's choice never lands in os.environ
    finally:
        settings.configure(None)
    assert settings.data_dir() == tmp_path / "b"


def test_parsing_rules():
    env = {"FLUXLENS_N": " 7 ", "FLUXLENS_F": "0.5", "FLUXLENS_BAD": "x", "FLUXLENS_NEG": "-1"}
    s = settings.from_environment({**env, "FLUXLENS_ON": "Yes", "OTHER": "ignored"})
    assert s.number("FLUXLENS_N", 3) == 7 and s.number("FLUXLENS_F", 1.0, float) == 0.5
    assert s.number("FLUXLENS_UNSET", 3) == 3 and s.flag("FLUXLENS_ON", False) is True
    assert "OTHER" not in s.environ
    with pytest.raises(InputError, match=r"\$FLUXLENS_BAD='x': expected a int"):
        s.number("FLUXLENS_BAD", 3)
    with pytest.raises(InputError, match="must be > 0"):
        s.number("FLUXLENS_NEG", 3)
    with pytest.raises(InputError, match=r"\$FLUXLENS_BAD='x': expected 1 or 0"):
        s.flag("FLUXLENS_BAD", False)
    assert settings.from_environment({settings.ENV_TILE_URL: ""}).tile_url is None
    assert settings.from_environment({}).tile_url == settings.DEFAULT_TILE_URL
