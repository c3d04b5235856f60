"""Resolution keeps ids stable, proven on a real Delta MERGE into the key registry."""

from delta.tables import DeltaTable

from jichu.config import load_entity
from jichu.core import tables
from jichu.core.resolve import KEYS_SCHEMA, assign_keys, link_by_keys


def _merge(spark, rows, registry):
    (DeltaTable.forName(spark, registry).alias("k")
     .merge(rows.alias("f"), "k.key_field = f.key_field AND k.key_value = f.key_value")
     .whenNotMatchedInsertAll().execute())


def test_key_registry_merge_is_idempotent_and_ids_stable(spark, population):
    records = spark.createDataFrame(
        [("r1", "A1"), ("r2", "A2"), ("r3", "A1"), ("r4", None)], "record_ref string, id_number string"
    )
    links, fresh = link_by_keys(assign_keys(records, population), spark.createDataFrame([], KEYS_SCHEMA), population, "s", "b1")
    registry = "resolved.test__keys"
    tables.overwrite(fresh, registry)
    first = {r["key_value"]: r["entity_id"] for r in spark.table(registry).collect()}
    assert len(first) == 2 and all(v.startswith("P") and len(v) == 17 for v in first.values())
    ids = {r["record_ref"]: (r["entity_id"], r["method"]) for r in links.collect()}
    assert ids["r1"] == ids["r3"] == (first["A1"], "key:id_number") and "r4" not in ids

    more = assign_keys(spark.createDataFrame([("r5", "A1"), ("r6", "A3")], "record_ref string, id_number string"), population)
    for _ in range(2):  # the second MERGE is a rerun: it must insert nothing
        _, fresh = link_by_keys(more, spark.table(registry), population, "s", "b2")
        _merge(spark, fresh, registry)
    after = {r["key_value"]: r["entity_id"] for r in spark.table(registry).collect()}
    assert len(after) == 3 and after["A1"] == first["A1"] and after["A2"] == first["A2"]
    history = DeltaTable.forName(spark, registry).history().select("operation").collect()
    assert "MERGE" in [h["operation"] for h in history]  # a real MERGE ran (the no-op rerun commits nothing)


def test_legacy_keys_find_the_entity_of_the_credit_code_that_holds_them(spark):
    legal = load_entity("legal_entities", "entity")
    schema = "record_ref string, uscc string, orgcode string, regno15 string"
    batch1 = spark.createDataFrame([
        ("register", "U1", "O1", None),     # a credit code and the organisation code it embeds
        ("directory", None, "O1", None),    # the same organisation by its legacy code only
        ("market", "U2", "O2", "R2"),       # a market entity with its registration number
        ("employer", None, None, "R2"),     # ... held by another agency as the only identifier
        ("tax", None, "O3", "R3"),          # no credit code anywhere: an entity of its own
    ], schema)
    links, fresh = link_by_keys(assign_keys(batch1, legal), spark.createDataFrame([], KEYS_SCHEMA), legal, "s", "b1")
    ids = {r["record_ref"]: (r["entity_id"], r["method"]) for r in links.collect()}
    assert ids["directory"] == (ids["register"][0], "key:orgcode")
    assert ids["employer"] == (ids["market"][0], "key:regno15")
    assert len({ids[r][0] for r in ids}) == 3
    registered = {(r["key_field"], r["key_value"]): (r["entity_id"], r["method"]) for r in fresh.collect()}
    assert registered[("orgcode", "O1")] == (ids["register"][0], "alias")
    assert registered[("orgcode", "O3")] == (ids["tax"][0], "key")
    assert registered[("regno15", "R3")] == (ids["tax"][0], "alias")
    assert len(registered) == 7

    registry = "resolved.test_legal__keys"
    tables.overwrite(fresh, registry)
    batch2 = spark.createDataFrame([("later", None, None, "R3"), ("renamed", "U3", "O3", None)], schema)
    links2, fresh2 = link_by_keys(assign_keys(batch2, legal), spark.table(registry), legal, "s", "b2")
    later = {r["record_ref"]: r["entity_id"] for r in links2.collect()}
    # A credit code first seen later joins the entity its organisation code already had.
    assert later == {"later": ids["tax"][0], "renamed": ids["tax"][0]}
    assert [(r["key_field"], r["method"]) for r in fresh2.collect()] == [("uscc", "alias")]
