"""Replacing an entity's rows by a delete and an append (tables.replace_rows), and the golden stage
finishing a replacement that stopped between the two, in the next batch's run."""

from datetime import date

import pytest
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

import jichu.pipeline as pipeline_module
from jichu.config import EntityType
from jichu.core import tables
from jichu.core.authority import GOLDEN_COLUMNS, authority_rules, select_golden
from jichu.core.statements import STATEMENT_SCHEMA
from jichu.pipeline import Run, golden

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
    """公安's statements of `batch`: each person's name, as resolve would unpivot them."""
    return [(e, "name", name, "gongan", "household", batch, f"gongan:household:{batch}:{e}", name,
             date.fromisoformat(batch), f"gongan:household:{e}", None) for e, name in names.items()]


def test_the_next_batch_finishes_a_replacement_that_stopped(spark, population, monkeypatch):
    domain = EntityType.model_validate({**population.model_dump(), "domain": "replacetest"})
    statements, name = "statements.replacetest__person", "golden.replacetest__person"
    for table in (statements, name, f"{name}_history", f"{name}_touched"):
        spark.sql(f"DROP TABLE IF EXISTS {table}")
    said = {B1: {"P1": "王伟", "P2": "李芳", "P3": "张伟"}, B2: {"P1": "王伟东"}, B3: {"P2": "李芳芳"}}

    def run(batch: str) -> dict:
        tables.replace_slice(spark.createDataFrame(_statements(batch, said[batch]), STATEMENT_SCHEMA), statements,
                             {"batch": batch})
        return golden(Run(spark, None, domain, batch, None))

    run(B1)
    # Batch 2's replacement of golden deletes P1's rows and stops before it writes them again.
    with monkeypatch.context() as patched:
        patched.setattr(pipeline_module, "select_golden", lambda *a: _failing(select_golden(*a)))
        with pytest.raises(Exception, match="stopped"):
            run(B2)
    assert tables.interrupted(spark, name) == B2
    assert spark.table(name).where("entity_id = 'P1'").count() == 0
    # Batch 3 touches P2 only, and replaces P1's rows too: those of the batch the stopped replacement named.
    figures = run(B3)
    assert figures["affected_entities"] == 2
    assert tables.interrupted(spark, name) is None
    expected = select_golden(spark.table(statements), authority_rules(spark, domain)).select(*GOLDEN_COLUMNS)
    assertDataFrameEqual(spark.table(name), expected)
    assert {(r["entity_id"], r["value"]) for r in spark.table(name).collect()} == {
        ("P1", "王伟东"), ("P2", "李芳芳"), ("P3", "张伟")}
