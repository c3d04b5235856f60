"""The generic data model: an entity with a composite key, and a source of record looked up from a table
(an indicator's agency in its catalogue), through the real resolution, authority and gate code."""

import pytest

from jichu.config import EntityType
from jichu.core import tables
from jichu.core.authority import authority_rules, select_golden
from jichu.core.gate import run_gate
from jichu.core.resolve import KEYS_SCHEMA, assign_keys, link_by_keys
from jichu.core.statements import STATEMENT_SCHEMA



def _figures(catalogue: str) -> EntityType:
    """A domain of figures: one entity per indicator, area and period; the value's source of record is
    the agency the catalogue names for the indicator."""
    return EntityType.model_validate({
        "domain": "figures", "label": "指标", "entity": "observation", "id_prefix": "F",
        "keys": [["indicator", "area", "period"]],
        "authorities": {"catalogue": {"field": "indicator", "table": catalogue,
                                      "key_column": "code", "agency_column": "authority"}},
        "fields": {
            "indicator": {"label": "指标代码", "authority": "catalogue"},
            "area": {"label": "地区", "authority": "catalogue"},
            "period": {"label": "时期", "authority": "catalogue"},
            "value": {"label": "数值", "authority": "catalogue", "fallback": ["tongji"]},
        },
    })


def test_records_with_one_composite_key_are_one_entity_and_a_part_missing_is_no_key(spark):
    figures = _figures("t.none")
    records = spark.createDataFrame([
        ("r1", "GDP", "420100", "2026Q1"), ("r2", "GDP", "420100", "2026Q1"),  # two agencies, one figure
        ("r3", "GDP", "420100", "2026Q2"), ("r4", "GDP", "420200", "2026Q1"),
        ("r5", "GDP", None, "2026Q1"),                                         # no area: no key
    ], "record_ref string, indicator string, area string, period string")
    keyed = assign_keys(records, figures)
    by_ref = {r["record_ref"]: (r["key_field"], r["key_value"]) for r in keyed.collect()}
    assert by_ref["r1"] == ("indicator+area+period", "GDP|420100|2026Q1") and by_ref["r5"] == (None, None)
    links, registered = link_by_keys(keyed, spark.createDataFrame([], KEYS_SCHEMA), figures, "salt", "2026-04-01")
    entity = {r["record_ref"]: r["entity_id"] for r in links.collect()}
    assert set(entity) == {"r1", "r2", "r3", "r4"}
    assert entity["r1"] == entity["r2"] and len({entity["r1"], entity["r3"], entity["r4"]}) == 3
    assert all(e.startswith("F") for e in entity.values()) and registered.count() == 3


def test_the_gate_refuses_two_entities_with_one_composite_key(spark):
    figures = _figures("t.none")
    columns = ["entity_id", *figures.fields, *[f"{n}_source" for n in figures.fields]]
    row = lambda eid, period: (eid, "GDP", "420100", period, "1.0", *["tongji"] * 4)  # noqa: E731
    ok = run_gate(spark.createDataFrame([row("F1", "2026Q1"), row("F2", "2026Q2")], columns), figures,
                  absent=frozenset({"catalogue"}))
    assert ok.passed, ok.describe()
    twice = run_gate(spark.createDataFrame([row("F1", "2026Q1"), row("F2", "2026Q1")], columns), figures,
                     absent=frozenset({"catalogue"}))
    assert {f.expectation for f in twice.critical} == {"expect_compound_columns_to_be_unique"}, twice.describe()


@pytest.fixture
def catalogue(spark):
    name = "published.test_figures__indicator"
    spark.sql("CREATE DATABASE IF NOT EXISTS published")
    tables.overwrite(spark.createDataFrame([("GDP", "tongji"), ("REV", "caizheng")], "code string, authority string"), name)
    yield name
    spark.sql(f"DROP TABLE IF EXISTS {name}")


def _statements(spark, rows):
    return spark.createDataFrame(
        [(e, f, v, a, "x", "2026-04-01", f"{a}:x:{i}", v, None, f"{a}:x:{i}", None) for i, (e, f, v, a) in enumerate(rows)],
        STATEMENT_SCHEMA)


def test_the_source_of_record_is_looked_up_in_a_catalogue_table(spark, catalogue):
    figures = _figures(catalogue)
    said = [
        # F1 is GDP: 统计's figure is the source of record, 财政's copy is not.
        ("F1", "indicator", "GDP", "tongji"), ("F1", "value", "1200.5", "tongji"),
        ("F1", "indicator", "GDP", "caizheng"), ("F1", "value", "1201", "caizheng"),
        # F2 is revenue: 财政's.
        ("F2", "indicator", "REV", "tongji"), ("F2", "value", "88", "tongji"),
        ("F2", "indicator", "REV", "caizheng"), ("F2", "value", "87.9", "caizheng"),
        # F3's indicator is not in the catalogue: no agency is its source; 统计 only as the named fallback.
        ("F3", "indicator", "NEW", "tongji"), ("F3", "value", "5", "tongji"),
        ("F3", "indicator", "NEW", "haiguan"), ("F3", "value", "6", "haiguan"),
    ]
    golden = {(r["entity_id"], r["field"]): (r["value"], r["agency"], r["is_fallback"])
              for r in select_golden(_statements(spark, said), authority_rules(spark, figures)).collect()}
    assert golden[("F1", "value")] == ("1200.5", "tongji", False)
    assert golden[("F2", "value")] == ("87.9", "caizheng", False)
    assert golden[("F3", "value")] == ("5", "tongji", True)
    assert ("F3", "indicator") not in golden  # no source of record, and no fallback named for it

    columns = ["entity_id", *figures.fields, *[f"{n}_source" for n in figures.fields]]
    candidate = lambda source: spark.createDataFrame(  # noqa: E731
        [("F2", "REV", "420100", "2026Q1", "87.9", source, source, source, source)], columns)
    assert run_gate(candidate("caizheng"), figures).passed
    wrong = run_gate(candidate("haiguan"), figures)
    assert "unexpected_rows_expectation" in {f.expectation for f in wrong.critical}, wrong.describe()


def test_a_lookup_whose_table_is_not_there_yet_names_no_source(spark):
    figures = _figures("published.test_figures__absent")
    said = [("F1", "indicator", "GDP", "caizheng"), ("F1", "value", "1", "caizheng")]
    assert select_golden(_statements(spark, said), authority_rules(spark, figures)).isEmpty()


@pytest.mark.parametrize("delivered, mapping_unit, expected", [
    ("1.2亿元", None, ("12000", None)),       # the unit the value carries
    ("12000万元", None, ("12000", None)),
    ("12000.00", None, ("12000", None)),      # the field's own unit, trailing zeros dropped
    ("1,234.50", "亿元", ("12345000", None)),  # the extract's unit; a thousands separator
    ("-0.0", None, ("0", None)),
    ("４．５", None, ("4.5", None)),           # full-width digits
    ("12千元", None, ("1.2", None)),
    ("约5亿", None, (None, "NUMBER_INVALID")),
    ("5万人", None, (None, "UNIT_INVALID")),    # another dimension
    ("5 斤", None, (None, "UNIT_INVALID")),
    (None, None, (None, None)),
])
def test_a_number_is_kept_in_its_fields_unit_in_one_written_form(spark, delivered, mapping_unit, expected):
    from pyspark.sql import functions as F

    from jichu.config import FieldMapping, FieldRule
    from jichu.core.registry import field_type

    rule = FieldRule(label="营业收入", type="number", unit="万元", authority="tongji")
    typed = field_type("number").standardise(F.lit(delivered).cast("string"), FieldMapping(column="x", unit=mapping_unit), rule)
    assert tuple(spark.range(1).select(typed.value, typed.error).first()) == expected


def test_numbers_within_their_tolerance_are_one_value_and_other_fields_compare_exactly(spark):
    from pyspark.sql import functions as F

    from jichu.config import FieldRule
    from jichu.core.registry import same_value

    fields = {"revenue": FieldRule(label="营业收入", type="number", unit="万元", tolerance=0.05, authority="tongji"),
              "name": FieldRule(label="名称", authority="tongji")}
    pairs = spark.createDataFrame([
        ("revenue", "1200.5", "1200.52", True), ("revenue", "1200.5", "1201", False),
        ("revenue", "4", "4.0", True), ("revenue", None, "4", False), ("revenue", None, None, True),
        ("name", "4", "4.0", False), ("name", "甲", "甲", True),
    ], "field string, a string, b string, expected boolean")
    got = pairs.select("expected", same_value(fields, F.col("field"), F.col("a"), F.col("b")).alias("same")).collect()
    assert [r["same"] for r in got] == [r["expected"] for r in got]


def _sums_to_total(published, rule, batch_date):
    """Test rule over the whole set: GDP of an area and period against the sum of its three sectors."""
    from pyspark.sql import functions as F

    total = published.where(F.col("indicator") == "GDP")
    parts = (published.where(F.col("indicator").isin("GDP_1", "GDP_2", "GDP_3"))
             .groupBy("area", "period").agg(F.sum("value").alias("sum"), F.count("*").alias("n"),
                                              F.array_join(F.array_sort(F.collect_set("value_source")), "+").alias("by")))
    off = total.join(parts.where("n = 3"), ["area", "period"]).where(F.abs(F.col("value") - F.col("sum")) > 0.5)
    return off.select("entity_id", F.col("sum").cast("string").alias("golden_value"), F.col("by").alias("golden_agency"))


def test_a_rule_across_entities_questions_a_total_its_components_do_not_add_up_to(spark):
    from jichu.core import registry
    from jichu.core.verify import entity_rules

    registry.register_rule("test_sums_to_total", _sums_to_total)
    figures = EntityType.model_validate({
        **_figures("t.none").model_dump(exclude={"authorities", "fields"}),
        "fields": {n: {"label": n, "authority": "tongji", **({"type": "number", "unit": "亿元"} if n == "value" else {})}
                   for n in ("indicator", "area", "period", "value")},
        "rules": [{"code": "COMPONENTS_DO_NOT_SUM", "field": "value", "check": "test_sums_to_total", "severity": "major"}],
    })
    said = []
    for eid, indicator, area, value in [
        ("T1", "GDP", "420100", "100"), ("S11", "GDP_1", "420100", "10"), ("S12", "GDP_2", "420100", "40"),
        ("S13", "GDP_3", "420100", "50"),                                   # adds up
        ("T2", "GDP", "420200", "90"), ("S21", "GDP_1", "420200", "10"), ("S22", "GDP_2", "420200", "40"),
        ("S23", "GDP_3", "420200", "50"),                                   # 100 against a total of 90
        ("T3", "GDP", "420300", "1"), ("S31", "GDP_1", "420300", "10"),     # components missing: not judged
    ]:
        said += [(eid, "indicator", indicator, "tongji"), (eid, "area", area, "tongji"),
                 (eid, "period", "2026Q1", "tongji"), (eid, "value", value, "tongji")]
    golden = select_golden(_statements(spark, said), authority_rules(spark, figures))
    [found] = entity_rules(golden, figures, "2026-04-01").collect()
    assert (found["entity_id"], found["field"], found["rule"], found["agency"], found["value"]) == (
        "T2", "value", "COMPONENTS_DO_NOT_SUM", "tongji", "90")
    assert (float(found["golden_value"]), found["golden_agency"]) == (100.0, "tongji")
    assert found["record_ref"].startswith("tongji:x:")


SQUARE_WKT = "POLYGON ((114.1 30.5, 114.2 30.5, 114.2 30.6, 114.1 30.6, 114.1 30.5))"
SQUARE_GEOJSON = ('{"type": "Polygon", "coordinates": [[[114.2, 30.6], [114.1, 30.6], [114.1, 30.5], '
                  '[114.2, 30.5], [114.2, 30.6]]]}')  # the same square from another vertex


def test_a_geometry_is_kept_as_one_wkb_in_cgcs2000_whatever_way_it_was_written():
    import shapely

    from jichu.domains.geo.geometry import clean_geometry_value

    wkt, error = clean_geometry_value(SQUARE_WKT)
    assert error is None and clean_geometry_value(SQUARE_GEOJSON) == (wkt, None)
    assert clean_geometry_value(wkt) == (wkt, None)  # WKB hex in, the same out
    assert shapely.from_wkb(wkt).equals(shapely.from_wkt(SQUARE_WKT))
    assert clean_geometry_value("POLYGON ((1 2, 3") == (None, "GEOMETRY_UNREADABLE")
    assert clean_geometry_value("POINT (114.3 30.6)", crs="EPSG:99999") == (None, "CRS_UNKNOWN")
    bowtie = "POLYGON ((0 0, 1 1, 1 0, 0 1, 0 0))"  # not valid, kept: a rule reports it to its agency
    assert clean_geometry_value(bowtie)[0] is not None
    moved, _ = clean_geometry_value("POINT (114.3 30.6)", crs="EPSG:4326")  # WGS 84 to CGCS2000
    assert shapely.from_wkb(moved).distance(shapely.Point(114.3, 30.6)) < 1e-5


def test_geometries_are_one_value_within_their_tolerance(spark):
    from pyspark.sql import functions as F

    from jichu.config import FieldRule
    from jichu.core.registry import same_value
    from jichu.domains.geo.geometry import clean_geometry_value

    square = clean_geometry_value(SQUARE_WKT)[0]
    nudged = clean_geometry_value(SQUARE_WKT.replace("114.1 30.5", "114.1000004 30.5"))[0]
    moved = clean_geometry_value(SQUARE_WKT.replace("114.1 30.5", "114.11 30.5"))[0]
    fields = {"boundary": FieldRule(label="边界", type="geometry", tolerance=1e-6, authority="ziran")}
    pairs = spark.createDataFrame([("boundary", square, nudged, True), ("boundary", square, moved, False)],
                                  "field string, a string, b string, expected boolean")
    got = pairs.select("expected", same_value(fields, F.col("field"), F.col("a"), F.col("b")).alias("same")).collect()
    assert [r["same"] for r in got] == [r["expected"] for r in got]


def test_another_agencys_figure_within_the_tolerance_is_no_discrepancy(spark, catalogue):
    from jichu.core.verify import value_mismatches

    figures = EntityType.model_validate({
        **_figures(catalogue).model_dump(exclude={"fields"}),
        "fields": {**{n: {"label": n, "authority": "catalogue"} for n in ("indicator", "area", "period")},
                   "value": {"label": "数值", "type": "number", "unit": "亿元", "tolerance": 0.05,
                             "authority": "catalogue"}},
    })
    statements = _statements(spark, [
        ("F1", "indicator", "GDP", "tongji"), ("F1", "value", "1200.5", "tongji"),
        ("F1", "indicator", "GDP", "caizheng"), ("F1", "value", "1200.52", "caizheng"),  # within 0.05
        ("F1", "indicator", "GDP", "haiguan"), ("F1", "value", "1201", "haiguan"),      # beyond it
    ])
    golden = select_golden(statements, authority_rules(spark, figures))
    found = {(r["agency"], r["field"], r["value"]) for r in value_mismatches(statements, golden, figures).collect()}
    assert found == {("haiguan", "value", "1201")}
