"""One real Airflow DAG run in `make test`: population's DAG on a small generated province.

The scheduler, DAG processor and API server run on this machine (jichu.airflow_local); the DAG's tasks
spark-submit the real jobs (build, gate, publish) against the test run's own PostgreSQL and warehouse.
The province run of tests/e2e/conftest.py (1,500 persons, both base databases, the asset chain,
reconciliation, a second batch and a rerun beside other processes) is the slow tier: `make test-slow`.
"""

from __future__ import annotations

import json

import pytest

from jichu.core.runs import latest_summary
from jichu.demo.generate import generate

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def dag_run(scratch_folder, state_folder):
    from jichu.airflow_local import LocalAirflow

    var = scratch_folder("dag-run") / "var"
    batch = generate(var, scale=60, seed=5, batches=1)["batches"][0]
    # Left before the tests, which read files only.
    with state_folder(var), LocalAirflow(("population", "legal_entities", "reconciliation")) as airflow:
        # Only population here: the DAGs its publish would trigger are the slow tier's.
        airflow.pause("legal_entities")
        airflow.pause("reconciliation")
        airflow.trigger("population", batch)
        # A bound for a hung run, not a speed check: 9 to 15 min alone or beside the other test process.
        runs = airflow.wait({"population": 1}, timeout=2700)["population"]
        failures = [f.describe() for r in runs for f in airflow.failures(r)]
    summary = json.loads(latest_summary("population", var / "runs").read_text(encoding="utf-8"))
    yield var, batch, runs, failures, summary


def test_the_dag_run_succeeds_for_its_batch(dag_run):
    _, batch, runs, failures, summary = dag_run
    assert failures == []
    assert [(r.batch, r.state, r.run_type) for r in runs] == [(batch, "success", "manual")]
    assert summary["batch"] == batch and summary["gate"]["passed"]


def test_every_staged_row_is_accounted_for_and_published_once(dag_run, spark):
    var, batch, _, _, summary = dag_run
    assert summary["row_accounting"]
    for a in summary["row_accounting"]:
        assert a["balanced"] and a["records"] == a["standardized"] + a["quarantined"] + a["unchanged"], a
    published = spark.read.format("delta").load(str(var / "warehouse" / "published.db" / "population__person"))
    rows = published.count()
    assert rows == summary["published"]["rows"] and rows >= 50  # 60 persons, some never delivered by anyone
    assert published.select("entity_id").distinct().count() == rows
    assert summary["published"]["version"] == 0
