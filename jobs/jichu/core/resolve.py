"""Resolution: every standardized record gets an entity id that stays the same across runs.

Deterministic keys come first (ID number, credit code, division code), in the order the domain
lists them. A key seen for the first time mints an id from a salted hash of the key, so ids are
stable, reveal nothing about the key, and a full rebuild gives the same ids as incremental runs.
"""

from __future__ import annotations

from pathlib import Path

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from jichu.config import EntityType
from jichu.link.spec import LinkSpec, load_link_spec, spec_sha256

KEYS_SCHEMA = "key_field string, key_value string, entity_id string, first_batch string, method string"


def key_value(columns: list[str]) -> F.Column:
    """The value of one deterministic key: a field's, or for a composite key its fields' joined with |,
    null unless every one has a value."""
    if len(columns) == 1:
        return F.col(columns[0]).cast("string")
    complete = F.lit(True)
    for c in columns:
        complete = complete & F.col(c).isNotNull()
    return F.when(complete, F.concat_ws("|", *[F.col(c).cast("string") for c in columns]))


def assign_keys(records: DataFrame, domain: EntityType) -> DataFrame:
    """Add (key_field, key_value): the first deterministic key the record carries (a composite key's
    key_field is its fields joined with +)."""
    keys = domain.key_sets
    key_field = F.coalesce(*[F.when(key_value(cols).isNotNull(), F.lit(name)) for name, cols in keys])
    value = F.coalesce(*[key_value(cols) for _, cols in keys])
    return records.withColumn("key_field", key_field).withColumn("key_value", value)


def mint_entity_id(domain: EntityType, salt: str, key_field="key_field", key_value="key_value"):
    key_field = F.col(key_field) if isinstance(key_field, str) else key_field
    digest = F.sha2(F.concat_ws("|", F.lit(salt), F.lit(domain.domain), key_field, F.col(key_value)), 256)
    return F.concat(F.lit(domain.id_prefix), F.upper(F.substring(digest, 1, 16)))


def link_by_keys(keyed: DataFrame, known: DataFrame, domain: EntityType, salt: str, batch: str) -> tuple[DataFrame, DataFrame]:
    """Link each record with a key to an entity: (links, registry rows to add).

    A record takes the entity of the first of its keys (in the domain's order) that the key registry
    `known` holds; a record none of whose keys is known mints a new entity from its first key. Its
    other keys the registry does not hold yet are registered to the same entity (method `alias`), so
    an agency that holds only a legacy identifier finds the entity whose credit code embeds it.
    Records are taken in rounds by their first key, the registry growing round by round, so a
    record whose first key is the organisation code meets the aliases its credit code's records
    registered in the same batch. One key (population) is one round.

    links: record_ref, entity_id, method (`key:<field>` of the key that found the entity).
    registry rows: key_field, key_value, entity_id, first_batch, method (`key` or `alias`); a key two
    records of one round would register to different entities goes to the smaller entity id.
    """
    entries = keyed.where(F.col("key_value").isNotNull()).select(
        "record_ref", F.col("key_field").alias("_first"),
        F.explode(F.array(*[
            F.struct(F.lit(rank).alias("rank"), F.lit(k).alias("key_field"), key_value(cols).alias("key_value"))
            for rank, (k, cols) in enumerate(domain.key_sets)
        ])).alias("k"),
    ).select("record_ref", "_first", "k.*").where(F.col("key_value").isNotNull())
    registry = known.select("key_field", "key_value", "entity_id")
    links, added = [], []
    for rank, (first, _) in enumerate(domain.key_sets):
        mine = entries if len(domain.keys) == 1 else entries.where(F.col("_first") == first)
        found = mine.join(registry, ["key_field", "key_value"]).groupBy("record_ref").agg(
            F.min(F.struct("rank", "key_field", "entity_id")).alias("hit")
        )
        own = mine.where(F.col("rank") == rank).join(found, "record_ref", "left")
        linked = own.select(
            "record_ref",
            F.coalesce(F.col("hit.entity_id"), mint_entity_id(domain, salt)).alias("entity_id"),
            F.concat(F.lit("key:"), F.coalesce(F.col("hit.key_field"), F.lit(first))).alias("method"),
            F.col("hit").isNull().alias("_minted"),
        ).localCheckpoint()
        fresh = mine.join(registry, ["key_field", "key_value"], "left_anti").join(linked, "record_ref").groupBy(
            "key_field", "key_value"
        ).agg(F.min(F.struct(
            "entity_id", F.when(F.col("_minted") & (F.col("rank") == rank), "key").otherwise("alias").alias("method")
        )).alias("to")).select(
            "key_field", "key_value", "to.entity_id", F.lit(batch).alias("first_batch"), "to.method",
        ).localCheckpoint()
        links.append(linked.drop("_minted"))
        added.append(fresh)
        registry = registry.unionByName(fresh.select("key_field", "key_value", "entity_id"))
    return _union(links), _union(added)


def _union(frames: list[DataFrame]) -> DataFrame:
    result = frames[0]
    for frame in frames[1:]:
        result = result.unionByName(frame)
    return result


# --- probabilistic resolution of records without a key ---------------------------------------

PROFILE_ID = "record_id"
RECORD_KEY = "record_key"
"""A record's identity for linkage, independent of the linkage spec (`assign_record_key`), and the
key field under which the registry keeps what probabilistic linkage decided for that record: the
same record delivered again in a later batch keeps its entity."""
ID_CHANGES_SCHEMA = (
    "batch string, kind string, from_entity string, to_entity string, record_key string, record_ref string, reason string"
)
SPECS_TABLE = "resolved.linkage_specs"
SPECS_SCHEMA = "sha256 string, name string, file string, text string, saved_at timestamp"


def saved_spec(spark: SparkSession, path: Path) -> tuple[LinkSpec, str]:
    """Load a linkage spec and keep a copy of its text in `resolved.linkage_specs`, keyed by its
    SHA-256 (`spec.spec_sha256`); returns (spec, hash). Results name the hash (resolved links, the
    review queue, the stage's figures in runs.stages), and the table says what it was, on any host.

    A spec already saved is not saved again, so a rerun adds nothing. The check and the append are
    not one transaction: a blind append cannot conflict with another domain's run at the same time,
    where a MERGE over the whole table would; two runs saving the same new spec at the same instant
    may leave two identical rows, which readers take as one (the hash is the key).
    """
    from jichu.core import tables

    text = Path(path).read_text(encoding="utf-8")
    spec, sha = load_link_spec(path), spec_sha256(text)
    known = tables.table_exists(spark, SPECS_TABLE) and spark.table(SPECS_TABLE).where(F.col("sha256") == sha).limit(1).count()
    if not known:
        row = spark.createDataFrame([(sha, spec.name, Path(path).name, text)], "sha256 string, name string, file string, text string")
        tables.append(row.withColumn("saved_at", F.current_timestamp()), SPECS_TABLE)
    return spec, sha


def assign_record_key(records: DataFrame) -> DataFrame:
    """`record_key`: a hash of the agency, the extract and the record's values as delivered
    (`original`, field -> text), sorted by field.

    It does not depend on the linkage spec, so editing a spec (a comparison added, renamed, made
    otherwise) keeps every review decision and registry entry, nor on how values are standardized;
    the same record delivered again (a monthly snapshot) has the same key in every batch. A record
    whose delivered values change is a new record: a reviewer decided on the values they saw.
    """
    delivered = F.transform(F.array_sort(F.map_entries("original")), lambda e: F.concat_ws("\x1e", e["key"], e["value"]))
    return records.withColumn(RECORD_KEY, F.sha2(F.concat_ws("\x1f", "agency", "extract", delivered), 256))


def assign_profile_values(records: DataFrame, domain: EntityType, spec) -> DataFrame:
    """Comparison columns of records with a key, as the persons they describe: a valid identifier is
    its own candidate (so an invalid number is compared against the valid ones)."""
    candidates = {f"{k}_candidate": F.col(k) for k, _ in domain.key_sets if f"{k}_candidate" in spec.columns}
    return records.withColumns(candidates) if candidates else records


def pair_id(record_key: str = RECORD_KEY, entity_id: str = "entity_id") -> F.Column:
    """Stable id of a (record, entity) pair: what a reviewer's decision is stored under. Made from
    the record key, so it outlives any edit of the spec."""
    return F.upper(F.substring(F.sha2(F.concat_ws("|", F.col(record_key), F.col(entity_id)), 256), 1, 20))


def best_candidates(scored: DataFrame, decisions: DataFrame) -> DataFrame:
    """Each left record's best-scoring entity after reviewers' decisions are applied.

    A stored `match` decision makes the pair certain; a `no_match` removes it; of two decisions on
    one pair the later counts. `scored` has record_key_l, record_ref (left), entity_id (right),
    probability, decision.
    """
    latest = Window.partitionBy("pair_id").orderBy(F.col("decided_at").desc_nulls_last())
    reviewed = decisions.withColumn("_n", F.row_number().over(latest)).where("_n = 1").select(
        "pair_id", F.col("decision").alias("reviewed")
    )
    decided = scored.withColumn("pair_id", pair_id("record_key_l", "entity_id")).join(reviewed, "pair_id", "left")
    decided = decided.where(F.coalesce(F.col("reviewed"), F.lit("")) != "no_match").withColumns({
        "probability": F.when(F.col("reviewed") == "match", F.lit(1.0)).otherwise(F.col("probability")),
        "decision": F.when(F.col("reviewed") == "match", F.lit("match")).otherwise(F.col("decision")),
        "method": F.when(F.col("reviewed") == "match", F.lit("review:match")).otherwise(F.lit("match:probabilistic")),
    })
    order = Window.partitionBy("record_id_l").orderBy(F.col("probability").desc(), F.col("entity_id"))
    return decided.withColumn("_n", F.row_number().over(order)).where("_n = 1").drop("_n")


def link_without_key(left: DataFrame, profiles: DataFrame, registry: DataFrame, decisions: DataFrame,
                     spec, domain: EntityType, salt: str, batch: str) -> dict[str, DataFrame]:
    """Resolve records without a deterministic key by the linkage spec.

    left: records (with `record_key`); profiles: (entity_id, compared columns) of known entities;
    registry: the key registry (its record_key rows say what earlier runs decided); decisions: the
    reviewers' (pair_id, decision). Returns DataFrames:
      links    record_ref, entity_id, method, probability
      review   the uncertain pairs (best candidate per record in the review band)
      registry record_key rows to upsert (key_field, key_value, entity_id, first_batch, method)
      changes  ids that changed for a record: merges, splits, relinks
    """
    from jichu.link.engine import assign_clusters, candidate_pairs, score_pairs

    left = left.withColumn(PROFILE_ID, F.col("record_ref"))
    values = [c for c in spec.columns if c != spec.id_column]
    right = profiles.withColumn(
        PROFILE_ID, F.concat_ws("|", "entity_id", F.sha2(F.concat_ws("\x1f", *[F.col(c).cast("string") for c in values]), 256))
    )
    scored = score_pairs(candidate_pairs(left, right, spec), spec).withColumn(
        "entity_id", F.split("id_r", r"\|")[0]
    ).join(left.select(F.col(PROFILE_ID).alias("id_l"), F.col(RECORD_KEY).alias("record_key_l")), "id_l")
    # The four results below share this work: score once (a Python UDF), then reuse.
    best = best_candidates(scored.withColumnRenamed("id_l", "record_id_l"), decisions).localCheckpoint()
    matched = best.where(F.col("decision") == "match").select(
        F.col("record_id_l").alias("record_ref"), "entity_id", "method", "probability"
    )
    review = best.where((F.col("decision") == "review") & F.col("reviewed").isNull())

    # The rest are persons not known yet: records of the same person (e.g. a duplicate inside one
    # delivery) are clustered, and each cluster is one new entity.
    rest = left.join(matched.select("record_ref"), "record_ref", "left_anti")
    edges = score_pairs(candidate_pairs(rest, None, spec), spec).where(F.col("decision") == "match")
    clusters = assign_clusters(rest.sparkSession, rest.select(F.col(PROFILE_ID).alias("id")), edges)
    fp_registry = registry.where(F.col("key_field") == RECORD_KEY).select(
        F.col("key_value").alias(RECORD_KEY), F.col("entity_id").alias("registered"), F.col("method").alias("registered_method"),
    )
    members = rest.select("record_ref", RECORD_KEY).join(clusters, F.col("record_ref") == F.col("id")).join(
        fp_registry, RECORD_KEY, "left"
    ).localCheckpoint()
    # A cluster keeps the new entity an earlier run gave one of its members; otherwise it gets an
    # id minted from its smallest record key, so a rerun gives the same id.
    per_cluster = members.groupBy("cluster_id").agg(
        F.min(F.when(F.col("registered_method") == "new", F.col("registered"))).alias("kept"),
        F.min(RECORD_KEY).alias("first_key"),
    ).withColumn(
        "entity_id", F.coalesce("kept", mint_entity_id(domain, salt, F.lit(RECORD_KEY), "first_key"))
    )
    fresh = members.join(per_cluster.select("cluster_id", "entity_id"), "cluster_id").select(
        "record_ref", "entity_id", F.lit("new").alias("method"), F.lit(None).cast("double").alias("probability")
    )
    links = matched.unionByName(fresh)

    # What this run decided per record, against what the registry held.
    decided = links.join(left.select("record_ref", RECORD_KEY), "record_ref").groupBy(RECORD_KEY).agg(
        F.min("entity_id").alias("entity_id"), F.min("method").alias("method"), F.min("record_ref").alias("record_ref"),
    )
    compared = decided.join(fp_registry, RECORD_KEY, "left")
    changed = compared.where(F.col("registered").isNotNull() & (F.col("registered") != F.col("entity_id")))
    changes = changed.select(
        F.lit(batch).alias("batch"),
        F.when(F.col("registered_method") == "new", "merge")
        .when(F.col("method") == "new", "split").otherwise("relink").alias("kind"),
        F.col("registered").alias("from_entity"), F.col("entity_id").alias("to_entity"), RECORD_KEY, "record_ref",
        F.col("method").alias("reason"),
    )
    upserts = compared.where(F.col("registered").isNull() | (F.col("registered") != F.col("entity_id"))).select(
        F.lit(RECORD_KEY).alias("key_field"), F.col(RECORD_KEY).alias("key_value"), "entity_id",
        F.lit(batch).alias("first_batch"), F.when(F.col("method") == "new", "new").otherwise("match").alias("method"),
    )
    return {"links": links, "review": review, "registry": upserts, "changes": changes}
