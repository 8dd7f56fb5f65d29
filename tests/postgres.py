"""A throwaway PostgreSQL server for the tests: `initdb` + `pg_ctl` in a temporary directory.

`.venv/bin/python tests/postgres.py` starts one by hand and prints its URL (for `dev.py bench`).

The server listens on a free port of 127.0.0.1 (and a socket in its own directory),
trusts local connections, keeps `fsync` on (the tests check durability contracts),
and is stopped and deleted at the end of the session. PostgreSQL refuses to run as
root, so as root (CI) it runs as the `postgres` system user that Debian's package
creates, through `runuser`.

Each test gets its own database, copied from a template: `migrated` (the runservice
schema, made once per session by opening a store on it) or `empty` (template0, for
tests of migration itself).
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Collection
from pathlib import Path

import asyncpg

from runservice.storage.postgres import PostgresStore

SUPERUSER = "runservice"
TEMPLATE = "runservice_template"


def find_bin_dir() -> Path | None:
    """Where `initdb` and `pg_ctl` are: on PATH, else the newest /usr/lib/postgresql/*/bin."""
    on_path = shutil.which("pg_ctl")
    if on_path and shutil.which("initdb"):
        return Path(os.path.realpath(on_path)).parent
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(Path(p).parts[4].split(".")[0])
    )
    return Path(candidates[-1]).parent if candidates else None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PostgresServer:
    """One PostgreSQL server process for the test session."""

    def __init__(self, bin_dir: Path) -> None:
        self.bin_dir = bin_dir
        self.root = Path(tempfile.mkdtemp(prefix="runservice-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.port = _free_port()
        self._user: str | None = None  # the unprivileged user to run as, when we are root
        self._template_ready = False

    def _run(self, *argv: str) -> None:
        command = [str(self.bin_dir / argv[0]), *argv[1:]]
        if self._user is not None:
            command = ["runuser", "-u", self._user, "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, check=False, cwd=self.root)
        if done.returncode != 0:
            log = self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""
            raise RuntimeError(f"{' '.join(command)} failed:\n{done.stdout}{done.stderr}\n{log}")

    def start(self) -> None:
        if os.geteuid() == 0:
            try:
                entry = pwd.getpwnam("postgres")
            except KeyError:
                raise RuntimeError(
                    "running as root and there is no `postgres` user to run PostgreSQL as"
                    " (apt-get install postgresql creates it)"
                ) from None
            self._user = "postgres"
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            SUPERUSER,
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "--no-instructions",
        )
        settings = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(self.port),
            "unix_socket_directories": f"'{self.root}'",
            "fsync": "on",
            "synchronous_commit": "on",
            "max_connections": "200",
            "shared_buffers": "64MB",
            "log_min_messages": "warning",
        }
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write("\n# runservice tests\n")
            conf.writelines(f"{name} = {value}\n" for name, value in settings.items())
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "start")

    def shut_down(self) -> None:
        """Stop the server as an operator or a failover does (`pg_ctl stop -m fast`: its
        sessions are ended), keeping its data for `start_again`."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def start_again(self) -> None:
        """Start a server `shut_down` stopped, on the same port and data."""
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "start")

    def _processes(self) -> list[int]:
        """The server's postmaster and every process it started (its backends, its workers)."""
        postmaster = int((self.data / "postmaster.pid").read_text().split()[0])
        children = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                with contextlib.suppress(OSError):
                    # The parent pid follows the command's closing parenthesis (a name may hold spaces).
                    if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == postmaster:
                        children.append(int(entry.name))
        return [postmaster, *children]

    def freeze(self) -> None:
        """Stop every process of the server (SIGSTOP): its connections stay open and nothing
        answers, as with a hung primary or a host behind a network that drops every packet."""
        for pid in self._processes():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGSTOP)

    def thaw(self) -> None:
        """Let a `freeze`d server go on (SIGCONT)."""
        for pid in self._processes():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.thaw()  # a frozen server would not hear pg_ctl
        with contextlib.suppress(Exception):
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    async def _admin(self) -> asyncpg.Connection:
        return await asyncpg.connect(self.url())

    async def create_database(self, *, migrated: bool = True) -> str:
        """A new database (migrated, or empty); returns its URL."""
        if migrated and not self._template_ready:
            await self._make_template()
        name = f"t_{uuid.uuid4().hex[:16]}"
        admin = await self._admin()
        try:
            template = TEMPLATE if migrated else "template0"
            await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE {template}')
        finally:
            await admin.close()
        return self.url(name)

    async def drop_database(self, url: str) -> None:
        name = url.rsplit("/", 1)[1]
        admin = await self._admin()
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()

    async def set_read_only(self, read_only: bool) -> None:
        """Make every new transaction of every session read-only, as on a standby (or undo it)."""
        admin = await self._admin()
        try:
            await admin.execute("SET default_transaction_read_only = off")  # this session may write
            setting = "on" if read_only else "off"
            await admin.execute(f"ALTER SYSTEM SET default_transaction_read_only = {setting}")
            await admin.execute("SELECT pg_reload_conf()")
        finally:
            await admin.close()

    async def _make_template(self) -> None:
        admin = await self._admin()
        try:
            await admin.execute(f"DROP DATABASE IF EXISTS {TEMPLATE}")
            await admin.execute(f"CREATE DATABASE {TEMPLATE} TEMPLATE template0")
        finally:
            await admin.close()
        store = PostgresStore(self.url(TEMPLATE))
        await store.open()  # migrates
        await store.close()
        self._template_ready = True


async def apply_migrations(conn: asyncpg.Connection, versions: Collection[int]) -> None:
    """Apply and record runservice's PostgreSQL migrations `versions` on an empty database,
    in order, as the code that knew only those left it (for tests of what later ones do)."""
    from runservice.storage import postgres as pg

    await conn.execute(pg._MIGRATIONS_TABLE)
    for version, script in pg.MIGRATIONS:
        if version in versions:
            await conn.execute(pg._resource(script))
            await conn.execute(
                "INSERT INTO schema_migrations (version, script) VALUES ($1, $2)", version, script
            )


def main() -> None:
    """`python3 tests/postgres.py`: a throwaway server for manual runs (the benchmark); Ctrl-C stops it."""
    import signal
    import sys

    bin_dir = find_bin_dir()
    if bin_dir is None:
        sys.exit("PostgreSQL binaries (initdb, pg_ctl) not found: apt-get install postgresql")
    server = PostgresServer(bin_dir)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        server.start()
        print(server.url(), flush=True)
        signal.pause()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


if __name__ == "__main__":
    main()
