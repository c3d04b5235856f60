"""End to end, reconciliation: the reconciliation DAG, run by the real scheduler on the asset event of legal
entities' publish of batch 2026-01-01 (conftest.province), wrote every agency's report and the province
summary into the outbox.

The item lifecycle over three runs with answers in between is tested through the same stages in
tests/unit/test_reconcile_lifecycle.py; here: the asset trigger, the files an agency receives, and
multi-source doubt on the generated province.
"""

from __future__ import annotations

import hashlib
import json

import pandas as pd
import pytest
from openpyxl import load_workbook

from jichu.evaluate import expand_records, load_evaluation, read_truth_records
from jichu.reconcile.report import HEADERS, SUMMARY_SHEET

pytestmark = [pytest.mark.e2e, pytest.mark.slow]  # the province run: make test-slow
BATCH = "2026-01-01"


def test_reconciliation_ran_on_the_published_asset_with_its_batch(province):
    _, r = province
    runs = r["runs"]["reconciliation"]
    assert [(x.run_type, x.batch, x.state) for x in runs] == [("asset_triggered", BATCH, "success")]


def test_each_agency_receives_only_its_own_items_in_files_that_arrived_whole(province, delta):
    var, _ = province
    outbox = var / "outbox"
    items = delta("verified.discrepancies").where(f"first_seen = '{BATCH}'").toPandas()
    owner = dict(zip(items["discrepancy_id"], items["agency"]))
    agencies = sorted(p.parent.name for p in outbox.glob(f"*/{BATCH}") if p.parent.name != "province")
    # Every agency with an item found in the batch has a report, and no other agency.
    assert agencies == sorted(items["agency"].unique())
    for agency in agencies:
        folder = outbox / agency / BATCH
        manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
        for entry in manifest["files"]:
            data = (folder / entry["file"]).read_bytes()
            assert (len(data), hashlib.sha256(data).hexdigest()) == (entry["bytes"], entry["sha256"]), entry["file"]
        report = pd.read_csv(folder / f"jichu-{agency}-{BATCH}.csv", dtype=str, keep_default_na=False, encoding="utf-8-sig")
        mine = items[items["agency"] == agency]
        assert sorted(report[HEADERS["discrepancy_id"]]) == sorted(mine["discrepancy_id"])
        assert {owner[i] for i in report[HEADERS["discrepancy_id"]]} == {agency}
        book = load_workbook(folder / f"jichu-{agency}-{BATCH}.xlsx", read_only=True)
        assert book.sheetnames == [SUMMARY_SHEET, *sorted(mine["rule"].unique())]
    province_files = {p.name for p in (outbox / "province" / BATCH).iterdir()}
    assert province_files == {f"jichu-province-{BATCH}.xlsx", f"jichu-province-{BATCH}.html", "manifest.json"}


def test_multi_source_doubt_goes_to_the_authority_only_where_its_record_is_wrong(province, delta):
    """公安's birth date is questioned where the generator spoiled 公安's own record (authority_error),
    and nowhere else; the legal-entity registers, whose copies at 税务 and 统计 go stale together, never."""
    var, _ = province
    doubted = delta("verified.discrepancies").where("rule = 'SUSPECTED_SOURCE_ERROR'").toPandas()
    assert set(doubted["domain"]) == {"population"}
    spec = load_evaluation("population")
    truth = expand_records(read_truth_records(var / "truth", spec), spec.roles)
    labels = dict(zip(truth["record_ref"], truth["defects"].fillna("")))
    assert len(doubted) >= 2
    assert all("authority_error" in labels[ref] for ref in doubted["record_ref"]), doubted[["field", "record_ref"]]
