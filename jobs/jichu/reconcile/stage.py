"""The reconciliation job: after a base database publishes, every agency's report for the batch and the
province summary, from `verified.discrepancies` of every domain; and the import of an agency's answers.

Tables:
    reconcile.answers   the answers of every import (routing.ANSWERS_SCHEMA); an item's current one is
                        that of the latest import (routing.latest_answers)
    reconcile.trend     open items per agency and batch, for the reports' trend chart
"""

from __future__ import annotations

import hashlib
import logging
import shutil
from functools import reduce
from pathlib import Path

import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from jichu.config import AGENCIES, load_domain, load_extracts
from jichu.core import tables
from jichu.core.verify import ACTIVE, DISCREPANCY_SCHEMA, RULE_SUSPECTED_SOURCE_ERROR, RULE_VALUE_MISMATCH
from jichu.reconcile.answers import check_answers
from jichu.reconcile.outbox import agency_items, deliver_agency, deliver_province
from jichu.reconcile.report import report_rows
from jichu.reconcile.routing import ANSWERS_SCHEMA, ANSWERS_TABLE, RULE_DISPUTED, with_answers_schema

log = logging.getLogger("jichu")

DISCREPANCIES = "verified.discrepancies"
TREND_TABLE = "reconcile.trend"
TREND_SCHEMA = "agency string, batch string, open long"


def rule_descriptions(domains: list[str]) -> dict[str, str]:
    """Rule code -> what it means, for the reports' 说明 sheet."""
    described = {RULE_VALUE_MISMATCH: "贵单位的值与权威来源不一致",
                 RULE_SUSPECTED_SOURCE_ERROR: "两个以上单位的值一致，与贵单位（权威来源）的值不同",
                 RULE_DISPUTED: "其他单位答复其值正确，请贵单位（权威来源）核实"}
    for name in domains:
        described.update({r.code: r.description for e in load_domain(name).entities.values() for r in e.rules})
    return described


def for_agencies(frame: pd.DataFrame) -> pd.DataFrame:
    """The items as agencies read them: each field by its label (conf/domains), each agency and each base
    database cited as evidence by its Chinese name (`field`, `golden_agency`; `agency` stays the code the
    outbox is laid out by)."""
    domains = {d: load_domain(d) for d in frame["domain"].dropna().unique()}
    labels = {(d, e, n): f.label for d, spec in domains.items() for e, entity in spec.entities.items()
              for n, f in entity.fields.items()}
    names = {**AGENCIES, **{d: spec.label for d, spec in domains.items()}}

    def named(agencies):  # SUSPECTED_SOURCE_ERROR's evidence joins the agreeing agencies with +
        return "+".join(names.get(a, a) for a in agencies.split("+")) if isinstance(agencies, str) else agencies

    return frame.assign(
        field=[labels.get(k, k[2]) for k in zip(frame["domain"], frame["entity"], frame["field"])],
        golden_agency=frame["golden_agency"].map(named),
    )


def with_record_keys(spark: SparkSession, items: DataFrame) -> DataFrame:
    """`items` with where the agency finds each one's record: `record_key`, the agency's own key of it
    (the column its extract's `record_key` names, e.g. 出生医学证明编号), and `record_row`, the file it
    delivered and the data row ("birth.csv 数据第12行"), from the staged row that the item's record_ref
    names (a role's record, ...#husband, is its row's). Each staging table is joined with its own
    agency's items only, so no agency's key can reach another's report. Empty where nothing is staged."""
    items = items.withColumn("_record_ref", F.regexp_replace("record_ref", "#.*$", ""))
    refs = items.select("agency", "_record_ref").distinct()
    found = []
    for ex in load_extracts():
        table = f"staging.{ex.key}"
        if not tables.table_exists(spark, table):
            continue
        staged = spark.table(table)
        key = F.lit(None)
        if ex.record_key in staged.columns:
            key = F.col(f"`{ex.record_key}`")
        elif ex.record_key:
            log.warning("%s: record_key column %s is in no delivery staged; its reports leave 贵单位记录编号 empty",
                        table, ex.record_key)
        mine = refs.where(F.col("agency") == ex.agency)
        found.append(staged.join(F.broadcast(mine), "_record_ref", "left_semi").select(
            F.lit(ex.agency).alias("agency"), "_record_ref", key.cast("string").alias("record_key"),
            F.format_string("%s 数据第%d行", "_file", "_row").alias("record_row")))
    located = reduce(DataFrame.unionByName, found,
                     spark.createDataFrame([], "agency string, _record_ref string, record_key string, record_row string"))
    return items.join(located, ["agency", "_record_ref"], "left").drop("_record_ref")


def deliver(spark: SparkSession, batch: str, outbox: Path) -> dict:
    """Write every agency's report for `batch` and the province summary into `outbox`; record the
    batch's open counts for the trend. Returns {agency: manifest path}."""
    # Reports show an agency its own record only: the evidence of every agency stays in the table.
    discrepancies = tables.read_or_empty(spark, DISCREPANCIES, DISCREPANCY_SCHEMA).drop("evidence")
    counts = discrepancies.where(F.col("status").isin(*ACTIVE)).groupBy("agency").count()
    tables.replace_slice(counts.select("agency", F.lit(batch).alias("batch"), F.col("count").alias("open")),
                         TREND_TABLE, {"batch": batch})
    trend = spark.table(TREND_TABLE).toPandas()
    frame = for_agencies(with_record_keys(spark, discrepancies).toPandas())
    described = rule_descriptions(sorted(frame["domain"].dropna().unique()))
    manifests = {}
    for agency in sorted(frame["agency"].dropna().unique()):
        items = agency_items(frame, agency, batch)
        history = trend[trend["agency"] == agency].sort_values("batch")[["batch", "open"]]
        manifests[agency] = deliver_agency(outbox, agency, batch, items, history, described)
    manifests["province"] = deliver_province(outbox, batch, frame)
    for stale in outbox.glob(f"*/{batch}"):  # an earlier run's report to an agency that has none now
        if stale.parent.name not in manifests:
            shutil.rmtree(stale)
    log.info("reports for %d agencies and the province summary in %s", len(manifests) - 1, outbox)
    return manifests


def import_answers(spark: SparkSession, path: Path, agency: str, batch: str) -> tuple[int, list]:
    """Check a returned report (the one sent for `batch`) and store its valid answers as one import, the
    latest: its answers become the items' current ones, and earlier imports stay as history. An import
    is known by the file's content (SHA-256), so importing the same file again replaces what it stored,
    with the new time, and duplicates nothing. Returns (answers stored, errors)."""
    discrepancies = tables.read_or_empty(spark, DISCREPANCIES, DISCREPANCY_SCHEMA).drop("evidence").toPandas()
    sent = report_rows(agency_items(for_agencies(discrepancies), agency, batch))
    answers, errors = check_answers(path, agency, sent, discrepancies[["discrepancy_id", "agency"]])
    for e in errors:
        log.error("%s", e)
    columns = [c.split()[0] for c in ANSWERS_SCHEMA.split(", ")]
    stored = tables.read_or_empty(spark, ANSWERS_TABLE, ANSWERS_SCHEMA)
    if set(columns) - set(stored.columns):  # a table from before imports were kept apart: the slice names import_id
        tables.overwrite(with_answers_schema(stored).localCheckpoint(), ANSWERS_TABLE)
    import_id = hashlib.sha256(path.read_bytes()).hexdigest()
    rows = answers.assign(answered_batch=batch, import_id=import_id, imported_at=None)[columns]
    frame = spark.createDataFrame(rows.astype(object).where(rows.notna(), None).values.tolist(), ANSWERS_SCHEMA)
    frame = frame.withColumn("imported_at", F.current_timestamp())
    tables.replace_slice(frame, ANSWERS_TABLE, {"agency": agency, "answered_batch": batch, "import_id": import_id})
    return len(answers), errors
