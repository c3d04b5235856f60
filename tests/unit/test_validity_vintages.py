"""Validity given by the source, and vintages, through the real standardize, statements, authority and
verify code (real Spark; Delta tables in the test's metastore where a table is queried).

Places: 民政's division snapshot states each code's 启用/停用 years. Code 429901 (甲区) was in use from
1983 until 2014, when its successor 429902 (乙区) took over; a first snapshot still lists 429901 as in use,
a later one retires it.
Figures: 统计 (the source of record) releases a figure preliminary, then final; 财政 reports its own
releases, which are checked like for like.
"""

from __future__ import annotations

from datetime import date

import pytest
from pyspark.sql import functions as F

from jichu.config import EntityType, Extract
from jichu.core import tables
from jichu.core.authority import (
    GOLDEN_COLUMNS, HISTORY_COLUMNS, assign_history, authority_rules, select_golden,
)
from jichu.core.standardize import CODE_UNMAPPED, DATE_INVALID, assign_standard_fields, split_quarantine
from jichu.core.statements import STATEMENT_SCHEMA, new_statements, unpivot_statements
from jichu.core.verify import value_mismatches

B1, B2 = "2026-01-01", "2026-02-01"

PLACES = EntityType.model_validate({
    "domain": "test_places", "label": "区划", "entity": "division", "id_prefix": "D", "keys": ["code"],
    "fields": {"code": {"label": "区划代码", "authority": "minzheng"}, "name": {"label": "名称", "authority": "minzheng"}},
})
DIVISIONS = Extract.model_validate({
    "agency": "minzheng", "extract": "division", "domain": "test_places", "entity": "division", "kind": "snapshot", "record_key": "区划代码",
    "file": {"name": "division.csv"},
    "fields": {"code": {"column": "区划代码"}, "name": {"column": "名称"}},
    "valid_from": {"column": "启用年份"}, "valid_to": {"column": "停用年份"},
})
FIGURES = EntityType.model_validate({
    "domain": "test_figures", "label": "指标", "entity": "observation", "id_prefix": "F",
    "keys": [["indicator", "area", "period"]],
    "fields": {
        "indicator": {"label": "指标代码", "authority": "tongji"}, "area": {"label": "地区", "authority": "tongji"},
        "period": {"label": "时期", "authority": "tongji"}, "value": {"label": "数值", "authority": "tongji"},
    },
})


def _figures_extract(agency: str, codes: dict[str, str]) -> Extract:
    return Extract.model_validate({
        "agency": agency, "extract": "figure", "domain": "test_figures", "entity": "observation", "kind": "snapshot", "record_key": "编号",
        "file": {"name": "figure.csv"},
        "fields": {"indicator": {"column": "指标"}, "area": {"column": "地区"}, "period": {"column": "时期"},
                   "value": {"column": "数值"}},
        "vintage": {"column": "发布状态", "codes": codes},
    })


TONGJI = _figures_extract("tongji", {"1": "preliminary", "2": "revised", "3": "final"})
CAIZHENG = _figures_extract("caizheng", {"P": "preliminary", "R": "revised", "F": "final"})
FIGURE = ["编号", "指标", "地区", "时期", "数值", "发布状态"]


def _records(spark, extract: Extract, domain: EntityType, batch: str, columns: list[str], rows: list[list]):
    """The standardized records of one delivery (standardized and quarantined frames)."""
    lineage = ["_record_ref", "_agency", "_extract", "_batch", "_file", "_row"]
    staged = spark.createDataFrame(
        [[f"{extract.key}:{batch}:{i}", extract.agency, extract.extract, batch, extract.file.name, i, *row]
         for i, row in enumerate(rows)],
        ", ".join([*(f"{c} string" for c in lineage[:-1]), "_row int", *(f"`{c}` string" for c in columns)]),
    )
    return split_quarantine(assign_standard_fields(staged, extract, domain), domain)


def _said(spark, extract, domain, batch, columns, rows, earlier=None):
    """What the delivery says anew: its records linked (the entity is the key; the record is the
    agency's key column) and unpivoted, against the `earlier` stored statements."""
    good, _ = _records(spark, extract, domain, batch, columns, rows)
    key = F.concat_ws("|", *[F.col(k) for k in (domain.keys[0] if isinstance(domain.keys[0], list) else domain.keys)])
    linked = good.withColumns({"entity_id": F.concat(F.lit(domain.id_prefix), key),
                               "record_id": F.concat_ws(":", "agency", "extract", key)})
    earlier = earlier if earlier is not None else spark.createDataFrame([], STATEMENT_SCHEMA)
    return new_statements(unpivot_statements(linked, domain), earlier, domain.fields).localCheckpoint()


@pytest.fixture
def store(spark):
    """`store(extract, domain, batch, columns, rows)`: a delivery's new statements, written as the
    resolve stage writes them into a statements table of the test's own (returned by `store.table`)."""
    table = "statements.test_validity_vintages"
    spark.sql(f"DROP TABLE IF EXISTS {table}")

    def deliver(extract, domain, batch, columns, rows):
        earlier = tables.read_or_empty(spark, table, STATEMENT_SCHEMA).where(F.col("batch") < batch)
        said = _said(spark, extract, domain, batch, columns, rows, earlier=earlier)
        tables.replace_slice(said, table, {"batch": batch})
        return tables.read_slice(spark, table, {"batch": batch})

    deliver.table = table
    yield deliver
    spark.sql(f"DROP TABLE IF EXISTS {table}")


DIVISION = ["区划代码", "名称", "启用年份", "停用年份"]


def test_source_validity_gives_the_history_intervals_and_the_valid_code_on_a_date(spark):
    said = _said(spark, DIVISIONS, PLACES, B1, DIVISION, [["429901", "甲区", "1983", "2014"], ["429902", "乙区", "2014", ""]])
    history = assign_history(said, authority_rules(spark, PLACES)).select(*HISTORY_COLUMNS)
    rows = {(r["entity_id"], r["field"]): (r["value"], r["valid_from"], r["valid_to"]) for r in history.collect()}
    assert rows == {
        ("D429901", "code"): ("429901", date(1983, 1, 1), date(2014, 1, 1)),
        ("D429901", "name"): ("甲区", date(1983, 1, 1), date(2014, 1, 1)),
        ("D429902", "code"): ("429902", date(2014, 1, 1), None),
        ("D429902", "name"): ("乙区", date(2014, 1, 1), None),
    }
    table = "golden.test_places__division_history"
    tables.overwrite(history, table)
    try:
        def valid_on(day: str) -> list[str]:
            return [r["value"] for r in spark.sql(
                f"SELECT value FROM {table} WHERE field = 'code' "
                f"AND valid_from <= DATE'{day}' AND (valid_to IS NULL OR valid_to > DATE'{day}')").collect()]

        assert valid_on("2013-06-01") == ["429901"]
        assert valid_on("2013-12-31") == ["429901"]
        assert valid_on("2014-01-01") == ["429902"]
        assert valid_on("2026-06-01") == ["429902"]
        assert valid_on("1982-06-01") == []
    finally:
        spark.sql(f"DROP TABLE IF EXISTS {table}")


def test_a_code_the_source_retires_later_is_a_new_statement_and_ends_its_interval(spark, store):
    first = store(DIVISIONS, PLACES, B1, DIVISION, [["429901", "甲区", "1983", ""]])
    assert {r["valid_to"] for r in first.collect()} == {None}
    retired = [["429901", "甲区", "1983", "2014"], ["429902", "乙区", "2014", ""]]
    second = store(DIVISIONS, PLACES, B2, DIVISION, retired)
    # 429901 says nothing new but its end: still news; 429902 is new.
    assert sorted((r["entity_id"], r["field"], r["valid_to"]) for r in second.collect()) == [
        ("D429901", "code", date(2014, 1, 1)), ("D429901", "name", date(2014, 1, 1)),
        ("D429902", "code", None), ("D429902", "name", None),
    ]
    assert store(DIVISIONS, PLACES, "2026-03-01", DIVISION, retired).isEmpty()  # the same validity again: a repeat
    history = assign_history(spark.table(store.table), authority_rules(spark, PLACES)).where("field = 'name'")
    assert sorted((r["entity_id"], r["valid_from"], r["valid_to"], r["batch"]) for r in history.collect()) == [
        ("D429901", date(1983, 1, 1), date(2014, 1, 1), B1),  # one interval, ended where the source says
        ("D429902", date(2014, 1, 1), None, B2),
    ]


def test_without_source_validity_history_is_observation_order_as_before(spark, store):
    plain = DIVISIONS.model_copy(update={"valid_from": None, "valid_to": None})
    store(plain, PLACES, B1, DIVISION, [["429901", "甲区", "", ""]])
    store(plain, PLACES, B2, DIVISION, [["429901", "甲区新", "", ""]])
    history = assign_history(spark.table(store.table), authority_rules(spark, PLACES)).where("field = 'name'")
    assert sorted((r["value"], r["valid_from"], r["valid_to"], r["vintage"]) for r in history.collect()) == [
        ("甲区", date(2026, 1, 1), date(2026, 2, 1), None), ("甲区新", date(2026, 2, 1), None, None),
    ]


@pytest.mark.parametrize("delivered, expected, issue", [
    ("1983", date(1983, 1, 1), None),          # a bare year: its first day
    ("1983年", date(1983, 1, 1), None),
    ("1983-07-01", date(1983, 7, 1), None),
    ("19830701", date(1983, 7, 1), None),
    ("198x", None, DATE_INVALID),              # an issue, and the row still goes through
    ("", None, None),
])
def test_a_validity_date_reads_a_bare_year(spark, delivered, expected, issue):
    good, bad = _records(spark, DIVISIONS, PLACES, B1, DIVISION, [["429901", "甲区", delivered, ""]])
    assert bad.isEmpty()
    row = good.first()
    assert row["valid_from"] == expected and row["valid_to"] is None
    assert [(i["field"], i["code"]) for i in row["issues"]] == ([("valid_from", issue)] if issue else [])


def _figure(ref: str, area: str, value: str, status: str) -> list[str]:
    return [ref, "GDP", area, "2025", value, status]


def test_preliminary_then_final_are_both_kept_and_golden_is_the_final(spark, store):
    store(TONGJI, FIGURES, B1, FIGURE, [_figure("T1", "420100", "100", "1")])
    # The final release equals the preliminary one: still stored, as another release.
    store(TONGJI, FIGURES, B2, FIGURE, [_figure("T1", "420100", "100", "3")])
    stored = spark.table(store.table)
    values = stored.where("field = 'value'").orderBy("batch").collect()
    assert [(r["value"], r["vintage"], r["batch"]) for r in values] == [("100", "preliminary", B1), ("100", "final", B2)]
    rules = authority_rules(spark, FIGURES)
    golden = select_golden(stored, rules).select(*GOLDEN_COLUMNS).where("field = 'value'").first()
    assert (golden["value"], golden["vintage"], golden["batch"]) == ("100", "final", B2)
    history = assign_history(stored, rules).where("field = 'value'").orderBy("valid_from").collect()
    assert [(r["vintage"], r["valid_from"], r["valid_to"]) for r in history] == [
        ("preliminary", date(2026, 1, 1), date(2026, 2, 1)), ("final", date(2026, 2, 1), None),
    ]


def test_an_agencys_release_is_compared_with_the_authoritys_release_of_the_same_vintage(spark, store):
    # 统计: area 420100 preliminary 100, then final 105; 420200 preliminary 50, then final 55;
    # 420300 final 200 only.
    store(TONGJI, FIGURES, B1, FIGURE, [_figure("A", "420100", "100", "1"), _figure("B", "420200", "50", "1")])
    store(TONGJI, FIGURES, B2, FIGURE, [
        _figure("A", "420100", "105", "3"), _figure("B", "420200", "55", "3"), _figure("C", "420300", "200", "3")])
    # 财政's preliminary figures: 420100 agrees with 统计's preliminary (not with its final); 420200 differs
    # from it; 420300 has no preliminary of 统计's to be compared with, so golden is the measure.
    store(CAIZHENG, FIGURES, "2026-02-02", FIGURE, [
        _figure("X", "420100", "100", "P"), _figure("Y", "420200", "51", "P"), _figure("Z", "420300", "190", "P")])
    stored = spark.table(store.table)
    golden = select_golden(stored, authority_rules(spark, FIGURES))
    found = value_mismatches(stored, golden, FIGURES).where("field = 'value'")
    got = sorted((r["entity_id"], r["agency"], r["value"], r["golden_value"], r["golden_agency"], r["golden_batch"])
                 for r in found.collect())
    assert got == [
        ("FGDP|420200|2025", "caizheng", "51", "50", "tongji", B1),   # against 统计's preliminary, from batch 1
        ("FGDP|420300|2025", "caizheng", "190", "200", "tongji", B2),  # no preliminary: against golden (final)
    ]
    release = found.where("entity_id = 'FGDP|420200|2025'").first()
    assert release["golden_record_ref"] == "tongji__figure:2026-01-01:1"  # the record of the release compared with


def test_an_unmapped_release_label_is_an_issue_and_the_row_goes_through(spark):
    good, bad = _records(spark, TONGJI, FIGURES, B1, FIGURE, [_figure("A", "420100", "100", "初值"),
                                                               _figure("B", "420200", "50", "9")])
    assert bad.isEmpty()
    rows = {r["area"]: r for r in good.collect()}
    assert rows["420100"]["vintage"] == "preliminary"  # a label of the core list (conf/codes/release_status.yaml)
    assert rows["420200"]["vintage"] is None and rows["420200"]["value"] == "50"
    assert [(i["field"], i["column"], i["code"]) for i in rows["420200"]["issues"]] == [("vintage", "发布状态", CODE_UNMAPPED)]
