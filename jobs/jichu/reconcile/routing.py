"""What the agencies' answers change (reconcile.answers: every import's answers, kept as history).

An item (agency and discrepancy id) has one current answer: the one of the latest import that answered
it. Everything that acts on answers reads that one (`latest_answers`); earlier ones stay as history.

- "Our value is right" (ours_right) from an agency that is not the source of record puts the item to the
  authority: a DISPUTED_BY_AGENCY discrepancy for the authoritative agency, its value questioned with the
  answering agency's value as evidence. It lives as long as the item it answers is active.
- "Will correct" (will_correct) on an item that is still active two batches after the report it answered,
  and was not resolved in between, escalates the item (status escalated) for the province's data
  authority. A promise kept and an item back later is reopened, not escalated: it needs a new answer.
"""

from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from jichu.core.verify import ACTIVE, DISCREPANCY_COLUMNS, RULE_VALUE_MISMATCH, discrepancy_id

ANSWERS_TABLE = "reconcile.answers"
ANSWERS_SCHEMA = ("discrepancy_id string, agency string, disposition string, comment string, answered_batch string, "
                  "file string, row int, import_id string, imported_at timestamp")
RULE_DISPUTED = "DISPUTED_BY_AGENCY"
ESCALATE_AFTER = 2
"""Batches after the answered report within which a promised correction must have happened."""


def with_answers_schema(answers: DataFrame) -> DataFrame:
    """`answers` as ANSWERS_SCHEMA has them: rows stored before a column was added have it null (those
    from before imports were kept apart have no import_id and no imported_at)."""
    empty = answers.sparkSession.createDataFrame([], ANSWERS_SCHEMA)
    return empty.unionByName(answers, allowMissingColumns=True)


def latest_answers(answers: DataFrame) -> DataFrame:
    """Each item's current answer: the one of the latest import, whichever batch's report it answered.
    Rows stored before imports were timed have no imported_at and lose to any timed import; among them
    the later answered batch wins, as it did then."""
    order = Window.partitionBy("agency", "discrepancy_id").orderBy(
        F.col("imported_at").desc_nulls_last(), F.col("answered_batch").desc(), F.col("import_id").desc())
    return with_answers_schema(answers).withColumn("_n", F.row_number().over(order)).where("_n = 1").drop("_n")


def disputes(current: DataFrame, answers: DataFrame) -> DataFrame:
    """DISPUTED_BY_AGENCY items for the authorities: from each VALUE_MISMATCH found in this run whose
    agency answered that its value is right. Columns as DISCREPANCY_COLUMNS."""
    right = latest_answers(answers).where(F.col("disposition") == "ours_right").select("discrepancy_id")
    disputed = current.where(F.col("rule") == RULE_VALUE_MISMATCH).join(right, "discrepancy_id", "left_semi")
    rows = disputed.select(
        "domain", "entity", "entity_id", "field", F.col("golden_agency").alias("agency"), F.lit(RULE_DISPUTED).alias("rule"),
        "severity", F.col("golden_value").alias("value"), F.lit(None).cast("string").alias("original_value"),
        F.col("golden_batch").alias("batch"), F.col("golden_record_ref").alias("record_ref"),
        F.col("value").alias("golden_value"), F.col("agency").alias("golden_agency"),
        F.col("batch").alias("golden_batch"), F.col("record_ref").alias("golden_record_ref"),
    )
    return rows.withColumn("discrepancy_id", discrepancy_id(F.col("domain"))).select(*DISCREPANCY_COLUMNS)


def escalate(discrepancies: DataFrame, answers: DataFrame, batches: list[str], batch: str) -> DataFrame:
    """The discrepancies with status `escalated` where the agency promised a correction in its answer to
    the report of batch A and the item is still active ESCALATE_AFTER or more batches after A. `batches`
    are the domain's batch dates (their order counts, not the days between)."""
    index = {b: i for i, b in enumerate(sorted(set(batches) | {batch}))}
    position = F.create_map(*[F.lit(x) for b, i in index.items() for x in (b, i)])
    promised = latest_answers(answers).where(F.col("disposition") == "will_correct").select(
        "discrepancy_id", F.element_at(position, F.col("answered_batch")).alias("_answered"),
        F.col("answered_batch").alias("_answered_batch"))
    kept = F.coalesce(F.col("resolved_in") > F.col("_answered_batch"), F.lit(False))
    overdue = (F.col("status").isin(*ACTIVE) & F.col("_answered").isNotNull() & ~kept
               & (F.lit(index[batch]) - F.col("_answered") >= ESCALATE_AFTER))
    return discrepancies.join(promised, "discrepancy_id", "left").withColumn(
        "status", F.when(overdue, F.lit("escalated")).otherwise(F.col("status"))
    ).select(*discrepancies.columns)
