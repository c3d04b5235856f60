"""Snapshots: a record's identity across an agency's deliveries, unchanged rows and retractions.

A snapshot extract (conf/extracts `kind: snapshot`) lists every record the agency holds, each
delivery anew. Each staged row gets two columns here:

- `record_id`: the record across deliveries: agency, extract and the value of the extract's
  `record_key` column (an ID number, 学籍号, a credit code, a birth certificate's number). A snapshot
  row whose key is empty is known by its values (its row hash), so changing it is a new record and the
  old one retracted; an event (`kind: events`) without a key is its own record, its record_ref.
- `row_hash`: a hash of the row's key and values (the columns the extract maps, with the extract's
  conf and its domain's field rules, so that a changed adapter standardizes every row again).

A row whose hash equals a row of the agency's previous delivery of the extract that was standardized
(or carried) there is carried as unchanged (`mark_unchanged`), not standardized, resolved or unpivoted
again: its statements and its link are already stored (`listings_query` lists it in its batch). For a snapshot that is the record listed again; for events
it is an event delivered twice (a file re-sent), which is carried, not taken for new events. A row quarantined last time and repeated unchanged is
processed again, so it stays in quarantine for the new batch. A record the previous delivery listed
and this one does not is retracted (`retracted_records`).
"""

from __future__ import annotations

import hashlib

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from jichu.config import EntityType, Extract
from jichu.core.standardize import LINEAGE

UNCHANGED_SCHEMA = (
    "record_ref string, agency string, extract string, batch string, file string, row long, "
    "record_id string, row_hash string, carried_from string, carried_batch string"
)
"""A carried row: its own lineage in this batch, and the staged row (`carried_from`, a staging
record_ref, in `carried_batch`) that was standardized and linked, in the previous delivery or, for a
row carried there too, in the one that row was carried from; it takes that row's links."""
RETRACTED_SCHEMA = "agency string, extract string, batch string, record_id string"
LINK_COLUMNS = ["entity_id", "key_field", "method", "probability", "spec_sha256"]
"""What a link says of its record (resolved.<d>__<e>_links holds LINEAGE and these)."""
IDENTITY = ["record_id", "row_hash"]


def hashed_columns(extract: Extract, staged_columns: list[str]) -> list[str]:
    """The delivered columns that feed the extract's records: every mapped column, the observed_at,
    validity and vintage columns and the record key (columns the adapter ignores do not make a row
    changed; a code the source retires, its 停用 year filled in, does)."""
    mappings = [m for fields in extract.mappings().values() for m in fields.values()]
    mappings += [m for m in (extract.observed_at, extract.valid_from, extract.valid_to, extract.vintage) if m is not None]
    names = {c for m in mappings for c in [m.column, *m.also]} | ({extract.record_key} if extract.record_key else set())
    return sorted(n for n in names if n in staged_columns)


def conf_fingerprint(extract: Extract, domain: EntityType) -> str:
    """What standardizing a row depends on besides the row: the adapter and the domain's field rules."""
    text = extract.model_dump_json() + "|" + "|".join(f"{n}={r.model_dump_json()}" for n, r in sorted(domain.fields.items()))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def assign_row_identity(staged: DataFrame, extract: Extract, domain: EntityType) -> DataFrame:
    """`staged` (staging's columns) with `_record_id` and `_row_hash` (see the module)."""
    values = F.to_json(F.array(*[F.col(f"`{c}`").cast("string") for c in hashed_columns(extract, staged.columns)]))
    row_hash = F.sha2(F.concat(F.lit(conf_fingerprint(extract, domain)), values), 256)
    prefix = f"{extract.agency}:{extract.extract}:"
    key = F.trim(F.col(f"`{extract.record_key}`").cast("string")) if extract.record_key in staged.columns else F.lit(None)
    unkeyed = F.col("_record_ref") if extract.kind == "events" else F.concat(F.lit(prefix + "#"), F.substring(row_hash, 1, 32))
    record_id = F.when(F.coalesce(key, F.lit("")) != "", F.concat(F.lit(prefix), key)).otherwise(unkeyed)
    return staged.withColumn("_row_hash", row_hash).withColumn("_record_id", record_id)


def mark_unchanged(staged: DataFrame, before: DataFrame) -> DataFrame:
    """`staged` (with `_row_hash`) with `_carried_from` and `_carried_batch`: the staged row with the same
    hash that was standardized, null for a changed or new row. `before`: the previous delivery's
    records that were standardized or carried, none of whose row was quarantined, each with the
    standardized row it is (record_ref, batch) and its row_hash: for a carried one, the row it was
    carried from, so that a record listed unchanged for years points at its one link."""
    rows = before.select(
        F.col("row_hash").alias("_row_hash"),
        F.regexp_replace("record_ref", "#[^#]*$", "").alias("_carried_from"),  # a role's record is its row's
        F.col("batch").alias("_carried_batch"),
    ).dropDuplicates(["_row_hash"])
    return staged.join(rows, "_row_hash", "left")


def unchanged_rows(marked: DataFrame) -> DataFrame:
    """The carried rows of `mark_unchanged`, as the unchanged table holds them (UNCHANGED_SCHEMA)."""
    return marked.where(F.col("_carried_from").isNotNull()).select(
        F.col("_record_ref").alias("record_ref"), F.col("_agency").alias("agency"), F.col("_extract").alias("extract"),
        F.col("_batch").alias("batch"), F.col("_file").alias("file"), F.col("_row").cast("long").alias("row"),
        F.col("_record_id").alias("record_id"), F.col("_row_hash").alias("row_hash"),
        F.col("_carried_from").alias("carried_from"), F.col("_carried_batch").alias("carried_batch"),
    )


def retracted_records(listed_before: DataFrame, staged: DataFrame, batch: str) -> DataFrame:
    """The records the previous delivery listed (agency, extract, record_id) that `staged` (this
    delivery, with `_record_id`) does not list: retracted in `batch` (RETRACTED_SCHEMA)."""
    now = staged.select(F.col("_record_id").alias("record_id"))
    return (listed_before.select("agency", "extract", "record_id").distinct()
            .join(now, "record_id", "left_anti")
            .select("agency", "extract", F.lit(batch).alias("batch"), "record_id"))


def listings_query(links_table: str, unchanged_table: str | None) -> str:
    """The records each batch listed, with their entities (LINEAGE and the link's columns): the batch's
    links, and each carried row with the link of the row it repeats, per role, under its own
    record_ref. Links are change-only, like statements: a carried row is linked once, where its row
    was standardized (`carried_from` names that row, `mark_unchanged`), and it is still a listing in
    its batch (population__deceased_still_insured counts 人社's listings per batch)."""
    query = f"SELECT {', '.join(f'`{c}`' for c in [*LINEAGE, *LINK_COLUMNS])} FROM {links_table}"
    if unchanged_table is None:
        return query
    carried = ["concat(u.record_ref, l.role) AS record_ref", *[f"u.`{c}`" for c in LINEAGE if c != "record_ref"],
               *[f"l.`{c}`" for c in LINK_COLUMNS]]
    return query + f"""
UNION ALL
SELECT {', '.join(carried)}
FROM {unchanged_table} u
JOIN (SELECT *, regexp_replace(record_ref, '#[^#]*$', '') AS origin, regexp_extract(record_ref, '(#[^#]*)$', 1) AS role
      FROM {links_table}) l
  ON u.carried_from = l.origin AND u.carried_batch = l.batch"""
