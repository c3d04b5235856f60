"""The Chinese-code expectations pass good data and count bad rows in real GX runs, and their
Spark-SQL check characters agree with python-stdnum (an independent implementation)."""

import copy
import random
from datetime import date, timedelta

import great_expectations as gx
import pytest
from stdnum.cn import ric, uscc

from jichu.demo.faults import make_ric
from jichu_expectations.identifiers import (
    USCC_ALPHABET,
    ExpectColumnValuesToBeInChineseCodeList,
    ExpectColumnValuesToBeValidChineseIdNumber,
    ExpectColumnValuesToBeValidCreditCode,
    ExpectColumnValuesToBeValidDivisionCode,
    ExpectColumnValuesToReferenceExistingEntities,
    ric_valid_sql,
    uscc_valid_sql,
)

# County codes python-stdnum knows for births from 1995 on.
COUNTIES = ["420106", "110105", "310115", "440305", "510104", "650102", "330106", "370102"]


@pytest.fixture(scope="module")
def validate(spark):
    """Run expectations over a Spark DataFrame through an ephemeral GX context; return the results."""
    context = gx.get_context(mode="ephemeral")
    batch_def = (
        context.data_sources.add_spark(name="cn")
        .add_dataframe_asset("frame")
        .add_batch_definition_whole_dataframe("whole")
    )
    runs = iter(range(10_000))

    def run(df, *expectations):
        n = next(runs)
        # A suite takes ownership of its expectations, so each run gets copies.
        suite = gx.ExpectationSuite(name=f"cn_{n}", expectations=[copy.copy(e) for e in expectations])
        suite = context.suites.add(suite)
        vd = gx.ValidationDefinition(name=f"cn_{n}", data=batch_def, suite=suite)
        vd = context.validation_definitions.add(vd)
        return vd.run(batch_parameters={"dataframe": df}, result_format="SUMMARY").results

    return run


def _one(spark, validate, expectation, values, dtype="string"):
    df = spark.createDataFrame([(v,) for v in values], f"{expectation.column} {dtype}")
    (result,) = validate(df, expectation)
    return result.success, result.result["observed_value"]


# --- 1. GB 11643 citizen ID number -------------------------------------------------------------------


def test_id_number_passes_valid_and_null(spark, validate):
    exp = ExpectColumnValuesToBeValidChineseIdNumber(column="id_number", severity="critical")
    values = [make_ric(c, date(1990, 5, 17), i) for i, c in enumerate(COUNTIES)]
    values += [None, make_ric("710101", date(1900, 1, 1), 1)]  # Taiwan's code; born on the earliest day
    assert _one(spark, validate, exp, values) == (True, 0)


def test_id_number_fails_checksum_province_and_date_range(spark, validate):
    exp = ExpectColumnValuesToBeValidChineseIdNumber(column="id_number", severity="critical")
    good = make_ric("420106", date(1990, 5, 17), 1)
    # Two days ahead: the gate's current_date() is Shanghai's, which is a day ahead of UTC every evening.
    future = date.today() + timedelta(days=2)
    bad = [
        good[:-1] + ("0" if good[-1] != "0" else "1"),  # wrong check character
        make_ric("990101", date(1990, 5, 17), 1),  # 99 is no province
        make_ric("010101", date(1990, 5, 17), 1),  # 01 is no province
        make_ric("420106", date(1899, 12, 31), 1),  # born before 1900
        make_ric("420106", future, 1),  # born in the future
        good[:10] + "0230" + good[14:17] + "0",  # 30 February
        good[:17],  # too short
        good.lower()[:-1] + "x",  # lowercase check letter
    ]
    assert exp.expectation_type == "expect_column_values_to_be_valid_chinese_id_number"
    assert _one(spark, validate, exp, [good, None, *bad]) == (False, len(bad))


def test_id_number_check_character_agrees_with_stdnum(spark):
    rng = random.Random(11)
    values = []
    for _ in range(200):
        born = date(1995, 1, 1) + timedelta(days=rng.randrange(9000))
        number = make_ric(rng.choice(COUNTIES), born, rng.randrange(1000))
        assert ric.is_valid(number)
        values.append(number)  # valid
        # Same shape, random check character: only the check character can be wrong.
        values.append(number[:-1] + rng.choice("0123456789X"))
    df = spark.createDataFrame([(v,) for v in values], "id string").selectExpr("id", f"{ric_valid_sql('id')} AS ok")
    rows = df.collect()
    assert len(rows) == 400 and sum(not r["ok"] for r in rows) > 100
    for row in rows:
        assert row["ok"] == ric.is_valid(row["id"]), row["id"]


# --- 2. GB/T 2260 county-level division code ---------------------------------------------------------


def test_division_code_passes_counties_and_fails_others(spark, validate):
    exp = ExpectColumnValuesToBeValidDivisionCode(column="address_code", severity="critical")
    assert exp.expectation_type == "expect_column_values_to_be_valid_division_code"
    assert _one(spark, validate, exp, [*COUNTIES, "710101", "820001", None]) == (True, 0)
    bad = ["420000", "420100", "990101", "012345", "42010", "4201061", "42A106", " 420106"]
    assert _one(spark, validate, exp, ["420106", *bad]) == (False, len(bad))


def test_division_code_restricted_to_a_province(spark, validate):
    exp = ExpectColumnValuesToBeValidDivisionCode(column="address_code", province="42", severity="critical")
    assert _one(spark, validate, exp, ["420106", "421002", None]) == (True, 0)
    assert _one(spark, validate, exp, ["420106", "110105", "440305"]) == (False, 2)
    with pytest.raises(ValueError):
        ExpectColumnValuesToBeValidDivisionCode(column="address_code", province="99")


# --- 3. national-standard code lists ----------------------------------------------------------------


def test_code_list_names_the_standard_and_counts_unlisted_codes(spark, validate):
    exp = ExpectColumnValuesToBeInChineseCodeList(
        column="sex", code_list="GB/T 2261.1", codes=["0", "1", "2", "9"], severity="critical"
    )
    assert exp.expectation_type == "expect_column_values_to_be_in_chinese_code_list"
    assert exp.description == "sex: codes of GB/T 2261.1"
    assert _one(spark, validate, exp, ["1", "2", "0", "9", None]) == (True, 0)
    assert _one(spark, validate, exp, ["1", "M", "3", "", "2"]) == (False, 3)


def test_code_list_reads_numeric_columns_as_codes(spark, validate):
    exp = ExpectColumnValuesToBeInChineseCodeList(column="sex", code_list="GB/T 2261.1", codes=["1", "2"])
    assert _one(spark, validate, exp, [1, 2, None], dtype="int") == (True, 0)
    assert _one(spark, validate, exp, [1, 5], dtype="int") == (False, 1)


# --- 4. GB 32100 unified social credit code ---------------------------------------------------------


def _uscc(rng, authority=None):
    body = (
        (authority or rng.choice("123456789"))
        + rng.choice("1239")
        + rng.choice(COUNTIES)
        + "".join(rng.choice(USCC_ALPHABET) for _ in range(9))
    )
    return body + uscc.calc_check_digit(body)


def test_credit_code_passes_valid_and_fails_bad(spark, validate):
    rng = random.Random(3)
    exp = ExpectColumnValuesToBeValidCreditCode(column="credit_code", severity="critical")
    assert exp.expectation_type == "expect_column_values_to_be_valid_credit_code"
    good = ["91110000600037341L", *(_uscc(rng) for _ in range(5)), *(_uscc(rng, a) for a in "ANY"), None]
    assert _one(spark, validate, exp, good) == (True, 0)
    sample = "91110000600037341L"
    bad = [
        sample[:-1] + "M",  # wrong check character
        "B" + sample[1:],  # B is no registration authority
        "0" + sample[1:],  # neither is 0
        sample[:10] + "I" + sample[11:],  # I is not in the charset
        sample[:10] + "O" + sample[11:],
        sample[:3] + "A" + sample[4:],  # division code must be digits
        sample.lower(),
        sample[:-1],  # 17 characters
    ]
    assert _one(spark, validate, exp, [sample, *bad]) == (False, len(bad))


def test_credit_code_check_character_agrees_with_stdnum(spark):
    rng = random.Random(5)
    values = []
    for _ in range(200):
        code = _uscc(rng)
        assert uscc.is_valid(code)
        values.append(code)
        values.append(code[:-1] + rng.choice(USCC_ALPHABET))  # only the check character can be wrong
    df = spark.createDataFrame([(v,) for v in values], "c string").selectExpr("c", f"{uscc_valid_sql('c')} AS ok")
    rows = df.collect()
    assert len(rows) == 400 and sum(not r["ok"] for r in rows) > 100
    for row in rows:
        assert row["ok"] == uscc.is_valid(row["c"]), row["c"]


# --- 5. referential integrity -----------------------------------------------------------------------


def test_reference_to_existing_entities(spark, validate):
    spark.createDataFrame([("P1",), ("P2",), ("P3",), (None,)], "entity_id string").createOrReplaceTempView(
        "test_persons"
    )
    exp = ExpectColumnValuesToReferenceExistingEntities(
        column="person_id", table="test_persons", table_column="entity_id", severity="critical"
    )
    assert exp.expectation_type == "expect_column_values_to_reference_existing_entities"
    links = "link_id string, person_id string"
    ok = spark.createDataFrame([("L1", "P1"), ("L2", "P3"), ("L3", None), ("L4", "P1")], links)
    (result,) = validate(ok, exp)
    assert result.success and result.result["observed_value"] == 0
    dangling = spark.createDataFrame([("L1", "P1"), ("L2", "P9"), ("L3", "P8"), ("L4", None)], links)
    (result,) = validate(dangling, exp)
    assert not result.success and result.result["observed_value"] == 2


# --- all five in one suite, through a file-backed checkpoint like the gate's -------------------------


def test_all_rules_in_a_checkpoint_suite(spark, tmp_path):
    from great_expectations.checkpoint import UpdateDataDocsAction

    spark.createDataFrame([("P1",), ("P2",)], "entity_id string").createOrReplaceTempView("test_persons_cp")
    good_id = make_ric("420106", date(1990, 5, 17), 1)
    schema = "entity_id string, id_number string, address_code string, sex string, credit_code string"
    rows = [
        ("P1", good_id, "420106", "1", "91110000600037341L"),
        ("P2", good_id[:-1] + ("0" if good_id[-1] != "0" else "1"), "420100", "7", "91110000600037341M"),
        ("P9", None, None, None, None),
    ]
    suite = gx.ExpectationSuite(
        name="cn_all",
        expectations=[
            ExpectColumnValuesToBeValidChineseIdNumber(column="id_number", severity="critical"),
            ExpectColumnValuesToBeValidDivisionCode(column="address_code", province="42", severity="critical"),
            ExpectColumnValuesToBeInChineseCodeList(
                column="sex", code_list="GB/T 2261.1", codes=["0", "1", "2", "9"], severity="warning"
            ),
            ExpectColumnValuesToBeValidCreditCode(column="credit_code", severity="critical"),
            ExpectColumnValuesToReferenceExistingEntities(
                column="entity_id", table="test_persons_cp", table_column="entity_id", severity="critical"
            ),
        ],
    )
    context = gx.get_context(mode="file", project_root_dir=str(tmp_path))
    batch_def = (
        context.data_sources.add_or_update_spark(name="cn")
        .add_dataframe_asset("links")
        .add_batch_definition_whole_dataframe("candidate")
    )
    suite = context.suites.add_or_update(suite)  # saved to JSON and read back
    vd = context.validation_definitions.add_or_update(
        gx.ValidationDefinition(name="cn_all", data=batch_def, suite=suite)
    )
    checkpoint = context.checkpoints.add_or_update(
        gx.Checkpoint(
            name="gate__cn_all",
            validation_definitions=[vd],
            actions=[UpdateDataDocsAction(name="data_docs")],
            result_format={"result_format": "SUMMARY"},
        )
    )
    run = checkpoint.run(batch_parameters={"dataframe": spark.createDataFrame(rows, schema)})
    (vr,) = run.run_results.values()
    got = {
        r.expectation_config.type: (
            r.success,
            r.result["observed_value"],
            getattr(r.expectation_config.severity, "value", r.expectation_config.severity),
        )
        for r in vr.results
    }
    assert got == {
        "expect_column_values_to_be_valid_chinese_id_number": (False, 1, "critical"),
        "expect_column_values_to_be_valid_division_code": (False, 1, "critical"),
        "expect_column_values_to_be_in_chinese_code_list": (False, 1, "warning"),
        "expect_column_values_to_be_valid_credit_code": (False, 1, "critical"),
        "expect_column_values_to_reference_existing_entities": (False, 1, "critical"),
    }
    # The first row alone meets every rule.
    run = checkpoint.run(batch_parameters={"dataframe": spark.createDataFrame(rows[:1], schema)})
    assert run.success
    assert {r.expectation_config.kwargs["column"] for r in next(iter(run.run_results.values())).results} == {
        "id_number", "address_code", "sex", "credit_code", "entity_id"
    }
