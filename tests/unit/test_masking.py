"""Masked tables for analysts, generated from the personal-data classes in conf/domains (`pii`).

Both domains go through the real golden, verify and publish stages (Delta tables in the test's metastore)
on synthetic statements whose agencies disagree on names, ID numbers (one a 15-digit legacy number) and
dates, and where a legal representative has died. Every string in every column of the masked tables is
then scanned for every raw personal value, not only the columns expected to hold one.
"""

from __future__ import annotations

from datetime import date

import pytest
from pyspark.sql import Row
from pyspark.sql import functions as F

from jichu.config import ConfigError, EntityType, entity_types, load_entity, load_yaml_model
from jichu.core import tables
from jichu.core.authority import assign_published_record
from jichu.core.masking import DISCREPANCIES_MASKED, MASKS, mask_discrepancies, mask_record, pii_columns
from jichu.core.runs import RunRecorder
from jichu.core.statements import STATEMENT_SCHEMA
from jichu.core.verify import DISCREPANCY_SCHEMA
from jichu.demo.faults import make_ric
from jichu.demo.legal import make_uscc, org_code
from jichu.pipeline import DISCREPANCIES, Run, golden, publish, verify

BATCH = "2026-01-01"
DOMAINS = ("population", "legal_entities")
MADE = [
    *[f"{layer}.{d}__{e}{suffix}" for d, e in (("population", "person"), ("legal_entities", "entity"))
      for layer, suffix in (("golden", ""), ("golden", "_history"), ("golden", "_touched"), ("audit", ""),
                            ("published", ""), ("published", "_masked"))],
    "statements.population__person", "statements.legal_entities__entity",
]


def _mask(spark, cls: str, values: list, kind: str = "string") -> list:
    df = spark.createDataFrame([(v,) for v in values], f"v {kind}")
    return [r[0] for r in df.select(MASKS[cls](F.col("v"))).collect()]


def test_masking_functions_on_edge_cases(spark):
    assert _mask(spark, "id_number", ["11010519491231002X", "110105491231002", "4201", "", None]) == [
        "110105********002X",   # region and sequence + check; the birth date hidden
        "110105******002",      # a 15-digit legacy number: region and sequence, the yymmdd hidden
        "****", "", None,       # any other length hides everything
    ]
    assert _mask(spark, "name", ["王伟", "欧阳娜娜", "王", "阿依古丽·买买提", "", None]) == [
        "王*", "欧***", "*", "阿*******", "", None,
    ]
    assert _mask(spark, "personal_date", ["1990-05-17", "19900517", "1990年5月17日", "05/17/1990", "90-5-17", None]) == [
        "1990", "1990", "1990", "1990", None, None,
    ]
    assert _mask(spark, "personal_date", [date(1949, 10, 1), None], "date") == ["1949", None]
    assert _mask(spark, "affiliation", ["91420100MA4K00001X", None]) == [None, None]


def test_an_unknown_class_is_a_config_error_naming_the_key(tmp_path):
    import yaml

    data = load_entity("population", "person").model_dump(mode="json")
    data["fields"]["grade"]["pii"] = "shoe_size"
    path = tmp_path / "population.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"population\.yaml: key 'fields\.grade\.pii'.*shoe_size.*known: affiliation"):
        load_yaml_model(path, EntityType)


def test_a_field_marked_pii_never_appears_raw(spark):
    """A field's class alone masks it: grade, declared a name here, leaves the masked record and the
    masked discrepancies as a name does."""
    data = load_entity("population", "person").model_dump()
    data["fields"]["grade"]["pii"] = "name"
    marked = EntityType.model_validate(data)
    published = spark.createDataFrame([("P1", "初二三班", "jiaoyu", "1")],
                                      "entity_id string, grade string, grade_source string, sex string")
    row = mask_record(published, marked).first()
    assert row.asDict() == {"entity_id": "P1", "grade_masked": "初***", "grade_source": "jiaoyu", "sex": "1"}
    item = _discrepancy("grade", "初二三班", "初二四班", [("gongan", "初二四班"), ("jiaoyu", "初二三班")])
    masked = mask_discrepancies(spark.createDataFrame([item], DISCREPANCY_SCHEMA), marked).first()
    assert (masked["value"], masked["original_value"], masked["golden_value"]) == ("初***", "初***", "初***")
    assert [e["value"] for e in masked["evidence"]] == ["初***", "初***"]
    unmarked = mask_discrepancies(spark.createDataFrame([item], DISCREPANCY_SCHEMA), load_entity("population", "person")).first()
    assert unmarked["value"] == "初二三班"  # without the class, a field is not personal data


def _discrepancy(field, value, golden_value, evidence, rule="VALUE_MISMATCH"):
    return ("D1", "population", "person", "P1", field, "jiaoyu", rule, "minor", value, value, BATCH, "r1", golden_value, "gongan",
            BATCH, "r0", "new", BATCH, BATCH, None, 0, [(a, v, BATCH, f"{a}:x:{BATCH}:1") for a, v in evidence])


# --- both domains through golden, verify and publish --------------------------------------------------


PERSONS = {  # entity: (id number, name, birth date, death date)
    "P1": (make_ric("420106", date(1970, 1, 2), 11), "王伟", "1970-01-02", None),
    "P2": (make_ric("420102", date(1985, 6, 1), 12), "欧阳娜娜", "1985-06-01", "2025-10-27"),
    "P3": (make_ric("420103", date(1992, 8, 8), 13), "阿依古丽·买买提", "1992-08-08", None),
    "P4": (make_ric("420111", date(1958, 3, 4), 14), "李", "1958-03-04", None),
}


def _population_statements() -> list[tuple]:
    rows = []
    for e, (idn, name, born, died) in PERSONS.items():
        rows += [(e, "id_number", idn, "gongan"), (e, "name", name, "gongan"), (e, "birth_date", born, "gongan"),
                 (e, "sex", "1", "gongan"), (e, "address_code", idn[:6], "gongan")]
        if died:
            rows.append((e, "death_date", died, "weijian"))
    p1, p2, p3, _ = (PERSONS[e][0] for e in ("P1", "P2", "P3", "P4"))
    rows += [
        ("P1", "name", "王玮", "weijian"),                      # a name others do not share
        ("P1", "id_number", p1[:6] + p1[8:17], "renshe"),       # a 15-digit legacy number for P1
        ("P2", "birth_date", "1985-06-10", "weijian"),
        ("P2", "birth_date", "1985-06-10", "renshe"),           # two agree against 公安: a suspected source error
        ("P2", "employer", "91420100MA4K00001X", "renshe"),
        ("P2", "employer", "91420100MA4K00002X", "jiaoyu"),     # an affiliation in dispute
        ("P3", "name", "阿依古丽·买买堤", "jiaoyu"),
        ("P3", "id_number", p3[:-1] + ("0" if p3[-1] != "0" else "1"), "jiaoyu"),
        ("P3", "sex", "2", "jiaoyu"),                            # not personal data: stays as it is
        ("P2", "death_date", "2025-10-28", "minzheng"),
    ]
    # original_value as an agency might write it: the date in another layout, the name with a space.
    return [(e, f, v, a, "x", BATCH, f"{a}:x:{BATCH}:{i}",
             v.replace("-", "") if "date" in f else (v[:1] + " " + v[1:] if f == "name" else v), None)
            for i, (e, f, v, a) in enumerate(rows)]


def _legal_statements() -> list[tuple]:
    (p1, n1, _, _), (p2, n2, _, _), (p3, n3, _, _) = PERSONS["P1"], PERSONS["P2"], PERSONS["P3"]
    rows = []
    for i, (e, rep, rep_name) in enumerate((("L1", p1, n1), ("L2", p2, n2), ("L3", p3, n3))):
        uscc = make_uscc("91", "420106", org_code(i + 1, False))
        rows += [(e, "uscc", uscc, "shichang"), (e, "name", f"武汉宝亿{i}科技有限公司", "shichang"),
                 (e, "county", "420106", "shichang"), (e, "status", "存续", "shichang"),
                 (e, "legal_rep_name", rep_name, "shichang"), (e, "legal_rep_id_number", rep, "shichang")]
    rows += [
        ("L1", "legal_rep_name", "王玮", "shuiwu"),
        ("L3", "legal_rep_id_number", p1, "shuiwu"),  # another person's number at 税务
    ]  # L2's representative P2 has died: REPRESENTATIVE_DECEASED, her date of death as the golden value
    return [(e, f, v, a, "x", BATCH, f"{a}:x:{BATCH}:{i}", v, None) for i, (e, f, v, a) in enumerate(rows)]


def _drop(spark):
    for t in MADE:
        if tables.table_exists(spark, t) and spark.catalog.getTable(t).tableType == "VIEW":
            spark.sql(f"DROP VIEW {t}")
        spark.sql(f"DROP TABLE IF EXISTS {t}")
    for t in (DISCREPANCIES, DISCREPANCIES_MASKED):
        if tables.table_exists(spark, t):
            spark.sql(f"DELETE FROM {t} WHERE domain IN ('population', 'legal_entities')")


def _build(spark, domain: EntityType, statements: list[tuple]) -> dict:
    """statements -> golden -> verify -> (the candidate as the gate writes it, its verdict) -> publish."""
    # Each statement its own record (record_id), none retracted.
    rows = [(*st, st[6], None) for st in statements]
    tables.replace_slice(spark.createDataFrame(rows, STATEMENT_SCHEMA), domain.table("statements"), {"batch": BATCH})
    recorder = RunRecorder(f"masking-{domain.domain}", domain.domain, domain.entity, BATCH)
    run = Run(spark, None, domain, BATCH, recorder)
    golden(run)
    verify(run)
    audit = run.table("audit")
    tables.overwrite(assign_published_record(spark.table(run.table("golden")), domain)[0], audit)
    recorder.record("gate", {"passed": True, "audit_table": audit, "audit_version": tables.current_version(spark, audit)})
    return publish(run)


@pytest.fixture(scope="module")
def built(spark):
    _drop(spark)
    # A metastore of an earlier release: the masked population table was a hand-written view.
    spark.sql("CREATE DATABASE IF NOT EXISTS published")
    spark.sql("CREATE VIEW published.population__person_masked AS SELECT 1 AS x")
    figures = {
        "population": _build(spark, load_entity("population", "person"), _population_statements()),
        "legal_entities": _build(spark, load_entity("legal_entities", "entity"), _legal_statements()),
    }
    yield figures
    _drop(spark)


def _strings(value) -> list[str]:
    """Every value inside a collected cell, as a string: structs and arrays opened, dates in ISO."""
    if value is None:
        return []
    if isinstance(value, Row):
        return [s for v in value for s in _strings(v)]
    if isinstance(value, (list, tuple)):
        return [s for v in value for s in _strings(v)]
    if isinstance(value, dict):
        return [s for kv in value.items() for v in kv for s in _strings(v)]
    return [value.isoformat() if isinstance(value, date) else str(value)]


def _raw_values(spark) -> set[str]:
    """Every raw value of a personal-data column: what the agencies delivered (value and original value)
    and what the published tables hold (the references included)."""
    raw = set()
    for domain in entity_types(DOMAINS):
        classes = pii_columns(domain)
        said = spark.table(domain.table("statements")).where(F.col("field").isin(*classes))
        raw |= {v for r in said.select("value", "original_value").collect() for v in r if v}
        published = spark.table(domain.published_table)
        raw |= {s for r in published.select(*classes).collect() for v in r for s in _strings(v)}
    return raw


def test_masked_tables_of_both_domains_hold_no_raw_personal_value(spark, built):
    raw = _raw_values(spark)
    assert {PERSONS["P1"][0], "王伟", "阿依古丽·买买提", "2025-10-27", "91420100MA4K00001X"} <= raw
    scanned = {}
    for table in ("published.population__person_masked", "published.legal_entities__entity_masked", DISCREPANCIES_MASKED):
        df = spark.table(table)
        assert spark.catalog.getTable(table).tableType != "VIEW"  # materialised
        cells = [s for row in df.collect() for s in _strings(row)]
        leaks = sorted({(c, table) for c in cells for v in raw if v in c})
        assert not leaks, f"{len(leaks)} raw personal values in {table}"
        scanned[table] = len(cells)
    assert all(scanned.values())
    assert built["population"]["masked"] == "published.population__person_masked"


def test_masked_published_records_keep_what_analysts_count_by(spark, built):
    person = spark.table("published.population__person_masked").where("entity_id = 'P3'").first().asDict()
    p3 = PERSONS["P3"][0]
    assert (person["id_number_masked"], person["name_masked"], person["birth_date_masked"]) == (
        p3[:6] + "********" + p3[14:], "阿*******", "1992")
    assert (person["sex"], person["address_code"], person["name_source"]) == ("1", "420103", "gongan")
    assert not {"id_number", "name", "birth_date", "death_date", "employer", "school"} & set(person)
    assert spark.table("published.population__person_masked").where("entity_id = 'P2'").first()["death_date_masked"] == "2025"
    entity = spark.table("published.legal_entities__entity_masked").where("legal_rep_person = 'P2'").first().asDict()
    assert (entity["legal_rep_name_masked"], entity["legal_rep_death_date_masked"]) == ("欧***", "2025")
    assert entity["name"].startswith("武汉宝亿") and entity["uscc"].startswith("91420106")  # public register data
    assert not {"legal_rep_name", "legal_rep_id_number", "legal_rep_death_date"} & set(entity)


def test_masked_discrepancies_mask_each_row_by_its_fields_class(spark, built):
    masked = {(r["domain"], r["entity_id"], r["field"], r["agency"], r["rule"]): r
              for r in spark.table(DISCREPANCIES_MASKED).where(F.col("domain").isin(*DOMAINS)).collect()}
    raw = spark.table(DISCREPANCIES).where(F.col("domain").isin(*DOMAINS))
    assert sorted(masked) == sorted((r["domain"], r["entity_id"], r["field"], r["agency"], r["rule"]) for r in raw.collect())
    legacy = masked[("population", "P1", "id_number", "renshe", "VALUE_MISMATCH")]
    assert legacy["value"] == PERSONS["P1"][0][:6] + "******" + PERSONS["P1"][0][14:17]
    doubted = masked[("population", "P2", "birth_date", "gongan", "SUSPECTED_SOURCE_ERROR")]
    assert (doubted["value"], doubted["golden_value"]) == ("1985", "1985")
    assert masked[("population", "P2", "employer", "jiaoyu", "VALUE_MISMATCH")]["value"] is None
    sex = masked[("population", "P3", "sex", "jiaoyu", "VALUE_MISMATCH")]
    assert (sex["value"], sex["golden_value"], sorted(e["value"] for e in sex["evidence"])) == ("2", "1", ["1", "2"])
    name = masked[("population", "P3", "name", "jiaoyu", "VALUE_MISMATCH")]
    assert (name["value"], name["original_value"], name["golden_value"]) == ("阿*******", "阿********", "阿*******")
    assert sorted(e["agency"] for e in name["evidence"]) == ["gongan", "jiaoyu"]
    # A rule's golden value is its evidence field's: the representative's date of death, to its year.
    deceased = masked[("legal_entities", "L2", "legal_rep_id_number", "shichang", "REPRESENTATIVE_DECEASED")]
    p2 = PERSONS["P2"][0]
    assert (deceased["value"], deceased["golden_value"]) == (p2[:6] + "********" + p2[14:], "2025")
