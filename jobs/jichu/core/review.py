"""Clerical review: uncertain pairs go to people, and their decisions apply on every later run.

The resolve stage writes the queue (`review.<domain>__<entity>_queue`, a Delta table) and a CSV export,
var/review/<domain>/<entity>/<batch>.csv, with an empty `decision` column. A reviewer fills in `match`
or `no_match` and the file is imported with `jichu review import FILE`; decisions are stored in
`review.<domain>__<entity>_decisions`, keyed by the
pair id (record key + entity, `resolve.pair_id`). The record key does not depend on the linkage
spec, so a decision holds for the same record in every later batch, whatever the spec becomes.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from jichu.config import ConfigError, EntityType, load_entity, var_dir
from jichu.core.resolve import RECORD_KEY

DECISIONS_SCHEMA = (
    "pair_id string, decision string, record_ref string, entity_id string, source_file string, decided_at timestamp, "
    "record_key string"
)
DECISIONS = ("match", "no_match")


class ReviewFileError(ValueError):
    """A returned review file is unusable; the message names the file, row and column."""


def review_export_path(entity: EntityType, batch: str) -> Path:
    return var_dir() / "review" / entity.domain / entity.entity / f"{batch}.csv"


def review_target(path: Path) -> EntityType:
    """The entity type a review export is of, from where `review_export_path` put it
    (.../<domain>/<entity>/<batch>.csv), so a reviewer names nothing but the file."""
    try:
        return load_entity(path.resolve().parent.parent.name, path.resolve().parent.name)
    except ConfigError:
        raise ReviewFileError(f"{path}: not in a folder <domain>/<entity>/ of a review export "
                              f"(var/review/<domain>/<entity>/<batch>.csv)") from None


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


def import_decisions(spark: SparkSession, entity: EntityType, path: Path) -> int:
    """Store a filled-in review file's decisions (a later decision on the same pair replaces the
    earlier), each with the record key the queue gave its pair."""
    from jichu.core import tables

    pairs = tables.read_or_empty(spark, entity.table("review", "queue"), f"pair_id string, {RECORD_KEY} string")
    known = {r["pair_id"]: r[RECORD_KEY] for r in pairs.select("pair_id", RECORD_KEY).collect()}
    rows = read_decisions(path, set(known))
    if rows.empty:
        return 0
    rows = rows.assign(record_key=rows["pair_id"].map(known))
    frame = spark.createDataFrame(rows, "pair_id string, decision string, record_ref string, entity_id string, record_key string").select(
        "pair_id", "decision", "record_ref", "entity_id", F.lit(str(path)).alias("source_file"),
        F.current_timestamp().alias("decided_at"), RECORD_KEY,
    )
    tables.upsert(frame, entity.table("review", "decisions"), "t.pair_id = s.pair_id", update={"*": "*"})
    return len(rows)
