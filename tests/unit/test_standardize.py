from datetime import date

import pytest
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual
from stdnum.cn import ric

from jichu.core.standardize import assign_standard_fields, formula_like, parse_date, split_quarantine
from jichu.domains.population.identity import clean_name, clean_ric_value
from jichu.demo.faults import make_ric, spoil_legacy15

VALID = make_ric("420106", date(1990, 5, 17), 123)


def test_clean_ric_value_accepts_valid_and_names_each_failure():
    assert ric.is_valid(VALID)
    assert clean_ric_value(VALID) == (VALID, None, VALID)
    assert clean_ric_value(VALID.lower()) == (VALID, None, VALID)  # an 'x' check character is upper-cased
    full_width = VALID.translate(str.maketrans("0123456789X", "０１２３４５６７８９Ｘ"))
    assert clean_ric_value(full_width) == (VALID, None, VALID)
    wrong = VALID[:-1] + ("0" if VALID[-1] != "0" else "1")
    assert clean_ric_value(wrong) == (None, "ID_CHECKSUM", wrong)  # the digits stay available to linkage
    assert clean_ric_value(VALID[:17])[:2] == (None, "ID_LENGTH")
    assert clean_ric_value("42010619900517A23" + VALID[-1])[:2] == (None, "ID_FORMAT")
    assert clean_ric_value("  ") == (None, None, None)
    assert clean_ric_value(VALID[:6] + "19901317123" + VALID[-1])[:2] == (None, "ID_BIRTH_DATE")
    # 420115 江夏区 exists only from 1995: a 1990 birth cannot carry it; a 1996 birth can.
    assert clean_ric_value(make_ric("420115", date(1990, 5, 17), 123))[:2] == (None, "ID_ADDRESS_CODE")
    later = make_ric("420115", date(1996, 5, 17), 123)
    assert clean_ric_value(later)[:2] == (later, None)
    # 420121 汉阳县 was retired in 1992: a number issued in 1988 keeps it for life.
    retired = make_ric("420121", date(1988, 3, 1), 7)
    assert clean_ric_value(retired)[:2] == (retired, None)
    # 420199 lies in 湖北省 but names no county; stdnum's place lookup fails on it with a KeyError.
    assert clean_ric_value(make_ric("420199", date(1990, 5, 17), 123))[:2] == (None, "ID_ADDRESS_CODE")
    assert clean_ric_value(make_ric("990106", date(1990, 5, 17), 123))[:2] == (None, "ID_ADDRESS_CODE")


def test_legacy_15_digit_numbers_are_upgraded_to_18():
    legacy = spoil_legacy15(VALID, None)
    assert len(legacy) == 15
    assert clean_ric_value(legacy) == (VALID, None, VALID)


@pytest.mark.parametrize("delivered, expected", [
    ("王 小明", "王小明"),
    (" 王　小明 ", "王小明"),            # full-width space
    ("張偉", "张伟"),                    # traditional characters
    ("買買提·艾力", "买买提·艾力"),
    ("买买提・艾力", "买买提·艾力"),      # katakana middle dot
    ("买买提•艾力", "买买提·艾力"),       # bullet
    ("买买提.艾力", "买买提·艾力"),
    ("买买提 艾力", "买买提·艾力"),       # a lost dot in a long two-part name
    ("阿依古丽·吐尔逊", "阿依古丽·吐尔逊"),
])
def test_clean_name(spark, delivered, expected):
    assert spark.range(1).select(clean_name(F.lit(delivered))).first()[0] == expected


@pytest.mark.parametrize("text", ["1990-05-17", "1990/5/17", "19900517", "1990年5月17日", "1990.05.17", "1990/05/17"])
def test_parse_date_reads_every_layout_the_agencies_use(spark, text):
    assert spark.range(1).select(parse_date(F.lit(text), [])).first()[0] == date(1990, 5, 17)


STAGED = (
    "_record_ref string, _agency string, _extract string, _batch string, _file string, _row long, "
    "`公民身份号码` string, `姓名` string, `性别` string, `民族` string, `出生日期` string, `户籍地行政区划代码` string, "
    "`登记日期` string"
)


def _staged(spark, rows, registered=None):
    """公安 household rows as staged; 登记日期 (the date the facts refer to) is 2015-03-09 unless given per row."""
    registered = registered or ["2015-03-09"] * len(rows)
    full = [(f"gongan:household:2026-01-01:{i}", "gongan", "household", "2026-01-01", "household.csv", i, *r, d)
            for i, (r, d) in enumerate(zip(rows, registered, strict=True), start=1)]
    return spark.createDataFrame(full, STAGED)


def test_standardize_types_values_reports_issues_and_quarantines_required(spark, population, extracts):
    bad_check = VALID[:-1] + ("0" if VALID[-1] != "0" else "1")
    staged = _staged(spark, [
        (VALID, " 王　小明 ", "男", "汉族", "19900517", "420106"),   # full-width space inside the name
        (bad_check, "李四", "女", "土家", "19900517", "420106"),
        (VALID, "张三", "未知的性别X", "15", "1990-13-45", "4201"),
        (VALID, None, "女", "01", "19900517", "420106"),              # the name is required
    ])
    typed = assign_standard_fields(staged, extracts["gongan__household"], population)
    good, bad = split_quarantine(typed, population)
    assertDataFrameEqual(
        good.select("row", "id_number", "name", "sex", "ethnicity", "birth_date", "address_code"),
        spark.createDataFrame([
            (1, VALID, "王小明", "1", "01", date(1990, 5, 17), "420106"),
            (2, None, "李四", "2", "15", date(1990, 5, 17), "420106"),
            (3, VALID, "张三", None, "15", None, None),
        ], "row long, id_number string, name string, sex string, ethnicity string, birth_date date, address_code string"),
    )
    rows = {r["row"]: r for r in good.collect()}
    assert rows[1]["original"]["name"] == " 王　小明 "
    assert rows[1]["observed_at"] == date(2015, 3, 9)  # 公安's 登记日期: the date the facts refer to
    assert rows[2]["id_number_candidate"] == bad_check
    issues = {r["row"]: [(e["field"], e["code"]) for e in r["issues"]] for r in good.collect()}
    assert issues == {
        1: [], 2: [("id_number", "ID_CHECKSUM")],
        3: [("sex", "CODE_UNMAPPED"), ("birth_date", "DATE_INVALID"), ("address_code", "DIVISION_INVALID")],
    }
    assert [(r["row"], r["reason"]) for r in bad.collect()] == [(4, "REQUIRED_MISSING")]
    assert good.count() + bad.count() == staged.count()


def _directory(spark, rows):
    """统计's directory rows as staged, standardized: record_ref -> record."""
    from jichu.config import load_entity, load_extracts

    legal = load_entity("legal_entities", "entity")
    directory = {ex.key: ex for ex in load_extracts("legal_entities")}["tongji__directory"]
    columns = ["统一社会信用代码", "组织机构代码", "单位详细名称", "法定代表人（单位负责人）", "行业代码", "区划代码",
               "详细地址", "从业人员", "营业收入(千元)", "单位规模"]
    staged = spark.createDataFrame(
        [("tongji:directory:b:%d" % i, "tongji", "directory", "2026-01-01", "directory.csv", i, *r) for i, r in enumerate(rows)],
        ", ".join(["_record_ref string", "_agency string", "_extract string", "_batch string", "_file string", "_row int",
                   *[f"`{c}` string" for c in columns]]),
    )
    return {r["record_ref"]: r for r in assign_standard_fields(staged, directory, legal).collect()}


def test_legal_entity_directory_row_standardizes_every_identifier_it_holds(spark):
    """统计's directory as delivered: a legacy organisation code in the credit-code column, the code
    again in its own column (read first), a 12-digit statistical division, a name with half-width
    brackets and a space."""
    from jichu.demo.legal import make_uscc, org_code

    org = org_code(99, modern=False)
    good = make_uscc("91", "420106", org_code(7, modern=True))
    out = _directory(spark, [
        (org, f"{org[:8]}-{org[8]}", "宝亿科技(武汉) 有限公司", "王伟", "6513", "420106010000", "某路1号", "5", "", "微型"),
        (good, "", "宝丰商贸有限公司", "李娜", "F5212", "420106", "某路2号", "3", "10", "微型"),
    ])
    legacy, modern = out["tongji:directory:b:0"], out["tongji:directory:b:1"]
    assert (legacy["uscc"], legacy["orgcode"], legacy["county"]) == (None, org, "420106")
    assert [(e["field"], e["code"]) for e in legacy["errors"]] == [("uscc", "USCC_LEGACY")]
    assert legacy["name"] == "宝亿科技（武汉）有限公司" and legacy["name_candidate"] == "宝亿科技"
    assert legacy["original"]["name"] == "宝亿科技(武汉) 有限公司"
    assert (modern["uscc"], modern["orgcode"], modern["uscc_candidate"]) == (good, good[8:17], good)
    assert (modern["county"], modern["industry"], modern["errors"]) == ("420106", "5212", [])  # a 6-digit code read whole


def test_a_date_that_does_not_parse_is_an_issue_never_the_batch_date(spark, population, extracts):
    """A last field cut short (登记日期 2012-0) is a DATE_INVALID issue and null; only a date the row does not
    deliver at all is the batch's date."""
    row = (VALID, "王小明", "男", "汉族", "19900517", "420106")
    staged = _staged(spark, [row, row, (*row[:4], "1990-0", row[5])], registered=["2012-0", "", "2012-03-09"])
    household = extracts["gongan__household"]
    good, bad = split_quarantine(assign_standard_fields(staged, household, population), population)
    out = {r["row"]: r for r in good.collect()}
    assert [out[i]["observed_at"] for i in (1, 2, 3)] == [None, date(2026, 1, 1), date(2012, 3, 9)]
    assert out[3]["birth_date"] is None
    assert {i: [(e["field"], e["column"], e["code"]) for e in out[i]["issues"]] for i in out} == {
        1: [("observed_at", "登记日期", "DATE_INVALID")], 2: [], 3: [("birth_date", "出生日期", "DATE_INVALID")],
    }
    assert bad.count() == 0
    # Where the adapter requires the date, a row that fails it or leaves it empty goes to quarantine.
    strict = household.model_copy(update={"observed_at": household.observed_at.model_copy(update={"required": True})})
    _, bad = split_quarantine(assign_standard_fields(staged, strict, population), population)
    assert [(r["row"], r["reason"]) for r in bad.orderBy("row").collect()] == [(1, "DATE_INVALID"), (2, "REQUIRED_MISSING")]


@pytest.mark.parametrize("text, expected", [
    ("=HYPERLINK(\"http://x\",\"苏慧\")", True), ("+86 27 1234", True), ("-1+1", True), ("@SUM(A1)", True),
    ("-12.5", False), ("+3", False), ("苏慧", False), ("1=1", False), ("武汉市-江汉区", False), (None, None),
])
def test_formula_like_is_a_leading_formula_character_on_anything_but_a_number(spark, text, expected):
    assert spark.range(1).select(formula_like(F.lit(text).cast("string"))).first()[0] is expected


def test_text_a_spreadsheet_would_run_is_an_issue_and_null(spark, population, extracts):
    """Names, organisation names and free text starting like a formula (after cleaning: full-width signs
    and leading white space count) are FORMULA_LIKE and null, so no table publishes them; a required one
    quarantines its row. A signed number in a numeric text field is a number, not a formula."""
    staged = _staged(spark, [(VALID, "=HYPERLINK(\"http://x\",\"苏慧\")", "男", "汉族", "19900517", "420106")])
    _, bad = split_quarantine(assign_standard_fields(staged, extracts["gongan__household"], population), population)
    assert [(r["reason"], [(e["field"], e["column"]) for e in r["errors"]]) for r in bad.collect()] == [
        ("FORMULA_LIKE", [("name", "姓名")])]

    out = _directory(spark, [
        ("", "", "宝丰商贸有限公司", "\t@SUM(A1)", "", "420106", "=cmd|' /C calc'!A0", "-3", "-12.5", "微型"),
        ("", "", "＋宝丰商贸有限公司", "李娜", "", "420106", "某路2号", "3", "10", "微型"),
    ])
    first, second = out["tongji:directory:b:0"], out["tongji:directory:b:1"]
    assert (first["legal_rep_name"], first["address"], first["employees"], first["revenue"]) == (None, None, "-3", "-12.5")
    assert [(e["field"], e["code"]) for e in first["errors"]] == [
        ("legal_rep_name", "FORMULA_LIKE"), ("address", "FORMULA_LIKE")]
    assert (second["name"], second["name_candidate"]) == (None, None)
    assert [(e["field"], e["code"], e["required"]) for e in second["errors"]] == [("name", "FORMULA_LIKE", True)]
