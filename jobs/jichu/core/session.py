"""The one SparkSession factory. Every job, test and the `jichu sql` shell get their session here."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from pyspark.sql import SparkSession

from jichu.config import Profile, conf_dir, jars_dir, load_profile
from jichu.services import local_server

REQUIRED_JARS = ("delta-spark_2.13-", "delta-storage-", "postgresql-")


class MissingJars(RuntimeError):
    pass


def jar_paths() -> list[str]:
    """The fetched jars Spark must load; fails with the command that fetches them."""
    folder = jars_dir()
    jars = sorted(str(p) for p in folder.glob("*.jar"))
    missing = [prefix for prefix in REQUIRED_JARS if not any(Path(j).name.startswith(prefix) for j in jars)]
    if missing:
        raise MissingJars(
            f"JVM jars {', '.join(p + '*.jar' for p in missing)} not found in {folder}; "
            "run `make setup` once (it fetches them from Maven Central)"
        )
    return jars


def spark_conf(profile: Profile | None = None) -> dict[str, str]:
    """Spark settings for a profile, without the master (spark-submit gets that from its connection)."""
    profile = profile or load_profile()
    conf = {
        "spark.jars": ",".join(jar_paths()),
        "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
        "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
        # A Hive metastore so analysts and spark-sql find tables by name, in PostgreSQL (jichu.services
        # runs the local one), which many Spark applications share at once.
        "spark.sql.catalogImplementation": "hive",
        # The metastore client loads its JDBC driver from the launch class path, not from spark.jars.
        "spark.driver.extraClassPath": ":".join(j for j in jar_paths() if Path(j).name.startswith("postgresql-")),
        "spark.sql.warehouse.dir": profile.warehouse,
        "spark.hadoop.javax.jdo.option.ConnectionURL": profile.metastore_url,
        "spark.hadoop.javax.jdo.option.ConnectionDriverName": profile.metastore_driver,
        "spark.hadoop.javax.jdo.option.ConnectionUserName": profile.metastore_user,
        "spark.hadoop.javax.jdo.option.ConnectionPassword": profile.metastore_password,
        # The metastore's tables are created on first use. Not with autoCreateAll: against PostgreSQL, Hive
        # 2.3's DataNucleus then adds constraints in a second connection while the first holds locks on
        # the same tables, and the first CREATE TABLE waits for ever (a lock cycle through the JVM that
        # PostgreSQL cannot see). Tables and columns without the constraints do not.
        "spark.hadoop.datanucleus.schema.autoCreateAll": "false",
        "spark.hadoop.datanucleus.schema.autoCreateTables": "true",
        "spark.hadoop.datanucleus.schema.autoCreateColumns": "true",
        "spark.hadoop.datanucleus.schema.autoCreateConstraints": "false",
        "spark.hadoop.hive.metastore.schema.verification": "false",
        # A Delta table is registered with a placeholder column (col array<string>); its real schema is in
        # the table's properties. When a write adds columns, Spark first offers the metastore the new
        # columns as Hive columns, which Hive refuses as an incompatible type change (an ERROR with a
        # stack trace per write) before Spark stores them its own way. Hive may accept them at once.
        "spark.hadoop.hive.metastore.disallow.incompatible.col.type.changes": "false",
        "spark.driver.extraJavaOptions": f"-Dlog4j2.configurationFile=file:{conf_dir() / 'log4j2.properties'}",
        # Agencies record local dates; keep conversions in China Standard Time.
        "spark.sql.session.timeZone": "Asia/Shanghai",
        # Batch jobs: no web UI, no console progress bars in task logs.
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        # Landing reads agencies' CSV files with Spark, and Spark 4 decodes only Unicode and Latin
        # charsets unless told to use the JVM's (GB18030, in which several agencies export, included).
        "spark.sql.legacy.javaCharsets": "true",
        # New tables mark rows a MERGE, DELETE or slice replacement changes in deletion vectors
        # instead of rewriting whole files: an incremental batch touches every golden file a little.
        "spark.databricks.delta.properties.defaults.enableDeletionVectors": "true",
        # Python workers use the project's virtualenv (a cluster profile may point elsewhere).
        "spark.pyspark.python": sys.executable,
    }
    conf.update(profile.spark.conf)
    return conf


def get_spark(app_name: str = "jichu", profile: Profile | None = None, extra: dict[str, str] | None = None) -> SparkSession:
    """Return the active session, or build one from the profile (master, jars, Delta, metastore)."""
    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    profile = profile or load_profile()
    server = local_server(profile)
    if server is None:  # the metastore is someone else's (cluster)
        return _build(app_name, profile, extra)
    server.ensure_running()
    with server.first_use("metastore") as first:
        spark = _build(app_name, profile, extra)
        if first:
            create_metastore_schema(spark)
    return spark


def create_metastore_schema(spark: SparkSession) -> None:
    """Make the Hive metastore create its tables, in one process. The metastore creates each table on
    first use; two applications using a fresh metastore at once both try, and one fails on the
    other's tables (relation already exists). The first application on a new server does it alone."""
    spark.sql("CREATE DATABASE IF NOT EXISTS jichu_setup")
    spark.sql("CREATE TABLE IF NOT EXISTS jichu_setup.probe (id INT) USING delta")
    spark.sql("ALTER TABLE jichu_setup.probe ADD COLUMNS (note STRING)")
    spark.sql("CREATE OR REPLACE VIEW jichu_setup.probe_view AS SELECT id FROM jichu_setup.probe")
    spark.sql("DROP DATABASE jichu_setup CASCADE")


def _build(app_name: str, profile: Profile, extra: dict[str, str] | None) -> SparkSession:
    # PySpark picks the Python for UDF workers from the environment, not from the Spark conf.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder.appName(app_name)
    # Under spark-submit the master is already set by the submitter; otherwise the profile's.
    builder = builder.config("spark.master", profile.spark.master)
    for key, value in {**spark_conf(profile), **(extra or {})}.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    return spark
