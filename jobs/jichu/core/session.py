"""The one SparkSession factory. Every job, test and the `jichu sql` shell get their session here."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from pyspark.sql import SparkSession

from jichu.config import Profile, conf_dir, jars_dir, load_profile, var_dir

REQUIRED_JARS = ("delta-spark_2.13-", "delta-storage-")


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
    metastore_home = var_dir() / "metastore"
    conf = {
        "spark.jars": ",".join(jar_paths()),
        "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
        "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
        # A Hive metastore so analysts and spark-sql find tables by name; embedded Derby locally.
        "spark.sql.catalogImplementation": "hive",
        "spark.sql.warehouse.dir": profile.warehouse,
        "spark.hadoop.javax.jdo.option.ConnectionURL": profile.metastore_url,
        "spark.hadoop.javax.jdo.option.ConnectionDriverName": profile.metastore_driver,
        "spark.hadoop.javax.jdo.option.ConnectionUserName": profile.metastore_user,
        "spark.hadoop.javax.jdo.option.ConnectionPassword": profile.metastore_password,
        "spark.hadoop.datanucleus.schema.autoCreateAll": "true",
        "spark.hadoop.hive.metastore.schema.verification": "false",
        # Derby writes derby.log into the working directory unless told otherwise.
        "spark.driver.extraJavaOptions": (
            f"-Dderby.system.home={metastore_home} -Dlog4j2.configurationFile=file:{conf_dir() / 'log4j2.properties'}"
        ),
        # Agencies record local dates; keep conversions in China Standard Time.
        "spark.sql.session.timeZone": "Asia/Shanghai",
        # Batch jobs: no web UI, no console progress bars in task logs.
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.execution.arrow.pyspark.enabled": "true",
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
    (var_dir() / "metastore").mkdir(parents=True, exist_ok=True)
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
