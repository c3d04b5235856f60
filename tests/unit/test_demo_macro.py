"""The demo province's macro-economy: delivered releases read back against the truth written beside them."""

import csv
import datetime as dt
import hashlib
import json
import re
from collections import Counter, defaultdict
from decimal import Decimal

import openpyxl
import pytest

from jichu.demo.defects import load_rates
from jichu.demo.macro import generate_macro
from jichu.demo.places import Places
from jichu.demo.timeline import Calendar
from jichu.demo.writers import Landing

SEED = 11
# The delivered layout, stated here independently of the generator: file, its value column, cadence.
LAYOUT = {
    "tongji__release": ("release.xlsx", "数值", "monthly"),
    "diaocha__cpi": ("cpi.csv", "指数(上年同期=100)", "monthly"),
    "caizheng__budget": ("budget.xlsx", "累计数(亿元)", "monthly"),
    "shuiwu__tax_revenue": ("tax_revenue.csv", "税收收入累计(亿元)", "monthly"),
    "haiguan__trade": ("trade.csv", "金额(亿元人民币)", "monthly"),
    "renshe__employment": ("employment.jsonl", "value", "quarterly"),
}
ENCODING = {"cpi.csv": "gb18030", "tax_revenue.csv": "utf-8", "trade.csv": "utf-8-sig"}
GDP_PARTS = ("gdp_primary", "gdp_secondary", "gdp_tertiary")


def run(out, batches=4, rates=None, seed=SEED):
    landing = Landing(out)
    inj = generate_macro(landing, Calendar(batches), Places(), rates or load_rates(), seed)
    landing.close()
    return inj


def read_delivered(path) -> list[dict]:
    if path.suffix == ".xlsx":
        rows = list(openpyxl.load_workbook(path, read_only=True).active.iter_rows(values_only=True))
        return [dict(zip(rows[0], r)) for r in rows[1:]]
    if path.suffix == ".jsonl":
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    with path.open(encoding=ENCODING[path.name], newline="") as fh:
        return list(csv.DictReader(fh))


def read_csv(path) -> list[dict]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def deliveries(out) -> dict[str, dict[str, list[tuple[dict, dict]]]]:
    """extract key -> batch -> [(delivered row, truth row)], paired by row number."""
    found: dict[str, dict[str, list]] = {}
    for key, (filename, _, _) in LAYOUT.items():
        agency = key.split("__")[0]
        for path in sorted((out / "landing" / agency).glob(f"*/{filename}")):
            batch = path.parent.name
            delivered = read_delivered(path)
            truth = read_csv(out / "truth" / "records" / key / f"{batch}.csv")
            assert [int(t["row"]) for t in truth] == list(range(1, len(delivered) + 1)), (key, batch)
            found.setdefault(key, {})[batch] = list(zip(delivered, truth))
    return found


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("macro")
    inj = run(out)
    catalogue = {r["code"]: r for r in read_csv(out / "truth" / "macro" / "indicators.csv")}
    return out, inj, deliveries(out), catalogue, read_csv(out / "truth" / "macro" / "values.csv")


def rows_of(found):
    for key, batches in found.items():
        for batch, pairs in batches.items():
            for delivered, truth in pairs:
                yield key, batch, delivered, truth


def test_each_extract_delivers_only_in_its_cadence_batches(demo):
    out, _, found, _, _ = demo
    names = Calendar(4).names  # 2026-01-01 .. 2026-04-01
    expected = {"monthly": names, "quarterly": ["2026-01-01", "2026-04-01"]}
    for key, (filename, _, cadence) in LAYOUT.items():
        agency = key.split("__")[0]
        batches = sorted(p.parent.name for p in (out / "landing" / agency).glob(f"*/{filename}"))
        assert batches == expected[cadence], key
        for batch in batches:
            manifest = json.loads((out / "landing" / agency / batch / "manifest.json").read_text(encoding="utf-8"))
            assert [f["name"] for f in manifest["files"]] == [filename]
    assert len(found) == len(LAYOUT) and all(len(b) >= 2 for b in found.values())


def test_first_delivery_carries_the_backlog_later_ones_only_what_came_out_since(demo):
    _, _, found, _, _ = demo
    seen = Counter()
    for key, batch, _, t in rows_of(found):
        seen[(key, t["entity"], t["true_release"])] += 1
        period = t["true_period"]
        year, kind, n = int(period[:4]), period[4], int(period[5:])
        end_month = n if kind == "M" else 3 * n
        first_release = dt.date(year + end_month // 12, end_month % 12 + 1, 1)
        assert first_release <= dt.date.fromisoformat(batch), (key, batch, t["entity"])  # never before it ends
    assert max(seen.values()) == 1  # each release is delivered once
    # The history goes back to 2024. A monthly extract's April batch brings March's and the first quarter's
    # first figures; 人社, delivering quarterly, brings everything since January (February's and March's).
    assert any(t["true_period"] == "2024M02" for _, b, _, t in rows_of(found) if b == "2026-01-01")
    april = defaultdict(set)
    for key, batch, _, t in rows_of(found):
        if batch == "2026-04-01" and t["true_release"] == "preliminary":
            april[LAYOUT[key][2]].add(t["true_period"])
    assert april == {"monthly": {"2026M03", "2026Q1"}, "quarterly": {"2026M02", "2026M03", "2026Q1"}}


def test_january_only_comes_with_february(demo):
    out, _, found, _, values = demo
    periods = {t["true_period"] for *_, t in rows_of(found)} | {v["period"] for v in values}
    assert not [p for p in periods if p.endswith("M01")]
    assert {"2024M02", "2025M02", "2026M02"} <= periods
    # As delivered: no agency labels a period that is January alone, each in its own way.
    january_alone = {"tongji__release": ("统计时期", r"年1月$|年1-1月$"), "diaocha__cpi": ("报告期", r"年1-1月$|年1月$"),
                     "caizheng__budget": ("期间", r"^1-1月$|^1月$"), "shuiwu__tax_revenue": ("所属期止", r"-01$"),
                     "haiguan__trade": ("统计年月", r"01$"), "renshe__employment": ("stat_period", r"-01$")}
    february = Counter()
    for key, _, row, t in rows_of(found):
        column, pattern = january_alone[key]
        assert not re.search(pattern, row[column]), (key, row)
        february[key] += t["true_period"].endswith("M02")
    assert all(february[k] for k in LAYOUT)  # 1-2月 is there, in every extract


def test_true_areas_add_up_to_their_parents(demo):
    _, _, _, catalogue, values = demo
    places = Places()
    parent = {d.code: d.parent for d in places.divisions if d.level in (2, 3)}
    by_key: dict[tuple, dict[str, Decimal]] = defaultdict(dict)
    for v in values:
        by_key[(v["indicator"], v["period"], v["release"])][v["area_code"]] = Decimal(v["value"])
    checked = Counter()
    for (code, period, release), figures in by_key.items():
        if catalogue[code]["additive"] != "true":
            continue
        units = [a for a in figures if parent.get(a) == "420000"]
        assert len(units) == 17, (code, period)  # 13 prefectures and the 4 province-administered units
        assert sum(figures[u] for u in units) == figures["420000"], (code, period, release)
        checked["province"] += 1
        for u in units:
            counties = [a for a in figures if parent.get(a) == u]
            if counties:
                assert sum(figures[c] for c in counties) == figures[u], (code, u, period, release)
                checked["prefecture"] += 1
    for (code, period, release), figures in by_key.items():
        if code == "gdp":
            for area, total in figures.items():
                parts = [by_key[(p, period, release)][area] for p in GDP_PARTS]
                assert sum(parts) == total, (area, period, release)
    assert checked["province"] > 300 and checked["prefecture"] > 1000


def test_only_labelled_gdp_releases_are_unbalanced(demo):
    _, _, found, _, _ = demo
    groups: dict[tuple, dict] = defaultdict(lambda: {"labels": 0})
    for batch, pairs in found["tongji__release"].items():
        for row, t in pairs:
            if t["true_indicator"] in ("gdp", *GDP_PARTS):
                g = groups[(batch, t["true_area_code"], t["true_period"], t["true_release"])]
                g[t["true_indicator"]] = Decimal(row["数值"])
                g["labels"] += "components_unbalanced" in t["defects"].split(";")
                if "components_unbalanced" in t["defects"]:
                    assert t["true_indicator"] in GDP_PARTS  # the sector that is off carries the label
    unbalanced = {k for k, g in groups.items() if abs(sum(g[p] for p in GDP_PARTS) - g["gdp"]) > Decimal("0.015")}
    labelled = {k for k, g in groups.items() if g["labels"]}
    assert unbalanced == labelled
    assert 0 < len(labelled) < len(groups) / 10 and len(groups) > 1000


def test_conflict_labels_are_exactly_the_other_agencies_rows_that_differ(demo):
    _, _, found, catalogue, _ = demo
    others = 0
    for key, _, row, t in rows_of(found):
        agency = key.split("__")[0]
        delivered, true = Decimal(str(row[LAYOUT[key][1]])), Decimal(t["true_value"])
        labels = t["defects"].split(";") if t["defects"] else []
        if agency == catalogue[t["true_indicator"]]["authority"]:
            # The source of record delivers the truth, except a sector it got wrong.
            assert "macro_conflict" not in labels
            assert (delivered != true) == ("components_unbalanced" in labels), (key, t["entity"])
        else:
            others += 1
            assert agency in catalogue[t["true_indicator"]]["also_reported_by"].split(";")
            assert (delivered != true) == (labels == ["macro_conflict"]), (key, t["entity"], delivered, true)
    assert others > 1000


def test_hubei_levels_are_plausible(demo):
    _, _, _, _, values = demo
    v = {(r["indicator"], r["area_code"], r["period"], r["release"]): float(r["value"]) for r in values}
    for year in (2024, 2025):
        gdp = v[("gdp", "420000", f"{year}Q4", "preliminary")]
        assert 50_000 <= gdp <= 70_000
        assert 0.30 <= v[("gdp", "420100", f"{year}Q4", "preliminary")] / gdp <= 0.42  # Wuhan
        for part, share in zip(GDP_PARTS, (0.09, 0.36, 0.55)):
            assert abs(v[(part, "420000", f"{year}Q4", "preliminary")] / gdp - share) < 0.02
        assert 20_000 <= v[("retail", "420000", f"{year}M12", "preliminary")] <= 30_000
        assert 3_000 <= v[("budget_revenue", "420000", f"{year}M12", "preliminary")] <= 4_500
    assert all(99.0 <= x <= 102.0 for (c, *_), x in v.items() if c == "cpi")
    assert all(2.0 <= x <= 4.0 for (c, *_), x in v.items() if c == "unemployment_rate")


def digest(out) -> dict[str, str]:
    return {str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(out.rglob("*"))
            if p.is_file()}


def test_same_seed_gives_the_same_bytes(demo, tmp_path):
    out = demo[0]
    run(tmp_path / "again")
    first = digest(out)
    assert len(first) > 40 and digest(tmp_path / "again") == first
    run(tmp_path / "other", seed=SEED + 1)
    assert digest(tmp_path / "other")["truth/macro/values.csv"] != first["truth/macro/values.csv"]


def test_injector_counts_equal_labels(demo):
    _, inj, found, catalogue, _ = demo
    labels = Counter(k for *_, t in rows_of(found) for k in t["defects"].split(";") if k)
    assert set(labels) == {"macro_conflict", "components_unbalanced"}
    assert labels == {k: inj.injected[k] for k in labels}
    not_authority = sum(key.split("__")[0] != catalogue[t["true_indicator"]]["authority"]
                        for key, _, _, t in rows_of(found))
    gdp_releases = sum(t["true_indicator"] == "gdp" for *_, t in rows_of(found))
    assert inj.eligible["macro_conflict"] == not_authority
    assert inj.eligible["components_unbalanced"] == gdp_releases


def test_every_other_agency_row_conflicts_at_rate_one(tmp_path):
    inj = run(tmp_path, batches=2, rates=load_rates(overrides=["macro_conflict=1.0"]))
    found = deliveries(tmp_path)
    catalogue = {r["code"]: r for r in read_csv(tmp_path / "truth" / "macro" / "indicators.csv")}
    others = [(key, row, t) for key, _, row, t in rows_of(found)
              if key.split("__")[0] != catalogue[t["true_indicator"]]["authority"]]
    assert len(others) > 1000 and inj.injected["macro_conflict"] == len(others)
    for key, row, t in others:
        assert "macro_conflict" in t["defects"].split(";")
        assert Decimal(str(row[LAYOUT[key][1]])) != Decimal(t["true_value"])
