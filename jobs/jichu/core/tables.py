"""Delta table I/O: the only place that writes tables. Every write is idempotent for its batch."""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import contextmanager

from delta.tables import DeltaTable
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


REPLACING = "replacing"
"""The key of `replace_rows`' note on both its commits: the batch it replaced rows for (`interrupted`,
`replaced_since`)."""


def replace_rows(df: DataFrame, table: str, column: str, values: list[str], replacing: str,
                 note: dict | None = None) -> dict[str, int]:
    """Replace the rows of the existing `table` whose `column` is one of `values` (the entities a batch
    touched) with `df`, whose rows all have one.

    Two commits: a DELETE, which marks the rows in deletion vectors and rewrites no file, then an append
    of `df`. A monthly batch's few thousand entities have rows in every file of golden, so a replaceWhere
    (one commit) copies every file: at a million persons, golden and its history, 20.7 s of a 232.9 s
    second batch; 7 million rows of that shape, 37 to 59 s for the replaceWhere against 4 to 9 s for
    the DELETE and append (a MERGE that deletes by deletion vector joins the whole table, and was slower
    still). Both commits carry the note {REPLACING: `replacing`} (the batch), the append's with `note`
    beside it (`commit_note`). Where the DELETE is the table's latest commit, the append did not
    follow, and `interrupted` says so to the next run, which replaces those rows again;
    `replaced_since` names the batches whose rows were replaced after a version.

    Returns the commits' own figures: the rows `replaced` (removed) and `written`."""
    spark = df.sparkSession
    if values:
        with _commit_note(spark, {REPLACING: replacing}):
            DeltaTable.forName(spark, table).delete(F.col(column).isin(values))
    replaced = _last_metrics(spark, table, "DELETE", "numDeletedRows") if values else 0
    df.write.format("delta").mode("append").option("userMetadata", json.dumps({**(note or {}), REPLACING: replacing},
                                                                             sort_keys=True)).saveAsTable(table)
    return {"replaced": replaced, "written": _last_metrics(spark, table, "WRITE", "numOutputRows")}


def replaced_since(spark: SparkSession, table: str, after: int, upto: int) -> list[str] | None:
    """The batches whose rows `replace_rows` replaced in `table`'s commits after version `after` up to
    `upto`, or None where another write is among them (an overwrite: any row may have changed) or
    they are not all in the log."""
    commits = (DeltaTable.forName(spark, table).history().where((F.col("version") > after) & (F.col("version") <= upto))
               .select("operation", "userMetadata").collect())
    if after > upto or len(commits) != upto - after:
        return None
    batches = set()
    for commit in commits:
        note = json.loads(commit["userMetadata"]) if commit["userMetadata"] else {}
        if commit["operation"] not in ("DELETE", "WRITE") or REPLACING not in note:
            return None
        batches.add(note[REPLACING])
    return sorted(batches)


def table_id(spark: SparkSession, table: str) -> str:
    """The Delta table's own id: another table under the same name (dropped and created again) has another."""
    return DeltaTable.forName(spark, table).detail().select("id").first()[0]


DERIVED_FROM = "derived_from"


def derive(spark: SparkSession, target: str, origin: dict, rows_of: Callable[[list[str] | None], DataFrame],
           changed_since: Callable[[dict], list[str] | None], column: str, replacing: str,
           note: dict | None = None) -> dict:
    """Write `target` as what `origin` (a dict naming a table's state and what else the rows depend
    on) gives: `rows_of(None)`, every row, where each `column` value's rows depend only on the origin's
    rows of that value.

    Where the target's note says it was derived from an earlier origin, `changed_since(that origin)`
    may name the `column` values whose rows changed since (None: it cannot say). Then only their rows,
    `rows_of(values)`, replace the target's rows of those values (`replace_rows`), and a monthly batch
    writes its few thousand entities, not a million. Otherwise the target is overwritten. The note
    kept with the target's last commit holds {DERIVED_FROM: origin} beside `note`.

    Returns {"derived": how many values were derived again, or "all"}."""
    before = (commit_note(spark, target) or {}).get(DERIVED_FROM)
    values = changed_since(before) if before else None
    recorded = {**(note or {}), DERIVED_FROM: origin}
    if values is None:
        overwrite(rows_of(None), target, note=recorded)
        return {"derived": "all"}
    replace_rows(rows_of(values), target, column, values, replacing, note=recorded)
    return {"derived": len(values)}


def interrupted(spark: SparkSession, table: str) -> str | None:
    """What a `replace_rows` of `table` that deleted and did not append was replacing, or None."""
    if not table_exists(spark, table):
        return None
    last = DeltaTable.forName(spark, table).history(1).select("operation", "userMetadata").first()
    note = json.loads(last["userMetadata"]) if last["userMetadata"] else {}
    return note.get(REPLACING) if last["operation"] == "DELETE" else None


def _last_metrics(spark: SparkSession, table: str, operation: str, metric: str) -> int:
    """`metric` of the table's latest commit, which is an `operation`."""
    last = DeltaTable.forName(spark, table).history(1).select("operation", "operationMetrics").first()
    if last["operation"] != operation:
        raise RuntimeError(f"{table}: another write ({last['operation']}) committed during a replacement")
    return int((last["operationMetrics"] or {}).get(metric, 0))


@contextmanager
def _commit_note(spark: SparkSession, note: dict):
    """Keep `note` with the commits of the block, as their userMetadata (a DELETE takes no writer options)."""
    key = "spark.databricks.delta.commitInfo.userMetadata"
    spark.conf.set(key, json.dumps(note, sort_keys=True))
    try:
        yield
    finally:
        spark.conf.unset(key)


def _replace_where(df: DataFrame, table: str, predicate: str) -> None:
    spark = df.sparkSession
    writer = df.write.format("delta").mode("overwrite").option("replaceWhere", predicate)
    # Only a write that brings new columns merges the schema (and alters the table in the metastore).
    if set(df.columns) - set(spark.table(table).columns):
        writer = writer.option("mergeSchema", "true")
    writer.saveAsTable(table)


def overwrite(df: DataFrame, table: str, note: dict | None = None) -> None:
    """Replace a whole derived table (a new Delta version; older ones stay readable by time travel).
    `note` is kept with the commit, as its userMetadata (`commit_note`)."""
    spark = df.sparkSession
    ensure_database(spark, table)
    writer = df.write.format("delta").mode("overwrite").option("overwriteSchema", "true")
    if note is not None:
        writer = writer.option("userMetadata", json.dumps(note, sort_keys=True))
    writer.saveAsTable(table)


def commit_note(spark: SparkSession, table: str) -> dict | None:
    """The `note` that `overwrite` kept with the table's latest commit, if any."""
    if not table_exists(spark, table):
        return None
    text = DeltaTable.forName(spark, table).history(1).select("userMetadata").first()[0]
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
