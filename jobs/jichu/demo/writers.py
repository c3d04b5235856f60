"""Streaming writers for the demo province: delivered files, their manifests, and the truth beside them.

Every delivered row is written together with its truth row (same row number), so the truth can never
drift from the extract. Files are written row by row, never held in memory, and are byte-identical for
the same content: XLSX workbooks carry a fixed creation time, CSV lines end in CRLF as agencies'
Windows exports do, JSON lines keep key order.

Truth layout (documented in docs/demo-province.md):

- ``truth/records/<agency>__<extract>/<batch>.csv``: one row per delivered data row:
  ``row, entity, defects, true_<field>...`` (``defects`` is a ';'-separated list of kinds).
- ``truth/files.csv``: file-level defects (re-delivered and truncated files).
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from jichu.core.landing import write_manifest

# A fixed workbook creation time: XlsxWriter stamps it into docProps and every zip entry.
_XLSX_CREATED = dt.datetime(2026, 1, 1)
XLSX_MAX_ROWS = 1_048_576  # rows of one worksheet, header included


def rng_for(seed: int, *keys: object) -> np.random.Generator:
    """An independent random stream per (seed, keys): partitions and extracts never share draws.

    crc32 rather than hash(): Python salts string hashes per process, which would break determinism.
    """
    words = [seed] + [zlib.crc32(str(k).encode("utf-8")) for k in keys]
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(words)))


@dataclass
class ExtractSpec:
    """How one agency extract is delivered: file name, format, encoding, columns, truth fields."""

    agency: str
    extract: str
    domain: str
    filename: str
    format: str  # csv | jsonl | xlsx | geojson
    encoding: str  # gb18030 | utf-8-sig | utf-8
    columns: list[str]
    truth_fields: list[str]
    cadence: str = "monthly"  # monthly | quarterly | semester | annual: see Calendar.delivers
    kind: str = "snapshot"  # snapshot (state at the batch date) | events (since the previous delivery)
    schema_version: int = 1

    @property
    def key(self) -> str:
        return f"{self.agency}__{self.extract}"


class _FileWriter:
    def __init__(self, path: Path, spec: ExtractSpec):
        self.path, self.spec = path, spec
        if spec.format == "xlsx":
            import xlsxwriter

            # constant_memory streams each row to disk as written: bounded memory for any size.
            self.book = xlsxwriter.Workbook(str(path), {"constant_memory": True, "strings_to_numbers": False})
            self.book.set_properties({"created": _XLSX_CREATED})
            self.sheet = self.book.add_worksheet("Sheet1")
            self.sheet.write_row(0, 0, spec.columns)
            self.fh = None
        else:
            self.fh = path.open("w", encoding=spec.encoding, newline="")
            if spec.format == "geojson":
                # One FeatureCollection in CGCS2000 longitude/latitude, as 测绘 delivers boundaries.
                self.fh.write('{"type":"FeatureCollection","crs":{"type":"name","properties":'
                              '{"name":"urn:ogc:def:crs:EPSG::4490"}},"features":[\n')
            if spec.format == "csv":
                self.csv = csv.writer(self.fh, lineterminator="\r\n")
                self.csv.writerow(spec.columns)
        self.rows = 0

    def write(self, values: list) -> None:
        self.rows += 1
        if self.spec.format == "xlsx" and self.rows >= XLSX_MAX_ROWS:
            raise ValueError(f"{self.path}: more than {XLSX_MAX_ROWS - 1} data rows do not fit one worksheet")
        if self.spec.format == "csv":
            self.csv.writerow(["" if v is None else v for v in values])
        elif self.spec.format == "jsonl":
            record = {c: v for c, v in zip(self.spec.columns, values) if v is not None}
            self.fh.write(json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n")
        elif self.spec.format == "geojson":
            # The last column is the geometry; the others become properties.
            *props, geometry = values
            feature = {"type": "Feature", "properties": dict(zip(self.spec.columns, props)), "geometry": geometry}
            sep = "" if self.rows == 1 else ",\n"
            self.fh.write(sep + json.dumps(feature, ensure_ascii=False, separators=(",", ":")))
        else:
            # Every cell is written as text (leading zeros of codes survive), as agencies' exports do.
            self.sheet.write_row(self.rows, 0, ["" if v is None else str(v) for v in values])

    def close(self) -> None:
        if self.fh is not None:
            if self.spec.format == "geojson":
                self.fh.write("\n]}\n")
            self.fh.close()
        else:
            self.book.close()


@dataclass
class _Open:
    spec: ExtractSpec
    batch: str
    file: _FileWriter
    truth: object  # text file handle
    truth_csv: object


@dataclass
class Landing:
    """All deliveries of one generation run: open files per (extract, batch), closed into manifests."""

    out: Path
    opened: dict[tuple[str, str], _Open] = field(default_factory=dict)
    delivered: dict[tuple[str, str], list[dict]] = field(default_factory=dict)  # (agency, batch) -> files
    file_defects: list[list[str]] = field(default_factory=list)

    def writer(self, spec: ExtractSpec, batch: str) -> "RecordWriter":
        key = (spec.key, batch)
        if key not in self.opened:
            folder = self.out / "landing" / spec.agency / batch
            folder.mkdir(parents=True, exist_ok=True)
            truth_dir = self.out / "truth" / "records" / spec.key
            truth_dir.mkdir(parents=True, exist_ok=True)
            fh = (truth_dir / f"{batch}.csv").open("w", encoding="utf-8", newline="")
            tw = csv.writer(fh, lineterminator="\n")
            tw.writerow(["row", "entity", "defects"] + [f"true_{f}" for f in spec.truth_fields])
            self.opened[key] = _Open(spec, batch, _FileWriter(folder / spec.filename, spec), fh, tw)
        return RecordWriter(self.opened[key])

    def close(self) -> None:
        """Close every file, then write one manifest per agency and batch."""
        for o in self.opened.values():
            o.file.close()
            o.truth.close()
            self.delivered.setdefault((o.spec.agency, o.batch), []).append(
                {"name": o.spec.filename, "extract": o.spec.extract, "schema_version": o.spec.schema_version,
                 "rows": o.file.rows}
            )
        for (agency, batch), files in sorted(self.delivered.items()):
            write_manifest(self.out / "landing" / agency / batch, agency, batch, sorted(files, key=lambda f: f["name"]))
        self.opened.clear()

    def files(self) -> list[tuple[str, str, dict]]:
        return [(a, b, f) for (a, b), fs in sorted(self.delivered.items()) for f in fs]


class RecordWriter:
    """Writes one delivered row and its truth row under the same row number."""

    def __init__(self, opened: _Open):
        self._o = opened

    def write(self, values: list, entity: str, defects: list[str], truth: dict[str, object]) -> None:
        o = self._o
        o.file.write(values)
        o.truth_csv.writerow(
            [o.file.rows, entity, ";".join(defects)] + ["" if truth.get(f) is None else truth[f] for f in o.spec.truth_fields]
        )
