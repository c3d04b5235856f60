from datetime import date

from pyspark.testing import assertDataFrameEqual
from stdnum.cn import ric

from jichu.core.standardize import assign_standard_fields, clean_ric_value, split_quarantine
from jichu.demo.faults import make_ric

VALID = make_ric("420106", date(1990, 5, 17), 123)


def test_clean_ric_value_accepts_valid_and_names_each_failure():
    assert ric.is_valid(VALID)
    assert clean_ric_value(VALID) == (VALID, None)
    assert clean_ric_value(VALID.lower()) == (VALID, None)  # an 'x' check character is upper-cased
    wrong = VALID[:-1] + ("0" if VALID[-1] != "0" else "1")
    assert clean_ric_value(wrong) == (None, "ID_CHECKSUM")
    assert clean_ric_value(VALID[:17]) == (None, "ID_LENGTH")
    assert clean_ric_value("42010619900517A23" + VALID[-1]) == (None, "ID_FORMAT")
    assert clean_ric_value("  ") == (None, None)
    # 420115 江夏区 exists only from 1995: a 1990 birth cannot carry it.
    stale = make_ric("420115", date(1990, 5, 17), 123)
    assert clean_ric_value(stale) == (None, "ID_BIRTH_DATE")


STAGED = (
    "_record_ref string, _agency string, _extract string, _batch string, _file string, _row long, "
    "`公民身份号码` string, `姓名` string, `性别` string, `出生日期` string, `户籍地行政区划代码` string"
)


def _staged(spark, rows):
    full = [(f"gongan:household:2026-01-01:{i}", "gongan", "household", "2026-01-01", "household.csv", i, *r)
            for i, r in enumerate(rows, start=1)]
    return spark.createDataFrame(full, STAGED)


def test_standardize_types_values_and_quarantines_with_reasons(spark, population, extracts):
    bad_check = VALID[:-1] + ("0" if VALID[-1] != "0" else "1")
    staged = _staged(spark, [
        (VALID, " 王　小明 ", "男", "19900517", "420106"),   # full-width space inside the name
        (bad_check, "李四", "女", "19900517", "420106"),
        (VALID, "张三", "未知", "1990-13-45", "4201"),
        (None, "赵六", "女", "19900517", "420106"),
    ])
    typed = assign_standard_fields(staged, extracts["gongan__household"], population)
    good, bad = split_quarantine(typed, "population")
    assertDataFrameEqual(
        good.select("row", "id_number", "name", "sex", "birth_date", "address_code"),
        spark.createDataFrame([(1, VALID, "王小明", "1", date(1990, 5, 17), "420106")],
                              "row long, id_number string, name string, sex string, birth_date date, address_code string"),
    )
    assert good.first()["original"]["name"] == " 王　小明 "
    reasons = {r["row"]: [(e["field"], e["code"]) for e in r["errors"]] for r in bad.collect()}
    assert reasons == {
        2: [("id_number", "ID_CHECKSUM")],
        3: [("sex", "CODE_UNMAPPED"), ("birth_date", "DATE_INVALID"), ("address_code", "DIVISION_INVALID")],
        4: [("id_number", "REQUIRED_MISSING")],
    }
    assert {r["reason"] for r in bad.collect()} == {"ID_CHECKSUM", "CODE_UNMAPPED", "REQUIRED_MISSING"}
    assert good.count() + bad.count() == staged.count()
