import json

import pytest

from jichu.config import ConfigError, Extract, load_yaml_model
from jichu.core.landing import DeliveryRejected, check_delivery, read_rows, sha256_of
from jichu.demo.defects import load_rates
from jichu.demo.generate import generate


def test_unknown_key_names_file_and_key(tmp_path):
    path = tmp_path / "gongan__household.yaml"
    path.write_text(
        "agency: gongan\nextract: household\ndomain: population\nfile: {name: a.csv, encodng: gb18030}\nfields: {}\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as e:
        load_yaml_model(path, Extract)
    assert str(path) in str(e.value) and "file.encodng" in str(e.value)


def test_unknown_agency_is_refused(tmp_path):
    path = tmp_path / "x.yaml"
    path.write_text("agency: police\nextract: a\ndomain: population\nfile: {name: a.csv}\nfields: {}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="key 'agency'"):
        load_yaml_model(path, Extract)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    generate(out, scale=200, seed=3, batches=2, rates=load_rates(overrides=["truncated_file=0"]))
    return out


def test_delivery_checks_rows_and_rejects_a_changed_file(demo, extracts):
    folder = demo / "landing" / "gongan" / "2026-01-01"
    ex = extracts["gongan__household"]
    [checked] = check_delivery(folder, {"household": ex})
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    assert checked.table.num_rows == manifest["files"][0]["rows"] > 150 and checked.unknown_columns == []
    assert checked.table.column("_row").to_pylist()[:3] == [1, 2, 3]
    # GB18030 decoded: the header is Chinese text, not mojibake.
    assert "公民身份号码" in checked.table.column_names

    data = (folder / "household.csv").read_bytes()
    (folder / "household.csv").write_bytes(data[: len(data) // 2])  # a truncated delivery
    with pytest.raises(DeliveryRejected, match="household.csv: sha256 does not match"):
        check_delivery(folder, {"household": ex})
    manifest["files"][0]["sha256"] = sha256_of(folder / "household.csv")
    (folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(DeliveryRejected, match="household.csv: (row \\d+ has|\\d+ data rows|not valid gb18030)"):
        check_delivery(folder, {"household": ex})


def test_utf8_bom_is_stripped(demo, extracts):
    table = read_rows(demo / "landing" / "weijian" / "2026-01-01" / "birth.csv", extracts["weijian__birth"].file)
    assert table.column_names[0] == "出生医学证明编号"


def test_an_empty_json_lines_file_is_a_delivery_of_no_records(tmp_path, extracts):
    folder = tmp_path / "weijian" / "2026-01-01"
    folder.mkdir(parents=True)
    files = []
    for ex in (extracts["weijian__death"], extracts["weijian__birth"]):
        text = "" if ex.file.format == "jsonl" else "\ufeff" + ",".join(
            sorted({m.column for m in ex.fields.values()} | {ex.observed_at.column} | set(ex.ignore_columns))) + "\n"
        (folder / ex.file.name).write_text(text, encoding="utf-8")
        files.append({"name": ex.file.name, "extract": ex.extract, "schema_version": 1, "rows": 0,
                      "sha256": sha256_of(folder / ex.file.name)})
    (folder / "manifest.json").write_text(json.dumps({"agency": "weijian", "batch": "2026-01-01", "files": files}), encoding="utf-8")
    checked = {c.extract.extract: c for c in check_delivery(folder, {"death": extracts["weijian__death"], "birth": extracts["weijian__birth"]})}
    assert checked["death"].table.num_rows == 0
    assert {"zjhm", "xm", "swrq"} <= set(checked["death"].table.column_names)  # the columns standardization reads


def test_a_workbook_that_is_not_one_is_a_rejection_not_a_crash(tmp_path):
    from jichu.config import FileSpec

    path = tmp_path / "marriage.xlsx"
    path.write_bytes(b"PK\x03\x04 cut short in transfer")
    with pytest.raises(DeliveryRejected, match=r"marriage.xlsx: cannot be read as xlsx \(BadZipFile\)"):
        read_rows(path, FileSpec(name="marriage.xlsx", format="xlsx"))
