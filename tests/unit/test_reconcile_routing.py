"""Answers change what happens next: runs with answers in between show new, open, resolved, reopened,
disputed and escalated items (Spark, pure functions over DataFrames)."""

from datetime import datetime

from jichu.core.authority import authority_rules, select_golden
from jichu.core.statements import STATEMENT_SCHEMA as STATEMENTS
from jichu.core.verify import DISCREPANCY_COLUMNS, DISCREPANCY_SCHEMA, evolve_discrepancies, find_discrepancies
from jichu.reconcile.routing import ANSWERS_SCHEMA, disputes, escalate, latest_answers


def _run(spark, population, previous, rows, batch, answers, batches):
    """One verify run as the pipeline does it: find, add disputes, evolve, escalate."""
    st = spark.createDataFrame(
        [(e, f, v, a, "x", b, f"{a}:x:{b}:{i}", v, None, f"{a}:x:{e}", None) for i, (e, f, v, a, b) in enumerate(rows)],
        STATEMENTS)
    current = find_discrepancies(st, select_golden(st, authority_rules(spark, population)), population)
    current = current.unionByName(disputes(current, answers).select(*current.columns))
    evolved = evolve_discrepancies(previous, current, batch)
    return escalate(evolved, answers, batches, batch).localCheckpoint()


def _state(frame):
    return {(r["entity_id"], r["agency"], r["rule"]): r["status"] for r in frame.collect()}


def test_answers_route_disputes_to_the_authority_and_escalate_broken_promises(spark, population):
    batches = ["2026-01-01", "2026-02-01", "2026-03-01", "2026-04-01"]
    both = [("P1", "name", "王伟", "gongan", "2026-01-01"), ("P1", "name", "王玮", "weijian", "2026-01-01"),
            ("P2", "sex", "1", "gongan", "2026-01-01"), ("P2", "sex", "2", "renshe", "2026-01-01")]
    only_p1 = both[:2] + [("P2", "sex", "1", "gongan", "2026-01-01")]
    no_answers = spark.createDataFrame([], ANSWERS_SCHEMA)

    run1 = _run(spark, population, spark.createDataFrame([], DISCREPANCY_SCHEMA), both, batches[0], no_answers, batches)
    assert _state(run1) == {("P1", "weijian", "VALUE_MISMATCH"): "new", ("P2", "renshe", "VALUE_MISMATCH"): "new"}
    ids = {r["agency"]: r["discrepancy_id"] for r in run1.collect()}

    # 卫健 promises to correct; 人社 says its value is right.
    answers = spark.createDataFrame([
        (ids["weijian"], "weijian", "will_correct", "", batches[0], "r.xlsx", 2, "i1", datetime(2026, 1, 5)),
        (ids["renshe"], "renshe", "ours_right", "出生医学证明为女", batches[0], "r.xlsx", 2, "i2", datetime(2026, 1, 6)),
    ], ANSWERS_SCHEMA)
    run2 = _run(spark, population, run1, both, batches[1], answers, batches)
    assert _state(run2) == {("P1", "weijian", "VALUE_MISMATCH"): "open", ("P2", "renshe", "VALUE_MISMATCH"): "open",
                            ("P2", "gongan", "DISPUTED_BY_AGENCY"): "new"}
    dispute = run2.where("rule = 'DISPUTED_BY_AGENCY'").first()
    assert (dispute["value"], dispute["golden_value"], dispute["golden_agency"]) == ("1", "2", "renshe")

    # Two batches after the promise the item is still there: escalated. 人社 corrected: resolved, and so
    # is the dispute it raised.
    run3 = _run(spark, population, run2, only_p1, batches[2], answers, batches)
    assert _state(run3) == {("P1", "weijian", "VALUE_MISMATCH"): "escalated", ("P2", "renshe", "VALUE_MISMATCH"): "resolved",
                            ("P2", "gongan", "DISPUTED_BY_AGENCY"): "resolved"}

    run4 = _run(spark, population, run3, both, batches[3], answers, batches)
    assert _state(run4)[("P2", "renshe", "VALUE_MISMATCH")] == "reopened"
    assert _state(run4)[("P1", "weijian", "VALUE_MISMATCH")] == "escalated"


def test_the_latest_import_is_the_current_answer_whatever_batch_it_answered(spark):
    answers = spark.createDataFrame([
        ("D1", "weijian", "will_correct", "", "2026-03-01", "old.xlsx", 2, None, None),  # stored before imports were timed
        ("D1", "weijian", "ours_right", "", "2026-02-01", "b.xlsx", 2, "i1", datetime(2026, 2, 10)),
        ("D1", "weijian", "not_ours", "", "2026-01-01", "a.xlsx", 5, "i2", datetime(2026, 2, 20)),  # returned late
        ("D2", "renshe", "other", "", "2026-01-01", "a.xlsx", 3, None, None),
        ("D2", "renshe", "will_correct", "", "2026-02-01", "b.xlsx", 3, None, None),
    ], ANSWERS_SCHEMA)
    current = {(r["agency"], r["discrepancy_id"]): (r["disposition"], r["file"]) for r in latest_answers(answers).collect()}
    assert current == {("weijian", "D1"): ("not_ours", "a.xlsx"), ("renshe", "D2"): ("will_correct", "b.xlsx")}
    # What follows from an answer follows from the current one only: D1's earlier 我方值正确 disputes nothing.
    found = spark.createDataFrame([("D1", "population", "person", "P1", "sex", "weijian", "VALUE_MISMATCH", "major", "2", "2",
                                    "2026-02-01", "weijian:birth:2026-02-01:1", "1", "gongan", "2026-02-01",
                                    "gongan:household:2026-02-01:1")],
                                  ", ".join(f"{c} string" for c in DISCREPANCY_COLUMNS))
    assert disputes(found, answers).count() == 0
