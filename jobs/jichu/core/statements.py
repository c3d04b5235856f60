"""Statements: every value of every record, with its provenance, one row per (entity, field, record).

This table is the heart of the system: authority, verification and the agencies' reports are
generic over it, whatever the domain. It is change-only: a batch stores only what its agencies
say anew (see `new_statements`), so a monthly snapshot that repeats itself adds almost nothing.

`record_id` is the agency's record across its deliveries (its extract and record key; an event's
own record_ref), so two records one agency holds for one entity are two voices, not one.
`retracted_in` is null while the record is listed; it is the batch whose snapshot stopped listing
the record. It is set only on the few retracted statements (pipeline.resolve), never by
rewriting the others, and only current statements (`current`) count for golden and verification.

What a source may say of its own values (`SOURCE_SAYS`): `valid_from`/`valid_to`, the validity it
gives them (a division code's 启用/停用 years), and `vintage`, their release status (preliminary,
revised, final). Null where the extract declares none; a frame without these columns (one built with
`STATEMENT_SCHEMA`, the columns every statement has) reads as saying none (`with_source_says`).
"""

from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from jichu.config import EntityType, FieldRule
from jichu.core.registry import same_value

SOURCE_SAYS = {"valid_from": "date", "valid_to": "date", "vintage": "string"}
STATEMENT_COLUMNS = [
    "entity_id", "field", "value", "agency", "extract", "batch", "record_ref", "original_value", "observed_at",
    "record_id", "retracted_in", *SOURCE_SAYS,
]
STATEMENT_SCHEMA = (
    "entity_id string, field string, value string, agency string, extract string, batch string, "
    "record_ref string, original_value string, observed_at date, record_id string, retracted_in string"
)
"""Every statement's columns but `SOURCE_SAYS`, which `with_source_says` adds where missing."""
# What one record of an agency says about an entity's field, and the order in which it said it (the
# order every consumer uses: authority, history and verification).
SAID_BY = ["entity_id", "field", "agency", "record_id"]
SAID = ["value", "original_value", *SOURCE_SAYS]
SAID_ORDER = ["observed_at", "batch", "record_ref"]


def with_source_says(statements: DataFrame) -> DataFrame:
    """`statements` with the `SOURCE_SAYS` columns, null where it has none."""
    missing = {c: F.lit(None).cast(t) for c, t in SOURCE_SAYS.items() if c not in statements.columns}
    return statements.withColumns(missing) if missing else statements


def current(statements: DataFrame) -> DataFrame:
    """The statements whose record the agency still lists (not retracted)."""
    return statements.where(F.col("retracted_in").isNull())


def unpivot_statements(linked: DataFrame, domain: EntityType) -> DataFrame:
    """One statement per non-null field value of each linked record (none retracted)."""
    pairs = F.array(
        *[
            F.struct(F.lit(name).alias("field"), F.col(name).cast("string").alias("value"))
            for name in domain.fields
        ]
    )
    # Records without validity or vintage columns (a frame made without them) say none.
    says = [c for c in SOURCE_SAYS if c in linked.columns]
    exploded = linked.where(F.col("entity_id").isNotNull()).select(
        "entity_id", "agency", "extract", "batch", "record_ref", "record_id", "original", "observed_at", *says,
        F.explode(pairs).alias("s"),
    )
    return with_source_says(exploded.where(F.col("s.value").isNotNull()).select(
        "entity_id",
        F.col("s.field").alias("field"),
        F.col("s.value").alias("value"),
        "agency",
        "extract",
        "batch",
        "record_ref",
        F.element_at("original", F.col("s.field")).alias("original_value"),
        "observed_at",
        "record_id",
        F.lit(None).cast("string").alias("retracted_in"),
        *says,
    )).select(*STATEMENT_COLUMNS)


def new_statements(batch_statements: DataFrame, earlier_statements: DataFrame,
                   fields: dict[str, FieldRule] | None = None) -> DataFrame:
    """The statements of a batch that say something new, to be stored in the batch's slice.

    Per (entity, field, agency, record), the batch's statements and the stored ones of earlier batches
    are put in the order every consumer uses (observed_at, batch, record_ref). A batch statement is new
    unless the statement just before it says the same (value, original_value, and what the source says
    of it: validity and vintage) and is current. So a code the source retires (valid_to set in a later
    snapshot) is news, and so is a final release equal to the preliminary one. And a
    record listed again after its retraction says its values anew. So a snapshot
    re-delivering a value is not stored again and the stored statement keeps the batch and record
    where the agency first delivered it; but a value that comes back after a change (insured
    status 1 -> 2 -> 1, a move back to the former address) is stored, which an anti-join on the
    value alone would drop, leaving the golden value at the intermediate one.

    Dropping only statements whose predecessor says the same leaves each agency's sequence of
    distinct values and its latest value unchanged, so `select_golden` and `assign_history` give
    the same values over the change-only table as over every statement ever delivered.

    Keyed by the record, each record the agency holds for an entity keeps its own sequence: a second
    marriage registration, or a wrongly linked record beside the right one, is never taken for a
    repeat of the other.

    `earlier_statements` must hold only batches before this one, and no retraction made by this
    batch, so a rerun of the batch computes the same slice again. With the domain's `fields`, values
    are the same by their field type's comparator (registry.same_value: a figure revised within its
    tolerance says nothing new); without, by equality.
    """
    fresh = with_source_says(batch_statements).select(*STATEMENT_COLUMNS).withColumn("_fresh", F.lit(True))
    # The earlier statements of the entities the batch speaks of only: a monthly snapshot's unchanged
    # rows are carried at standardize, so the batch speaks of the few that changed, and the window
    # shuffles those entities' statements, not the whole table. Materialized, so Spark knows their
    # number and broadcasts a monthly batch's few into the scan of the earlier statements.
    spoken_of = fresh.select("entity_id").distinct().localCheckpoint()
    earlier = with_source_says(earlier_statements).select(*STATEMENT_COLUMNS).join(spoken_of, "entity_id", "left_semi")
    both = fresh.unionByName(earlier.withColumn("_fresh", F.lit(False)))
    order = Window.partitionBy(*SAID_BY).orderBy(*SAID_ORDER)
    # A marker column, because original_value may be null: "no predecessor" is not "predecessor said null".
    has_before = F.lag(F.lit(True)).over(order).isNotNull()
    repeats = has_before & F.lag("retracted_in").over(order).isNull()
    for column in SAID:
        before = F.lag(column).over(order)
        if column == "value" and fields:
            repeats = repeats & same_value(fields, F.col("field"), before, F.col(column))
        else:
            repeats = repeats & before.eqNullSafe(F.col(column))
    return both.withColumn("_repeat", repeats).where(F.col("_fresh") & ~F.col("_repeat")).select(*STATEMENT_COLUMNS)
