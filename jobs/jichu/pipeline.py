"""The pipeline stages, one Spark job each, for any domain and one batch date.

Each stage reads its inputs, calls pure transforms from `jichu.core`, writes Delta tables through
`jichu.core.tables`, and records its figures for the run summary. Every stage is idempotent for
its batch: a rerun replaces what the previous run of that batch wrote.

    landing -> staging -> standardized (+ quarantine) -> resolved -> statements
            -> golden -> verified -> (gate) -> published
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import defaultdict
from dataclasses import dataclass
from functools import reduce
from pathlib import Path

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from jichu.config import ROOT, EntityType, Profile, conf_dir, load_domain, load_entity, load_extracts
from jichu.core import masking, tables
from jichu.core.authority import (
    GOLDEN_COLUMNS, HISTORY_COLUMNS, assign_history, assign_published_record, authority_rules,
    select_golden,
)
from jichu.core.landing import ROW, DeliveryRejected, check_delivery, landing_folder
from jichu.core.resolve import (
    KEYS_SCHEMA, RECORD_KEY, assign_keys, assign_profile_values, assign_record_key, link_by_keys,
    link_without_key, pair_id, saved_spec,
)
from jichu.core.review import DECISIONS_SCHEMA, review_export_path
from jichu.reconcile.routing import ANSWERS_SCHEMA, ANSWERS_TABLE, disputes, escalate
from jichu.core.runs import STAGE_ORDER, RunRecorder
from jichu.core.snapshots import (
    IDENTITY, LINK_COLUMNS, RETRACTED_SCHEMA, UNCHANGED_SCHEMA, assign_row_identity, listings_query, mark_unchanged, retracted_records,
    unchanged_rows,
)
from jichu.core.standardize import LINEAGE, assign_standard_fields, count_issues, split_quarantine
from jichu.core.statements import STATEMENT_SCHEMA, new_statements, unpivot_statements
from jichu.core.verify import (
    ACTIVE, DISCREPANCY_SCHEMA, RULE_VALUE_MISMATCH, entity_rules, evidence_of, evolve_discrepancies, find_discrepancies,
    suspected_source_errors, value_mismatches,
)

log = logging.getLogger("jichu")

DELIVERIES = "landing.deliveries"
QUARANTINE = "standardized.quarantine"
ISSUES = "standardized.issues"
DISCREPANCIES = "verified.discrepancies"
ERRORS_LOGGED_PER_EXTRACT = 20


class GateFailed(RuntimeError):
    """The candidate failed a critical expectation; the published table was left as it was."""


@dataclass
class Run:
    spark: SparkSession
    profile: Profile
    entity: EntityType
    batch: str
    recorder: RunRecorder

    def table(self, layer: str, part: str = "") -> str:
        """One of the entity type's own tables (EntityType.table)."""
        return self.entity.table(layer, part)

    @property
    def mine(self) -> dict[str, str]:
        """The entity type's slice of the tables all base databases share (deliveries, quarantine, issues,
        discrepancies), each partitioned by domain."""
        return {"domain": self.entity.domain, "entity": self.entity.entity}


# --- landing -> staging -----------------------------------------------------------------------


def ingest(run: Run) -> dict:
    """Check each agency's delivery for the batch against its manifest and stage every row; a rejected
    delivery leaves none of the batch's rows in staging, not even an earlier run's."""
    by_agency = defaultdict(dict)
    for ex in load_extracts(run.entity.domain, run.entity.entity):
        by_agency[ex.agency][ex.extract] = ex
    deliveries, staged, warnings = [], {}, []
    for agency, extracts in sorted(by_agency.items()):
        folder = landing_folder(Path(run.profile.landing), agency, run.batch)
        if not folder.exists():
            log.info("%s %s: no delivery for batch %s", run.entity.domain, agency, run.batch)
            continue
        try:
            checked = check_delivery(run.spark, folder, extracts)
        except DeliveryRejected as e:
            log.error("delivery rejected whole: %s", e)
            deliveries += [(agency, x, "rejected", str(e), None, None, []) for x in sorted(extracts)]
            for ex in extracts.values():
                _clear_staged(run, ex.key)
            continue
        for cf in checked:
            ex = cf.extract
            df = cf.frame.select(
                F.concat_ws(":", F.lit(ex.agency), F.lit(ex.extract), F.lit(run.batch), F.col(ROW)).alias("_record_ref"),
                F.lit(ex.agency).alias("_agency"),
                F.lit(ex.extract).alias("_extract"),
                F.lit(run.batch).alias("_batch"),
                F.lit(cf.path.name).alias("_file"),
                F.col(ROW),
                *[F.col(f"`{c}`") for c in cf.frame.columns if c != ROW],
            )
            tables.replace_slice(df, f"staging.{ex.key}", {"_batch": run.batch}, properties=tables.AS_DELIVERED)
            staged[ex.key] = cf.rows
            if cf.unknown_columns:
                log.warning("%s: columns not in adapter %s (kept in staging): %s", cf.path, ex.key, ", ".join(cf.unknown_columns))
            for warning in cf.warnings:
                log.warning("delivery accepted with a warning: %s", warning)
                warnings.append({"agency": agency, "extract": ex.extract, "warning": warning})
            deliveries.append((agency, ex.extract, "accepted", "", cf.rows, cf.sha256, cf.unknown_columns))
            log.info("%s: %d rows staged into staging.%s", cf.path, cf.rows, ex.key)
    schema = "agency string, extract string, status string, reason string, rows long, sha256 string, unknown_columns array<string>"
    frame = run.spark.createDataFrame(deliveries, schema).select(
        *[F.lit(v).alias(k) for k, v in run.mine.items()], F.lit(run.batch).alias("batch"), "*",
        F.lit(run.recorder.run_id).alias("run_id"), F.current_timestamp().alias("checked_at"),
    )
    tables.replace_slice(frame, DELIVERIES, {**run.mine, "batch": run.batch})
    rejected = [{"agency": d[0], "extract": d[1], "reason": d[3]} for d in deliveries if d[2] == "rejected"]
    return {"staged": staged, "rejected": rejected, "warnings": warnings}


def _clear_staged(run: Run, key: str) -> None:
    """Remove what an earlier run of the batch staged for an extract whose delivery is rejected now:
    standardize builds the batch from staging, and must not build it from the attempt this one replaced."""
    name = f"staging.{key}"
    if tables.table_exists(run.spark, name):
        tables.replace_slice(run.spark.table(name).where(F.lit(False)), name, {"_batch": run.batch})


# --- staging -> standardized + quarantine -----------------------------------------------------


def standardize(run: Run) -> dict:
    """Type and validate each staged row; rows that fail a required field go to quarantine.

    A row identical to one of the agency's previous delivery of the extract that was standardized
    there (or carried) is carried as unchanged (a snapshot's record listed again, or an event
    delivered twice) (`standardized.<domain>__<entity>_unchanged`), not standardized
    again; the records the previous snapshot listed and this one does not are retracted
    (`standardized.<domain>__<entity>_retracted`, applied to the statements by `resolve`). See
    `jichu.core.snapshots`.

    All extracts of the batch are standardized together and written once per table: Delta writes,
    not the transforms, are what costs at this size.
    """
    staged, typed, unchanged, retracted = {}, [], [], []
    records_table, unchanged_table = run.table("standardized"), run.table("standardized", "unchanged")
    for ex in load_extracts(run.entity.domain, run.entity.entity):
        source = f"staging.{ex.key}"
        if not tables.table_exists(run.spark, source):
            continue
        rows = assign_row_identity(run.spark.table(source).where(F.col("_batch") == run.batch), ex, run.entity)
        staged[ex.key] = rows
        before = _previous_delivery(run, ex)
        if before is not None:
            listed, standardized_before = before
            rows = mark_unchanged(rows, standardized_before).localCheckpoint()
            unchanged.append(unchanged_rows(rows))
            # Events never retract. An empty snapshot retracts nothing: it is a failed export more
            # likely than a register emptied.
            if ex.kind == "snapshot" and not rows.isEmpty():
                retracted.append(retracted_records(listed, rows, run.batch))
            rows = rows.where(F.col("_carried_from").isNull())
        identity = rows.select(F.col("_record_ref").alias("_staged_ref"), *[F.col(f"_{c}").alias(c) for c in IDENTITY])
        records = assign_standard_fields(rows, ex, run.entity)
        typed.append(records.withColumn("_staged_ref", F.regexp_replace("record_ref", "#[^#]*$", ""))
                     .join(identity, "_staged_ref").drop("_staged_ref"))
    if not typed:
        return {"accounting": [], "quarantine_reasons": {}, "issues": {}}
    everything = typed[0]
    for frame in typed[1:]:
        everything = everything.unionByName(frame)
    everything = everything.localCheckpoint()  # validated once (the ID check is a Python UDF), written twice
    good, bad = split_quarantine(everything, run.entity)
    slice_ = {"batch": run.batch}
    tables.replace_slice(good, records_table, slice_)
    tables.replace_slice(bad.withColumn("run_id", F.lit(run.recorder.run_id)), QUARANTINE, {**run.mine, **slice_})
    carried = reduce(DataFrame.unionByName, unchanged, run.spark.createDataFrame([], UNCHANGED_SCHEMA))
    tables.replace_slice(carried, unchanged_table, slice_)
    gone = reduce(DataFrame.unionByName, retracted, run.spark.createDataFrame([], RETRACTED_SCHEMA))
    tables.replace_slice(gone, run.table("standardized", "retracted"), slice_)
    # Values that failed an optional field's check (unknown codes, invalid ID numbers) stay with
    # their record as null; their counts per file, field and reason are a table and a log line.
    counted = count_issues(run.spark.table(records_table).where(F.col("batch") == run.batch))
    tables.replace_slice(
        counted.withColumns({**{k: F.lit(v) for k, v in run.mine.items()}, "run_id": F.lit(run.recorder.run_id)}),
        ISSUES, {**run.mine, **slice_},
    )
    issues = {}
    for row in counted.orderBy("file", "field", "column", "code").collect():
        # Keyed by column too: two columns feed one field (a couple's ID numbers), each with its count.
        issues[f"{row['agency']}/{row['file']}:{row['field']}({row['column']}):{row['code']}"] = row["count"]
        log.warning("%s/%s batch %s: %d values of %s (column %s) failed: %s", row["agency"], row["file"], run.batch,
                    row["count"], row["field"], row["column"], row["code"])
    quarantined = tables.read_slice(run.spark, QUARANTINE, {**run.mine, **slice_})
    reasons = {r["reason"]: r["count"] for r in quarantined.groupBy("reason").count().collect()}
    _log_quarantined(quarantined)
    n_std = _count_by_extract(run.spark.table(records_table).where(F.col("batch") == run.batch))
    n_q = _count_by_extract(quarantined)
    n_same = _count_by_extract(tables.read_slice(run.spark, unchanged_table, slice_))
    n_gone = _count_by_extract(tables.read_slice(run.spark, run.table("standardized", "retracted"), slice_))
    accounting = []
    for ex in load_extracts(run.entity.domain, run.entity.entity):
        if ex.key not in staged:
            continue
        # A row describing several persons (e.g. husband and wife) is one record per role.
        roles = len(ex.mappings())
        expected = staged[ex.key].count() * roles
        good_n, bad_n, same_n = n_std.get(ex.key, 0), n_q.get(ex.key, 0), n_same.get(ex.key, 0) * roles
        balanced = expected == good_n + bad_n + same_n
        accounting.append({"extract": ex.key, "batch": run.batch, "records": expected, "standardized": good_n,
                           "quarantined": bad_n, "unchanged": same_n, "retracted": n_gone.get(ex.key, 0),
                           "balanced": balanced})
        if not balanced:
            raise RuntimeError(
                f"row accounting broken for {ex.key} {run.batch}: {expected} != {good_n} + {bad_n} + {same_n}")
    return {"accounting": accounting, "quarantine_reasons": reasons, "issues": issues}


def _previous_delivery(run: Run, ex) -> tuple[DataFrame, DataFrame] | None:
    """The agency's previous delivery of an extract (the latest batch before this one whose delivery
    was accepted, as landing.deliveries records it: staging holds the same batches, and this costs no
    scan of it): the records it listed (agency, extract, record_id), and those it standardized or carried
    whose row was not quarantined (record_ref, batch, row_hash). None before the first delivery, or
    where that batch was never standardized."""
    if not tables.table_exists(run.spark, DELIVERIES):
        return None
    last = tables.read_slice(run.spark, DELIVERIES, run.mine).where(
        (F.col("agency") == ex.agency) & (F.col("extract") == ex.extract) & (F.col("status") == "accepted")
        & (F.col("batch") < run.batch)).agg(F.max("batch")).first()[0]
    names = [run.table("standardized"), run.table("standardized", "unchanged")]
    if last is None or not all(tables.table_exists(run.spark, n) for n in [*names, QUARANTINE]):
        return None

    def of(frame: DataFrame) -> DataFrame:
        return frame.where((F.col("batch") == last) & (F.col("agency") == ex.agency) & (F.col("extract") == ex.extract))
    frames = [run.spark.table(n) for n in names] + [tables.read_slice(run.spark, QUARANTINE, run.mine)]
    if any(c not in f.columns for f in frames for c in IDENTITY):  # standardized before rows were hashed
        return None
    # A carried record stands for the row it was carried from: the one that was standardized and linked.
    kept = of(frames[0]).select("agency", "extract", "record_ref", "batch", *IDENTITY).unionByName(
        of(frames[1]).select("agency", "extract", F.col("carried_from").alias("record_ref"),
                             F.col("carried_batch").alias("batch"), *IDENTITY))
    quarantined = of(frames[2])
    listed = kept.select("agency", "extract", "record_id").unionByName(quarantined.select("agency", "extract", "record_id"))
    return listed, kept.join(quarantined.select("row_hash"), "row_hash", "left_anti")


def _count_by_extract(df: DataFrame) -> dict[str, int]:
    return {f"{r['agency']}__{r['extract']}": r["count"] for r in df.groupBy("agency", "extract").count().collect()}


def _log_quarantined(quarantined: DataFrame) -> None:
    """Name file, row and field of each rejected value (never the value: it may be personal data)."""
    rows = (
        quarantined.select("file", "row", F.explode("errors").alias("e"))
        .orderBy("file", "row").limit(ERRORS_LOGGED_PER_EXTRACT + 1).collect()
    )
    for r in rows[:ERRORS_LOGGED_PER_EXTRACT]:
        log.warning("quarantined: %s row %d field %s (column %s): %s", r["file"], r["row"], r["e"]["field"], r["e"]["column"], r["e"]["code"])
    if len(rows) > ERRORS_LOGGED_PER_EXTRACT:
        log.warning("... more quarantined rows in %s; query %s", rows[0]["file"], QUARANTINE)


# --- standardized -> resolved -> statements ---------------------------------------------------


def resolve(run: Run) -> dict:
    """Link each record of the batch to a stable entity id and write its statements.

    Records with a deterministic key (a valid ID number) take the key's entity; the rest are
    matched by the domain's linkage spec against the known entities' profiles, with the uncertain
    pairs queued for clerical review and reviewers' earlier decisions applied.
    """
    records = run.spark.table(run.table("standardized")).where(F.col("batch") == run.batch)
    keyed = assign_keys(records, run.entity).localCheckpoint()
    registry_name = run.table("resolved", "keys")
    known = tables.read_or_empty(run.spark, registry_name, KEYS_SCHEMA)
    key_links, fresh = link_by_keys(keyed, known.where(F.col("key_field").isin(*run.entity.key_names)), run.entity, run.profile.id_salt, run.batch)
    _upsert_keys(run, fresh, update=False)
    registry = run.spark.table(registry_name)
    with_key = keyed.join(key_links, "record_ref")
    linked = with_key.withColumns({"probability": F.lit(None).cast("double"), "spec_sha256": F.lit(None).cast("string")})
    figures = {}
    if run.entity.linkage:
        spec, spec_hash = saved_spec(run.spark, conf_dir() / "linkage" / f"{run.entity.linkage}.yaml")
        figures["linkage_spec"] = {"name": spec.name, "sha256": spec_hash}
        profiles = _update_profiles(run, with_key, spec)
        without = assign_record_key(keyed.where(F.col("key_value").isNull())).localCheckpoint()
        decisions = tables.read_or_empty(run.spark, run.table("review", "decisions"), DECISIONS_SCHEMA)
        result = link_without_key(without, profiles, registry, decisions, spec, run.entity, run.profile.id_salt, run.batch)
        links = result["links"].localCheckpoint()
        changes = result["changes"].localCheckpoint(eager=True)  # against the registry before this batch's upsert
        _upsert_keys(run, result["registry"], update=True)
        _record_id_changes(run, changes, without.join(links, "record_ref"))
        figures.update(_queue_for_review(run, result["review"], spec, spec_hash))
        linked = linked.unionByName(
            without.join(links, "record_ref").withColumns({"key_field": F.lit(RECORD_KEY), "spec_sha256": F.lit(spec_hash)}),
            allowMissingColumns=True,
        )
        figures["methods"] = {r["method"]: r["count"] for r in links.groupBy("method").count().collect()}
        figures["id_changes"] = {
            r["kind"]: r["count"]
            for r in tables.read_slice(run.spark, run.table("resolved", "id_changes"), {"batch": run.batch}).groupBy("kind").count().collect()
        }
    linked = linked.localCheckpoint()
    links_name = run.table("resolved", "links")
    links = linked.select(*LINEAGE, *LINK_COLUMNS)
    # Change-only, like the statements: a carried row keeps the link of the row it repeats (listings).
    tables.replace_slice(links, links_name, {"batch": run.batch})
    _create_listings_view(run)
    # Change-only statements: the batch's slice holds what its agencies say anew against earlier
    # batches, so a rerun of the batch rewrites the same slice and a repeated snapshot adds nothing.
    statements_name = run.table("statements")
    undone = _undo_retractions(run, statements_name)
    delivered = unpivot_statements(linked, run.entity)
    earlier = tables.read_or_empty(run.spark, statements_name, STATEMENT_SCHEMA).where(F.col("batch") < run.batch)
    fresh = new_statements(delivered, earlier, run.entity.fields).localCheckpoint()  # materialized: written into the table it read
    tables.replace_slice(fresh, statements_name, {"batch": run.batch})
    figures["statements"] = {"delivered": delivered.count(), "new": fresh.count(), **_retract(run, statements_name, undone)}
    counted = linked.agg(F.count("*").alias("records"), F.countDistinct("entity_id").alias("entities")).first()
    figures.update({
        "records": counted["records"],
        "unresolved": keyed.count() - counted["records"],
        "entities_in_batch": counted["entities"],
    })
    return figures


def _create_listings_view(run: Run) -> None:
    """resolved.<domain>__<entity>_listings: the records each batch listed, carried ones included, with
    their entities (`snapshots.listings_query`)."""
    unchanged = run.table("standardized", "unchanged")
    query = listings_query(run.table("resolved", "links"), unchanged if tables.table_exists(run.spark, unchanged) else None)
    run.spark.sql(f"CREATE OR REPLACE VIEW {run.table('resolved', 'listings')} AS {query}")


def _retracted_entities_table(run: Run) -> str:
    return run.table("resolved", "retracted")


def _undo_retractions(run: Run, statements_name: str) -> DataFrame | None:
    """Make current again what an earlier run of this batch retracted, so that the rerun decides
    anew (idempotent: it retracts the same records again). Returns the entities it touched."""
    if not tables.table_exists(run.spark, statements_name):
        return None
    mine = F.col("retracted_in") == run.batch
    undone = run.spark.table(statements_name).where(mine).select("entity_id").distinct().localCheckpoint()
    if not undone.isEmpty():
        DeltaTable.forName(run.spark, statements_name).update(mine, {"retracted_in": F.lit(None).cast("string")})
    return undone


def _retract(run: Run, statements_name: str, undone: DataFrame | None) -> dict:
    """Mark the current statements of the records the batch's snapshots stopped listing as retracted
    in the batch: only those rows are rewritten. Their entities (and those a rerun made current
    again) go to resolved.<domain>__<entity>_retracted for golden, which recomputes them."""
    gone_name = run.table("standardized", "retracted")
    gone = (tables.read_slice(run.spark, gone_name, {"batch": run.batch}) if tables.table_exists(run.spark, gone_name)
            else run.spark.createDataFrame([], RETRACTED_SCHEMA)).localCheckpoint()
    retracted = 0
    if not gone.isEmpty():
        merged = (
            DeltaTable.forName(run.spark, statements_name).alias("t")
            .merge(F.broadcast(gone).alias("s"), "t.record_id = s.record_id AND t.agency = s.agency AND t.extract = s.extract "
                   "AND t.retracted_in IS NULL")
            .whenMatchedUpdate(set={"retracted_in": F.lit(run.batch)})
            .execute().first()
        )
        retracted = merged["num_updated_rows"]
    entities = run.spark.table(statements_name).where(F.col("retracted_in") == run.batch).select("entity_id")
    if undone is not None:
        entities = entities.unionByName(undone)
    tables.replace_slice(entities.distinct().withColumn("batch", F.lit(run.batch)).localCheckpoint(),
                         _retracted_entities_table(run), {"batch": run.batch})
    return {"retracted_records": gone.count(), "retracted": retracted}


def _upsert_keys(run: Run, rows: DataFrame, update: bool) -> None:
    """Add keys to the registry; `update` also re-points a key whose entity changed (merge, split).

    MERGE keeps the registry idempotent: a rerun inserts nothing twice.
    """
    # The rows are derived from the registry itself: materialize them before the MERGE rewrites it.
    tables.upsert(
        rows.localCheckpoint(eager=True), run.table("resolved", "keys"), "t.key_field = s.key_field AND t.key_value = s.key_value",
        update={"entity_id": "s.entity_id", "method": "s.method"} if update else None, when="t.entity_id <> s.entity_id",
    )


def _update_profiles(run: Run, with_key: DataFrame, spec) -> DataFrame:
    """The comparison values each known entity has been seen with (from records with a key).

    The table holds the spec's columns. When the spec's columns change (a comparison added or
    renamed), it is rebuilt from every batch's records with a key and the entities they linked to.
    """
    name = run.table("resolved", "profiles")
    columns = ["entity_id", *[c for c in spec.columns if c != spec.id_column]]
    seen = assign_profile_values(with_key, run.entity, spec).select(*columns).distinct()
    if tables.table_exists(run.spark, name) and set(run.spark.table(name).columns) != set(columns):
        keyed = run.spark.table(run.table("resolved", "links")).where(
            F.col("key_field").isin(*run.entity.key_names) & (F.col("batch") != run.batch)).select("record_ref", "entity_id")
        earlier = run.spark.table(run.table("standardized")).where(F.col("batch") != run.batch).join(keyed, "record_ref")
        seen = seen.unionByName(assign_profile_values(earlier, run.entity, spec).select(*columns)).distinct()
        tables.overwrite(seen, name)
    else:
        tables.upsert(seen, name, " AND ".join(f"t.`{c}` <=> s.`{c}`" for c in columns))
    return run.spark.table(name)


def _record_id_changes(run: Run, changes: DataFrame, linked: DataFrame) -> None:
    """Replace the batch's slice of `__id_changes`. A rerun finds the registry already re-pointed, so it
    keeps the changes its batch recorded before where they still hold (the record still goes to the
    same entity)."""
    name = run.table("resolved", "id_changes")
    if tables.table_exists(run.spark, name) and RECORD_KEY in run.spark.table(name).columns:
        now = linked.select(RECORD_KEY, F.col("entity_id").alias("to_entity")).distinct()
        kept = tables.read_slice(run.spark, name, {"batch": run.batch}).join(now, [RECORD_KEY, "to_entity"], "left_semi")
        changes = changes.unionByName(kept.select(*changes.columns)).dropDuplicates(
            [RECORD_KEY, "kind", "from_entity", "to_entity"]).localCheckpoint(eager=True)  # read from the table it replaces
    tables.replace_slice(changes, name, {"batch": run.batch})


def _queue_for_review(run: Run, review: DataFrame, spec, spec_hash: str) -> dict:
    """Uncertain pairs to the clerical-review queue (a Delta table) and a fillable CSV export; each
    pair names its record key and the spec (hash) that scored it."""
    compared = [c.field for c in spec.comparisons]
    queue = review.select(
        pair_id("record_key_l", "entity_id").alias("pair_id"), F.lit(run.entity.domain).alias("domain"),
        F.lit(run.batch).alias("batch"), F.col("record_id_l").alias("record_ref"), "entity_id", "probability",
        *[F.col(f"{c}_{side}").cast("string").alias(f"{c}_{'record' if side == 'l' else 'entity'}") for c in compared for side in "lr"],
        F.lit(None).cast("string").alias("decision"), F.col("record_key_l").alias(RECORD_KEY), F.lit(spec_hash).alias("spec_sha256"),
    ).dropDuplicates(["pair_id"])
    name = run.table("review", "queue")
    tables.replace_slice(queue, name, {"batch": run.batch})
    export = review_export_path(run.entity, run.batch)
    export.parent.mkdir(parents=True, exist_ok=True)
    rows = tables.read_slice(run.spark, name, {"batch": run.batch}).orderBy("probability").toPandas()
    rows.to_csv(export, index=False, encoding="utf-8-sig")
    log.info("%d pairs for clerical review in %s (fill in `decision`: match or no_match)", len(rows), export)
    return {"review_pairs": len(rows), "review_export": str(export)}


# --- statements -> golden -> verified ---------------------------------------------------------


# Beyond this many affected entities (a tenth of a million-person register), golden is built again from
# every statement: cheaper then than replacing the entities' rows, whose ids the replacement names.
MAX_REPLACED_ENTITIES = 100_000


def golden(run: Run) -> dict:
    """Pick each field's value from its source of record (一数一源) and keep its history.

    Writes golden.<domain>__<entity> (`select_golden`) and golden.<domain>__<entity>_history
    (`assign_history`). Incremental: the entities the batch touched are recomputed from all their
    statements, by the same functions a full rebuild uses, and replace those entities' rows
    (`tables.replace_rows`: a delete by deletion vector, then an append; a replacement stopped between
    the two is done again by the next run, of any batch); the figures count the rows replaced and written.
    Touched are the entities with statements in the batch's slice, those whose statements the batch
    retracted (resolve's resolved.<domain>__<entity>_retracted) and, for a rerun whose slice shrank, those
    that the batch's previous run touched (its `_touched` slice: every entity whose golden or history rows
    can have come from the batch, for those rows come only from the batch's statements, whose entities
    each run of it touches, and it is written before golden is). A table that does not exist yet is built from
    every statement (drop it to force a full rebuild), and so is one of which the batch touched more
    than MAX_REPLACED_ENTITIES entities.
    """
    spark, rules = run.spark, authority_rules(run.spark, run.entity)
    statements = spark.table(run.table("statements"))
    name = run.table("golden")
    targets = [
        ("golden", name, select_golden, GOLDEN_COLUMNS),
        ("history", f"{name}_history", assign_history, HISTORY_COLUMNS),
    ]
    affected = statements.where(F.col("batch") == run.batch).select("entity_id")
    # The entities whose statements the batch retracted (or a rerun of it made current again), and those
    # its previous run touched: a small slice each, where golden's own rows of the batch are a scan of it.
    # A replacement that deleted rows and stopped before writing them (tables.replace_rows) is done again:
    # its entities are the touched slice of the batch it named, written before it began.
    unfinished = {b for _, table, _, _ in targets if (b := tables.interrupted(spark, table))}
    for table, batches in [(_retracted_entities_table(run), {run.batch}), (_touched_table(run), {run.batch, *unfinished})]:
        if tables.table_exists(spark, table):
            affected = affected.unionByName(spark.table(table).where(F.col("batch").isin(*batches)).select("entity_id"))
    # Materialized before the first replacement changes the tables it was read from.
    affected = affected.distinct().localCheckpoint()
    # What the batch touched, for verify: the other entities' discrepancies cannot have changed.
    tables.replace_slice(affected.withColumn("batch", F.lit(run.batch)), _touched_table(run), {"batch": run.batch})
    figures, scope, ids = {"affected_entities": affected.count()}, None, None
    for label, table, assign, columns in targets:
        if not tables.table_exists(spark, table) or figures["affected_entities"] > MAX_REPLACED_ENTITIES:
            tables.overwrite(assign(statements, rules).select(*columns), table)
            figures[f"{label}_changes"] = "built from all statements"
            continue
        if scope is None:  # the affected entities' statements, read once for both tables
            scope = statements.join(affected, "entity_id", "left_semi").localCheckpoint()
            ids = [r["entity_id"] for r in affected.collect()]
        figures[f"{label}_changes"] = tables.replace_rows(assign(scope, rules).select(*columns), table, "entity_id", ids,
                                                          replacing=run.batch)
    counted = spark.table(name).agg(F.count("*").alias("values"), F.count_if("is_fallback").alias("fallback_values")).first()
    figures.update(counted.asDict(), history_rows=spark.table(targets[1][1]).count())
    return figures


def _touched_table(run: Run) -> str:
    return run.table("golden", "touched")


def verify(run: Run) -> dict:
    """Check every other agency's value against the golden value (多元校核), and the domain's rules
    across each entity's golden record.

    Value mismatches are checked again only for the entities the batch touched (golden's `_touched`
    slice, which holds those whose statements the batch retracted, and those whose discrepancies
    cite the batch); only current statements are checked, so an item that rested on a retracted
    record resolves. Every other entity's statements and golden
    values are as the last run found them, so its active mismatches are carried forward as still
    current. Without a touched slice for the batch, or without earlier discrepancies, every entity
    is checked. The rules are checked over every entity: they may depend on the batch date.
    """
    statements = run.spark.table(run.table("statements"))
    chosen = run.spark.table(run.table("golden"))
    previous = tables.read_slice(run.spark, DISCREPANCIES, run.mine) if tables.table_exists(
        run.spark, DISCREPANCIES) else run.spark.createDataFrame([], DISCREPANCY_SCHEMA)
    touched, scope = None, statements
    if tables.table_exists(run.spark, _touched_table(run)):
        touched = tables.read_slice(run.spark, _touched_table(run), {"batch": run.batch}).select("entity_id")
    # Nothing to carry forward (the domain's first run): checking everyone costs no more than choosing.
    if touched is not None and not touched.isEmpty() and not previous.isEmpty():
        cited = previous.where((F.col("batch") == run.batch) | (F.col("golden_batch") == run.batch))
        touched = touched.unionByName(cited.select("entity_id")).distinct().localCheckpoint()
        # Materialized: the mismatches read it twice (each record's latest value, the source's releases)
        # and the evidence once more, and each reading would scan every statement again.
        scope = statements.join(touched, "entity_id", "left_semi").localCheckpoint()
        checked = value_mismatches(scope, chosen.join(touched, "entity_id", "left_semi"), run.entity)
        carried = previous.where(F.col("status").isin(*ACTIVE) & (F.col("rule") == RULE_VALUE_MISMATCH)).join(
            touched, "entity_id", "left_anti"
        )
        current = checked.unionByName(carried.select(*checked.columns))
        if run.entity.rules:
            current = current.unionByName(entity_rules(chosen, run.entity, run.batch))
    else:
        current = find_discrepancies(statements, chosen, run.entity, run.batch)
    # Materialized: each step below reads the items before it again (as the doubted sources, the
    # disputed items, then the evidence), and each reading would compute them again.
    current = current.localCheckpoint()
    history_table = run.table("golden", "history")
    history = run.spark.table(history_table) if tables.table_exists(run.spark, history_table) else None
    current = current.unionByName(suspected_source_errors(current, run.entity, history))
    # The agencies' answers: disputes for the authorities, escalation of promised corrections.
    answers = tables.read_or_empty(run.spark, ANSWERS_TABLE, ANSWERS_SCHEMA)
    current = current.unionByName(disputes(current, answers).select(*current.columns)).localCheckpoint()
    batches = [r["batch"] for r in tables.read_or_empty(run.spark, DELIVERIES, "domain string, entity string, batch string")
               .where((F.col("domain") == run.entity.domain) & (F.col("entity") == run.entity.entity))
               .select("batch").distinct().collect()]
    evolved = escalate(evolve_discrepancies(previous, current, run.batch), answers, batches, run.batch)
    # Every agency's value beside each item: recomputed where statements were checked, as the last run
    # found it elsewhere (those entities' statements have not changed).
    before = previous.select("discrepancy_id", F.col("evidence").alias("_before"))
    evolved = (evolved.join(evidence_of(scope, evolved), ["entity_id", "field"], "left")
               .join(before, "discrepancy_id", "left")
               .withColumn("evidence", F.coalesce("evidence", "_before")).select(*previous.columns))
    # Materialize before writing: the result is written over the table it was read from.
    evolved = evolved.localCheckpoint()
    tables.replace_slice(evolved, DISCREPANCIES, run.mine)
    masking.write_masked_discrepancies(evolved, run.entity)  # what analysts read, never stale after verify
    by_status = {r["status"]: r["count"] for r in evolved.groupBy("status").count().collect()}
    by_field = {
        f"{r['agency']}.{r['field']}": r["count"]
        for r in evolved.where(F.col("status").isin(*ACTIVE)).groupBy("agency", "field").count().collect()
    }
    return {"by_status": by_status, "open_by_agency_field": by_field}


# --- write, audit, publish --------------------------------------------------------------------


def gate(run: Run) -> dict:
    """Write the candidate to audit.*, validate it with Great Expectations, record the verdict.

    The candidate is derived from golden (`tables.derive`): on a monthly batch only the entities whose
    golden rows changed since the audit table's last candidate are assigned again and replace theirs
    (`_golden_changes`). The row-by-row checks read the rows of the entities changed since the
    published table's candidate, when its rows passed the same checks."""
    from jichu.core.gate import Passed, run_gate

    audit, origin, unresolved = run.table("audit"), _golden_origin(run), set()

    def candidate(entities: list[str] | None) -> DataFrame:
        rows, missing = assign_published_record(_golden_rows(run, origin, entities), run.entity)
        unresolved.update(missing)
        return rows

    derived = tables.derive(run.spark, audit, origin, candidate, lambda before: _golden_changes(run, before, origin),
                            "entity_id", run.batch)
    if unresolved:
        log.warning("%s: references %s are null: their base database has not published", audit, ", ".join(sorted(unresolved)))
    version = tables.current_version(run.spark, audit)
    # A looked-up authority whose table does not exist yet (a catalogue not published) has nothing to check.
    absent = {n for n, lookup in run.entity.authorities.items() if lookup.table and not tables.table_exists(run.spark, lookup.table)}
    # The published rows, and the row checks they passed: only rows that differ from them are checked again.
    note, published = tables.commit_note(run.spark, run.entity.published_table), None
    if note and note.get("row_checks"):
        published = Passed(run.spark.table(run.entity.published_table), note["row_checks"],
                           _golden_changes(run, note.get(tables.DERIVED_FROM), origin))
    result = run_gate(tables.read(run.spark, audit, version), run.entity, links_table=run.table("resolved", "links"),
                      unresolved=frozenset(unresolved), absent=frozenset(absent), statements_table=run.table("statements"),
                      passed=published)
    figures = {"audit_table": audit, "audit_version": version, "derived": derived["derived"], **result.to_dict()}
    run.recorder.record("gate", figures)
    if not result.passed:
        raise GateFailed(
            f"gate failed for {audit} (version {version}); {run.entity.published_table} left unchanged. "
            f"{result.describe()}. Data Docs: {result.data_docs}"
        )
    log.info("gate passed for %s version %s: %s", audit, version, result.describe())
    return figures


def _golden_origin(run: Run) -> dict:
    """What the candidate is derived from (`tables.derive`): golden's table, its id and version, and the
    basis besides it: the entity type's conf and that of the base databases it references (their fields'
    types and personal-data classes shape the record and its masked copy), and the versions of the
    published tables it references."""
    name, references = run.table("golden"), {}
    conf = [run.entity.model_dump_json()]
    for ref in run.entity.references.values():
        referenced = load_entity(ref.domain, ref.entity)
        conf.append(referenced.model_dump_json())
        references[referenced.published_table] = tables.current_version(run.spark, referenced.published_table)
    basis = {"conf": hashlib.sha256("|".join(conf).encode("utf-8")).hexdigest()[:16], "references": references}
    return {"table": name, "id": tables.table_id(run.spark, name), "version": tables.current_version(run.spark, name),
            "basis": basis}


def _golden_rows(run: Run, origin: dict, entities: list[str] | None) -> DataFrame:
    """Golden's rows at the origin's version: every entity's, or those of `entities`."""
    rows = tables.read(run.spark, origin["table"], origin["version"])
    return rows if entities is None else rows.where(F.col("entity_id").isin(entities))


def _golden_changes(run: Run, before: dict | None, now: dict | None) -> list[str] | None:
    """The entities whose golden rows changed from origin `before` to origin `now` (`_golden_origin`):
    those of the batches whose rows golden's commits between replaced (their `_touched` slices), or None
    where either is unknown, golden was written otherwise (built again) or is another table, the basis
    differs, or more than MAX_REPLACED_ENTITIES changed."""
    if not before or not now or any(before.get(k) != now[k] for k in ("table", "id", "basis")):
        return None
    batches = tables.replaced_since(run.spark, now["table"], before["version"], now["version"])
    if batches is None or not batches:
        return batches
    touched = run.spark.table(_touched_table(run)).where(F.col("batch").isin(*batches)).select("entity_id").distinct()
    entities = [r["entity_id"] for r in touched.limit(MAX_REPLACED_ENTITIES + 1).collect()]
    return entities if len(entities) <= MAX_REPLACED_ENTITIES else None


def publish(run: Run) -> dict:
    """Copy the audited candidate that passed the gate in this run to the published table, and write its
    masked table for analysts (`core/masking.py`) from the same version. Both are overwritten, in one
    commit each: analysts read them, and a replacement of the changed entities' rows (`tables.derive`)
    would show them a table without those entities between its two commits."""
    verdict = run.recorder.load("gate", run.spark)  # recorded in runs.stages by the gate task
    if not verdict or not verdict.get("passed"):
        raise GateFailed(f"no passing gate recorded for run {run.recorder.run_id}; nothing published")
    audit, version = verdict["audit_table"], verdict["audit_version"]
    if tables.current_version(run.spark, audit) != version:
        raise GateFailed(f"{audit} changed since it was validated; run the gate again")
    # The candidate's origin (`_golden_origin`), for the next gate's row checks.
    origin = (tables.commit_note(run.spark, audit) or {}).get(tables.DERIVED_FROM)
    target = run.entity.published_table
    tables.overwrite(tables.read(run.spark, audit, version), target,
                     note={"audit_version": version, "row_checks": verdict.get("row_checks"), tables.DERIVED_FROM: origin})
    masked = masking.write_masked_record(run.spark.table(target), run.entity)
    create_views(run.spark)
    return {"table": target, "version": tables.current_version(run.spark, target), "rows": run.spark.table(target).count(),
            "masked": masked}


def create_views(spark: SparkSession) -> list[str]:
    """(Re)create the analysts' views in sql/, in file order; each file holds one statement. A file is
    named after its domain (population__deceased_still_insured.sql); the views of a domain that has not
    published every entity type yet are left for its first publish of the last one."""
    created = []
    for path in sorted((ROOT / "sql").rglob("*.sql")):
        domain = path.stem.split("__")[0]
        if (conf_dir() / "domains" / f"{domain}.yaml").exists() and not all(
                tables.table_exists(spark, t) for t in load_domain(domain).published_tables):
            continue
        statement = path.read_text(encoding="utf-8").strip().rstrip(";")
        database = path.parent.name
        spark.sql(f"CREATE DATABASE IF NOT EXISTS {database}")
        try:
            spark.sql(statement)
            created.append(path.stem)
        except Exception as e:  # a view over a table another domain has not published yet
            if "TABLE_OR_VIEW_NOT_FOUND" not in str(e):
                raise
    return created


STAGES = {
    "ingest": ingest,
    "standardize": standardize,
    "resolve": resolve,
    "golden": golden,
    "verify": verify,
    "gate": gate,
    "publish": publish,
}


def table_counts(spark: SparkSession, entity: EntityType) -> dict[str, int]:
    """Row counts of the entity type's tables, for the run summary."""
    names = [
        DELIVERIES, QUARANTINE, ISSUES, DISCREPANCIES,
        *[f"staging.{ex.key}" for ex in load_extracts(entity.domain, entity.entity)],
        entity.table("standardized"), entity.table("standardized", "unchanged"), entity.table("standardized", "retracted"),
        entity.table("resolved", "keys"), entity.table("resolved", "links"), entity.table("statements"),
        entity.table("golden"), entity.table("golden", "history"), entity.table("audit"), entity.published_table,
    ]
    return {n: spark.table(n).count() for n in names if tables.table_exists(spark, n)}


def run_stages(stages: list[str], domain_name: str, batch: str, run_id: str, profile: Profile) -> dict:
    """Run stages in order in one Spark application, for each entity type of the domain in conf order,
    and record their figures; returns entity type -> stage -> figures.

    This is the entry point of every DAG task: a task runs a few consecutive stages, so the JVM
    and Delta start-up cost is paid once per task, not once per stage. The figures go to `runs.stages`
    (the next task reads them there) and to the run's summary.json, one per entity type. A failed
    gate of one entity type is raised once every entity type's gate has been checked, so the task's
    verdicts are all recorded and none of the domain's tables is published.
    """
    from jichu.core.session import get_spark

    spark = get_spark(f"jichu-{domain_name}-{'-'.join(stages)}", profile)
    figures, failed = {}, []
    for entity in load_domain(domain_name).entities.values():
        recorder = RunRecorder(run_id, domain_name, entity.entity, batch)
        run = Run(spark, profile, entity, batch, recorder)
        figures[entity.entity], ended = {}, False
        try:
            for stage in stages:
                log.info("%s %s %s batch %s: starting", domain_name, entity.entity, stage, batch)
                started = time.monotonic()
                try:
                    figures[entity.entity][stage] = STAGES[stage](run)
                except GateFailed as e:
                    failed.append(e)
                    break
                figures[entity.entity][stage]["seconds"] = round(time.monotonic() - started, 1)
                recorder.record(stage, figures[entity.entity][stage])
            ended = not failed
        finally:
            # The tables' row counts where the run ends, published or failed (a dozen counts: not every task).
            if not ended or stages[-1] == STAGE_ORDER[-1]:
                recorder.record("tables", table_counts(spark, entity))
            # One write of the task's records, passed or failed (a failed gate's verdict included).
            recorder.flush(spark)
            recorder.export_summary(spark)
    if failed:
        raise failed[0] if len(failed) == 1 else GateFailed("; ".join(str(e) for e in failed))
    return figures
