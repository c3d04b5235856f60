"""Population base database (人口基础信息库).

Each task spark-submits consecutive stages of the pipeline for the run's batch date (the logical
date), so the same jobs run locally or on a cluster:

    build:   landing -> staging -> standardized (+ quarantine, issues) -> resolved (keys, matcher,
             review queue) -> statements -> golden (+ history) -> verified (discrepancies)
    gate:    candidate written to audit.*, Great Expectations checkpoint, Data Docs
    publish: the audited candidate becomes published.population__person

The build stages share one task because each spark-submit pays the JVM and Delta start-up; each
stage still replaces only its own batch's rows, so retrying the task is safe.

Rerun a batch with `jichu run population --batch DATE`; every stage replaces its own batch.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, Asset, chain

from jichu.orchestration import TASKS, spark_job

with DAG(
    dag_id="population",
    schedule="@monthly",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,  # batches share tables; one run at a time keeps reruns simple
    tags=["jichu", "population"],
    doc_md=__doc__,
):
    chain(
        spark_job("build", "population", TASKS["build"]),
        spark_job("gate", "population", TASKS["gate"]),
        spark_job("publish", "population", TASKS["publish"], outlets=[Asset("published.population__person")]),
    )
