"""Replacing an entity's rows by a delete and an append (tables.replace_rows); the golden stage
finishing a replacement that stopped between the two, in the next batch's run; the gate's candidate
derived from golden's changed entities (tables.derive)."""

from datetime import date

import pytest
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

import jichu.pipeline as pipeline_module
from jichu.config import EntityType
from jichu.core import tables
from jichu.core.authority import GOLDEN_COLUMNS, assign_published_record, authority_rules, select_golden
from jichu.core.masking import mask_record, masked_table
from jichu.core.runs import RunRecorder
from jichu.core.statements import STATEMENT_SCHEMA
from jichu.demo.faults import make_ric
from jichu.pipeline import Run, gate, golden, publish

B1, B2, B3 = "2026-01-01", "2026-02-01", "2026-03-01"
SCHEMA = "entity_id string, field string, value string"


def _failing(frame):
    """`frame`, failing when it is computed: a job that stops after the delete."""
    return frame.withColumn("value", F.when(F.col("entity_id").isNotNull(), F.raise_error(F.lit("stopped"))).cast("string"))


def test_rows_are_replaced_and_a_stopped_replacement_is_told(spark):
    name = "golden.replacetest__rows"
    spark.sql(f"DROP TABLE IF EXISTS {name}")
    rows = [(e, f, f"{e}{f}") for e in "ABC" for f in ("x", "y")]
    tables.overwrite(spark.createDataFrame(rows, SCHEMA), name)
    new = spark.createDataFrame([("A", "x", "A2"), ("B", "z", "B2")], SCHEMA)
    assert tables.replace_rows(new, name, "entity_id", ["A", "B"], replacing=B2) == {"replaced": 4, "written": 2}
    assert sorted(map(tuple, spark.table(name).collect())) == [
        ("A", "x", "A2"), ("B", "z", "B2"), ("C", "x", "Cx"), ("C", "y", "Cy")]
    assert tables.interrupted(spark, name) is None
    with pytest.raises(Exception, match="stopped"):
        tables.replace_rows(_failing(new), name, "entity_id", ["A"], replacing=B3)
    assert tables.interrupted(spark, name) == B3
    assert {r["entity_id"] for r in spark.table(name).collect()} == {"B", "C"}  # A deleted, not written
    # Nothing to replace: no delete, the append alone.
    assert tables.replace_rows(new.where("entity_id = 'A'"), name, "entity_id", [], replacing=B3) == {"replaced": 0, "written": 1}
    assert tables.interrupted(spark, name) is None


def _statements(batch: str, names: dict[str, str]) -> list[tuple]:
    """公安's statements of `batch`: each person's name and, in the first batch, ID number, as resolve
    would unpivot them."""
    said = {e: {"name": name, **({"id_number": make_ric("420106", date(1990, 5, 17), int(e[1:]))} if batch == B1 else {})}
            for e, name in names.items()}
    return [(e, field, value, "gongan", "household", batch, f"gongan:household:{batch}:{e}", value,
             date.fromisoformat(batch), f"gongan:household:{e}", None) for e, fields in said.items() for field, value in fields.items()]


def _derive_test_tables(name: str) -> list[str]:
    return [f"statements.{name}", f"golden.{name}", f"golden.{name}_history", f"golden.{name}_touched",
            f"resolved.{name}_links", f"audit.{name}", f"published.{name}", f"published.{name}_masked"]


def test_the_next_batch_finishes_a_replacement_that_stopped_and_derived_tables_follow(spark, population, monkeypatch):
    domain = EntityType.model_validate({**population.model_dump(), "domain": "replacetest"})
    statements, name, published = "statements.replacetest__person", "golden.replacetest__person", domain.published_table
    for table in _derive_test_tables("replacetest__person"):
        spark.sql(f"DROP TABLE IF EXISTS {table}")
    said = {B1: {"P1": "王伟", "P2": "李芳", "P3": "张伟"}, B2: {"P1": "王伟东"}, B3: {"P2": "李芳芳"}}
    # Each person's record, for the gate's link checks.
    tables.overwrite(spark.createDataFrame([(f"gongan:household:{B1}:{e}", e) for e in said[B1]],
                                           "record_ref string, entity_id string"), domain.table("resolved", "links"))

    def run(batch: str, stages=(golden,)) -> dict:
        tables.replace_slice(spark.createDataFrame(_statements(batch, said[batch]), STATEMENT_SCHEMA), statements,
                             {"batch": batch})
        recorder = RunRecorder(f"derive-{batch}", domain.domain, domain.entity, batch)
        return {stage.__name__: stage(Run(spark, None, domain, batch, recorder)) for stage in stages}

    def candidate_as_rebuilt():
        expected = assign_published_record(spark.table(name), domain)[0]
        assertDataFrameEqual(spark.table(domain.table("audit")), expected)
        return expected

    first = run(B1, (golden, gate, publish))
    assert first["gate"]["derived"] == "all"
    expected = candidate_as_rebuilt()
    assertDataFrameEqual(spark.table(published), expected)
    assertDataFrameEqual(spark.table(masked_table(domain)), mask_record(expected, domain))
    # Batch 2's replacement of golden deletes P1's rows and stops before it writes them again.
    with monkeypatch.context() as patched:
        patched.setattr(pipeline_module, "select_golden", lambda *a: _failing(select_golden(*a)))
        with pytest.raises(Exception, match="stopped"):
            run(B2)
    assert tables.interrupted(spark, name) == B2
    assert spark.table(name).where("entity_id = 'P1'").count() == 0
    # Batch 3 touches P2 only, and replaces P1's rows too: those of the batch the stopped replacement named.
    figures = run(B3, (golden, gate))
    assert figures["golden"]["affected_entities"] == 2
    assert tables.interrupted(spark, name) is None
    expected = select_golden(spark.table(statements), authority_rules(spark, domain)).select(*GOLDEN_COLUMNS)
    assertDataFrameEqual(spark.table(name), expected)
    assert {(r["entity_id"], r["value"]) for r in spark.table(name).where("field = 'name'").collect()} == {
        ("P1", "王伟东"), ("P2", "李芳芳"), ("P3", "张伟")}
    # The candidate: P1 and P2 derived again, P3 as it was; the row checks read those two (the published
    # table's candidate is batch 1's).
    assert figures["gate"]["derived"] == 2 and figures["gate"]["rows_checked"] == 2
    candidate_as_rebuilt()


def test_a_table_is_derived_whole_where_its_origin_is_not_the_one_before(spark):
    name, rows = "audit.replacetest__derived", [("A", "x", "1"), ("B", "x", "2")]
    spark.sql(f"DROP TABLE IF EXISTS {name}")
    frame = spark.createDataFrame(rows, SCHEMA)

    def derive(origin: dict, changed) -> dict:
        return tables.derive(spark, name, origin, lambda keys: frame if keys is None else frame.where(F.col("entity_id").isin(keys)),
                             lambda before: changed if before == {"v": origin["v"] - 1} else None, "entity_id", B2)

    assert derive({"v": 1}, ["A"]) == {"derived": "all"}  # no earlier origin
    assert derive({"v": 2}, ["A"]) == {"derived": 1}
    assert derive({"v": 4}, ["A"]) == {"derived": "all"}  # changed_since cannot say
    assert tables.commit_note(spark, name)[tables.DERIVED_FROM] == {"v": 4}
    assert sorted(map(tuple, spark.table(name).collect())) == rows
