"""The local profile's PostgreSQL (jichu.services): set up from nothing, shared, stopped.

Each test gets a state folder of its own, so a server of its own on a port derived from that folder.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from jichu.config import derived_port, load_profile
from jichu.services import Postgres, ServiceError, clear_state, local_server


@pytest.fixture
def fresh_var(monkeypatch, scratch_folder):
    """A state folder where no server was ever set up; its server is stopped afterwards."""
    var = scratch_folder("services") / "var"
    monkeypatch.setenv("JICHU_VAR", str(var))
    yield var
    server = local_server()
    if server is not None:
        server.stop()


def _databases(server: Postgres) -> set[str]:
    with server._connect() as cursor:
        cursor.execute("SELECT datname FROM pg_database")
        return {r[0] for r in cursor.fetchall()}


def test_local_profile_points_metastore_and_airflow_at_its_own_server(fresh_var):
    profile = load_profile("local")
    port = derived_port(fresh_var.resolve())
    assert profile.postgres.port == port and Path(profile.postgres.home) == fresh_var.resolve() / "postgres"
    assert profile.metastore_url == f"jdbc:postgresql://127.0.0.1:{port}/metastore"
    assert profile.airflow_db_url == f"postgresql+psycopg2://jichu@127.0.0.1:{port}/airflow"
    assert "derby" not in profile.model_dump_json().lower()


def test_cluster_profile_runs_no_server_of_its_own(monkeypatch):
    for name in ("JICHU_SPARK_MASTER", "JICHU_WAREHOUSE", "JICHU_METASTORE_URL", "JICHU_AIRFLOW_DB_URL",
                 "JICHU_LANDING", "JICHU_OUTBOX", "JICHU_ID_SALT"):
        monkeypatch.setenv(name, "x")
    profile = load_profile("cluster")
    assert profile.postgres is None and local_server(profile) is None


def test_a_state_folder_gets_a_port_of_its_own(tmp_path):
    assert derived_port(tmp_path / "a") != derived_port(tmp_path / "b")
    assert derived_port(tmp_path / "a") == derived_port(tmp_path / "a")


def test_server_is_set_up_from_nothing_started_once_and_stopped(fresh_var):
    server = local_server()
    assert not server.accepting() and not (server.data / "PG_VERSION").exists()
    assert server.ensure_running() is True  # initdb, start, databases
    assert server.accepting()
    assert {"metastore", "airflow"} <= _databases(server)
    assert server.ensure_running() is False  # already up: nothing to do
    assert server.stop() is True and not server.accepting()
    assert server.ensure_running() is True and {"metastore", "airflow"} <= _databases(server)  # data kept


def test_processes_starting_the_server_at_once_share_one(fresh_var):
    code = "from jichu.services import local_server; print(local_server().ensure_running())"
    starters = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                for _ in range(3)]
    results = [p.communicate(timeout=120) for p in starters]
    assert [p.returncode for p in starters] == [0, 0, 0], [err[-2000:] for _, err in results]
    assert sorted(out.strip() for out, _ in results) == ["False", "False", "True"]  # one started it
    assert local_server().accepting()


def test_first_use_lets_one_process_set_up_and_records_it(fresh_var):
    server = local_server()
    server.ensure_running()
    with server.first_use("probe") as first:
        assert first is True
    with server.first_use("probe") as first:
        assert first is False


def test_port_held_by_another_server_is_a_clear_error(fresh_var, scratch_folder):
    server = local_server()
    server.ensure_running()
    other = Postgres(server.conf.model_copy(update={"home": str(scratch_folder("other"))}))
    with pytest.raises(ServiceError, match=f"port {server.port} answers, but not for"):
        other.ensure_running()


def test_clear_state_stops_the_server_and_removes_its_data(fresh_var):
    server = local_server()
    server.ensure_running()
    (fresh_var / "warehouse").mkdir()
    clear_state(fresh_var, ("warehouse",))
    assert not server.accepting() and not server.home.exists() and not (fresh_var / "warehouse").exists()


FIRST_SESSION = """
import sys
from jichu.core.session import get_spark
from jichu.core import tables
spark = get_spark("concurrent-" + sys.argv[1])
name = "concurrent_" + sys.argv[1] + ".t"
tables.replace_slice(spark.createDataFrame([(1, "a")], "id int, v string"), name, {"id": "1"})
print("rows", spark.table(name).count())
"""


def test_two_spark_applications_on_a_new_metastore_at_once(fresh_var):
    """Both create the metastore's tables on first use unless one does it first (session.create_metastore_schema):
    without that, one of them fails on the other's tables (relation already exists)."""
    apps = [subprocess.Popen([sys.executable, "-c", FIRST_SESSION, name], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True) for name in ("a", "b")]
    results = [p.communicate(timeout=600) for p in apps]
    for p, (out, err) in zip(apps, results):
        assert p.returncode == 0 and "rows 1" in out, err[-3000:]
        assert "already exists" not in err and "ERROR" not in err, err[-3000:]
