"""One small local Spark for the whole test run (one shuffle partition, no UI, scratch warehouse)."""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

import pytest

# Every test run gets its own scratch state, never the checkout's var/. Outside pytest's own temporary
# folders: pytest makes its root (/tmp/pytest-of-<user>) private again at every session's start, and the
# local PostgreSQL, which runs as another user when the tests run as root, must traverse the folders
# above its data for as long as it runs.
_SCRATCH = Path(tempfile.mkdtemp(prefix="jichu-test-"))
os.environ["JICHU_VAR"] = str(_SCRATCH / "var")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
# py4j logs at INFO while the interpreter shuts down, after pytest has closed its capture streams.
logging.getLogger("py4j").setLevel(logging.WARNING)


@pytest.fixture(scope="session")
def scratch_folder():
    """`scratch_folder(name)`: a new folder to hold a state folder (JICHU_VAR) of a test's own; see
    _SCRATCH for why not tmp_path."""
    return lambda name: Path(tempfile.mkdtemp(prefix=f"{name}-", dir=_SCRATCH))


@pytest.fixture(scope="session", autouse=True)
def services():
    """The scratch state's PostgreSQL (metastore, Airflow), started by the first Spark session or
    Airflow command that needs it, stopped when the test run ends."""
    from jichu.services import local_server

    yield
    server = local_server()
    if server is not None:
        server.stop()


@pytest.fixture(scope="session")
def spark():
    from jichu.core.session import get_spark

    session = get_spark("jichu-tests", extra={"spark.sql.shuffle.partitions": "1", "spark.default.parallelism": "1"})
    yield session
    session.stop()


@pytest.fixture(scope="session")
def population():
    from jichu.config import load_entity

    return load_entity("population", "person")


@pytest.fixture(scope="session")
def extracts():
    from jichu.config import load_extracts

    return {ex.key: ex for ex in load_extracts("population")}
