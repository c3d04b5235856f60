"""Records without a valid ID number: matched to known persons by the linkage spec, uncertain pairs
reviewed, decisions re-applied, new persons clustered, and every id change recorded."""

from datetime import date

import pytest
from pyspark.sql import functions as F

from jichu.config import conf_dir
from jichu.core.resolve import KEYS_SCHEMA, assign_record_key, link_without_key, pair_id
from jichu.core.review import DECISIONS_SCHEMA, ReviewFileError, read_decisions
from jichu.link.spec import load_link_spec

RECORDS = ("record_ref string, id_number_candidate string, name string, birth_date date, sex string, "
           "address_code string")
PROFILES = "entity_id string, id_number_candidate string, name string, birth_date date, sex string, address_code string"
D1, D2 = date(1990, 5, 17), date(2001, 2, 3)


@pytest.fixture(scope="module")
def spec():
    return load_link_spec(conf_dir() / "linkage" / "population.yaml")


@pytest.fixture(scope="module")
def profiles(spark):
    return spark.createDataFrame([
        ("PA", "420106199005171234", "王小明", D1, "1", "420106"),
        ("PB", "420106199005172345", "李红", D1, "2", "420106"),
        ("PC", "420111200102030011", "张伟", D2, "1", "420111"),
    ], PROFILES)


def _records(spark, rows):
    """Standardized records as one agency delivered them (`original`: what the record key hashes)."""
    fields = [c.split()[0] for c in RECORDS.split(", ")[1:]]
    delivered = F.map_filter(F.create_map(*[x for c in fields for x in (F.lit(c), F.col(c).cast("string"))]),
                             lambda k, v: v.isNotNull())
    return assign_record_key(spark.createDataFrame(rows, RECORDS).withColumns(
        {"agency": F.lit("minzheng"), "extract": F.lit("marriage"), "original": delivered}))


def _run(spark, spec, population, left, profiles, registry=None, decisions=None, batch="2026-01-01"):
    left = _records(spark, left)
    registry = registry if registry is not None else spark.createDataFrame([], KEYS_SCHEMA)
    decisions = decisions if decisions is not None else spark.createDataFrame([], DECISIONS_SCHEMA)
    out = link_without_key(left, profiles, registry, decisions, spec, population, "salt", batch)
    return {k: v.localCheckpoint() for k, v in out.items()}


def test_invalid_and_missing_ids_link_to_the_right_person_and_new_persons_cluster(spark, spec, population, profiles):
    out = _run(spark, spec, population, [
        ("r1", "420106199005171235", "王小明", D1, "1", "420106"),   # wrong check character
        ("r2", "420106199005711234", "王晓明", D1, "1", "420106"),   # transposed digits and a homophone
        ("r3", None, "张伟", D2, "1", None),                           # no ID number at all
        ("r4", None, "赵大宝", date(2020, 1, 1), "1", "420111"),      # a newborn nobody knows yet ...
        ("r5", None, "赵大宝", date(2020, 1, 1), "1", "420111"),      # ... delivered twice
    ], profiles)
    links = {r["record_ref"]: (r["entity_id"], r["method"]) for r in out["links"].collect()}
    assert links["r1"] == ("PA", "match:probabilistic")
    assert links["r2"] == ("PA", "match:probabilistic")
    assert links["r3"] == ("PC", "match:probabilistic")
    assert links["r4"][0] == links["r5"][0] and links["r4"][1] == "new" and links["r4"][0].startswith("P")
    assert out["review"].count() == 0 and out["changes"].count() == 0
    # Rerun with what the first run registered: the same ids, nothing changed.
    registry = out["registry"]
    again = _run(spark, spec, population, [
        ("r4", None, "赵大宝", date(2020, 1, 1), "1", "420111"),
    ], profiles, registry=registry, batch="2026-02-01")
    assert again["links"].first()["entity_id"] == links["r4"][0]
    assert again["changes"].count() == 0 and again["registry"].count() == 0


def test_uncertain_pairs_are_queued_and_decisions_apply_in_later_runs(spark, spec, population, profiles):
    # Same birth date, sex and county as 李红 but another given name and no ID number: uncertain.
    row = ("r9", None, "李虹", D1, "2", "420106")
    first = _run(spark, spec, population, [row], profiles)
    [queued] = first["review"].collect()
    assert queued["entity_id"] == "PB" and spec.thresholds.review <= queued["probability"] < spec.thresholds.match
    new_id = first["links"].first()["entity_id"]
    assert new_id != "PB"  # until someone decides, an uncertain record is a person of its own

    pid = first["review"].select(pair_id("record_key_l", "entity_id")).first()[0]
    decided = spark.createDataFrame([(pid, "match", "r9", "PB", "review.csv", None, None)], DECISIONS_SCHEMA)
    second = _run(spark, spec, population, [row], profiles, registry=first["registry"], decisions=decided,
                  batch="2026-02-01")
    assert second["links"].first()["entity_id"] == "PB" and second["links"].first()["method"] == "review:match"
    [change] = second["changes"].collect()
    assert (change["kind"], change["from_entity"], change["to_entity"]) == ("merge", new_id, "PB")
    assert second["review"].count() == 0

    # A later no_match decision splits the record off again: a new person, recorded as a split.
    undone = spark.createDataFrame([(pid, "no_match", "r9", "PB", "review2.csv", None, None)], DECISIONS_SCHEMA)
    registry = first["registry"].unionByName(second["registry"]).groupBy("key_field", "key_value").agg(
        F.last("entity_id").alias("entity_id"), F.first("first_batch").alias("first_batch"), F.last("method").alias("method"))
    third = _run(spark, spec, population, [row], profiles, registry=registry, decisions=undone, batch="2026-03-01")
    assert third["links"].first()["entity_id"] not in ("PB",)
    assert [c["kind"] for c in third["changes"].collect()] == ["split"]


def test_a_returned_review_file_is_checked_row_by_row(tmp_path):
    path = tmp_path / "2026-01-01.csv"
    path.write_text("pair_id,record_ref,entity_id,decision\nA,r1,P1,match\nB,r2,P2,maybe\nC,r3,P3,\n", encoding="utf-8-sig")
    with pytest.raises(ReviewFileError) as e:
        read_decisions(path, {"A", "B"})
    message = str(e.value)
    assert f"{path}: row 2 column decision" in message and f"{path}: row 3 column pair_id" in message
    path.write_text("pair_id,record_ref,entity_id,decision\nA,r1,P1,Match\nB,r2,P2,\n", encoding="utf-8-sig")
    assert read_decisions(path, {"A", "B"})[["pair_id", "decision"]].values.tolist() == [["A", "match"]]


def test_a_no_match_decision_overrides_an_automatic_match(spark, spec, population, profiles):
    row = ("r1", "420106199005171235", "王小明", D1, "1", "420106")  # matches PA on its own
    first = _run(spark, spec, population, [row], profiles)
    assert first["links"].first()["entity_id"] == "PA"
    record_key = _records(spark, [row]).first()["record_key"]
    pid = spark.createDataFrame([(record_key, "PA")], "record_key string, entity_id string").select(pair_id()).first()[0]
    refused = spark.createDataFrame([(pid, "no_match", "r1", "PA", "review.csv", None, None)], DECISIONS_SCHEMA)
    second = _run(spark, spec, population, [row], profiles, registry=first["registry"], decisions=refused,
                  batch="2026-02-01")
    [link] = second["links"].collect()
    assert link["entity_id"] != "PA" and link["method"] == "new"
    [change] = second["changes"].collect()
    assert (change["kind"], change["from_entity"], change["to_entity"]) == ("split", "PA", link["entity_id"])
