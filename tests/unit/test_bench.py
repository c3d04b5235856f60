"""bench.calls_by_line: slow Spark calls added up by the stage running and the lines that made them."""

import time
from types import SimpleNamespace

import py4j.java_gateway as gateway
from pyspark.sql import functions as F

from jichu.bench import SLOW_CALL_S, calls_by_line


def test_slow_spark_calls_are_added_up_by_stage_and_line(spark):
    slow = F.udf(lambda x: time.sleep(0.25) or x, "long")

    def golden(run):
        return spark.range(4).repartition(2).select(slow("id")).collect()  # four rows of 0.25 s on two cores

    stages, call = {"golden": golden}, gateway.JavaMember.__call__
    with calls_by_line(stages, roots=("/tests/",)) as spent:
        spark.range(4).repartition(2).select(slow("id")).collect()  # outside any stage: not counted
        assert len(stages["golden"](SimpleNamespace(batch="2026-02-01"))) == 4
    line = golden.__code__.co_firstlineno + 1
    [(key, seconds)] = [(k, v) for k, v in spent.items() if f"test_bench.py:{line}" in k[2]]
    assert key[:2] == ("2026-02-01", "golden") and seconds >= SLOW_CALL_S
    assert all(k[1] == "golden" for k in spent)
    # Left as it was: the stages and py4j.
    assert stages == {"golden": golden} and gateway.JavaMember.__call__ is call
