"""An agency's answers: its report returned with a disposition per item, read and checked.

The returned file is the workbook (every sheet but 说明) or the CSV as sent, or as Excel saves it again:
UTF-8 with or without a byte-order mark, UTF-16 ("Unicode text", tab-separated) or GB18030 (the GBK of
Chinese Windows), comma- or tab-separated. A row's answer counts when its 处理意见 is one of the four
dispositions; an empty one is no answer. Each of these is an error named by file, sheet, row and column,
and the rest of the file is still read:
- an id that names no item (UNKNOWN_ID), or an item of another agency (WRONG_AGENCY);
- an evidence cell that differs from what was sent (EVIDENCE_EDITED): only the two answer columns are
  the agency's to fill in, and the locator columns (report.LOCATORS) are not checked;
- a disposition outside the list (DISPOSITION_INVALID), or the same item answered twice (DUPLICATE_ID).
A file that cannot be read at all is one error: a CSV in none of those encodings (ENCODING_INVALID, at
the line that failed to decode), or neither a CSV nor an XLSX workbook (FILE_UNREADABLE, e.g. an .xls).
"""

from __future__ import annotations

import codecs
import csv
import io
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from jichu.reconcile.report import ANSWER_COLUMNS, COLUMNS, DISPOSITIONS, HEADERS, LOCATORS, SUMMARY_SHEET

ID = HEADERS["discrepancy_id"]
EVIDENCE = [header for column, header in COLUMNS if column not in LOCATORS]
_BY_LABEL = {label: code for code, label in DISPOSITIONS.items()}
ANSWER_SCHEMA = ["discrepancy_id", "agency", "disposition", "comment", "file", "sheet", "row"]


@dataclass(frozen=True)
class AnswerError:
    file: str
    sheet: str | None
    row: int
    column: str | None
    code: str
    message: str

    def __str__(self) -> str:
        where = [self.file] + ([f"sheet {self.sheet}"] if self.sheet else []) + [f"row {self.row}"]
        where += [f"column {self.column}"] if self.column else []
        return f"{', '.join(where)}: {self.code}: {self.message}"


class UnreadableFile(Exception):
    """A returned file that cannot be read at all: its one AnswerError."""

    def __init__(self, error: AnswerError):
        super().__init__(str(error))
        self.error = error


def _decoded(path: Path) -> str:
    """The text of a returned CSV in an encoding Excel saves in. A UTF-16 file starts with its byte-order
    mark; any other is UTF-8 (its mark optional) or else GB18030, a superset of GBK: text in GBK is
    practically never valid UTF-8, so the order decides nothing wrongly."""
    data = path.read_bytes()
    utf16 = data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE))
    failures = []
    for encoding in ["utf-16"] if utf16 else ["utf-8-sig", "gb18030"]:
        try:
            return data.decode(encoding).removeprefix("\ufeff")  # GB18030 has a byte-order mark too
        except UnicodeDecodeError as e:
            failures.append(e)

    def line(e: UnicodeDecodeError) -> int:
        return e.object[: e.start].decode(e.encoding).count("\n") + 1

    # The encoding that read furthest is the one the file is most likely in: name where it failed.
    e = max(failures, key=line)
    raise UnreadableFile(AnswerError(
        path.name, None, line(e), None, "ENCODING_INVALID",
        f"byte 0x{e.object[e.start]:02x} is not UTF-8, UTF-16 or GB18030 text; save the file as an Excel workbook or as CSV UTF-8"))


def _text(value) -> str:
    """A cell as text, the same whether it came back from openpyxl, csv or the frame that was sent."""
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def returned_rows(path: Path) -> list[tuple[str | None, int, dict[str, str]]]:
    """(sheet, row number as the clerk sees it, header -> cell text) of every data row of the file."""
    if path.suffix.lower() in (".csv", ".txt"):  # .txt: what Excel names its "Unicode text"
        text = _decoded(path)
        try:  # Excel's "Unicode text" separates by tabs, its CSV by commas
            delimiter = csv.Sniffer().sniff(text.partition("\n")[0], delimiters=",\t").delimiter
        except csv.Error:  # a header of one column or none: not a report, its rows are refused one by one
            delimiter = ","
        reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter)
        return [(None, i, {k: _text(v) for k, v in row.items()}) for i, row in enumerate(reader, start=2)]
    from openpyxl import load_workbook
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        book = load_workbook(path, read_only=True, data_only=True)
    except (InvalidFileException, zipfile.BadZipFile) as e:  # an .xls, or not a workbook at all
        raise UnreadableFile(AnswerError(path.name, None, 1, None, "FILE_UNREADABLE",
                                         f"not an XLSX workbook nor a CSV ({type(e).__name__})")) from None
    rows = []
    for sheet in book.worksheets:
        if sheet.title == SUMMARY_SHEET:
            continue
        cells = sheet.iter_rows(values_only=True)
        header = [_text(h) for h in next(cells, ())]
        for i, values in enumerate(cells, start=2):
            row = dict(zip(header, (_text(v) for v in values)))
            if any(row.values()):
                rows.append((sheet.title, i, row))
    book.close()
    return rows


def check_answers(path: Path, agency: str, sent: pd.DataFrame, known: pd.DataFrame) -> tuple[pd.DataFrame, list[AnswerError]]:
    """(answers, errors) of a returned file.

    sent: the agency's report as sent (`report.report_rows`, Chinese headers); known: (discrepancy_id,
    agency) of every item of every agency, to tell an unknown id from another agency's item."""
    sent_by_id = {r[ID]: {h: _text(r[h]) for h in EVIDENCE} for r in sent.to_dict("records")}
    owner = dict(zip(known["discrepancy_id"], known["agency"]))
    answers, errors, seen = [], [], set()
    try:
        rows = returned_rows(path)
    except UnreadableFile as e:
        return pd.DataFrame([], columns=ANSWER_SCHEMA), [e.error]
    for sheet, row, cells in rows:
        def error(column, code, message):
            errors.append(AnswerError(path.name, sheet, row, column, code, message))

        item = cells.get(ID, "")
        if item not in sent_by_id:
            if owner.get(item) not in (None, agency):
                error(ID, "WRONG_AGENCY", f"item {item} was reported to another agency")
            else:
                error(ID, "UNKNOWN_ID", f"no item {item!r} was reported to {agency}")
            continue
        edited = [h for h in EVIDENCE if cells.get(h, "") != sent_by_id[item][h]]
        for h in edited:
            error(h, "EVIDENCE_EDITED", f"item {item}: the cell differs from the report as sent")
        label = cells.get(HEADERS["disposition"], "").strip()
        if not label or edited:
            continue
        if label not in _BY_LABEL:
            error(HEADERS["disposition"], "DISPOSITION_INVALID",
                  f"item {item}: {label!r} is not one of {', '.join(DISPOSITIONS.values())}")
            continue
        if item in seen:
            error(ID, "DUPLICATE_ID", f"item {item} is answered more than once")
            continue
        seen.add(item)
        answers.append((item, agency, _BY_LABEL[label], cells.get(HEADERS["comment"], "").strip(), path.name, sheet, row))
    return pd.DataFrame(answers, columns=ANSWER_SCHEMA), errors


__all__ = ["ANSWER_COLUMNS", "AnswerError", "UnreadableFile", "check_answers", "returned_rows"]
