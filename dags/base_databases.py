"""One DAG per base database in conf/domains, each `build >> gate >> publish`.

Each task spark-submits consecutive stages of the pipeline for the run's batch, so the same jobs run
locally or on a cluster:

    build:   landing -> staging -> standardized (+ quarantine, issues) -> resolved (keys, matcher,
             review queue) -> statements -> golden (+ history) -> verified (discrepancies)
    gate:    candidate written to audit.*, Great Expectations checkpoint, Data Docs
    publish: the audited candidate becomes published.<domain>__<entity>, and the Asset of that name is
             updated with the batch, which triggers the DAGs that consume it

Each task runs its stages for every entity type of the domain (conf `entities`), in conf order.

A base database whose conf names no `depends_on` runs on the profile's schedule (`@monthly` on the
cluster; none locally, where runs are triggered); one that depends on others runs when all of them have
published (their Assets, not a timer), on the batch their asset events name. Adding a base database
adds its conf file and package; nothing here changes.

Rerun a batch with `jichu run <domain> --batch DATE`; every stage replaces its own batch.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG

from jichu.config import domain_names, load_domain, load_profile
from jichu.orchestration import domain_tasks, published_assets

for name in domain_names():
    domain = load_domain(name)
    with DAG(
        dag_id=name,
        schedule=[a for d in domain.depends_on for a in published_assets(d)] or load_profile().schedule,
        start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
        catchup=False,
        max_active_runs=1,  # batches share tables; one run at a time keeps reruns simple
        tags=["jichu", name],
        doc_md=f"**{domain.label}** ({name}).\n\n{__doc__}",
    ):
        domain_tasks(name)
