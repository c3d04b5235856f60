"""Change-only statements and the incremental golden and verify stages, checked against a full rebuild.

Thirty persons over three monthly snapshot batches that repeat each other except for a few changes:
a name change and two moves at 公安 (one back to the former address), 人社 values that differ from
公安's (one from the start, one from batch 2), an insured status that is suspended and resumed, a fallback-only newborn (卫健) that 公安
registers later, and a new fallback-only person. Batch 3 is first delivered with an error and then
redelivered corrected, and rerun once more unchanged.
"""

from datetime import date

import pytest
from pyspark.testing import assertDataFrameEqual

from jichu.config import EntityType
from jichu.core import tables
from jichu.core.authority import GOLDEN_COLUMNS, HISTORY_COLUMNS, assign_history, authority_rules, select_golden
from jichu.core.statements import STATEMENT_SCHEMA, new_statements
from jichu.core.verify import evidence_of, find_discrepancies
import jichu.pipeline as pipeline_module
from jichu.pipeline import DISCREPANCIES, Run, golden, verify

# Five runs of golden and verify over three batches: the slow tier (make test-slow), minutes of Delta commits.
pytestmark = pytest.mark.slow

B1, B2, B3 = "2026-01-01", "2026-02-01", "2026-03-01"
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯"
SEX_AS_DELIVERED = {"1": "男", "2": "女"}
HOME, OTHER = "420102", "420103"  # 武昌区, 汉阳区


def _household(i: int) -> tuple[date, dict]:
    """公安's record of person i as in batch 1: (登记日期, fields); odd persons in HOME, even in OTHER."""
    fields = {
        "name": SURNAMES[i - 1] + ("伟" if i % 2 else "芳"),
        "sex": "1" if i % 2 else "2",
        "birth_date": f"19{60 + i}-0{1 + i % 9}-1{i % 10}",
        "address_code": HOME if i % 2 else OTHER,
    }
    return date(2010 + i % 10, 1 + i % 12, 1 + i), fields


def _delivered(batch: str, wrong: bool = False) -> list[tuple]:
    """Every statement the agencies deliver in `batch`, as resolve would unpivot them."""
    n = [B1, B2, B3].index(batch) + 1
    records = []  # (agency, extract, person, observed_at, fields)
    for i in range(1, 29):
        registered, fields = _household(i)
        if i == 3 and n >= 2:  # 改名 in January, with a new 登记日期
            registered, fields["name"] = date(2026, 1, 20), "张伟东"
        if i == 5 and n == 2:  # moves to OTHER ...
            registered, fields["address_code"] = date(2026, 1, 15), OTHER
        if i == 5 and n == 3:  # ... and back to HOME
            registered = date(2026, 2, 20)
        if i == 12 and wrong:  # a delivery error, corrected by the redelivery of the batch
            registered, fields["address_code"], fields["ethnicity"] = date(2026, 2, 10), "420111", "01"
        records.append(("gongan", "household", i, registered, fields))
        if i % 2 == 0:  # 人社 has no fact date: observed_at is the batch date
            insured = {"name": fields["name"], "insured_status": "1", "employer": f"91420100MA4K{i:05d}", "address_code": OTHER}
            if i == 10:  # 人社 has P10 at the former address in every batch: a discrepancy nothing touches
                insured["address_code"] = HOME
            if i == 8 and n >= 2:  # 人社 spells the name differently from 公安 (not the authority)
                insured["name"] = "赵方"
            if i == 8 and n == 2:  # contributions suspended for a month
                insured["insured_status"] = "2"
            records.append(("renshe", "insured", i, date.fromisoformat(batch), insured))
    # Person 29: born in December, only 卫健's birth certificate (a fallback) until 公安 registers her.
    records.append(("weijian", "birth", 29, date(2025, 12, 5), {"name": "刘宝宝", "sex": "2", "birth_date": "2025-12-01"}))
    if n == 3:
        records.append(("gongan", "household", 29, date(2026, 2, 25),
                        {"name": "刘欣然", "sex": "2", "birth_date": "2025-12-01", "address_code": OTHER}))
    if n >= 2:  # person 30: a new fallback-only person
        records.append(("weijian", "birth", 30, date(2026, 1, 10), {"name": "冯乐", "sex": "1", "birth_date": "2026-01-03"}))
    return [
        (f"P{i:02d}", field, value, agency, extract, batch, f"{agency}:{extract}:{batch}:{i}",
         SEX_AS_DELIVERED[value] if field == "sex" else value, observed_at, f"{agency}:{extract}:{i}", None)
        for agency, extract, i, observed_at, fields in records
        for field, value in fields.items()
    ]


def _write_statements(spark, rows: list[tuple], table: str, batch: str) -> int:
    """What resolve does with a batch's statements: keep the new ones and replace the batch's slice."""
    delivered = spark.createDataFrame(rows, STATEMENT_SCHEMA)
    earlier = tables.read_or_empty(spark, table, STATEMENT_SCHEMA).where(f"batch < '{batch}'")
    fresh = new_statements(delivered, earlier).localCheckpoint()
    tables.replace_slice(fresh, table, {"batch": batch})
    return fresh.count()


def _rows(spark, table: str) -> list:
    return sorted(spark.table(table).collect(), key=str)


@pytest.fixture(scope="module")
def pipeline(spark, population):
    """Run statements and golden batch by batch into tables of their own domain name."""
    domain = EntityType.model_validate({**population.model_dump(), "domain": "goldentest"})
    names = {"statements": "statements.goldentest__person", "golden": "golden.goldentest__person",
             "history": "golden.goldentest__person_history"}
    for name in [*names.values(), "golden.goldentest__person_touched"]:
        spark.sql(f"DROP TABLE IF EXISTS {name}")
    if tables.table_exists(spark, DISCREPANCIES):
        spark.sql(f"DELETE FROM {DISCREPANCIES} WHERE domain = 'goldentest'")

    def run(batch: str, wrong: bool = False) -> dict:
        written = _write_statements(spark, _delivered(batch, wrong), names["statements"], batch)
        figures = {"written": written, **golden(Run(spark, None, domain, batch, None))}
        figures["verify"] = verify(Run(spark, None, domain, batch, None))
        # What verify keeps open, and what checking every entity from scratch finds.
        full = find_discrepancies(spark.table(names["statements"]), spark.table(names["golden"]), domain)
        active = spark.table(DISCREPANCIES).where("domain = 'goldentest' AND status IN ('new', 'open', 'reopened')")
        figures["discrepancies"] = {"kept": sorted(active.select(*full.columns).collect(), key=str),
                                    "full": sorted(full.collect(), key=str)}
        # The evidence beside each item, and every agency's value as all statements give it.
        figures["evidence"] = {
            "kept": sorted(active.select("entity_id", "field", "evidence").distinct().collect(), key=str),
            "full": sorted(evidence_of(spark.table(names["statements"]), active).collect(), key=str)}
        return figures

    figures = {"b1": run(B1), "b2": run(B2), "b3_wrong": run(B3, wrong=True), "b3": run(B3)}
    before = {k: _rows(spark, n) for k, n in names.items()}
    figures["b3_rerun"] = run(B3)
    after = {k: _rows(spark, n) for k, n in names.items()}
    # Once more past the threshold above which golden is built again from every statement.
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(pipeline_module, "MAX_REPLACED_ENTITIES", 0)
        figures["b3_rebuilt"] = run(B3)
    rebuilt = {k: _rows(spark, n) for k, n in names.items()}
    raw = spark.createDataFrame(_delivered(B1) + _delivered(B2) + _delivered(B3), STATEMENT_SCHEMA)
    return {"names": names, "figures": figures, "before": before, "after": after, "rebuilt": rebuilt, "raw": raw,
            "rules": authority_rules(spark, domain)}


def test_incremental_golden_and_history_equal_a_full_rebuild(spark, pipeline):
    names, rules = pipeline["names"], pipeline["rules"]
    stored = spark.table(names["statements"])
    assertDataFrameEqual(spark.table(names["golden"]), select_golden(stored, rules).select(*GOLDEN_COLUMNS))
    assertDataFrameEqual(spark.table(names["history"]), assign_history(stored, rules).select(*HISTORY_COLUMNS))


def test_change_only_statements_lose_no_value(spark, pipeline):
    """Over every statement ever delivered the values are the same; only provenance is 'first seen'."""
    names, rules, raw = pipeline["names"], pipeline["rules"], pipeline["raw"]
    values = ["entity_id", "field", "value", "agency", "original_value", "is_fallback"]
    assertDataFrameEqual(spark.table(names["golden"]).select(*values), select_golden(raw, rules).select(*values))
    # A change is stored with the record that made it, so history equals the rebuild in every column.
    assertDataFrameEqual(spark.table(names["history"]), assign_history(raw, rules).select(*HISTORY_COLUMNS))
    first = spark.table(names["golden"]).where("entity_id = 'P01' AND field = 'name'").first()
    assert (first["value"], first["batch"]) == ("王伟", B1)


def test_only_changes_are_written_and_a_rerun_changes_nothing(spark, pipeline):
    figures = pipeline["figures"]
    # Batch 1: 28 household records of 4 fields, 14 insured of 4, one birth of 3.
    assert figures["b1"]["written"] == 28 * 4 + 14 * 4 + 3
    # Batch 2: P03's name, P05's address, 人社's name and status for P08, P30's three fields.
    assert figures["b2"]["written"] == 7
    # Batch 3: P05's address back, P08's status back, 公安's four fields for P29.
    assert figures["b3"]["written"] == 6 and figures["b3_rerun"]["written"] == 6
    assert pipeline["after"] == pipeline["before"]
    # A rerun replaces the touched entities' rows with the same rows.
    for label in ("golden", "history"):
        assert figures["b3_rerun"][f"{label}_changes"]["replaced"] == figures["b3_rerun"][f"{label}_changes"]["written"]
    keys = [(r["entity_id"], r["field"]) for r in pipeline["after"]["golden"]]
    assert len(keys) == len(set(keys))
    # The corrected redelivery removed P12's erroneous ethnicity and restored the address.
    corrected = figures["b3"]["golden_changes"]
    # Batch 3 removes one golden value, P12's ethnicity, and adds none: its entities lose one row net.
    assert corrected["replaced"] - corrected["written"] == 1
    p12 = {(r["field"], r["value"]) for r in pipeline["after"]["golden"] if r["entity_id"] == "P12"}
    assert ("address_code", OTHER) in p12 and not any(f == "ethnicity" for f, _ in p12)
    assert figures["b3"]["values"] == figures["b3_rerun"]["values"] == len(keys)
    assert figures["b3"]["affected_entities"] == 4  # P05, P08, P29 in the slice; P12 from the wrong run's rows


def test_incremental_verify_keeps_what_checking_every_entity_finds(pipeline):
    figures = pipeline["figures"]
    for run in ("b1", "b2", "b3_wrong", "b3", "b3_rerun"):
        found = figures[run]["discrepancies"]
        assert found["kept"] == found["full"], run
        assert figures[run]["evidence"]["kept"] == figures[run]["evidence"]["full"], run
    # P10's address as each agency holds it, with the record that says so.
    p10 = next(r for r in figures["b3_rerun"]["evidence"]["kept"] if r["entity_id"] == "P10" and r["field"] == "address_code")
    assert [(e["agency"], e["value"], e["record_ref"]) for e in p10["evidence"]] == [
        ("gongan", OTHER, f"gongan:household:{B1}:10"), ("renshe", HOME, f"renshe:insured:{B1}:10")]
    def p12(run: str) -> set:
        return {(r["agency"], r["field"], r["golden_value"]) for r in figures[run]["discrepancies"]["kept"] if r["entity_id"] == "P12"}
    # The erroneous delivery makes 人社's address for P12 disagree; the correction resolves it.
    assert p12("b3_wrong") == {("renshe", "address_code", "420111")} and p12("b3") == set()
    assert figures["b3"]["verify"]["by_status"]["resolved"] >= 1
    assert ("renshe", "name", "赵芳") in {(r["agency"], r["field"], r["golden_value"]) for r in figures["b2"]["discrepancies"]["kept"]}
    # P10's is found in batch 1 and kept open by every later run, which never checks P10 again.
    for run in ("b2", "b3", "b3_rerun"):
        assert ("P10", "renshe", "address_code") in {(r["entity_id"], r["agency"], r["field"]) for r in figures[run]["discrepancies"]["kept"]}


def test_fallback_is_replaced_when_the_authority_arrives(pipeline):
    golden_rows = {(r["entity_id"], r["field"]): r for r in pipeline["after"]["golden"]}
    assert (golden_rows["P29", "name"]["value"], golden_rows["P29", "name"]["is_fallback"]) == ("刘欣然", False)
    assert (golden_rows["P30", "name"]["agency"], golden_rows["P30", "name"]["is_fallback"]) == ("weijian", True)
    assert golden_rows["P08", "name"]["value"] == "赵芳" and golden_rows["P08", "insured_status"]["value"] == "1"
    history_p29 = [r for r in pipeline["after"]["history"] if r["entity_id"] == "P29"]
    assert {r["agency"] for r in history_p29} == {"gongan"}


def test_who_was_registered_in_a_county_on_a_date(spark, pipeline):
    query = (
        f"SELECT entity_id FROM {pipeline['names']['history']} WHERE field = 'address_code' AND value = '{OTHER}' "
        "AND valid_from <= DATE'{d}' AND (valid_to IS NULL OR valid_to > DATE'{d}')"
    )
    evens = {f"P{i:02d}" for i in range(2, 29, 2)}
    assert {r[0] for r in spark.sql(query.format(d="2026-02-01")).collect()} == evens | {"P05"}
    assert {r[0] for r in spark.sql(query.format(d="2026-03-01")).collect()} == evens | {"P29"}
    moves = spark.sql(
        f"SELECT value, valid_from, valid_to FROM {pipeline['names']['history']} "
        "WHERE entity_id = 'P05' AND field = 'address_code' ORDER BY valid_from"
    ).collect()
    assert [tuple(r) for r in moves] == [
        (HOME, date(2015, 6, 6), date(2026, 1, 15)),
        (OTHER, date(2026, 1, 15), date(2026, 2, 20)),
        (HOME, date(2026, 2, 20), None),
    ]


def test_a_value_that_comes_back_is_new_and_a_null_original_repeats(spark):
    rows = [  # (entity, value, original_value, batch); 人社's status: paying, suspended, paying again
        ("P1", "1", None, B1), ("P1", "2", None, B2), ("P1", "1", None, B3),
        ("P2", "1", None, B1), ("P2", "1", None, B2), ("P2", "1", "参保缴费", B3),
    ]
    frame = spark.createDataFrame(
        [(e, "insured_status", v, "renshe", "insured", b, f"renshe:insured:{b}:{e}", o, date.fromisoformat(b), f"renshe:insured:{e}",
          None) for e, v, o, b in rows],
        STATEMENT_SCHEMA,
    )
    fresh = new_statements(frame.where(f"batch = '{B3}'"), frame.where(f"batch < '{B3}'"))
    assert sorted((r["entity_id"], r["value"], r["original_value"]) for r in fresh.collect()) == [
        ("P1", "1", None), ("P2", "1", "参保缴费"),
    ]
    assert new_statements(frame.where(f"batch = '{B2}'"), frame.where(f"batch < '{B2}'")).select("entity_id").collect() == [("P1",)]


def test_past_the_threshold_golden_is_built_from_every_statement_with_the_same_rows(pipeline):
    figures = pipeline["figures"]["b3_rebuilt"]
    assert figures["golden_changes"] == figures["history_changes"] == "built from all statements"
    assert pipeline["rebuilt"] == pipeline["after"]
