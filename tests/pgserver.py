"""A throwaway PostgreSQL server for tests: initdb into a temp folder, pg_ctl start on a free port, stop after.

As pytest-postgresql does, but as root too: initdb and postgres refuse to run as root, so there they run as
the unprivileged `postgres` user (Debian's package creates it; created here if missing).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

USER = "postgres"


def bin_dir() -> Path | None:
    """The PostgreSQL server binaries: $PG_BIN, else the newest /usr/lib/postgresql/*/bin, else PATH."""
    env = os.environ.get("PG_BIN")
    if env and (Path(env) / "initdb").exists():
        return Path(env)
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if found:
        return Path(found[-1]).parent
    which = shutil.which("initdb")
    return Path(which).parent if which else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_user(cmd: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return cmd
    try:
        pwd.getpwnam(USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", USER], check=True)
    return ["runuser", "-u", USER, "--", *cmd]


@contextmanager
def postgres_server() -> Iterator[str]:
    """Start a server; yields a URL of a fresh database on it; stops the server and removes its files after."""
    bins = bin_dir()
    if bins is None:
        raise RuntimeError("PostgreSQL server binaries not found: install Debian's postgresql package "
                           "(make system-deps) or set PG_BIN")
    root = Path(tempfile.mkdtemp(prefix="tunegate-pg-"))
    data = root / "data"
    if os.geteuid() == 0:
        _as_user(["true"])  # creates the user when missing
        shutil.chown(root, USER)
        os.chmod(root, 0o700)
    port = _free_port()
    run = {"check": True, "capture_output": True, "text": True}
    try:
        subprocess.run(_as_user([str(bins / "initdb"), "-D", str(data), "-U", "tunegate", "--auth=trust",
                                 "-E", "UTF8", "--no-sync"]), **run)  # type: ignore[call-overload]
        opts = f"-h 127.0.0.1 -p {port} -k {root} -c fsync=on -c max_connections=50"
        subprocess.run(_as_user([str(bins / "pg_ctl"), "-D", str(data), "-o", opts, "-l", str(root / "log"), "-w",
                                 "-t", "60", "start"]), **run)  # type: ignore[call-overload]
        try:
            db = "t" + uuid.uuid4().hex[:8]
            subprocess.run([str(bins / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "tunegate", db], **run)  # type: ignore[call-overload]
            yield f"postgresql://tunegate@127.0.0.1:{port}/{db}"
        finally:
            subprocess.run(_as_user([str(bins / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"]),
                           capture_output=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def new_database(url: str) -> str:
    """Another empty database on the same server (each test gets its own)."""
    import psycopg

    base, _, _ = url.rpartition("/")
    name = "t" + uuid.uuid4().hex[:10]
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return f"{base}/{name}"
