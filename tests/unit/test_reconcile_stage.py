"""The reconciliation job over real Delta tables: reports for every agency from verified.discrepancies,
answers imported once however often the file is imported."""

import pandas as pd
from openpyxl import load_workbook

from jichu.core import tables
from jichu.core.verify import DISCREPANCY_SCHEMA
from jichu.reconcile.report import HEADERS
from jichu.reconcile.stage import deliver, import_answers


def test_reports_for_every_agency_and_answers_stored_once(spark, tmp_path):
    rows = [
        ("A1", "population", "P1", "name", "weijian", "VALUE_MISMATCH", "major", "王玮", "王玮", "2026-02-01", "weijian:birth:2026-02-01:3",
         "王伟", "gongan", "2026-01-01", "gongan:household:2026-01-01:1", "open", "2026-01-01", "2026-02-01", None, 0, None),
        ("B1", "legal_entities", "L1", "tax_status", "shuiwu", "DEREGISTERED_STILL_FILING", "major", "正常", "正常", "2026-02-01",
         "shuiwu:taxpayer:2026-02-01:5", "注销", "shichang", "2026-01-01", "shichang:market_entity:2026-01-01:2", "new",
         "2026-02-01", "2026-02-01", None, 0, None),
    ]
    spark.sql("DROP TABLE IF EXISTS reconcile.answers")
    spark.sql("DROP TABLE IF EXISTS reconcile.trend")
    tables.overwrite(spark.createDataFrame(rows, DISCREPANCY_SCHEMA), "verified.discrepancies")
    try:
        earlier = tmp_path / "renshe" / "2026-02-01"  # a first run of the batch reported to 人社; this one has nothing for it
        earlier.mkdir(parents=True)
        manifests = deliver(spark, "2026-02-01", tmp_path)
        assert sorted(manifests) == ["province", "shuiwu", "weijian"]
        assert sorted(p.parent.name for p in tmp_path.glob("*/2026-02-01")) == ["province", "shuiwu", "weijian"]
        workbook = tmp_path / "weijian" / "2026-02-01" / "jichu-weijian-2026-02-01.xlsx"
        book = load_workbook(workbook)
        assert book.sheetnames == ["说明", "VALUE_MISMATCH"]
        sheet = book["VALUE_MISMATCH"]
        column = [c.value for c in sheet[1]].index(HEADERS["disposition"]) + 1
        sheet.cell(row=2, column=column, value="将更正")
        book.save(workbook)

        for _ in range(2):  # imported twice: stored once
            stored, errors = import_answers(spark, workbook, "weijian", "2026-02-01")
            assert (stored, errors) == (1, [])
        answers = spark.table("reconcile.answers").collect()
        assert [(a["discrepancy_id"], a["agency"], a["disposition"], a["answered_batch"]) for a in answers] == [
            ("A1", "weijian", "will_correct", "2026-02-01")]

        # 人社 returning 卫健's file is refused row by row, and nothing of it is stored.
        stored, errors = import_answers(spark, workbook, "renshe", "2026-02-01")
        assert stored == 0 and [e.code for e in errors] == ["WRONG_AGENCY"]
        assert spark.table("reconcile.answers").count() == 1
        trend = pd.DataFrame(spark.table("reconcile.trend").collect(), columns=["agency", "batch", "open"])
        assert sorted(trend.itertuples(index=False, name=None)) == [("shuiwu", "2026-02-01", 1), ("weijian", "2026-02-01", 1)]
    finally:
        for t in ("verified.discrepancies", "reconcile.answers", "reconcile.trend"):
            spark.sql(f"DROP TABLE IF EXISTS {t}")
