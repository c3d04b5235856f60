"""Run records in `runs.stages`: what one task records, the next reads from the table (no local file)."""

from __future__ import annotations

import json

from jichu.core.runs import RUNS_TABLE, RunRecorder, runs_dir, safe_run_id


def test_a_later_task_reads_the_gate_verdict_from_the_table_and_a_retry_supersedes(spark):
    gate_task = RunRecorder("manual__2026-03-01T00:00:00+00:00", "population", "person", "2026-03-01")
    gate_task.record("gate", {"passed": False, "audit_version": 3})
    gate_task.flush(spark)
    assert gate_task.pending == {}
    retry = RunRecorder(gate_task.run_id, "population", "person", "2026-03-01")  # the retried gate task
    retry.record("gate", {"passed": True, "audit_version": 4})
    retry.flush(spark)

    publish_task = RunRecorder(gate_task.run_id, "population", "person", "2026-03-01")  # another process, another host
    assert publish_task.load("gate", spark)["passed"] is True and publish_task.load("gate", spark)["audit_version"] == 4
    # Another domain's run with the same id is not this run.
    assert RunRecorder(gate_task.run_id, "legal_entities", "entity", "2026-03-01").load("gate", spark) is None
    stored = spark.table(RUNS_TABLE).where(f"run_id = '{gate_task.run_id}'")
    assert stored.count() == 2  # both attempts kept


def test_summary_gathers_every_task_and_is_exported_for_people(spark):
    build = RunRecorder("summary-run", "population", "person", "2026-03-01")
    build.record("ingest", {"rejected": [{"agency": "gongan", "extract": "household", "reason": "r"}], "warnings": []})
    build.flush(spark)
    publish = RunRecorder("summary-run", "population", "person", "2026-03-01")
    publish.record("gate", {"passed": True, "suite": "s", "evaluated": 1, "critical_failures": 0, "failures": []})
    publish.record("publish", {"table": "published.population__person", "version": 0, "rows": 1})
    summary = publish.export_summary(spark)
    assert summary["stages_completed"] == ["ingest", "gate", "publish"]
    assert summary["deliveries_rejected"][0]["agency"] == "gongan"
    exported = json.loads((runs_dir() / safe_run_id("summary-run") / "person" / "summary.json").read_text(encoding="utf-8"))
    assert exported == summary
