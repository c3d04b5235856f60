"""Landing: agency deliveries exactly as delivered, checked against their manifests.

Layout: ``<landing>/<agency>/<batch>/`` holds the delivered files and ``manifest.json``::

    {"agency": "gongan", "batch": "2026-01-01",
     "files": [{"name": "household.csv", "extract": "household", "schema_version": 1,
                "rows": 1200, "sha256": "..."}]}

A delivery whose manifest does not match (missing file, checksum, row count, schema version or
a mapped column absent), or with fewer rows than its extract's `rows.min`, is rejected whole, and the
reason is recorded; nothing of it is staged. More rows than `rows.max` is a warning only.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import zipfile
from dataclasses import dataclass, field
from functools import reduce
from pathlib import Path

import pyarrow as pa
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from jichu.config import Extract, FileSpec

MANIFEST = "manifest.json"
ROW = "_row"
# Set by the readers on each row: why it cannot be read (null where it can; "blank" for a line that
# holds nothing, skipped), and, for a CSV row, its text.
_BAD, _RAW = "_unreadable", "_raw"
_UNREADABLE = ("fields", "undecodable", "json")  # the marks that reject a file


class DeliveryRejected(Exception):
    """The delivery does not match its manifest; the message says which file and why."""


@dataclass
class CheckedFile:
    extract: Extract
    path: Path
    frame: DataFrame  # the delivered columns, as strings, and `_row`; parsed once and held
    rows: int
    sha256: str
    unknown_columns: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def landing_folder(root: Path, agency: str, batch: str) -> Path:
    return root / agency / batch


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_manifest(folder: Path) -> dict:
    path = folder / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DeliveryRejected(f"{path}: manifest missing") from None
    except json.JSONDecodeError as e:
        raise DeliveryRejected(f"{path}: manifest is not valid JSON ({e.msg} at line {e.lineno})") from None
    if not isinstance(manifest.get("files"), list):
        raise DeliveryRejected(f"{path}: manifest has no 'files' list")
    return manifest


def read_rows(spark: SparkSession, path: Path, spec: FileSpec) -> tuple[DataFrame, int]:
    """Parse one delivered file into a frame of strings, plus `_row` (1-based data row number), and its
    row count. The file is parsed on the executors, once: the frame is held (localCheckpoint) for the
    checks here and the staging write. Values stay exactly as delivered (typing happens in
    standardization), so nothing is lost here. A row that cannot be read rejects the file, naming the row.
    """
    try:
        if spec.format == "csv":
            frame, figures = _read_csv(spark, path, spec)
        elif spec.format == "jsonl":
            frame, figures = _read_json_lines(spark, path)
        else:  # Spark has no workbook reader; workbooks are small (a clerk's export), read in the driver
            # in one partition, one block: in sheet order.
            frame, figures = _in_file_order(
                spark.createDataFrame(_read_workbook(path)).coalesce(1).withColumn("_block", F.lit(0)))
    except UnicodeDecodeError as e:
        raise DeliveryRejected(
            f"{path}: not valid {spec.encoding} text ({e.reason} at byte {e.start} of the header); "
            "wrong encoding declared, or the file was cut short"
        ) from None
    except (OSError, ValueError, zipfile.BadZipFile, KeyError) as e:  # e.g. a workbook cut short
        # Only the kind of error: a parser's message may quote the cell it choked on (personal data).
        raise DeliveryRejected(f"{path}: cannot be read as {spec.format} ({type(e).__name__})") from None
    columns = [c for c in frame.columns if c not in (ROW, _BAD, _RAW)]
    if figures["undecodable"] is not None:
        raise DeliveryRejected(
            f"{path}: not valid {spec.encoding} text (row {figures['undecodable']}); "
            "wrong encoding declared, or the file was cut short")
    if figures["fields"] is not None:
        number = figures["fields"]
        raw = frame.where(F.col(ROW) == number).select(_RAW).first()[0]
        delivered = len(next(csv.reader([raw], delimiter=spec.delimiter), []))
        raise DeliveryRejected(f"{path}: row {number} has {delivered} fields, the header has {len(columns)}")
    if figures["json"] is not None:
        raise DeliveryRejected(f"{path}: row {figures['json']} is not a valid JSON object")
    return frame.where(F.col(_BAD).isNull()).select(*[F.col(f"`{c}`") for c in columns], ROW), figures["rows"]


def _read_csv(spark: SparkSession, path: Path, spec: FileSpec) -> DataFrame:
    # The header is read here (utf-8-sig strips the BOM that some agencies' Excel exports put in front
    # of it) and given to Spark as the schema, which then skips the file's first record.
    encoding = "utf-8-sig" if spec.encoding.lower().replace("_", "-") in ("utf-8", "utf8") else spec.encoding
    with path.open("rb") as fh:  # the first line only: a decoding error further on is Spark's to find, by row
        first = fh.readline().decode(encoding)
    header = next(csv.reader([first], delimiter=spec.delimiter), None)
    if header is None:
        raise DeliveryRejected(f"{path}: empty file, no header row")
    header = [h.strip() for h in header]
    twice = sorted({h for h in header if header.count(h) > 1})
    if twice:
        raise DeliveryRejected(f"{path}: the header names {', '.join(twice)} more than once")
    schema = T.StructType([T.StructField(h, T.StringType()) for h in [*header, _RAW]])
    parsed = _with_block(spark.read.schema(schema).csv(
        str(path), header=True, enforceSchema=True, sep=spec.delimiter,
        encoding=spec.encoding.replace("-sig", ""),  # Spark decodes with the JVM's charsets (session.py)
        # Quoted values may hold line breaks, so a file is read whole by one task, not split.
        multiLine=True,
        # RFC 4180, as Python's csv and Excel write it: a quote inside a quoted value is doubled.
        quote='"', escape='"',
        # A row with more or fewer fields than the header is kept, with its text, to be reported.
        mode="PERMISSIVE", columnNameOfCorruptRecord=_RAW,
    ))
    # Spark reads an empty field as null; the file has no nulls, only empty values, as Python's csv reads.
    values = {h: F.coalesce(F.col(f"`{h}`"), F.lit("")) for h in header}
    undecodable = reduce(lambda a, b: a | b, [F.instr(F.col(f"`{h}`"), "\ufffd") > 0 for h in header], F.lit(False))
    bad = F.when(F.col(_RAW).isNotNull(), "fields").when(undecodable, "undecodable")
    return _in_file_order(parsed.withColumns(values).withColumn(_BAD, bad))


def _read_json_lines(spark: SparkSession, path: Path) -> DataFrame:
    lines = _with_block(spark.read.text(str(path)))
    # A JSON value that is not a string (a number, true) is kept as its JSON text.
    record = F.from_json("value", "map<string,string>")
    bad = F.when(F.trim("value") == "", "blank").when(~F.is_valid_utf8("value"), "undecodable") \
        .when(record.isNull(), "json")
    held, figures = _in_file_order(lines.withColumns({"_record": record, _BAD: bad}))
    # Columns in the order they first appear: the first line that has a key, then its place in that line.
    keys = held.where(F.col(_BAD).isNull()).select(F.explode(F.map_keys("_record")).alias("k"), ROW, "value") \
        .groupBy("k").agg(F.min(F.struct(ROW, F.instr("value", F.concat(F.lit('"'), "k", F.lit('"'))))).alias("at")) \
        .orderBy("at").collect()
    return held.select(*[F.col("_record")[r["k"]].alias(r["k"]) for r in keys], ROW, _BAD), figures


def _with_block(scan: DataFrame) -> DataFrame:
    """A file scan with `_block`, the start in the file of the block each row was read from."""
    return scan.withColumn("_block", F.col("_metadata.file_block_start"))


def _in_file_order(frame: DataFrame) -> tuple[DataFrame, dict]:
    """`frame`, read from one file, held once parsed, with `_row`: each row's 1-based place in the file;
    and its figures, from one pass over the held rows: the `rows` that can be read, and the first row
    with each mark of _UNREADABLE (None where no row has it).

    Spark numbers a task's rows from its partition's id (monotonically_increasing_id); a task may read
    several blocks of a file, one after another, and the blocks' order is their start in the file. So a
    row's place is the rows of the blocks before its own plus its place in its block.
    """
    held = frame.withColumn("_id", F.monotonically_increasing_id()).localCheckpoint()
    blocks = held.groupBy("_block").agg(
        F.count("*").alias("n"), F.min("_id").alias("first"), F.count_if(F.col(_BAD).isNull()).alias("rows"),
        *[F.min(F.when(F.col(_BAD) == mark, F.col("_id"))).alias(mark) for mark in _UNREADABLE],
    ).orderBy("_block").collect()
    before, starts, figures = 0, [], {"rows": 0, **dict.fromkeys(_UNREADABLE)}
    for b in blocks:
        shift = before - b["first"] + 1
        starts += [F.lit(b["_block"]), F.lit(shift)]
        figures["rows"] += b["rows"]
        for mark in _UNREADABLE:  # the blocks are in file order: the first block with the mark has its first row
            if figures[mark] is None and b[mark] is not None:
                figures[mark] = b[mark] + shift
        before += b["n"]
    shift = F.create_map(*starts)[F.col("_block")] if blocks else F.lit(0)
    return held.withColumn(ROW, F.col("_id") + shift).drop("_id", "_block"), figures


def _read_workbook(path: Path) -> pa.Table:
    from openpyxl import load_workbook

    sheet = load_workbook(path, read_only=True, data_only=True).worksheets[0]
    values = list(sheet.iter_rows(values_only=True))
    if not values:
        raise DeliveryRejected(f"{path}: empty workbook, no header row")
    header = [str(h).strip() for h in values[0]]
    body = values[1:]
    arrays = {h: pa.array([None if r[i] is None else str(r[i]) for r in body], pa.string()) for i, h in enumerate(header)}
    arrays[_BAD] = pa.nulls(len(body), pa.string())
    return pa.table(arrays)


def check_delivery(spark: SparkSession, folder: Path, extracts: dict[str, Extract]) -> list[CheckedFile]:
    """Verify every file the manifest lists for the given extracts; raise DeliveryRejected otherwise.

    `extracts` maps extract name to its adapter, for the delivering agency and the domain being run.
    Files for extracts of other domains are left for their own DAG.
    """
    manifest = read_manifest(folder)
    checked = []
    for entry in manifest["files"]:
        extract = extracts.get(entry.get("extract"))
        if extract is None:
            continue
        path = folder / entry["name"]
        where = f"{path}"
        if not path.exists():
            raise DeliveryRejected(f"{where}: listed in the manifest but not delivered")
        if entry.get("schema_version") != extract.schema_version:
            raise DeliveryRejected(
                f"{where}: schema version {entry.get('schema_version')} but the adapter "
                f"{extract.key} expects {extract.schema_version}"
            )
        digest = sha256_of(path)
        if digest != entry.get("sha256"):
            raise DeliveryRejected(f"{where}: sha256 does not match the manifest (file changed or truncated)")
        frame, rows = read_rows(spark, path, extract.file)
        if rows != entry.get("rows"):
            raise DeliveryRejected(f"{where}: {rows} data rows, the manifest says {entry.get('rows')}")
        # The manifest can describe a delivery that is whole and still wrong (a header and no rows).
        bounds = extract.rows
        if rows < bounds.min:
            raise DeliveryRejected(
                f"{where}: {rows} data rows, below the minimum of {bounds.min} (rows.min of {extract.key})"
            )
        warnings = []
        if bounds.max is not None and rows > bounds.max:
            warnings.append(f"{where}: {rows} data rows, above the maximum of {bounds.max} (rows.max of {extract.key})")
        delivered = [c for c in frame.columns if c != ROW]
        read = [m for fields in extract.mappings().values() for m in fields.values()]
        read += [extract.observed_at] if extract.observed_at is not None else []
        mapped = {c for m in read for c in [m.column, *m.also]}
        absent = sorted(mapped - set(delivered))
        if absent and rows == 0:
            # An empty JSON-lines file has no keys to name its columns: nothing is missing from it.
            frame = frame.withColumns({c: F.lit(None).cast("string") for c in absent})
            absent = []
        if absent:
            raise DeliveryRejected(f"{where}: mapped columns missing: {', '.join(absent)}")
        unknown = sorted(set(delivered) - mapped - set(extract.ignore_columns))
        checked.append(CheckedFile(extract, path, frame, rows, digest, unknown, warnings))
    return checked


def write_manifest(folder: Path, agency: str, batch: str, files: list[dict]) -> Path:
    """Write a manifest for files already in `folder`; each entry needs name, extract, schema_version.

    Used by the demo generator and by agencies' delivery tooling alike.
    """
    entries = []
    for f in files:
        path = folder / f["name"]
        entries.append({**f, "sha256": sha256_of(path)})
    manifest = {"agency": agency, "batch": batch, "files": entries}
    out = folder / MANIFEST
    out.write_text(json.dumps(manifest, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return out


def csv_bytes(header: list[str], rows: list[list[str]], encoding: str) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    text = buf.getvalue()
    if encoding.lower() in ("utf-8-sig",):
        return text.encode("utf-8-sig")
    return text.encode(encoding)
