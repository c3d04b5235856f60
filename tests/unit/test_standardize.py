from datetime import date

import pytest
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual
from stdnum.cn import ric

from jichu.core.standardize import assign_standard_fields, clean_name, clean_ric_value, parse_date, split_quarantine
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


def _staged(spark, rows):
    full = [(f"gongan:household:2026-01-01:{i}", "gongan", "household", "2026-01-01", "household.csv", i, *r, "2015-03-09")
            for i, r in enumerate(rows, start=1)]
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
    good, bad = split_quarantine(typed, "population")
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


def test_legal_entity_directory_row_standardizes_every_identifier_it_holds(spark):
    """统计's directory as delivered: a legacy organisation code in the credit-code column, the code
    again in its own column (read first), a 12-digit statistical division, a name with half-width
    brackets and a space."""
    from jichu.config import load_domain, load_extracts
    from jichu.demo.legal import make_uscc, org_code

    legal = load_domain("legal_entities")
    directory = {ex.key: ex for ex in load_extracts("legal_entities")}["tongji__directory"]
    org = org_code(99, modern=False)
    good = make_uscc("91", "420106", org_code(7, modern=True))
    columns = ["统一社会信用代码", "组织机构代码", "单位详细名称", "法定代表人（单位负责人）", "行业代码", "区划代码",
               "详细地址", "从业人员", "营业收入(千元)", "单位规模"]
    rows = [(org, f"{org[:8]}-{org[8]}", "宝亿科技(武汉) 有限公司", "王伟", "6513", "420106010000", "某路1号", "5", "", "微型"),
            (good, "", "宝丰商贸有限公司", "李娜", "F5212", "420106", "某路2号", "3", "10", "微型")]
    staged = spark.createDataFrame(
        [("tongji:directory:b:%d" % i, "tongji", "directory", "2026-01-01", "directory.csv", i, *r) for i, r in enumerate(rows)],
        ", ".join(["_record_ref string", "_agency string", "_extract string", "_batch string", "_file string", "_row int",
                   *[f"`{c}` string" for c in columns]]),
    )
    out = {r["record_ref"]: r for r in assign_standard_fields(staged, directory, legal).collect()}
    legacy, modern = out["tongji:directory:b:0"], out["tongji:directory:b:1"]
    assert (legacy["uscc"], legacy["orgcode"], legacy["county"]) == (None, org, "420106")
    assert [(e["field"], e["code"]) for e in legacy["errors"]] == [("uscc", "USCC_LEGACY")]
    assert legacy["name"] == "宝亿科技（武汉）有限公司" and legacy["name_candidate"] == "宝亿科技"
    assert legacy["original"]["name"] == "宝亿科技(武汉) 有限公司"
    assert (modern["uscc"], modern["orgcode"], modern["uscc_candidate"]) == (good, good[8:17], good)
    assert (modern["county"], modern["industry"], modern["errors"]) == ("420106", "5212", [])  # a 6-digit code read whole
