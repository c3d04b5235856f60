"""The DAG files import cleanly and wire the expected tasks in the expected order."""

import os

import pytest

from jichu.config import ROOT


@pytest.fixture(scope="module")
def bag(tmp_path_factory):
    """The dags/ folder parsed once, by Airflow's DagBag, with a scratch Airflow home."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("AIRFLOW_HOME", str(tmp_path_factory.mktemp("airflow")))
        env.setenv("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
        from airflow.dag_processing.dagbag import DagBag

        yield DagBag(dag_folder=str(ROOT / "dags"))


def test_dagbag_has_no_import_errors_and_expected_edges(bag):
    assert bag.import_errors == {}
    dag = bag.dags["population"]
    edges = {(t.task_id, d) for t in dag.tasks for d in t.downstream_task_ids}
    assert edges == {("build", "gate"), ("gate", "publish")}
    publish = dag.get_task("publish")
    assert [o.name for o in publish.outlets] == ["published.population__person"]
    assert all(t.task_type == "SparkSubmitOperator" for t in dag.tasks)
    assert os.path.basename(dag.get_task("build").application) == "submit.py"


def test_legal_entities_follow_the_population_asset_not_a_timer(bag):
    from jichu.orchestration import BATCH

    dag = bag.dags["legal_entities"]
    assert type(dag.timetable).__name__ == "AssetTriggeredTimetable"
    assert [a.name for a in dag.schedule] == ["published.population__person"]
    assert {(t.task_id, d) for t in dag.tasks for d in t.downstream_task_ids} == {("build", "gate"), ("gate", "publish")}
    assert [o.name for o in dag.get_task("publish").outlets] == ["published.legal_entities__entity"]
    args = dag.get_task("build").application_args
    assert args[args.index("--batch") + 1] == BATCH and "triggering_asset_events" in BATCH
    assert bag.dags["population"].schedule is None  # the local profile: triggered, no timer


def test_reconciliation_runs_when_any_base_database_publishes(bag):
    from jichu.orchestration import BATCH

    dag = bag.dags["reconciliation"]
    assert type(dag.schedule).__name__ == "AssetAny"
    assert sorted(a.name for a in dag.schedule.objects) == ["published.legal_entities__entity", "published.population__person"]
    assert [t.task_id for t in dag.topological_sort()] == ["reconcile", "mail"]
    assert dag.get_task("reconcile").application_args == ["reconcile", "--batch", BATCH]
    assert list(dag.get_task("mail").op_args) == [BATCH]  # rendered per run, like the Spark task's arguments
    # The domain DAGs submit the `job` command through the same entry point.
    assert bag.dags["population"].get_task("build").application_args[0] == "job"
