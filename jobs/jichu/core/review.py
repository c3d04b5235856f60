"""Clerical review: uncertain pairs go to people, and their decisions apply on every later run.

The resolve stage writes the queue (`review.<domain>__queue`, a Delta table) and a CSV export with
an empty `decision` column. A reviewer fills in `match` or `no_match` and the file is imported
with `jichu review import FILE`; decisions are stored in `review.<domain>__decisions`, keyed by the
pair id (record content + entity), so they hold for the same record in every later batch.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from jichu.config import var_dir

DECISIONS_SCHEMA = "pair_id string, decision string, record_ref string, entity_id string, source_file string, decided_at timestamp"
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
    """Store a filled-in review file's decisions (a later decision on the same pair replaces the earlier)."""
    from jichu.core import tables

    queue = f"review.{domain}__queue"
    known = {r["pair_id"] for r in spark.table(queue).select("pair_id").collect()} if tables.table_exists(spark, queue) else set()
    rows = read_decisions(path, known)
    if rows.empty:
        return 0
    frame = spark.createDataFrame(rows).select(
        "pair_id", "decision", "record_ref", "entity_id", F.lit(str(path)).alias("source_file"),
        F.current_timestamp().alias("decided_at"),
    )
    tables.upsert(frame, f"review.{domain}__decisions", "t.pair_id = s.pair_id", update={"*": "*"})
    return len(rows)
