"""Resolution keeps ids stable, proven on a real Delta MERGE into the key registry."""

from delta.tables import DeltaTable
from pyspark.sql import functions as F

from jichu.core import tables
from jichu.core.resolve import assign_keys, link_records, new_keys


def test_key_registry_merge_is_idempotent_and_ids_stable(spark, population):
    records = spark.createDataFrame(
        [("r1", "A1"), ("r2", "A2"), ("r3", "A1"), ("r4", None)], "record_ref string, id_number string"
    )
    keyed = assign_keys(records, population)
    registry = "resolved.test__keys"
    tables.overwrite(new_keys(keyed, spark.createDataFrame([], "key_field string, key_value string"), population, "s", "b1"), registry)
    first = {r["key_value"]: r["entity_id"] for r in spark.table(registry).collect()}
    assert len(first) == 2 and all(v.startswith("P") and len(v) == 17 for v in first.values())

    more = assign_keys(spark.createDataFrame([("r5", "A1"), ("r6", "A3")], "record_ref string, id_number string"), population)
    for _ in range(2):  # the second MERGE is a rerun: it must insert nothing
        fresh = new_keys(more, spark.table(registry), population, "s", "b2")
        (DeltaTable.forName(spark, registry).alias("k")
         .merge(fresh.alias("f"), "k.key_field = f.key_field AND k.key_value = f.key_value")
         .whenNotMatchedInsertAll().execute())
    after = {r["key_value"]: r["entity_id"] for r in spark.table(registry).collect()}
    assert len(after) == 3 and after["A1"] == first["A1"] and after["A2"] == first["A2"]
    history = DeltaTable.forName(spark, registry).history().select("operation").collect()
    assert "MERGE" in [h["operation"] for h in history]  # a real MERGE ran (the no-op rerun commits nothing)

    linked = link_records(keyed, spark.table(registry))
    ids = {r["record_ref"]: r["entity_id"] for r in linked.collect()}
    assert ids["r1"] == ids["r3"] == first["A1"] and ids["r4"] is None
    assert linked.where(F.col("method") == "key:id_number").count() == 3
