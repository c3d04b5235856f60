"""A base database of two entity types, through the real stages (`pipeline.run_stages`, as each DAG task
runs them) on Delta tables: each entity type has its own keys, tables and published table, and neither
replaces the other's slice of the tables all base databases share.

The domain is a small one of this test's own, in a copy of conf/: places of two kinds, divisions (key: the
code; 民政 is the source of record, 自然资源 reports the names too) and roads (a composite key, county and
road name; 自然资源 is the source of record, 民政 reports lengths too). 自然资源 delivers both in one delivery.
"""

from __future__ import annotations

import json
import shutil

import pytest
import yaml

from jichu.config import ROOT, ConfigError, load_domain, load_entity, load_extracts, load_profile
from jichu.core import tables
from jichu.core.landing import csv_bytes, write_manifest
from jichu.core.runs import RunRecorder, latest_summary, runs_dir
from jichu.pipeline import DELIVERIES, DISCREPANCIES, QUARANTINE, Run, run_stages, verify

BATCH = "2026-01-01"
DOMAIN = {
    "domain": "places", "label": "地点测试库", "depends_on": [],
    "entities": {
        "division": {
            "label": "行政区划", "id_prefix": "D", "keys": ["code"],
            "fields": {
                "code": {"label": "区划代码", "authority": "minzheng", "severity": "critical"},
                "name": {"label": "名称", "authority": "minzheng"},
            },
        },
        "road": {
            "label": "道路", "id_prefix": "R", "keys": [["county", "road_name"]],
            "fields": {
                "county": {"label": "所在县", "authority": "ziran"},
                "road_name": {"label": "道路名称", "authority": "ziran"},
                "length": {"label": "长度", "authority": "ziran"},
            },
        },
    },
}


def _extract(agency: str, extract: str, entity: str, columns: dict[str, str], key: str) -> dict:
    return {"agency": agency, "extract": extract, "domain": "places", "entity": entity, "kind": "snapshot",
            "record_key": key, "file": {"name": f"{extract}.csv", "format": "csv", "encoding": "utf-8"},
            "fields": {f: {"column": c, **({"required": True} if f in ("code", "road_name") else {})}
                       for f, c in columns.items()}}


EXTRACTS = [
    _extract("minzheng", "divisions", "division", {"code": "区划代码", "name": "区划名称"}, "区划代码"),
    _extract("ziran", "division_names", "division", {"code": "代码", "name": "名称"}, "代码"),
    _extract("ziran", "roads", "road", {"county": "县", "road_name": "路名", "length": "长度"}, "路名"),
    _extract("minzheng", "roads", "road", {"county": "县代码", "road_name": "道路", "length": "里程"}, "道路"),
]
FILES = {  # agency -> extract -> (header, rows)
    "minzheng": {
        "divisions": (["区划代码", "区划名称"], [["420102", "江岸区"], ["420106", "武昌区"], ["", "无代码"]]),
        "roads": (["县代码", "道路", "里程"], [["420106", "中山路", "4.0"], ["420102", "解放大道", "9.9"]]),
    },
    "ziran": {
        "division_names": (["代码", "名称"], [["420102", "江岸区"], ["420106", "武昌县"]]),
        "roads": (["县", "路名", "长度"], [["420106", "中山路", "4.0"], ["420102", "解放大道", "12.5"]]),
    },
}


@pytest.fixture(scope="module")
def places(spark, tmp_path_factory):
    """The domain's conf (a copy of conf/ with it added), its deliveries, and the tables it makes dropped
    before and after."""
    root = tmp_path_factory.mktemp("places")
    conf = root / "conf"
    shutil.copytree(ROOT / "conf", conf)
    (conf / "domains" / "places.yaml").write_text(yaml.safe_dump(DOMAIN, allow_unicode=True), encoding="utf-8")
    for ex in EXTRACTS:
        path = conf / "extracts" / f"{ex['agency']}__{ex['extract']}.yaml"
        path.write_text(yaml.safe_dump(ex, allow_unicode=True), encoding="utf-8")
    landing = root / "landing"
    for agency, files in FILES.items():
        folder = landing / agency / BATCH
        folder.mkdir(parents=True)
        entries = []
        for extract, (header, rows) in files.items():
            (folder / f"{extract}.csv").write_bytes(csv_bytes(header, rows, "utf-8"))
            entries.append({"name": f"{extract}.csv", "extract": extract, "schema_version": 1, "rows": len(rows)})
        write_manifest(folder, agency, BATCH, entries)
    mp = pytest.MonkeyPatch()
    mp.setenv("JICHU_CONF", str(conf))

    def drop():
        for entity in ("division", "road"):
            for name in [f"{layer}.places__{entity}{part}" for layer, part in [
                    ("standardized", ""), ("standardized", "_unchanged"), ("standardized", "_retracted"),
                    ("resolved", "_keys"), ("resolved", "_links"), ("resolved", "_retracted"), ("statements", ""),
                    ("golden", ""), ("golden", "_history"), ("golden", "_touched"), ("audit", ""),
                    ("published", ""), ("published", "_masked")]]:
                spark.sql(f"DROP TABLE IF EXISTS {name}")
            spark.sql(f"DROP VIEW IF EXISTS resolved.places__{entity}_listings")
        for ex in EXTRACTS:
            spark.sql(f"DROP TABLE IF EXISTS staging.{ex['agency']}__{ex['extract']}")
        for name in (DELIVERIES, QUARANTINE, DISCREPANCIES, "standardized.issues", "verified.discrepancies_masked"):
            if tables.table_exists(spark, name):
                spark.sql(f"DELETE FROM {name} WHERE domain = 'places'")
    drop()
    profile = load_profile().model_copy(update={"landing": str(landing)})
    yield profile
    drop()
    mp.undo()


def _build(profile, run_id: str) -> dict:
    return run_stages(["ingest", "standardize", "resolve", "golden", "verify"], "places", BATCH, run_id, profile)


@pytest.mark.slow  # every stage for two entity types: minutes of Delta commits (make test-slow)
def test_each_entity_type_has_its_own_keys_tables_and_published_table(spark, places):
    figures = _build(places, "places-1")
    assert list(figures) == ["division", "road"]  # conf order
    run_stages(["gate"], "places", BATCH, "places-1", places)
    run_stages(["publish"], "places", BATCH, "places-1", places)

    divisions = {r["code"]: r for r in spark.table("published.places__division").collect()}
    roads = {(r["county"], r["road_name"]): r for r in spark.table("published.places__road").collect()}
    assert sorted(divisions) == ["420102", "420106"] and all(r["entity_id"].startswith("D") for r in divisions.values())
    assert sorted(roads) == [("420102", "解放大道"), ("420106", "中山路")]
    assert all(r["entity_id"].startswith("R") for r in roads.values())
    # Each field from its own entity type's source of record.
    assert divisions["420106"]["name"] == "武昌区" and divisions["420106"]["name_source"] == "minzheng"
    assert roads[("420102", "解放大道")]["length"] == "12.5" and roads[("420102", "解放大道")]["length_source"] == "ziran"
    # Statements per entity type: no division field among the roads' statements.
    assert {r["field"] for r in spark.table("statements.places__road").select("field").distinct().collect()} == {
        "county", "road_name", "length"}
    # 自然资源's one delivery is staged for both entity types, each extract under its own.
    delivered = {(r["entity"], r["agency"], r["extract"], r["status"])
                 for r in spark.table(DELIVERIES).where("domain = 'places'").collect()}
    assert delivered == {("division", "minzheng", "divisions", "accepted"), ("division", "ziran", "division_names", "accepted"),
                         ("road", "ziran", "roads", "accepted"), ("road", "minzheng", "roads", "accepted")}
    # The quarantined division row (no code) is the division's, and its accounting balances.
    [q] = spark.table(QUARANTINE).where("domain = 'places'").collect()
    assert (q["entity"], q["extract"], q["row"]) == ("division", "divisions", 3)
    road_summary = json.loads(latest_summary("places", runs_dir(), entity="road").read_text(encoding="utf-8"))
    assert road_summary["entity"] == "road" and {a["extract"] for a in road_summary["row_accounting"]} == {
        "ziran__roads", "minzheng__roads"}
    assert all(a["balanced"] for a in road_summary["row_accounting"])
    assert road_summary["published"]["table"] == "published.places__road"


@pytest.mark.slow  # verifies again what the test above built
def test_verifying_one_entity_type_keeps_the_other_ones_discrepancies(spark, places):
    def items() -> set:
        return {(r["entity"], r["agency"], r["field"], r["value"], r["golden_value"], r["status"])
                for r in spark.table(DISCREPANCIES).where("domain = 'places'").collect()}

    expected = {("division", "ziran", "name", "武昌县", "武昌区", "new"), ("road", "minzheng", "length", "9.9", "12.5", "new")}
    assert items() == expected
    # The roads verified again (a rerun of their stage): the divisions' item stays, none is there twice.
    road = load_entity("places", "road")
    verify(Run(spark, places, road, BATCH, RunRecorder("places-2", "places", "road", BATCH)))
    assert items() == expected
    assert spark.table(DISCREPANCIES).where("domain = 'places'").count() == 2


def test_entity_types_must_have_their_own_prefix_and_an_extract_names_a_declared_one(tmp_path, monkeypatch):
    conf = tmp_path / "conf"
    shutil.copytree(ROOT / "conf", conf)
    monkeypatch.setenv("JICHU_CONF", str(conf))
    same = json.loads(json.dumps(DOMAIN))
    same["entities"]["road"]["id_prefix"] = "D"
    (conf / "domains" / "places.yaml").write_text(yaml.safe_dump(same, allow_unicode=True), encoding="utf-8")
    with pytest.raises(ConfigError, match="places.yaml.*share an id_prefix"):
        load_domain("places")
    conf2 = tmp_path / "conf2"
    shutil.copytree(ROOT / "conf", conf2)
    monkeypatch.setenv("JICHU_CONF", str(conf2))
    (conf2 / "domains" / "places.yaml").write_text(yaml.safe_dump(DOMAIN, allow_unicode=True), encoding="utf-8")
    wrong = {**EXTRACTS[0], "entity": "river"}
    path = conf2 / "extracts" / "minzheng__divisions.yaml"
    path.write_text(yaml.safe_dump(wrong, allow_unicode=True), encoding="utf-8")
    with pytest.raises(ConfigError, match=rf"{path}: key 'entity'.*no entity type 'river'; declared: division, road"):
        load_extracts("places")
