"""Resolution: every standardized record gets an entity id that stays the same across runs.

Deterministic keys come first (ID number, credit code, division code), in the order the domain
lists them. A key seen for the first time mints an id from a salted hash of the key, so ids are
stable, reveal nothing about the key, and a full rebuild gives the same ids as incremental runs.
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from jichu.config import Domain

KEYS_SCHEMA = "key_field string, key_value string, entity_id string, first_batch string"


def assign_keys(records: DataFrame, domain: Domain) -> DataFrame:
    """Add (key_field, key_value): the first deterministic key the record carries."""
    key_field = F.coalesce(*[F.when(F.col(k).isNotNull(), F.lit(k)) for k in domain.keys])
    key_value = F.coalesce(*[F.col(k).cast("string") for k in domain.keys])
    return records.withColumn("key_field", key_field).withColumn("key_value", key_value)


def mint_entity_id(domain: Domain, salt: str, key_field: str = "key_field", key_value: str = "key_value"):
    digest = F.sha2(F.concat_ws("|", F.lit(salt), F.lit(domain.domain), F.col(key_field), F.col(key_value)), 256)
    return F.concat(F.lit(domain.id_prefix), F.upper(F.substring(digest, 1, 16)))


def new_keys(keyed: DataFrame, known: DataFrame, domain: Domain, salt: str, batch: str) -> DataFrame:
    """Keys in `keyed` not yet in the key registry `known`, with their newly minted entity ids."""
    seen = keyed.where(F.col("key_value").isNotNull()).select("key_field", "key_value").distinct()
    fresh = seen.join(known, ["key_field", "key_value"], "left_anti")
    return fresh.select(
        "key_field", "key_value", mint_entity_id(domain, salt).alias("entity_id"), F.lit(batch).alias("first_batch")
    )


def link_records(keyed: DataFrame, registry: DataFrame) -> DataFrame:
    """Attach the entity id of each record's key; `method` says how the link was made."""
    linked = keyed.join(registry.select("key_field", "key_value", "entity_id"), ["key_field", "key_value"], "left")
    return linked.withColumn("method", F.concat(F.lit("key:"), F.col("key_field")))
