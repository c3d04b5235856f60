"""Three runs with the agencies' answers in between, through the real golden and verify stages, the real
reconciliation job and the workbooks it delivers (Delta tables in the test's metastore).

Run 1 finds three items: 卫健's name and birth date of P1 and P3, 人社's sex of P2. 卫健 answers that it
will correct P1's name and that its birth date of P3 is right; 人社 that it will correct P2's sex.
Run 2: 人社 corrected (resolved), 卫健 did not (open), and 卫健's answer puts P3's birth date to 公安 (a new
DISPUTED_BY_AGENCY item in 公安's report). 公安 answers that it will correct.
Run 3: 公安 corrected P3 (卫健's item and the dispute resolved), 人社's error is back (reopened), and P1's
name, promised two batches ago, is still wrong (escalated).
"""

from __future__ import annotations

import pandas as pd
import pytest
from openpyxl import load_workbook

from jichu.config import load_profile
from jichu.core import tables
from jichu.core.runs import RunRecorder
from jichu.core.statements import STATEMENT_SCHEMA
from jichu.pipeline import DELIVERIES, Run, golden, verify
from jichu.reconcile.report import DISPOSITIONS, HEADERS, STATUS_LABELS
from jichu.reconcile.stage import deliver, import_answers

BATCHES = ["2026-01-01", "2026-02-01", "2026-03-01"]
# (entity, field, agency) -> value delivered in each batch (None: not delivered).
DELIVERED = {
    ("P1", "name", "gongan"): ["王伟", "王伟", "王伟"],
    ("P1", "name", "weijian"): ["王玮", "王玮", "王玮"],
    ("P2", "sex", "gongan"): ["1", "1", "1"],
    ("P2", "sex", "renshe"): ["2", "1", "2"],
    ("P3", "birth_date", "gongan"): ["1990-01-01", "1990-01-01", "1990-01-10"],
    ("P3", "birth_date", "weijian"): ["1990-01-10", "1990-01-10", "1990-01-10"],
}
MADE = ["statements.population__person", "golden.population__person", "golden.population__person_history",
        "golden.population__person_touched", DELIVERIES, "verified.discrepancies", "reconcile.answers", "reconcile.trend"]


@pytest.fixture
def clean(spark):
    def drop():
        for t in MADE:
            spark.sql(f"DROP TABLE IF EXISTS {t}")
    drop()
    yield
    drop()


def _run(spark, population, batch: str, i: int, outbox) -> dict[str, pd.DataFrame]:
    """Deliver batch i, run golden and verify, then the reconciliation job: each agency's CSV as read back."""
    rows = [(e, f, v[i], a, "x", batch, f"{a}:x:{batch}:{e}", v[i], None, f"{a}:x:{e}", None)
            for (e, f, a), v in DELIVERED.items()]
    tables.replace_slice(spark.createDataFrame(rows, STATEMENT_SCHEMA), "statements.population__person", {"batch": batch})
    tables.replace_slice(spark.createDataFrame([("population", "person", batch)], "domain string, entity string, batch string"),
                         DELIVERIES, {"domain": "population", "entity": "person", "batch": batch})
    run = Run(spark, load_profile(), population, batch, RunRecorder(f"lifecycle-{batch}", "population", "person", batch))
    golden(run)
    verify(run)
    deliver(spark, batch, outbox)
    return {a: pd.read_csv(outbox / a / batch / f"jichu-{a}-{batch}.csv", dtype=str, keep_default_na=False, encoding="utf-8-sig")
            for a in ("gongan", "weijian", "renshe") if (outbox / a / batch).exists()}


def _status(reports, agency: str) -> set[tuple[str, str, str]]:
    r = reports[agency]
    return set(zip(r[HEADERS["field"]], r[HEADERS["rule"]], r[HEADERS["status"]]))


def _answer(spark, outbox, agency: str, batch: str, dispositions: dict[str, str]) -> None:
    """The agency fills 处理意见 in its workbook for the items of the given fields (字段, as the report names
    them) and sends it back."""
    path = outbox / agency / batch / f"jichu-{agency}-{batch}.xlsx"
    book = load_workbook(path)
    for sheet in book.worksheets[1:]:
        header = [c.value for c in sheet[1]]
        field, answer = header.index(HEADERS["field"]), header.index(HEADERS["disposition"]) + 1
        for row in range(2, sheet.max_row + 1):
            chosen = dispositions.get(sheet.cell(row=row, column=field + 1).value)
            if chosen:
                sheet.cell(row=row, column=answer, value=DISPOSITIONS[chosen])
    book.save(path)
    stored, errors = import_answers(spark, path, agency, batch)
    assert (stored, errors) == (len(dispositions), [])


@pytest.mark.slow  # three runs of verify and reconcile: minutes of Delta commits (make test-slow)
def test_three_runs_with_answers_show_new_resolved_reopened_and_escalated(spark, population, clean, tmp_path):
    s = STATUS_LABELS
    first = _run(spark, population, BATCHES[0], 0, tmp_path)
    assert sorted(first) == ["renshe", "weijian"]  # 公安, the source of record, has nothing to answer yet
    assert _status(first, "weijian") == {("姓名", "VALUE_MISMATCH", s["new"]), ("出生日期", "VALUE_MISMATCH", s["new"])}
    assert _status(first, "renshe") == {("性别", "VALUE_MISMATCH", s["new"])}
    _answer(spark, tmp_path, "weijian", BATCHES[0], {"姓名": "will_correct", "出生日期": "ours_right"})
    _answer(spark, tmp_path, "renshe", BATCHES[0], {"性别": "will_correct"})

    second = _run(spark, population, BATCHES[1], 1, tmp_path)
    assert _status(second, "weijian") == {("姓名", "VALUE_MISMATCH", s["open"]), ("出生日期", "VALUE_MISMATCH", s["open"])}
    assert _status(second, "renshe") == {("性别", "VALUE_MISMATCH", s["resolved"])}
    assert _status(second, "gongan") == {("出生日期", "DISPUTED_BY_AGENCY", s["new"])}
    disputed = second["gongan"].iloc[0]
    assert (disputed[HEADERS["value"]], disputed[HEADERS["golden_value"]], disputed[HEADERS["golden_agency"]]) == (
        "1990-01-01", "1990-01-10", "卫健")
    _answer(spark, tmp_path, "gongan", BATCHES[1], {"出生日期": "will_correct"})

    third = _run(spark, population, BATCHES[2], 2, tmp_path)
    assert _status(third, "weijian") == {("姓名", "VALUE_MISMATCH", s["escalated"]), ("出生日期", "VALUE_MISMATCH", s["resolved"])}
    assert _status(third, "renshe") == {("性别", "VALUE_MISMATCH", s["reopened"])}
    assert _status(third, "gongan") == {("出生日期", "DISPUTED_BY_AGENCY", s["resolved"])}

    # The table keeps every agency's value beside an item; the agency's report shows only its own.
    evidence = spark.table("verified.discrepancies").where("entity_id = 'P1' AND agency = 'weijian'").first()["evidence"]
    assert [(e["agency"], e["value"], e["record_ref"]) for e in evidence] == [
        ("gongan", "王伟", f"gongan:x:{BATCHES[2]}:P1"), ("weijian", "王玮", f"weijian:x:{BATCHES[2]}:P1")]
    assert "gongan:x" not in (tmp_path / "weijian" / BATCHES[2] / f"jichu-weijian-{BATCHES[2]}.csv").read_text(encoding="utf-8-sig")
    # Each agency's files hold its own items only, and every id is one the table gives to that agency.
    owners = {r["discrepancy_id"]: r["agency"] for r in spark.table("verified.discrepancies").collect()}
    for agency, report in third.items():
        assert {owners[i] for i in report[HEADERS["discrepancy_id"]]} == {agency}
    # The province summary counts the escalated and reopened items as open, the resolved ones not.
    trend = {(r["agency"], r["batch"]): r["open"] for r in spark.table("reconcile.trend").collect()}
    assert [trend.get((a, BATCHES[2]), 0) for a in ("gongan", "weijian", "renshe")] == [0, 1, 1]
    summary = pd.read_excel(tmp_path / "province" / BATCHES[2] / f"jichu-province-{BATCHES[2]}.xlsx").set_index(["单位", "规则"])
    assert summary.loc[("卫健", "VALUE_MISMATCH"), ["未解决", "已升级", "本批次解决", "累计解决"]].tolist() == [1, 1, 1, 1]
    assert summary.loc[("人社", "VALUE_MISMATCH"), ["未解决", "已升级"]].tolist() == [1, 0]
