"""Persons of the demo province and the five population agencies' extracts of them.

Persons are made household by household, one partition at a time, so memory stays bounded for any
scale: only the ID-number sequence counters (one small integer per county, birth day and sex) and the
address serials live across partitions. Each extract is a view of the true persons on a batch date, with
defects injected as conf/demo/defects.yaml says; every delivered row's truth is written beside it.

| agency | extract | kind, cadence | format |
|---|---|---|---|
| gongan 公安 | household 常住人口 | snapshot, monthly | CSV, GB18030 |
| weijian 卫健 | birth 出生医学证明 | events since 2010, monthly | CSV, UTF-8 with BOM |
| weijian 卫健 | death 死亡医学证明 | events since 2015, monthly | JSON lines |
| minzheng 民政 | marriage 婚姻登记 | events since 2016, quarterly | XLSX |
| minzheng 民政 | funeral 殡葬/死亡登记 | events since 2016, quarterly | CSV, GB18030 |
| renshe 人社 | insured 参保人员 | snapshot, monthly | JSON lines |
| jiaoyu 教育 | student 学籍 | snapshot, each term (Mar, Sep) | CSV, UTF-8 |
| ziran 自然资源 | address 标准地址 | snapshot, quarterly | CSV, UTF-8 |
"""

from __future__ import annotations

import csv
import datetime as dt
from collections import Counter
from dataclasses import dataclass

import numpy as np

from jichu.demo import faults
from jichu.demo.defects import Injector
from jichu.demo.people import Person, Residence, person_ref
from jichu.demo.places import Places
from jichu.demo.timeline import Calendar
from jichu.demo.writers import ExtractSpec, Landing, rng_for

EPOCH = dt.date(1920, 1, 1)
MOVES_FROM = dt.date(2012, 1, 1)

SEX_TEXT = {"1": "男", "2": "女"}
ETHNICITY = {"01": "汉族", "02": "蒙古族", "03": "回族", "05": "维吾尔族", "06": "苗族", "11": "满族", "12": "侗族",
             "15": "土家族"}
# GB/T 3304 mix: Hubei's Tujia and Miao live mostly in Enshi, Changyang and Wufeng.
_ETH_GENERAL = (("01", 0.985), ("15", 0.007), ("03", 0.003), ("06", 0.002), ("02", 0.001), ("11", 0.001),
                ("12", 0.0005), ("05", 0.0005))
_ETH_TUJIA = (("15", 0.5), ("01", 0.44), ("06", 0.05), ("12", 0.01))
_TUJIA_AREAS = ("4228", "420528", "420529")
EDUCATION = (("10", 0.02), ("20", 0.12), ("30", 0.12), ("60", 0.2), ("70", 0.35), ("80", 0.15), ("90", 0.04))
MARITAL = {"unmarried": "10", "married": "20", "widowed": "30", "divorced": "40"}  # GB/T 2261.2


def _choice(rng: np.random.Generator, table) -> str:
    codes, p = zip(*table)
    p = np.array(p) / sum(p)
    return codes[int(rng.choice(len(codes), p=p))]


@dataclass
class Address:
    address_id: str
    county: str
    township: str
    road: str
    number: int
    building: int
    text: str
    since: dt.date
    lon: float = 0.0
    lat: float = 0.0


def marital_status(p: Person, day: dt.date, spouse_death: dt.date | None) -> str:
    if p.married_on is None or p.married_on > day:
        return MARITAL["unmarried"]
    if p.divorced_on is not None and p.divorced_on <= day:
        return MARITAL["divorced"]
    if spouse_death is not None and spouse_death <= day:
        return MARITAL["widowed"]
    return MARITAL["married"]


def _spec(agency, extract, filename, fmt, encoding, columns, truth, cadence, kind) -> ExtractSpec:
    return ExtractSpec(agency, extract, "population", filename, fmt, encoding, columns, truth, cadence, kind)


PERSON_TRUTH = ["id_number", "name", "sex", "birth_date"]
GONGAN = _spec("gongan", "household", "household.csv", "csv", "gb18030",
               ["公民身份号码", "姓名", "性别", "民族", "出生日期", "户籍地行政区划代码", "住址", "户号", "与户主关系", "登记日期"],
               PERSON_TRUTH + ["ethnicity", "address_code", "address_id", "household"], "monthly", "snapshot")
BIRTH = _spec("weijian", "birth", "birth.csv", "csv", "utf-8-sig",
              ["出生医学证明编号", "新生儿姓名", "新生儿性别", "出生日期", "新生儿身份证号", "出生地行政区划代码", "母亲姓名",
               "母亲身份证号", "签发日期"],
              PERSON_TRUTH + ["address_code", "mother"], "monthly", "events")
DEATH = _spec("weijian", "death", "death.jsonl", "jsonl", "utf-8",
              ["zjhm", "xm", "xb", "csrq", "swrq", "swdd", "zmbh"],
              PERSON_TRUTH + ["death_date"], "monthly", "events")
MARRIAGE = _spec("minzheng", "marriage", "marriage.xlsx", "xlsx", "utf-8",
                 ["登记日期", "业务类型", "男方姓名", "男方身份证件号", "男方出生日期", "女方姓名", "女方身份证件号",
                  "女方出生日期", "登记机关代码", "登记机关名称"],
                 ["husband_id_number", "husband_name", "wife_id_number", "wife_name", "date", "type", "office_code"],
                 "quarterly", "events")
FUNERAL = _spec("minzheng", "funeral", "funeral.csv", "csv", "gb18030",
                ["逝者姓名", "证件号码", "性别", "死亡日期", "火化日期", "殡仪馆"],
                PERSON_TRUTH + ["death_date"], "quarterly", "events")
INSURED = _spec("renshe", "insured", "insured.jsonl", "jsonl", "utf-8",
                ["aac002", "aac003", "aac004", "aac006", "aac008", "aab001", "aab301", "aac007"],
                PERSON_TRUTH + ["status", "employer", "address_code"], "monthly", "snapshot")
STUDENT = _spec("jiaoyu", "student", "student.csv", "csv", "utf-8",
                ["学籍号", "姓名", "性别", "出生日期", "身份证件号", "民族", "学校标识码", "学校名称", "年级", "家庭住址区划",
                 "家庭住址"],
                PERSON_TRUTH + ["ethnicity", "school", "grade", "address_code"], "semester", "snapshot")
ADDRESS = ExtractSpec("ziran", "address", "geo", "address.csv", "csv", "utf-8",
                      ["地址编码", "县级区划代码", "乡镇街道代码", "道路名称", "门牌号", "楼栋号", "标准地址", "经度", "纬度"],
                      ["county", "township", "text", "lon", "lat"], "quarterly", "snapshot")
EXTRACTS = (GONGAN, BIRTH, DEATH, MARRIAGE, FUNERAL, INSURED, STUDENT)

# The defect kinds each extract suffers, in the order they are applied (see conf/demo/defects.yaml).
KINDS = {
    "weijian__birth": ["id_missing", "id_checksum", "id_transposed", "name_typo", "name_homophone", "date_format",
                       "value_conflict", "sex_code_unknown", "duplicate"],
    "weijian__death": ["id_checksum", "id_transposed", "name_typo", "name_homophone", "date_format"],
    "minzheng__marriage": ["id_legacy15", "id_checksum", "id_transposed", "name_typo", "name_homophone",
                           "name_traditional", "date_format"],
    "minzheng__funeral": ["id_checksum", "id_transposed", "name_typo", "name_homophone", "name_traditional",
                          "date_format"],
    "renshe__insured": ["id_legacy15", "id_checksum", "id_transposed", "id_fullwidth", "name_typo", "name_homophone",
                        "name_traditional", "name_width", "date_format", "value_conflict", "address_stale",
                        "duplicate"],
    "jiaoyu__student": ["id_missing", "id_checksum", "id_transposed", "id_fullwidth", "name_typo", "name_homophone",
                        "name_width", "date_format", "value_conflict", "address_stale", "duplicate"],
}
USUAL_DATE = {"weijian__birth": "{d.year}/{d.month}/{d.day}", "weijian__death": "{d:%Y-%m-%d}",
              "minzheng__marriage": "{d.year}年{d.month}月{d.day}日", "minzheng__funeral": "{d:%Y-%m-%d}",
              "renshe__insured": "{d:%Y%m%d}", "jiaoyu__student": "{d:%Y-%m-%d}"}


class PopulationGenerator:
    """Makes persons partition by partition and writes every population extract and its truth."""

    def __init__(self, landing: Landing, cal: Calendar, places: Places, rates: dict[str, float], seed: int):
        self.landing, self.cal, self.places, self.rates, self.seed = landing, cal, places, rates, seed
        self.inj = Injector(rates, rng_for(seed, "population", "defects"))
        codes = [d.code for d in places.id_counties]
        self.id_index = {c: i for i, c in enumerate(codes)}
        days = (cal.horizon - EPOCH).days + 1
        # Sequence numbers already used per (county of issue, birth day, sex): GB 11643 numbers are unique by
        # construction, with no set of issued numbers kept in memory.
        self.used = np.zeros((len(codes), days, 2), dtype=np.int16)
        self.addr_serial: Counter = Counter()
        self.next_index = 0
        self._birth_county: dict[tuple[str, int], str] = {}
        weights = np.array([3.0 if c.code.startswith("4201") else 1.0 for c in places.counties])
        self.county_p = weights / weights.sum()
        self.roads = places.roads
        truth = landing.out / "truth" / "population"
        truth.mkdir(parents=True, exist_ok=True)
        self._persons_fh = (truth / "persons.csv").open("w", encoding="utf-8", newline="")
        self._persons = csv.writer(self._persons_fh, lineterminator="\n")
        self._persons.writerow(["person", "id_number", "name", "sex", "ethnicity", "birth_date", "death_date",
                                "household", "relation", "education", "marital_status", "spouse", "married_on",
                                "divorced_on", "employer", "county", "address_id"])
        self._res_fh = (truth / "residences.csv").open("w", encoding="utf-8", newline="")
        self._res = csv.writer(self._res_fh, lineterminator="\n")
        self._res.writerow(["person", "county", "township", "address_id", "valid_from", "valid_to"])

    # --- persons ---------------------------------------------------------------------------------

    def persons(self, part: int, n: int) -> tuple[list[Person], list[Address]]:
        """n persons in households, with residence histories, deaths and marriages, and their addresses."""
        rng = rng_for(self.seed, "persons", part)
        horizon = self.cal.horizon
        persons: list[Person] = []
        addresses: list[Address] = []
        household_no = 0
        while len(persons) < n:
            household_no += 1
            hh = f"H{part:05d}{household_no:06d}"
            size = int(rng.choice([1, 2, 3, 4, 5], p=[0.2, 0.3, 0.27, 0.15, 0.08]))
            size = min(size, n - len(persons))
            county = self.places.counties[int(rng.choice(len(self.county_p), p=self.county_p))].code
            # Younger households (with children at home) outnumber the elderly ones.
            head_age = int(rng.integers(25, 56)) if rng.random() < 0.65 else int(rng.integers(56, 90))
            head_birth = horizon - dt.timedelta(days=head_age * 365 + int(rng.integers(0, 365)))
            head_sex = "1" if rng.random() < 0.6 else "2"
            eth_table = _ETH_TUJIA if county.startswith(_TUJIA_AREAS) else _ETH_GENERAL
            ethnicity = _choice(rng, eth_table)
            # Household residences: where it lived when, since well before the batches.
            moves = [(dt.date(1950, 1, 1), county)]
            for _ in range(int(rng.choice([0, 1, 2], p=[0.85, 0.12, 0.03]))):
                when = MOVES_FROM + dt.timedelta(days=int(rng.integers(0, (horizon - MOVES_FROM).days)))
                to = self.places.counties[int(rng.choice(len(self.county_p), p=self.county_p))].code
                if to != moves[-1][1] and when > moves[-1][0]:
                    moves.append((when, to))
            residences = [self._residence(c, since, addresses, rng) for since, c in moves]

            members: list[tuple[str, dt.date, str, str | None]] = [("户主", head_birth, head_sex, None)]
            spouse_sex = "2" if head_sex == "1" else "1"
            if size >= 2 and rng.random() < 0.85:
                members.append(("配偶", head_birth + dt.timedelta(days=int(rng.integers(-6 * 365, 6 * 365))),
                                spouse_sex, None))
            father = head_birth if head_sex == "1" else (members[1][1] if len(members) > 1 else head_birth)
            while len(members) < size:
                if len(members) == size - 1 and head_age < 55 and rng.random() < 0.3:
                    members.append(("父亲" if rng.random() < 0.5 else "母亲",
                                    head_birth - dt.timedelta(days=int(rng.integers(24 * 365, 34 * 365))),
                                    "1" if rng.random() < 0.5 else "2", None))
                    continue
                born = father + dt.timedelta(days=int(rng.integers(23 * 365, 38 * 365)))
                if born > horizon - dt.timedelta(days=1):
                    break
                sex = "1" if rng.random() < 0.51 else "2"
                members.append(("子" if sex == "1" else "女", born, sex, None))
            surname = None
            head_index = self.next_index
            for relation, born, sex, _ in members:
                if born < EPOCH:
                    born = EPOCH + dt.timedelta(days=int(rng.integers(0, 3650)))
                if ethnicity == "05":
                    name = faults.UYGHUR_NAMES[int(rng.integers(len(faults.UYGHUR_NAMES)))]
                elif relation in ("子", "女") and surname:
                    name = faults.make_name(rng, sex, surname)
                else:
                    name = faults.make_name(rng, sex)
                if relation == "户主" and (head_sex == "1"):
                    surname = name[0]
                elif relation == "配偶" and sex == "1":
                    surname = name[0]
                at_birth = [r for r in residences if r.since <= born] or residences[:1]
                own = [Residence(at_birth[-1].county, at_birth[-1].township, at_birth[-1].address_id,
                                 at_birth[-1].address, born)]
                own += [r for r in residences if r.since > born]
                p = Person(index=self.next_index, id_number=self._issue_id(own[0].county, born, sex), name=name,
                           sex=sex, ethnicity=ethnicity, birth_date=born, household=hh, relation=relation,
                           education=self._education(rng, born), residences=own)
                self.next_index += 1
                persons.append(p)
            self._marry(persons, head_index, rng)
        self._deaths(persons, rng)
        self._locate(addresses, rng)
        return persons, addresses

    def _residence(self, county: str, since: dt.date, addresses: list[Address], rng) -> Residence:
        towns = self.places.townships.get(county) or [self.places.by_code[county]]
        town = towns[int(rng.integers(len(towns)))]
        roads = self.roads[county]
        road = roads[int(rng.integers(len(roads)))]
        number, building = int(rng.integers(1, 400)), int(rng.integers(1, 30))
        unit, room = int(rng.integers(1, 7)), int(rng.integers(1, 27)) * 100 + int(rng.integers(1, 5))
        self.addr_serial[town.code] += 1
        address_id = f"{town.code}{self.addr_serial[town.code]:07d}"
        base = f"{self.places.full_name(county)}{town.name if town.code != county else ''}{road}{number}号"
        text = f"{base}{building}栋{unit}单元{room}室"
        addresses.append(Address(address_id, county, town.code, road, number, building, base + f"{building}栋", since))
        return Residence(county, town.code, address_id, text, since)

    def _issue_id(self, county: str, born: dt.date, sex: str) -> str:
        """A GB 11643 number: the county code in use in the birth year, birth date, sequence (odd for men)."""
        code = self._birth_county.get((county, born.year))
        if code is None:
            code = self._code_in_use(county, born.year)
            self._birth_county[(county, born.year)] = code
        ci, day, s = self.id_index[code], (born - EPOCH).days, 1 if sex == "1" else 0
        used = int(self.used[ci, day, s])
        self.used[ci, day, s] = used + 1
        # Police stations hand out sequence numbers in blocks; the start of the block varies by county and day.
        start = 2 * ((ci * 7919 + day * 104729) % 200) + 2
        return faults.make_ric(code, born, start + 2 * used + s)

    def _code_in_use(self, county: str, year: int) -> str:
        """The county code an ID number issued in `year` for someone born in `county` carries: the county's
        own code if it was in use then, else the retired code it succeeded, else a code of the same
        prefecture in use then (python-stdnum's GB/T 2260 history decides what was in use)."""
        from stdnum.cn import ric
        from stdnum.exceptions import ValidationError

        places = self.places
        candidates = [county] + [r.code for r in places.retired if places.successor.get(r.code) == county]
        candidates += [d.code for d in places.id_counties if d.code[:4] == county[:4]]
        candidates += [d.code for d in places.id_counties if d.code[:4] != county[:4]]
        for code in candidates:
            try:
                ric.get_birth_place(f"{code}{year}0101000")
                return code
            except ValidationError:
                continue
        raise ValueError(f"no Hubei county code was in use in {year}")

    def _education(self, rng, born: dt.date) -> str:
        age = (self.cal.horizon - born).days // 365
        if age < 6:
            return ""
        if age <= 18:
            return "80" if age < 12 else ("70" if age < 15 else "60")
        return _choice(rng, EDUCATION)

    def _marry(self, persons: list[Person], head_index: int, rng) -> None:
        head = persons[head_index - persons[0].index]
        spouse = next((p for p in persons[head_index - persons[0].index + 1:] if p.relation == "配偶"), None)
        if spouse is None:
            return
        husband, wife = (head, spouse) if head.sex == "1" else (spouse, head)
        earliest = max(husband.birth_date + dt.timedelta(days=22 * 366), wife.birth_date + dt.timedelta(days=20 * 366))
        if earliest >= self.cal.horizon:
            return
        span = min(10 * 365, (self.cal.horizon - earliest).days)
        married = earliest + dt.timedelta(days=int(rng.integers(0, max(span, 1))))
        for a, b in ((husband, wife), (wife, husband)):
            a.spouse, a.married_on = b.index, married
        if rng.random() < 0.06:
            divorced = married + dt.timedelta(days=int(rng.integers(365, 15 * 365)))
            if divorced < self.cal.horizon:
                husband.divorced_on = wife.divorced_on = divorced

    def _deaths(self, persons: list[Person], rng) -> None:
        """Deaths since 2015 by an age-rising hazard (about 0.6 % a year overall)."""
        horizon = self.cal.horizon
        years = np.arange(2015, horizon.year + 1)
        born = np.array([p.birth_date.year for p in persons])
        age = years[None, :] - born[:, None]
        q = np.where(age < 0, 0.0, np.where(age == 0, 0.004, np.clip(0.0003 * np.exp(0.085 * (age - 40)), 0, 0.3)))
        dies = rng.random(q.shape) < q
        first = np.where(dies.any(axis=1), dies.argmax(axis=1), -1)
        offsets = rng.integers(0, 365, len(persons))
        for p, f, off in zip(persons, first, offsets):
            if f < 0:
                continue
            day = dt.date(int(years[f]), 1, 1) + dt.timedelta(days=int(off))
            day = max(day, p.birth_date + dt.timedelta(days=1))
            if day < horizon:
                p.death_date = day

    def _locate(self, addresses: list[Address], rng) -> None:
        by_county: dict[str, list[Address]] = {}
        for a in addresses:
            by_county.setdefault(a.county, []).append(a)
        for county in sorted(by_county):
            pts = self.places.points_in(county, len(by_county[county]), rng)
            for a, (lon, lat) in zip(by_county[county], pts):
                a.lon, a.lat = float(lon), float(lat)

    # --- extracts --------------------------------------------------------------------------------

    def write(self, part: int, persons: list[Person], addresses: list[Address], employers: list) -> None:
        rng = rng_for(self.seed, "population", part)
        by_index = {p.index: p for p in persons}
        self._employ(persons, employers, rng)
        n = len(persons)
        # One uniform per (extract, kind, person) for snapshots: a record keeps its defect from batch to batch.
        keep = {(key, kind): rng.random(n) for key in ("gongan__household", "renshe__insured", "jiaoyu__student")
                for kind in KINDS.get(key, []) + ["id_checksum", "authority_error", "deceased_active"]}
        self._write_gongan(persons, keep)
        self._write_snapshot(INSURED, persons, keep, self._insured_row, lambda p, d: p.insured_since is not None
                             and p.insured_since <= d and p.employer.active_on(d))
        self._write_snapshot(STUDENT, persons, keep, self._student_row, lambda p, d: 6 <= p.age_on(d) <= 18)
        self._write_events(part, persons, by_index)
        self._write_addresses(addresses)
        self._write_truth(persons, by_index)

    def _employ(self, persons: list[Person], employers: list, rng) -> None:
        pool = [e for e in employers if e.insured]  # the entities in 人社's employer file
        if not pool:
            return
        for p in persons:
            adult = p.birth_date + dt.timedelta(days=18 * 366)
            if adult >= self.cal.horizon or p.age_on(self.cal.horizon) > 62 or rng.random() > 0.65:
                continue
            e = pool[int(rng.integers(len(pool)))]
            start = max(adult, e.established, dt.date(2005, 1, 1))
            if start < self.cal.horizon:
                p.employer = e
                p.insured_since = start + dt.timedelta(days=int(rng.integers(0, 200)))

    def _spoil(self, key: str, p: Person, day: dt.date, keep: dict | None, i: int) -> tuple[dict, list[str]]:
        """The person's true values as the extract `key` delivers them on `day`, and the defects injected."""
        res = p.residence_on(day)
        v = {"id_number": p.id_number, "name": p.name, "sex": p.sex, "birth_date": p.birth_date, "county": res.county,
             "address": res.address, "birth_text": None}
        labels: list[str] = []
        r: list = []

        def rand():
            if not r:
                r.append(rng_for(self.seed, key, p.index, day.toordinal() if keep is None else 0))
            return r[0]

        def hit(kind, eligible=True):
            u = None if keep is None else float(keep[(key, kind)][i])
            if self.inj.hit(kind, eligible, u):
                labels.append(kind)
                return True
            return False

        for kind in KINDS[key]:
            idn, name = v["id_number"], v["name"]
            if kind == "id_missing" and hit(kind, bool(idn)):
                v["id_number"] = ""
            elif kind == "id_legacy15" and hit(kind, len(idn) == 18 and idn[6:8] == "19"):
                v["id_number"] = faults.spoil_legacy15(idn, rand())
            elif kind == "id_checksum" and hit(kind, len(idn) == 18):
                v["id_number"] = faults.spoil_checksum(idn, rand())
            elif kind == "id_transposed" and hit(kind, len(idn) == 18 and "id_checksum" not in labels):
                v["id_number"] = faults.spoil_transposed(idn, rand())
            elif kind == "id_fullwidth" and hit(kind, bool(idn)):
                v["id_number"] = faults.spoil_fullwidth(idn, rand())
            elif kind == "name_typo" and hit(kind, len(name) >= 2 and "·" not in name):
                v["name"] = faults.spoil_typo(name, rand())
            elif kind == "name_homophone" and hit(kind, any(c in faults.homophones() for c in name[1:])):
                v["name"] = faults.spoil_homophone(name, rand())
            elif kind == "name_traditional" and hit(kind, faults.spoil_traditional(name, None) is not None):
                v["name"] = faults.spoil_traditional(name, None)
            elif kind == "name_width" and hit(kind, len(name) >= 2):
                v["name"] = faults.spoil_width(name, rand())
            elif kind == "value_conflict" and hit(kind):
                if rand().random() < 0.5:
                    v["birth_date"] = faults.spoil_date_value(p.birth_date, rand())
                else:
                    v["sex"] = "2" if p.sex == "1" else "1"
            elif kind == "sex_code_unknown" and hit(kind):
                v["sex"] = "3"
            elif kind == "date_format" and hit(kind):
                v["birth_text"] = faults.spoil_date_format(v["birth_date"], USUAL_DATE[key], rand())
            elif kind == "address_stale":
                prev = p.previous_residence(day)
                if hit(kind, prev is not None):
                    v["county"], v["address"] = prev.county, prev.address
        if v["birth_text"] is None:
            v["birth_text"] = faults.format_date(v["birth_date"], USUAL_DATE[key])
        return v, labels

    def _truth(self, p: Person, day: dt.date, **extra) -> dict:
        return {"id_number": p.id_number, "name": p.name, "sex": p.sex, "birth_date": p.birth_date.isoformat(),
                "address_code": p.residence_on(day).county, **extra}

    def _write_gongan(self, persons: list[Person], keep: dict) -> None:
        """公安: everyone registered on the batch date; the deceased until their deregistration is entered."""
        for b in self.cal.deliveries(GONGAN.cadence):
            day, w = self.cal.dates[b], self.landing.writer(GONGAN, self.cal.names[b])
            for i, p in enumerate(persons):
                if p.birth_date > day:
                    continue
                if p.death_date is not None and p.death_date + dt.timedelta(days=(p.index * 7) % 60) < day:
                    continue
                labels, idn, born = [], p.id_number, p.birth_date
                if self.inj.hit("id_checksum", True, float(keep[("gongan__household", "id_checksum")][i])):
                    labels.append("id_checksum")
                    idn = faults.spoil_checksum(idn, rng_for(self.seed, "gongan", p.index))
                if self.inj.hit("authority_error", True, float(keep[("gongan__household", "authority_error")][i])):
                    labels.append("authority_error")
                    born = faults.spoil_date_value(born, rng_for(self.seed, "gongan-authority", p.index))
                res = p.residence_on(day)
                w.write([idn, p.name, SEX_TEXT[p.sex], ETHNICITY[p.ethnicity], f"{born:%Y%m%d}", res.county,
                         res.address, p.household, p.relation, res.since.isoformat()],
                        p.ref, labels,
                        self._truth(p, day, ethnicity=p.ethnicity, address_id=res.address_id, household=p.household))

    def _write_snapshot(self, spec: ExtractSpec, persons, keep, row, listed) -> None:
        for b in self.cal.deliveries(spec.cadence):
            day, w = self.cal.dates[b], self.landing.writer(spec, self.cal.names[b])
            for i, p in enumerate(persons):
                if not listed(p, day):
                    continue
                dead = p.death_date is not None and p.death_date < day
                if dead:
                    # 人社 stops paying when it learns of a death; some deaths it never learns of.
                    if spec is not INSURED:
                        continue
                    if not self.inj.hit("deceased_active", True, float(keep[(spec.key, "deceased_active")][i])):
                        continue
                v, labels = self._spoil(spec.key, p, day, keep, i)
                if dead:
                    labels.append("deceased_active")
                values, truth = row(p, day, v)
                w.write(values, p.ref, labels, truth)
                if "duplicate" in KINDS[spec.key] and self.inj.hit("duplicate", True,
                                                                   float(keep[(spec.key, "duplicate")][i])):
                    w.write(values, p.ref, labels + ["duplicate"], truth)

    def _insured_row(self, p: Person, day: dt.date, v: dict):
        e = p.employer
        values = [v["id_number"], v["name"], v["sex"], v["birth_text"], "1", e.uscc, v["county"],
                  f"{p.insured_since:%Y%m%d}"]
        status = "1" if p.alive_on(day) else "3"
        return values, self._truth(p, day, status=status, employer=e.ref)

    def _student_row(self, p: Person, day: dt.date, v: dict):
        age = p.age_on(day)
        county = p.residence_on(day).county
        level = "小学" if age < 12 else ("初级中学" if age < 15 else "高级中学")
        school_no = (p.index // 400) % 5 + 1
        school = f"{self.places.by_code[county].name}第{school_no}{'小学' if age < 12 else '中学'}"
        school_id = f"3{county}{school_no:03d}"
        grade = f"{level}{min(age - 5, 12) - (0 if age < 12 else 6 if age < 15 else 9)}年级"
        values = [f"G{p.id_number}", v["name"], SEX_TEXT.get(v["sex"], v["sex"]), v["birth_text"], v["id_number"],
                  ETHNICITY[p.ethnicity], school_id, school, grade, v["county"], v["address"]]
        return values, self._truth(p, day, ethnicity=p.ethnicity, school=school_id, grade=grade)

    def _write_events(self, part: int, persons: list[Person], by_index: dict[int, Person]) -> None:
        cal = self.cal
        mothers = {p.household: p for p in persons if p.relation in ("户主", "配偶") and p.sex == "2"}
        for b, start, end in cal.windows(BIRTH.cadence, dt.date(2010, 1, 1)):
            w = self.landing.writer(BIRTH, cal.names[b])
            for p in persons:
                if start <= p.birth_date < end:
                    mother = mothers.get(p.household) if p.relation in ("子", "女") else None
                    v, labels = self._spoil(BIRTH.key, p, p.birth_date, None, 0)
                    values = [f"Q{420000 + part % 1000:06d}{p.index:010d}", v["name"], v["sex"], v["birth_text"],
                              v["id_number"], v["county"], mother.name if mother else "",
                              mother.id_number if mother else "", (p.birth_date + dt.timedelta(days=3)).isoformat()]
                    truth = self._truth(p, p.birth_date, mother=mother.ref if mother else "")
                    w.write(values, p.ref, labels, truth)
                    if self.inj.hit("duplicate"):
                        w.write(values, p.ref, labels + ["duplicate"], truth)
        for b, start, end in cal.windows(DEATH.cadence, dt.date(2015, 1, 1)):
            w = self.landing.writer(DEATH, cal.names[b])
            for p in persons:
                if p.death_date is not None and start <= p.death_date < end:
                    v, labels = self._spoil(DEATH.key, p, p.death_date, None, 0)
                    w.write([v["id_number"], v["name"], v["sex"], v["birth_text"], f"{p.death_date:%Y-%m-%d}",
                             p.residence_on(p.death_date).county, f"D{p.index:010d}"],
                            p.ref, labels, self._truth(p, p.death_date, death_date=p.death_date.isoformat()))
        for b, start, end in cal.windows(FUNERAL.cadence, dt.date(2016, 1, 1)):
            w = self.landing.writer(FUNERAL, cal.names[b])
            for p in persons:
                if p.death_date is None:
                    continue
                cremated = p.death_date + dt.timedelta(days=3)
                if start <= cremated < end:
                    v, labels = self._spoil(FUNERAL.key, p, p.death_date, None, 0)
                    county = p.residence_on(p.death_date).county
                    w.write([v["name"], v["id_number"], SEX_TEXT[v["sex"]], f"{p.death_date:%Y-%m-%d}",
                             f"{cremated:%Y-%m-%d}", f"{self.places.by_code[county].name}殡仪馆"],
                            p.ref, labels, self._truth(p, p.death_date, death_date=p.death_date.isoformat()))
        self._write_marriages(persons, by_index)

    def _write_marriages(self, persons: list[Person], by_index: dict[int, Person]) -> None:
        cal = self.cal
        events = []
        for p in persons:
            if p.sex == "1" and p.spouse is not None:
                wife = by_index[p.spouse]
                events.append((p.married_on, "结婚登记", p, wife))
                if p.divorced_on:
                    events.append((p.divorced_on, "离婚登记", p, wife))
        for b, start, end in cal.windows(MARRIAGE.cadence, dt.date(2016, 1, 1)):
            w = self.landing.writer(MARRIAGE, cal.names[b])
            for day, kind, husband, wife in events:
                if not start <= day < end:
                    continue
                vh, lh = self._spoil(MARRIAGE.key, husband, day, None, 0)
                vw, lw = self._spoil(MARRIAGE.key, wife, day, None, 0)
                office = husband.residence_on(day).county
                labels = [f"husband:{k}" for k in lh] + [f"wife:{k}" for k in lw]
                # An office whose code was retired later still used its old code when this was registered.
                old = [r.code for r in self.places.retired
                       if self.places.successor.get(r.code) == office and r.end is not None and day.year <= r.end]
                if self.inj.hit("division_retired", bool(old)):
                    office_code, labels = old[0], labels + ["division_retired"]
                else:
                    office_code = office
                w.write([faults.format_date(day, USUAL_DATE[MARRIAGE.key]), kind, vh["name"], vh["id_number"],
                         vh["birth_text"], vw["name"], vw["id_number"], vw["birth_text"], office_code,
                         f"{self.places.by_code[office].name}民政局婚姻登记处"],
                        f"{husband.ref}+{wife.ref}", labels,
                        {"husband_id_number": husband.id_number, "husband_name": husband.name,
                         "wife_id_number": wife.id_number, "wife_name": wife.name, "date": day.isoformat(),
                         "type": kind, "office_code": office})

    def _write_addresses(self, addresses: list[Address]) -> None:
        for b in self.cal.deliveries(ADDRESS.cadence):
            day, w = self.cal.dates[b], self.landing.writer(ADDRESS, self.cal.names[b])
            for a in addresses:
                if a.since <= day:
                    w.write([a.address_id, a.county, a.township, a.road, a.number, a.building, a.text,
                             f"{a.lon:.6f}", f"{a.lat:.6f}"], a.address_id, [],
                            {"county": a.county, "township": a.township, "text": a.text,
                             "lon": f"{a.lon:.6f}", "lat": f"{a.lat:.6f}"})

    def _write_truth(self, persons: list[Person], by_index: dict[int, Person]) -> None:
        horizon = self.cal.horizon
        for p in persons:
            spouse = by_index.get(p.spouse) if p.spouse is not None else None
            res = p.residence_on(horizon)
            self._persons.writerow([
                p.ref, p.id_number, p.name, p.sex, p.ethnicity, p.birth_date.isoformat(),
                p.death_date.isoformat() if p.death_date else "", p.household, p.relation, p.education,
                marital_status(p, horizon, spouse.death_date if spouse else None),
                person_ref(p.spouse) if p.spouse is not None else "",
                p.married_on.isoformat() if p.married_on else "", p.divorced_on.isoformat() if p.divorced_on else "",
                p.employer.ref if p.employer else "", res.county, res.address_id])
            for r, nxt in zip(p.residences, p.residences[1:] + [None]):
                self._res.writerow([p.ref, r.county, r.township, r.address_id, r.since.isoformat(),
                                    nxt.since.isoformat() if nxt else ""])

    def close(self) -> Injector:
        self._persons_fh.close()
        self._res_fh.close()
        return self.inj
