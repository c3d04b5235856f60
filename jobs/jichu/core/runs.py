"""Run records: each stage's figures, kept in the Delta table `runs.stages`, one row per run and stage.

A DAG task appends its stages' figures in one write when it ends (`flush`), whether it passed or not, so
the next task reads what the earlier ones recorded from the table, on whatever host it runs: the
publish task reads the gate's verdict there. Nothing passes between tasks through a local file.

For people, each task also exports the run's summary to ``var/runs/<run_id>/summary.json`` (read by
`jichu summary` without a Spark start); the table is the record, the file a copy of it.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from pathlib import Path

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from jichu.config import var_dir

STAGE_ORDER = ["ingest", "standardize", "resolve", "golden", "verify", "gate", "publish"]
RUNS_TABLE = "runs.stages"
RUNS_SCHEMA = "domain string, entity string, run_id string, batch string, stage string, recorded_at timestamp, figures string"


def safe_run_id(run_id: str) -> str:
    """Airflow run ids hold ':' and '+'; folder names keep letters, digits, '-', '_' and '.'."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", run_id)


def runs_dir() -> Path:
    return var_dir() / "runs"


class RunRecorder:
    """The figures of one run of one entity type (run id, domain, entity type, batch): recorded in memory
    by each stage, written to `runs.stages` by `flush`, read back by `load` (this task's first, then the
    table's)."""

    def __init__(self, run_id: str, domain: str, entity: str, batch: str):
        self.run_id = run_id
        self.domain = domain
        self.entity = entity
        self.batch = batch
        self.pending: dict[str, dict] = {}

    def record(self, name: str, figures: dict) -> None:
        self.pending[name] = {"recorded_at": datetime.now(timezone.utc).isoformat(timespec="seconds"), **figures}

    def load(self, name: str, spark: SparkSession | None = None) -> dict | None:
        if name in self.pending:
            return self.pending[name]
        return self._stored(spark).get(name)

    def _stored(self, spark: SparkSession | None = None) -> dict[str, dict]:
        """The run's stored records, the latest of each stage (a retried task's attempt supersedes)."""
        from jichu.core import tables

        spark = spark or SparkSession.getActiveSession()
        if spark is None or not tables.table_exists(spark, RUNS_TABLE):
            return {}
        rows = (spark.table(RUNS_TABLE)
                .where((F.col("domain") == self.domain) & (F.col("entity") == self.entity) & (F.col("run_id") == self.run_id))
                .select("stage", "recorded_at", "figures").collect())
        latest = {}
        for r in sorted(rows, key=lambda r: r["recorded_at"]):
            latest[r["stage"]] = json.loads(r["figures"])
        return latest

    def flush(self, spark: SparkSession) -> None:
        """Append the pending records: one blind append, which never conflicts with another task's and
        costs no read; a retried task's records supersede the earlier attempt's (`_stored`), which stay."""
        from jichu.core import tables

        if not self.pending:
            return
        rows = [(self.domain, self.entity, self.run_id, self.batch, stage, datetime.now(timezone.utc),
                 json.dumps(figures, ensure_ascii=False, default=str)) for stage, figures in self.pending.items()]
        tables.append(spark.createDataFrame(rows, RUNS_SCHEMA), RUNS_TABLE, partition_by=["domain"])
        self.pending = {}

    def summary(self, spark: SparkSession | None = None) -> dict:
        """The run's summary, from every stage recorded so far (earlier tasks' and this one's)."""
        recorded = {**self._stored(spark), **self.pending}
        stages = {s: recorded[s] for s in STAGE_ORDER if s in recorded}
        ingest = stages.get("ingest", {})
        standardize = stages.get("standardize", {})
        gate = stages.get("gate", {})
        return {
            "run_id": self.run_id,
            "domain": self.domain,
            "entity": self.entity,
            "batch": self.batch,
            "stages_completed": [s for s in STAGE_ORDER if s in stages and (s != "gate" or gate.get("passed"))],
            "tables": {k: v for k, v in (recorded.get("tables") or {}).items() if k != "recorded_at"},
            "deliveries_rejected": ingest.get("rejected", []),
            "delivery_warnings": ingest.get("warnings", []),
            "row_accounting": standardize.get("accounting", []),
            "quarantined": sum(a["quarantined"] for a in standardize.get("accounting", [])),
            "quarantine_reasons": standardize.get("quarantine_reasons", {}),
            "issues": standardize.get("issues", {}),
            "resolve": stages.get("resolve"),
            "golden": stages.get("golden"),
            "discrepancies": stages.get("verify", {}),
            "gate": {k: gate.get(k) for k in ("suite", "passed", "evaluated", "critical_failures", "failures", "rows_checked")}
            if gate else None,
            "data_docs": gate.get("data_docs"),
            "published": stages.get("publish"),
        }

    def export_summary(self, spark: SparkSession | None = None) -> dict:
        """Write the summary to var/runs/<run_id>/<entity>/summary.json, for people and `jichu summary`."""
        summary = self.summary(spark)
        folder = runs_dir() / safe_run_id(self.run_id) / self.entity
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "summary.json").write_text(json.dumps(summary, ensure_ascii=False, indent=2), encoding="utf-8")
        return summary


def latest_summary(domain: str | None = None, runs: Path | None = None, entity: str | None = None) -> Path | None:
    """The newest summary.json under `runs` (default: this profile's var/runs), optionally of one domain
    and one of its entity types."""
    candidates = sorted((runs or runs_dir()).glob("*/*/summary.json"), key=lambda p: p.stat().st_mtime)
    for path in reversed(candidates):
        summary = json.loads(path.read_text(encoding="utf-8"))
        if domain in (None, summary.get("domain")) and entity in (None, summary.get("entity")):
            return path
    return None
