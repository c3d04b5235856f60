"""What a person sees when something fails: a task log's error lines, and one line for a SQL mistake."""

from __future__ import annotations

import argparse
import json

from jichu.airflow_local import TaskFailure, error_lines
from jichu.cli import cmd_sql


def test_error_lines_of_an_airflow_task_log_without_stack_frames(tmp_path):
    log = tmp_path / "attempt=1.log"
    events = [
        {"level": "info", "event": "Spark-Submit cmd: spark-submit --master local[2] jobs/submit.py"},
        {"level": "info", "event": "26/12/01 09:54:13 ERROR RetryingHMSHandler: An I/O error occurred"},
        {"level": "info", "event": "\tat org.postgresql.core.v3.QueryExecutorImpl.execute(QueryExecutorImpl.java:1)"},
        {"level": "info", "event": "jichu.pipeline.GateFailed: gate failed for audit.population__person"},
        {"level": "error", "event": "Task failed with exception"},
    ]
    log.write_text("\n".join(json.dumps(e) for e in events) + "\nplain text line: Traceback (most recent call last)\n",
                   encoding="utf-8")
    assert error_lines(log) == [
        "26/12/01 09:54:13 ERROR RetryingHMSHandler: An I/O error occurred",
        "jichu.pipeline.GateFailed: gate failed for audit.population__person",
        "Task failed with exception",
        "plain text line: Traceback (most recent call last)",
    ]
    failure = TaskFailure("population", "gate", "2026-01-01", log, error_lines(log))
    described = failure.describe()
    assert described.startswith("DAG population, task gate, batch 2026-01-01: failed (log ")
    assert "    jichu.pipeline.GateFailed" in described


def test_a_sql_mistake_is_one_line_and_exit_code_2(spark, capsys):
    status = cmd_sql(argparse.Namespace(query="SELECT * FROM no_such_db.no_such_table", limit=5))
    err = capsys.readouterr().err
    assert status == 2
    assert err.startswith("SQL error: [TABLE_OR_VIEW_NOT_FOUND]") and err.count("\n") == 1, err
