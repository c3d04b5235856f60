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
from pathlib import Path

import pyarrow as pa

from jichu.config import Extract, FileSpec

MANIFEST = "manifest.json"
ROW = "_row"


class DeliveryRejected(Exception):
    """The delivery does not match its manifest; the message says which file and why."""


@dataclass
class CheckedFile:
    extract: Extract
    path: Path
    table: pa.Table
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


def read_rows(path: Path, spec: FileSpec) -> pa.Table:
    """Parse one delivered file into a table of strings, plus `_row` (1-based data row number).

    Values stay exactly as delivered (typing happens in standardization), so nothing is lost here.
    """
    try:
        return _read_rows(path, spec)
    except UnicodeDecodeError as e:
        raise DeliveryRejected(
            f"{path}: not valid {spec.encoding} text ({e.reason} at byte {e.start} of a read block); "
            "wrong encoding declared, or the file was cut short"
        ) from None
    except (OSError, ValueError, zipfile.BadZipFile, KeyError) as e:  # e.g. a workbook cut short
        # Only the kind of error: a parser's message may quote the cell it choked on (personal data).
        raise DeliveryRejected(f"{path}: cannot be read as {spec.format} ({type(e).__name__})") from None


def _read_rows(path: Path, spec: FileSpec) -> pa.Table:
    if spec.format == "csv":
        # utf-8-sig strips the BOM that some agencies' Excel exports put in front of the header.
        encoding = "utf-8-sig" if spec.encoding.lower().replace("_", "-") in ("utf-8", "utf8") else spec.encoding
        with path.open("r", encoding=encoding, newline="") as fh:
            reader = csv.reader(fh, delimiter=spec.delimiter)
            header = next(reader, None)
            if header is None:
                raise DeliveryRejected(f"{path}: empty file, no header row")
            rows = list(reader)
        header = [h.strip() for h in header]
        for number, row in enumerate(rows, start=1):
            if len(row) != len(header):
                raise DeliveryRejected(
                    f"{path}: row {number} has {len(row)} fields, the header has {len(header)}"
                )
        columns = {name: [r[i] for r in rows] for i, name in enumerate(header)}
    elif spec.format == "jsonl":
        records = []
        with path.open("r", encoding=spec.encoding) as fh:
            for number, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError as e:
                    raise DeliveryRejected(f"{path}: row {number} is not valid JSON ({e.msg})") from None
        header = list(dict.fromkeys(k for r in records for k in r))
        columns = {k: [None if r.get(k) is None else str(r[k]) for r in records] for k in header}
    else:  # xlsx
        from openpyxl import load_workbook

        sheet = load_workbook(path, read_only=True, data_only=True).worksheets[0]
        values = list(sheet.iter_rows(values_only=True))
        if not values:
            raise DeliveryRejected(f"{path}: empty workbook, no header row")
        header = [str(h).strip() for h in values[0]]
        body = values[1:]
        columns = {h: [None if r[i] is None else str(r[i]) for r in body] for i, h in enumerate(header)}
    n = len(next(iter(columns.values()))) if columns else 0
    arrays = {name: pa.array(values, pa.string()) for name, values in columns.items()}
    arrays[ROW] = pa.array(range(1, n + 1), pa.int64())
    return pa.table(arrays)


def check_delivery(folder: Path, extracts: dict[str, Extract]) -> list[CheckedFile]:
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
        table = read_rows(path, extract.file)
        if table.num_rows != entry.get("rows"):
            raise DeliveryRejected(f"{where}: {table.num_rows} data rows, the manifest says {entry.get('rows')}")
        # The manifest can describe a delivery that is whole and still wrong (a header and no rows).
        bounds = extract.rows
        if table.num_rows < bounds.min:
            raise DeliveryRejected(
                f"{where}: {table.num_rows} data rows, below the minimum of {bounds.min} (rows.min of {extract.key})"
            )
        warnings = []
        if bounds.max is not None and table.num_rows > bounds.max:
            warnings.append(f"{where}: {table.num_rows} data rows, above the maximum of {bounds.max} (rows.max of {extract.key})")
        delivered = [c for c in table.column_names if c != ROW]
        read = [m for fields in extract.mappings().values() for m in fields.values()]
        read += [extract.observed_at] if extract.observed_at is not None else []
        mapped = {c for m in read for c in [m.column, *m.also]}
        absent = sorted(mapped - set(delivered))
        if absent and table.num_rows == 0:
            # An empty JSON-lines file has no keys to name its columns: nothing is missing from it.
            for column in absent:
                table = table.append_column(column, pa.array([], pa.string()))
            absent = []
        if absent:
            raise DeliveryRejected(f"{where}: mapped columns missing: {', '.join(absent)}")
        unknown = sorted(set(delivered) - mapped - set(extract.ignore_columns))
        checked.append(CheckedFile(extract, path, table, digest, unknown, warnings))
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
