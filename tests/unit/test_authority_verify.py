from pyspark.testing import assertDataFrameEqual

from jichu.core.authority import assign_wide_record, authority_rules, select_golden
from jichu.core.statements import STATEMENT_SCHEMA as STATEMENTS
from jichu.core.verify import DISCREPANCY_SCHEMA, evolve_discrepancies, find_discrepancies


def _st(spark, rows):
    return spark.createDataFrame(
        [(e, f, v, a, "x", b, f"{a}:x:{b}:{i}", v, None, f"{a}:x:{e}", None) for i, (e, f, v, a, b) in enumerate(rows)], STATEMENTS
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
    from jichu.config import EntityType

    data = population.model_dump()
    data["fields"]["name"]["fallback"] = ["weijian"]
    with_fallback = EntityType.model_validate(data)
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


def test_agencies_that_agree_against_the_authority_put_its_value_in_question(spark, population):
    from jichu.core.verify import suspected_source_errors

    st = _st(spark, [
        ("P1", "birth_date", "1990-01-01", "gongan", "2026-01-01"),
        ("P1", "birth_date", "1990-01-10", "weijian", "2026-01-01"),
        ("P1", "birth_date", "1990-01-10", "renshe", "2026-02-01"),   # agrees with weijian: the authority is doubted
        ("P2", "birth_date", "1985-05-05", "gongan", "2026-01-01"),
        ("P2", "birth_date", "1985-05-06", "weijian", "2026-01-01"),
        ("P2", "birth_date", "1985-05-07", "renshe", "2026-01-01"),   # two agencies, two different values: no doubt
        ("P3", "address_code", "420102", "gongan", "2026-01-01"),
        ("P3", "address_code", "420106", "weijian", "2026-01-01"),
        ("P3", "address_code", "420106", "renshe", "2026-01-01"),     # doubt: false, copies of an old 户籍地
    ])
    found = find_discrepancies(st, select_golden(st, authority_rules(spark, population)), population)
    doubt = suspected_source_errors(found, population).collect()
    assert [(r["entity_id"], r["field"], r["agency"], r["rule"], r["value"], r["golden_value"], r["golden_agency"],
             r["golden_batch"], r["batch"]) for r in doubt] == [
        ("P1", "birth_date", "gongan", "SUSPECTED_SOURCE_ERROR", "1990-01-01", "1990-01-10", "renshe+weijian",
         "2026-02-01", "2026-01-01"),
    ]
    assert doubt[0]["golden_record_ref"].startswith("renshe:")  # the latest of the agreeing records
    # The agreeing agencies keep their own items; the ids differ from theirs.
    assert {(r["entity_id"], r["agency"]) for r in found.collect()} == {
        ("P1", "weijian"), ("P1", "renshe"), ("P2", "weijian"), ("P2", "renshe"), ("P3", "weijian"), ("P3", "renshe")}
    assert doubt[0]["discrepancy_id"] not in {r["discrepancy_id"] for r in found.collect()}

    # Had 公安 itself held 1990-01-10 before, the two copies are old, not evidence against it.
    history = spark.createDataFrame([("P1", "birth_date", "1990-01-10", "gongan")], "entity_id string, field string, value string, agency string")
    assert suspected_source_errors(found, population, history).isEmpty()
    assert not suspected_source_errors(found, population, history.limit(0)).isEmpty()


def test_register_fields_come_from_the_register_that_issued_the_credit_code(spark):
    from jichu.config import load_entity

    legal = load_entity("legal_entities", "entity")
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


def test_rules_across_an_entity_question_one_agency_with_another_as_evidence(spark):
    from jichu.config import load_entity
    from jichu.core.verify import entity_rules

    legal = load_entity("legal_entities", "entity")
    code = "91420106MA0000000X"
    golden = select_golden(_st(spark, [
        ("L1", "uscc", code, "shichang", "b1"), ("L1", "county", "420106", "shichang", "b1"),
        ("L1", "status", "注销", "shichang", "b1"), ("L1", "tax_status", "正常", "shuiwu", "b1"),
        ("L2", "uscc", code, "shichang", "b1"), ("L2", "county", "420106", "shichang", "b1"),
        ("L2", "status", "存续", "shichang", "b1"), ("L2", "org_type", "92", "shichang", "b1"),
        ("L2", "last_filing", "202312", "shuiwu", "b1"),   # more than two years before 2026-02-01
        ("L3", "uscc", "91420100MA0000000X", "shichang", "b1"), ("L3", "county", "420106", "shichang", "b1"),
        ("L3", "status", "存续", "shichang", "b1"), ("L3", "org_type", "92", "shichang", "b1"),
        ("L3", "last_filing", "202512", "shuiwu", "b1"),   # filing, and a prefecture office: nothing
        ("L3", "office", "420100", "shichang", "b1"),      # registered with the prefecture's office
        ("L4", "uscc", code, "shichang", "b1"), ("L4", "county", "420111", "shichang", "b1"),  # moved away
        ("L5", "uscc", code, "shichang", "b1"), ("L5", "county", "420111", "shichang", "b1"),
        ("L5", "office", "420111", "shichang", "b1"),      # moved, and passed to the new county's office
        ("L6", "uscc", code, "shichang", "b1"), ("L6", "county", "420111", "shichang", "b1"),
        ("L6", "office", "420106", "shichang", "b1"),      # the address changed, the office did not
        ("L7", "uscc", code, "shichang", "b1"), ("L7", "county", "421022", "shichang", "b1"),
        ("L7", "office", "420000", "shichang", "b1"),      # the province's office covers every county
    ]), authority_rules(spark, legal))
    found = {(r["entity_id"], r["rule"]): (r["field"], r["agency"], r["value"], r["golden_value"], r["golden_agency"])
             for r in entity_rules(golden, legal, "2026-02-01").collect()}
    assert found == {
        ("L1", "DEREGISTERED_STILL_FILING"): ("tax_status", "shuiwu", "正常", "注销", "shichang"),
        ("L2", "DORMANT_IN_REGISTER"): ("status", "shichang", "存续", "202312", "shuiwu"),
        ("L4", "DIVISION_DISAGREES"): ("county", "shichang", "420111", code, "shichang"),
        ("L6", "DIVISION_DISAGREES"): ("county", "shichang", "420111", code, "shichang"),
        ("L6", "OFFICE_DISAGREES"): ("office", "shichang", "420106", "420111", "shichang"),
    }
    assert entity_rules(golden, legal, "2025-06-01").where("rule = 'DORMANT_IN_REGISTER'").isEmpty()


def test_references_resolve_into_the_other_base_database_and_feed_the_rules(spark):
    from datetime import date

    from jichu.config import load_entity
    from jichu.core import tables
    from jichu.core.authority import assign_published_record
    from jichu.core.verify import entity_rules
    from jichu.demo.faults import make_ric

    legal = load_entity("legal_entities", "entity")
    a1, a2, a9 = (make_ric("420106", date(1970, 1, 1), n) for n in (1, 2, 9))
    a5 = make_ric("420111", date(1980, 3, 4), 5)     # sequence 5: odd, a man
    statements = []
    for entity, agency, code, rep, name in (
        ("L1", "shichang", "91", a1, "王伟"), ("L2", "shichang", "91", a2, "李娜"), ("L3", "bianban", "12", a9, "赵敏"),
        ("L4", "shichang", "91", None, "周杰"),     # no number: the one 周杰 of the county
        ("L5", "shichang", "91", a5, "吴刚"),       # a number population lacks: its 吴刚 has none
        ("L6", "shichang", "91", None, "陈静"),     # no number, and two 陈静 in the county: nobody
    ):
        statements += [(entity, "uscc", f"{code}420106MA0000000X", agency, "b1"), (entity, "county", "420106", agency, "b1"),
                       (entity, "legal_rep_name", name, agency, "b1"), (entity, "status", "存续", agency, "b1")]
        statements += [(entity, "legal_rep_id_number", rep, agency, "b1")] if rep else []
    golden = select_golden(_st(spark, statements), authority_rules(spark, legal))
    spark.sql("DROP TABLE IF EXISTS published.population__person")
    unresolved = assign_published_record(golden, legal)[1]
    assert unresolved == {"legal_rep_person", "legal_rep_death_date"}
    assert entity_rules(golden, legal, "2026-02-01").where("rule LIKE 'REPRESENTATIVE%'").isEmpty()  # nothing from absence

    tables.overwrite(spark.createDataFrame([
        ("P1", a1, "王伟", date(1970, 1, 1), "1", "420106", None, None),
        ("P2", a2, "李娜", date(1970, 1, 1), "2", "420106", date(2025, 10, 27), "weijian"),
        ("P4", make_ric("420106", date(1985, 6, 1), 3), "周杰", date(1985, 6, 1), "1", "420106", None, None),
        ("P5", None, "吴刚", date(1980, 3, 4), "1", "420102", date(2024, 1, 2), "minzheng"),
        ("P6", make_ric("420106", date(1990, 2, 2), 4), "陈静", date(1990, 2, 2), "2", "420106", None, None),
        ("P7", make_ric("420106", date(1992, 8, 8), 6), "陈静", date(1992, 8, 8), "2", "420106", None, None),
        ("P8", make_ric("420111", date(1980, 3, 4), 7), "吴钢", date(1980, 3, 4), "1", "420111", None, None),
    ], "entity_id string, id_number string, name string, birth_date date, sex string, address_code string, "
       "death_date date, death_date_source string"), "published.population__person")
    try:
        wide, unresolved = assign_published_record(golden, legal)
        got = {r["entity_id"]: (r["legal_rep_person"], r["legal_rep_person_source"], r["legal_rep_death_date_source"])
               for r in wide.collect()}
        assert unresolved == set()
        assert got == {"L1": ("P1", "population", None), "L2": ("P2", "population", "weijian"), "L3": (None, None, None),
                       "L4": ("P4", "population", None), "L5": ("P5", "population", "minzheng"), "L6": (None, None, None)}
        found = {(r["entity_id"], r["rule"]): (r["agency"], r["golden_value"], r["golden_agency"])
                 for r in entity_rules(golden, legal, "2026-02-01").collect()}
        assert found == {
            ("L2", "REPRESENTATIVE_DECEASED"): ("shichang", "2025-10-27", "weijian"),
            ("L3", "REPRESENTATIVE_UNKNOWN"): ("bianban", None, "population"),
            ("L5", "REPRESENTATIVE_DECEASED"): ("shichang", "2024-01-02", "minzheng"),
        }
    finally:
        spark.sql("DROP TABLE IF EXISTS published.population__person")
