"""Evaluation: a domain's links and golden values scored against the demo generator's truth.

`jichu generate` writes, beside every delivered row, the true entity it describes and the defects
injected into it (``truth/records/``), and every entity's true final state (e.g.
``truth/population/persons.csv``). This module turns both into figures: pairwise precision and recall
of entity resolution, accuracy of the golden values, and per defect kind the share of its records
linked to the right entity. ``conf/evaluate/<domain>.yaml`` says which extracts count, how a row naming
two persons splits, and which golden field is checked against which truth column.

The metrics are pure pandas functions on a few columns, tested on literal frames. Pair counts come
from group-by sizes, never from enumerating pairs: a million persons make ~4M records per batch.
`evaluate` is the edge: it reads the Delta tables through Spark and the truth CSVs.
The report holds counts and ratios only, never a person's data.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pandas as pd
from pydantic import Field, model_validator

from jichu.config import ConfigError, EntityType, Strict, conf_dir, load_entity, load_yaml_model

log = logging.getLogger("jichu")

DECIMALS = 6
_EXTRACT_KEY = re.compile(r"^[a-z]+__[a-z0-9_]+$")


class TablesMissing(RuntimeError):
    """The pipeline has not written the tables to evaluate yet."""


# --- configuration ----------------------------------------------------------------------------


class TruthEntities(Strict):
    file: str = Field(description="CSV under the truth folder, one row per true entity (final state)")
    id_column: str = Field(description="its column holding the entity id used in truth/records `entity`")


class TruthReference(Strict):
    """A reference scored as a metric: the published column `reference` (an entity id of `domain`) against
    the truth column naming the true entity of that domain."""

    reference: str = Field(description="the published reference column, e.g. legal_rep_person")
    domain: str = Field(description="the base database it points into")
    truth_column: str = Field(description="truth entity column with the true entity it should point to")


class EvaluationSpec(Strict):
    """What `jichu evaluate DOMAIN` compares: conf/evaluate/<domain>.yaml."""

    entity: str = Field(description="the domain's entity type scored (its links and golden tables)")
    extracts: list[str] = Field(min_length=1, description="truth record folders <agency>__<extract> that count")
    roles: dict[str, list[str]] = Field(
        default_factory=dict,
        description="extract -> roles of the persons in one row, in the order of the `+` in truth `entity`",
    )
    entities: TruthEntities
    fields: dict[str, str] = Field(min_length=1, description="golden field -> truth entity column")
    references: dict[str, TruthReference] = Field(
        default_factory=dict, description="metric name -> a reference of the published record and its truth"
    )

    @model_validator(mode="after")
    def _consistent(self) -> EvaluationSpec:
        bad = [x for x in self.extracts if not _EXTRACT_KEY.match(x)]
        if bad:
            raise ValueError(f"extracts {bad} are not <agency>__<extract> folder names")
        if len(set(self.extracts)) != len(self.extracts):
            raise ValueError("extracts are listed more than once")
        stray = sorted(set(self.roles) - set(self.extracts))
        if stray:
            raise ValueError(f"roles given for {stray}, which are not under extracts")
        for key, roles in self.roles.items():
            if len(roles) < 2 or len(set(roles)) != len(roles):
                raise ValueError(f"roles of {key} must be two or more distinct names, got {roles}")
        return self


def evaluation_path(domain: str) -> Path:
    return conf_dir() / "evaluate" / f"{domain}.yaml"


def load_evaluation(domain: str) -> EvaluationSpec:
    return load_yaml_model(evaluation_path(domain), EvaluationSpec)


# --- truth records ----------------------------------------------------------------------------


def check_truth(truth_dir: Path, spec: EvaluationSpec) -> None:
    """Fail early, naming the path, when `truth_dir` lacks the records or the entity file."""
    for path in (truth_dir / "records", truth_dir / spec.entities.file):
        if not path.exists():
            raise ConfigError(f"{path}: not found; run `jichu generate` (or `jichu demo`) first, or pass --truth")


def read_truth_records(truth_dir: Path, spec: EvaluationSpec, batches: set[str] | None = None) -> pd.DataFrame:
    """The truth rows of the spec's extracts, for `batches` (all if None): extract, batch, row, entity, defects.

    One row per delivered data row; `expand_records` splits rows naming two persons.
    """
    check_truth(truth_dir, spec)
    folder = truth_dir / "records"
    frames = []
    for key in spec.extracts:
        for path in sorted((folder / key).glob("*.csv")):
            if batches is not None and path.stem not in batches:
                continue
            # Strings throughout: row numbers are joined as text, and empty `defects` must stay "".
            frame = pd.read_csv(path, dtype=str, keep_default_na=False, usecols=["row", "entity", "defects"])
            frames.append(frame.assign(extract=key, batch=path.stem))
    columns = ["extract", "batch", "row", "entity", "defects"]
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})
    return pd.concat(frames, ignore_index=True)[columns]


def _role_defects(defects: str, role: str, roles: list[str]) -> str:
    """The labels of one person of a multi-person row: `role:label` ones of that role, unprefixed ones of all."""
    kept = []
    for label in filter(None, defects.split(";")):
        prefix, sep, rest = label.partition(":")
        if sep and prefix in roles:
            if prefix == role:
                kept.append(rest)
        else:
            kept.append(label)
    return ";".join(kept)


def expand_records(raw: pd.DataFrame, roles: dict[str, list[str]]) -> pd.DataFrame:
    """One row per source record as the pipeline names it: record_ref, extract, batch, entity, defects.

    `record_ref` is `<agency>:<extract>:<batch>:<row>`, plus `#<role>` for extracts whose rows name
    several persons (`entity` `P1+P2` in role order), each person then getting their own labels.
    """
    parts = []
    for key, frame in raw.groupby("extract", sort=True):
        agency, extract = key.split("__", 1)
        ref = agency + ":" + extract + ":" + frame["batch"] + ":" + frame["row"]
        if key not in roles:
            parts.append(pd.DataFrame({"record_ref": ref, "extract": key, "batch": frame["batch"],
                                       "entity": frame["entity"], "defects": frame["defects"]}))
            continue
        names = roles[key]
        persons = frame["entity"].str.split("+", regex=False)
        wrong = persons.str.len() != len(names)
        if wrong.any():
            raise ValueError(
                f"truth {key}: {int(wrong.sum())} rows do not name {len(names)} entities ({'+'.join(names)})"
            )
        for i, role in enumerate(names):
            parts.append(pd.DataFrame({
                "record_ref": ref + "#" + role, "extract": key, "batch": frame["batch"], "entity": persons.str[i],
                "defects": [_role_defects(d, role, names) for d in frame["defects"]],
            }))
    if not parts:
        columns = ["record_ref", "extract", "batch", "entity", "defects"]
        return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})
    return pd.concat(parts, ignore_index=True)


# --- metrics ----------------------------------------------------------------------------------


def _ratio(numerator: int, denominator: int) -> float | None:
    return round(numerator / denominator, DECIMALS) if denominator else None


def _pairs(sizes: pd.Series) -> int:
    """Σ C(n, 2) over group sizes."""
    n = sizes.to_numpy(dtype="int64")
    return int((n * (n - 1) // 2).sum())


def _majority(frame: pd.DataFrame, key: str, value: str) -> pd.Series:
    """Per `key`, the `value` most of its rows hold (ties: the smallest); rows with a null either side are ignored."""
    pairs = frame.dropna(subset=[key, value])
    # Values as integer codes in sorted order, so the smallest value is the smallest code: grouped
    # minima of strings would run in pure Python, a million groups at a time.
    codes, uniques = pd.factorize(pairs[value], sort=True)
    counts = pd.DataFrame({key: pairs[key].to_numpy(), "code": codes})
    counts = counts.groupby([key, "code"], sort=False).size().reset_index(name="n")
    top = counts[counts["n"] == counts.groupby(key, sort=False)["n"].transform("max")]
    best = top.groupby(key)["code"].min()
    return pd.Series(uniques[best.to_numpy()], index=best.index, name=value, dtype=object)


def assign_predicted(records: pd.DataFrame, links: pd.DataFrame) -> pd.DataFrame:
    """`records` with `entity_id` from `links` (record_ref, entity_id); null where unresolved or not linked."""
    linked = links.loc[links["entity_id"].notna(), ["record_ref", "entity_id"]]
    if linked["record_ref"].duplicated().any():
        # A record linked twice is a pipeline fault; count it once, deterministically.
        linked = linked.sort_values(["record_ref", "entity_id"]).drop_duplicates("record_ref")
    return records.drop(columns=["entity_id"], errors="ignore").merge(linked, on="record_ref", how="left")


def score_pairs(records: pd.DataFrame) -> dict:
    """Pairwise precision and recall of `entity_id` (predicted) against `entity` (true).

    A record without an entity_id is its own singleton: it adds no predicted pair and no true positive.
    """
    linked = records[records["entity_id"].notna()]
    true_pairs = _pairs(records.groupby("entity", sort=False).size())
    predicted_pairs = _pairs(linked.groupby("entity_id", sort=False).size())
    true_positive = _pairs(linked.groupby(["entity_id", "entity"], sort=False).size())
    precision, recall = _ratio(true_positive, predicted_pairs), _ratio(true_positive, true_pairs)
    # From the counts, not from the rounded ratios: 2PR / (P + R) = 2TP / (predicted + true).
    f1 = _ratio(2 * true_positive, predicted_pairs + true_pairs) if predicted_pairs and true_pairs else None
    return {"precision": precision, "recall": recall, "f1": f1, "true_pairs": true_pairs,
            "predicted_pairs": predicted_pairs, "true_positive_pairs": true_positive}


def score_clusters(records: pd.DataFrame) -> dict:
    """Record, person and entity counts; split and merge counts look at linked records only."""
    linked = records[records["entity_id"].notna()]
    entities_per_person = linked.groupby("entity", sort=False)["entity_id"].nunique()
    persons_per_entity = linked.groupby("entity_id", sort=False)["entity"].nunique()
    return {
        "records": len(records),
        "records_unlinked": int(records["entity_id"].isna().sum()),
        "persons_true": int(records["entity"].nunique()),
        "entities_predicted": int(linked["entity_id"].nunique()),
        "split_persons": int((entities_per_person > 1).sum()),
        "merged_entities": int((persons_per_entity > 1).sum()),
    }


def map_entities(records: pd.DataFrame) -> pd.Series:
    """entity_id -> the true entity most of its records belong to (ties: the smallest id)."""
    return _majority(records, "entity_id", "entity")


def assign_linked_correctly(records: pd.DataFrame) -> pd.Series:
    """Per record: linked to the majority entity_id of its true entity (ties: the smallest id)."""
    majority = _majority(records, "entity", "entity_id")
    expected = records["entity"].map(majority)
    same = (records["entity_id"] == expected).fillna(False)  # nullable ids compare to <NA>
    return (records["entity_id"].notna() & same).astype(bool)


def score_defects(records: pd.DataFrame, correct: pd.Series | None = None) -> dict:
    """Per defect label: how many records carry it and the share of them linked correctly.

    `correct` is `assign_linked_correctly(records)`, computed here unless the caller has it.
    """
    correct = assign_linked_correctly(records) if correct is None else correct
    has_label = records["defects"].fillna("") != ""
    labelled = pd.DataFrame({"label": records.loc[has_label, "defects"].str.split(";"), "correct": correct[has_label]})
    labelled = labelled.explode("label")
    labelled = labelled[labelled["label"].notna() & (labelled["label"] != "")]
    # A record counts once per label even if a label repeats in it.
    labelled = labelled.reset_index().drop_duplicates(["index", "label"])
    summary = labelled.groupby("label")["correct"].agg(["size", "sum"])
    return {
        str(label): {"records": int(row["size"]), "linked_correctly": _ratio(int(row["sum"]), int(row["size"]))}
        for label, row in summary.sort_index().iterrows()
    }


def _blank_to_null(values: pd.Series) -> pd.Series:
    return values.where(values.notna() & (values.astype(str) != ""), None)


def score_golden(golden: pd.DataFrame, mapping: pd.Series, truth: pd.DataFrame, fields: dict[str, str],
                 id_column: str) -> dict:
    """Accuracy of golden values (entity_id, field, value) against the truth of the entity each maps to.

    Only fields of `fields` (golden field -> truth column) present in `golden` are scored. A golden value
    where the truth is empty is wrong; a truth value without a golden value, for an entity that maps to a
    true entity, is `missing`, not counted in the accuracy. Golden entities with no linked record in the
    universe cannot be mapped and are counted apart.
    """
    present = set(golden["field"].unique())
    scored = [f for f in fields if f in present]
    mapped = mapping.rename("person").rename_axis("entity_id").reset_index()
    # The truth in long form: (person, field, truth); empty cells are nulls.
    long = pd.concat(
        [pd.DataFrame({"person": truth[id_column], "field": f, "truth": truth[fields[f]]}) for f in scored]
        or [pd.DataFrame({"person": pd.Series(dtype=object), "field": pd.Series(dtype=object),
                          "truth": pd.Series(dtype=object)})],
        ignore_index=True,
    )
    long["truth"] = _blank_to_null(long["truth"])

    values = golden.loc[golden["field"].isin(scored), ["entity_id", "field", "value"]].copy()
    values["value"] = _blank_to_null(values["value"])
    unmapped = values.loc[~values["entity_id"].isin(mapped["entity_id"]), "entity_id"].nunique()
    values = values[values["value"].notna()].merge(mapped, on="entity_id", how="inner")
    compared = values.merge(long, on=["person", "field"], how="left")
    compared["correct"] = compared["truth"].notna() & (compared["value"] == compared["truth"])

    # Expected: every mapped entity x scored field whose truth has a value.
    expected = mapped.merge(long[long["truth"].notna()], on="person", how="inner")
    missing = expected.merge(values[["entity_id", "field"]].drop_duplicates(), on=["entity_id", "field"],
                             how="left", indicator=True)
    missing = missing[missing["_merge"] == "left_only"]

    per_field, total, right = {}, 0, 0
    for f in scored:
        n = int((compared["field"] == f).sum())
        ok = int(compared.loc[compared["field"] == f, "correct"].sum())
        per_field[f] = {"compared": n, "correct": ok, "accuracy": _ratio(ok, n),
                        "missing": int((missing["field"] == f).sum())}
        total, right = total + n, right + ok
    return {"golden_accuracy": _ratio(right, total), "fields": per_field, "fields_scored": scored,
            "fields_not_scored": [f for f in fields if f not in present],
            "golden_entities_unmapped": int(unmapped)}


def score_references(published: pd.DataFrame, mapping: pd.Series, truth: pd.DataFrame, id_column: str,
                     references: dict[str, TruthReference], targets: dict[str, pd.Series]) -> dict:
    """Per metric: the share of published entities (mapped to a true entity that has a true target)
    whose reference points to the entity the truth names. `targets[domain]` maps that base database's
    entity ids to its true entities."""
    true_entity = published["entity_id"].map(mapping)
    by_id = truth.set_index(id_column)
    scores = {}
    for metric, ref in references.items():
        expected = _blank_to_null(true_entity.map(by_id[ref.truth_column]))
        found = published[ref.reference].map(targets[ref.domain])
        considered = expected.notna()
        scores[metric] = _ratio(int((found[considered] == expected[considered]).sum()), int(considered.sum()))
    return scores


def _encode(values: pd.Series) -> tuple[pd.Series, pd.Index]:
    """Nullable integer codes of a string column, in sorted order, and the strings they stand for."""
    codes, uniques = pd.factorize(values, sort=True)
    return pd.Series(codes, index=values.index).astype("Int64").mask(codes < 0), uniques


def score(domain: str, records: pd.DataFrame, links: pd.DataFrame, golden: pd.DataFrame, truth: pd.DataFrame,
          spec: EvaluationSpec, published: pd.DataFrame | None = None, targets: dict[str, pd.Series] | None = None) -> dict:
    """The whole report from frames: truth `records` (expand_records), `links` (record_ref, entity_id),
    `golden` (entity_id, field, value) and the `truth` entity table; with the spec's references, the
    `published` record (entity_id and the reference columns) and the `targets` (score_references)."""
    predicted = assign_predicted(records, links)[["batch", "entity", "entity_id", "defects"]]
    # Hash each id string once: the metrics then group integers (same order, so the same ties).
    entity, entities = _encode(predicted["entity"])
    entity_id, entity_ids = _encode(predicted["entity_id"])
    predicted = predicted.assign(entity=entity, entity_id=entity_id)
    pairs = score_pairs(predicted)
    clusters = score_clusters(predicted)
    coded = map_entities(predicted)
    mapping = pd.Series(entities[coded.to_numpy(dtype="int64")], index=entity_ids[coded.index.to_numpy(dtype="int64")])
    accuracy = score_golden(golden, mapping, truth, spec.fields, spec.entities.id_column)
    correct = assign_linked_correctly(predicted)
    referenced = {}
    if spec.references:
        referenced = score_references(published, mapping, truth, spec.entities.id_column, spec.references, targets)
    return {
        "domain": domain,
        "precision": pairs["precision"],
        "recall": pairs["recall"],
        "f1": pairs["f1"],
        "golden_accuracy": accuracy["golden_accuracy"],
        **referenced,
        "records": clusters["records"],
        "records_unlinked": clusters["records_unlinked"],
        "true_pairs": pairs["true_pairs"],
        "predicted_pairs": pairs["predicted_pairs"],
        "true_positive_pairs": pairs["true_positive_pairs"],
        "persons_true": clusters["persons_true"],
        "entities_predicted": clusters["entities_predicted"],
        "split_persons": clusters["split_persons"],
        "merged_entities": clusters["merged_entities"],
        "linked_correctly": _ratio(int(correct.sum()), len(correct)),
        "batches": sorted(predicted["batch"].unique().tolist()),
        "fields_scored": accuracy["fields_scored"],
        "fields_not_scored": accuracy["fields_not_scored"],
        "golden_entities_unmapped": accuracy["golden_entities_unmapped"],
        "fields": accuracy["fields"],
        "defects": score_defects(predicted, correct),
    }


# --- the edge: Delta tables and truth files ---------------------------------------------------


def read_truth_entities(truth_dir: Path, spec: EvaluationSpec, spec_path: Path) -> pd.DataFrame:
    check_truth(truth_dir, spec)
    path = truth_dir / spec.entities.file
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    wanted = {"entities.id_column": spec.entities.id_column, **{f"fields.{k}": v for k, v in spec.fields.items()}}
    for key, column in wanted.items():
        if column not in frame.columns:
            raise ConfigError(f"{spec_path}: key '{key}': column {column!r} is not in {path}")
    return frame


def evaluate_tables(spark, domain: EntityType, spec: EvaluationSpec, truth_dir: Path, *,
                    spec_path: Path | None = None, quarantine_table: str | None = None) -> dict:
    """Read the domain's links, quarantine and golden tables and the truth, and score them (see `score`).

    The universe is every truth record of the spec's extracts in the batches the pipeline processed
    (a batch with any link or quarantined record of the domain), except the records of a delivery
    that landing rejected whole (a file cut short in transfer): those never reached linkage, the
    agency has to deliver them again, and they are reported as `records_rejected`. A quarantined or
    unresolved record still counts, as a singleton.
    """
    from pyspark.sql import functions as F

    from jichu.core.tables import table_exists

    if quarantine_table is None:
        from jichu.pipeline import QUARANTINE as quarantine_table
    spec_path = spec_path or evaluation_path(domain.domain)
    # Every record each batch listed, a carried one as a listing of its own batch (as the truth has it).
    links_table, golden_table = domain.table("resolved", "listings"), domain.table("golden")
    absent = [t for t in (links_table, golden_table) if not table_exists(spark, t)]
    if absent:
        raise TablesMissing(f"{', '.join(absent)} not found: run the {domain.domain} DAG first "
                            f"(`jichu run {domain.domain} --batch ...` or `jichu demo`)")
    links = spark.table(links_table)
    batches = links.select("batch")
    if table_exists(spark, quarantine_table):
        batches = batches.union(spark.table(quarantine_table).where(
            (F.col("domain") == domain.domain) & (F.col("entity") == domain.entity)).select("batch"))
    processed = {r["batch"] for r in batches.distinct().collect()}

    truth = read_truth_entities(truth_dir, spec, spec_path)
    records = expand_records(read_truth_records(truth_dir, spec, processed), spec.roles)
    rejected = set()
    if table_exists(spark, "landing.deliveries"):
        rejected = {
            f"{r['agency']}__{r['extract']}|{r['batch']}"
            for r in spark.table("landing.deliveries").where((F.col("domain") == domain.domain) & (F.col("status") == "rejected")).collect()
        }
    in_rejected = (records["extract"] + "|" + records["batch"]).isin(rejected)
    records_rejected = int(in_rejected.sum())
    records = records[~in_rejected]
    linked = (
        links.where(F.concat_ws("__", "agency", "extract").isin(spec.extracts) & F.col("entity_id").isNotNull())
        .select("record_ref", "entity_id").toPandas()
    )
    golden = spark.table(golden_table).where(F.col("field").isin(list(spec.fields))) \
        .select("entity_id", "field", "value").toPandas()
    published, targets = None, {}
    if spec.references:
        published = spark.table(domain.published_table).select(
            "entity_id", *{r.reference for r in spec.references.values()}).toPandas()
        targets = {r.domain: entity_mapping(spark, r.domain, truth_dir) for r in spec.references.values()}
    report = score(domain.domain, records, linked, golden, truth, spec, published, targets)
    report["records_rejected"] = records_rejected
    log.info("%s evaluated: %d records in batches %s, precision %s, recall %s, golden accuracy %s",
             domain.domain, report["records"], ", ".join(sorted(processed)), report["precision"],
             report["recall"], report["golden_accuracy"])
    return report


def entity_mapping(spark, domain: str, truth_dir: Path) -> pd.Series:
    """A base database's entity ids -> the true entity most of their records belong to."""
    spec = load_evaluation(domain)
    links = spark.table(load_entity(domain, spec.entity).table("resolved", "listings")).where("entity_id IS NOT NULL").select("record_ref", "entity_id")
    records = expand_records(read_truth_records(truth_dir, spec), spec.roles)
    return map_entities(assign_predicted(records, links.toPandas()))


def evaluate(spark, domain: str, truth_dir: Path) -> dict:
    """`jichu evaluate DOMAIN`: the report for a domain's current tables against `truth_dir`."""
    spec = load_evaluation(domain)
    return evaluate_tables(spark, load_entity(domain, spec.entity), spec, truth_dir)
