"""Clerical review: uncertain pairs go to people, and their decisions apply on every later run.

The resolve stage writes the queue (`review.<domain>__queue`, a Delta table) and a CSV export with
an empty `decision` column. A reviewer fills in `match` or `no_match` and the file is imported
with `jichu review import FILE`; decisions are stored in `review.<domain>__decisions`, keyed by the
pair id (record key + entity, `resolve.pair_id`). The record key does not depend on the linkage
spec, so a decision holds for the same record in every later batch, whatever the spec becomes.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from jichu.config import var_dir
from jichu.core.resolve import RECORD_KEY, assign_record_key, pair_id

DECISIONS_SCHEMA = (
    "pair_id string, decision string, record_ref string, entity_id string, source_file string, decided_at timestamp, "
    "record_key string"
)
DECISIONS = ("match", "no_match")


class ReviewFileError(ValueError):
    """A returned review file is unusable; the message names the file, row and column."""


def review_export_path(domain: str, batch: str) -> Path:
    return var_dir() / "review" / domain / f"{batch}.csv"


def read_decisions(path: Path, known_pairs: set[str]) -> pd.DataFrame:
    """The filled-in rows of a review export; errors name the file and the row (1-based, after the header)."""
    try:
        rows = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except FileNotFoundError:
        raise ReviewFileError(f"{path}: file not found") from None
    missing = {"pair_id", "decision"} - set(rows.columns)
    if missing:
        raise ReviewFileError(f"{path}: columns missing: {', '.join(sorted(missing))}")
    problems = []
    for i, row in rows.iterrows():
        decision = row["decision"].strip().lower()
        if decision and decision not in DECISIONS:
            problems.append(f"{path}: row {i + 1} column decision: {row['decision']!r} is not match or no_match")
        if row["pair_id"] not in known_pairs:
            problems.append(f"{path}: row {i + 1} column pair_id: not in the review queue")
    if problems:
        raise ReviewFileError("\n".join(problems))
    rows["decision"] = rows["decision"].str.strip().str.lower()
    return rows[rows["decision"] != ""][["pair_id", "decision", "record_ref", "entity_id"]]


def import_decisions(spark: SparkSession, domain: str, path: Path) -> int:
    """Store a filled-in review file's decisions (a later decision on the same pair replaces the
    earlier), each with the record key the queue gave its pair. A queue written before record keys
    gives none: the resolve stage moves such a decision to its record key (`rekey_decisions`)."""
    from jichu.core import tables

    queue = f"review.{domain}__queue"
    pairs = tables.read_or_empty(spark, queue, f"pair_id string, {RECORD_KEY} string")
    if RECORD_KEY not in pairs.columns:
        pairs = pairs.withColumn(RECORD_KEY, F.lit(None).cast("string"))
    known = {r["pair_id"]: r[RECORD_KEY] for r in pairs.select("pair_id", RECORD_KEY).collect()}
    rows = read_decisions(path, set(known))
    if rows.empty:
        return 0
    rows = rows.assign(record_key=rows["pair_id"].map(known))
    frame = spark.createDataFrame(rows, "pair_id string, decision string, record_ref string, entity_id string, record_key string").select(
        "pair_id", "decision", "record_ref", "entity_id", F.lit(str(path)).alias("source_file"),
        F.current_timestamp().alias("decided_at"), RECORD_KEY,
    )
    stored = f"review.{domain}__decisions"
    if tables.table_exists(spark, stored) and RECORD_KEY not in spark.table(stored).columns:  # written before record keys
        spark.sql(f"ALTER TABLE {stored} ADD COLUMNS ({RECORD_KEY} string)")
    tables.upsert(frame, stored, "t.pair_id = s.pair_id", update={"*": "*"})
    return len(rows)


def rekey_decisions(decisions: DataFrame, records: DataFrame) -> DataFrame | None:
    """The decisions table with every decision stored under a legacy pair id (a hash of the spec's
    columns, no `record_key`) moved to its record key's pair id, found through its `record_ref` in
    the standardized records; None when no decision needs it. Decisions whose record is not found
    stay as they are (the resolve stage tries again on its next run)."""
    if RECORD_KEY not in decisions.columns:
        decisions = decisions.withColumn(RECORD_KEY, F.lit(None).cast("string"))
    keys = assign_record_key(records).select("record_ref", F.col(RECORD_KEY).alias("_found"))
    found = decisions.join(keys, "record_ref", "left").withColumn("_moved", F.col(RECORD_KEY).isNull() & F.col("_found").isNotNull())
    if not found.where("_moved").limit(1).count():
        return None
    moved = found.withColumn(RECORD_KEY, F.coalesce(RECORD_KEY, "_found"))
    return moved.withColumn("pair_id", F.when(F.col("_moved"), pair_id(RECORD_KEY, "entity_id")).otherwise(F.col("pair_id"))).select(
        *[c.split()[0] for c in DECISIONS_SCHEMA.split(", ")]
    )
