"""Population base database (人口基础信息库).

Each task spark-submits consecutive stages of the pipeline for the run's batch date (the logical
date), so the same jobs run locally or on a cluster:

    build:   landing -> staging -> standardized (+ quarantine, issues) -> resolved (keys, matcher,
             review queue) -> statements -> golden (+ history) -> verified (discrepancies)
    gate:    candidate written to audit.*, Great Expectations checkpoint, Data Docs
    publish: the audited candidate becomes published.population__person, and the asset of that
             name is updated with the batch, which triggers the DAGs that consume it (legal_entities)

The build stages share one task because each spark-submit pays the JVM and Delta start-up; each
stage still replaces only its own batch's rows, so retrying the task is safe. The schedule is the
profile's (`@monthly` on the cluster; none locally, where runs are triggered).

Rerun a batch with `jichu run population --batch DATE`; every stage replaces its own batch.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG

from jichu.config import load_profile
from jichu.orchestration import domain_tasks

with DAG(
    dag_id="population",
    schedule=load_profile().schedule,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,  # batches share tables; one run at a time keeps reruns simple
    tags=["jichu", "population"],
    doc_md=__doc__,
):
    domain_tasks("population")
