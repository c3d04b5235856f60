"""Authority: per entity and field, the value from that field's source of record (一数一源).

The rule comes from conf/domains: one authoritative agency per field and, only where the rule
names them, fallback agencies in order. A fallback value is marked as such.
"""

from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from jichu.config import Domain

GOLDEN_COLUMNS = [
    "entity_id", "field", "value", "agency", "batch", "record_ref", "original_value", "is_fallback",
]


def authority_rules(spark: SparkSession, domain: Domain) -> DataFrame:
    """(field, agency, rank): rank 0 is the authority, 1.. the fallbacks in the order given."""
    rows = [
        (name, agency, rank)
        for name, rule in domain.fields.items()
        for rank, agency in enumerate([rule.authority, *rule.fallback])
    ]
    return spark.createDataFrame(rows, "field string, agency string, rank int")


def select_golden(statements: DataFrame, rules: DataFrame) -> DataFrame:
    """The golden value per (entity, field): best-ranked agency, then its latest batch and record."""
    ranked = statements.join(F.broadcast(rules), ["field", "agency"])
    order = Window.partitionBy("entity_id", "field").orderBy(
        F.col("rank"), F.col("batch").desc(), F.col("record_ref").desc()
    )
    best = ranked.withColumn("_n", F.row_number().over(order)).where("_n = 1")
    return best.select(
        "entity_id", "field", "value", "agency", "batch", "record_ref", "original_value",
        (F.col("rank") > 0).alias("is_fallback"),
    )


def assign_wide_record(golden: DataFrame, domain: Domain) -> DataFrame:
    """One row per entity: each field's value (typed) and `<field>_source`, the agency it came from."""
    fields = list(domain.fields)
    wide = golden.groupBy("entity_id").pivot("field", fields).agg(
        F.first("value").alias("value"), F.first("agency").alias("source")
    )
    columns = [F.col("entity_id")]
    for name, rule in domain.fields.items():
        value = F.col(f"{name}_value")
        columns.append((value.cast("date") if rule.type == "date" else value).alias(name))
    columns += [F.col(f"{name}_source") for name in fields]
    return wide.select(*columns)
