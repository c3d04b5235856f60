"""Statements: every value of every record, with its provenance, one row per (entity, field).

This table is the heart of the system: authority, verification and the agencies' reports are
generic over it, whatever the domain.
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from jichu.config import Domain

STATEMENT_COLUMNS = [
    "entity_id", "field", "value", "agency", "extract", "batch", "record_ref", "original_value", "observed_at",
]


def unpivot_statements(linked: DataFrame, domain: Domain) -> DataFrame:
    """One statement per non-null field value of each linked record."""
    pairs = F.array(
        *[
            F.struct(F.lit(name).alias("field"), F.col(name).cast("string").alias("value"))
            for name in domain.fields
        ]
    )
    exploded = linked.where(F.col("entity_id").isNotNull()).select(
        "entity_id", "agency", "extract", "batch", "record_ref", "original", F.explode(pairs).alias("s")
    )
    return exploded.where(F.col("s.value").isNotNull()).select(
        "entity_id",
        F.col("s.field").alias("field"),
        F.col("s.value").alias("value"),
        "agency",
        "extract",
        "batch",
        "record_ref",
        F.element_at("original", F.col("s.field")).alias("original_value"),
        F.to_date("batch").alias("observed_at"),
    )
