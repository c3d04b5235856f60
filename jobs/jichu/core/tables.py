"""Delta table I/O: the only place that writes tables. Every write is idempotent for its batch."""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import contextmanager

from delta.tables import DeltaTable
from pyspark.errors import AnalysisException
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F


def ensure_database(spark: SparkSession, table: str) -> None:
    database = table.split(".")[0]
    spark.sql(f"CREATE DATABASE IF NOT EXISTS {database}")


def table_exists(spark: SparkSession, table: str) -> bool:
    return spark.catalog.tableExists(table)


def sql_literal(value: str) -> str:
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


AS_DELIVERED = {"delta.columnMapping.mode": "name"}
"""Table properties of a table whose columns are named as an agency delivered them: Delta column
mapping allows any character in a name (营业收入(千元) has brackets, which Parquet names may not)."""
CHANGE_FEED = {"delta.enableChangeDataFeed": "true"}
"""Table properties of a table that others are derived from (`derive`): Delta keeps a feed of the rows
each commit inserts and deletes."""


def replace_slice(df: DataFrame, table: str, slice_: dict[str, str], properties: dict[str, str] | None = None) -> None:
    """Replace the rows of `table` matching `slice_` (e.g. one agency's batch) with `df`.

    A rerun of the same batch therefore rewrites its own rows and never duplicates them.
    New columns in a delivery are added to the table schema rather than dropped. `properties` are
    set when the table is created.
    """
    spark = df.sparkSession
    ensure_database(spark, table)
    if not table_exists(spark, table):
        # A table whose slices name the domain is shared by the base databases: partitioned by domain,
        # two domains' runs replace their own partitions at the same time without a write conflict.
        shared = ["domain"] if "domain" in slice_ else []
        df.write.format("delta").options(**(properties or {})).partitionBy(*shared).saveAsTable(table)
        return
    _replace_where(df, table, " AND ".join(f"{col} = {sql_literal(val)}" for col, val in slice_.items()))


def replace_rows(df: DataFrame, table: str, column: str, keys: DataFrame, note: dict | None = None) -> dict[str, int]:
    """Replace the rows of the existing `table` whose `column` is one of `keys` (a frame of that one
    column: the entities a batch touched) with `df` (the table's columns), whose rows all have one, in
    one commit.

    A MERGE that deletes the rows matching a key and inserts `df`'s: the table's deletion vectors mark
    the rows it deletes, and no file is rewritten. (A replaceWhere copies every file holding a touched
    row, and a monthly batch's few thousand entities touch every file of golden: at a million persons,
    11 s against 14 s for golden and its history.) `note` is kept with the commit (`commit_note`).

    Returns the commit's own figures: the rows `replaced` (removed) and `written`."""
    marker = "_replaces"
    source = df.select(*[F.col(f"`{c}`") for c in df.columns], F.lit(False).alias(marker)).unionByName(
        keys.select(F.col(f"`{column}`").cast(df.schema[column].dataType).alias(column), F.lit(True).alias(marker)),
        allowMissingColumns=True)
    with _commit_note(df.sparkSession, note):
        (DeltaTable.forName(df.sparkSession, table).alias("t")
         .merge(source.alias("s"), f"t.`{column}` = s.`{column}` AND s.{marker}")
         .whenMatchedDelete()
         .whenNotMatchedInsert(condition=f"NOT s.{marker}", values={f"`{c}`": f"s.`{c}`" for c in df.columns})
         .execute())
    metrics = DeltaTable.forName(df.sparkSession, table).history(1).select("operationMetrics").first()[0] or {}
    return {"replaced": int(metrics.get("numTargetRowsDeleted", 0)), "written": int(metrics.get("numTargetRowsInserted", 0))}


def _replace_where(df: DataFrame, table: str, predicate: str) -> None:
    spark = df.sparkSession
    writer = df.write.format("delta").mode("overwrite").option("replaceWhere", predicate)
    # Only a write that brings new columns merges the schema (and alters the table in the metastore).
    if set(df.columns) - set(spark.table(table).columns):
        writer = writer.option("mergeSchema", "true")
    writer.saveAsTable(table)


def overwrite(df: DataFrame, table: str, note: dict | None = None, properties: dict[str, str] | None = None) -> None:
    """Replace a whole derived table (a new Delta version; older ones stay readable by time travel).
    `note` is kept with the commit, as its userMetadata (`commit_note`); `properties` are set on the
    table, before the write where it exists."""
    spark = df.sparkSession
    ensure_database(spark, table)
    if properties and table_exists(spark, table) and spark.catalog.getTable(table).tableType != "VIEW":
        set_properties(spark, table, properties)  # a view (an earlier release's) is replaced, with them
    writer = df.write.format("delta").mode("overwrite").option("overwriteSchema", "true").options(**(properties or {}))
    if note is not None:
        writer = writer.option("userMetadata", json.dumps(note, sort_keys=True))
    writer.saveAsTable(table)


def set_properties(spark: SparkSession, table: str, properties: dict[str, str]) -> None:
    """Set the existing `table`'s `properties` where it has other values (a commit only then)."""
    held = {r["key"]: r["value"] for r in spark.sql(f"SHOW TBLPROPERTIES {table}").collect()}
    if any(held.get(k) != v for k, v in properties.items()):
        pairs = ", ".join(f"{sql_literal(k)} = {sql_literal(v)}" for k, v in properties.items())
        spark.sql(f"ALTER TABLE {table} SET TBLPROPERTIES ({pairs})")


@contextmanager
def _commit_note(spark: SparkSession, note: dict | None):
    """Keep `note` with the commits of the block (a MERGE takes no writer options)."""
    key = "spark.databricks.delta.commitInfo.userMetadata"
    if note is not None:
        spark.conf.set(key, json.dumps(note, sort_keys=True))
    try:
        yield
    finally:
        if note is not None:
            spark.conf.unset(key)


def derive(spark: SparkSession, source: str, version: int, rows_of: Callable[[DataFrame], DataFrame], target: str,
           key: str, basis: dict | None = None, note: dict | None = None, most: int = 100_000) -> dict:
    """Write `target` as `rows_of(source at version)`, where the target's rows of each `key` value
    depend only on the source's rows of that value, and on what `basis` names (the inputs besides the
    source: the conf, other tables' versions).

    Where the target's note says it was derived from this same table at an earlier version, with the
    same basis, only the keys of the rows that the source's commits since inserted or deleted (its change
    data feed, CHANGE_FEED) are derived again, and they replace the target's rows of those keys in one
    commit (`replace_rows`); none changed, nothing is written. Otherwise (the first time, another basis,
    columns that differ, a source without the feed for those commits, more than `most` keys changed)
    the target is overwritten. The target's note records what it was derived from (source, its Delta
    table id, the version, the basis) beside `note`; it keeps a change feed, to be derived from in turn.

    Returns {"derived_keys": how many keys were derived again, or "all"}."""
    table_id = DeltaTable.forName(spark, source).detail().first()["id"]
    origin = {"table": source, "id": table_id, "version": version, "basis": basis or {}}
    recorded = {**(note or {}), "derived_from": origin}
    rows = read(spark, source, version)
    before = (commit_note(spark, target) or {}).get("derived_from") or {}
    keys = None
    if {k: before.get(k) for k in ("table", "id", "basis")} == {k: origin[k] for k in ("table", "id", "basis")}:
        keys = _changed_keys(spark, source, key, before["version"], version, most)
    if keys is not None:
        if keys.isEmpty():
            return {"derived_keys": 0}
        changed = rows_of(rows.join(keys, key, "left_semi"))
        if sorted(changed.columns) == sorted(spark.table(target).columns):
            return {"derived_keys": keys.count(), **replace_rows(changed, target, key, keys, note=recorded)}
    overwrite(rows_of(rows), target, note=recorded, properties=CHANGE_FEED)
    return {"derived_keys": "all"}


def _changed_keys(spark: SparkSession, table: str, key: str, after: int, upto: int, most: int) -> DataFrame | None:
    """The distinct `key` values of the rows that `table`'s commits after version `after`, up to `upto`,
    inserted or deleted (held), or None where the change data feed does not tell or more than `most` changed."""
    if upto < after:
        return None
    if upto == after:
        return read(spark, table, upto).select(key).where(F.lit(False))
    try:
        keys = (spark.read.option("readChangeFeed", "true").option("startingVersion", after + 1)
                .option("endingVersion", upto).table(table).select(key).distinct().localCheckpoint())
    except AnalysisException as e:  # the feed was not kept for those commits (not enabled yet, or vacuumed)
        if "DELTA_MISSING_CHANGE_DATA" in str(e) or "DELTA_CHANGE_DATA_FILE_NOT_FOUND" in str(e):
            return None
        raise
    return keys if keys.limit(most + 1).count() <= most else None


def commit_note(spark: SparkSession, table: str) -> dict | None:
    """The `note` that `overwrite` or `replace_rows` kept with the table's latest commit, if any."""
    if not table_exists(spark, table):
        return None
    try:
        text = DeltaTable.forName(spark, table).history(1).select("userMetadata").first()[0]
    except AnalysisException:  # not a Delta table (a view an earlier release made): nothing noted
        return None
    return json.loads(text) if text else None


def append(df: DataFrame, table: str, partition_by: list[str] | None = None) -> None:
    """Add rows to `table` (created, partitioned by `partition_by`, if it does not exist): for records
    that are never replaced, only superseded by later ones."""
    ensure_database(df.sparkSession, table)
    df.write.format("delta").mode("append").partitionBy(*(partition_by or [])).saveAsTable(table)


def upsert(df: DataFrame, table: str, on: str, update: dict[str, str] | None = None, when: str | None = None) -> None:
    """MERGE `df` (alias `s`) into `table` (alias `t`), creating it from `df` if it does not exist.

    Rows matching nothing on `on` are inserted; with `update` (target column -> expression, or
    {"*": "*"} for every column), matched rows where `when` holds are updated. A rerun inserts
    nothing twice. `df` must not be read from `table` lazily: materialize it first.
    """
    if not table_exists(df.sparkSession, table):
        overwrite(df, table)
        return
    merge = DeltaTable.forName(df.sparkSession, table).alias("t").merge(df.alias("s"), on)
    if update == {"*": "*"}:
        merge = merge.whenMatchedUpdateAll(condition=when)
    elif update:
        merge = merge.whenMatchedUpdate(condition=when, set=update)
    merge.whenNotMatchedInsertAll().execute()


def read(spark: SparkSession, table: str, version: int | None = None) -> DataFrame:
    if version is None:
        return spark.table(table)
    return spark.read.option("versionAsOf", version).table(table)


def read_or_empty(spark: SparkSession, table: str, schema: str) -> DataFrame:
    return spark.table(table) if table_exists(spark, table) else spark.createDataFrame([], schema)


def current_version(spark: SparkSession, table: str) -> int | None:
    if not table_exists(spark, table):
        return None
    return DeltaTable.forName(spark, table).history(1).collect()[0]["version"]


def read_slice(spark: SparkSession, table: str, slice_: dict[str, str]) -> DataFrame:
    """The rows of `table` that `replace_slice` with the same slice wrote."""
    df = spark.table(table)
    for col, val in slice_.items():
        df = df.where(df[col] == val)
    return df


def count_slice(spark: SparkSession, table: str, slice_: dict[str, str]) -> int:
    return read_slice(spark, table, slice_).count() if table_exists(spark, table) else 0
