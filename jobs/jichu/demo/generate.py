"""A small synthetic province for the walking skeleton: 公安 household register and 卫健 births.

Everything is synthetic and deterministic for a (scale, seed) pair. The extracts are written in
the landing format (one folder per agency and batch, with a manifest); the truth is written
beside them under ``truth/``, never inside an extract:

- ``truth/persons.csv``: person, id_number, name, sex, birth_date, address_code (true values)
- ``truth/records.csv``: agency, extract, batch, row, person, defects (';'-separated kinds)

Defect kinds injected here (rates per record): ``id_checksum`` (公安 wrong check character, 1%),
``id_missing`` (卫健, 3%), ``name_typo`` (卫健, 4%), ``birth_date_off`` (卫健, 2%),
``sex_code_unknown`` (卫健, 1%). The full generator replaces this module.
"""

from __future__ import annotations

import csv
import random
import re
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from jichu.core.landing import csv_bytes, write_manifest

BATCHES = ["2026-01-01", "2026-02-01", "2026-03-01", "2026-04-01"]

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦方白邹孟熊秦邱江尹薛段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超兰霞平刚桂华建国志红梅文辉鑫宇浩然子涵欣怡梓轩一诺雨桐思远佳琪俊熙"
_WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
_CHECK = "10X98765432"

RATES = {"id_checksum": 0.01, "id_missing": 0.03, "name_typo": 0.04, "birth_date_off": 0.02, "sex_code_unknown": 0.01}


@dataclass(frozen=True)
class County:
    code: str
    name: str
    start: int | None  # first year the code was in use (None: before records)
    end: int | None  # last year, None while it is current

    def valid_in(self, year: int) -> bool:
        return (self.start is None or year >= self.start) and (self.end is None or year <= self.end)


def hubei_counties() -> list[County]:
    """Real Hubei county-level division codes with their vintages, from python-stdnum's GB/T 2260 table."""
    import stdnum

    counties, in_hubei = [], False
    for line in (Path(stdnum.__file__).parent / "cn" / "loc.dat").read_text(encoding="utf-8").splitlines():
        if not line.startswith(" "):
            in_hubei = line.startswith("42 ")
            continue
        if not in_hubei or line.startswith("#"):
            continue
        code, _, rest = line.strip().partition(" ")
        if code.endswith("00"):
            continue  # prefecture rows
        for part in rest.split("=", 1)[1].strip('"').split(","):
            m = re.match(r"\[(\d*)-(\d*)\](.*)", part)
            start, end, name = (m.group(1), m.group(2), m.group(3)) if m else ("", "", part)
            if name not in ("市辖区", "市区", "郊区"):
                counties.append(County("42" + code, name, int(start) if start else None, int(end) if end else None))
    return counties


def ric_check_char(first17: str) -> str:
    return _CHECK[sum(int(d) * w for d, w in zip(first17, _WEIGHTS)) % 11]


def make_ric(county: str, born: date, sequence: int) -> str:
    body = f"{county}{born:%Y%m%d}{sequence:03d}"
    return body + ric_check_char(body)


@dataclass
class Person:
    index: int
    id_number: str
    name: str
    sex: str  # GB/T 2261.1: 1 male, 2 female
    birth_date: date
    address_code: str


def make_persons(n: int, rng: random.Random) -> list[Person]:
    """Persons whose ID numbers carry a county code that was in use in their birth year."""
    counties = hubei_counties()
    current = sorted({c.code for c in counties if c.end is None})
    by_year: dict[int, list[str]] = {}
    persons, seen = [], set()
    start, span = date(1940, 1, 1), (date(2025, 12, 1) - date(1940, 1, 1)).days
    while len(persons) < n:
        born = start + timedelta(days=rng.randrange(span))
        if born.year not in by_year:
            by_year[born.year] = sorted({c.code for c in counties if c.valid_in(born.year)})
        county = rng.choice(by_year[born.year])
        sex = rng.choice("12")
        sequence = rng.randrange(0, 500) * 2 + (1 if sex == "1" else 0)
        id_number = make_ric(county, born, sequence)
        if id_number in seen:
            continue
        seen.add(id_number)
        name = rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2, 2))))
        home = county if county in current else rng.choice(current)
        persons.append(Person(len(persons), id_number, name, sex, born, home))
    return persons


def _wrong_check(id_number: str) -> str:
    right = id_number[-1]
    return id_number[:-1] + next(c for c in _CHECK if c != right)


def _typo(name: str, rng: random.Random) -> str:
    i = rng.randrange(1, len(name))
    return name[:i] + rng.choice([c for c in GIVEN if c != name[i]]) + name[i + 1 :]


def generate(out: Path, scale: int = 2000, seed: int = 42, batches: int = 2) -> dict:
    """Write `batches` monthly deliveries of both agencies under out/landing, truth under out/truth."""
    rng = random.Random(seed)
    persons = make_persons(scale, rng)
    current = sorted({c.code for c in hubei_counties() if c.end is None})
    landing, truth = out / "landing", out / "truth"
    truth.mkdir(parents=True, exist_ok=True)
    records: list[list[str]] = []
    movers = {p.index for p in persons if rng.random() < 0.01}
    typo_fixed: set[int] = set()
    typos = 0
    counts = {}
    for b, batch in enumerate(BATCHES[:batches]):
        # 公安: a full snapshot every month; about 1% of people move county between batches.
        if b > 0:
            for p in persons:
                if p.index in movers:
                    p.address_code = rng.choice([c for c in current if c != p.address_code])
        rows = []
        for p in persons:
            defects = []
            id_number = p.id_number
            if rng.random() < RATES["id_checksum"]:
                id_number, defects = _wrong_check(id_number), ["id_checksum"]
            rows.append([id_number, p.name, "男" if p.sex == "1" else "女", f"{p.birth_date:%Y%m%d}",
                         p.address_code, f"H{p.index // 3:08d}", "本人", "2020-01-01"])
            records.append(["gongan", "household", batch, str(len(rows)), str(p.index), ";".join(defects)])
        header = ["公民身份号码", "姓名", "性别", "出生日期", "户籍地行政区划代码", "户号", "与户主关系", "登记日期"]
        _deliver(landing, "gongan", batch, "household", header, rows, "gb18030")
        counts[f"gongan/{batch}"] = len(rows)

        # 卫健: births since 2010 in the first delivery; later deliveries re-send corrected records.
        rows = []
        births = [p for p in persons if p.birth_date >= date(2010, 1, 1)]
        for p in births if b == 0 else [p for p in births if p.index in typo_fixed]:
            defects = []
            name, sex, born, id_number = p.name, p.sex, p.birth_date, p.id_number
            if b == 0:
                if rng.random() < RATES["id_missing"]:
                    id_number = ""
                    defects.append("id_missing")
                if rng.random() < RATES["name_typo"] and len(name) > 1:
                    name = _typo(name, rng)
                    defects.append("name_typo")
                    typos += 1
                    if typos % 2 == 1:  # every other typo is corrected in the next delivery
                        typo_fixed.add(p.index)
                if rng.random() < RATES["birth_date_off"]:
                    born = born + timedelta(days=1)
                    defects.append("birth_date_off")
                if rng.random() < RATES["sex_code_unknown"]:
                    sex = "3"
                    defects.append("sex_code_unknown")
            rows.append([f"B{p.index:09d}", name, sex, f"{born.year}/{born.month}/{born.day}", id_number,
                         p.address_code, batch])
            records.append(["weijian", "birth", batch, str(len(rows)), str(p.index), ";".join(defects)])
        header = ["出生医学证明编号", "新生儿姓名", "新生儿性别", "出生日期", "新生儿身份证号", "出生地行政区划代码", "签发日期"]
        _deliver(landing, "weijian", batch, "birth", header, rows, "utf-8-sig")
        counts[f"weijian/{batch}"] = len(rows)

    with (truth / "persons.csv").open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["person", "id_number", "name", "sex", "birth_date", "address_code"])
        for p in persons:
            w.writerow([p.index, p.id_number, p.name, p.sex, p.birth_date.isoformat(), p.address_code])
    with (truth / "records.csv").open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["agency", "extract", "batch", "row", "person", "defects"])
        w.writerows(records)
    return {"persons": len(persons), "batches": BATCHES[:batches], "rows": counts}


def _deliver(landing: Path, agency: str, batch: str, extract: str, header, rows, encoding: str) -> None:
    folder = landing / agency / batch
    folder.mkdir(parents=True, exist_ok=True)
    name = f"{extract}.csv"
    (folder / name).write_bytes(csv_bytes(header, rows, encoding))
    write_manifest(folder, agency, batch, [{"name": name, "extract": extract, "schema_version": 1, "rows": len(rows)}])
