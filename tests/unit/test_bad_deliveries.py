"""Bad deliveries through the real ingest and standardize stages (Delta tables in the test's metastore):
a rejected delivery leaves nothing of its batch behind, the row bounds of conf/extracts are enforced,
and the run's issue counts are per column.

The files are small literal deliveries written with a manifest into a scratch landing folder.
"""

from __future__ import annotations

import json
import logging
import shutil
from datetime import date
from pathlib import Path

import pytest
from openpyxl import Workbook
from pyspark.sql import functions as F

from jichu.config import ROOT, load_extracts, load_profile
from jichu.core import tables
from jichu.core.landing import csv_bytes, write_manifest
from jichu.core.runs import RunRecorder
from jichu.demo.faults import make_ric
from jichu.pipeline import DELIVERIES, ISSUES, QUARANTINE, Run, ingest, standardize

BATCH = "2026-01-01"
RECORDS = "standardized.population__person"
IDS = [make_ric("420106", date(1990, 5, 17), n) for n in range(1, 7)]
HOUSEHOLD = ["公民身份号码", "姓名", "性别", "民族", "出生日期", "户籍地行政区划代码", "登记日期", "住址", "户号", "与户主关系"]
HOUSEHOLD_ROWS = [
    [IDS[0], "王小明", "1", "01", "19900517", "420106", "2012-03-09", "某路1号", "H1", "户主"],
    [IDS[1], "李四", "X", "01", "19900517", "420106", "2012-03-09", "某路2号", "H2", "户主"],  # sex X: an issue
    [IDS[2], "", "1", "01", "19900517", "420106", "2012-03-09", "某路3号", "H3", "户主"],     # no name: quarantined
]
NAMES = ("王小明", "李四", "张伟", "赵敏")


def _wrong_check(number: str) -> str:
    return number[:-1] + ("0" if number[-1] != "0" else "1")


@pytest.fixture
def clean(spark):
    made = [DELIVERIES, RECORDS, QUARANTINE, ISSUES, *[f"staging.{ex.key}" for ex in load_extracts("population")]]

    def drop():
        for t in made:
            spark.sql(f"DROP TABLE IF EXISTS {t}")
    drop()
    yield
    drop()


@pytest.fixture
def run(spark, population, tmp_path, clean):
    profile = load_profile().model_copy(update={"landing": str(tmp_path / "landing")})
    return Run(spark, profile, population, BATCH, RunRecorder("test-bad-deliveries", "population", "person", BATCH))


def _deliver(run: Run, agency: str, name: str, extract: str, rows: int, write) -> Path:
    """One file, made by `write(path)`, in the agency's landing folder for the batch, with a manifest
    that describes it."""
    folder = Path(run.profile.landing) / agency / BATCH
    folder.mkdir(parents=True, exist_ok=True)
    write(folder / name)
    write_manifest(folder, agency, BATCH, [{"name": name, "extract": extract, "schema_version": 1, "rows": rows}])
    return folder / name


def _household(run: Run, rows: list[list[str]]) -> Path:
    data = csv_bytes(HOUSEHOLD, rows, "gb18030")
    return _deliver(run, "gongan", "household.csv", "household", len(rows), lambda path: path.write_bytes(data))


def _insured(run: Run, n: int) -> Path:
    lines = [json.dumps({"aac002": IDS[3 + i], "aac003": "张伟", "aac004": "1", "aac006": "19900517", "aac008": "1",
                         "aab001": "", "aab301": "420106", "aac007": "20000101"}, ensure_ascii=False) for i in range(n)]
    data = ("\n".join(lines) + "\n").encode("utf-8")
    return _deliver(run, "renshe", "insured.jsonl", "insured", n, lambda path: path.write_bytes(data))


def _gongan_rows(spark) -> dict[str, int]:
    """Rows of 公安's household extract for the batch in every table a rerun must clear."""
    where = (F.col("agency") == "gongan") & (F.col("batch") == BATCH)
    return {
        "staging": spark.table("staging.gongan__household").where(F.col("_batch") == BATCH).count(),
        "records": spark.table(RECORDS).where(where).count(),
        "quarantine": spark.table(QUARANTINE).where(where).count(),
        "issues": spark.table(ISSUES).where(where).count(),
    }


def _cut_short(run: Run, path) -> str:
    """The file changed after its manifest was written (truncated in transfer): the sha256 fails."""
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 5])
    return "household.csv: sha256 does not match"


def _header_only(run: Run, path) -> str:
    """A whole, well-described file with a header and no rows: below 公安's rows.min of 1."""
    _household(run, [])
    return "household.csv: 0 data rows, below the minimum of 1 (rows.min of gongan__household)"


# Each is a whole batch twice through ingest and standardize; the cut-short one is in make test-slow.
@pytest.mark.parametrize("spoil", [pytest.param(_cut_short, marks=pytest.mark.slow), _header_only])
def test_a_rejected_rerun_leaves_nothing_of_the_earlier_attempt(spark, run, spoil, caplog):
    household = _household(run, HOUSEHOLD_ROWS)
    _insured(run, 2)
    ingest(run)
    standardize(run)
    assert _gongan_rows(spark) == {"staging": 3, "records": 2, "quarantine": 1, "issues": 1}

    expected_reason = spoil(run, household)
    with caplog.at_level(logging.INFO, logger="jichu"):
        figures = ingest(run)
        standardized = standardize(run)

    assert [(r["agency"], r["extract"]) for r in figures["rejected"]] == [("gongan", "household")]
    assert expected_reason in figures["rejected"][0]["reason"]
    recorded = {(r["agency"], r["extract"]): (r["status"], r["reason"]) for r in tables.read_slice(
        spark, DELIVERIES, {"domain": "population", "batch": BATCH}).collect()}
    assert recorded[("gongan", "household")][0] == "rejected" and expected_reason in recorded[("gongan", "household")][1]
    assert recorded[("renshe", "insured")] == ("accepted", "")
    assert _gongan_rows(spark) == {"staging": 0, "records": 0, "quarantine": 0, "issues": 0}
    # The other agency's delivery of the batch still goes through, and the accounting still balances.
    assert spark.table(RECORDS).where((F.col("agency") == "renshe") & (F.col("batch") == BATCH)).count() == 2
    accounting = {a["extract"]: (a["records"], a["standardized"], a["quarantined"]) for a in standardized["accounting"]}
    assert accounting == {"gongan__household": (0, 0, 0), "renshe__insured": (2, 2, 0)}
    assert not any(name in caplog.text for name in NAMES)  # file, row, field and reason: never a value


def test_more_rows_than_the_maximum_warn_and_are_staged(spark, run, tmp_path, monkeypatch, caplog):
    conf = tmp_path / "conf"
    shutil.copytree(ROOT / "conf", conf)
    adapter = conf / "extracts" / "renshe__insured.yaml"
    text = adapter.read_text(encoding="utf-8")
    assert "rows: {min: 1}" in text
    adapter.write_text(text.replace("rows: {min: 1}", "rows: {min: 1, max: 2}"), encoding="utf-8")
    monkeypatch.setenv("JICHU_CONF", str(conf))
    _insured(run, 3)

    with caplog.at_level(logging.WARNING, logger="jichu"):
        figures = ingest(run)

    assert figures["rejected"] == [] and figures["staged"] == {"renshe__insured": 3}
    [warning] = figures["warnings"]
    assert (warning["agency"], warning["extract"]) == ("renshe", "insured")
    assert warning["warning"].endswith("insured.jsonl: 3 data rows, above the maximum of 2 (rows.max of renshe__insured)")
    assert warning["warning"] in caplog.text
    assert spark.table("staging.renshe__insured").where(F.col("_batch") == BATCH).count() == 3


def test_issue_counts_of_two_columns_feeding_one_field_are_kept_apart(spark, run):
    """民政's marriage rows carry the husband's and the wife's ID number: three wrong check characters,
    two in 男方身份证件号 and one in 女方身份证件号, are counted per column, not one count over the other."""
    header = ["业务类型", "男方身份证件号", "男方姓名", "男方出生日期", "女方身份证件号", "女方姓名", "女方出生日期", "登记日期",
              "登记机关代码", "登记机关名称"]
    rows = [
        ["结婚登记", _wrong_check(IDS[0]), "王小明", "1990年5月17日", IDS[1], "李四", "1990年5月17日", "2024年3月11日", "420106", "某登记处"],
        ["结婚登记", _wrong_check(IDS[2]), "张伟", "1990年5月17日", _wrong_check(IDS[3]), "赵敏", "1990年5月17日", "2024年3月11日",
         "420106", "某登记处"],
    ]
    book = Workbook()
    sheet = book.active
    for row in [header, *rows]:
        sheet.append(row)
    _deliver(run, "minzheng", "marriage.xlsx", "marriage", len(rows), book.save)
    ingest(run)

    issues = standardize(run)["issues"]

    assert issues == {
        "minzheng/marriage.xlsx:id_number(女方身份证件号):ID_CHECKSUM": 1,
        "minzheng/marriage.xlsx:id_number(男方身份证件号):ID_CHECKSUM": 2,
    }
