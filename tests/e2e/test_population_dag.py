"""End to end: real Airflow DAG runs (`airflow dags test`) that spark-submit the real jobs.

Three runs on generated extracts with known truth:
1. batch 2026-01-01: everything published; quarantine and discrepancies match the injected defects;
2. a rerun of the same batch with a stricter count bound: the gate fails, nothing is republished,
   Data Docs are still written, and the rerun duplicates nothing;
3. batch 2026-02-01 with 公安's file cut short: that delivery is rejected whole, 卫健's corrected
   records are processed and the discrepancies they fix are resolved.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest
import yaml
from pyspark.sql import functions as F

from jichu.config import ROOT
from jichu.core.runs import latest_summary
from jichu.demo.generate import generate

pytestmark = pytest.mark.e2e
JICHU = str(Path(sys.executable).parent / "jichu")


def _jichu(args: list[str], var: Path, conf: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "JICHU_VAR": str(var)}
    if conf:
        env["JICHU_CONF"] = str(conf)
    return subprocess.run([JICHU, *args], env=env, capture_output=True, text=True, timeout=900)


def _latest_summary(var: Path) -> dict:
    return json.loads(latest_summary("population", var / "runs").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def e2e(tmp_path_factory):
    var = tmp_path_factory.mktemp("e2e") / "var"
    generate(var, scale=600, seed=11, batches=2)
    results = {}

    results["first"] = _jichu(["run", "population", "--batch", "2026-01-01"], var)
    results["first_summary"] = _latest_summary(var)

    strict = tmp_path_factory.mktemp("conf") / "conf"
    shutil.copytree(ROOT / "conf", strict)
    domain = yaml.safe_load((strict / "domains" / "population.yaml").read_text(encoding="utf-8"))
    domain["rows"]["min"] = 1_000_000_000
    (strict / "domains" / "population.yaml").write_text(yaml.safe_dump(domain, allow_unicode=True), encoding="utf-8")
    results["strict"] = _jichu(["run", "population", "--batch", "2026-01-01"], var, conf=strict)
    results["strict_summary"] = _latest_summary(var)
    log = var / "warehouse" / "published.db" / "population__person" / "_delta_log"
    results["published_versions_after_strict"] = sorted(p.name for p in log.glob("*.json"))

    household = var / "landing" / "gongan" / "2026-02-01" / "household.csv"
    household.write_bytes(household.read_bytes()[:-500])  # the last rows never arrived
    results["second"] = _jichu(["run", "population", "--batch", "2026-02-01"], var)
    results["second_summary"] = _latest_summary(var)

    results["sql"] = _jichu(["sql", "SELECT count(*) AS n FROM published.population__person"], var)
    return var, results


def _delta(spark, var: Path, table: str):
    database, name = table.split(".")
    return spark.read.format("delta").load(str(var / "warehouse" / f"{database}.db" / name))


def _truth(var: Path) -> dict[tuple[str, str, int], set[str]]:
    with (var / "truth" / "records.csv").open(encoding="utf-8") as fh:
        return {(r["agency"], r["batch"], int(r["row"])): set(filter(None, r["defects"].split(";"))) for r in csv.DictReader(fh)}


def test_first_batch_is_published_with_exact_quarantine_and_discrepancies(spark, e2e):
    var, r = e2e
    assert r["first"].returncode == 0, r["first"].stdout[-3000:] + r["first"].stderr[-3000:]
    s = r["first_summary"]
    assert s["batch"] == "2026-01-01" and s["gate"]["passed"]
    assert {a["extract"] for a in s["row_accounting"]} == {"gongan__household", "weijian__birth"}
    for a in s["row_accounting"]:
        assert a["balanced"] and a["staged"] == a["standardized"] + a["quarantined"], a

    truth = _truth(var)
    quarantined = {(q["agency"], q["batch"], q["row"]) for q in _delta(spark, var, "standardized.quarantine").collect()}
    rejected_kinds = {"id_checksum", "id_missing", "sex_code_unknown"}
    expected = {k for k, d in truth.items() if k[1] == "2026-01-01" and d & rejected_kinds}
    assert expected and quarantined == expected
    assert s["quarantined"] == len(expected)

    published = _delta(spark, var, "published.population__person")
    assert s["published"]["rows"] > 500 and s["published"]["version"] == 0
    assert published.select("entity_id").distinct().count() == published.count()
    sources = {r[0] for r in published.select(F.explode(F.array(*[f"{f}_source" for f in
                                                                  ("id_number", "name", "sex", "birth_date")]))).distinct().collect()}
    assert sources <= {"gongan", None}

    discrepancies = _delta(spark, var, "verified.discrepancies").where("first_seen = '2026-01-01'")
    found = defaultdict(int)
    for d in discrepancies.collect():
        assert d["agency"] == "weijian" and d["golden_agency"] == "gongan"
        found[d["field"]] += 1
    expected_fields = defaultdict(int)
    for (agency, batch, _), kinds in truth.items():
        if agency != "weijian" or batch != "2026-01-01" or kinds & rejected_kinds:
            continue
        expected_fields["name"] += "name_typo" in kinds
        expected_fields["birth_date"] += "birth_date_off" in kinds
    assert found == {k: v for k, v in expected_fields.items() if v}
    assert Path(s["data_docs"]).exists()


def test_published_table_is_queryable_by_name(e2e):
    _, r = e2e
    assert r["sql"].returncode == 0, r["sql"].stderr[-3000:]
    assert str(r["first_summary"]["published"]["rows"]) in r["sql"].stdout


def test_failed_gate_leaves_published_version_and_rerun_duplicates_nothing(spark, e2e):
    var, r = e2e
    assert r["strict"].returncode != 0
    s = r["strict_summary"]
    assert s["gate"]["passed"] is False and s["published"] is None
    assert [f["expectation"] for f in s["gate"]["failures"] if f["severity"] == "critical"] == [
        "expect_table_row_count_to_be_between"
    ]
    assert "expect_table_row_count_to_be_between" in r["strict"].stdout + r["strict"].stderr
    assert Path(s["data_docs"]).exists()
    # Still only the version the first run published.
    assert r["published_versions_after_strict"] == ["00000000000000000000.json"]
    staged = _delta(spark, var, "staging.gongan__household").where("_batch = '2026-01-01'")
    assert staged.count() == 600 and staged.select("_row").distinct().count() == 600


def test_rejected_delivery_is_recorded_and_the_rest_goes_on(spark, e2e):
    var, r = e2e
    assert r["second"].returncode == 0, r["second"].stdout[-3000:] + r["second"].stderr[-3000:]
    s = r["second_summary"]
    assert [(d["agency"], d["extract"]) for d in s["deliveries_rejected"]] == [("gongan", "household")]
    assert "household.csv: sha256 does not match" in s["deliveries_rejected"][0]["reason"]
    deliveries = {(d["agency"], d["status"]) for d in _delta(spark, var, "landing.deliveries").where("batch = '2026-02-01'").collect()}
    assert deliveries == {("gongan", "rejected"), ("weijian", "accepted")}
    assert _delta(spark, var, "staging.gongan__household").where("_batch = '2026-02-01'").count() == 0

    truth = _truth(var)
    redelivered = {k for k in truth if k[0] == "weijian" and k[1] == "2026-02-01"}
    assert redelivered, "the generator re-sends corrected 卫健 records in the second batch"
    discrepancies = _delta(spark, var, "verified.discrepancies")
    resolved = discrepancies.where("status = 'resolved' AND resolved_in = '2026-02-01'").count()
    still_open = discrepancies.where("status IN ('new', 'open', 'reopened')").count()
    assert resolved >= 1
    assert resolved + still_open == r["first_summary"]["discrepancies"]["by_status"]["new"]
