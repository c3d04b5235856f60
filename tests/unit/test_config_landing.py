import csv
import json

import pytest

from jichu.config import ConfigError, Extract, FileSpec, load_yaml_model
from jichu.core.landing import DeliveryRejected, check_delivery, csv_bytes, read_rows, sha256_of
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


def test_delivery_checks_rows_and_rejects_a_changed_file(spark, demo, extracts):
    folder = demo / "landing" / "gongan" / "2026-01-01"
    ex = extracts["gongan__household"]
    [checked] = check_delivery(spark, folder, {"household": ex})
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    assert checked.rows == checked.frame.count() == manifest["files"][0]["rows"] > 150 and checked.unknown_columns == []
    assert [r["_row"] for r in checked.frame.orderBy("_row").collect()] == list(range(1, checked.rows + 1))
    # GB18030 decoded: the header is Chinese text, not mojibake, and so are the values.
    assert "公民身份号码" in checked.frame.columns
    with (folder / "household.csv").open(encoding="gb18030", newline="") as fh:
        rows = list(csv.reader(fh))
    assert [list(r[:-1]) for r in checked.frame.orderBy("_row").collect()] == rows[1:]

    data = (folder / "household.csv").read_bytes()
    (folder / "household.csv").write_bytes(data[: len(data) // 2])  # a truncated delivery
    with pytest.raises(DeliveryRejected, match="household.csv: sha256 does not match"):
        check_delivery(spark, folder, {"household": ex})
    manifest["files"][0]["sha256"] = sha256_of(folder / "household.csv")
    (folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(DeliveryRejected, match="household.csv: (row \\d+ has|\\d+ data rows|not valid gb18030)"):
        check_delivery(spark, folder, {"household": ex})


def test_utf8_bom_is_stripped(spark, demo, extracts):
    frame, _ = read_rows(spark, demo / "landing" / "weijian" / "2026-01-01" / "birth.csv", extracts["weijian__birth"].file)
    assert frame.columns[0] == "出生医学证明编号"


def _csv(path, rows, encoding="gb18030"):
    path.write_bytes(csv_bytes(rows[0], rows[1:], encoding))
    return path


def test_csv_values_arrive_as_delivered_in_file_order(spark, tmp_path):
    rows = [["姓名", "备注", "代码"], ["张三", "", "0012"], ["李四", "两行\n的备注", " 3 "], ['"引号"', '""', "4"]]
    frame, n = read_rows(spark, _csv(tmp_path / "a.csv", rows), FileSpec(name="a.csv", encoding="gb18030"))
    assert n == 3 and frame.columns == ["姓名", "备注", "代码", "_row"]
    assert [list(r) for r in frame.orderBy("_row").collect()] == [[*r, i] for i, r in enumerate(rows[1:], start=1)]


def test_a_csv_row_with_a_field_too_many_is_named(spark, tmp_path):
    path = _csv(tmp_path / "a.csv", [["a", "b"], ["1", "2"], ["3", "4"]])
    path.write_bytes(path.read_bytes() + "5,6,7\r\n".encode("gb18030"))
    with pytest.raises(DeliveryRejected, match=r"a.csv: row 3 has 3 fields, the header has 2"):
        read_rows(spark, path, FileSpec(name="a.csv", encoding="gb18030"))


def test_bytes_that_are_not_the_declared_encoding_are_named_by_row(spark, tmp_path):
    path = _csv(tmp_path / "a.csv", [["a", "b"], ["1", "2"], ["赵", "4"]])
    path.write_bytes(path.read_bytes().replace("赵".encode("gb18030"), b"\x81\x20"))
    with pytest.raises(DeliveryRejected, match=r"a.csv: not valid gb18030 text \(row 2\)"):
        read_rows(spark, path, FileSpec(name="a.csv", encoding="gb18030"))


def test_a_header_naming_a_column_twice_is_refused(spark, tmp_path):
    path = _csv(tmp_path / "a.csv", [["a", "b", "a"], ["1", "2", "3"]])
    with pytest.raises(DeliveryRejected, match=r"a.csv: the header names a more than once"):
        read_rows(spark, path, FileSpec(name="a.csv", encoding="gb18030"))


def test_json_lines_are_numbered_by_line_and_keep_non_string_values_as_json(spark, tmp_path):
    path = tmp_path / "a.jsonl"
    lines = [json.dumps({"id": f"{i:06d}", "n": i, "ok": i % 2 == 0, "note": None}, ensure_ascii=False) for i in range(3000)]
    path.write_text("\n".join(lines[:10] + [""] + lines[10:]) + "\n", encoding="utf-8")
    # Several blocks, read by several tasks: rows are numbered across them in file order.
    spark.conf.set("spark.sql.files.maxPartitionBytes", "16k")
    try:
        frame, n = read_rows(spark, path, FileSpec(name="a.jsonl", format="jsonl"))
        got = frame.orderBy("_row").collect()
    finally:
        spark.conf.unset("spark.sql.files.maxPartitionBytes")
    assert n == 3000 and frame.columns == ["id", "n", "ok", "note", "_row"]
    # The blank line is line 11: the rows after it keep their line numbers.
    assert [r["_row"] for r in got] == [*range(1, 11), *range(12, 3002)]
    assert [r["id"] for r in got] == [f"{i:06d}" for i in range(3000)]
    assert (got[1]["n"], got[1]["ok"], got[1]["note"]) == ("1", "false", None)


def test_a_json_line_that_is_not_an_object_is_named(spark, tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_text('{"a": "1"}\n[1, 2]\n', encoding="utf-8")
    with pytest.raises(DeliveryRejected, match=r"a.jsonl: row 2 is not a valid JSON object"):
        read_rows(spark, path, FileSpec(name="a.jsonl", format="jsonl"))


def test_json_lines_must_be_utf8():
    with pytest.raises(ValueError, match="UTF-8, not gb18030"):
        FileSpec(name="a.jsonl", format="jsonl", encoding="gb18030")


def test_an_empty_json_lines_file_is_a_delivery_of_no_records(spark, tmp_path, extracts):
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
    checked = {c.extract.extract: c for c in check_delivery(spark, folder, {"death": extracts["weijian__death"], "birth": extracts["weijian__birth"]})}
    assert checked["death"].rows == checked["death"].frame.count() == 0
    assert {"zjhm", "xm", "swrq"} <= set(checked["death"].frame.columns)  # the columns standardization reads


def test_a_workbook_that_is_not_one_is_a_rejection_not_a_crash(spark, tmp_path):
    path = tmp_path / "marriage.xlsx"
    path.write_bytes(b"PK\x03\x04 cut short in transfer")
    with pytest.raises(DeliveryRejected, match=r"marriage.xlsx: cannot be read as xlsx \(BadZipFile\)"):
        read_rows(spark, path, FileSpec(name="marriage.xlsx", format="xlsx"))
