"""A real Great Expectations checkpoint: the suite built from conf/ passes good data and names failures."""

from datetime import date
from pathlib import Path

from jichu.core.gate import run_gate
from jichu.demo.faults import make_ric

COLUMNS = ("entity_id string, id_number string, name string, sex string, birth_date date, address_code string, "
           "id_number_source string, name_source string, sex_source string, birth_date_source string, address_code_source string")


def _row(eid, idn, source="gongan"):
    return (eid, idn, "王伟", "1", date(1990, 5, 17), "420106", source, source, source, source, source)


def test_gate_passes_a_clean_candidate_and_writes_data_docs(spark, population):
    df = spark.createDataFrame([_row(f"P{i}", make_ric("420106", date(1990, 5, 17), i)) for i in range(5)], COLUMNS)
    result = run_gate(df, population)
    assert result.passed, result.describe()
    assert result.evaluated >= 10
    assert Path(result.data_docs).exists()


def test_gate_fails_on_bad_id_duplicate_entity_and_wrong_provenance(spark, population):
    good = make_ric("420106", date(1990, 5, 17), 1)
    bad = good[:-1] + ("0" if good[-1] != "0" else "1")
    df = spark.createDataFrame([_row("P1", good), _row("P1", bad, source="weijian")], COLUMNS)
    result = run_gate(df, population)
    assert not result.passed
    failed = {(f.expectation, f.column) for f in result.critical}
    assert ("expect_column_values_to_be_valid_chinese_id_number", "id_number") in failed
    assert ("expect_column_values_to_be_unique", "entity_id") in failed
    assert ("expect_column_values_to_be_in_set", "name_source") in failed
