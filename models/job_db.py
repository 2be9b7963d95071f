"""The job database backends: how ``models.jobs.JobStore`` talks to SQLite or to a PostgreSQL server.

``open_job_database(url)`` picks the backend from the URL:

* nothing → ``$FLUXLENS_JOBS_DB``, else ``<data_dir>/jobs.sqlite``;
* a path or ``sqlite:///<path>`` → ``SqliteDatabase`` (stdlib ``sqlite3``, WAL, busy timeout, one
  short connection per call, write transactions ``BEGIN IMMEDIATE``);
* ``postgresql://user:password@host:port/db`` or ``postgres://…`` (any libpq URI, e.g.
  ``?host=/run/postgresql`` for a unix socket) → ``PostgresDatabase`` (psycopg 3, autocommit
  connections reused through a small per-process pool, write transactions at READ COMMITTED).

Both give the store the same small surface: ``read()`` and ``write()`` connections whose
``execute(sql, params)`` takes ``?`` placeholders and returns rows addressable by column name, the
DDL types, ``claim_lock`` (the row-locking clause of the claim's sub-select) and ``lock_user``
(serialises one user's submissions so a per-user limit is checked atomically). The SQL of the job
operations stays in ``models.jobs``, written once.
"""

from __future__ import annotations

import contextlib
import os
import queue
import re
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

from catalog import settings
from catalog.errors import FluxLensError, InputError

ENV_JOBS_DB = "FLUXLENS_JOBS_DB"
URL_FORMS = "a path, sqlite:///<path>, postgresql://user:password@host:port/db or postgres://…"


class Cursor(Protocol):
    rowcount: int

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


class Connection(Protocol):
    def execute(self, sql: str, params: tuple | list = ()) -> Cursor: ...


# user:password@ in the authority (up to its last "@"), and a password= query parameter.
_AUTHORITY_PASSWORD = re.compile(r"^([a-z][a-z0-9+.-]*://[^:@/?#]*):[^/?#]*@", re.IGNORECASE)
_QUERY_PASSWORD = re.compile(r"([?&]password=)[^&#]*", re.IGNORECASE)


def redact_url(url: str) -> str:
    """``url`` with any password (in the authority or a ``password=`` parameter) replaced by ``***``."""
    return _QUERY_PASSWORD.sub(r"\1***", _AUTHORITY_PASSWORD.sub(r"\1:***@", url))


def open_job_database(url: str | os.PathLike | None = None) -> SqliteDatabase | PostgresDatabase:
    """The backend for ``url``, else ``$FLUXLENS_JOBS_DB``, else ``<data_dir>/jobs.sqlite``."""
    raw = str(url) if url is not None else settings.current().text(ENV_JOBS_DB)
    if not raw:
        return SqliteDatabase(settings.data_dir() / "jobs.sqlite")
    scheme = raw.split("://", 1)[0].lower() if "://" in raw else ""
    if scheme == "sqlite":
        if not raw.startswith("sqlite:///"):
            raise InputError(f"job database {raw!r}: write a SQLite URL as sqlite:///<path>")
        return SqliteDatabase(Path(raw.removeprefix("sqlite:///")))
    if scheme in ("postgresql", "postgres"):
        return PostgresDatabase.for_url(raw)
    if scheme:
        raise InputError(f"job database {redact_url(raw)!r}: unknown scheme {scheme!r}; use {URL_FORMS}")
    return SqliteDatabase(Path(raw))


class SqliteDatabase:
    """The job tables in one SQLite file. Each call opens its own short connection, so one object is
    safe to share between threads."""

    BUSY_TIMEOUT_MS = 30_000
    id_column = "INTEGER PRIMARY KEY AUTOINCREMENT"
    dialect = "sqlite"
    float_type = "REAL"
    claim_lock = ""  # BEGIN IMMEDIATE already holds the database's only write lock

    def __init__(self, path: Path):
        self.path = Path(path)
        self.location = str(self.path)

    def create_schema(self, ddl: str, version: int, upgrades: dict[int, str]) -> None:
        """Run ``ddl`` (a script) unless the file already carries schema ``version``; a file of an
        older schema first runs ``upgrades[v]`` (a script, this backend's) for each later ``v``."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.read() as con:
            current = con.execute("PRAGMA user_version").fetchone()[0]
            if current != version:
                con.execute("PRAGMA journal_mode = WAL")
                for v in range(current + 1, version + 1) if current else ():
                    con.executescript(upgrades[v])
                con.executescript(f"{ddl};\nPRAGMA user_version = {int(version)};")

    @contextlib.contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """A connection in autocommit mode (each statement its own transaction)."""
        con = sqlite3.connect(self.path, timeout=self.BUSY_TIMEOUT_MS / 1000, isolation_level=None)
        try:
            con.row_factory = sqlite3.Row
            con.execute(f"PRAGMA busy_timeout = {self.BUSY_TIMEOUT_MS}")
            con.execute("PRAGMA foreign_keys = ON")
            yield con
        finally:
            con.close()

    @contextlib.contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction that holds the database's write lock from its first statement."""
        with self.read() as con:
            con.execute("BEGIN IMMEDIATE")
            try:
                yield con
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")

    def lock_user(self, con: sqlite3.Connection, user: str) -> None:
        """Nothing to do: a ``write()`` transaction already excludes every other writer."""

    def close(self) -> None:
        """Nothing held between calls."""


class _PgConnection:
    """A psycopg connection that takes ``?`` placeholders and returns rows as dicts."""

    def __init__(self, con):
        self.raw = con

    def execute(self, sql: str, params: tuple | list = ()):
        return self.raw.execute(sql.replace("?", "%s"), params)


class PostgresDatabase:
    """The job tables in a PostgreSQL database. Connections are autocommit and reused: idle ones
    wait in a per-process pool (up to ``POOL_SIZE``); one idle for a while is pinged before reuse
    and a broken one is dropped. One object is safe to share between threads, and ``for_url``
    gives every store of a process on the same URL the same object, so the number of connections
    does not grow with the number of stores (one per web session)."""

    POOL_SIZE = 4
    IDLE_CHECK_S = 5.0
    CONNECT_TIMEOUT_S = 10
    id_column = "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"
    dialect = "postgresql"
    float_type = "DOUBLE PRECISION"
    # Concurrent claimers skip rows another transaction is taking instead of waiting for them.
    claim_lock = " FOR UPDATE SKIP LOCKED"
    # pg_advisory_xact_lock(namespace, key) keys: the namespace keeps our locks apart from others'.
    _LOCK_NAMESPACE = 0x464C58  # "FLX"
    _SCHEMA_LOCK = 0
    _shared: dict[str, PostgresDatabase] = {}
    _shared_lock = threading.Lock()

    @classmethod
    def for_url(cls, url: str) -> PostgresDatabase:
        """The process's database object for ``url``, made on first use."""
        with cls._shared_lock:
            if url not in cls._shared:
                cls._shared[url] = cls(url)
            return cls._shared[url]

    def __init__(self, url: str):
        import psycopg
        from psycopg import conninfo

        self.url = url
        self.location = redact_url(url)
        self.path = self.location  # what the worker logs as its database
        try:
            params = conninfo.conninfo_to_dict(url)
        except psycopg.ProgrammingError as err:
            raise InputError(f"job database {self.location!r}: not a valid PostgreSQL URL ({err})") from err
        params.setdefault("connect_timeout", self.CONNECT_TIMEOUT_S)
        self._conninfo = conninfo.make_conninfo(**params)
        self._idle: queue.LifoQueue = queue.LifoQueue()
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._schema_version: int | None = None  # the version known to be in place

    def _new_connection(self):
        import psycopg
        from psycopg.rows import dict_row

        try:
            return psycopg.connect(self._conninfo, autocommit=True, row_factory=dict_row)
        except psycopg.OperationalError as err:
            detail = " ".join(str(err).split())
            raise FluxLensError(f"job database {self.location!r}: cannot connect ({detail})") from err

    def _take(self):
        """An idle connection of this process, else a new one. One idle for more than
        ``IDLE_CHECK_S`` is pinged first (the server may have closed it meanwhile)."""
        import psycopg

        with self._lock:
            if self._pid != os.getpid():  # a forked child must not share its parent's sockets
                self._idle, self._pid = queue.LifoQueue(), os.getpid()
        while True:
            try:
                con, idle_since = self._idle.get_nowait()
            except queue.Empty:
                return self._new_connection()
            if time.monotonic() - idle_since <= self.IDLE_CHECK_S:
                return con
            try:
                con.execute("")
                return con
            except psycopg.Error:
                con.close()

    def _give_back(self, con) -> None:
        from psycopg.pq import TransactionStatus

        reusable = (
            not con.broken
            and not con.closed
            and con.info.transaction_status == TransactionStatus.IDLE
            and self._idle.qsize() < self.POOL_SIZE
            and self._pid == os.getpid()
        )
        if reusable:
            self._idle.put((con, time.monotonic()))
        else:
            con.close()

    @contextlib.contextmanager
    def read(self) -> Iterator[_PgConnection]:
        """A connection in autocommit mode (each statement its own transaction)."""
        con = self._take()
        try:
            yield _PgConnection(con)
        finally:
            self._give_back(con)

    @contextlib.contextmanager
    def write(self) -> Iterator[_PgConnection]:
        """One transaction (READ COMMITTED); row locks and ``lock_user`` make it safe."""
        with self.read() as con, con.raw.transaction():
            yield con

    def lock_user(self, con: _PgConnection, user: str) -> None:
        """Hold, until the transaction ends, a lock that every submission of ``user`` takes."""
        con.execute("SELECT pg_advisory_xact_lock(?, hashtext(?))", (self._LOCK_NAMESPACE, user))

    def create_schema(self, ddl: str, version: int, upgrades: dict[int, str]) -> None:
        """Run ``ddl`` once per database: under a lock, so stores starting together do not race,
        and skipped when the schema table records ``version`` already. A database of an older
        schema first runs ``upgrades[v]`` (statements, this backend's) for each later ``v``."""
        if self._schema_version == version:
            return
        with self.read() as con:
            if self._recorded_version(con) == version:
                self._schema_version = version
                return
        with self.write() as con:
            con.execute("SELECT pg_advisory_xact_lock(?, ?)", (self._LOCK_NAMESPACE, self._SCHEMA_LOCK))
            current = self._recorded_version(con)  # another store may have upgraded meanwhile
            for v in range(current + 1, version + 1) if current else ():
                con.raw.execute(upgrades[v])
            con.raw.execute(ddl)  # several statements, no parameters
            con.raw.execute("CREATE TABLE IF NOT EXISTS job_schema (version INTEGER PRIMARY KEY)")
            con.execute("INSERT INTO job_schema (version) VALUES (?) ON CONFLICT DO NOTHING", (version,))
        self._schema_version = version

    @staticmethod
    def _recorded_version(con: _PgConnection) -> int:
        """The newest schema version the database records; 0 for a database without our tables."""
        present = con.execute("SELECT to_regclass('job_schema') IS NOT NULL AS present").fetchone()
        if not present["present"]:
            return 0
        return con.execute("SELECT max(version) AS version FROM job_schema").fetchone()["version"] or 0

    def close(self) -> None:
        """Close the idle connections (connections in use close when given back)."""
        while True:
            try:
                self._idle.get_nowait()[0].close()
            except queue.Empty:
                return
