"""The demo province generator: identifiers valid, labels true to the delivered bytes, rates as configured,
byte-identical reruns, real places. Reads back only what `jichu generate` wrote; prints no personal data."""

from __future__ import annotations

import csv
import hashlib
import json
import math
import unicodedata
from collections import Counter
from pathlib import Path

import opencc
import pytest
from stdnum import exceptions as stdnum_errors
from stdnum.cn import ric

from jichu.config import ConfigError
from jichu.demo.defects import load_catalogue, load_rates
from jichu.demo.generate import generate, verify_manifests
from jichu.demo.places import Places
from jichu.demo.population import EXTRACTS, KINDS

SCALE, SEED, BATCHES = 3000, 5, 4


def _digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def province(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("province")
    generate(out, scale=SCALE, seed=SEED, batches=BATCHES)
    return out


def _truth_rows(out: Path, key: str):
    for path in sorted((out / "truth" / "records" / key).glob("*.csv")):
        with path.open(encoding="utf-8") as fh:
            for r in csv.DictReader(fh):
                yield path.stem, r


def _delivered(out: Path, spec, batch: str) -> list[dict]:
    path = out / "landing" / spec.agency / batch / spec.filename
    if spec.format == "csv":
        with path.open(encoding="utf-8-sig" if spec.encoding.startswith("utf-8") else spec.encoding, newline="") as fh:
            return list(csv.DictReader(fh))
    if spec.format == "jsonl":
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    from openpyxl import load_workbook

    rows = list(load_workbook(path, read_only=True).worksheets[0].iter_rows(values_only=True))
    return [dict(zip(rows[0], r)) for r in rows[1:]]


def _file_defects(out: Path) -> set[tuple[str, str, str]]:
    with (out / "truth" / "files.csv").open(encoding="utf-8") as fh:
        return {(r["defect"], r["agency"], r["batch"]) for r in csv.DictReader(fh)}


def test_same_seed_gives_byte_identical_files_and_another_seed_does_not(province, tmp_path):
    again = tmp_path / "again"
    generate(again, scale=SCALE, seed=SEED, batches=BATCHES)
    first, second = _digest(province), _digest(again)
    assert len(first) > 60 and first == second
    other = tmp_path / "other"
    generate(other, scale=SCALE, seed=SEED + 1, batches=BATCHES)
    differing = [k for k, v in _digest(other).items() if first.get(k) != v]
    assert "landing/gongan/2026-01-01/household.csv" in differing


def test_true_id_numbers_are_valid_unique_and_agree_with_the_person(province):
    with (province / "truth" / "population" / "persons.csv").open(encoding="utf-8") as fh:
        persons = list(csv.DictReader(fh))
    assert len(persons) == SCALE
    ids = [p["id_number"] for p in persons]
    assert len(set(ids)) == len(ids)
    invalid = [i for i, n in enumerate(ids) if not ric.is_valid(n)]
    assert invalid == [], f"{len(invalid)} invalid ID numbers, first at truth row {invalid[:1]}"
    for p in persons:
        n = p["id_number"]
        assert ric.get_birth_date(n).isoformat() == p["birth_date"]
        assert int(n[16]) % 2 == (1 if p["sex"] == "1" else 0)  # odd sequence digit: male
    # Older persons carry county codes that were retired before today's table.
    current = {d.code for d in Places().counties}
    assert any(p["id_number"][:6] not in current for p in persons)


def test_every_label_is_true_of_the_delivered_row(province):
    """Rows without an identifier/name defect carry the true value; labelled rows carry the defect."""
    to_simplified = opencc.OpenCC("t2s")
    checked = Counter()
    for spec in EXTRACTS:
        if spec.key == "minzheng__marriage":
            continue  # two persons per row; covered by the marriage test
        id_col, name_col = _person_columns(spec)
        for batch, truth in _grouped(province, spec.key):
            if ("truncated_file", spec.agency, batch) in _file_defects(province):
                continue  # what arrived is cut short; its truth describes the whole file
            rows = _delivered(province, spec, batch)
            assert len(rows) == len(truth)
            for row, t in zip(rows, truth):
                labels = set(filter(None, t["defects"].split(";")))
                got_id, true_id = str(row[id_col] or ""), t["true_id_number"]
                id_labels = labels & {"id_missing", "id_checksum", "id_transposed", "id_legacy15", "id_fullwidth"}
                if not id_labels:
                    assert got_id == true_id
                if "id_missing" in labels:
                    assert got_id == ""
                if "id_checksum" in labels or "id_transposed" in labels:
                    with pytest.raises(stdnum_errors.ValidationError):
                        ric.validate(unicodedata.normalize("NFKC", got_id))
                if "id_legacy15" in labels:
                    got15 = unicodedata.normalize("NFKC", got_id)
                    assert len(got15) == 15 and got15 == true_id[:6] + true_id[8:17]
                if id_labels == {"id_fullwidth"}:
                    assert got_id != true_id and unicodedata.normalize("NFKC", got_id) == true_id
                got_name = str(row[name_col])
                name_labels = labels & {"name_typo", "name_homophone", "name_traditional", "name_width"}
                if not name_labels:
                    assert got_name == t["true_name"]
                elif name_labels == {"name_traditional"}:
                    assert got_name != t["true_name"] and to_simplified.convert(got_name) == t["true_name"]
                elif name_labels == {"name_width"}:
                    assert got_name != t["true_name"]
                else:
                    assert got_name != t["true_name"]
                checked[spec.key] += 1
    assert all(checked[s.key] > 0 for s in EXTRACTS if s.key != "minzheng__marriage"), checked


def _person_columns(spec) -> tuple[str, str]:
    return {
        "gongan__household": ("公民身份号码", "姓名"), "weijian__birth": ("新生儿身份证号", "新生儿姓名"),
        "weijian__death": ("zjhm", "xm"), "minzheng__funeral": ("证件号码", "逝者姓名"),
        "renshe__insured": ("aac002", "aac003"), "jiaoyu__student": ("身份证件号", "姓名"),
    }[spec.key]


def _grouped(out: Path, key: str):
    by_batch: dict[str, list[dict]] = {}
    for batch, r in _truth_rows(out, key):
        by_batch.setdefault(batch, []).append(r)
    return sorted(by_batch.items())


def test_marriage_records_name_both_persons_and_retired_office_codes(province):
    places = Places()
    current = {d.code for d in places.counties}
    rows = 0
    for batch, truth in _grouped(province, "minzheng__marriage"):
        for row, t in zip(_delivered(province, next(s for s in EXTRACTS if s.key == "minzheng__marriage"), batch), truth):
            labels = set(filter(None, t["defects"].split(";")))
            husband, wife = t["entity"].split("+")
            assert husband.startswith("P") and wife.startswith("P")
            if not labels & {"husband:id_legacy15", "husband:id_checksum", "husband:id_transposed"}:
                assert row["男方身份证件号"] == t["true_husband_id_number"]
            if "division_retired" in labels:
                assert row["登记机关代码"] not in current and places.successor[row["登记机关代码"]] == t["true_office_code"]
            else:
                assert row["登记机关代码"] == t["true_office_code"] in current
            rows += 1
    assert rows > 50


def test_injected_rates_match_the_configuration_and_the_labels(province):
    summary = json.loads((province / "truth" / "summary.json").read_text(encoding="utf-8"))
    catalogue = load_catalogue()
    assert set(summary["defects"]) == set(catalogue)
    # Labels found in the truth files, counted once per delivered record (a duplicate copy repeats its
    # original's labels, and a re-delivered file repeats an earlier batch).
    redelivered = {(a, b) for d, a, b in _file_defects(province) if d == "redelivered_file"}
    labels = Counter()
    for folder in sorted((province / "truth" / "records").iterdir()):
        agency = folder.name.split("__")[0]
        for batch, r in _truth_rows(province, folder.name):
            if (agency, batch) in redelivered:
                continue
            kinds = [k.split(":")[-1] for k in filter(None, r["defects"].split(";"))]
            labels.update(["duplicate"] if "duplicate" in kinds else kinds)
    file_kinds = {"redelivered_file", "truncated_file"}
    for kind, s in summary["defects"].items():
        if kind not in file_kinds:
            assert labels[kind] == s["injected"], (kind, labels[kind], s)
    assert sum(f["defect"] == "truncated_file" for f in summary["file_defects"]) == 1
    assert sum(f["defect"] == "redelivered_file" for f in summary["file_defects"]) == 1


def test_injected_rates_are_within_binomial_bounds_of_the_configuration(tmp_path):
    """One batch, so every record is one independent trial (later snapshots repeat a record's draw)."""
    summary = generate(tmp_path, scale=6000, seed=9, batches=1)
    checked = []
    for kind, s in summary["defects"].items():
        n, p = s["eligible"], s["rate"]
        if kind in ("redelivered_file", "truncated_file") or n * p < 10:
            continue
        # Within 4.5 standard deviations: a wrong rate, or a defect injected without being counted, fails.
        assert abs(s["injected"] - n * p) <= 4.5 * math.sqrt(n * p * (1 - p)), (kind, s)
        checked.append(kind)
    assert {"name_typo", "name_homophone", "id_legacy15", "id_checksum", "date_format", "address_stale",
            "uscc_legacy", "entity_name_variant"} <= set(checked), checked


def test_file_defects_are_what_they_say(province):
    summary = json.loads((province / "truth" / "summary.json").read_text(encoding="utf-8"))
    bad = verify_manifests(province)
    truncated = [f for f in summary["file_defects"] if f["defect"] == "truncated_file"]
    assert bad == [f"landing/{f['agency']}/{f['batch']}/{f['name']}" for f in truncated]
    for f in summary["file_defects"]:
        if f["defect"] == "redelivered_file":
            same = sorted(p for p in (province / "landing" / f["agency"]).glob(f"*/{f['name']}")
                          if p.read_bytes() == (province / "landing" / f["agency"] / f["batch"] / f["name"]).read_bytes())
            assert len(same) == 2


def test_rates_are_configurable_and_checked(tmp_path):
    rates = load_rates(overrides=["name_typo=0.5", "truncated_file=0", "redelivered_file=0"])
    summary = generate(tmp_path, scale=800, seed=3, batches=2, rates=rates)
    typo = summary["defects"]["name_typo"]
    assert typo["eligible"] > 300 and 0.4 < typo["injected"] / typo["eligible"] < 0.6
    assert summary["file_defects"] == [] and verify_manifests(tmp_path) == []
    with pytest.raises(ConfigError, match="unknown defect kind 'name_typos'"):
        load_rates(overrides=["name_typos=0.1"])
    bad = tmp_path / "bad.yaml"
    bad.write_text("name_typo: lots\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="bad.yaml: rate of name_typo is not a number"):
        load_rates(defects_file=bad)


def test_places_are_real_and_addresses_lie_in_their_county(province):
    places = Places()
    assert len(places.counties) == 103 and sum(len(t) for t in places.townships.values()) == 1260
    geo = json.loads((province / "landing" / "ziran" / "2026-01-01" / "boundary.geojson").read_text(encoding="utf-8"))
    assert geo["crs"]["properties"]["name"] == "urn:ogc:def:crs:EPSG::4490" and len(geo["features"]) == 103
    with (province / "landing" / "ziran" / "2026-01-01" / "address.csv").open(encoding="utf-8") as fh:
        addresses = list(csv.DictReader(fh))
    assert len(addresses) > SCALE / 4
    for a in addresses[:400]:
        assert a["乡镇街道代码"].startswith(a["县级区划代码"]) and a["乡镇街道代码"] in places.by_code
        assert places.contains(a["县级区划代码"], float(a["经度"]), float(a["纬度"]))
    with (province / "landing" / "minzheng" / "2026-01-01" / "division.csv").open(encoding="utf-8-sig") as fh:
        status = Counter(r["状态"] for r in csv.DictReader(fh))
    assert status["现行"] == 1 + 13 + 103 + 1260 and status["撤销"] > 50


def test_extracts_deliver_on_their_cadence(province):
    delivered = {(p.parent.parent.name, p.parent.name, p.name) for p in (province / "landing").glob("*/*/*")}
    assert ("jiaoyu", "2026-03-01", "student.csv") in delivered
    assert ("jiaoyu", "2026-02-01", "student.csv") not in delivered
    assert ("minzheng", "2026-04-01", "marriage.xlsx") in delivered
    assert ("minzheng", "2026-02-01", "marriage.xlsx") not in delivered
    assert all(("gongan", b, "household.csv") in delivered for b in ("2026-01-01", "2026-02-01", "2026-03-01"))
    for kinds in KINDS.values():
        assert set(kinds) <= set(load_catalogue())


def test_every_defect_kind_is_documented_with_its_default_rate():
    from jichu.config import ROOT

    text = (ROOT / "docs" / "demo-province.md").read_text(encoding="utf-8")
    for kind, d in load_catalogue().items():
        assert f"| `{kind}` | {d.rate:g} |" in text, kind
