"""An agency's report files and its returned answers: pure pandas, XlsxWriter and openpyxl, no Spark."""

import hashlib
import json

import pandas as pd
import pytest
from openpyxl import load_workbook

from jichu.reconcile.answers import check_answers
from jichu.reconcile.report import (
    HEADERS, neutralise, report_rows, write_csv, write_html, write_manifest, write_workbook,
)

RULES = {"VALUE_MISMATCH": "与权威来源的值不一致", "DEREGISTERED_STILL_FILING": "已注销仍正常申报"}


def _items():
    rows = [
        ("D1", "VALUE_MISMATCH", "major", "new", "2026-02-01", "2026-02-01", 0, "name", "=HYPERLINK(\"http://x\")", "宝亿科技有限公司", "shichang", "91420100MA4K000017", "taxpayer.jsonl 数据第7行", "2026-02-01"),
        ("D2", "VALUE_MISMATCH", "minor", "open", "2026-01-01", "2026-02-01", 31, "address", "+86 27 1234", "武汉市江汉区建设路1号", "shichang", "91420100MA4K000025", "taxpayer.jsonl 数据第9行", "2026-02-01"),
        ("D3", "DEREGISTERED_STILL_FILING", "major", "reopened", "2025-11-01", "2026-02-01", 92, "tax_status", "正常", "注销", "shichang", "91420100MA4K00003X", "taxpayer.jsonl 数据第12行", "2026-02-01"),
    ]
    columns = ["discrepancy_id", "rule", "severity", "status", "first_seen", "last_seen", "days_open", "field", "value",
               "golden_value", "golden_agency", "record_key", "record_row", "batch"]
    return pd.DataFrame(rows, columns=columns)


@pytest.mark.parametrize("value, expected", [
    ("=1+1", "'=1+1"), ("+86", "'+86"), ("-5", "'-5"), ("@SUM(A1)", "'@SUM(A1)"), ("\t=1", "'\t=1"),
    ("＝1+1", "'＝1+1"), ("宝亿科技", "宝亿科技"), ("1=1", "1=1"), (31, 31), (None, None),
])
def test_cells_a_spreadsheet_would_run_are_neutralised(value, expected):
    assert neutralise(value) == expected


def test_workbook_opens_with_a_summary_and_a_sheet_per_rule(tmp_path):
    path = write_workbook(tmp_path / "r.xlsx", "shuiwu", "2026-02-01", _items(), RULES)
    book = load_workbook(path)
    assert book.sheetnames == ["说明", "DEREGISTERED_STILL_FILING", "VALUE_MISMATCH"]
    sheet = book["VALUE_MISMATCH"]
    header = [c.value for c in sheet[1]]
    assert header[:3] == ["核查编号", "规则", "严重程度"] and header[-2:] == ["处理意见", "说明"]
    assert sheet.freeze_panes == "A2" and sheet.auto_filter.ref == "A1:P3"
    assert header[11:13] == ["贵单位记录编号", "文件行号"]
    assert [c.value for c in sheet[2]][11:13] == ["91420100MA4K000017", "taxpayer.jsonl 数据第7行"]
    cells = {c.value for row in sheet.iter_rows(min_row=2) for c in row}
    assert "'=HYPERLINK(\"http://x\")" in cells and "'+86 27 1234" in cells
    assert all(c.data_type != "f" for row in sheet.iter_rows() for c in row)  # no formula anywhere
    summary = [[c.value for c in row] for row in book["说明"].iter_rows()]
    assert ["VALUE_MISMATCH", RULES["VALUE_MISMATCH"], 0, 1, 1, 2] in summary


def test_csv_has_a_byte_order_mark_and_neutralised_cells(tmp_path):
    path = write_csv(tmp_path / "r.csv", _items())
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    text = raw.decode("utf-8-sig")
    assert text.splitlines()[0].startswith('"核查编号","规则"')
    assert "\"'=HYPERLINK(\"\"http://x\"\")\"" in text and "\"=HYPERLINK" not in text


def test_manifest_names_each_file_with_its_size_and_sha256(tmp_path):
    files = [write_csv(tmp_path / "r.csv", _items()), write_workbook(tmp_path / "r.xlsx", "shuiwu", "b", _items(), RULES)]
    manifest = json.loads(write_manifest(tmp_path, files).read_text(encoding="utf-8"))
    assert [e["file"] for e in manifest["files"]] == ["r.csv", "r.xlsx"]
    for entry in manifest["files"]:
        data = (tmp_path / entry["file"]).read_bytes()
        assert entry["bytes"] == len(data) and entry["sha256"] == hashlib.sha256(data).hexdigest()


def test_html_summary_draws_rules_trend_and_ageing_offline(tmp_path):
    trend = pd.DataFrame({"batch": ["2026-01-01", "2026-02-01"], "open": [2, 3]})
    html = write_html(tmp_path / "r.html", "shuiwu<script>", "2026-02-01", _items(), trend).read_text(encoding="utf-8")
    assert html.count("<svg") == 3 and "http" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "<script>" not in html and "shuiwu&lt;script&gt;" in html
    assert "未解决 3 项，本批次新发现 1 项" in html
    assert "<title>31-90天: 1</title>" in html and "<title>91-180天: 1</title>" in html


def _answer(path, changes):
    """Fill in the returned workbook as a clerk would: (sheet, row, header) -> value."""
    book = load_workbook(path)
    for (sheet, row, header), value in changes.items():
        ws = book[sheet]
        column = [c.value for c in ws[1]].index(header) + 1
        ws.cell(row=row, column=column, value=value)
    book.save(path)


def test_answers_are_read_and_every_bad_row_is_named(tmp_path):
    items = _items()
    path = write_workbook(tmp_path / "r.xlsx", "shuiwu", "2026-02-01", items, RULES)
    _answer(path, {
        ("VALUE_MISMATCH", 2, HEADERS["disposition"]): "将更正",
        ("VALUE_MISMATCH", 3, HEADERS["disposition"]): "我方值正确",
        ("VALUE_MISMATCH", 3, HEADERS["comment"]): "2026年1月已变更住所",
        ("DEREGISTERED_STILL_FILING", 2, HEADERS["disposition"]): "也许",           # not a disposition
    })
    answers, errors = check_answers(path, "shuiwu", report_rows(items), items.assign(agency="shuiwu"))
    assert sorted(zip(answers["discrepancy_id"], answers["disposition"])) == [("D1", "will_correct"), ("D2", "ours_right")]
    assert answers.set_index("discrepancy_id").loc["D2", "comment"] == "2026年1月已变更住所"
    assert [(e.sheet, e.row, e.code) for e in errors] == [("DEREGISTERED_STILL_FILING", 2, "DISPOSITION_INVALID")]

    _answer(path, {
        ("VALUE_MISMATCH", 2, HEADERS["golden_value"]): "宝亿科技",           # evidence edited
        ("VALUE_MISMATCH", 3, HEADERS["discrepancy_id"]): "D9",               # another agency's item
        ("DEREGISTERED_STILL_FILING", 2, HEADERS["discrepancy_id"]): "ZZ",    # no such item
    })
    known = pd.concat([items.assign(agency="shuiwu"), pd.DataFrame({"discrepancy_id": ["D9"], "agency": ["tongji"]})])
    answers, errors = check_answers(path, "shuiwu", report_rows(items), known)
    assert answers.empty
    assert [(e.sheet, e.row, e.column, e.code) for e in errors] == [
        ("DEREGISTERED_STILL_FILING", 2, "核查编号", "UNKNOWN_ID"),
        ("VALUE_MISMATCH", 2, "权威值", "EVIDENCE_EDITED"),
        ("VALUE_MISMATCH", 3, "核查编号", "WRONG_AGENCY"),
    ]
    assert str(errors[1]) == "r.xlsx, sheet VALUE_MISMATCH, row 2, column 权威值: EVIDENCE_EDITED: item D1: the cell differs from the report as sent"


def test_answers_in_the_returned_csv(tmp_path):
    items = _items()
    path = write_csv(tmp_path / "r.csv", items)
    text = path.read_text(encoding="utf-8-sig").splitlines()
    # The clerk answers D3 (the last row, sorted by rule it is the first) in the last two columns.
    text[1] = text[1][: text[1].rindex('"",""')] + '"非我方记录","已转交"'
    path.write_text("\r\n".join(text) + "\r\n", encoding="utf-8-sig")
    answers, errors = check_answers(path, "shuiwu", report_rows(items), items.assign(agency="shuiwu"))
    assert errors == [] and answers[["discrepancy_id", "disposition", "comment", "row"]].values.tolist() == [["D3", "not_ours", "已转交", 2]]


def _returned(items, answers):
    """The report as sent with a clerk's answers, {discrepancy_id: (处理意见, 说明)}, as a frame to save."""
    rows = report_rows(items)
    for item, answer in answers.items():
        rows.loc[rows[HEADERS["discrepancy_id"]] == item, [HEADERS["disposition"], HEADERS["comment"]]] = answer
    return rows


@pytest.mark.parametrize("encoding, sep, name", [
    ("utf-8", ",", "r.csv"), ("utf-8-sig", ",", "r.csv"), ("gb18030", ",", "r.csv"),
    ("utf-16", "\t", "r.txt"),  # Excel's "Unicode text": UTF-16LE with a byte-order mark, tabs, named .txt
])
def test_a_returned_csv_is_read_in_each_encoding_excel_saves_in(tmp_path, encoding, sep, name):
    items = _items()
    path = tmp_path / name
    # 䶮 is in GB18030 and not in GBK.
    _returned(items, {"D2": ("我方值正确", "住所已变更，见䶮字")}).to_csv(path, index=False, encoding=encoding, sep=sep)
    answers, errors = check_answers(path, "shuiwu", report_rows(items), items.assign(agency="shuiwu"))
    assert errors == []
    assert answers[["discrepancy_id", "disposition", "comment", "row"]].values.tolist() == [["D2", "ours_right", "住所已变更，见䶮字", 4]]


@pytest.mark.parametrize("encoding", ["utf-8-sig", "gb18030"])
def test_a_csv_in_no_encoding_excel_saves_in_is_one_error_naming_file_and_line(tmp_path, encoding):
    items = _items()
    path = tmp_path / "r.csv"
    _returned(items, {"D1": ("其他", "")}).to_csv(path, index=False, encoding=encoding, lineterminator="\r\n")
    lines = path.read_bytes().split(b"\r\n")
    lines[2] += "€5".encode("cp1252")  # a comment typed in a Western code page, on line 3 (D1)
    path.write_bytes(b"\r\n".join(lines))
    answers, errors = check_answers(path, "shuiwu", report_rows(items), items.assign(agency="shuiwu"))
    assert answers.empty and [(e.file, e.row, e.code) for e in errors] == [("r.csv", 3, "ENCODING_INVALID")]
    assert str(errors[0]).startswith("r.csv, row 3: ENCODING_INVALID: byte 0x80 is not UTF-8, UTF-16 or GB18030 text")


@pytest.mark.parametrize("name", ["r.xls", "r.xlsx"])
def test_a_file_that_is_neither_csv_nor_workbook_is_one_error(tmp_path, name):
    items = _items()
    path = write_csv(tmp_path / name, items)  # saved under a workbook's name
    answers, errors = check_answers(path, "shuiwu", report_rows(items), items.assign(agency="shuiwu"))
    assert answers.empty and [(e.file, e.row, e.code) for e in errors] == [(name, 1, "FILE_UNREADABLE")]


def test_locator_columns_are_not_checked_against_the_report_as_sent(tmp_path):
    items = _items()
    path = write_workbook(tmp_path / "r.xlsx", "shuiwu", "2026-02-01", items, RULES)
    _answer(path, {
        ("VALUE_MISMATCH", 2, HEADERS["disposition"]): "将更正",
        ("VALUE_MISMATCH", 2, HEADERS["record_key"]): "shuiwu:taxpayer:2026-02-01:7",  # as reports showed it before
        ("VALUE_MISMATCH", 2, HEADERS["record_row"]): None,
    })
    # The import compares with the report made again from the items, which has no locators.
    sent = report_rows(items.drop(columns=["record_key", "record_row"]))
    answers, errors = check_answers(path, "shuiwu", sent, items.assign(agency="shuiwu"))
    assert errors == [] and answers["discrepancy_id"].tolist() == ["D1"]
