"""The demo province's legal entities: delivered extracts read back against the truth written beside them.

Persons are synthetic here (not the population generator's), so these tests depend only on the legal
generator and the shared writers. Nothing personal is printed: failures name entity refs and columns only.
"""

import csv
import datetime as dt
import hashlib
import json
import random
import re
from collections import Counter
from pathlib import Path

import openpyxl
import pytest
from stdnum.cn import uscc as gb32100
from stdnum.iso7064 import mod_11_10

from jichu.demo.defects import load_rates
from jichu.demo.legal import LegalGenerator
from jichu.demo.people import Person, Residence
from jichu.demo.places import Places
from jichu.demo.timeline import Calendar
from jichu.demo.writers import Landing

SEED = 5
BATCHES = 3
# The delivered layout, stated here independently of the generator: file, encoding, credit-code column.
LAYOUT = {
    "shichang__market_entity": ("market_entity.csv", "utf-8-sig", "统一社会信用代码"),
    "bianban__institution": ("institution.xlsx", None, "统一社会信用代码"),
    "minzheng__social_org": ("social_org.csv", "gb18030", "统一社会信用代码"),
    "shuiwu__taxpayer": ("taxpayer.jsonl", "utf-8", "nsrsbh"),
    "tongji__directory": ("directory.csv", "gb18030", "统一社会信用代码"),
    "renshe__employer": ("employer.jsonl", "utf-8", "aab001"),
}
# GB 32100 character 1 (registering authority) and the type characters that go with it.
PAIRS = {"91", "92", "93", "11", "12", "51", "52", "53"}
ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)
LEGAL_KINDS = ("uscc_checksum", "uscc_legacy", "uscc_missing", "entity_name_variant", "entity_address_stale",
               "entity_duplicate", "deregistered_filing")


def _ric(county: str, born: dt.date, seq: int) -> str:
    body = f"{county}{born:%Y%m%d}{seq:03d}"
    total = sum(int(d) * w for d, w in zip(body, (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)))
    return body + "10X98765432"[total % 11]


def make_persons(places: Places, start: int, n: int, seed: int) -> list[Person]:
    """n synthetic persons of all ages, some moved, some dead; indexes dense from `start`."""
    rng = random.Random(seed)
    counties = [c.code for c in places.counties]
    out = []
    for k in range(n):
        born = dt.date(1930, 1, 1) + dt.timedelta(days=rng.randrange(33_000))
        county = rng.choice(counties)
        res = [Residence(county, county + "001", f"A{start + k}", "synthetic", born)]
        if rng.random() < 0.2:
            moved = born + dt.timedelta(days=rng.randrange(1, max(2, (dt.date(2026, 1, 1) - born).days)))
            res.append(Residence(rng.choice(counties), county + "002", f"B{start + k}", "synthetic", moved))
        death = None
        if born.year < 1970 and rng.random() < 0.3:  # deaths while of working age: reps must be alive
            earliest = max(born + dt.timedelta(days=20 * 366), dt.date(1998, 1, 1))
            death = earliest + dt.timedelta(days=rng.randrange(9000))
            death = death if death < dt.date(2026, 1, 1) else None
        out.append(Person(index=start + k, id_number=_ric(county, born, 2 * k % 1000), name="张" + "伟芳娜敏静"[k % 5],
                          sex="1" if k % 2 else "2", ethnicity="01", birth_date=born, household=f"H{k}",
                          relation="户主", education="70", residences=res, death_date=death))
    return out


def run(out: Path, seed: int = SEED, parts: int = 2, per_part: int = 1500, rates: dict | None = None):
    places, landing = Places(), Landing(out)
    gen = LegalGenerator(landing, Calendar(BATCHES), places, rates or load_rates(), seed)
    persons, entities = [], []
    for part in range(parts):
        ps = make_persons(places, part * per_part, per_part, seed * 100 + part)
        persons += ps
        entities += gen.partition(part, ps)
    inj = gen.close()
    landing.close()
    return inj, persons, entities


def read_delivered(path: Path, encoding: str | None) -> list[dict]:
    if path.suffix == ".xlsx":
        rows = list(openpyxl.load_workbook(path, read_only=True).active.iter_rows(values_only=True))
        return [dict(zip(rows[0], ["" if v is None else v for v in r])) for r in rows[1:]]
    if path.suffix == ".jsonl":
        return [json.loads(line) for line in path.read_text(encoding=encoding).splitlines()]
    with path.open(encoding=encoding, newline="") as fh:
        return list(csv.DictReader(fh))


def read_csv(path: Path) -> list[dict]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def check(ok: bool, *where) -> None:
    """Fail without pytest echoing the compared values: they can be names, ID numbers or addresses."""
    if not ok:
        pytest.fail(f"failed for {where}", pytrace=False)


def org_check(body: str) -> str:
    total = sum((int(c) if c.isdigit() else ord(c) - 55) * w for c, w in zip(body, ORG_WEIGHTS))
    check = 11 - total % 11
    return {10: "X", 11: "0"}.get(check, str(check))


@pytest.fixture(scope="module", params=["default", "boosted"])
def generated(request, tmp_path_factory):
    """One run at the catalogue's rates, one with every legal defect frequent, so each kind is exercised."""
    out = tmp_path_factory.mktemp(f"legal-{request.param}")
    rates = load_rates(overrides=[f"{k}=0.4" for k in LEGAL_KINDS]) if request.param == "boosted" else None
    inj, persons, entities = run(out, rates=rates)
    return out, inj, persons, entities, request.param


@pytest.fixture(scope="module")
def truth_entities(generated):
    out = generated[0]
    return read_csv(out / "truth" / "legal" / "entities.csv")


@pytest.fixture(scope="module")
def deliveries(generated):
    """extract key -> [(batch, delivered row, truth row)], paired by row number."""
    out = generated[0]
    found = {}
    for key, (filename, encoding, _) in LAYOUT.items():
        agency = key.split("__")[0]
        rows = []
        for folder in sorted((out / "landing" / agency).iterdir()):
            delivered = read_delivered(folder / filename, encoding)
            truth = read_csv(out / "truth" / "records" / key / f"{folder.name}.csv")
            assert len(delivered) == len(truth), f"{key} {folder.name}: delivered and truth row counts differ"
            assert [int(t["row"]) for t in truth] == list(range(1, len(truth) + 1))
            rows += [(folder.name, d, t) for d, t in zip(delivered, truth)]
        found[key] = rows
    return found


def test_entity_count_and_refs(generated, truth_entities):
    _, _, persons, entities, _ = generated
    assert 0.09 * len(persons) <= len(truth_entities) <= 0.13 * len(persons)
    assert [e["entity"] for e in truth_entities] == [f"L{i:08d}" for i in range(len(truth_entities))]
    assert [e.ref for e in entities] == [e["entity"] for e in truth_entities]


def test_credit_codes_are_valid_and_unique(generated, truth_entities):
    county_codes = {c.code for c in Places().counties}
    codes = [e["uscc"] for e in truth_entities]
    assert len(set(codes)) == len(codes), "credit codes repeat"
    assert len({c[8:17] for c in codes}) == len(codes), "organisation codes repeat"
    for e in truth_entities:
        code = e["uscc"]
        assert gb32100.is_valid(code), e["entity"]
        assert code[:2] in PAIRS, (e["entity"], code[:2])
        assert code[:2] == e["form"]
        assert code[2:8] in county_codes, (e["entity"], code[2:8])
        assert code[2:8] == e["office"]
        assert code[8:17] == e["orgcode"]
        assert org_check(code[8:16]) == code[16], e["entity"]
        if e["established"] >= "2016-01-01":
            assert code[8:10] == "MA" and not e["regno15"]
        else:
            assert code[8:16].isdigit()
    kinds = Counter(e["kind"] for e in truth_entities)
    assert kinds["individual"] > kinds["enterprise"] > kinds["cooperative"]
    authority = {"shichang": "9", "bianban": "1", "minzheng": "5"}
    assert all(e["uscc"][0] == authority[e["agency"]] for e in truth_entities)


def test_registration_numbers(truth_entities):
    with_regno = [e for e in truth_entities if e["regno15"]]
    assert with_regno, "no pre-2016 market entity"
    for e in with_regno:
        assert e["agency"] == "shichang" and e["established"] < "2016-01-01"
        assert len(e["regno15"]) == 15 and mod_11_10.is_valid(e["regno15"]), e["entity"]
    assert len({e["regno15"] for e in with_regno}) == len(with_regno)


def test_legal_reps_are_adults_alive_at_establishment(generated, truth_entities):
    _, _, persons, _, _ = generated
    by_ref = {p.ref: p for p in persons}
    for e in truth_entities:
        p = by_ref[e["legal_rep"]]
        day = dt.date.fromisoformat(e["established"])
        check(p.id_number == e["legal_rep_id_number"], e["entity"])
        check(p.age_on(day) >= 18, e["entity"], "legal representative under 18")
        check(p.alive_on(day), e["entity"], "legal representative not alive")
        assert dt.date(1995, 1, 1) <= day <= Calendar(BATCHES).horizon
        if e["deregistered"]:
            assert e["deregistered"] > e["established"]


def test_addresses_and_moves(truth_entities):
    places = Places()
    moved = [e for e in truth_entities if e["moved_on"]]
    assert moved, "no entity moved"
    for e in truth_entities:
        check(e["address"].startswith(places.full_name(e["county"])), e["entity"], "address outside its county")
        assert e["township"].startswith(e["county"]) and e["township"] in places.by_code
        assert re.fullmatch(r"\d{4}", e["industry"]), e["entity"]
    for e in moved:
        check(bool(e["previous_address"]) and e["previous_address"] != e["address"], e["entity"])
        check(e["previous_address"].startswith(places.full_name(e["previous_county"])), e["entity"])
        assert e["established"] < e["moved_on"]


def test_clean_rows_carry_the_true_code_and_labels_match_values(deliveries):
    checked = Counter()
    for key, rows in deliveries.items():
        column = LAYOUT[key][2]
        for batch, d, t in rows:
            labels = set(filter(None, t["defects"].split(";")))
            code = str(d.get(column, ""))
            if not labels & {"uscc_checksum", "uscc_legacy", "uscc_missing"}:
                assert code == t["true_uscc"], (key, batch, t["entity"])
                checked[key] += 1
            if "uscc_checksum" in labels:
                assert len(code) == 18 and not gb32100.is_valid(code) and code[:17] == t["true_uscc"][:17]
            if "uscc_missing" in labels:
                assert code == ""
            if "uscc_legacy" in labels:
                assert len(code.replace("-", "")) in (9, 15) and code != t["true_uscc"]
            name_col = {"shuiwu__taxpayer": "nsrmc", "tongji__directory": "单位详细名称",
                        "renshe__employer": "aab004"}.get(key)
            if name_col:
                check((d[name_col] != t["true_name"]) == ("entity_name_variant" in labels), key, batch, t["entity"])
    assert set(checked) == set(LAYOUT), "an extract delivered no clean row"


def test_registers_are_clean_and_keep_deregistered(deliveries, truth_entities):
    closed = {e["entity"] for e in truth_entities if e["deregistered"] and e["agency"] == "shichang"}
    seen_closed = set()
    for key in ("shichang__market_entity", "bianban__institution", "minzheng__social_org"):
        for batch, d, t in deliveries[key]:
            assert t["defects"] == "", key
            assert d["统一社会信用代码"] == t["true_uscc"]
            if key == "shichang__market_entity" and t["true_status"] != "存续":
                assert d["登记状态"] == t["true_status"]
                assert (d["注销日期"] or d["吊销日期"]) == t["true_deregistered"]
                seen_closed.add(t["entity"])
    assert closed and seen_closed == closed


def test_stale_addresses_and_deregistered_filing(deliveries, generated):
    entities = {e.ref: e for e in generated[3]}
    for key, column in (("shuiwu__taxpayer", "scjydz"), ("tongji__directory", "详细地址")):
        for batch, d, t in deliveries[key]:
            e = entities[t["entity"]]
            if "entity_address_stale" in t["defects"].split(";"):
                check(d[column] == e.previous_address != t["true_address"], key, batch, t["entity"])
            else:
                check(d[column] == t["true_address"], key, batch, t["entity"])
    for batch, d, t in deliveries["shuiwu__taxpayer"]:
        labels = t["defects"].split(";")
        if "deregistered_filing" in labels:
            assert t["true_tax_status"] == "注销" and d["nsrzt"] == "正常"
            assert d["zjsbssq"] > t["true_last_filing"]
        else:
            assert d["nsrzt"] == t["true_tax_status"] and d["zjsbssq"] == t["true_last_filing"]


def test_injected_counts_agree_with_labels(generated, deliveries):
    inj = generated[1]
    labelled = Counter()
    for rows in deliveries.values():
        for _, _, t in rows:
            labels = [k for k in t["defects"].split(";") if k]
            if "entity_duplicate" in labels:
                labelled["entity_duplicate"] += 1  # a duplicate repeats its original's other labels
            else:
                labelled.update(labels)
    for kind in LEGAL_KINDS:
        assert inj.injected[kind] == labelled[kind], kind
        assert inj.eligible[kind] >= inj.injected[kind]
    # Every kind had eligible records; with boosted rates every kind was injected.
    for kind in LEGAL_KINDS:
        assert inj.eligible[kind] > 0, kind
        assert inj.injected[kind] > 0 or generated[4] == "default", kind


def test_same_seed_same_bytes(tmp_path):
    def digests(root: Path) -> dict[str, str]:
        return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
                for p in sorted(root.rglob("*")) if p.is_file()}

    run(tmp_path / "a", parts=2, per_part=250)
    run(tmp_path / "b", parts=2, per_part=250)
    first, second = digests(tmp_path / "a"), digests(tmp_path / "b")
    assert first and first == second
    run(tmp_path / "c", seed=SEED + 1, parts=2, per_part=250)
    assert digests(tmp_path / "c") != first
