"""Legal entities of the demo province and the six legal-entity agencies' extracts of them.

Entities are made partition by partition from the persons of that partition (about 0.12 per person; each
legal representative is an adult of the partition, alive on the day the entity was established), so memory
stays bounded for any scale: across partitions only the global entity counter and a few name counters per
county live on. Each extract is a view of the true entities on a batch date, with defects injected as
conf/demo/defects.yaml says; every delivered row's truth is written beside it.

| agency | extract | covers | snapshot cadence | format |
|---|---|---|---|---|
| shichang 市场监管 | market_entity 市场主体登记 | enterprises, individual businesses, co-ops | monthly | CSV, UTF-8 BOM |
| bianban 编办 | institution 机关事业单位 | government bodies, public institutions | quarterly | XLSX |
| minzheng 民政 | social_org 社会组织 | social groups, private non-enterprises, foundations | quarterly | CSV, GB18030 |
| shuiwu 税务 | taxpayer 纳税人登记 | enterprises, individual businesses | monthly | JSON lines |
| tongji 统计 | directory 名录库 | every legal person except individual businesses | annual | CSV, GB18030 |
| renshe 人社 | employer 参保单位 | entities with insured staff | monthly | JSON lines |

The three registers (市场监管, 编办, 民政) are the sources of record for the codes they issue and receive no
record-level defects; they keep deregistered entities with their status. The unified social credit codes
follow GB 32100: authority and type characters that belong together, the county code of the registering
office, an embedded GB 11714 organisation code and the mod-31 check character. Codes are unique by
construction: the organisation code is a fixed bijection of the global entity index.

Truth: ``truth/records/<agency>__<extract>/<batch>.csv`` per delivered row (writers.RecordWriter) and
``truth/legal/entities.csv``, one row per entity with every true field. A row delivered twice
(entity_duplicate) repeats the defects of its original and carries their labels too, so a kind's count of
injections is its count of labelled rows that are not duplicates.
"""

from __future__ import annotations

import bisect
import csv
import datetime as dt
import math
import re
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
from stdnum.cn import uscc as gb32100
from stdnum.iso7064 import mod_11_10

from jichu.demo.defects import Injector
from jichu.demo.people import Person, person_ref
from jichu.demo.places import Places
from jichu.demo.timeline import Calendar
from jichu.demo.writers import ExtractSpec, Landing, rng_for

ENTITIES_PER_PERSON = 0.12
FIRST_ESTABLISHED = dt.date(1995, 1, 1)
# 三证合一 (late 2015): from 2016 an entity gets only a credit code. Older entities also had a 15-digit
# 工商注册号 and a 9-character 组织机构代码, which other agencies' systems still hold.
USCC_FROM = dt.date(2016, 1, 1)
MOVES_FROM = dt.date(2012, 1, 1)
MOVED_SHARE = 0.035  # drawn; some moves fall outside the entity's life, about 3 % of entities end up moved
REP_MAX_AGE = 75

# GB 11714 organisation codes: weights of the 8 body characters; body values are digits 0-9, letters 10-35.
ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)
USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"  # GB 32100: no I, O, S, V, Z
# Fixed affine bijections of the entity index (multipliers coprime to the moduli): distinct indexes give
# distinct codes, which look scattered as real ones do.
_DIGIT_MOD, _DIGIT_A, _DIGIT_B = 10**8, 69_069, 31_415_926
_MA_MOD, _MA_A, _MA_B = 31**6, 48_271, 7_654_321
_REGNO_MOD, _REGNO_A, _REGNO_B = 10**7, 7_919, 1_234_567
MAX_ENTITIES = 10**7  # the 15-digit registration number's serial space (7 digits after the type digit)


@dataclass(frozen=True)
class Form:
    """A registration form: GB 32100 characters 1-2 and what goes with them."""

    code: str  # authority + type: 91 企业, 92 个体工商户, 93 农民专业合作社, 11 机关, 12 事业单位, 51/52/53 民政
    kind: str
    agency: str  # the register that issues the code (source of record)
    text: str
    share: float
    closure_rate: float  # yearly hazard of deregistration
    insured: float  # share with insured staff (人社 employers)


FORMS = (
    Form("91", "enterprise", "shichang", "企业", 0.30, 0.03, 1.0),
    Form("92", "individual", "shichang", "个体工商户", 0.65, 0.04, 0.15),
    Form("93", "cooperative", "shichang", "农民专业合作社", 0.02, 0.03, 0.3),
    Form("11", "government", "bianban", "机关", 0.004, 0.0, 1.0),
    Form("12", "institution", "bianban", "事业单位", 0.016, 0.002, 1.0),
    Form("51", "social_org", "minzheng", "社会团体", 0.006, 0.01, 0.5),
    Form("52", "social_org", "minzheng", "民办非企业单位", 0.003, 0.02, 1.0),
    Form("53", "social_org", "minzheng", "基金会", 0.001, 0.005, 1.0),
)

COMPANY_TYPES = (("有限责任公司（自然人投资或控股）", 0.62), ("有限责任公司（自然人独资）", 0.34),
                 ("股份有限公司（非上市、自然人投资或控股）", 0.04))

# GB/T 4754-2017 classes (section letter, 4-digit class) with the word a name uses for them; every code was
# checked against the 2017 table.
ENTERPRISE_TRADES = (
    ("A", "0153", "果业"), ("A", "0313", "生态养殖"), ("A", "0412", "水产"), ("C", "1311", "米业"),
    ("C", "2110", "家具"), ("C", "2231", "包装"), ("C", "2319", "印务"), ("C", "3021", "新型建材"),
    ("C", "3311", "钢结构"), ("C", "3670", "汽车零部件"), ("E", "4710", "建设工程"), ("E", "4813", "市政工程"),
    ("E", "4910", "电力工程"), ("E", "5011", "装饰工程"), ("F", "5123", "农产品"), ("F", "5132", "服饰"),
    ("F", "5165", "建材"), ("F", "5174", "五金机电"), ("F", "5212", "超市"), ("F", "5251", "大药房"),
    ("F", "5263", "汽配"), ("F", "5292", "电子商务"), ("G", "5431", "物流"), ("G", "6020", "速递"),
    ("H", "6110", "酒店"), ("H", "6210", "餐饮管理"), ("I", "6513", "软件"), ("I", "6531", "信息技术"),
    ("K", "7010", "房地产开发"), ("K", "7020", "物业服务"), ("K", "7030", "房地产经纪"), ("L", "7241", "财税服务"),
    ("L", "7259", "广告"), ("M", "7320", "科技"), ("O", "8111", "汽车服务"), ("P", "8391", "职业培训"),
)
INDIVIDUAL_TRADES = (
    ("F", "5213", "便利店"), ("F", "5219", "副食店"), ("F", "5219", "日用品经营部"), ("F", "5221", "粮油店"),
    ("F", "5221", "粮油经营部"), ("F", "5223", "水果店"), ("F", "5224", "鲜肉店"), ("F", "5227", "烟酒店"),
    ("F", "5232", "服装店"), ("F", "5233", "鞋店"), ("F", "5234", "化妆品店"), ("F", "5251", "药店"),
    ("F", "5274", "手机店"), ("F", "5281", "五金店"), ("F", "5283", "家具店"), ("F", "5287", "瓷砖经营部"),
    ("H", "6210", "餐馆"), ("H", "6220", "快餐店"), ("H", "6231", "茶馆"), ("H", "6291", "小吃店"),
    ("O", "8030", "干洗店"), ("O", "8040", "理发店"), ("O", "8040", "美容美发店"), ("O", "8060", "照相馆"),
    ("O", "8111", "汽车修理部"), ("G", "5431", "货运部"), ("R", "9013", "网吧"), ("C", "2110", "家具加工部"),
    ("E", "5012", "装饰部"),
)
COOPERATIVE_TRADES = (
    ("A", "0111", "水稻种植"), ("A", "0141", "蔬菜种植"), ("A", "0142", "食用菌种植"), ("A", "0153", "柑橘种植"),
    ("A", "0164", "茶叶种植"), ("A", "0171", "中药材种植"), ("A", "0313", "生猪养殖"), ("A", "0321", "蛋鸡养殖"),
    ("A", "0412", "水产养殖"), ("A", "0412", "小龙虾养殖"),
)
# County departments (机关法人) and the class of each; then one government per township.
DEPARTMENTS = (
    ("人民政府办公室", "9221"), ("发展和改革局", "9225"), ("教育局", "9224"), ("公安局", "9223"), ("民政局", "9224"),
    ("财政局", "9225"), ("人力资源和社会保障局", "9224"), ("自然资源和规划局", "9225"), ("住房和城乡建设局", "9225"),
    ("交通运输局", "9225"), ("水利和湖泊局", "9225"), ("农业农村局", "9225"), ("商务局", "9225"),
    ("文化和旅游局", "9224"), ("卫生健康局", "9224"), ("退役军人事务局", "9224"), ("应急管理局", "9223"),
    ("审计局", "9226"), ("市场监督管理局", "9226"), ("统计局", "9221"), ("医疗保障局", "9224"),
    ("城市管理执法局", "9226"),
)
# Public institutions (事业单位): name, class, sponsoring department (举办单位).
INSTITUTIONS = (
    ("人民医院", "8411", "卫生健康局"), ("中医医院", "8412", "卫生健康局"), ("疾病预防控制中心", "8431", "卫生健康局"),
    ("妇幼保健院", "8433", "卫生健康局"), ("图书馆", "8831", "文化和旅游局"), ("档案馆", "8832", "人民政府办公室"),
    ("博物馆", "8850", "文化和旅游局"), ("实验小学", "8321", "教育局"), ("机关幼儿园", "8310", "教育局"),
)
SCHOOLS = (("中学", "8334"), ("小学", "8321"), ("幼儿园", "8310"))
# Social groups (社会团体): name, class (9521 专业性, 9522 行业性, 9529 其他), 业务主管单位 ('' 直接登记).
SOCIETIES = (
    ("个体劳动者协会", "9522", "市场监督管理局"), ("餐饮行业协会", "9522", ""), ("建筑业协会", "9522", ""),
    ("物流协会", "9522", ""), ("茶叶协会", "9522", ""), ("老年人体育协会", "9529", "文化和旅游局"),
    ("书法家协会", "9521", "文学艺术界联合会"), ("摄影家协会", "9521", "文学艺术界联合会"),
    ("作家协会", "9521", "文学艺术界联合会"), ("志愿者协会", "9529", "民政局"), ("慈善会", "9529", "民政局"),
    ("会计学会", "9521", "财政局"), ("医学会", "9521", "科学技术协会"), ("护理学会", "9521", "科学技术协会"),
    ("钓鱼协会", "9529", "文化和旅游局"), ("篮球协会", "9529", "文化和旅游局"), ("象棋协会", "9529", "文化和旅游局"),
    ("收藏家协会", "9529", "文化和旅游局"), ("农业技术协会", "9521", "科学技术协会"), ("武术协会", "9529", "文化和旅游局"),
)
NONPROFITS = (("幼儿园", "8310", "教育局"), ("培训学校", "8393", "教育局"), ("养老院", "8514", "民政局"),
              ("职业培训学校", "8391", "人力资源和社会保障局"), ("民办学校", "8321", "教育局"))
FOUNDATIONS = (("教育基金会", "9530", "教育局"), ("慈善基金会", "9530", "民政局"))

# Characters of trade names (字号), plus Faker's zh_CN company prefixes of up to three characters.
ZIHAO_CHARS = (
    "鑫盛华泰恒达兴隆昌瑞祥宏源丰德信诚和安康福顺益嘉佳联众创新金银鼎辉耀星海天宇博远明汇通宝利荣发旺锦鸿腾飞振光"
    "伟建中正永润峰俊凯祺禾楚荆江汉东南方晨阳春秋云龙凤美家乐欣悦万千百合升晟豪骏力浩程启航卓越精诺贝亿邦尚品"
    "睿智鹏程佰铭盈泓灏森淼"
)

# 人社 unit types (aab019) as this agency's system codes them.
RENSHE_UNIT_TYPE = {"91": "10", "92": "70", "93": "11", "11": "30", "12": "50", "51": "55", "52": "56", "53": "57"}
# 编办 and 民政 word a registration's status their own way (市场监管 writes the canonical words).
STATUS_TEXT = {"bianban": {"存续": "正常", "注销": "注销", "吊销": "撤销"},
               "minzheng": {"存续": "正常", "注销": "注销", "吊销": "撤销"}}


def _spec(agency, extract, filename, fmt, encoding, columns, truth, cadence) -> ExtractSpec:
    return ExtractSpec(agency, extract, "legal", filename, fmt, encoding, columns, truth, cadence, "snapshot")


REGISTER_TRUTH = ["uscc", "name", "kind", "legal_rep_name", "legal_rep_id_number", "address", "county",
                  "established", "status", "deregistered"]
MARKET = _spec("shichang", "market_entity", "market_entity.csv", "csv", "utf-8-sig",
               ["统一社会信用代码", "注册号", "名称", "市场主体类型", "法定代表人", "法定代表人证件号码", "住所",
                "住所所在行政区划", "成立日期", "核准日期", "登记状态", "注销日期", "吊销日期", "行业代码", "登记机关"],
               REGISTER_TRUTH + ["regno15", "industry"], "monthly")
INSTITUTION = _spec("bianban", "institution", "institution.xlsx", "xlsx", "utf-8",
                    ["统一社会信用代码", "单位名称", "单位类别", "法定代表人", "法定代表人身份证号", "住所", "住所行政区划代码",
                     "举办单位", "开办资金（万元）", "成立日期", "状态", "注销日期"],
                    REGISTER_TRUTH, "quarterly")
SOCIAL_ORG = _spec("minzheng", "social_org", "social_org.csv", "csv", "gb18030",
                   ["统一社会信用代码", "社会组织名称", "社会组织类型", "法定代表人", "法定代表人身份证号", "住所",
                    "住所行政区划代码", "业务主管单位", "登记管理机关", "成立登记日期", "注册资金（万元）", "登记状态",
                    "注销日期"],
                   REGISTER_TRUTH + ["form"], "quarterly")
TAXPAYER = _spec("shuiwu", "taxpayer", "taxpayer.jsonl", "jsonl", "utf-8",
                 ["nsrsbh", "nsrmc", "fddbrxm", "fddbrsfzjhm", "scjydz", "xzqhsz_dm", "hy_dm", "djrq", "zgswjmc",
                  "nsrzt", "zjsbssq"],
                 ["uscc", "name", "legal_rep_name", "legal_rep_id_number", "address", "county", "industry",
                  "tax_registered", "tax_status", "last_filing"], "monthly")
DIRECTORY = _spec("tongji", "directory", "directory.csv", "csv", "gb18030",
                  ["统一社会信用代码", "组织机构代码", "单位详细名称", "法定代表人（单位负责人）", "行业代码", "区划代码",
                   "详细地址", "开业（成立）时间", "从业人员", "营业收入(千元)", "单位规模"],
                  ["uscc", "orgcode", "name", "legal_rep_name", "industry", "county", "township", "address",
                   "established", "employees", "revenue", "size"], "annual")
EMPLOYER = _spec("renshe", "employer", "employer.jsonl", "jsonl", "utf-8",
                 ["aab001", "aab004", "aab019", "aab301", "cbrs"],
                 ["uscc", "name", "kind", "county", "employees"], "monthly")
EXTRACTS = (MARKET, INSTITUTION, SOCIAL_ORG, TAXPAYER, DIRECTORY, EMPLOYER)

# The defect kinds each non-authoritative extract suffers, in the order they are applied.
KINDS = {
    TAXPAYER.key: ["uscc_legacy", "uscc_checksum", "entity_name_variant", "entity_address_stale",
                   "deregistered_filing", "entity_duplicate"],
    DIRECTORY.key: ["uscc_missing", "uscc_legacy", "uscc_checksum", "entity_name_variant", "entity_address_stale",
                    "entity_duplicate"],
    EMPLOYER.key: ["uscc_missing", "uscc_legacy", "uscc_checksum", "entity_name_variant"],
}

ENTITY_COLUMNS = ["entity", "uscc", "regno15", "orgcode", "name", "kind", "form", "agency", "office", "county",
                  "township", "address", "previous_county", "previous_township", "previous_address", "moved_on",
                  "established", "deregistered", "closed_as", "industry", "legal_rep", "legal_rep_id_number",
                  "employees", "revenue", "insured"]


# --- codes -------------------------------------------------------------------------------------------


def org_check(body: str) -> str:
    """GB 11714 check character of an 8-character organisation-code body."""
    total = sum((int(c) if c.isdigit() else ord(c) - 55) * w for c, w in zip(body, ORG_WEIGHTS))
    check = 11 - total % 11
    return "X" if check == 10 else "0" if check == 11 else str(check)


def org_code(index: int, modern: bool) -> str:
    """The organisation code of entity `index`: digits for the old register, MA + six characters for codes
    issued from 2016 (as 市场监管 does). Both are bijections of the index, and the two sets never meet."""
    if not 0 <= index < MAX_ENTITIES:
        raise ValueError(f"entity index {index} outside the code space")
    if modern:
        v = (_MA_A * index + _MA_B) % _MA_MOD
        chars = []
        for _ in range(6):
            v, r = divmod(v, 31)
            chars.append(USCC_ALPHABET[r])
        body = "MA" + "".join(reversed(chars))
    else:
        body = f"{(_DIGIT_A * index + _DIGIT_B) % _DIGIT_MOD:08d}"
    return body + org_check(body)


def make_uscc(form: str, office: str, orgcode: str) -> str:
    first17 = form + office + orgcode
    return first17 + gb32100.calc_check_digit(first17)


def make_regno15(office: str, index: int, form: str) -> str:
    """15-digit 工商注册号: registering office, serial (first digit: 1 enterprise, 3 cooperative, 6 individual
    business), ISO 7064 MOD 11,10 check digit."""
    serial = {"91": "1", "93": "3", "92": "6"}[form] + f"{(_REGNO_A * index + _REGNO_B) % _REGNO_MOD:07d}"
    first14 = office + serial
    return first14 + mod_11_10.calc_check_digit(first14)


# --- defects ---------------------------------------------------------------------------------------


def spoil_uscc_checksum(code: str, u: float) -> str:
    others = [c for c in USCC_ALPHABET if c != code[-1]]
    return code[:-1] + others[int(u * len(others))]


def spoil_name_variant(name: str, u: float) -> str:
    """Half-width brackets, 有限公司 <-> 有限责任公司, or a space: whichever `u` picks among those that apply."""
    options = []
    if "（" in name:
        options.append("brackets")
    if name.endswith("有限责任公司"):
        options.append("short")
    elif name.endswith("有限公司") and not name.endswith("股份有限公司"):
        options.append("long")
    options.append("space")
    pick = options[int(u * len(options))]
    if pick == "brackets":
        return name.replace("（", "(").replace("）", ")")
    if pick == "short":
        return name[: -len("有限责任公司")] + "有限公司"
    if pick == "long":
        return name[: -len("有限公司")] + "有限责任公司"
    i = 2 + int((u * 97) % 1 * max(len(name) - 3, 1))
    return name[:i] + " " + name[i:]


# --- entities --------------------------------------------------------------------------------------


@dataclass
class Entity:
    index: int  # global, dense from 0; the truth entity is `ref`
    uscc: str
    name: str
    kind: str  # enterprise | individual | cooperative | government | institution | social_org
    form: str  # GB 32100 characters 1-2
    subtype: str  # 市场主体类型 / 单位类别 / 社会组织类型 as the register writes it
    agency: str  # registering authority: shichang | bianban | minzheng
    office: str  # county code of the office that issued the credit code (its characters 3-8)
    county: str  # current county code
    township: str
    address: str
    established: dt.date
    industry: str  # GB/T 4754-2017 class, 4 digits
    section: str  # its section letter
    legal_rep: int  # person index
    legal_rep_id_number: str
    legal_rep_name: str
    regno15: str | None = None  # market entities established before 2016
    deregistered: dt.date | None = None
    closed_as: str | None = None  # 注销 | 吊销
    moved_on: dt.date | None = None
    previous_county: str | None = None
    previous_township: str | None = None
    previous_address: str | None = None
    sponsor: str = ""  # 举办单位 / 业务主管单位
    capital: int = 0  # 开办资金 / 注册资金, 万元
    employees: int = 0
    revenue: int | None = None  # 营业收入, 千元 a year
    insured: bool = False  # has insured staff (人社 employer)
    tax_registered: dt.date | None = None
    tax_abnormal_from: dt.date | None = None

    ref: str = field(init=False)  # truth entity id

    def __post_init__(self) -> None:
        self.ref = f"L{self.index:08d}"

    @property
    def orgcode(self) -> str:
        return self.uscc[8:17]

    @property
    def origin(self) -> str:
        """County of the first registration."""
        return self.previous_county or self.county

    @property
    def legacy(self) -> bool:
        return self.established < USCC_FROM

    def active_on(self, day: dt.date) -> bool:
        return self.established <= day and (self.deregistered is None or day < self.deregistered)

    def status_on(self, day: dt.date) -> str:
        if self.deregistered is not None and self.deregistered <= day:
            return self.closed_as
        return "存续"

    def address_on(self, day: dt.date) -> tuple[str, str, str]:
        """(county, township, address text) registered on `day`."""
        if self.moved_on is not None and day < self.moved_on:
            return self.previous_county, self.previous_township, self.previous_address
        return self.county, self.township, self.address

    def tax_status_on(self, day: dt.date) -> str:
        if self.deregistered is not None and self.deregistered <= day:
            return "注销" if self.closed_as == "注销" else "非正常"  # a revoked licence: tax marks it abnormal
        if self.tax_abnormal_from is not None and self.tax_abnormal_from <= day:
            return "非正常"
        return "正常"

    def last_filing_on(self, day: dt.date) -> str:
        """Latest filing period (yyyyMM): the month before filing stopped, never before registration."""
        stop = day
        for end in (self.deregistered, self.tax_abnormal_from):
            if end is not None and end <= stop:
                stop = end
        return _period_before(stop, self.tax_registered)


def _period_before(day: dt.date, floor: dt.date) -> str:
    """The month before `day` as yyyyMM, or the month of `floor` if that is later."""
    y, m = max((day.year, day.month - 1) if day.month > 1 else (day.year - 1, 12), (floor.year, floor.month))
    return f"{y:04d}{m:02d}"


def _years_later(day: dt.date, years: int) -> dt.date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February: the birthday falls on 1 March in common years
        return dt.date(day.year + years, 3, 1)


def _size(employees: int, revenue: int | None) -> str:
    """大中小微 by headcount and revenue (千元), simplified from 统计上大中小微型企业划分办法 (industry rows)."""
    if revenue is None:
        return ""
    if employees >= 1000 and revenue >= 400_000:
        return "大型"
    if employees >= 300 and revenue >= 20_000:
        return "中型"
    if employees >= 20 and revenue >= 3_000:
        return "小型"
    return "微型"


_SUFFIX = re.compile(r"(土家族苗族自治州|土家族自治县|自治县|林区|县|市|区)$")


def _iso(day: dt.date | None) -> str:
    return "" if day is None else day.isoformat()


def county_label(places: Places, code: str) -> str:
    """A county as names of organisations and offices lead with it: a district with its city."""
    d = places.by_code[code]
    parent = places.by_code.get(d.parent)
    city = parent.name if parent is not None and parent.level == 2 else ""
    return (city + d.name) if d.name.endswith("区") else d.name


class LegalGenerator:
    """Makes legal entities partition by partition and writes every legal extract and its truth."""

    def __init__(self, landing: Landing, cal: Calendar, places: Places, rates: dict[str, float], seed: int):
        self.landing, self.cal, self.places, self.rates, self.seed = landing, cal, places, rates, seed
        self.inj = Injector(rates, rng_for(seed, "legal", "defects"))
        self.next_index = 0
        self.counters: Counter = Counter()  # (county, form) -> public bodies named so far
        self.horizon = cal.horizon
        # Lookup tables built once: per county its full name, the label used in names, the city short name.
        counties = places.counties
        self.codes = [c.code for c in counties]
        weights = np.array([3.0 if c.startswith("4201") else 1.0 for c in self.codes])
        self.county_cum = list(np.cumsum(weights / weights.sum()))
        self.full = {c: places.full_name(c) for c in self.codes}
        self.towns = {c: places.townships.get(c) or [places.by_code[c]] for c in self.codes}
        self.roads = places.roads
        self.label, self.city, self.stem = {}, {}, {}
        for d in counties:
            parent = places.by_code.get(d.parent)
            city = parent.name if parent is not None and parent.level == 2 else ""
            self.label[d.code] = county_label(places, d.code)
            own = _SUFFIX.sub("", d.name)
            self.city[d.code] = (city.removesuffix("土家族苗族自治州").removesuffix("市") if city else own) or own
            self.stem[d.code] = self.city[d.code] if d.name.endswith("区") else own
        from faker.providers.company.zh_CN import Provider

        self.zihao_words = sorted({p for p in Provider.company_prefixes if len(p) <= 3 and "公司" not in p})
        self.form_cum = list(np.cumsum([f.share for f in FORMS]))
        self.company_cum = list(np.cumsum([p for _, p in COMPANY_TYPES]))
        truth = landing.out / "truth" / "legal"
        truth.mkdir(parents=True, exist_ok=True)
        self._fh = (truth / "entities.csv").open("w", encoding="utf-8", newline="")
        self._truth = csv.writer(self._fh, lineterminator="\n")
        self._truth.writerow(ENTITY_COLUMNS)

    # --- entities --------------------------------------------------------------------------------------

    def partition(self, part: int, persons: list[Person]) -> list[Entity]:
        """Create the entities of one partition (about 0.12 per person, legal representatives drawn from the
        adult persons of this partition), write their rows to every legal extract for every batch in which
        that extract delivers, write their truth rows, and return them (the population generator uses
        them as employers of insured persons)."""
        entities = self._make(part, persons)
        self._write(part, entities)
        self._write_truth(entities)
        return entities

    def _make(self, part: int, persons: list[Person]) -> list[Entity]:
        rng = rng_for(self.seed, "legal", part)
        n = int(round(ENTITIES_PER_PERSON * len(persons)))
        if n == 0 or not persons:
            return []
        # All draws of the partition at once, one column per purpose: fast, and the same stream every run.
        u = rng.random((n, 34)).tolist()
        z = rng.standard_normal((n, 2)).tolist()
        cand = rng.integers(0, len(persons), (n, 12)).tolist()
        windows: dict[int, tuple[int, int] | None] = {}
        lo_floor, horizon = FIRST_ESTABLISHED.toordinal(), self.horizon.toordinal()
        out: list[Entity] = []
        for i in range(n):
            r = u[i]
            rep = None
            for c in cand[i]:
                if c not in windows:
                    p = persons[c]
                    lo = max(lo_floor, _years_later(p.birth_date, 18).toordinal())
                    hi = min(horizon, _years_later(p.birth_date, REP_MAX_AGE).toordinal(),
                             p.death_date.toordinal() if p.death_date else horizon)
                    windows[c] = (lo, hi) if lo <= hi else None
                if windows[c] is not None:
                    rep = c
                    break
            if rep is None:
                continue  # no adult among the candidates: a partition of children makes fewer entities
            lo, hi = windows[rep]
            # Skewed towards recent years: registrations have grown, and older entities have closed.
            established = dt.date.fromordinal(min(hi, lo + int((hi - lo + 1) * r[0] ** 0.7)))
            form = FORMS[bisect.bisect_right(self.form_cum, r[1] * self.form_cum[-1])]
            out.append(self._entity(form, persons[rep], established, r, z[i]))
        return out

    def _pick_county(self, v: float) -> str:
        return self.codes[min(bisect.bisect_right(self.county_cum, v), len(self.codes) - 1)]

    def _address(self, county: str, ua: float, ub: float, uc: float, style: str) -> tuple[str, str]:
        towns = self.towns[county]
        town = towns[int(ua * len(towns))]
        roads = self.roads[county]
        road = roads[int(ub * len(roads))]
        number = 1 + int(uc * 398)
        k = int(uc * 1e6) % 1000  # further digits of the same draw
        if style == "enterprise" and k < 450:
            suffix = f"{1 + k % 12}栋{1 + k % 23}层{(1 + k % 23) * 100 + 1 + k % 17}室"
        elif style == "individual" and k < 600:
            suffix = ("门面", "1楼", f"{1 + k % 9}号门面")[k % 3]
        else:
            suffix = ""
        place = town.name if town.code != county else ""
        return town.code, f"{self.full[county]}{place}{road}{number}号{suffix}"

    def _zihao(self, ua: float, ub: float) -> str:
        if ua < 0.08:
            return self.zihao_words[int(ua / 0.08 * len(self.zihao_words))]
        a = ZIHAO_CHARS[int(ua * len(ZIHAO_CHARS))]
        b = ZIHAO_CHARS[int(ub * len(ZIHAO_CHARS))]
        return a + (b if b != a else ZIHAO_CHARS[(ZIHAO_CHARS.index(b) + 1) % len(ZIHAO_CHARS)])

    def _entity(self, form: Form, rep: Person, established: dt.date, r: list[float], z: list[float]) -> Entity:
        index = self.next_index
        self.next_index += 1
        home = rep.residence_on(established).county
        if home not in self.label:  # a residence outside the current county list: register somewhere real
            home = self._pick_county(r[3])
        county = self._pick_county(r[3]) if form.code == "91" and r[2] < 0.2 else home
        label, subtype, sponsor, capital = self.label[county], form.text, "", 0
        zihao = self._zihao(r[9], r[10])
        if form.code == "91":
            section, industry, word = ENTERPRISE_TRADES[int(r[11] * len(ENTERPRISE_TRADES))]
            subtype = COMPANY_TYPES[bisect.bisect_right(self.company_cum, r[13] * self.company_cum[-1])][0]
            tail = "股份有限公司" if subtype.startswith("股份") else ("有限责任公司" if r[12] > 0.92 else "有限公司")
            if r[12] < 0.12:
                name = f"{zihao}（{self.city[county]}）{word}{tail}"
            else:
                prefix = "湖北" if r[8] < 0.2 else self.stem[county] if r[8] < 0.45 else self.city[county]
                name = f"{prefix}{zihao}{word}{tail}"
        elif form.code == "92":
            section, industry, word = INDIVIDUAL_TRADES[int(r[11] * len(INDIVIDUAL_TRADES))]
            name = f"{label}{rep.name if r[30] < 0.7 else zihao}{word}"
            if established.year >= 2023 and r[31] < 0.5:
                name += "（个体工商户）"
        elif form.code == "93":
            section, industry, word = COOPERATIVE_TRADES[int(r[11] * len(COOPERATIVE_TRADES))]
            name = f"{label}{zihao}{word}{'农民' if r[12] < 0.4 else ''}专业合作社"
        else:
            section, industry, name, sponsor, capital = self._public(form, county, zihao, r)
        town, address = self._address(county, r[4], r[5], r[6], {"91": "enterprise", "92": "individual"}.get(
            form.code, "public"))
        e = Entity(index=index, uscc="", name=name, kind=form.kind, form=form.code, subtype=subtype,
                   agency=form.agency, office=county, county=county, township=town, address=address,
                   established=established, industry=industry, section=section, legal_rep=rep.index,
                   legal_rep_id_number=rep.id_number, legal_rep_name=rep.name, sponsor=sponsor, capital=capital)
        # Life: deregistration by a constant yearly hazard, then at most one move within the life.
        end = self.horizon
        if form.closure_rate > 0:
            life = -math.log(max(r[14], 1e-12)) / -math.log(1 - form.closure_rate) * 365.25
            if established.toordinal() + life < self.horizon.toordinal():
                e.deregistered = established + dt.timedelta(days=max(1, int(life)))
                e.closed_as = "吊销" if form.agency == "shichang" and r[15] < 0.2 else "注销"
                end = e.deregistered
        if r[16] < MOVED_SHARE:
            start = max(established + dt.timedelta(days=365), MOVES_FROM)
            if start < end:
                moved = start + dt.timedelta(days=int(r[17] * (end - start).days))
                to = county if r[18] < 0.65 else self._pick_county(r[19])
                e.previous_county, e.previous_township, e.previous_address = county, town, address
                e.moved_on, e.county = moved, to
                e.township, e.address = self._address(to, r[20], r[21], r[22], "enterprise" if form.code == "91"
                                                       else "individual" if form.code == "92" else "public")
                if e.address == address:  # the same spot drawn twice: the move is to the next number
                    e.address = address.replace("号", "号附1号", 1)
        # The credit code: issued by the office of the county registered when codes were (re)issued.
        office = e.address_on(max(established, USCC_FROM))[0]
        e.office = office
        e.uscc = make_uscc(form.code, office, org_code(index, modern=not e.legacy))
        if e.legacy and form.agency == "shichang":
            e.regno15 = make_regno15(e.origin, index, form.code)
        self._economics(e, form, r, z)
        return e

    def _public(self, form: Form, county: str, zihao: str, r: list[float]):
        """Name, class, sponsor and capital of a government body, public institution or social organisation.
        Public bodies are named from per-county sequences, so names repeat only when a county runs out."""
        label = self.label[county]
        c = self.counters[(county, form.code)]
        self.counters[(county, form.code)] += 1
        turn = int(county) % 97  # each county starts its fixed sequences at another body
        towns = [t for t in self.towns[county] if t.code != county]
        if form.code == "11":
            if c < len(DEPARTMENTS):
                what, code = DEPARTMENTS[(c + turn) % len(DEPARTMENTS)]
                return "S", code, f"{label}{what}", "", 0
            town = towns[(c - len(DEPARTMENTS)) % len(towns)].name if towns else ""
            name = (f"{label}人民政府{town}办事处" if town.endswith("街道") else f"{label}{town}人民政府")
            return "S", "9221", name, "", 0
        if form.code == "12":
            capital = 10 + int(r[29] * 2000)
            if c < len(INSTITUTIONS):
                what, code, dept = INSTITUTIONS[(c + turn) % len(INSTITUTIONS)]
                return "Q" if code.startswith("84") else "R" if code.startswith("88") else "P", code, \
                    f"{label}{what}", f"{label}{dept}", capital
            c -= len(INSTITUTIONS)
            if c < 2 * len(towns):
                town = towns[c // 2].name
                if c % 2 == 0:
                    clinic = ("社区卫生服务中心", "8421") if town.endswith("街道") else ("卫生院", "8423")
                    return "Q", clinic[1], f"{label}{town}{clinic[0]}", f"{label}卫生健康局", capital
                return "P", "8321", f"{label}{town}中心小学", f"{label}教育局", capital
            c -= 2 * len(towns)
            what, code = SCHOOLS[c % len(SCHOOLS)]
            return "P", code, f"{label}第{_cn_number(c // len(SCHOOLS) + 1)}{what}", f"{label}教育局", capital
        if form.code == "51":
            topic, code, dept = SOCIETIES[(c + turn) % len(SOCIETIES)]
            rounds = c // len(SOCIETIES)
            where = label if rounds == 0 or not towns else label + towns[(rounds - 1) % len(towns)].name
            return "S", code, f"{where}{topic}", f"{label}{dept}" if dept else "", 3 + int(r[29] * 50)
        what, code, dept = (NONPROFITS if form.code == "52" else FOUNDATIONS)[int(r[12] * (
            len(NONPROFITS) if form.code == "52" else len(FOUNDATIONS)))]
        section = "S" if code == "9530" else "Q" if code.startswith("85") else "P"
        capital = 200 + int(r[29] * 800) if form.code == "53" else 3 + int(r[29] * 100)
        return section, code, f"{label}{zihao}{what}", f"{label}{dept}", capital

    def _economics(self, e: Entity, form: Form, r: list[float], z: list[float]) -> None:
        code = form.code
        if code == "91":
            e.employees = max(1, min(5000, int(math.exp(1.8 + 1.2 * z[0]))))
        elif code == "92":
            e.employees = 1 + int(r[24] * 4)
        elif code == "93":
            e.employees = 5 + int(math.exp(1.5 + 0.6 * z[0]))
        elif code == "11":
            e.employees = 15 + int(math.exp(3.3 + 0.6 * z[0]))
        elif code == "12":
            e.employees = 10 + int(math.exp(3.5 + 1.0 * z[0]))
        else:
            e.employees = 1 + int(math.exp(1.2 + 0.8 * z[0]))
        if code in ("91", "93"):
            e.revenue = max(1, int(e.employees * math.exp(math.log(220) + 0.7 * z[1])))
        e.insured = r[25] < form.insured
        if code in ("91", "92"):
            e.tax_registered = e.established + dt.timedelta(days=int(r[26] * 30))
            if r[27] < (0.04 if code == "92" else 0.02):
                start = e.tax_registered + dt.timedelta(days=180)
                end = e.deregistered or self.horizon
                if start < end:
                    e.tax_abnormal_from = start + dt.timedelta(days=int(r[28] * (end - start).days))

    # --- extracts --------------------------------------------------------------------------------------

    def _write(self, part: int, entities: list[Entity]) -> None:
        n = len(entities)
        rng = rng_for(self.seed, "legal-defects", part)
        # One uniform per (extract, kind, entity): a snapshot record keeps its defect from batch to batch.
        # `aux` picks how a defect looks (which wrong character, which variant), also stable.
        keep = {(key, kind): rng.random(n).tolist() for key in KINDS for kind in KINDS[key]}
        aux = {key: rng.random(n).tolist() for key in KINDS}
        batches = {spec.key: [(self.cal.dates[b], self.landing.writer(spec, self.cal.names[b]))
                              for b in self.cal.deliveries(spec.cadence)] for spec in EXTRACTS}
        for i, e in enumerate(entities):
            if e.agency == "shichang":
                self._market_rows(e, batches[MARKET.key])
            elif e.agency == "bianban":
                self._register_rows(e, batches[INSTITUTION.key], INSTITUTION)
            else:
                self._register_rows(e, batches[SOCIAL_ORG.key], SOCIAL_ORG)
            if e.form in ("91", "92"):
                self._tax_rows(e, i, batches[TAXPAYER.key], keep, aux[TAXPAYER.key][i])
            if e.form != "92":
                self._directory_rows(e, i, batches[DIRECTORY.key], keep, aux[DIRECTORY.key][i])
            if e.insured:
                self._employer_rows(e, i, batches[EMPLOYER.key], keep, aux[EMPLOYER.key][i])

    def _register_truth(self, e: Entity, day: dt.date) -> dict:
        county, _, address = e.address_on(day)
        return {"uscc": e.uscc, "name": e.name, "kind": e.kind, "legal_rep_name": e.legal_rep_name,
                "legal_rep_id_number": e.legal_rep_id_number, "address": address, "county": county,
                "established": e.established.isoformat(), "status": e.status_on(day),
                "deregistered": _iso(e.deregistered) if e.deregistered and e.deregistered <= day else None}

    def _market_rows(self, e: Entity, batches) -> None:
        established = f"{e.established:%Y-%m-%d}"
        industry = e.section + e.industry  # 市场监管 writes the section letter before the class
        ref, cache = e.ref, {}
        for day, w in batches:
            if e.established > day:
                continue
            moved = e.moved_on is not None and e.moved_on <= day
            status = e.status_on(day)
            # Most entities look the same in every batch: build their row once per state.
            row = cache.get((moved, status))
            if row is None:
                county, _, address = e.address_on(day)
                approved = e.moved_on if moved else e.established
                closed = f"{e.deregistered:%Y-%m-%d}" if status != "存续" else ""
                truth = self._register_truth(e, day)
                truth["regno15"], truth["industry"] = e.regno15, e.industry
                row = cache[(moved, status)] = (
                    [e.uscc, e.regno15 or "", e.name, e.subtype, e.legal_rep_name, e.legal_rep_id_number, address,
                     county, established, f"{approved:%Y-%m-%d}", status, closed if status == "注销" else "",
                     closed if status == "吊销" else "", industry, f"{self.label[county]}市场监督管理局"], truth)
            w.write(row[0], ref, [], row[1])

    def _register_rows(self, e: Entity, batches, spec: ExtractSpec) -> None:
        words = STATUS_TEXT[spec.agency]
        ref, cache = e.ref, {}
        for day, w in batches:
            if e.established > day:
                continue
            moved = e.moved_on is not None and e.moved_on <= day
            status = e.status_on(day)
            row = cache.get((moved, status))
            if row is None:
                county, _, address = e.address_on(day)
                closed = e.deregistered if status != "存续" else None
                truth = self._register_truth(e, day)
                if spec is INSTITUTION:
                    # 编办 exports dates as Excel shows them (yyyy/m/d); 机关 have neither sponsor nor capital.
                    fmt = "{d.year}/{d.month}/{d.day}"
                    values = [e.uscc, e.name, e.subtype, e.legal_rep_name, e.legal_rep_id_number, address, county,
                              e.sponsor, e.capital or "", fmt.format(d=e.established), words[status],
                              fmt.format(d=closed) if closed else ""]
                else:
                    truth["form"] = e.form
                    fmt = "{d.year}年{d.month}月{d.day}日"
                    values = [e.uscc, e.name, e.subtype, e.legal_rep_name, e.legal_rep_id_number, address, county,
                              e.sponsor, f"{self.label[county]}民政局", fmt.format(d=e.established), e.capital,
                              words[status], fmt.format(d=closed) if closed else ""]
                row = cache[(moved, status)] = (values, truth)
            w.write(row[0], ref, [], row[1])

    def _codes(self, key: str, e: Entity, i: int, day: dt.date, keep: dict, a: float, labels: list[str]) -> str:
        """The credit code as extract `key` holds it: empty, a legacy code, a wrong check character, or right."""
        kinds = KINDS[key]
        if "uscc_missing" in kinds and self._hit(key, "uscc_missing", i, True, keep, labels):
            return ""
        if self._hit(key, "uscc_legacy", i, e.legacy, keep, labels):
            if key == TAXPAYER.key:
                # 税务登记号: division of the first registration + organisation code (个体: the 注册号).
                return e.regno15 if e.form == "92" else e.origin + e.orgcode
            if key == EMPLOYER.key and e.regno15 and a < 0.5:
                return e.regno15
            return f"{e.orgcode[:8]}-{e.orgcode[8]}" if a < 0.25 or a >= 0.75 else e.orgcode
        if self._hit(key, "uscc_checksum", i, True, keep, labels):
            return spoil_uscc_checksum(e.uscc, a)
        return e.uscc

    def _hit(self, key: str, kind: str, i: int, eligible: bool, keep: dict, labels: list[str]) -> bool:
        if self.inj.hit(kind, eligible, keep[(key, kind)][i]):
            labels.append(kind)
            return True
        return False

    def _tax_rows(self, e: Entity, i: int, batches, keep: dict, a: float) -> None:
        key = TAXPAYER.key
        registered = f"{e.tax_registered:%Y-%m-%d}"
        for day, w in batches:
            if e.tax_registered > day:
                continue
            labels: list[str] = []
            code = self._codes(key, e, i, day, keep, a, labels)
            name = spoil_name_variant(e.name, a) if self._hit(key, "entity_name_variant", i, True, keep, labels) \
                else e.name
            county, _, address = e.address_on(day)
            truth = {"uscc": e.uscc, "name": e.name, "legal_rep_name": e.legal_rep_name,
                     "legal_rep_id_number": e.legal_rep_id_number, "address": address, "county": county,
                     "industry": e.industry, "tax_registered": registered, "tax_status": e.tax_status_on(day),
                     "last_filing": e.last_filing_on(day)}
            if self._hit(key, "entity_address_stale", i, e.moved_on is not None and e.moved_on <= day, keep, labels):
                county, address = e.previous_county, e.previous_address
            status, period = truth["tax_status"], truth["last_filing"]
            dead = e.closed_as == "注销" and e.deregistered <= day
            if self._hit(key, "deregistered_filing", i, dead, keep, labels):
                status, period = "正常", _period_before(day, e.tax_registered)
            values = [code, name, e.legal_rep_name, e.legal_rep_id_number, address, county, e.industry, registered,
                      f"国家税务总局{self.label[county]}税务局", status, period]
            w.write(values, e.ref, labels, truth)
            if self.inj.hit("entity_duplicate", True, keep[(key, "entity_duplicate")][i]):
                w.write(values, e.ref, labels + ["entity_duplicate"], truth)

    def _directory_rows(self, e: Entity, i: int, batches, keep: dict, a: float) -> None:
        key = DIRECTORY.key
        opened = f"{e.established.year}年{e.established.month:02d}月"
        orgcode = f"{e.orgcode[:8]}-{e.orgcode[8]}" if e.legacy else ""
        revenue = "" if e.revenue is None else e.revenue
        size = _size(e.employees, e.revenue)
        for day, w in batches:
            if not e.active_on(day):
                continue
            labels: list[str] = []
            code = self._codes(key, e, i, day, keep, a, labels)
            name = spoil_name_variant(e.name, a) if self._hit(key, "entity_name_variant", i, True, keep, labels) \
                else e.name
            county, town, address = e.address_on(day)
            truth = {"uscc": e.uscc, "orgcode": e.orgcode if e.legacy else None, "name": e.name,
                     "legal_rep_name": e.legal_rep_name, "industry": e.industry, "county": county, "township": town,
                     "address": address, "established": e.established.isoformat(), "employees": e.employees,
                     "revenue": e.revenue, "size": size}
            if self._hit(key, "entity_address_stale", i, e.moved_on is not None and e.moved_on <= day, keep, labels):
                town, address = e.previous_township, e.previous_address
            # 统计用区划代码: 12 digits, township + village (000: the township itself).
            values = [code, orgcode, name, e.legal_rep_name, e.industry, town + "000", address, opened, e.employees,
                      revenue, size]
            w.write(values, e.ref, labels, truth)
            if self.inj.hit("entity_duplicate", True, keep[(key, "entity_duplicate")][i]):
                w.write(values, e.ref, labels + ["entity_duplicate"], truth)

    def _employer_rows(self, e: Entity, i: int, batches, keep: dict, a: float) -> None:
        key = EMPLOYER.key
        for day, w in batches:
            if not e.active_on(day):
                continue
            labels: list[str] = []
            code = self._codes(key, e, i, day, keep, a, labels)
            name = spoil_name_variant(e.name, a) if self._hit(key, "entity_name_variant", i, True, keep, labels) \
                else e.name
            county = e.address_on(day)[0]
            w.write([code, name, RENSHE_UNIT_TYPE[e.form], county, e.employees], e.ref, labels,
                    {"uscc": e.uscc, "name": e.name, "kind": e.kind, "county": county, "employees": e.employees})

    # --- truth -----------------------------------------------------------------------------------------

    def _write_truth(self, entities: list[Entity]) -> None:
        for e in entities:
            self._truth.writerow([
                e.ref, e.uscc, e.regno15 or "", e.orgcode, e.name, e.kind, e.form, e.agency, e.office, e.county,
                e.township, e.address, e.previous_county or "", e.previous_township or "", e.previous_address or "",
                _iso(e.moved_on), e.established.isoformat(), _iso(e.deregistered), e.closed_as or "", e.industry,
                person_ref(e.legal_rep), e.legal_rep_id_number, e.employees,
                "" if e.revenue is None else e.revenue, int(e.insured)])

    def close(self) -> Injector:
        self._fh.close()
        return self.inj


def _cn_number(k: int) -> str:
    """1 -> 一, 12 -> 十二, 23 -> 二十三 (school numbers)."""
    digits = "零一二三四五六七八九"
    if k < 10:
        return digits[k]
    tens, ones = divmod(k, 10)
    if k >= 100:
        return str(k)
    return ("" if tens == 1 else digits[tens]) + "十" + (digits[ones] if ones else "")
