"""A throwaway PostgreSQL cluster for tests: ``initdb`` + ``pg_ctl`` in a temporary directory,
listening on 127.0.0.1 at a free port (password authentication) and on a unix socket in that
directory (trust), stopped and deleted by ``stop()``.

``initdb`` refuses to run as root; as root the cluster is created and run by the ``postgres``
system user (``runuser -u postgres --``) in a directory it owns.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

BIN_DIRS = (*sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True), Path("/usr/local/bin"))
SERVER_USER = "postgres"  # the system account used when running as root
ROLE = "fluxlens"


def find_bin_dir() -> Path | None:
    """The first directory holding both ``initdb`` and ``pg_ctl`` (newest major version first),
    else the one found on ``PATH``."""
    for d in BIN_DIRS:
        if (d / "initdb").is_file() and (d / "pg_ctl").is_file():
            return d
    on_path = shutil.which("initdb")
    return Path(on_path).parent if on_path and shutil.which("pg_ctl") else None


def missing_reason() -> str | None:
    """Why a cluster cannot be started here, or None when it can."""
    if find_bin_dir() is None:
        return "PostgreSQL server binaries (initdb, pg_ctl) not found; install the postgresql package"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(SERVER_USER)
        except KeyError:
            return f"running as root and there is no {SERVER_USER!r} system user to run initdb as"
        if shutil.which("runuser") is None:
            return "running as root and runuser is not available to run initdb as another user"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresServer:
    """One cluster. ``url(db)`` is a ``postgresql://user:password@127.0.0.1:port/db`` URL;
    ``create_database()`` makes a fresh empty database and returns its URL."""

    def __init__(self) -> None:
        reason = missing_reason()
        if reason:
            raise RuntimeError(reason)
        self.bin = find_bin_dir()
        self.password = secrets.token_hex(8)
        # Not under pytest's base temp: that directory is private to the test user.
        self.root = Path(tempfile.mkdtemp(prefix="fluxlens-pg-"))
        self.data = self.root / "data"
        self.socket_dir = self.root
        self.port = _free_port()
        self._n_databases = 0
        self._as_root = os.geteuid() == 0
        if self._as_root:
            user = pwd.getpwnam(SERVER_USER)
            os.chown(self.root, user.pw_uid, user.pw_gid)
        self._started = False
        self._log = str(self.root / "server.log")

    def _run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        cmd = [str(self.bin / args[0]), *args[1:]]
        if self._as_root:
            cmd = ["runuser", "-u", SERVER_USER, "--", *cmd]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=self.root)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
        return done

    def start(self) -> PostgresServer:
        pwfile = self.root / "pwfile"
        pwfile.write_text(self.password + "\n")
        if self._as_root:
            user = pwd.getpwnam(SERVER_USER)
            os.chown(pwfile, user.pw_uid, user.pw_gid)
        pwfile.chmod(0o600)
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            ROLE,
            f"--pwfile={pwfile}",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
        )
        pwfile.unlink()
        for attempt in range(3):  # the free port may be taken before the server binds it
            try:
                data, log = str(self.data), self._log
                self._run("pg_ctl", "-D", data, "-o", self._options(), "-l", log, "-w", "start")
                break
            except RuntimeError:
                if attempt == 2 or "could not bind" not in self.log_text():
                    raise RuntimeError(f"PostgreSQL did not start; server log:\n{self.log_text()}") from None
                self.port = _free_port()
        self._started = True
        return self

    def _options(self) -> str:
        return " ".join(
            [
                "-c listen_addresses=127.0.0.1",
                f"-c port={self.port}",
                f"-c unix_socket_directories={self.socket_dir}",
                "-c max_connections=200",
                "-c fsync=off",  # a throwaway cluster: durability is not under test
                "-c synchronous_commit=off",
                "-c full_page_writes=off",
                "-c shared_buffers=32MB",
            ]
        )

    def stop(self) -> None:
        if self._started:
            try:
                self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop", timeout=60)
            finally:
                self._started = False
        shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str = "postgres", *, password: str | None = None) -> str:
        password = self.password if password is None else password
        return f"postgresql://{ROLE}:{password}@127.0.0.1:{self.port}/{database}"

    def create_database(self) -> str:
        """A new empty database; returns its URL."""
        import psycopg

        self._n_databases += 1
        name = f"jobs_{self._n_databases}"
        with psycopg.connect(self.url(), autocommit=True) as con:
            con.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def log_text(self) -> str:
        path = Path(self._log)
        return path.read_text() if path.exists() else ""
