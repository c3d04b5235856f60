"""tables.derive: a table derived key by key from another is rewritten only where the source changed,
and always holds what deriving it from the whole source gives."""

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from jichu.core import tables

SOURCE, TARGET = "derive_test.source", "derive_test.target"


def _totals(rows: DataFrame) -> DataFrame:
    """Several source rows per key, one target row per key (as golden's fields make one candidate)."""
    return rows.groupBy("k").agg(F.sum("v").alias("total"), F.count("*").alias("n"))


def _source(spark, rows: list[tuple[str, int]], feed: bool = True) -> None:
    tables.overwrite(spark.createDataFrame(rows, "k string, v long"), SOURCE,
                     properties=tables.CHANGE_FEED if feed else None)


def _derive(spark, basis: dict | None = None) -> dict:
    return tables.derive(spark, SOURCE, tables.current_version(spark, SOURCE), _totals, TARGET, "k", basis=basis)


def _replace(spark, rows: list[tuple[str, int]], keys: list[str]) -> None:
    tables.replace_rows(spark.createDataFrame(rows, "k string, v long"), SOURCE, "k",
                        spark.createDataFrame([(k,) for k in keys], "k string"))


def _holds_the_whole_derivation(spark) -> None:
    assertDataFrameEqual(spark.table(TARGET), _totals(spark.table(SOURCE)))


def test_only_the_changed_keys_are_derived_again(spark):
    for t in (SOURCE, TARGET):
        spark.sql(f"DROP TABLE IF EXISTS {t}")
    _source(spark, [(f"k{i}", j) for i in range(10) for j in range(3)])
    assert _derive(spark) == {"derived_keys": "all"}
    _holds_the_whole_derivation(spark)
    held = {r["key"]: r["value"] for r in spark.sql(f"SHOW TBLPROPERTIES {TARGET}").collect()}
    assert held.items() >= tables.CHANGE_FEED.items()  # to be derived from in turn
    # k1 changed, k2 gone, k10 new, in one commit; k3's rows written again as they were
    _replace(spark, [("k1", 100), ("k10", 7), *[("k3", j) for j in range(3)]], ["k1", "k2", "k3", "k10"])
    figures = _derive(spark)
    assert figures["derived_keys"] == 4 and figures["replaced"] == 3 and figures["written"] == 3
    _holds_the_whole_derivation(spark)
    assert spark.table(TARGET).where("k = 'k2'").isEmpty()
    assert tables.commit_note(spark, TARGET)["derived_from"]["version"] == tables.current_version(spark, SOURCE)
    # Nothing changed since: nothing written.
    version = tables.current_version(spark, TARGET)
    assert _derive(spark) == {"derived_keys": 0} and tables.current_version(spark, TARGET) == version
    # Another basis (a conf change, a referenced table's new version): every key again.
    assert _derive(spark, basis={"conf": "other"}) == {"derived_keys": "all"}
    _holds_the_whole_derivation(spark)


def test_a_source_rebuilt_or_without_a_change_feed_is_derived_whole(spark):
    for t in (SOURCE, TARGET):
        spark.sql(f"DROP TABLE IF EXISTS {t}")
    _source(spark, [("a", 1), ("b", 2)], feed=False)
    assert _derive(spark) == {"derived_keys": "all"}
    _replace(spark, [("a", 5)], ["a"])  # no feed kept for this commit
    assert _derive(spark) == {"derived_keys": "all"}
    _holds_the_whole_derivation(spark)
    # Dropped and built again: the version numbers start over, so the note's version says nothing.
    spark.sql(f"DROP TABLE {SOURCE}")
    _source(spark, [("a", 1), ("c", 3)])
    _replace(spark, [("c", 4)], ["c"])
    assert _derive(spark) == {"derived_keys": "all"}
    _holds_the_whole_derivation(spark)
