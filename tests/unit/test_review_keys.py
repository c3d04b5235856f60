"""Review decisions are keyed by the records, not by the linkage spec, and every run keeps the spec it used.

Through the resolve stage on real Delta tables: 公安 delivers three persons with an ID number, 民政 a record
without one that is uncertain against 李红. A reviewer decides it through the CSV export; then the spec
is edited (a comparison column renamed and made otherwise, a comparison added) and the decision still
holds. An export names its entity type by its folder.
"""

import shutil
from datetime import date

import pandas as pd
import pytest
from pyspark.sql import functions as F

from jichu.config import ROOT, EntityType, load_profile
from jichu.core import tables
from jichu.core.resolve import SPECS_TABLE
from jichu.core.review import ReviewFileError, import_decisions, review_export_path, review_target
from jichu.link.spec import spec_sha256
from jichu.pipeline import Run, resolve

B1, B2, B3 = "2026-01-01", "2026-02-01", "2026-03-01"
D1, D2 = date(1990, 5, 17), date(2001, 2, 3)
PERSONS = [  # (agency, extract, id_number, name, birth_date, sex, address_code)
    ("gongan", "household", "420106199005171234", "王小明", D1, "1", "420106"),
    ("gongan", "household", "420106199005172345", "李红", D1, "2", "420106"),
    ("gongan", "household", "420111200102030011", "张伟", D2, "1", "420111"),
    ("minzheng", "marriage", None, "李虹", D1, "2", "420106"),  # no ID number: uncertain against 李红
]
UNCERTAIN = 4  # its row number
SPEC = (ROOT / "conf" / "linkage" / "population.yaml").read_text(encoding="utf-8").replace("name: population", "name: {name}")
# The name comparison renamed to `given_name`, a column made otherwise (the name without its surname).
RENAMED = SPEC.replace("  - field: name\n    scorer: jaro_winkler", "  - field: given_name\n    scorer: jaro_winkler")
# ... and then a comparison added.
ADDED = RENAMED.replace("prior: 0.02", """  - field: ethnicity
    scorer: exact
    levels:
      - {min: 1.0, m: 0.9, u: 0.1}
      - {min: 0.0, m: 0.1, u: 0.9}
prior: 0.02""")


@pytest.fixture
def conf(tmp_path, monkeypatch):
    """A copy of conf/ whose linkage specs the test edits (`write(name, text)`)."""
    folder = tmp_path / "conf"
    shutil.copytree(ROOT / "conf", folder)
    monkeypatch.setenv("JICHU_CONF", str(folder))

    def write(name: str, text: str) -> str:
        (folder / "linkage" / f"{name}.yaml").write_text(text.replace("{name}", name), encoding="utf-8")
        return spec_sha256(text.replace("{name}", name))

    return write


def _domain(population, name: str) -> EntityType:
    return EntityType.model_validate({**population.model_dump(), "domain": name, "linkage": name})


def _deliver(spark, domain: EntityType, batch: str) -> None:
    """The batch's standardized records, as the standardize stage writes them (each batch re-delivers them)."""
    dates = {n for n, f in domain.fields.items() if f.type == "date"}
    schema = ", ".join(["record_ref string", "agency string", "extract string", "batch string", "file string", "row int",
                        *[f"{n} {'date' if n in dates else 'string'}" for n in domain.fields],
                        "id_number_candidate string", "given_name string", "observed_at date",
                        "original map<string,string>", "record_id string"])
    rows = []
    for row, (agency, extract, id_number, name, birth, sex, county) in enumerate(PERSONS, 1):
        values = {"id_number": id_number, "name": name, "birth_date": birth, "sex": sex, "address_code": county}
        original = {k: str(v) for k, v in values.items() if v is not None}
        rows.append((f"{agency}:{extract}:{batch}:{row}", agency, extract, batch, f"{extract}.csv", row,
                     *[values.get(n) for n in domain.fields], None, name[1:], date.fromisoformat(batch), original,
                     f"{agency}:{extract}:{row}"))  # the agency's record, the same in every batch
    tables.replace_slice(spark.createDataFrame(rows, schema), domain.table("standardized"), {"batch": batch})


def _drop(spark, name: str) -> None:
    for table in ["standardized.{}__person", "resolved.{}__person_keys", "resolved.{}__person_links",
                  "resolved.{}__person_profiles", "resolved.{}__person_id_changes", "statements.{}__person",
                  "review.{}__person_queue", "review.{}__person_decisions"]:
        spark.sql(f"DROP TABLE IF EXISTS {table.format(name)}")
    spark.sql(f"DROP VIEW IF EXISTS resolved.{name}__person_listings")


def _resolve(spark, domain: EntityType, batch: str) -> dict:
    _deliver(spark, domain, batch)
    return resolve(Run(spark, load_profile(), domain, batch, None))


def _link(spark, domain: EntityType, batch: str, row: int):
    return spark.table(domain.table("resolved", "links")).where(
        (F.col("batch") == batch) & (F.col("row") == row)).first()


def _entity_of(spark, domain: EntityType, batch: str, row: int) -> str:
    return _link(spark, domain, batch, row)["entity_id"]


def _queued(spark, domain: EntityType, batch: str) -> list:
    return tables.read_slice(spark, domain.table("review", "queue"), {"batch": batch}).collect()


def _saved(spark, sha: str) -> list:
    return spark.table(SPECS_TABLE).where(F.col("sha256") == sha).collect()


def _decide(spark, domain: EntityType, batch: str, decision: str) -> None:
    """A reviewer fills in the batch's CSV export and imports it (`jichu review import FILE`)."""
    export = review_export_path(domain, batch)
    rows = pd.read_csv(export, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    rows["decision"] = decision
    rows.to_csv(export, index=False, encoding="utf-8-sig")
    assert import_decisions(spark, domain, export) == len(rows)


@pytest.mark.slow  # three resolve runs of the whole batch: minutes of Delta commits (make test-slow)
def test_an_edited_spec_keeps_the_review_decisions_and_every_spec_is_saved(spark, population, conf):
    name = "rk_edited"
    domain = _domain(population, name)
    _drop(spark, name)
    first_hash = conf(name, SPEC)

    figures = _resolve(spark, domain, B1)
    [pair] = _queued(spark, domain, B1)
    li_hong, stranger = _entity_of(spark, domain, B1, 2), _entity_of(spark, domain, B1, UNCERTAIN)
    assert pair["entity_id"] == li_hong != stranger and pair["record_key"] and pair["spec_sha256"] == first_hash
    assert figures["linkage_spec"] == {"name": name, "sha256": first_hash}
    assert _link(spark, domain, B1, UNCERTAIN)["spec_sha256"] == first_hash  # the result names its spec
    assert _link(spark, domain, B1, 2)["spec_sha256"] is None  # linked by its ID number, not by the spec
    _resolve(spark, domain, B1)  # a rerun of the batch saves its spec once
    [saved] = _saved(spark, first_hash)
    assert spec_sha256(saved["text"]) == first_hash and saved["name"] == name
    _decide(spark, domain, B1, "match")

    # A comparison renamed (and made otherwise); 民政 delivers the same record again in the next batch.
    renamed_hash = conf(name, RENAMED)
    assert renamed_hash != first_hash
    for _ in range(2):  # the batch and its rerun
        figures = _resolve(spark, domain, B2)
        assert figures["linkage_spec"]["sha256"] == renamed_hash
        link = _link(spark, domain, B2, UNCERTAIN)
        assert (link["entity_id"], link["method"], link["spec_sha256"]) == (li_hong, "review:match", renamed_hash)
        assert _queued(spark, domain, B2) == []  # the decided pair is not queued again
        [change] = spark.table(domain.table("resolved", "id_changes")).where(F.col("batch") == B2).collect()
        assert (change["kind"], change["from_entity"], change["to_entity"]) == ("merge", stranger, li_hong)
    assert len(_saved(spark, renamed_hash)) == 1 and len(_saved(spark, first_hash)) == 1

    # A comparison added.
    added_hash = conf(name, ADDED)
    _resolve(spark, domain, B3)
    link = _link(spark, domain, B3, UNCERTAIN)
    assert (link["entity_id"], link["method"], link["spec_sha256"]) == (li_hong, "review:match", added_hash)
    assert _queued(spark, domain, B3) == []
    assert {r["sha256"] for r in spark.table(SPECS_TABLE).where(F.col("name") == name).collect()} == {
        first_hash, renamed_hash, added_hash}


def test_a_review_file_names_its_entity_type_by_its_folder_and_is_checked_row_by_row(spark, tmp_path, population):
    """`jichu review import FILE` needs nothing but the file: the export's folder names the domain and
    entity type (var/review/<domain>/<entity>/<batch>.csv). A file elsewhere, or a bad row, is refused."""
    assert review_target(review_export_path(population, B1)) == population
    with pytest.raises(ReviewFileError, match="not in a folder <domain>/<entity>/"):
        review_target(tmp_path / "population" / f"{B1}.csv")
    name = "rk_file"
    domain = _domain(population, name)
    _drop(spark, name)
    tables.overwrite(spark.createDataFrame([("A1", B1, "r1", "P1", "K1")],
                                           "pair_id string, batch string, record_ref string, entity_id string, record_key string"),
                     domain.table("review", "queue"))
    path = tmp_path / f"{B1}.csv"
    path.write_text("pair_id,record_ref,entity_id,decision\nA1,r1,P1,match\n", encoding="utf-8-sig")
    assert import_decisions(spark, domain, path) == 1
    assert [(r["pair_id"], r["decision"], r["record_key"]) for r in spark.table(domain.table("review", "decisions")).collect()] == [
        ("A1", "match", "K1")]
    path.write_text("pair_id,record_ref,entity_id,decision\nA1,r1,P1,yes\n", encoding="utf-8-sig")
    with pytest.raises(ReviewFileError, match=f"{path}: row 1 column decision"):
        import_decisions(spark, domain, path)
