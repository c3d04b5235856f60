"""End to end, population: real Airflow DAG runs that spark-submit the real jobs (conftest.province).

On generated extracts of all seven population extracts, with known truth and every population
defect kind injected at a raised rate:
1. batch 2026-01-01: everything published; each defect kind is standardized, linked and
   verified as the truth says;
2. batch 2026-02-01 with 公安's file cut short: that delivery is rejected whole, the other
   agencies' records are processed, and no discrepancy is lost or duplicated;
3. a rerun of batch 2026-01-01 (ingest, standardize, resolve and the gate in one `jichu job`) with a
   stricter count bound, while legal entities' batch 2 and a `jichu sql` query run beside it on the same
   metastore: the gate fails, nothing is republished, Data Docs are still written, and the rerun
   duplicates nothing;
4. `jichu evaluate population` on the result meets the linkage and golden-record targets.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pandas as pd
import pytest
from pyspark.sql import functions as F

from jichu.evaluate import expand_records, load_evaluation, read_truth_records

pytestmark = [pytest.mark.e2e, pytest.mark.slow]  # the province run: make test-slow
EXTRACTS = {"gongan__household", "weijian__birth", "weijian__death", "minzheng__marriage", "minzheng__funeral",
            "renshe__insured", "jiaoyu__student"}
POPULATION_KINDS = {"name_typo", "name_homophone", "name_traditional", "name_width", "id_fullwidth", "id_legacy15",
                    "id_checksum", "id_transposed", "id_missing", "date_format", "sex_code_unknown", "address_stale",
                    "value_conflict", "authority_error", "duplicate", "deceased_active"}


@pytest.fixture(scope="module")
def e2e(province):
    """The population side of the shared run (conftest.province): its summaries and results."""
    var, results = province
    r = dict(results)
    for key in ("first_summary", "second_summary"):
        r[key] = results[key]["population"]
    r["evaluate"] = results["evaluate_population"]
    return var, r


@pytest.fixture(scope="module")
def records(e2e, delta) -> pd.DataFrame:
    """Every delivered population record of batch 1: truth (entity, defects, true values) beside what
    the pipeline made of it (standardized values, issues, entity)."""
    var, _ = e2e
    spec = load_evaluation("population")
    truth = expand_records(read_truth_records(var / "truth", spec, {"2026-01-01"}), spec.roles)
    truth["labels"] = truth["defects"].fillna("").map(lambda d: set(filter(None, d.split(";"))))
    persons = pd.read_csv(var / "truth" / "population" / "persons.csv", dtype=str, keep_default_na=False)
    truth = truth.merge(persons.add_prefix("true_"), left_on="entity", right_on="true_person", how="left")
    std = delta("standardized.population__person").where("batch = '2026-01-01'").select(
        "record_ref", "id_number", "name", "sex", F.col("birth_date").cast("string").alias("birth_date"),
        F.to_json("issues").alias("issues"), F.col("original")["name"].alias("name_delivered"),
    ).toPandas()
    links = delta("resolved.population__person_links").where("batch = '2026-01-01'").select(
        "record_ref", "entity_id", "method").toPandas()
    return truth.merge(std, on="record_ref", how="left").merge(links, on="record_ref", how="left")


def _with(records: pd.DataFrame, kind: str, without: set[str] = frozenset()) -> pd.DataFrame:
    chosen = records[records["labels"].map(lambda s: kind in s and not (s & without))]
    assert len(chosen) >= 2, f"too few records with {kind} to test it"
    return chosen


def _majority_entity(records: pd.DataFrame) -> dict[str, str]:
    """Each true person's most common entity id (the person the pipeline found)."""
    counts = records.dropna(subset=["entity_id"]).groupby(["entity", "entity_id"]).size().reset_index(name="n")
    return counts.sort_values(["entity", "n"], ascending=[True, False]).drop_duplicates("entity").set_index("entity")["entity_id"].to_dict()


def test_first_batch_is_published_and_every_row_accounted_for(e2e, delta):
    var, r = e2e
    assert [(x.batch, x.state) for x in r["runs"]["population"]] == [("2026-01-01", "success"), ("2026-02-01", "success")]
    s = r["first_summary"]
    assert s["batch"] == "2026-01-01" and s["gate"]["passed"]
    assert {a["extract"] for a in s["row_accounting"]} == EXTRACTS
    for a in s["row_accounting"]:
        assert a["balanced"] and a["records"] == a["standardized"] + a["quarantined"], a
    # Every record carries a name, the only required field: nothing is quarantined, and the
    # failed optional values are reported per file instead (below).
    assert delta("standardized.quarantine").count() == 0
    published = delta("published.population__person")
    assert s["published"]["rows"] > 500 and s["published"]["version"] == 0
    assert published.select("entity_id").distinct().count() == published.count()
    assert Path(s["data_docs"]).exists()
    # The row-by-row checks read every row of the first candidate; batch 2's gate, another Airflow task
    # after batch 1's publish wrote the note of the checks its rows passed, reads only the rows that changed.
    assert s["gate"]["rows_checked"] == s["published"]["rows"]
    assert 0 < r["second_summary"]["gate"]["rows_checked"] < r["second_summary"]["published"]["rows"]


def test_identifier_defects_are_standardized_or_reported_and_still_linked(records):
    majority = _majority_entity(records)
    for kind in ("id_fullwidth", "id_legacy15"):
        rows = _with(records, kind, {"id_checksum", "id_transposed"})
        assert (rows["id_number"] == rows["true_id_number"]).all(), kind  # upgraded / narrowed to the true number
    for kind in ("id_checksum", "id_transposed"):
        rows = _with(records, kind)
        assert rows["id_number"].isna().all(), kind  # never a silent wrong number
        assert rows["issues"].str.contains('"code":"ID_').all(), kind  # a recorded defect
        assert (rows["method"] != "key:id_number").all()
        assert (rows["entity_id"] == rows["entity"].map(majority)).all(), kind  # linked by the matcher
    missing = _with(records, "id_missing")
    assert missing["id_number"].isna().all() and not missing["issues"].str.contains("id_number").any()
    linked = missing["entity_id"] == missing["entity"].map(majority)
    assert linked.mean() >= 0.9, f"{(~linked).sum()} of {len(missing)} records without an ID number not linked"


def test_name_date_and_code_defects_are_standardized(records):
    for kind in ("name_traditional", "name_width"):
        rows = _with(records, kind, {"name_typo", "name_homophone"})
        assert (rows["name"] == rows["true_name"]).all(), rows.loc[rows["name"] != rows["true_name"], "record_ref"].tolist()
        assert (rows["name_delivered"] != rows["true_name"]).all()  # the original is kept beside
    rows = _with(records, "date_format", {"value_conflict"})
    assert (rows["birth_date"].isna() | (rows["birth_date"] == rows["true_birth_date"])).all()
    assert rows["birth_date"].notna().sum() >= 2
    unknown = _with(records, "sex_code_unknown")
    assert unknown["sex"].isna().all() and unknown["issues"].str.contains("CODE_UNMAPPED").all()
    unlabelled = records[records["labels"].map(lambda s: not s & {"sex_code_unknown"})]
    assert not unlabelled["issues"].fillna("").str.contains("CODE_UNMAPPED").any()


def test_unknown_codes_are_reported_per_file_with_their_count(e2e, records, delta):
    var, r = e2e
    issues = delta("standardized.issues").where("batch = '2026-01-01' AND code = 'CODE_UNMAPPED'")
    reported = {(x["file"], x["field"]): x["count"] for x in issues.collect()}
    assert reported == {("birth.csv", "sex"): len(_with(records, "sex_code_unknown"))}
    # The summary counts per file, field and column (two columns may feed one field).
    assert r["first_summary"]["issues"]["weijian/birth.csv:sex(新生儿性别):CODE_UNMAPPED"] == reported[("birth.csv", "sex")]


def test_name_and_linkage_defects_link_to_the_right_person(records):
    majority = _majority_entity(records)
    for kind in ("name_typo", "name_homophone", "name_traditional", "name_width", "duplicate", "date_format",
                 "value_conflict", "address_stale"):
        rows = _with(records, kind)
        right = rows["entity_id"] == rows["entity"].map(majority)
        assert right.mean() >= 0.99, (kind, (~right).sum())
    dup = _with(records, "duplicate")
    for _, copies in records[records["entity"].isin(dup["entity"])].groupby(["entity", "extract"]):
        assert copies["entity_id"].nunique() == 1


def test_value_defects_become_discrepancies_for_the_agency(e2e, records, delta):
    found = {(d["entity_id"], d["field"], d["agency"]) for d in
             delta("verified.discrepancies").where("first_seen = '2026-01-01'").collect()}
    stale = _with(records, "address_stale")
    agency = stale["record_ref"].str.split(":").str[0]
    assert all((e, "address_code", a) in found for e, a in zip(stale["entity_id"], agency))
    conflicts = _with(records, "value_conflict")
    for _, row in conflicts.iterrows():
        agency = row["record_ref"].split(":")[0]
        wrong = [f for f in ("sex", "birth_date") if pd.notna(row[f]) and row[f] != row[f"true_{f}"]]
        assert all((row["entity_id"], f, agency) in found for f in wrong), row["record_ref"]
    # An error in the source of record: every other agency's right birth date disagrees with it.
    errors = _with(records, "authority_error")
    others = records[records["entity"].isin(errors["entity"]) & ~records["record_ref"].str.startswith("gongan:")
                     & (records["birth_date"] == records["true_birth_date"])]
    assert len(others) >= 1
    assert all((e, "birth_date", ref.split(":")[0]) in found for e, ref in zip(others["entity_id"], others["record_ref"]))


def test_deceased_still_insured_are_listed_for_analysts(e2e, records):
    _, r = e2e
    assert r["sql"].returncode == 0, r["sql"].stderr[-2000:]
    expected = set(_with(records, "deceased_active")["entity_id"])
    listed = {e for e in records["entity_id"].dropna().unique() if e in r["sql"].stdout}
    assert expected and expected <= listed
    dead = set(records.loc[records["true_death_date"] != "", "entity_id"])
    assert listed <= dead  # nobody alive is listed


def test_evaluation_meets_the_targets_and_covers_every_population_defect_kind(e2e):
    var, r = e2e
    assert r["evaluate"].returncode == 0, r["evaluate"].stderr[-3000:]
    report = json.loads((var / "evaluation-population.json").read_text(encoding="utf-8"))
    assert report["precision"] >= 0.999 and report["recall"] >= 0.9975, report
    assert report["golden_accuracy"] >= 0.995, report["fields"]
    assert report["records_rejected"] > 0  # 公安's cut batch-2 file: reported, not linked
    assert POPULATION_KINDS <= set(report["defects"]), POPULATION_KINDS - set(report["defects"])
    for kind in POPULATION_KINDS:
        assert report["defects"][kind]["linked_correctly"] >= 0.95, (kind, report["defects"][kind])


def test_published_table_is_queryable_by_name(e2e):
    _, r = e2e
    assert r["sql"].returncode == 0, r["sql"].stderr[-3000:]
    assert f"persons={r['second_summary']['published']['rows']}" in r["sql"].stdout


def test_failed_gate_leaves_published_version_and_rerun_duplicates_nothing(e2e, delta):
    var, r = e2e
    assert r["strict"].returncode != 0
    s = r["strict_summary"]
    assert s["gate"]["passed"] is False and s["published"] is None
    assert [f["expectation"] for f in s["gate"]["failures"] if f["severity"] == "critical"] == [
        "expect_table_row_count_to_be_between"
    ]
    assert "expect_table_row_count_to_be_between" in r["strict"].stdout + r["strict"].stderr
    assert Path(s["data_docs"]).exists()
    assert r["published_versions_after_strict"] == r["published_versions_before_strict"]
    assert len(r["published_versions_before_strict"]) == 2  # one version per batch's publish
    for table, column in (("staging.gongan__household", "_row"), ("resolved.population__person_links", "record_ref")):
        batch_col = "_batch" if table.startswith("staging") else "batch"
        rows = delta(table).where(F.col(batch_col) == "2026-01-01")
        assert rows.count() == rows.select(column).distinct().count() > 0, table


def test_rejected_delivery_is_recorded_and_the_rest_goes_on(e2e, delta):
    var, r = e2e
    s = r["second_summary"]
    assert [(d["agency"], d["extract"]) for d in s["deliveries_rejected"]] == [("gongan", "household")]
    assert "household.csv: sha256 does not match" in s["deliveries_rejected"][0]["reason"]
    deliveries = defaultdict(set)
    for d in delta("landing.deliveries").where("batch = '2026-02-01'").collect():
        deliveries[d["status"]].add(d["agency"])
    assert deliveries["rejected"] == {"gongan"} and "renshe" in deliveries["accepted"]
    assert delta("staging.gongan__household").where("_batch = '2026-02-01'").count() == 0
    assert delta("resolved.population__person_links").where("batch = '2026-02-01' AND agency = 'renshe'").count() > 0
    discrepancies = delta("verified.discrepancies")
    assert discrepancies.select("discrepancy_id").distinct().count() == discrepancies.count()
    resolved = discrepancies.where("status = 'resolved' AND resolved_in = '2026-02-01'").count()
    still_open = discrepancies.where("status IN ('new', 'open', 'reopened')").count()
    assert resolved + still_open >= r["first_summary"]["discrepancies"]["by_status"]["new"]
