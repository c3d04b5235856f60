"""Evaluation against truth: pair metrics, golden accuracy and defect shares, hand-computed on literal frames."""

import json
from pathlib import Path

import pandas as pd
import pytest

from jichu.config import ConfigError, load_yaml_model
from jichu.evaluate import (
    EvaluationSpec,
    TablesMissing,
    assign_predicted,
    evaluate_tables,
    expand_records,
    load_evaluation,
    map_entities,
    score,
    score_clusters,
    score_defects,
    score_golden,
    score_pairs,
)

BATCH = "2026-01-01"


def _records(rows) -> pd.DataFrame:
    """(record_ref, true entity, defects) -> the frame expand_records returns."""
    frame = pd.DataFrame(rows, columns=["record_ref", "entity", "defects"])
    return frame.assign(extract="gongan__household", batch=BATCH)


def _links(rows) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["record_ref", "entity_id"])


# True A: r1..r4, B: r5 r6, C: r7. Predicted E1: r1..r3, E2: r4 (A split), E3: r5..r7 (C merged into B).
SPLIT_AND_MERGE = (
    _records([("r1", "A", ""), ("r2", "A", ""), ("r3", "A", ""), ("r4", "A", "name_typo"),
              ("r5", "B", "name_typo;id_legacy15"), ("r6", "B", ""), ("r7", "C", "")]),
    _links([("r1", "E1"), ("r2", "E1"), ("r3", "E1"), ("r4", "E2"), ("r5", "E3"), ("r6", "E3"), ("r7", "E3")]),
)


def test_perfect_prediction_scores_one():
    records = _records([("r1", "A", ""), ("r2", "A", ""), ("r3", "A", ""), ("r4", "B", ""), ("r5", "B", ""),
                        ("r6", "C", "")])
    links = _links([("r1", "E1"), ("r2", "E1"), ("r3", "E1"), ("r4", "E2"), ("r5", "E2"), ("r6", "E3")])
    pairs = score_pairs(assign_predicted(records, links))
    assert pairs == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "true_pairs": 4, "predicted_pairs": 4,
                     "true_positive_pairs": 4}


def test_one_split_and_one_wrong_merge():
    predicted = assign_predicted(*SPLIT_AND_MERGE)
    # true pairs 6 + 1 = 7; predicted 3 + 3 = 6; true positives 3 (E1, A) + 1 (E3, B) = 4.
    assert score_pairs(predicted) == {"precision": round(4 / 6, 6), "recall": round(4 / 7, 6),
                                      "f1": round(8 / 13, 6), "true_pairs": 7, "predicted_pairs": 6,
                                      "true_positive_pairs": 4}
    assert score_clusters(predicted) == {"records": 7, "records_unlinked": 0, "persons_true": 3,
                                         "entities_predicted": 3, "split_persons": 1, "merged_entities": 1}


def test_record_missing_or_unresolved_in_links_is_a_singleton():
    records = _records([("r1", "A", ""), ("r2", "A", ""), ("r3", "A", ""), ("r4", "A", "id_missing")])
    # r3 unresolved (null entity), r4 absent (quarantined or rejected); x9 is outside the universe.
    links = _links([("r1", "E1"), ("r2", "E1"), ("r3", None), ("x9", "E1")])
    predicted = assign_predicted(records, links)
    assert predicted["entity_id"].isna().tolist() == [False, False, True, True]
    pairs = score_pairs(predicted)
    assert (pairs["true_pairs"], pairs["predicted_pairs"], pairs["true_positive_pairs"]) == (6, 1, 1)
    assert pairs["precision"] == 1.0 and pairs["recall"] == round(1 / 6, 6)
    assert score_clusters(predicted)["records_unlinked"] == 2
    assert score_defects(predicted) == {"id_missing": {"records": 1, "linked_correctly": 0.0}}


def test_defect_shares_use_the_majority_entity_of_each_person():
    defects = score_defects(assign_predicted(*SPLIT_AND_MERGE))
    # r4 sits in E2 while A's majority is E1; r5 is in E3, B's majority.
    assert defects == {"id_legacy15": {"records": 1, "linked_correctly": 1.0},
                       "name_typo": {"records": 2, "linked_correctly": 0.5}}


def test_pair_counts_match_enumerating_every_pair_on_random_clusterings():
    """Oracle: the group-by counts equal a brute-force walk over all record pairs."""
    import itertools
    import random

    spec = EvaluationSpec(entity="person", extracts=["gongan__household"], entities={"file": "p.csv", "id_column": "person"},
                          fields={"name": "name"})
    empty = pd.DataFrame(columns=["entity_id", "field", "value"])
    for seed in range(20):
        rnd = random.Random(seed)
        n = rnd.randint(1, 60)
        truth = [f"P{rnd.randint(0, 12)}" for _ in range(n)]
        guess = [None if rnd.random() < 0.15 else f"E{rnd.randint(0, 12)}" for _ in range(n)]
        records = _records([(f"r{i}", truth[i], "") for i in range(n)])
        links = _links([(f"r{i}", guess[i]) for i in range(n) if rnd.random() < 0.9])  # some never linked
        linked = dict(zip(links["record_ref"], links["entity_id"]))
        pred = [linked.get(f"r{i}") for i in range(n)]
        same_true = same_pred = both = 0
        for i, j in itertools.combinations(range(n), 2):
            t, p = truth[i] == truth[j], pred[i] is not None and pred[i] == pred[j]
            same_true, same_pred, both = same_true + t, same_pred + p, both + (t and p)
        report = score("population", records, links, empty, pd.DataFrame({"person": [], "name": []}), spec)
        got = (report["true_pairs"], report["predicted_pairs"], report["true_positive_pairs"])
        assert got == (same_true, same_pred, both)
        assert report["records_unlinked"] == sum(p is None for p in pred)


def test_marriage_rows_expand_to_one_record_per_role():
    raw = pd.DataFrame({
        "extract": ["minzheng__marriage", "gongan__household"], "batch": [BATCH, BATCH], "row": ["1", "7"],
        "entity": ["P1+P2", "P3"], "defects": ["husband:name_typo;wife:id_legacy15;division_retired", "id_checksum"],
    })
    records = expand_records(raw, {"minzheng__marriage": ["husband", "wife"]})
    got = {r.record_ref: (r.entity, r.defects) for r in records.itertuples()}
    assert got == {
        "gongan:household:2026-01-01:7": ("P3", "id_checksum"),
        "minzheng:marriage:2026-01-01:1#husband": ("P1", "name_typo;division_retired"),
        "minzheng:marriage:2026-01-01:1#wife": ("P2", "id_legacy15;division_retired"),
    }
    with pytest.raises(ValueError, match="do not name 2 entities"):
        expand_records(raw.assign(entity=["P1", "P3"]), {"minzheng__marriage": ["husband", "wife"]})


def test_golden_accuracy_maps_entities_by_majority_and_counts_wrong_and_missing():
    records = assign_predicted(
        _records([("r1", "A", ""), ("r2", "A", ""), ("r3", "B", ""), ("r4", "C", ""), ("r5", "B", ""),
                  ("r6", "D", "")]),
        _links([("r1", "E1"), ("r2", "E1"), ("r3", "E1"), ("r4", "E2"), ("r5", "E2"), ("r6", "E3")]),
    )
    mapping = map_entities(records)
    assert mapping.to_dict() == {"E1": "A", "E2": "B", "E3": "D"}  # E2: a B/C tie goes to the smaller id
    truth = pd.DataFrame({"person": ["A", "B", "C", "D"], "name": ["王伟", "李娜", "赵敏", "张三"],
                          "sex": ["1", "2", "2", ""], "county": ["420106", "", "420111", "420111"],
                          "death_date": ["", "", "", ""]})
    golden = pd.DataFrame([
        ("E1", "name", "王伟"), ("E1", "sex", "1"), ("E1", "address_code", "420106"),
        ("E2", "name", "李娜"), ("E2", "sex", "1"),          # wrong sex
        ("E2", "address_code", "420102"),                    # a value where the truth has none: wrong
        ("E3", "name", "张四"),                              # wrong name; address missing; sex empty in truth
        ("E9", "name", "王五"),                              # no linked record: cannot be mapped
    ], columns=["entity_id", "field", "value"])
    fields = {"name": "name", "sex": "sex", "address_code": "county", "death_date": "death_date"}
    result = score_golden(golden, mapping, truth, fields, "person")
    assert result["fields"] == {
        "name": {"compared": 3, "correct": 2, "accuracy": round(2 / 3, 6), "missing": 0},
        "sex": {"compared": 2, "correct": 1, "accuracy": 0.5, "missing": 0},
        "address_code": {"compared": 2, "correct": 1, "accuracy": 0.5, "missing": 1},
    }
    assert result["golden_accuracy"] == round(4 / 7, 6)
    assert result["fields_scored"] == ["name", "sex", "address_code"]
    assert result["fields_not_scored"] == ["death_date"]
    assert result["golden_entities_unmapped"] == 1


def test_report_has_every_key_and_is_json():
    records, links = SPLIT_AND_MERGE
    spec = EvaluationSpec(entity="person", extracts=["gongan__household"], entities={"file": "p.csv", "id_column": "person"},
                          fields={"name": "name"})
    golden = pd.DataFrame([("E1", "name", "王伟")], columns=["entity_id", "field", "value"])
    truth = pd.DataFrame({"person": ["A", "B", "C"], "name": ["王伟", "李娜", "赵敏"]})
    report = score("population", records, links, golden, truth, spec)
    for key in ("domain", "precision", "recall", "f1", "golden_accuracy", "records", "records_unlinked", "true_pairs",
                "predicted_pairs", "true_positive_pairs", "persons_true", "entities_predicted", "split_persons",
                "merged_entities", "fields", "defects"):
        assert key in report
    assert json.loads(json.dumps(report)) == report
    assert report["golden_accuracy"] == 1.0 and report["fields"]["name"]["missing"] == 2  # E2 -> A, E3 -> B


def test_shipped_config_loads():
    spec = load_evaluation("population")
    assert spec.roles == {"minzheng__marriage": ["husband", "wife"]}
    assert spec.fields["address_code"] == "county" and spec.entities.id_column == "person"


def test_config_typo_names_file_and_key(tmp_path, monkeypatch):
    (tmp_path / "evaluate").mkdir()
    path = tmp_path / "evaluate" / "population.yaml"
    path.write_text("entity: person\nextracts: [gongan__household]\nentities: {file: p.csv, id_column: person}\n"
                    "fields: {name: name}\nrole: {minzheng__marriage: [husband, wife]}\n", encoding="utf-8")
    monkeypatch.setenv("JICHU_CONF", str(tmp_path))
    with pytest.raises(ConfigError, match=r"population\.yaml: key 'role': Extra inputs are not permitted"):
        load_evaluation("population")
    path.write_text("entity: person\nextracts: [gongan__household]\nentities: {file: p.csv, id_column: person}\n"
                    "fields: {name: name}\nroles: {minzheng__marriage: [husband, wife]}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not under extracts"):
        load_yaml_model(path, EvaluationSpec)


# --- Spark: the entry point that reads the Delta tables -------------------------------------------

PERSONS = "person,id_number,name,sex,ethnicity,birth_date,death_date,marital_status,county\n"


def _truth(root: Path) -> Path:
    def write(rel: str, text: str) -> None:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text, encoding="utf-8")

    head = "row,entity,defects,true_name\n"
    write("records/gongan__household/2026-01-01.csv", head + "1,P1,,x\n2,P2,,x\n3,P3,,x\n")
    write("records/gongan__household/2026-02-01.csv", head + "1,P1,,x\n")
    write("records/gongan__household/2026-03-01.csv", head + "1,P1,,x\n")  # batch not processed
    write("records/minzheng__marriage/2026-01-01.csv", head + "1,P1+P2,wife:name_typo,x\n")
    write("records/renshe__insured/2026-01-01.csv", head + "1,P3,address_stale,x\n")  # file rejected whole
    write("population/persons.csv", PERSONS + "P1,1,王伟,1,01,1990-01-01,,20,420106\n"
                                              "P2,2,李娜,2,01,1992-01-01,,20,420106\n"
                                              "P3,3,张三,1,01,1950-01-01,,10,420111\n")
    return root


def test_evaluate_tables_reads_listings_quarantine_and_golden(spark, population, tmp_path):
    from jichu.core import tables

    domain = population.model_copy(update={"domain": "evaltest"})
    tables.overwrite(spark.createDataFrame([
        ("gongan:household:2026-01-01:1", "gongan", "household", BATCH, "E1"),
        ("gongan:household:2026-01-01:2", "gongan", "household", BATCH, "E2"),
        ("gongan:household:2026-01-01:3", "gongan", "household", BATCH, None),
        ("minzheng:marriage:2026-01-01:1#husband", "minzheng", "marriage", BATCH, "E1"),
        ("minzheng:marriage:2026-01-01:1#wife", "minzheng", "marriage", BATCH, "E2"),
    ], "record_ref string, agency string, extract string, batch string, entity_id string"), "resolved.evaltest__person_listings")
    tables.overwrite(spark.createDataFrame([
        ("evaltest", "person", "gongan:household:2026-02-01:1", "gongan", "household", "2026-02-01", "household.csv", 1),
        ("other", "person", "gongan:household:2026-03-01:1", "gongan", "household", "2026-03-01", "household.csv", 1),
    ], "domain string, entity string, record_ref string, agency string, extract string, batch string, file string, row int"),
        "standardized.evaltest_quarantine")
    tables.overwrite(spark.createDataFrame([
        ("E1", "name", "王伟"), ("E1", "sex", "1"), ("E2", "name", "李四"), ("E2", "sex", "2"),
    ], "entity_id string, field string, value string"), "golden.evaltest__person")

    spec = load_evaluation("population")
    report = evaluate_tables(spark, domain, spec, _truth(tmp_path / "truth"),
                             quarantine_table="standardized.evaltest_quarantine")
    report = json.loads(json.dumps(report, ensure_ascii=False))
    # Universe: household 01 (3) and 02 (1, quarantined), marriage 01 (2 persons), insured 01 (1, rejected).
    assert report["batches"] == ["2026-01-01", "2026-02-01"]
    counts = ("records", "records_unlinked", "persons_true", "entities_predicted", "split_persons", "merged_entities")
    assert [report[k] for k in counts] == [7, 3, 3, 2, 0, 0]
    # True pairs: P1 3 records (3), P2 2 (1), P3 2 (1); predicted: E1 and E2 one pair each, both right.
    assert (report["true_pairs"], report["predicted_pairs"], report["true_positive_pairs"]) == (5, 2, 2)
    assert (report["precision"], report["recall"], report["f1"]) == (1.0, 0.4, round(4 / 7, 6))
    assert report["fields_scored"] == ["name", "sex"]
    assert report["fields"]["name"] == {"compared": 2, "correct": 1, "accuracy": 0.5, "missing": 0}
    assert report["golden_accuracy"] == 0.75
    assert report["defects"] == {"address_stale": {"records": 1, "linked_correctly": 0.0},
                                 "name_typo": {"records": 1, "linked_correctly": 1.0}}

    with pytest.raises(TablesMissing, match="run the evalnone DAG first"):
        evaluate_tables(spark, population.model_copy(update={"domain": "evalnone"}), spec, tmp_path / "truth")
