"""Reconciliation: every agency's discrepancy report, and the province summary, after any base database
publishes (an Airflow asset of each published table, not a timer). The batch is the one the triggering
asset event names; reports go to the profile's outbox (var/outbox/<agency>/<batch>/ locally), then by
e-mail to the agencies the profile's `mail.to` names (the mail task is skipped when it names none).

Rerun with `jichu reconcile --batch DATE`; a rerun replaces that batch's folders.
"""

from __future__ import annotations

from functools import reduce
from operator import or_

import pendulum
from airflow.sdk import DAG

from jichu.config import domain_names
from jichu.orchestration import mail_job, published_assets, reconcile_job

with DAG(
    dag_id="reconciliation",
    schedule=reduce(or_, [a for d in domain_names() for a in published_assets(d)]),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["jichu", "reconciliation"],
    doc_md=__doc__,
):
    reconcile_job() >> mail_job()
