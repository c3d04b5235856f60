"""An agency's reconciliation report: the items of one agency after one run, in the forms a clerk opens.

- An XLSX workbook (XlsxWriter): a summary sheet (说明), then one sheet per rule with Chinese headers, the
  header row frozen and filters on, and two columns to answer in (处理意见, 说明).
- The same items as UTF-8 CSV with a byte-order mark, so that Excel reads the Chinese.
- An HTML summary with charts drawn as inline SVG (it opens offline): open items by rule and severity,
  the trend across runs and the ageing of open items.
- A manifest of the files: name, bytes and SHA-256.

Every text cell a spreadsheet would run as a formula is neutralised. The items are pure data (pandas);
choosing them (only the agency's own, only the fields needed to find a record) is the caller's.
"""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import pandas as pd

from jichu.core.text import FORMULA_START
from jichu.core.verify import ACTIVE

# (column of the items frame, header the agency reads), in the order of the sheets.
COLUMNS = [
    ("discrepancy_id", "核查编号"),
    ("rule", "规则"),
    ("severity", "严重程度"),
    ("status", "状态"),
    ("first_seen", "首次发现批次"),
    ("last_seen", "最近发现批次"),
    ("days_open", "已持续天数"),
    ("field", "字段"),
    ("value", "贵单位的值"),
    ("golden_value", "权威值"),
    ("golden_agency", "权威来源"),
    ("record_key", "贵单位记录编号"),
    ("record_row", "文件行号"),
    ("batch", "数据批次"),
]
# Where the agency finds the record: its own key and the row of the file it delivered, looked up when the
# report is made (stage.with_record_keys). They locate the item and are not part of it, so a returned
# file is not checked against them.
LOCATORS = ("record_key", "record_row")
ANSWER_COLUMNS = [("disposition", "处理意见"), ("comment", "说明")]
HEADERS = dict(COLUMNS + ANSWER_COLUMNS)
# What an agency may answer, as it reads in the workbook.
DISPOSITIONS = {"will_correct": "将更正", "ours_right": "我方值正确", "not_ours": "非我方记录", "other": "其他"}
SEVERITY_LABELS = {"critical": "严重", "major": "重要", "minor": "一般"}
STATUS_LABELS = {"new": "新发现", "open": "未解决", "reopened": "再次出现", "resolved": "已解决", "escalated": "已升级"}
SUMMARY_SHEET = "说明"



def neutralise(value):
    """A cell value that no spreadsheet runs: text starting like a formula gets a leading apostrophe,
    which Excel and LibreOffice show as text and do not display."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def report_rows(items: pd.DataFrame) -> pd.DataFrame:
    """The report's columns in order, with the agency's headers, labels for codes, answer columns
    empty and every cell neutralised."""
    frame = items.reindex(columns=[c for c, _ in COLUMNS]).copy()
    frame["severity"] = frame["severity"].map(lambda s: SEVERITY_LABELS.get(s, s))
    frame["status"] = frame["status"].map(lambda s: STATUS_LABELS.get(s, s))
    for column, _ in ANSWER_COLUMNS:
        frame[column] = ""
    frame = frame.sort_values(["rule", "discrepancy_id"], kind="stable")
    frame = frame.astype(object).where(frame.notna(), "").map(neutralise)
    return frame.rename(columns=HEADERS)


def write_csv(path: Path, items: pd.DataFrame) -> Path:
    """The items as UTF-8 CSV with a byte-order mark (Excel then reads the Chinese), every field quoted."""
    report_rows(items).to_csv(path, index=False, encoding="utf-8-sig", quoting=csv.QUOTE_ALL, lineterminator="\r\n")
    return path


def write_workbook(path: Path, agency: str, batch: str, items: pd.DataFrame, rule_descriptions: dict[str, str]) -> Path:
    """The workbook: 说明 (what the report is, counts per rule, how to answer), then a sheet per rule.
    `agency` as the title names it."""
    import xlsxwriter

    rows = report_rows(items)
    # Strings stay strings: nothing written is read as a formula, a number or a link.
    with xlsxwriter.Workbook(path, {"strings_to_formulas": False, "strings_to_numbers": False,
                                    "strings_to_urls": False}) as book:
        bold = book.add_format({"bold": True})
        header = book.add_format({"bold": True, "bg_color": "#DDEBF7", "border": 1, "text_wrap": True})
        answer = book.add_format({"bold": True, "bg_color": "#FFF2CC", "border": 1})
        summary = book.add_worksheet(SUMMARY_SHEET)
        summary.set_column(0, 0, 28)
        summary.set_column(1, 4, 14)
        lines = [
            (f"数据核查清单 {agency} 批次 {batch}", bold),
            ("本清单列出贵单位记录中与权威来源不一致的数据项。每个规则一个工作表。", None),
            (f"“{HEADERS['record_key']}”为该记录在贵单位系统中的编号（所交数据中没有编号时为空），"
             f"“{HEADERS['record_row']}”为贵单位所交文件的名称和数据行号（表头不计）。", None),
            (f"请在“{HEADERS['disposition']}”列选择：{'、'.join(DISPOSITIONS.values())}，并在“{HEADERS['comment']}”列说明，"
             "其他列请勿修改，然后将本文件交回。", None),
            ("", None),
        ]
        for r, (text, style) in enumerate(lines):
            summary.write_string(r, 0, text, style)
        r = len(lines)
        summary.write_row(r, 0, ["规则", "说明", *SEVERITY_LABELS.values(), "合计"], header)
        counts = items.groupby(["rule", "severity"]).size().unstack(fill_value=0) if len(items) else pd.DataFrame()
        for rule in sorted(counts.index):
            r += 1
            per = [int(counts.loc[rule].get(s, 0)) for s in SEVERITY_LABELS]
            summary.write_string(r, 0, rule)
            summary.write_string(r, 1, neutralise(rule_descriptions.get(rule, "")))
            summary.write_row(r, 2, [*per, sum(per)])
        if not len(items):
            summary.write_string(r + 1, 0, "本批次没有需要核查的数据项。")

        choices = list(DISPOSITIONS.values())
        for rule, part in rows.groupby(HEADERS["rule"], sort=True):
            sheet = book.add_worksheet(rule[:31])
            names = list(part.columns)
            for c, name in enumerate(names):
                sheet.write_string(0, c, name, answer if name in (HEADERS["disposition"], HEADERS["comment"]) else header)
                width = max([len(str(name)) * 2, *[len(str(v)) for v in part[name]]]) + 2
                sheet.set_column(c, c, min(width, 40))
            for i, values in enumerate(part.itertuples(index=False), start=1):
                for c, v in enumerate(values):
                    if isinstance(v, (int, float)) and not isinstance(v, bool):
                        sheet.write_number(i, c, v)
                    else:
                        sheet.write_string(i, c, str(v))
            sheet.freeze_panes(1, 0)
            sheet.autofilter(0, 0, len(part), len(names) - 1)
            d = names.index(HEADERS["disposition"])
            sheet.data_validation(1, d, len(part), d, {"validate": "list", "source": choices})
    return path


def write_manifest(folder: Path, files: list[Path]) -> Path:
    """manifest.json beside the files: each file's name, size in bytes and SHA-256."""
    entries = []
    for f in sorted(files, key=lambda p: p.name):
        digest = hashlib.sha256(f.read_bytes()).hexdigest()
        entries.append({"file": f.name, "bytes": f.stat().st_size, "sha256": digest})
    path = folder / "manifest.json"
    path.write_text(json.dumps({"files": entries}, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return path


AGEING = [(0, 30, "30天以内"), (31, 90, "31-90天"), (91, 180, "91-180天"), (181, None, "180天以上")]
SEVERITY_COLOURS = {"critical": "#C00000", "major": "#ED7D31", "minor": "#5B9BD5"}
_HTML = """<!DOCTYPE html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>数据核查 {{ agency }} {{ batch }}</title>
<style>body{font-family:sans-serif;margin:2em;max-width:60em}table{border-collapse:collapse}
td,th{border:1px solid #bbb;padding:.2em .6em;text-align:right}th:first-child,td:first-child{text-align:left}
svg text{font-size:12px}</style></head><body>
<h1>数据核查 {{ agency }} 批次 {{ batch }}</h1>
<p>未解决 {{ open }} 项，本批次新发现 {{ new }} 项，已解决 {{ resolved }} 项。</p>
<h2>按规则和严重程度</h2>{{ by_rule | safe }}
<h2>各批次未解决数量</h2>{{ trend | safe }}
<h2>未解决项持续时间</h2>{{ ageing | safe }}
</body></html>
"""


def _bars(rows: list[tuple[str, list[tuple[int, str, str]]]]) -> str:
    """Horizontal stacked bars as inline SVG: rows of (label, [(count, colour, title)])."""
    from markupsafe import escape

    total = max([sum(n for n, _, _ in parts) for _, parts in rows] or [1]) or 1
    height, width, left = 22, 420, 230
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + width + 60}" height="{height * len(rows) + 10}">']
    for i, (label, parts) in enumerate(rows):
        y, x = 5 + i * height, left
        out.append(f'<text x="0" y="{y + 15}">{escape(label)}</text>')
        for n, colour, title in parts:
            w = width * n / total
            out.append(f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{height - 6}" fill="{colour}">'
                       f"<title>{escape(title)}: {n}</title></rect>")
            x += w
        out.append(f'<text x="{x + 4:.1f}" y="{y + 15}">{sum(n for n, _, _ in parts)}</text>')
    out.append("</svg>")
    return "".join(out)


def write_html(path: Path, agency: str, batch: str, items: pd.DataFrame, trend: pd.DataFrame) -> Path:
    """The HTML summary: counts, open items by rule and severity, the open count per batch (`trend`:
    batch, open) and the ageing of open items, as inline SVG so it opens without a network."""
    from jinja2 import Environment

    active = items[items["status"].isin(ACTIVE)]
    counts = active.groupby(["rule", "severity"]).size()
    by_rule = [(rule, [(int(counts.get((rule, s), 0)), SEVERITY_COLOURS[s], SEVERITY_LABELS[s]) for s in SEVERITY_LABELS])
               for rule in sorted(active["rule"].unique())]
    trend_rows = [(str(b), [(int(n), "#5B9BD5", "未解决")]) for b, n in trend[["batch", "open"]].itertuples(index=False)]
    days = pd.to_numeric(active["days_open"], errors="coerce").fillna(0)
    ageing = [(label, [(int(((days >= low) & (days <= (high if high is not None else days.max()))).sum()), "#A5A5A5", label)])
              for low, high, label in AGEING]
    html = Environment(autoescape=True).from_string(_HTML).render(
        agency=agency, batch=batch, open=len(active), new=int((items["status"] == "new").sum()),
        resolved=int((items["status"] == "resolved").sum()),
        by_rule=_bars(by_rule), trend=_bars(trend_rows), ageing=_bars(ageing),
    )
    path.write_text(html, encoding="utf-8")
    return path
