"""Snapshots and events through the real stages (ingest, standardize, resolve, golden, verify; Delta tables
in the test's metastore), on small literal deliveries in a scratch landing folder.

Batch 1: 公安's household snapshot lists persons A, B and C, and D without a name (quarantined); 人社's
insured snapshot lists A and B; 教育's student roll holds two records for B, a wrong name (first row)
beside the right one (second row).
Batch 2: 公安 and 人社 deliver the same snapshots again; 卫健 certifies A's death (an event), with a birth
date that differs from 公安's.
Batch 3: A has died: 公安's snapshot no longer lists A; 人社 still does. 卫健 certifies another death (E),
not A's again. Batch 3 is then run again.
Batch 4: every agency re-sends its batch-3 files byte for byte, 卫健's death certificates (events) included.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from jichu.config import load_profile
from jichu.core.landing import csv_bytes, write_manifest
from jichu.core.runs import RunRecorder
from jichu.demo.faults import make_ric
from jichu.pipeline import DISCREPANCIES, Run, golden, ingest, resolve, standardize, verify

# Five batches of a dozen rows through ingest to verify, once for the module: about 5 min, in make test
# because it is issue 15's proof of snapshots, retraction and carried rows.

B1, B2, B3, B4 = "2026-01-01", "2026-02-01", "2026-03-01", "2026-04-01"
# Born after 1983, when 武昌区 took the code 420106 (an ID number with an address code not yet in use fails).
A, B, C, D, E = (make_ric("420106", date(1985 + n, 5, 17), n) for n in range(1, 6))
HOUSEHOLD = ["公民身份号码", "姓名", "性别", "民族", "出生日期", "户籍地行政区划代码", "登记日期", "住址", "户号", "与户主关系"]
PERSONS = {  # 公安's record: name, sex, birth date (yyyyMMdd)
    A: ("王小明", "1", "19860517"), B: ("李四", "1", "19870517"), C: ("张芳", "2", "19880517"), D: ("", "2", "19890517"),
}
STUDENT = ["学籍号", "姓名", "性别", "出生日期", "身份证件号", "民族", "学校标识码", "学校名称", "年级", "家庭住址区划", "家庭住址"]
DEATH = ["zjhm", "xm", "xb", "csrq", "swrq", "swdd", "zmbh"]
SCHOOLS = [["XJ1", "李斯", "1", "1987-05-17", B, "01", "2142000001", "某中学", "12", "420106", "某路"],  # wrong name
           ["XJ2", "李四", "1", "1987-05-17", B, "01", "2142000001", "某中学", "12", "420106", "某路"]]


def _deliver(landing: Path, agency: str, batch: str, files: list[tuple[str, str, bytes, int]]) -> None:
    folder = landing / agency / batch
    folder.mkdir(parents=True, exist_ok=True)
    for name, _, data, _ in files:
        (folder / name).write_bytes(data)
    write_manifest(folder, agency, batch, [{"name": n, "extract": x, "schema_version": 1, "rows": r} for n, x, _, r in files])


def _household(listed: list[str]) -> tuple:
    rows = [[p, *PERSONS[p][:2], "01", PERSONS[p][2], "420106", "2012-03-09", "某路1号", f"H{i}", "户主"] for i, p in enumerate(listed)]
    return ("household.csv", "household", csv_bytes(HOUSEHOLD, rows, "gb18030"), len(rows))


def _jsonl(name: str, extract: str, rows: list[dict]) -> tuple:
    return (name, extract, ("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n").encode("utf-8"), len(rows))


def _insured(listed: list[str]) -> tuple:
    # No birth date: 人社's only voice here is name, sex and its own fields.
    return _jsonl("insured.jsonl", "insured", [
        {"aac002": p, "aac003": PERSONS[p][0], "aac004": "1", "aac006": "", "aac008": "1", "aab001": "",
         "aab301": "420106", "aac007": "20000101"} for p in listed])


def _death(person: str, name: str, born: str, died: str, certificate: str) -> tuple:
    return _jsonl("death.jsonl", "death", [
        {"zjhm": person, "xm": name, "xb": "1", "csrq": born, "swrq": died, "swdd": "医院", "zmbh": certificate}])


def _land(landing: Path) -> None:
    _deliver(landing, "gongan", B1, [_household([A, B, C, D])])
    _deliver(landing, "renshe", B1, [_insured([A, B])])
    _deliver(landing, "jiaoyu", B1, [("student.csv", "student", csv_bytes(STUDENT, SCHOOLS, "utf-8"), 2)])
    _deliver(landing, "gongan", B2, [_household([A, B, C, D])])
    _deliver(landing, "renshe", B2, [_insured([A, B])])
    _deliver(landing, "weijian", B2, [_death(A, "王小明", "1986-05-18", "2026-01-20", "SW1")])
    _deliver(landing, "gongan", B3, [_household([B, C, D])])
    _deliver(landing, "renshe", B3, [_insured([A, B])])
    _deliver(landing, "weijian", B3, [_death(E, "赵敏", "1990-05-17", "2026-02-11", "SW2")])
    _deliver(landing, "gongan", B4, [_household([B, C, D])])
    _deliver(landing, "renshe", B4, [_insured([A, B])])
    _deliver(landing, "weijian", B4, [_death(E, "赵敏", "1990-05-17", "2026-02-11", "SW2")])


def _drop(spark) -> None:
    for database in ("staging", "standardized", "resolved", "review", "statements", "golden"):
        if spark.catalog.databaseExists(database):
            for t in spark.catalog.listTables(database):
                if t.name.startswith("population") or database == "staging":
                    spark.sql(f"DROP {'VIEW' if t.tableType == 'VIEW' else 'TABLE'} IF EXISTS {database}.{t.name}")
    for t in ("statements.population__person", "landing.deliveries", "standardized.quarantine", "standardized.issues", DISCREPANCIES):
        spark.sql(f"DROP TABLE IF EXISTS {t}")


def _snapshot(spark) -> dict:
    """The tables a rerun must leave as they were."""
    names = ["statements.population__person", "golden.population__person", "golden.population__person_history",
             "resolved.population__person_links", "standardized.population__person_unchanged", DISCREPANCIES]
    drop = {DISCREPANCIES: ["evidence"]}
    return {n: sorted(map(str, spark.table(n).drop(*drop.get(n, [])).collect())) for n in names}


@pytest.fixture(scope="module")
def batches(spark, population, tmp_path_factory):
    landing = tmp_path_factory.mktemp("snapshots") / "landing"
    _land(landing)
    profile = load_profile().model_copy(update={"landing": str(landing)})
    _drop(spark)

    def run(batch: str) -> dict:
        r = Run(spark, profile, population, batch, RunRecorder(f"snapshots-{batch}", "population", "person", batch))
        figures = {stage.__name__: stage(r) for stage in (ingest, standardize, resolve, golden, verify)}
        figures["golden_rows"] = {(g["entity_id"], g["field"]): g for g in spark.table("golden.population__person").collect()}
        figures["discrepancies"] = spark.table(DISCREPANCIES).where("domain = 'population'").collect()
        return figures

    figures = {b: run(b) for b in (B1, B2, B3)}
    before = _snapshot(spark)
    figures["rerun"] = run(B3)
    after = _snapshot(spark)
    statements_before_b4 = spark.table("statements.population__person").count()
    figures[B4] = run(B4)
    statements_b4 = (statements_before_b4, spark.table("statements.population__person").count())
    # Each person's entity, through the records that state the ID number (the key registry holds it hashed).
    stated = spark.table("standardized.population__person").select("record_ref", "id_number")
    entity = {r["id_number"]: r["entity_id"] for r in stated.join(spark.table("resolved.population__person_links"), "record_ref").collect()}
    yield {"figures": figures, "before": before, "after": after, "entity": entity, "statements_b4": statements_b4}
    _drop(spark)


def _accounting(figures: dict) -> dict:
    return {a["extract"]: (a["records"], a["standardized"], a["quarantined"], a["unchanged"], a["retracted"])
            for a in figures["standardize"]["accounting"]}


def test_a_snapshot_delivered_twice_processes_no_changed_row(spark, batches):
    f1, f2 = batches["figures"][B1], batches["figures"][B2]
    # (records, standardized, quarantined, unchanged, retracted); D, quarantined last time, is processed again.
    assert _accounting(f1)["gongan__household"] == (4, 3, 1, 0, 0)
    assert _accounting(f2)["gongan__household"] == (4, 0, 1, 3, 0)
    assert _accounting(f2)["renshe__insured"] == (2, 0, 0, 2, 0)
    assert all(a["balanced"] for f in batches["figures"].values() for a in f["standardize"]["accounting"])
    # Nothing of 公安's or 人社's is standardized or stated anew in batch 2; 卫健's death is.
    records = spark.table("standardized.population__person").where(F.col("batch") == B2)
    assert {r["agency"] for r in records.select("agency").distinct().collect()} == {"weijian"}
    assert spark.table("statements.population__person").where(f"batch = '{B2}' AND agency IN ('gongan', 'renshe')").count() == 0
    quarantined = spark.table("standardized.quarantine").where(f"domain = 'population' AND batch = '{B2}'").collect()
    assert [(r["agency"], r["reason"]) for r in quarantined] == [("gongan", "REQUIRED_MISSING")]


def test_a_carried_row_is_still_a_listing_in_its_batch(spark, batches):
    """人社 lists the deceased A in batches 2, 3 and 4 without a change: each is a link of that batch
    (what population__deceased_still_insured reads), while it is linked once, in batch 1."""
    a = batches["entity"][A]
    listings = spark.table("resolved.population__person_listings").where("agency = 'renshe'")
    assert sorted(r["batch"] for r in listings.where(F.col("entity_id") == a).collect()) == [B1, B2, B3, B4]
    assert listings.where(f"batch = '{B3}'").count() == 2
    links = spark.table("resolved.population__person_links").where("agency = 'renshe'")
    assert sorted(r["batch"] for r in links.where(F.col("entity_id") == a).collect()) == [B1]
    assert spark.table("standardized.population__person_unchanged").where(f"batch = '{B3}' AND agency = 'renshe'").count() == 2


def test_a_person_who_leaves_the_snapshot_is_retracted_and_golden_falls_back(spark, batches):
    a, f3 = batches["entity"][A], batches["figures"][B3]
    assert _accounting(f3)["gongan__household"] == (3, 0, 1, 2, 1)
    said = spark.table("statements.population__person").where((F.col("entity_id") == a) & (F.col("agency") == "gongan")).collect()
    assert said and {r["retracted_in"] for r in said} == {B3}
    # Still current: everything else, 人社's statements about A included.
    others = spark.table("statements.population__person").where(~((F.col("entity_id") == a) & (F.col("agency") == "gongan")))
    assert others.where(F.col("retracted_in").isNotNull()).count() == 0
    before, after = batches["figures"][B2]["golden_rows"], f3["golden_rows"]
    assert (before[a, "name"]["agency"], before[a, "name"]["is_fallback"]) == ("gongan", False)
    # Identity from the fallback agencies (卫健 first), marked; 户籍地 and 民族 have no fallback that holds them.
    for field, value in {"id_number": A, "name": "王小明", "birth_date": "1986-05-18"}.items():
        assert (after[a, field]["value"], after[a, field]["agency"], after[a, field]["is_fallback"]) == (value, "weijian", True)
    assert (a, "address_code") not in after and (a, "ethnicity") not in after
    # History stays true: 公安's 户籍地 until the batch that retracted it, the fallback name from then on.
    history = spark.table("golden.population__person_history").where(F.col("entity_id") == a)
    address = history.where("field = 'address_code'").collect()
    assert [(r["agency"], r["valid_from"], r["valid_to"]) for r in address] == [("gongan", date(2012, 3, 9), date(2026, 3, 1))]
    names = sorted(history.where("field = 'name'").collect(), key=lambda r: r["valid_from"])
    assert [(r["agency"], r["valid_to"]) for r in names] == [("gongan", date(2026, 3, 1)), ("weijian", None)]
    assert names[1]["valid_from"] == date(2026, 3, 1) and names[1]["is_fallback"]


def test_the_discrepancies_that_rested_on_the_retracted_record_resolve(batches):
    a = batches["entity"][A]

    def item(batch: str):
        return [r for r in batches["figures"][batch]["discrepancies"]
                if (r["entity_id"], r["field"], r["agency"]) == (a, "birth_date", "weijian")]

    assert [r["status"] for r in item(B2)] == ["new"] and item(B2)[0]["golden_agency"] == "gongan"
    assert [(r["status"], r["resolved_in"]) for r in item(B3)] == [("resolved", B3)]
    assert batches["figures"][B3]["golden"]["affected_entities"] >= 1


def test_events_never_retract(spark, batches):
    """卫健 certifies another death in batch 3, not A's again: A's certificate stays current."""
    death = spark.table("statements.population__person").where("agency = 'weijian'")
    assert death.where(F.col("entity_id") == batches["entity"][A]).count() >= 4
    assert death.where(F.col("retracted_in").isNotNull()).count() == 0
    assert spark.table("standardized.population__person_retracted").where("agency = 'weijian'").count() == 0
    assert "weijian__death" in _accounting(batches["figures"][B3])


def test_two_records_of_one_agency_are_each_checked(batches):
    """教育's wrong name for B sits beside its right one, which is the later record: it is found still."""
    b = batches["entity"][B]
    found = [r for r in batches["figures"][B1]["discrepancies"] if (r["entity_id"], r["field"], r["agency"]) == (b, "name", "jiaoyu")]
    assert [(r["value"], r["golden_value"], r["record_ref"]) for r in found] == [("李斯", "李四", f"jiaoyu:student:{B1}:1")]
    evidence = {(e["agency"], e["value"]) for e in found[0]["evidence"]}
    assert {("jiaoyu", "李斯"), ("jiaoyu", "李四"), ("gongan", "李四")} <= evidence


def test_a_rerun_of_the_batch_gives_the_same_result(batches):
    assert batches["after"] == batches["before"]
    rerun = batches["figures"]["rerun"]
    assert _accounting(rerun) == _accounting(batches["figures"][B3])
    assert rerun["resolve"]["statements"]["retracted"] == batches["figures"][B3]["resolve"]["statements"]["retracted"] > 0


def test_an_event_delivered_twice_is_carried_not_taken_for_a_new_event(batches):
    """卫健's death certificate of E, re-sent in batch 4: the same record (its 死亡医学证明编号), carried as
    unchanged like the snapshots' rows; nothing is stated anew, and nothing is retracted (events never are)."""
    f4 = batches["figures"][B4]
    assert _accounting(f4)["weijian__death"] == (1, 0, 0, 1, 0)
    assert _accounting(f4)["gongan__household"] == (3, 0, 1, 2, 0)
    assert f4["resolve"]["statements"]["new"] == 0 and f4["resolve"]["statements"]["retracted"] == 0
    before, after = batches["statements_b4"]
    assert before == after
    assert sorted(d["discrepancy_id"] for d in f4["discrepancies"]) == sorted(
        d["discrepancy_id"] for d in batches["figures"]["rerun"]["discrepancies"])
