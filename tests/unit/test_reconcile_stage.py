"""The reconciliation job over real Delta tables: reports for every agency from verified.discrepancies,
with each agency's own record key from staging; answers kept per import, the latest one current, and
imported once however often the file is imported."""

import re
import shutil

import pandas as pd
import pytest
from openpyxl import load_workbook

from jichu.cli import main
from jichu.config import conf_dir, entity_types, load_entity, load_extracts
from jichu.core import tables
from jichu.core.verify import DISCREPANCY_SCHEMA, RULE_SUSPECTED_SOURCE_ERROR, RULE_VALUE_MISMATCH
from jichu.demo import legal, population
from jichu.reconcile.report import HEADERS
from jichu.reconcile.routing import RULE_DISPUTED, latest_answers
from jichu.reconcile.stage import deliver, import_answers, rule_descriptions

BATCH = "2026-02-01"
ROWS = [
    ("A1", "population", "person", "P1", "name", "weijian", "VALUE_MISMATCH", "major", "王玮", "王玮", BATCH, f"weijian:birth:{BATCH}:3",
     "王伟", "gongan", "2026-01-01", "gongan:household:2026-01-01:1", "open", "2026-01-01", BATCH, None, 0, None),
    ("B1", "legal_entities", "entity", "L1", "tax_status", "shuiwu", "DEREGISTERED_STILL_FILING", "major", "正常", "正常", BATCH,
     f"shuiwu:taxpayer:{BATCH}:5", "注销", "shichang", "2026-01-01", "shichang:market_entity:2026-01-01:2", "new",
     BATCH, BATCH, None, 0, None),
]
MADE = ["verified.discrepancies", "reconcile.answers", "reconcile.trend", "staging.weijian__birth", "staging.minzheng__marriage"]


@pytest.fixture
def discrepancies(spark):
    def drop():
        for t in MADE:
            spark.sql(f"DROP TABLE IF EXISTS {t}")
    drop()
    tables.overwrite(spark.createDataFrame(ROWS, DISCREPANCY_SCHEMA), "verified.discrepancies")
    yield
    drop()


def _answered(source, path, disposition):
    """A copy of the workbook at `path` with 处理意见 of its first item set, as a clerk returns it."""
    shutil.copy(source, path)
    book = load_workbook(path)
    sheet = book.worksheets[1]
    sheet.cell(row=2, column=[c.value for c in sheet[1]].index(HEADERS["disposition"]) + 1, value=disposition)
    book.save(path)
    return path


def test_reports_for_every_agency_and_answers_stored_once(spark, discrepancies, tmp_path):
    outbox = tmp_path / "outbox"
    earlier = outbox / "renshe" / BATCH  # a first run of the batch reported to 人社; this one has nothing for it
    earlier.mkdir(parents=True)
    manifests = deliver(spark, BATCH, outbox)
    assert sorted(manifests) == ["province", "shuiwu", "weijian"]
    assert sorted(p.parent.name for p in outbox.glob(f"*/{BATCH}")) == ["province", "shuiwu", "weijian"]
    summary = load_workbook(outbox / "shuiwu" / BATCH / f"jichu-shuiwu-{BATCH}.xlsx")["说明"]
    explained = {row[0]: row[1] for row in summary.iter_rows(values_only=True)}
    rules = {r.code: r.description for r in load_entity("legal_entities", "entity").rules}
    assert explained["DEREGISTERED_STILL_FILING"] == rules["DEREGISTERED_STILL_FILING"]
    workbook = _answered(outbox / "weijian" / BATCH / f"jichu-weijian-{BATCH}.xlsx", tmp_path / "r.xlsx", "将更正")
    assert load_workbook(workbook).sheetnames == ["说明", "VALUE_MISMATCH"]

    for _ in range(2):  # imported twice: stored once
        stored, errors = import_answers(spark, workbook, "weijian", BATCH)
        assert (stored, errors) == (1, [])
    answers = spark.table("reconcile.answers").collect()
    assert [(a["discrepancy_id"], a["agency"], a["disposition"], a["answered_batch"]) for a in answers] == [
        ("A1", "weijian", "will_correct", BATCH)]

    # 人社 returning 卫健's file is refused row by row, and nothing of it is stored.
    stored, errors = import_answers(spark, workbook, "renshe", BATCH)
    assert stored == 0 and [e.code for e in errors] == ["WRONG_AGENCY"]
    assert spark.table("reconcile.answers").count() == 1
    trend = pd.DataFrame(spark.table("reconcile.trend").collect(), columns=["agency", "batch", "open"])
    assert sorted(trend.itertuples(index=False, name=None)) == [("shuiwu", BATCH, 1), ("weijian", BATCH, 1)]


def test_every_import_is_kept_and_the_latest_is_the_current_answer(spark, discrepancies, tmp_path):
    deliver(spark, BATCH, tmp_path)
    sent = tmp_path / "weijian" / BATCH / f"jichu-weijian-{BATCH}.xlsx"
    # Named so that the later file sorts first: the order of import decides, not the name.
    first = _answered(sent, tmp_path / "z-first.xlsx", "其他")
    later = _answered(sent, tmp_path / "a-later.xlsx", "非我方记录")

    def current():
        return [(a["discrepancy_id"], a["disposition"], a["file"])
                for a in latest_answers(spark.table("reconcile.answers")).collect()]

    for path in (first, later, later):  # the later file imported twice: stored once
        assert import_answers(spark, path, "weijian", BATCH) == (1, [])
    history = spark.table("reconcile.answers").collect()
    assert sorted((a["disposition"], a["file"]) for a in history) == [("not_ours", "a-later.xlsx"), ("other", "z-first.xlsx")]
    assert current() == [("A1", "not_ours", "a-later.xlsx")]

    # The first file imported again is the latest import now: its answer is current, nothing is duplicated.
    assert import_answers(spark, first, "weijian", BATCH) == (1, [])
    assert spark.table("reconcile.answers").count() == 2
    assert current() == [("A1", "other", "z-first.xlsx")]


def test_answers_stored_before_imports_were_kept_apart_are_history_of_the_next_import(spark, discrepancies, tmp_path):
    legacy = "discrepancy_id string, agency string, disposition string, comment string, answered_batch string, file string, row int"
    tables.overwrite(spark.createDataFrame([("A1", "weijian", "will_correct", "", BATCH, "r.xlsx", 2)], legacy), "reconcile.answers")
    assert [a["disposition"] for a in latest_answers(spark.table("reconcile.answers")).collect()] == ["will_correct"]
    deliver(spark, BATCH, tmp_path)
    returned = _answered(tmp_path / "weijian" / BATCH / f"jichu-weijian-{BATCH}.xlsx", tmp_path / "r.xlsx", "其他")
    assert import_answers(spark, returned, "weijian", BATCH) == (1, [])
    assert sorted((a["disposition"], a["import_id"] is None) for a in spark.table("reconcile.answers").collect()) == [
        ("other", False), ("will_correct", True)]
    assert [a["disposition"] for a in latest_answers(spark.table("reconcile.answers")).collect()] == ["other"]


def test_reports_show_the_agencys_own_record_key_and_the_file_row(spark, discrepancies, tmp_path):
    staged = [(f"weijian:birth:{BATCH}:{row}", BATCH, "birth.csv", row, f"Q4201{row:05d}") for row in (2, 3)]
    tables.replace_slice(
        spark.createDataFrame(staged, "_record_ref string, _batch string, _file string, _row long, `出生医学证明编号` string"),
        "staging.weijian__birth", {"_batch": BATCH}, properties=tables.AS_DELIVERED)
    # An extract without a record key of its own; a role's record is its row's.
    tables.replace_slice(
        spark.createDataFrame([(f"minzheng:marriage:{BATCH}:7", BATCH, "marriage.xlsx", 7)],
                              "_record_ref string, _batch string, _file string, _row long"),
        "staging.minzheng__marriage", {"_batch": BATCH}, properties=tables.AS_DELIVERED)
    more = [
        ROWS[0][:5] + ("minzheng",) + ROWS[0][6:11] + (f"minzheng:marriage:{BATCH}:7#wife",) + ROWS[0][12:],
        # Another agency's item naming 卫健's row (it never does): 卫健's key is not looked up for it.
        ROWS[0][:5] + ("renshe",) + ROWS[0][6:],
    ]
    tables.overwrite(spark.createDataFrame([ROWS[0], *[(f"X{i}",) + r[1:] for i, r in enumerate(more)]], DISCREPANCY_SCHEMA),
                     "verified.discrepancies")
    deliver(spark, BATCH, tmp_path)

    def located(agency):
        report = pd.read_csv(tmp_path / agency / BATCH / f"jichu-{agency}-{BATCH}.csv", dtype=str, keep_default_na=False,
                             encoding="utf-8-sig")
        return report[[HEADERS["record_key"], HEADERS["record_row"]]].values.tolist()

    assert located("weijian") == [["Q420100003", "birth.csv 数据第3行"]]
    assert located("minzheng") == [["", "marriage.xlsx 数据第7行"]]
    assert located("renshe") == [["", ""]]
    # The returned workbook still imports: the locators are not evidence.
    workbook = _answered(tmp_path / "weijian" / BATCH / f"jichu-weijian-{BATCH}.xlsx", tmp_path / "r.xlsx", "将更正")
    assert import_answers(spark, workbook, "weijian", BATCH) == (1, [])


def test_an_unreadable_returned_file_is_one_line_and_a_failing_exit(spark, discrepancies, tmp_path, caplog):
    path = tmp_path / "returned.csv"
    path.write_bytes("核查编号,处理意见\r\nA1,将更正\r\n".encode("gb18030") + "A2,€\r\n".encode("cp1252"))
    assert main(["answers", "import", str(path), "--agency", "weijian", "--batch", BATCH]) == 2
    refused = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert refused == ["returned.csv, row 3: ENCODING_INVALID: byte 0x80 is not UTF-8, UTF-16 or GB18030 text; "
                       "save the file as an Excel workbook or as CSV UTF-8"]


def test_every_rule_an_agency_can_see_is_explained_in_chinese():
    domains = sorted(p.stem for p in (conf_dir() / "domains").glob("*.yaml"))
    seen = {RULE_VALUE_MISMATCH, RULE_SUSPECTED_SOURCE_ERROR, RULE_DISPUTED} | {
        r.code for e in entity_types(domains) for r in e.rules}
    described = rule_descriptions(domains)
    # Chinese, and no English word in it (two letters, as in GB 32100, may appear).
    unexplained = sorted(c for c in seen if not re.search(r"[\u4e00-\u9fff]", described.get(c, ""))
                         or re.search(r"[A-Za-z]{3,}", described.get(c, "")))
    assert unexplained == []


def test_every_record_key_is_a_column_its_agency_delivers():
    delivered = {spec.key: spec.columns for spec in (*population.EXTRACTS, *legal.EXTRACTS)}
    keyed = {ex.key: ex.record_key for ex in load_extracts() if ex.record_key}
    assert {"weijian__birth", "jiaoyu__student", "shichang__market_entity"} <= set(keyed)
    assert {k: c for k, c in keyed.items() if c not in delivered[k]} == {}
