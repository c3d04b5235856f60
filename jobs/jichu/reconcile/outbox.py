"""Delivery into the outbox: per agency and batch a folder with its report files and their manifest, and
the province-wide summary for the data authority.

    <outbox>/<agency>/<batch>/jichu-<agency>-<batch>.{xlsx,csv,html}, manifest.json
    <outbox>/province/<batch>/jichu-province-<batch>.{xlsx,html}, manifest.json

A rerun of a batch replaces its folders, so nothing is delivered twice. An agency's files hold only the
items whose agency it is.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd

from jichu.config import AGENCIES
from jichu.core.verify import ACTIVE
from jichu.reconcile.report import AGEING, write_csv, write_html, write_manifest, write_workbook

PROVINCE = "province"


def agency_items(discrepancies: pd.DataFrame, agency: str, batch: str) -> pd.DataFrame:
    """The items of one agency's report for a batch: its active items and those resolved in this batch,
    each with `days_open` (from the batch it was first seen to this batch)."""
    mine = discrepancies[(discrepancies["agency"] == agency)
                         & (discrepancies["status"].isin(ACTIVE) | (discrepancies["resolved_in"] == batch))]
    days = (pd.Timestamp(batch) - pd.to_datetime(mine["first_seen"])).dt.days
    return mine.assign(days_open=days.astype("Int64"))


def _fresh(folder: Path) -> Path:
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


def deliver_agency(outbox: Path, agency: str, batch: str, items: pd.DataFrame, trend: pd.DataFrame,
                   rule_descriptions: dict[str, str]) -> Path:
    """Write one agency's report for a batch; returns its manifest."""
    folder = _fresh(outbox / agency / batch)
    stem = f"jichu-{agency}-{batch}"
    files = [
        write_workbook(folder / f"{stem}.xlsx", AGENCIES.get(agency, agency), batch, items, rule_descriptions),
        write_csv(folder / f"{stem}.csv", items),
        write_html(folder / f"{stem}.html", AGENCIES.get(agency, agency), batch, items, trend),
    ]
    return write_manifest(folder, files)


def province_summary(discrepancies: pd.DataFrame, batch: str) -> pd.DataFrame:
    """Per agency and rule: open items, escalated among them (promised corrections overdue), resolved in
    this batch, resolved ever, the resolution rate (resolved / all items ever raised) and open items per
    ageing band."""
    d = discrepancies.assign(
        agency=discrepancies["agency"].map(lambda a: AGENCIES.get(a, a)),
        active=discrepancies["status"].isin(ACTIVE),
        escalated=discrepancies["status"] == "escalated",
        resolved_now=discrepancies["resolved_in"] == batch,
        resolved=discrepancies["status"] == "resolved",
        days=(pd.Timestamp(batch) - pd.to_datetime(discrepancies["first_seen"])).dt.days,
    )
    for low, high, label in AGEING:
        d[label] = d["active"] & (d["days"] >= low) & ((d["days"] <= high) if high is not None else True)
    columns = ["active", "escalated", "resolved_now", "resolved", *[label for *_, label in AGEING]]
    table = d.groupby(["agency", "rule"])[columns].sum().astype(int)
    table.insert(4, "resolution_rate", (table["resolved"] / d.groupby(["agency", "rule"]).size()).round(3))
    return table.reset_index().rename(columns={
        "agency": "单位", "rule": "规则", "active": "未解决", "escalated": "已升级", "resolved_now": "本批次解决", "resolved": "累计解决",
        "resolution_rate": "解决率",
    })


def deliver_province(outbox: Path, batch: str, discrepancies: pd.DataFrame) -> Path:
    """The data authority's summary for a batch (XLSX and HTML); returns its manifest."""
    from jinja2 import Environment

    folder = _fresh(outbox / PROVINCE / batch)
    table = province_summary(discrepancies, batch)
    stem = f"jichu-{PROVINCE}-{batch}"
    xlsx = folder / f"{stem}.xlsx"
    with pd.ExcelWriter(xlsx, engine="xlsxwriter") as writer:
        table.to_excel(writer, sheet_name="汇总", index=False)
        sheet = writer.sheets["汇总"]
        sheet.freeze_panes(1, 0)
        sheet.autofilter(0, 0, len(table), len(table.columns) - 1)
    html = folder / f"{stem}.html"
    html.write_text(Environment(autoescape=True).from_string(
        "<!DOCTYPE html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\"><title>数据核查汇总 {{ batch }}</title></head>"
        "<body><h1>数据核查汇总 批次 {{ batch }}</h1>{{ table | safe }}</body></html>"
    ).render(batch=batch, table=table.to_html(index=False, escape=True)), encoding="utf-8")
    return write_manifest(folder, [xlsx, html])
