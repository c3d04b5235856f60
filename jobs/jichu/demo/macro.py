"""Macro-economy of the demo province: an indicator catalogue, true series, and six agencies' releases of them.

Every figure is synthetic, at levels plausible for Hubei (2025 GDP about 60,500 亿元, Wuhan about 2.2 万亿,
sector shares about 9/36/55 %, retail about 2.5 万亿, budget revenue about 3,800 亿). Series start in
January 2024, so the first delivery carries two years of history.

Additive indicators are built bottom-up in integer units of their last decimal (fen of 亿元): each leaf
area (a county, or a prefecture-level unit for indicators counties do not publish) gets its figure,
rounded once, and every prefecture and the province are exact sums of their leaves. GDP is the exact sum
of its three sectors, trade of exports and imports, in every release. Rates and indices are not additive:
each area has its own figure around the province's.

Releases. The figure for a period is released in the first batch after the period ends (monthly figures are
cumulative, 1-N月, and January comes only with February as 1-2月); a revised figure follows the indicator's
`revision_lag` batches later; a period ending in December (the annual figure) gets a final figure eleven
batches after its first release. An extract delivers on its cadence: its first delivery carries every
release due by then, each later one the releases due since the previous delivery.

| agency | extract | indicators (authoritative ones first) | format | cadence |
|---|---|---|---|---|
| tongji 统计 | release 统计数据发布 | GDP and sectors, 规上工业增速, 固投增速, 社零; republishes trade | XLSX | monthly |
| diaocha 调查总队 | cpi 居民消费价格指数 | CPI (1-N月, 上年同期=100) | CSV, GB18030 | monthly |
| caizheng 财政 | budget 一般公共预算收入 | budget revenue; its tax component | XLSX | monthly |
| shuiwu 税务 | tax_revenue 税收收入 | tax revenue | CSV, UTF-8 | monthly |
| haiguan 海关 | trade 进出口 | trade total, exports, imports | CSV, UTF-8 with BOM | monthly |
| renshe 人社 | employment 就业失业 | registered unemployment rate and count, new urban jobs | JSON lines | quarterly |

Truth, beside the per-row truth of writers.py: ``truth/macro/indicators.csv`` (the catalogue) and
``truth/macro/values.csv`` (indicator, area_code, period, release, value, batch: the authoritative agency's
correct figure of every release it delivered, and the batch that delivered it). Periods are ``2026M02``
(months 1-2 for cumulative monthly indicators) and ``2026Q1``; releases are preliminary, revised, final.
A release that falls due after an extract's last delivery (人社 delivers quarterly) is in neither file.

Defects (conf/demo/defects.yaml): ``macro_conflict`` on any row of a non-authoritative agency (its figure
differs from the authority's by 0.5-5 %, or is in 万元 where 亿元 is declared); ``components_unbalanced``
on each tongji GDP release of one area and period (one sector is off, so sectors do not sum to the total;
the sector row is labelled).
"""

from __future__ import annotations

import csv
import datetime as dt
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from jichu.demo.defects import Injector
from jichu.demo.places import PROVINCE, Places
from jichu.demo.timeline import Calendar, add_months
from jichu.demo.writers import ExtractSpec, Landing, rng_for

FIRST_YEAR = 2024
RELEASES = ("preliminary", "revised", "final")
FINAL_LAG = 11  # months after the first release: 最终核实 of year Y comes out in December of Y+1
# Province-administered county-level cities and 神农架林区: prefecture-level units for reporting, no counties below.
PROVINCE_ADMINISTERED = ("429004", "429005", "429006", "429021")


@dataclass(frozen=True)
class Indicator:
    code: str
    name: str
    unit: str
    frequency: str  # monthly | quarterly
    cumulative: bool  # 1-N月 / 1-N季度 running totals (or running rates) within the year
    additive: bool  # areas sum to their parent
    authority: str  # agency code of the source of record
    levels: str  # county: province, prefecture-level units and counties; prefecture: the first two only
    decimals: int
    revision_lag: int  # months from the preliminary to the revised release


CATALOGUE = (
    Indicator("gdp", "地区生产总值", "亿元", "quarterly", True, True, "tongji", "county", 2, 2),
    Indicator("gdp_primary", "第一产业增加值", "亿元", "quarterly", True, True, "tongji", "county", 2, 2),
    Indicator("gdp_secondary", "第二产业增加值", "亿元", "quarterly", True, True, "tongji", "county", 2, 2),
    Indicator("gdp_tertiary", "第三产业增加值", "亿元", "quarterly", True, True, "tongji", "county", 2, 2),
    Indicator("industry_growth", "规模以上工业增加值增速", "%", "monthly", True, False, "tongji", "prefecture", 1, 1),
    Indicator("fai_growth", "固定资产投资增速", "%", "monthly", True, False, "tongji", "county", 1, 1),
    Indicator("retail", "社会消费品零售总额", "亿元", "monthly", True, True, "tongji", "county", 2, 1),
    Indicator("cpi", "居民消费价格指数", "上年同期=100", "monthly", True, False, "diaocha", "prefecture", 1, 1),
    Indicator("budget_revenue", "一般公共预算收入", "亿元", "monthly", True, True, "caizheng", "county", 2, 1),
    Indicator("tax_revenue", "税收收入", "亿元", "monthly", True, True, "shuiwu", "county", 2, 1),
    Indicator("trade_total", "进出口总额", "亿元", "monthly", True, True, "haiguan", "prefecture", 2, 2),
    Indicator("exports", "出口总额", "亿元", "monthly", True, True, "haiguan", "prefecture", 2, 2),
    Indicator("imports", "进口总额", "亿元", "monthly", True, True, "haiguan", "prefecture", 2, 2),
    Indicator("unemployment_rate", "城镇登记失业率", "%", "quarterly", False, False, "renshe", "prefecture", 1, 1),
    Indicator("registered_unemployed", "城镇登记失业人数", "万人", "quarterly", False, True, "renshe", "prefecture", 2, 1),
    Indicator("new_jobs", "城镇新增就业人数", "万人", "monthly", True, True, "renshe", "prefecture", 2, 1),
)
BY_CODE = {i.code: i for i in CATALOGUE}
GDP_SECTORS = ("gdp_primary", "gdp_secondary", "gdp_tertiary")

# --- levels -------------------------------------------------------------------------------------------

# 2024 GDP of the prefecture-level units (亿元, close to the published figures): the weights of every
# additive indicator, each raised to its own power (trade concentrates in Wuhan even more than GDP).
UNIT_GDP = {
    "420100": 21106, "420200": 2219, "420300": 2433, "420500": 5940, "420600": 5828, "420700": 1277,
    "420800": 2316, "420900": 2890, "421000": 3276, "421100": 3028, "421200": 1918, "421300": 1339,
    "422800": 1546, "429004": 1080, "429005": 905, "429006": 775, "429021": 45,
}
# Province totals of 2024 and yearly nominal growth of the additive families.
TOTAL_2024 = {"gdp": 57_500.0, "retail": 24_000.0, "budget_revenue": 3_650.0, "trade_total": 7_000.0,
              "new_jobs": 93.0, "registered_unemployed": 22.0}
GROWTH = {"gdp": 0.052, "retail": 0.055, "budget_revenue": 0.035, "trade_total": 0.07, "new_jobs": 0.01,
          "registered_unemployed": 0.0}
CONCENTRATION = {"gdp": 1.0, "retail": 1.0, "budget_revenue": 1.05, "trade_total": 1.6, "new_jobs": 0.9,
                 "registered_unemployed": 0.9}
SECTOR_SHARES = np.array([0.09, 0.36, 0.55])
# Share of each quarter in a year's value added, per sector (harvests fall in Q3 and Q4).
QUARTER_PROFILE = np.array([[0.13, 0.22, 0.27, 0.38], [0.22, 0.26, 0.25, 0.27], [0.23, 0.245, 0.25, 0.275]])
MONTH_PROFILE = {
    "retail": [9.0, 7.8, 7.9, 7.8, 8.4, 8.4, 7.8, 7.9, 8.3, 8.9, 8.7, 9.1],
    "budget_revenue": [11.0, 7.0, 9.0, 10.0, 8.0, 9.0, 8.0, 7.0, 8.0, 8.0, 7.0, 8.0],
    "trade_total": [8.0, 6.5, 8.3, 8.3, 8.5, 8.5, 8.7, 8.7, 8.6, 8.4, 8.8, 9.0],
    "new_jobs": [7.0, 6.0, 10.0, 9.0, 9.0, 9.0, 8.0, 8.0, 9.0, 8.0, 8.0, 9.0],
}
# Rates and indices: province start, random-walk step and bounds; spread of prefecture-level units and
# counties around their parent, and their bounds.
RATE_MODEL = {
    "industry_growth": dict(start=7.0, step=0.25, lo=4.0, hi=10.0, unit_sd=1.5, county_sd=2.0, a_lo=-5.0, a_hi=18.0),
    "fai_growth": dict(start=5.0, step=0.4, lo=-2.0, hi=9.0, unit_sd=2.5, county_sd=3.0, a_lo=-15.0, a_hi=25.0),
    "cpi": dict(start=100.2, step=0.15, lo=99.5, hi=101.5, unit_sd=0.2, county_sd=0.2, a_lo=99.3, a_hi=101.7),
    "unemployment_rate": dict(start=2.9, step=0.05, lo=2.5, hi=3.5, unit_sd=0.25, county_sd=0.2, a_lo=2.2, a_hi=3.8),
}
# Relative (additive) or absolute (rates) spread of the preliminary and revised figures around the final one.
VINTAGE_SD = {"preliminary": 0.008, "revised": 0.002}
RATE_VINTAGE_SD = {"preliminary": 0.15, "revised": 0.05}


# --- periods and releases ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    year: int
    frequency: str  # monthly | quarterly
    index: int  # month 1-12 or quarter 1-4

    @property
    def code(self) -> str:
        return f"{self.year}M{self.index:02d}" if self.frequency == "monthly" else f"{self.year}Q{self.index}"

    @property
    def end_month(self) -> int:
        return self.index if self.frequency == "monthly" else 3 * self.index

    @property
    def first_due(self) -> dt.date:
        """The batch after the period ends."""
        return add_months(dt.date(self.year, self.end_month, 1), 1)

    @property
    def sort_key(self) -> tuple:
        return (self.year, self.end_month, self.frequency)


def periods_of(ind: Indicator, last_year: int) -> list[Period]:
    if ind.frequency == "quarterly":
        return [Period(y, "quarterly", q) for y in range(FIRST_YEAR, last_year + 1) for q in range(1, 5)]
    # January is never released on its own: 统计 publishes January and February together as 1-2月.
    return [Period(y, "monthly", m) for y in range(FIRST_YEAR, last_year + 1) for m in range(2, 13)]


def release_dates(ind: Indicator, period: Period) -> list[tuple[str, dt.date]]:
    first = period.first_due
    out = [("preliminary", first), ("revised", add_months(first, ind.revision_lag))]
    if period.end_month == 12:
        out.append(("final", add_months(first, FINAL_LAG)))
    return out


@dataclass(frozen=True)
class Release:
    """One released figure: an indicator for one area, period and vintage, with its true value."""

    indicator: Indicator
    area: str
    period: Period
    release: str
    due: dt.date
    units: int  # true value in units of the indicator's last decimal

    @property
    def entity(self) -> str:
        return f"{self.indicator.code}|{self.area}|{self.period.code}"


def format_units(units: int, decimals: int) -> str:
    """Integer units of the last decimal as text, exactly (no float rounding)."""
    sign = "-" if units < 0 else ""
    whole, frac = divmod(abs(units), 10**decimals)
    return f"{sign}{whole}.{frac:0{decimals}d}" if decimals else f"{sign}{whole}"


# --- areas -------------------------------------------------------------------------------------------


class Areas:
    """Province, its 17 prefecture-level units (13 prefectures and 4 province-administered units) and the
    99 counties below the prefectures; the 4 province-administered units are both units and leaves."""

    def __init__(self, places: Places):
        self.places = places
        self.units = sorted(d.code for d in places.divisions if d.level == 2) + list(PROVINCE_ADMINISTERED)
        self.units.sort()
        unit_set = set(self.units)
        self.counties = [c.code for c in places.counties if c.parent in unit_set and c.code not in unit_set]
        # Leaves of county-level indicators: every county, and each province-administered unit itself.
        self.county_leaves = sorted(self.counties + list(PROVINCE_ADMINISTERED))
        self.parent = {c.code: c.parent for c in places.counties if c.parent in unit_set}

    def name(self, code: str) -> str:
        return self.places.by_code[code].name

    def areas(self, ind: Indicator) -> list[str]:
        """Every area an indicator is published for, in code order (prefectures precede their counties)."""
        extra = self.counties if ind.levels == "county" else []
        return sorted([PROVINCE] + self.units + extra)

    def leaves(self, ind: Indicator) -> list[str]:
        return self.county_leaves if ind.levels == "county" else self.units

    def unit_of(self, leaf: str) -> str:
        return self.parent.get(leaf, leaf)


# --- true values -------------------------------------------------------------------------------------


class Truth:
    """True figures of every indicator, area, period and release, built once per run."""

    def __init__(self, areas: Areas, last_year: int, seed: int):
        self.areas, self.last_year, self.seed = areas, last_year, seed
        self.years = list(range(FIRST_YEAR, last_year + 1))
        self.values: dict[tuple[str, str, str, str], int] = {}
        self._build()

    def rng(self, *keys: object) -> np.random.Generator:
        return rng_for(self.seed, "macro", *keys)

    @cached_property
    def county_size(self) -> dict[str, float]:
        """Relative economic size of each county within its prefecture; urban districts weigh more."""
        rng = self.rng("county_size")
        out = {}
        for c in self.areas.county_leaves:
            urban = self.areas.name(c).endswith("区")
            out[c] = float(np.exp(rng.normal(0.0, 0.5))) * (1.6 if urban else 1.0)
        return out

    def leaf_weights(self, family: str, leaves: list[str]) -> np.ndarray:
        """Each leaf's share of the province for one additive family: unit weight times county share."""
        rng = self.rng("weights", family)
        units = self.areas.units
        # GDP keeps close to the published unit figures; other families wander further from GDP.
        spread = 0.02 if family == "gdp" else 0.08
        uw = np.array([UNIT_GDP[u] ** CONCENTRATION[family] for u in units]) * np.exp(rng.normal(0, spread, len(units)))
        uw = dict(zip(units, uw / uw.sum()))
        raw = np.array([self.county_size.get(leaf, 1.0) for leaf in leaves]) * np.exp(rng.normal(0, 0.15, len(leaves)))
        by_unit: dict[str, float] = {}
        for leaf, r in zip(leaves, raw):
            by_unit[self.areas.unit_of(leaf)] = by_unit.get(self.areas.unit_of(leaf), 0.0) + r
        return np.array([uw[self.areas.unit_of(leaf)] * r / by_unit[self.areas.unit_of(leaf)]
                         for leaf, r in zip(leaves, raw)])

    def annual(self, family: str, leaves: list[str]) -> np.ndarray:
        """(leaves, years) annual values: province trend times leaf weight, with a small drift per leaf-year."""
        rng = self.rng("annual", family)
        w = self.leaf_weights(family, leaves)
        trend = np.array([TOTAL_2024[family] * (1 + GROWTH[family]) ** (y - FIRST_YEAR) for y in self.years])
        return w[:, None] * trend[None, :] * np.exp(rng.normal(0, 0.02, (len(leaves), len(self.years))))

    def monthly_flows(self, family: str, leaves: list[str]) -> np.ndarray:
        """(leaves, years, 12) monthly flows that add up to each leaf's annual value."""
        rng = self.rng("months", family)
        prof = np.array(MONTH_PROFILE[family])
        noise = prof[None, None, :] * np.exp(rng.normal(0, 0.05, (len(leaves), len(self.years), 12)))
        return self.annual(family, leaves)[:, :, None] * noise / noise.sum(axis=2, keepdims=True)

    def sector_shares(self, leaves: list[str], gdp: np.ndarray) -> np.ndarray:
        """(leaves, 3) primary/secondary/tertiary shares: low primary in urban districts, calibrated so the
        province's shares come out at SECTOR_SHARES (a few rounds of proportional fitting)."""
        rng = self.rng("sectors")
        urban = np.array([self.areas.name(leaf).endswith("区") for leaf in leaves])
        s = np.column_stack([
            np.where(urban, 0.03, 0.18) * np.exp(rng.normal(0, 0.3, len(leaves))),
            0.40 * np.exp(rng.normal(0, 0.15, len(leaves))),
            0.50 * np.exp(rng.normal(0, 0.1, len(leaves))),
        ])
        weight = gdp.sum(axis=1)
        for _ in range(30):
            s = s / s.sum(axis=1, keepdims=True)
            province = (weight[:, None] * s).sum(axis=0) / weight.sum()
            s = s * (SECTOR_SHARES / province)[None, :]
        return s / s.sum(axis=1, keepdims=True)

    def vintages(self, code: str, final: np.ndarray, decimals: int) -> dict[str, np.ndarray]:
        """Leaf figures of each release in integer units: preliminary and revised off the final by a little."""
        out = {}
        for r in RELEASES:
            factor = 1.0 if r == "final" else 1 + self.rng("vintage", code, r).normal(0, VINTAGE_SD[r], final.shape)
            out[r] = np.rint(final * factor * 10**decimals).astype(np.int64)
        return out

    def store_additive(self, code: str, leaves: list[str], periods: list[Period], units: dict[str, np.ndarray]) -> None:
        """Leaf figures (leaves, periods) per release -> every area, by exact integer sums."""
        ind = BY_CODE[code]
        unit_rows: dict[str, list[int]] = {}
        for i, leaf in enumerate(leaves):
            unit_rows.setdefault(self.areas.unit_of(leaf), []).append(i)
        for r, arr in units.items():
            for j, p in enumerate(periods):
                col = arr[:, j]
                self.values[(code, PROVINCE, p.code, r)] = int(col.sum())
                for u, rows in unit_rows.items():
                    self.values[(code, u, p.code, r)] = int(col[rows].sum())
                if ind.levels == "county":
                    for i, leaf in enumerate(leaves):
                        self.values[(code, leaf, p.code, r)] = int(col[i])

    def _cumulate(self, flows: np.ndarray, periods: list[Period]) -> np.ndarray:
        """(leaves, years, 12) monthly flows -> (leaves, periods) running totals 1-N月."""
        cum = flows.cumsum(axis=2)
        return np.column_stack([cum[:, p.year - FIRST_YEAR, p.index - 1] for p in periods])

    def _build(self) -> None:
        a = self.areas
        # GDP: quarterly cumulative value added per sector; the total is the exact sum of the sectors.
        leaves = a.county_leaves
        gdp_year = self.annual("gdp", leaves)
        shares = self.sector_shares(leaves, gdp_year)
        qp = periods_of(BY_CODE["gdp"], self.last_year)
        rng = self.rng("quarters")
        sectors = {}
        for k, code in enumerate(GDP_SECTORS):
            prof = QUARTER_PROFILE[k][None, None, :] * np.exp(rng.normal(0, 0.03, (len(leaves), len(self.years), 4)))
            flows = (gdp_year * shares[:, k:k + 1])[:, :, None] * prof / prof.sum(axis=2, keepdims=True)
            cum = flows.cumsum(axis=2)
            final = np.column_stack([cum[:, p.year - FIRST_YEAR, p.index - 1] for p in qp])
            sectors[code] = self.vintages(code, final, 2)
            self.store_additive(code, leaves, qp, sectors[code])
        self.store_additive("gdp", leaves, qp, {r: sum(sectors[c][r] for c in GDP_SECTORS) for r in RELEASES})

        mp = periods_of(BY_CODE["retail"], self.last_year)
        retail = self._cumulate(self.monthly_flows("retail", leaves), mp)
        self.store_additive("retail", leaves, mp, self.vintages("retail", retail, 2))

        # Budget revenue, and its tax component at 65-78 % of it per county.
        budget = self._cumulate(self.monthly_flows("budget_revenue", leaves), mp)
        self.store_additive("budget_revenue", leaves, mp, self.vintages("budget_revenue", budget, 2))
        tax_share = self.rng("tax_share").uniform(0.65, 0.78, (len(leaves), 1))
        self.store_additive("tax_revenue", leaves, mp, self.vintages("tax_revenue", budget * tax_share, 2))

        # Trade by prefecture-level unit: exports and imports; the total is their exact sum.
        units = a.units
        trade = self._cumulate(self.monthly_flows("trade_total", units), mp)
        export_share = self.rng("export_share").uniform(0.6, 0.78, (len(units), 1))
        ex = self.vintages("exports", trade * export_share, 2)
        im = self.vintages("imports", trade * (1 - export_share), 2)
        self.store_additive("exports", units, mp, ex)
        self.store_additive("imports", units, mp, im)
        self.store_additive("trade_total", units, mp, {r: ex[r] + im[r] for r in RELEASES})

        self.store_additive("new_jobs", units, mp, self.vintages(
            "new_jobs", self._cumulate(self.monthly_flows("new_jobs", units), mp), 2))
        # Registered unemployed: a stock at each quarter's end, around the unit's share of the province.
        qp_point = periods_of(BY_CODE["registered_unemployed"], self.last_year)
        base = self.annual("registered_unemployed", units)
        stock = np.column_stack([base[:, p.year - FIRST_YEAR] for p in qp_point])
        stock = stock * np.exp(self.rng("unemployed").normal(0, 0.03, stock.shape))
        self.store_additive("registered_unemployed", units, qp_point, self.vintages("registered_unemployed", stock, 2))

        for code in RATE_MODEL:
            self._build_rate(BY_CODE[code])

    def _build_rate(self, ind: Indicator) -> None:
        """A province random walk; units and counties keep a persistent offset from their parent."""
        m = RATE_MODEL[ind.code]
        rng = self.rng("rate", ind.code)
        periods = periods_of(ind, self.last_year)
        province, x = [], m["start"]
        for _ in periods:
            x = float(np.clip(x + rng.normal(0, m["step"]), m["lo"], m["hi"]))
            province.append(x)
        province = np.array(province)
        series = {PROVINCE: province}
        for u in self.areas.units:
            series[u] = province + rng.normal(0, m["unit_sd"]) + rng.normal(0, m["step"], len(periods))
        if ind.levels == "county":
            for c in self.areas.counties:
                series[c] = series[self.areas.unit_of(c)] + rng.normal(0, m["county_sd"]) + \
                    rng.normal(0, m["step"], len(periods))
        scale = 10**ind.decimals
        for area in sorted(series):
            final = np.clip(series[area], m["a_lo"], m["a_hi"])
            for r in RELEASES:
                noise = 0.0 if r == "final" else self.rng("rate_vintage", ind.code, area, r).normal(
                    0, RATE_VINTAGE_SD[r], len(periods))
                fig = np.rint(np.clip(final + noise, m["a_lo"], m["a_hi"]) * scale).astype(np.int64)
                for j, p in enumerate(periods):
                    self.values[(ind.code, area, p.code, r)] = int(fig[j])

    def releases(self, ind: Indicator, horizon: dt.date) -> list[Release]:
        """Every release of an indicator due by the horizon, for every area it is published for."""
        out = []
        for p in periods_of(ind, self.last_year):
            for r, due in release_dates(ind, p):
                if due <= horizon:
                    out += [Release(ind, area, p, r, due, self.values[(ind.code, area, p.code, r)])
                            for area in self.areas.areas(ind)]
        return out


# --- extracts: each agency's layout -----------------------------------------------------------------

TRUTH_FIELDS = ["indicator", "area_code", "period", "release", "value"]
CN_QUARTER = "一二三四"
TONGJI_CUM_QUARTER = {1: "一季度", 2: "上半年", 3: "前三季度", 4: "全年"}


def _tongji_period(p: Period, ind: Indicator) -> str:
    if p.frequency == "monthly":
        return f"{p.year}年1-{p.index}月"
    return f"{p.year}年{TONGJI_CUM_QUARTER[p.index] if ind.cumulative else CN_QUARTER[p.index - 1] + '季度'}"


@dataclass(frozen=True)
class MacroExtract:
    spec: ExtractSpec
    indicators: tuple[str, ...]  # in the order rows of one area and period follow each other
    labels: dict[str, str]  # release -> the agency's word for it

    def row(self, rel: Release, value: str, areas: Areas) -> list:
        ind, p, area, label = rel.indicator, rel.period, rel.area, self.labels[rel.release]
        a = self.spec.agency
        if a == "tongji":
            return [ind.code, ind.name, area, areas.name(area), _tongji_period(p, ind), value, ind.unit, label]
        if a == "diaocha":
            return [area, areas.name(area), f"{p.year}年1-{p.index}月", "居民消费价格总指数", value, label]
        if a == "caizheng":
            subject = "一般公共预算收入" if ind.code == "budget_revenue" else "其中：税收收入"
            return [area, areas.name(area), subject, str(p.year), f"1-{p.index}月", value, label]
        if a == "shuiwu":
            return [area, areas.name(area), f"{p.year}-01", f"{p.year}-{p.index:02d}", value, label]
        if a == "haiguan":
            flow = {"trade_total": "进出口", "exports": "出口", "imports": "进口"}[ind.code]
            return [f"{p.year}{p.index:02d}", "累计", area, areas.name(area), flow, value, label]
        # renshe: JSON, numbers as numbers; quarterly stocks and rates carry the quarter, new jobs the months.
        period = f"{p.year}-Q{p.index}" if p.frequency == "quarterly" else f"{p.year}-01~{p.year}-{p.index:02d}"
        return [area, areas.name(area), ind.name, period, float(value), ind.unit, label]


def _extract(agency, extract, filename, fmt, encoding, columns, cadence, indicators, labels) -> MacroExtract:
    spec = ExtractSpec(agency, extract, "macro", filename, fmt, encoding, columns, TRUTH_FIELDS, cadence, "events")
    return MacroExtract(spec, tuple(indicators), dict(zip(RELEASES, labels)))


EXTRACTS = (
    _extract("tongji", "release", "release.xlsx", "xlsx", "utf-8",
             ["指标代码", "指标名称", "地区代码", "地区名称", "统计时期", "数值", "计量单位", "数据类型"], "monthly",
             ["gdp", *GDP_SECTORS, "industry_growth", "fai_growth", "retail", "trade_total", "exports", "imports"],
             ["初步", "修订", "最终"]),
    _extract("diaocha", "cpi", "cpi.csv", "csv", "gb18030",
             ["地区代码", "地区", "报告期", "指标名称", "指数(上年同期=100)", "发布状态"], "monthly",
             ["cpi"], ["初值", "修订值", "终值"]),
    # 财政 reports 税收收入 as the main component of 一般公共预算收入: the same indicator 税务 is the source of.
    _extract("caizheng", "budget", "budget.xlsx", "xlsx", "utf-8",
             ["行政区划代码", "行政区划名称", "预算科目", "年度", "期间", "累计数(亿元)", "数据口径"], "monthly",
             ["budget_revenue", "tax_revenue"], ["快报", "调整", "决算"]),
    _extract("shuiwu", "tax_revenue", "tax_revenue.csv", "csv", "utf-8",
             ["行政区划代码", "地区名称", "所属期起", "所属期止", "税收收入累计(亿元)", "数据版本"], "monthly",
             ["tax_revenue"], ["1", "2", "3"]),
    _extract("haiguan", "trade", "trade.csv", "csv", "utf-8-sig",
             ["统计年月", "统计口径", "境内地区代码", "境内地区名称", "贸易流向", "金额(亿元人民币)", "数据状态"], "monthly",
             ["trade_total", "exports", "imports"], ["初步数", "修正数", "最终数"]),
    _extract("renshe", "employment", "employment.jsonl", "jsonl", "utf-8",
             ["area_code", "area_name", "indicator", "stat_period", "value", "unit", "status"], "quarterly",
             ["unemployment_rate", "registered_unemployed", "new_jobs"], ["P", "R", "F"]),
)

def also_reported_by(code: str) -> list[str]:
    return [e.spec.agency for e in EXTRACTS if code in e.indicators and e.spec.agency != BY_CODE[code].authority]


# --- defects -----------------------------------------------------------------------------------------


def spoil_conflict(units: int, ind: Indicator, rng: np.random.Generator) -> int:
    """Another agency's figure: 0.5-5 % off (at least a few units of the last decimal), or, for 亿元, a
    figure in 万元 under an 亿元 header."""
    if ind.unit == "亿元" and rng.random() < 0.15:
        return units * 10_000
    floor = 5 if ind.decimals == 2 else 1
    delta = max(floor, int(round(abs(units) * rng.uniform(0.005, 0.05))))
    return units + (delta if rng.random() < 0.5 else -delta)


def spoil_component(units: int, rng: np.random.Generator) -> int:
    """A sector figure off by 1-5 %, and by at least 0.10 亿元, so the imbalance exceeds any rounding."""
    delta = max(10, int(round(abs(units) * rng.uniform(0.01, 0.05))))
    return units + (delta if rng.random() < 0.5 else -delta)


# --- generation --------------------------------------------------------------------------------------


# Indicators published as one table: their rows for one area follow each other (a GDP release is the
# total and its three sectors; 财政's budget revenue and its tax component; 海关's trade and its two flows).
FAMILY = {"gdp": "gdp", **{c: "gdp" for c in GDP_SECTORS}, "budget_revenue": "budget", "tax_revenue": "budget",
          "trade_total": "trade", "exports": "trade", "imports": "trade"}


def _sort_key(ex: MacroExtract, rel: Release) -> tuple:
    """Releases in the order they came out; within one release date, table by table, period, vintage, area."""
    code = rel.indicator.code
    family = FAMILY.get(code, code)
    table = min(i for i, c in enumerate(ex.indicators) if FAMILY.get(c, c) == family)
    return (rel.due, table, rel.period.sort_key, RELEASES.index(rel.release), rel.area, ex.indicators.index(code))


def generate_macro(landing: Landing, cal: Calendar, places: Places, rates: dict[str, float], seed: int) -> Injector:
    """Write every macro extract for the calendar's batches, the per-row truth, truth/macro/indicators.csv
    and truth/macro/values.csv; return the injector with its trial and hit counts."""
    areas = Areas(places)
    horizon = cal.horizon
    truth = Truth(areas, horizon.year, seed)
    inj = Injector(rates, rng_for(seed, "macro", "inject"))
    values: list[list] = []
    for ex in EXTRACTS:
        spoil_rng = rng_for(seed, "macro", "spoil", ex.spec.key)
        releases = sorted((rel for code in ex.indicators for rel in truth.releases(BY_CODE[code], horizon)),
                          key=lambda rel: _sort_key(ex, rel))
        previous: dt.date | None = None
        for b in cal.deliveries(ex.spec.cadence):
            day = cal.dates[b]
            writer = landing.writer(ex.spec, cal.names[b])  # opened even when nothing is due: an empty release
            due = [r for r in releases if (previous is None or r.due > previous) and r.due <= day]
            previous = day
            for block in _blocks(due):
                delivered = [r.units for r in block]
                defects: list[list[str]] = [[] for _ in block]
                if ex.spec.agency == "tongji" and block[0].indicator.code == "gdp":
                    if inj.hit("components_unbalanced"):
                        sectors = [k for k, r in enumerate(block) if r.indicator.code in GDP_SECTORS]
                        k = sectors[int(spoil_rng.integers(len(sectors)))]
                        delivered[k] = spoil_component(block[k].units, spoil_rng)
                        defects[k].append("components_unbalanced")
                for k, rel in enumerate(block):
                    ind = rel.indicator
                    if ex.spec.agency != ind.authority and inj.hit("macro_conflict"):
                        delivered[k] = spoil_conflict(rel.units, ind, spoil_rng)
                        defects[k].append("macro_conflict")
                    true_value = format_units(rel.units, ind.decimals)
                    writer.write(ex.row(rel, format_units(delivered[k], ind.decimals), areas),
                                 entity=rel.entity, defects=defects[k],
                                 truth={"indicator": ind.code, "area_code": rel.area, "period": rel.period.code,
                                        "release": rel.release, "value": true_value})
                    if ex.spec.agency == ind.authority:
                        values.append([ind.code, rel.area, rel.period.code, rel.release, true_value, cal.names[b]])
    _write_truth(landing, values)
    return inj


def _blocks(releases: list[Release]) -> list[list[Release]]:
    """Consecutive rows of one GDP release (same area, period, vintage) form one block; others stand alone."""
    out: list[list[Release]] = []
    for r in releases:
        prev = out[-1][0] if out else None
        if prev is not None and FAMILY.get(r.indicator.code) == FAMILY.get(prev.indicator.code) == "gdp" and \
                (prev.area, prev.period, prev.release) == (r.area, r.period, r.release):
            out[-1].append(r)
        else:
            out.append([r])
    return out


def _write_truth(landing: Landing, values: list[list]) -> None:
    folder = landing.out / "truth" / "macro"
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "indicators.csv").open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["code", "name", "unit", "frequency", "cumulative", "additive", "authority", "also_reported_by",
                    "levels", "decimals", "revision_lag"])
        for i in CATALOGUE:
            w.writerow([i.code, i.name, i.unit, i.frequency, str(i.cumulative).lower(), str(i.additive).lower(),
                        i.authority, ";".join(also_reported_by(i.code)), i.levels, i.decimals, i.revision_lag])
    order = {i.code: n for n, i in enumerate(CATALOGUE)}
    values.sort(key=lambda v: (order[v[0]], v[1], v[2], RELEASES.index(v[3])))
    with (folder / "values.csv").open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["indicator", "area_code", "period", "release", "value", "batch"])
        w.writerows(values)
