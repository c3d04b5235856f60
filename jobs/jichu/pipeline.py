"""The pipeline stages, one Spark job each, for any domain and one batch date.

Each stage reads its inputs, calls pure transforms from `jichu.core`, writes Delta tables through
`jichu.core.tables`, and records its figures for the run summary. Every stage is idempotent for
its batch: a rerun replaces what the previous run of that batch wrote.

    landing -> staging -> standardized (+ quarantine) -> resolved -> statements
            -> golden -> verified -> (gate) -> published
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from jichu.config import ROOT, Domain, Profile, load_domain, load_extracts
from jichu.core import tables
from jichu.core.authority import GOLDEN_COLUMNS, assign_wide_record, authority_rules, select_golden
from jichu.core.landing import DeliveryRejected, check_delivery, landing_folder
from jichu.core.resolve import KEYS_SCHEMA, assign_keys, link_records, new_keys
from jichu.core.runs import RunRecorder
from jichu.core.standardize import LINEAGE, assign_standard_fields, split_quarantine
from jichu.core.statements import unpivot_statements
from jichu.core.verify import DISCREPANCY_SCHEMA, evolve_discrepancies, find_discrepancies

log = logging.getLogger("jichu")

DELIVERIES = "landing.deliveries"
QUARANTINE = "standardized.quarantine"
DISCREPANCIES = "verified.discrepancies"
ERRORS_LOGGED_PER_EXTRACT = 20


class GateFailed(RuntimeError):
    """The candidate failed a critical expectation; the published table was left as it was."""


@dataclass
class Run:
    spark: SparkSession
    profile: Profile
    domain: Domain
    batch: str
    recorder: RunRecorder

    def table(self, layer: str, suffix: str) -> str:
        return f"{layer}.{self.domain.domain}__{suffix}"


# --- landing -> staging -----------------------------------------------------------------------


def ingest(run: Run) -> dict:
    """Check each agency's delivery for the batch against its manifest and stage every row."""
    by_agency = defaultdict(dict)
    for ex in load_extracts(run.domain.domain):
        by_agency[ex.agency][ex.extract] = ex
    deliveries, staged = [], {}
    for agency, extracts in sorted(by_agency.items()):
        folder = landing_folder(Path(run.profile.landing), agency, run.batch)
        if not folder.exists():
            log.info("%s %s: no delivery for batch %s", run.domain.domain, agency, run.batch)
            continue
        try:
            checked = check_delivery(folder, extracts)
        except DeliveryRejected as e:
            log.error("delivery rejected whole: %s", e)
            deliveries += [(agency, x, "rejected", str(e), None, None, []) for x in sorted(extracts)]
            continue
        for cf in checked:
            ex = cf.extract
            df = run.spark.createDataFrame(cf.table).select(
                F.concat_ws(":", F.lit(ex.agency), F.lit(ex.extract), F.lit(run.batch), F.col("_row")).alias("_record_ref"),
                F.lit(ex.agency).alias("_agency"),
                F.lit(ex.extract).alias("_extract"),
                F.lit(run.batch).alias("_batch"),
                F.lit(cf.path.name).alias("_file"),
                F.col("_row"),
                *[F.col(f"`{c}`") for c in cf.table.column_names if c != "_row"],
            )
            tables.replace_slice(df, f"staging.{ex.key}", {"_batch": run.batch})
            staged[ex.key] = cf.table.num_rows
            if cf.unknown_columns:
                log.warning("%s: columns not in adapter %s (kept in staging): %s", cf.path, ex.key, ", ".join(cf.unknown_columns))
            deliveries.append((agency, ex.extract, "accepted", "", cf.table.num_rows, cf.sha256, cf.unknown_columns))
            log.info("%s: %d rows staged into staging.%s", cf.path, cf.table.num_rows, ex.key)
    schema = "agency string, extract string, status string, reason string, rows long, sha256 string, unknown_columns array<string>"
    frame = run.spark.createDataFrame(deliveries, schema).select(
        F.lit(run.domain.domain).alias("domain"), F.lit(run.batch).alias("batch"), "*",
        F.lit(run.recorder.run_id).alias("run_id"), F.current_timestamp().alias("checked_at"),
    )
    tables.replace_slice(frame, DELIVERIES, {"domain": run.domain.domain, "batch": run.batch})
    rejected = [{"agency": d[0], "extract": d[1], "reason": d[3]} for d in deliveries if d[2] == "rejected"]
    return {"staged": staged, "rejected": rejected}


# --- staging -> standardized + quarantine -----------------------------------------------------


def standardize(run: Run) -> dict:
    """Type and validate each staged row; rows that fail go to quarantine with reason codes."""
    accounting, reasons = [], defaultdict(int)
    for ex in load_extracts(run.domain.domain):
        source = f"staging.{ex.key}"
        if not tables.table_exists(run.spark, source):
            continue
        staged = run.spark.table(source).where(F.col("_batch") == run.batch)
        typed = assign_standard_fields(staged, ex, run.domain).cache()
        good, bad = split_quarantine(typed, run.domain.domain)
        slice_ = {"agency": ex.agency, "extract": ex.extract, "batch": run.batch}
        tables.replace_slice(good, run.table("standardized", "records"), slice_)
        tables.replace_slice(
            bad.withColumn("run_id", F.lit(run.recorder.run_id)), QUARANTINE, {"domain": run.domain.domain, **slice_}
        )
        typed.unpersist()
        n_staged = staged.count()
        n_std = tables.count_slice(run.spark, run.table("standardized", "records"), slice_)
        quarantined = tables.read_slice(run.spark, QUARANTINE, {"domain": run.domain.domain, **slice_})
        n_q = quarantined.count()
        for row in quarantined.groupBy("reason").count().collect():
            reasons[row["reason"]] += row["count"]
        _log_quarantined(quarantined)
        accounting.append(
            {"extract": ex.key, "batch": run.batch, "staged": n_staged, "standardized": n_std,
             "quarantined": n_q, "balanced": n_staged == n_std + n_q}
        )
        if n_staged != n_std + n_q:
            raise RuntimeError(f"row accounting broken for {ex.key} {run.batch}: {n_staged} != {n_std} + {n_q}")
    return {"accounting": accounting, "quarantine_reasons": dict(reasons)}


def _log_quarantined(quarantined: DataFrame) -> None:
    """Name file, row and field of each rejected value (never the value: it may be personal data)."""
    rows = (
        quarantined.select("file", "row", F.explode("errors").alias("e"))
        .orderBy("file", "row").limit(ERRORS_LOGGED_PER_EXTRACT + 1).collect()
    )
    for r in rows[:ERRORS_LOGGED_PER_EXTRACT]:
        log.warning("quarantined: %s row %d field %s (column %s): %s", r["file"], r["row"], r["e"]["field"], r["e"]["column"], r["e"]["code"])
    if len(rows) > ERRORS_LOGGED_PER_EXTRACT:
        log.warning("... more quarantined rows in %s; query %s", rows[0]["file"], QUARANTINE)


# --- standardized -> resolved -> statements ---------------------------------------------------


def resolve(run: Run) -> dict:
    """Link each record of the batch to a stable entity id and write its statements."""
    records = run.spark.table(run.table("standardized", "records")).where(F.col("batch") == run.batch)
    keyed = assign_keys(records, run.domain).cache()
    registry_name = run.table("resolved", "keys")
    known = tables.read_or_empty(run.spark, registry_name, KEYS_SCHEMA)
    fresh = new_keys(keyed, known, run.domain, run.profile.id_salt, run.batch)
    if tables.table_exists(run.spark, registry_name):
        # MERGE keeps the registry append-only and idempotent: a rerun inserts nothing twice.
        (
            DeltaTable.forName(run.spark, registry_name).alias("k")
            .merge(fresh.alias("f"), "k.key_field = f.key_field AND k.key_value = f.key_value")
            .whenNotMatchedInsertAll().execute()
        )
    else:
        tables.overwrite(fresh, registry_name)
    linked = link_records(keyed, run.spark.table(registry_name)).cache()
    tables.replace_slice(
        linked.select(*LINEAGE, "entity_id", "key_field", "method"), run.table("resolved", "links"), {"batch": run.batch}
    )
    tables.replace_slice(unpivot_statements(linked, run.domain), f"statements.{run.domain.domain}", {"batch": run.batch})
    figures = {
        "records": linked.count(),
        "unresolved": linked.where(F.col("entity_id").isNull()).count(),
        "entities": run.spark.table(registry_name).select("entity_id").distinct().count(),
    }
    keyed.unpersist()
    linked.unpersist()
    return figures


# --- statements -> golden -> verified ---------------------------------------------------------


def golden(run: Run) -> dict:
    """Pick each field's value from its source of record (一数一源)."""
    statements = run.spark.table(f"statements.{run.domain.domain}")
    chosen = select_golden(statements, authority_rules(run.spark, run.domain)).select(*GOLDEN_COLUMNS)
    name = run.table("golden", run.domain.entity)
    tables.overwrite(chosen, name)
    result = run.spark.table(name)
    return {"values": result.count(), "fallback_values": result.where("is_fallback").count()}


def verify(run: Run) -> dict:
    """Check every other agency's value against the golden value (多元校核)."""
    statements = run.spark.table(f"statements.{run.domain.domain}")
    chosen = run.spark.table(run.table("golden", run.domain.entity))
    current = find_discrepancies(statements, chosen, run.domain)
    previous = tables.read_or_empty(run.spark, DISCREPANCIES, DISCREPANCY_SCHEMA).where(
        F.col("domain") == run.domain.domain
    )
    # Materialize before writing: the result is written over the table it was read from.
    evolved = evolve_discrepancies(previous, current, run.batch).localCheckpoint()
    tables.replace_slice(evolved, DISCREPANCIES, {"domain": run.domain.domain})
    by_status = {r["status"]: r["count"] for r in evolved.groupBy("status").count().collect()}
    by_field = {
        f"{r['agency']}.{r['field']}": r["count"]
        for r in evolved.where(F.col("status").isin("new", "open", "reopened")).groupBy("agency", "field").count().collect()
    }
    return {"by_status": by_status, "open_by_agency_field": by_field}


# --- write, audit, publish --------------------------------------------------------------------


def gate(run: Run) -> dict:
    """Write the candidate to audit.*, validate it with Great Expectations, record the verdict."""
    from jichu.core.gate import run_gate

    chosen = run.spark.table(run.table("golden", run.domain.entity))
    audit = run.table("audit", run.domain.entity)
    tables.overwrite(assign_wide_record(chosen, run.domain), audit)
    version = tables.current_version(run.spark, audit)
    result = run_gate(tables.read(run.spark, audit, version), run.domain)
    figures = {"audit_table": audit, "audit_version": version, **result.to_dict()}
    run.recorder.record("gate", figures)
    if not result.passed:
        raise GateFailed(
            f"gate failed for {audit} (version {version}); {run.domain.published_table} left unchanged. "
            f"{result.describe()}. Data Docs: {result.data_docs}"
        )
    log.info("gate passed for %s version %s: %s", audit, version, result.describe())
    return figures


def publish(run: Run) -> dict:
    """Copy the audited candidate that passed the gate in this run to the published table."""
    verdict = run.recorder.load("gate")
    if not verdict or not verdict.get("passed"):
        raise GateFailed(f"no passing gate recorded for run {run.recorder.run_id}; nothing published")
    audit = verdict["audit_table"]
    if tables.current_version(run.spark, audit) != verdict["audit_version"]:
        raise GateFailed(f"{audit} changed since it was validated; run the gate again")
    target = run.domain.published_table
    tables.overwrite(tables.read(run.spark, audit, verdict["audit_version"]), target)
    create_views(run.spark)
    return {"table": target, "version": tables.current_version(run.spark, target), "rows": run.spark.table(target).count()}


def create_views(spark: SparkSession) -> list[str]:
    """(Re)create the analysts' views in sql/, in file order; each file holds one statement."""
    created = []
    for path in sorted((ROOT / "sql").rglob("*.sql")):
        statement = path.read_text(encoding="utf-8").strip().rstrip(";")
        database = path.parent.name
        spark.sql(f"CREATE DATABASE IF NOT EXISTS {database}")
        try:
            spark.sql(statement)
            created.append(path.stem)
        except Exception as e:  # a view over a table another domain has not published yet
            if "TABLE_OR_VIEW_NOT_FOUND" not in str(e):
                raise
    return created


STAGES = {
    "ingest": ingest,
    "standardize": standardize,
    "resolve": resolve,
    "golden": golden,
    "verify": verify,
    "gate": gate,
    "publish": publish,
}


def table_counts(spark: SparkSession, domain: Domain) -> dict[str, int]:
    """Row counts of the domain's tables, for the run summary."""
    names = [
        DELIVERIES, QUARANTINE, DISCREPANCIES,
        *[f"staging.{ex.key}" for ex in load_extracts(domain.domain)],
        f"standardized.{domain.domain}__records", f"resolved.{domain.domain}__keys", f"resolved.{domain.domain}__links",
        f"statements.{domain.domain}", f"golden.{domain.domain}__{domain.entity}",
        f"audit.{domain.domain}__{domain.entity}", domain.published_table,
    ]
    return {n: spark.table(n).count() for n in names if tables.table_exists(spark, n)}


def run_stages(stages: list[str], domain_name: str, batch: str, run_id: str, profile: Profile) -> dict:
    """Run stages in order in one Spark application and record their figures.

    This is the entry point of every DAG task: a task runs a few consecutive stages, so the JVM
    and Delta start-up cost is paid once per task, not once per stage.
    """
    from jichu.core.session import get_spark

    domain = load_domain(domain_name)
    recorder = RunRecorder(run_id, domain_name, batch)
    spark = get_spark(f"jichu-{domain_name}-{'-'.join(stages)}", profile)
    run = Run(spark, profile, domain, batch, recorder)
    figures = {}
    try:
        for stage in stages:
            log.info("%s %s batch %s: %s", domain_name, stage, batch, "starting")
            figures[stage] = STAGES[stage](run)
            recorder.record(stage, figures[stage])
        return figures
    finally:
        recorder.record("tables", table_counts(spark, domain))
        recorder.write_summary()
