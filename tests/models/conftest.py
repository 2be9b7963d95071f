"""Job database fixtures: a throwaway PostgreSQL server per test session, and a job database URL
parametrized over the backends (SQLite file, PostgreSQL database)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests import pg_server

ENV_REQUIRE_POSTGRES = "FLUXLENS_REQUIRE_POSTGRES"
BACKENDS = ("sqlite", "postgresql")


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[pg_server.PostgresServer]:
    """A PostgreSQL cluster started for the session; skips with the reason where the server binaries
    are missing, fails instead when ``$FLUXLENS_REQUIRE_POSTGRES=1`` (CI)."""
    reason = pg_server.missing_reason()
    if reason:
        if os.environ.get(ENV_REQUIRE_POSTGRES) == "1":
            pytest.fail(f"{reason} (required: {ENV_REQUIRE_POSTGRES}=1)")
        pytest.skip(reason)
    server = pg_server.PostgresServer()
    try:
        yield server.start()
    finally:
        server.stop()


def jobs_db_url(backend: str, request: pytest.FixtureRequest, tmp_path) -> str:
    """A fresh, empty job database of ``backend``: its path (SQLite) or URL (PostgreSQL)."""
    if backend == "sqlite":
        return str(tmp_path / "jobs.sqlite")
    if backend == "postgresql":
        return request.getfixturevalue("postgres_server").create_database()
    raise ValueError(f"unknown backend {backend!r}")


@pytest.fixture(params=BACKENDS)
def jobs_db(request, tmp_path) -> str:
    """A fresh job database on each backend in turn (path or URL)."""
    return jobs_db_url(request.param, request, tmp_path)
