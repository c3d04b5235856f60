"""What DAG files and the CLI share about Airflow: the Spark task factory and the environment.

DAG files only wire tasks; the job code they submit lives in `jichu.pipeline`.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from jichu.config import ROOT, conf_dir, load_profile, profile_name, var_dir

SUBMIT_SCRIPT = ROOT / "jobs" / "submit.py"
SPARK_CONN_ID = "spark_default"

# How a domain's DAG groups the stages into tasks (one spark-submit each): the build stages share
# one task so the JVM and Delta start-up is paid once; the gate and publish are their own tasks so
# a failed gate is visible as such and publishing can be retried alone.
TASKS = {
    "build": ["ingest", "standardize", "resolve", "golden", "verify"],
    "gate": ["gate"],
    "publish": ["publish"],
}


# The batch a run processes. A DAG run triggered by an asset takes it from the asset event (the
# producing run announces its batch, `announce_batch`); a run with a logical date (a timer, `airflow
# dags trigger -l`, `jichu run`) takes the logical date. Asset-triggered runs have no logical date.
BATCH = "{{ (triggering_asset_events.values() | first | last).extra['batch'] if triggering_asset_events else ds }}"


def published_assets(domain: str) -> list:
    """The Airflow assets of a domain's published tables, one per entity type: DAGs downstream of the
    domain consume them all."""
    from airflow.sdk import Asset

    from jichu.config import load_domain

    return [Asset(table) for table in load_domain(domain).published_tables]


def announce_batch(assets: list):
    """A task's post_execute that puts the run's batch on the asset events it emits, so the DAGs the
    assets trigger process the same batch."""

    def post_execute(context, result=None):
        batch = context["task"].render_template(BATCH, context)
        for asset in assets:
            context["outlet_events"][asset].extra = {"batch": batch}

    return post_execute


def publish_job(domain: str):
    """The domain's publish task: it emits its published tables' assets, with the batch."""
    assets = published_assets(domain)
    return spark_job("publish", domain, TASKS["publish"], outlets=assets, post_execute=announce_batch(assets))


def domain_tasks(domain: str) -> None:
    """Every domain DAG's tasks, inside its `with DAG(...)`: build >> gate >> publish (TASKS)."""
    from airflow.sdk import chain

    chain(
        spark_job("build", domain, TASKS["build"]),
        spark_job("gate", domain, TASKS["gate"]),
        publish_job(domain),
    )


def spark_job(task_id: str, domain: str, stages: list[str], **kwargs):
    """A task that spark-submits pipeline stages, in order, for the run's batch (BATCH)."""
    args = ["job", *stages, "--domain", domain, "--batch", BATCH, "--run-id", "{{ run_id }}"]
    return _spark_submit(task_id, f"jichu-{domain}-{task_id}", args, **kwargs)


def reconcile_job():
    """The reconciliation task: every agency's report for the batch the triggering asset event names."""
    return _spark_submit("reconcile", "jichu-reconcile", ["reconcile", "--batch", BATCH])


def mail_job():
    """The e-mail task after `reconcile`: each agency the profile's `mail.to` names gets its report for
    the batch. Skipped when the profile names nobody."""
    from airflow.sdk import task

    @task(task_id="mail")
    def mail(batch: str) -> dict[str, list[str]]:
        from airflow.exceptions import AirflowSkipException

        from jichu.reconcile.mail import mail_batch

        profile = load_profile()
        if not profile.mail.to:
            raise AirflowSkipException("the profile names no recipients (mail.to)")
        return mail_batch(Path(profile.outbox), batch, profile.mail.to, profile.mail.conn_id)

    return mail(BATCH)


def _spark_submit(task_id: str, name: str, args: list[str], **kwargs):
    """A task that spark-submits `jichu ARGS` (jobs/submit.py) with the profile's Spark settings."""
    from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator

    from jichu.core.session import jar_paths, spark_conf

    conf = {k: v for k, v in spark_conf().items() if k != "spark.jars"}
    return SparkSubmitOperator(
        task_id=task_id,
        conn_id=SPARK_CONN_ID,
        application=str(SUBMIT_SCRIPT),
        application_args=args,
        # The jars go on the driver's class path at launch; the Delta extension needs them there.
        jars=",".join(jar_paths()),
        conf=conf,
        name=name,
        **kwargs,
    )


def airflow_env() -> dict[str, str]:
    """Environment for the `airflow` command: home, metadata database, DAG folder, Spark connection.
    Starts the local profile's PostgreSQL (Airflow's database) if it is not up."""
    from jichu.services import ensure_services

    profile = load_profile()
    ensure_services(profile)
    home = var_dir() / "airflow"
    home.mkdir(parents=True, exist_ok=True)
    venv_bin = str(Path(sys.executable).parent)
    return {
        **os.environ,
        "PATH": venv_bin + os.pathsep + os.environ.get("PATH", ""),
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": profile.airflow_db_url,
        "AIRFLOW_CONN_SPARK_DEFAULT": json.dumps({"conn_type": "spark", "host": profile.spark.master}),
        # The driver runs in the project's virtualenv, so jobs see the same pinned packages.
        "PYSPARK_PYTHON": sys.executable,
        "PYSPARK_DRIVER_PYTHON": sys.executable,
        "JICHU_VAR": str(var_dir()),
        "JICHU_CONF": str(conf_dir()),
        "JICHU_PROFILE": profile_name(),
        "GX_ANALYTICS_ENABLED": "false",
    }
