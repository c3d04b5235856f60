"""End to end: real Airflow DAG runs (`airflow dags test`) that spark-submit the real jobs.

Three runs on generated extracts with known truth:
1. batch 2026-01-01: everything published; quarantine and discrepancies match the injected defects;
2. a rerun of the same batch with a stricter count bound: the gate fails, nothing is republished,
   Data Docs are still written, and the rerun duplicates nothing;
3. batch 2026-02-01 with 公安's file cut short: that delivery is rejected whole, 卫健's records
   are processed, and no discrepancy is lost or duplicated.
"""

from __future__ import annotations

import csv
import json
import os
import re
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
from jichu.demo.defects import load_rates
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
    # File-level defects off: this test cuts a file short itself, to know which one.
    generate(var, scale=600, seed=11, batches=2, rates=load_rates(overrides=["truncated_file=0", "redelivered_file=0"]))
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


def _truth(var: Path, key: str, batch: str) -> list[dict]:
    with (var / "truth" / "records" / key / f"{batch}.csv").open(encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _rows(var: Path, agency: str, batch: str, name: str, encoding: str) -> list[dict]:
    with (var / "landing" / agency / batch / name).open(encoding=encoding, newline="") as fh:
        return list(csv.DictReader(fh))


REJECTED_KINDS = {"id_checksum", "id_transposed", "id_missing", "sex_code_unknown"}
# The date formats conf/extracts/weijian__birth.yaml accepts (yyyy/M/d, yyyy-MM-dd).
ACCEPTED_DATE = re.compile(r"^\d{4}/\d{1,2}/\d{1,2}$|^\d{4}-\d{2}-\d{2}$")


def _expected_quarantine(var: Path, batch: str) -> set[tuple[str, str, int]]:
    expected = set()
    for agency, key, name, encoding, date_col in (("gongan", "gongan__household", "household.csv", "gb18030", None),
                                                  ("weijian", "weijian__birth", "birth.csv", "utf-8-sig", "出生日期")):
        for row, t in zip(_rows(var, agency, batch, name, encoding), _truth(var, key, batch)):
            kinds = set(filter(None, t["defects"].split(";")))
            unparseable = date_col is not None and not ACCEPTED_DATE.match(row[date_col])
            if kinds & REJECTED_KINDS or unparseable:
                assert unparseable <= ("date_format" in kinds)  # only a labelled format defect fails to parse
                expected.add((agency, batch, int(t["row"])))
    return expected


def test_first_batch_is_published_with_exact_quarantine_and_discrepancies(spark, e2e):
    var, r = e2e
    assert r["first"].returncode == 0, r["first"].stdout[-3000:] + r["first"].stderr[-3000:]
    s = r["first_summary"]
    assert s["batch"] == "2026-01-01" and s["gate"]["passed"]
    assert {a["extract"] for a in s["row_accounting"]} == {"gongan__household", "weijian__birth"}
    for a in s["row_accounting"]:
        assert a["balanced"] and a["staged"] == a["standardized"] + a["quarantined"], a

    quarantined = {(q["agency"], q["batch"], q["row"]) for q in _delta(spark, var, "standardized.quarantine").collect()}
    expected = _expected_quarantine(var, "2026-01-01")
    assert expected and quarantined == expected
    assert s["quarantined"] == len(expected)

    published = _delta(spark, var, "published.population__person")
    assert s["published"]["rows"] > 500 and s["published"]["version"] == 0
    assert published.select("entity_id").distinct().count() == published.count()
    sources = {r[0] for r in published.select(F.explode(F.array(*[f"{f}_source" for f in
                                                                  ("id_number", "name", "sex", "birth_date")]))).distinct().collect()}
    assert sources <= {"gongan", None}

    # Oracle from the truth: a 卫健 record disagrees with 公安 on a field exactly when one of the two
    # carries a defect of that field (a typo or homophone in the name, a conflicting value, or an
    # error in 公安's own birth date), and both records were standardized.
    gongan = {t["entity"]: t for t in _truth(var, "gongan__household", "2026-01-01")
              if not set(t["defects"].split(";")) & REJECTED_KINDS}
    births = _rows(var, "weijian", "2026-01-01", "birth.csv", "utf-8-sig")
    expected_fields: dict[str, set[str]] = defaultdict(set)
    for row, t in zip(births, _truth(var, "weijian__birth", "2026-01-01")):
        kinds = set(filter(None, t["defects"].split(";")))
        if (kinds & REJECTED_KINDS or not ACCEPTED_DATE.match(row["出生日期"]) or t["entity"] not in gongan):
            continue
        if kinds & {"name_typo", "name_homophone"}:
            expected_fields["name"].add(t["entity"])
        if "value_conflict" in kinds and row["新生儿性别"] != t["true_sex"]:
            expected_fields["sex"].add(t["entity"])
        birth_wrong = "value_conflict" in kinds and row["出生日期"].replace("/", "-") not in _same_day(t["true_birth_date"])
        if birth_wrong or "authority_error" in gongan[t["entity"]]["defects"]:
            expected_fields["birth_date"].add(t["entity"])
    discrepancies = _delta(spark, var, "verified.discrepancies").where("first_seen = '2026-01-01'")
    found = defaultdict(int)
    for d in discrepancies.collect():
        assert d["agency"] == "weijian" and d["golden_agency"] == "gongan"
        found[d["field"]] += 1
    assert found and found == {k: len(v) for k, v in expected_fields.items() if v}
    assert Path(s["data_docs"]).exists()


def _same_day(iso: str) -> set[str]:
    y, m, d = iso.split("-")
    return {iso, f"{int(y)}-{int(m)}-{int(d)}"}


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
    delivered = len(_truth(var, "gongan__household", "2026-01-01"))  # the living on the batch date
    assert staged.count() == delivered and staged.select("_row").distinct().count() == delivered


def test_rejected_delivery_is_recorded_and_the_rest_goes_on(spark, e2e):
    var, r = e2e
    assert r["second"].returncode == 0, r["second"].stdout[-3000:] + r["second"].stderr[-3000:]
    s = r["second_summary"]
    assert [(d["agency"], d["extract"]) for d in s["deliveries_rejected"]] == [("gongan", "household")]
    assert "household.csv: sha256 does not match" in s["deliveries_rejected"][0]["reason"]
    deliveries = {(d["agency"], d["status"]) for d in _delta(spark, var, "landing.deliveries").where("batch = '2026-02-01'").collect()}
    assert deliveries == {("gongan", "rejected"), ("weijian", "accepted")}
    assert _delta(spark, var, "staging.gongan__household").where("_batch = '2026-02-01'").count() == 0

    staged = _delta(spark, var, "staging.weijian__birth").where("_batch = '2026-02-01'").count()
    assert staged == len(_truth(var, "weijian__birth", "2026-02-01"))
    discrepancies = _delta(spark, var, "verified.discrepancies")
    assert discrepancies.select("discrepancy_id").distinct().count() == discrepancies.count()
    resolved = discrepancies.where("status = 'resolved' AND resolved_in = '2026-02-01'").count()
    still_open = discrepancies.where("status IN ('new', 'open', 'reopened')").count()
    assert resolved + still_open >= r["first_summary"]["discrepancies"]["by_status"]["new"]
