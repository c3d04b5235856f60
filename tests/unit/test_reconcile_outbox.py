"""Delivery into the outbox: each agency's folder holds only its own items; the province summary counts."""

import json

import pandas as pd
from openpyxl import load_workbook

from jichu.reconcile.outbox import agency_items, deliver_agency, deliver_province, province_summary

COLUMNS = ["discrepancy_id", "agency", "rule", "severity", "status", "first_seen", "last_seen", "resolved_in",
           "field", "value", "golden_value", "golden_agency", "record_ref", "batch"]


def _discrepancies():
    rows = [
        ("S1", "shuiwu", "VALUE_MISMATCH", "major", "open", "2026-01-01", "2026-03-01", None),
        ("S2", "shuiwu", "VALUE_MISMATCH", "minor", "resolved", "2026-01-01", "2026-02-01", "2026-03-01"),
        ("S3", "shuiwu", "DEREGISTERED_STILL_FILING", "major", "new", "2026-03-01", "2026-03-01", None),
        ("S4", "shuiwu", "VALUE_MISMATCH", "major", "resolved", "2025-10-01", "2025-11-01", "2025-12-01"),
        ("T1", "tongji", "VALUE_MISMATCH", "minor", "reopened", "2025-09-01", "2026-03-01", None),
    ]
    frame = pd.DataFrame(rows, columns=COLUMNS[:8])
    return frame.assign(field="name", value="x", golden_value="y", golden_agency="shichang",
                        record_ref=frame["discrepancy_id"] + "-ref", batch=frame["last_seen"])


def test_an_agency_report_holds_its_active_items_and_those_resolved_now(tmp_path):
    items = agency_items(_discrepancies(), "shuiwu", "2026-03-01")
    assert sorted(items["discrepancy_id"]) == ["S1", "S2", "S3"]  # S4 was resolved in an earlier batch
    assert dict(zip(items["discrepancy_id"], items["days_open"])) == {"S1": 59, "S2": 59, "S3": 0}

    trend = pd.DataFrame({"batch": ["2026-02-01", "2026-03-01"], "open": [1, 2]})
    manifest = deliver_agency(tmp_path, "shuiwu", "2026-03-01", items, trend, {})
    folder = tmp_path / "shuiwu" / "2026-03-01"
    assert manifest == folder / "manifest.json"
    names = [e["file"] for e in json.loads(manifest.read_text(encoding="utf-8"))["files"]]
    assert names == ["jichu-shuiwu-2026-03-01.csv", "jichu-shuiwu-2026-03-01.html", "jichu-shuiwu-2026-03-01.xlsx"]
    csv_ids = set(pd.read_csv(folder / names[0], encoding="utf-8-sig")["核查编号"])
    book = load_workbook(folder / names[2])
    xlsx_ids = {row[0] for ws in book.worksheets[1:] for row in ws.iter_rows(min_row=2, values_only=True)}
    assert csv_ids == xlsx_ids == {"S1", "S2", "S3"}
    text = "".join(p.read_text(encoding="utf-8", errors="ignore") for p in folder.iterdir() if p.suffix != ".xlsx")
    assert "T1" not in text

    # A rerun of the batch replaces the folder: the same files, once.
    (folder / "stale.txt").write_text("left from an earlier run", encoding="utf-8")
    deliver_agency(tmp_path, "shuiwu", "2026-03-01", items, trend, {})
    assert sorted(p.name for p in folder.iterdir()) == sorted([*names, "manifest.json"])


def test_province_summary_counts_open_resolved_rates_and_ageing(tmp_path):
    table = province_summary(_discrepancies(), "2026-03-01").set_index(["单位", "规则"])
    assert table.loc[("税务", "VALUE_MISMATCH"), ["未解决", "本批次解决", "累计解决", "解决率"]].tolist() == [1, 1, 2, 0.667]
    assert table.loc[("统计", "VALUE_MISMATCH"), ["未解决", "180天以上"]].tolist() == [1, 1]
    assert table.loc[("税务", "DEREGISTERED_STILL_FILING"), "30天以内"] == 1
    manifest = json.loads(deliver_province(tmp_path, "2026-03-01", _discrepancies()).read_text(encoding="utf-8"))
    assert [e["file"] for e in manifest["files"]] == ["jichu-province-2026-03-01.html", "jichu-province-2026-03-01.xlsx"]
    assert load_workbook(tmp_path / "province" / "2026-03-01" / "jichu-province-2026-03-01.xlsx")["汇总"].freeze_panes == "A2"
