"""A real Great Expectations checkpoint: the suite built from conf/ passes good data and names failures."""

from datetime import date
from pathlib import Path

from jichu.core.gate import Passed, run_gate
from jichu.demo.faults import make_ric

BORN = date(1990, 5, 17)
# One plausible value per field of conf/domains/population.yaml.
VALUES = {"name": "王伟", "sex": "1", "birth_date": BORN, "ethnicity": "01", "address_code": "420106",
          "marital_status": "20", "death_date": None, "insured_status": "1", "employer": None, "school": None,
          "grade": None}


def _candidate(spark, population, rows):
    """rows: (entity_id, id_number, overrides) -> a wide candidate as assign_wide_record writes it."""
    fields = list(population.fields)
    types = {n: ("date" if r.type == "date" else "string") for n, r in population.fields.items()}
    schema = ", ".join(["entity_id string", *[f"{n} {types[n]}" for n in fields], *[f"{n}_source string" for n in fields]])
    data = []
    for eid, idn, over in rows:
        values = {**VALUES, "id_number": idn, **over}
        sources = [over.get(f"{n}_source", population.fields[n].authority) if values[n] is not None else None for n in fields]
        data.append((eid, *[values[n] for n in fields], *sources))
    return spark.createDataFrame(data, schema)


def test_gate_passes_a_clean_candidate_and_writes_data_docs(spark, population):
    df = _candidate(spark, population, [(f"P{i}", make_ric("420106", BORN, i), {}) for i in range(5)])
    result = run_gate(df, population)
    assert result.passed, result.describe()
    assert result.evaluated >= len(population.fields) + 10  # provenance per field, plus the identifier rules
    assert Path(result.data_docs).exists()


def test_gate_fails_on_each_kind_of_broken_rule(spark, population):
    good = make_ric("420106", BORN, 1)
    bad = good[:-1] + ("0" if good[-1] != "0" else "1")
    df = _candidate(spark, population, [
        ("P1", good, {}),
        ("P1", bad, {"name_source": "shichang", "sex": "3", "ethnicity": "60", "address_code": "420100"}),
    ])
    result = run_gate(df, population)
    assert not result.passed
    failed = {(f.expectation, f.column) for f in result.critical}
    assert ("expect_column_values_to_be_valid_chinese_id_number", "id_number") in failed
    assert ("expect_column_values_to_be_unique", "entity_id") in failed
    assert ("expect_column_values_to_be_in_set", "name_source") in failed  # provenance: not an authority for names
    assert ("expect_column_values_to_be_in_chinese_code_list", "sex") in failed  # GB/T 2261.1 has no 3
    assert ("expect_column_values_to_be_in_chinese_code_list", "ethnicity") in failed
    assert ("expect_column_values_to_be_valid_division_code", "address_code") in failed  # a prefecture, not a county
    assert ("expect_column_values_to_be_in_set", "sex_source") not in failed


def test_a_monthly_gate_checks_row_by_row_only_the_rows_that_changed(spark, population):
    """Rows equal to the published ones passed the same row checks; the rest of the suite reads every row."""
    people = [(f"P{i}", make_ric("420106", BORN, i), {}) for i in range(4)]
    published = _candidate(spark, population, [*people[:3], ("P3", people[3][1], {"sex": "3"})])
    first = run_gate(published, population)
    assert {f.column for f in first.critical} == {"sex"} and first.rows_checked == 4
    # This month: P3 is as before (its sex code broke a check then), P1's ethnicity and P4 are new.
    candidate = _candidate(spark, population, [people[0], ("P1", people[1][1], {"ethnicity": "60"}), people[2],
                                               ("P3", people[3][1], {"sex": "3"}), ("P4", people[0][1], {})])
    monthly = run_gate(candidate, population, passed=Passed(published, first.row_checks))
    assert monthly.rows_checked == 2 and monthly.evaluated == first.evaluated
    # P1's code is checked; P4 repeats P0's ID number, which only the whole candidate shows.
    assert {(f.expectation, f.column) for f in monthly.critical} == {
        ("expect_column_values_to_be_in_chinese_code_list", "ethnicity"), ("expect_column_values_to_be_unique", "id_number")}
    # Where the entities that changed are known (the candidate derived from golden), their rows, not a
    # comparison: here only P1 is named, so P4 is taken as passed.
    named = run_gate(candidate, population, passed=Passed(published, first.row_checks, changed=["P1"]))
    assert named.rows_checked == 1 and {f.column for f in named.critical} == {"ethnicity", "id_number"}
    # Checks that changed since the published rows passed them read every row again.
    changed = run_gate(candidate, population, passed=Passed(published, "another suite"))
    assert changed.rows_checked == 5 and "sex" in {f.column for f in changed.critical}


def test_gate_checks_links_both_ways(spark, population):
    people = [(f"P{i}", make_ric("420106", BORN, i), {}) for i in range(3)]
    spark.createDataFrame(
        [("r1", "P0"), ("r2", "P1"), ("r3", "P9")], "record_ref string, entity_id string"
    ).createOrReplaceTempView("test_links")
    spark.createDataFrame([("P9", "name", "gongan", None)], "entity_id string, field string, agency string, retracted_in string"
                          ).createOrReplaceTempView("test_statements")
    result = run_gate(_candidate(spark, population, people), population, links_table="test_links",
                      statements_table="test_statements")
    failed = {f.expectation for f in result.critical}
    # P2 has no source record; record r3 points to a person the candidate does not have.
    assert failed == {"expect_column_values_to_reference_existing_entities", "unexpected_rows_expectation"}, result.describe()


def test_a_link_may_point_to_an_entity_only_when_no_agency_lists_it_any_more(spark, population):
    """Golden no longer holds a person whose every record has left the snapshots (each statement
    retracted); the links of the batches that listed them stay, and the gate accepts those only."""
    people = [(f"P{i}", make_ric("420106", BORN, i), {}) for i in range(2)]
    spark.createDataFrame(
        [("P9", "name", "gongan", "2026-02-01"), ("P9", "sex", "gongan", "2026-02-01"),
         ("P8", "name", "gongan", "2026-02-01"), ("P8", "sex", "gongan", None)],
        "entity_id string, field string, agency string, retracted_in string",
    ).createOrReplaceTempView("test_statements")
    links = [("r1", "P0"), ("r2", "P1"), ("r3", "P9")]  # P9: every statement retracted
    spark.createDataFrame(links, "record_ref string, entity_id string").createOrReplaceTempView("test_links")
    gone = run_gate(_candidate(spark, population, people), population, links_table="test_links",
                    statements_table="test_statements")
    assert gone.passed, gone.describe()
    # P8 still has a current statement: golden lost a person an agency lists.
    spark.createDataFrame([*links, ("r4", "P8")], "record_ref string, entity_id string").createOrReplaceTempView("test_links")
    lost = run_gate(_candidate(spark, population, people), population, links_table="test_links",
                    statements_table="test_statements")
    assert [(f.expectation, f.observed) for f in lost.critical] == [("unexpected_rows_expectation", "1")], lost.describe()


def test_register_values_must_come_from_the_register_of_the_credit_code(spark):
    from jichu.config import load_entity
    from jichu.demo.legal import make_uscc, org_code

    legal = load_entity("legal_entities", "entity")
    fields = [*legal.fields, *legal.references]  # the published record carries the references too
    schema = ", ".join(["entity_id string", *[f"{n} string" for n in fields], *[f"{n}_source string" for n in fields]])

    def row(eid, code, name_source):
        values = {n: None for n in fields} | {"uscc": code, "name": "宝亿科技有限公司", "legal_rep_person": "P1"}
        sources = {n: None for n in fields} | {"uscc": name_source, "name": name_source, "legal_rep_person": "population"}
        return (eid, *[values[n] for n in fields], *[sources[n] for n in fields])

    market, institution = make_uscc("91", "420106", org_code(1, False)), make_uscc("12", "420106", org_code(2, False))
    ok = run_gate(spark.createDataFrame([row("L1", market, "shichang"), row("L2", institution, "bianban")], schema), legal)
    assert ok.passed, ok.describe()
    wrong = run_gate(spark.createDataFrame([row("L1", market, "bianban")], schema), legal)
    assert {f.expectation for f in wrong.critical} == {"unexpected_rows_expectation"}, wrong.describe()
