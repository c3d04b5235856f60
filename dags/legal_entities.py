"""Legal-entity base database (法人单位基础信息库).

Runs when the population base database publishes (an Airflow asset, not a timer): legal
representatives are persons of that database, so each batch is built after population's batch,
which the asset event names. The tasks are population's: build, gate, publish; publishing updates
the asset published.legal_entities__entity.

Rerun a batch with `jichu run legal_entities --batch DATE`; every stage replaces its own batch.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG

from jichu.orchestration import domain_tasks, published_asset

with DAG(
    dag_id="legal_entities",
    schedule=[published_asset("population")],
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["jichu", "legal_entities"],
    doc_md=__doc__,
):
    domain_tasks("legal_entities")
