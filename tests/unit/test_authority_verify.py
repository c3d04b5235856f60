from pyspark.testing import assertDataFrameEqual

from jichu.core.authority import assign_wide_record, authority_rules, select_golden
from jichu.core.verify import DISCREPANCY_SCHEMA, evolve_discrepancies, find_discrepancies

STATEMENTS = "entity_id string, field string, value string, agency string, extract string, batch string, record_ref string, original_value string, observed_at date"


def _st(spark, rows):
    return spark.createDataFrame(
        [(e, f, v, a, "x", b, f"{a}:x:{b}:{i}", v, None) for i, (e, f, v, a, b) in enumerate(rows)], STATEMENTS
    )


def test_golden_takes_the_authority_latest_batch_and_never_another_agency(spark, population):
    st = _st(spark, [
        ("P1", "name", "王伟", "gongan", "2026-01-01"),
        ("P1", "name", "王玮", "gongan", "2026-02-01"),   # a later batch of the authority wins
        ("P1", "name", "王卫", "weijian", "2026-03-01"),  # never the non-authoritative agency
        ("P2", "address_code", "420102", "renshe", "2026-01-01"),  # no authority value and no fallback: no golden
    ])
    golden = select_golden(st, authority_rules(spark, population))
    assertDataFrameEqual(
        golden.select("entity_id", "field", "value", "agency", "batch", "is_fallback"),
        spark.createDataFrame([("P1", "name", "王玮", "gongan", "2026-02-01", False)],
                              "entity_id string, field string, value string, agency string, batch string, is_fallback boolean"),
    )
    wide = assign_wide_record(golden, population).first()
    assert (wide["entity_id"], wide["name"], wide["name_source"], wide["sex"]) == ("P1", "王玮", "gongan", None)


def test_fallback_is_used_only_where_named_and_marked(spark, population):
    from jichu.config import Domain

    data = population.model_dump()
    data["fields"]["name"]["fallback"] = ["weijian"]
    with_fallback = Domain.model_validate(data)
    st = _st(spark, [("P2", "name", "李娜", "weijian", "2026-01-01")])
    row = select_golden(st, authority_rules(spark, with_fallback)).first()
    assert (row["value"], row["agency"], row["is_fallback"]) == ("李娜", "weijian", True)


def test_discrepancies_and_their_life_across_runs(spark, population):
    st1 = _st(spark, [
        ("P1", "name", "王伟", "gongan", "2026-01-01"),
        ("P1", "name", "王玮", "weijian", "2026-01-01"),
        ("P2", "sex", "1", "gongan", "2026-01-01"),
        ("P2", "sex", "1", "weijian", "2026-01-01"),
    ])
    rules = authority_rules(spark, population)
    found = find_discrepancies(st1, select_golden(st1, rules), population)
    rows = found.collect()
    assert [(r["entity_id"], r["field"], r["agency"], r["value"], r["golden_value"], r["severity"]) for r in rows] == [
        ("P1", "name", "weijian", "王玮", "王伟", "major")
    ]
    empty = spark.createDataFrame([], DISCREPANCY_SCHEMA)
    run1 = evolve_discrepancies(empty, found, "2026-01-01").localCheckpoint()
    assert [r["status"] for r in run1.collect()] == ["new"]
    rerun = evolve_discrepancies(run1, found, "2026-01-01").localCheckpoint()
    assert [r["status"] for r in rerun.collect()] == ["new"]  # a rerun of the same batch changes nothing
    run2 = evolve_discrepancies(run1, found, "2026-02-01").localCheckpoint()
    assert [r["status"] for r in run2.collect()] == ["open"]
    none = found.limit(0)
    run3 = evolve_discrepancies(run2, none, "2026-03-01").localCheckpoint()
    assert [(r["status"], r["resolved_in"]) for r in run3.collect()] == [("resolved", "2026-03-01")]
    run4 = evolve_discrepancies(run3, found, "2026-04-01").localCheckpoint()
    r = run4.first()
    assert (r["status"], r["times_reopened"], r["first_seen"], r["last_seen"]) == ("reopened", 1, "2026-01-01", "2026-04-01")


def test_register_fields_come_from_the_register_that_issued_the_credit_code(spark):
    from jichu.config import load_domain

    legal = load_domain("legal_entities")
    st = _st(spark, [
        ("L1", "uscc", "91420106MA0000000X", "shichang", "2026-01-01"),
        ("L1", "name", "宝亿科技有限公司", "shichang", "2026-01-01"),
        ("L1", "name", "宝亿科技", "tongji", "2026-01-01"),
        ("L1", "name", "区教育局", "bianban", "2026-02-01"),  # bianban did not issue L1's code: never chosen
        ("L2", "uscc", "12420106000000000X", "bianban", "2026-01-01"),
        ("L2", "name", "区教育局", "bianban", "2026-01-01"),
        ("L3", "name", "宝丰商贸", "tongji", "2026-01-01"),  # no register's record: the fallback, marked
    ])
    golden = {(r["entity_id"], r["field"]): (r["value"], r["agency"], r["is_fallback"])
              for r in select_golden(st, authority_rules(spark, legal)).collect()}
    assert golden[("L1", "name")] == ("宝亿科技有限公司", "shichang", False)
    assert golden[("L1", "uscc")] == ("91420106MA0000000X", "shichang", False)
    assert golden[("L2", "name")] == ("区教育局", "bianban", False)
    assert golden[("L3", "name")] == ("宝丰商贸", "tongji", True)
