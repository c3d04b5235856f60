"""Resolution: every standardized record gets an entity id that stays the same across runs.

Deterministic keys come first (ID number, credit code, division code), in the order the domain
lists them. A key seen for the first time mints an id from a salted hash of the key, so ids are
stable, reveal nothing about the key, and a full rebuild gives the same ids as incremental runs.
"""

from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from jichu.config import Domain

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


def assign_keys(records: DataFrame, domain: Domain) -> DataFrame:
    """Add (key_field, key_value): the first deterministic key the record carries (a composite key's
    key_field is its fields joined with +)."""
    keys = domain.key_sets
    key_field = F.coalesce(*[F.when(key_value(cols).isNotNull(), F.lit(name)) for name, cols in keys])
    value = F.coalesce(*[key_value(cols) for _, cols in keys])
    return records.withColumn("key_field", key_field).withColumn("key_value", value)


def mint_entity_id(domain: Domain, salt: str, key_field="key_field", key_value="key_value"):
    key_field = F.col(key_field) if isinstance(key_field, str) else key_field
    digest = F.sha2(F.concat_ws("|", F.lit(salt), F.lit(domain.domain), key_field, F.col(key_value)), 256)
    return F.concat(F.lit(domain.id_prefix), F.upper(F.substring(digest, 1, 16)))


def link_by_keys(keyed: DataFrame, known: DataFrame, domain: Domain, salt: str, batch: str) -> tuple[DataFrame, DataFrame]:
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
FINGERPRINT = "fingerprint"
"""Key field under which the registry keeps what probabilistic linkage decided for a record's
content: the same content in a later batch gets the same entity without being matched again."""
ID_CHANGES_SCHEMA = (
    "batch string, kind string, from_entity string, to_entity string, fingerprint string, record_ref string, reason string"
)


def assign_fingerprint(records: DataFrame, spec) -> DataFrame:
    """A record's content as the linkage spec sees it (every compared and blocking column), hashed.

    Two deliveries of the same record (a monthly snapshot) share it; review decisions and earlier
    linkage results are keyed by it, so they apply again in every later run.
    """
    values = [F.coalesce(F.col(c).cast("string"), F.lit("")) for c in spec.columns if c != spec.id_column]
    return records.withColumn(FINGERPRINT, F.sha2(F.concat_ws("\x1f", *values), 256))


def assign_profile_values(records: DataFrame, domain: Domain, spec) -> DataFrame:
    """Comparison columns of records with a key, as the persons they describe: a valid identifier is
    its own candidate (so an invalid number is compared against the valid ones)."""
    candidates = {f"{k}_candidate": F.col(k) for k, _ in domain.key_sets if f"{k}_candidate" in spec.columns}
    return records.withColumns(candidates) if candidates else records


def pair_id(fingerprint: str = "fingerprint", entity_id: str = "entity_id") -> F.Column:
    """Stable id of a (record content, entity) pair: what a reviewer's decision is stored under."""
    return F.upper(F.substring(F.sha2(F.concat_ws("|", F.col(fingerprint), F.col(entity_id)), 256), 1, 20))


def best_candidates(scored: DataFrame, decisions: DataFrame) -> DataFrame:
    """Each left record's best-scoring entity after reviewers' decisions are applied.

    A stored `match` decision makes the pair certain; a `no_match` removes it.
    `scored` has fingerprint_l, record_ref (left), entity_id (right), probability, decision.
    """
    decided = scored.withColumn("pair_id", pair_id("fingerprint_l", "entity_id")).join(
        decisions.select("pair_id", F.col("decision").alias("reviewed")), "pair_id", "left"
    )
    decided = decided.where(F.coalesce(F.col("reviewed"), F.lit("")) != "no_match").withColumns({
        "probability": F.when(F.col("reviewed") == "match", F.lit(1.0)).otherwise(F.col("probability")),
        "decision": F.when(F.col("reviewed") == "match", F.lit("match")).otherwise(F.col("decision")),
        "method": F.when(F.col("reviewed") == "match", F.lit("review:match")).otherwise(F.lit("match:probabilistic")),
    })
    order = Window.partitionBy("record_id_l").orderBy(F.col("probability").desc(), F.col("entity_id"))
    return decided.withColumn("_n", F.row_number().over(order)).where("_n = 1").drop("_n")


def link_without_key(left: DataFrame, profiles: DataFrame, registry: DataFrame, decisions: DataFrame,
                     spec, domain: Domain, salt: str, batch: str) -> dict[str, DataFrame]:
    """Resolve records without a deterministic key by the linkage spec.

    left: records (with `fingerprint`); profiles: (entity_id, compared columns) of known entities;
    registry: the key registry (its fingerprint rows say what earlier runs decided); decisions: the
    reviewers' (pair_id, decision). Returns DataFrames:
      links    record_ref, entity_id, method, probability
      review   the uncertain pairs (best candidate per record in the review band)
      registry fingerprint rows to upsert (key_field, key_value, entity_id, first_batch, method)
      changes  ids that changed for a record content: merges, splits, relinks
    """
    from jichu.link.engine import assign_clusters, candidate_pairs, score_pairs

    left = left.withColumn(PROFILE_ID, F.col("record_ref"))
    values = [c for c in spec.columns if c != spec.id_column]
    right = profiles.withColumn(
        PROFILE_ID, F.concat_ws("|", "entity_id", F.sha2(F.concat_ws("\x1f", *[F.col(c).cast("string") for c in values]), 256))
    )
    scored = score_pairs(candidate_pairs(left, right, spec), spec).withColumn(
        "entity_id", F.split("id_r", r"\|")[0]
    ).join(left.select(F.col(PROFILE_ID).alias("id_l"), F.col(FINGERPRINT).alias("fingerprint_l")), "id_l")
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
    fp_registry = registry.where(F.col("key_field") == FINGERPRINT).select(
        F.col("key_value").alias(FINGERPRINT), F.col("entity_id").alias("registered"), F.col("method").alias("registered_method"),
    )
    members = rest.select("record_ref", FINGERPRINT).join(clusters, F.col("record_ref") == F.col("id")).join(
        fp_registry, FINGERPRINT, "left"
    ).localCheckpoint()
    # A cluster keeps the new entity an earlier run gave one of its members; otherwise it gets an
    # id minted from its smallest fingerprint, so a rerun gives the same id.
    per_cluster = members.groupBy("cluster_id").agg(
        F.min(F.when(F.col("registered_method") == "new", F.col("registered"))).alias("kept"),
        F.min(FINGERPRINT).alias("first_fingerprint"),
    ).withColumn(
        "entity_id", F.coalesce("kept", mint_entity_id(domain, salt, F.lit(FINGERPRINT), "first_fingerprint"))
    )
    fresh = members.join(per_cluster.select("cluster_id", "entity_id"), "cluster_id").select(
        "record_ref", "entity_id", F.lit("new").alias("method"), F.lit(None).cast("double").alias("probability")
    )
    links = matched.unionByName(fresh)

    # What this run decided per record content, against what the registry held.
    decided = links.join(left.select("record_ref", FINGERPRINT), "record_ref").groupBy(FINGERPRINT).agg(
        F.min("entity_id").alias("entity_id"), F.min("method").alias("method"), F.min("record_ref").alias("record_ref"),
    )
    compared = decided.join(fp_registry, FINGERPRINT, "left")
    changed = compared.where(F.col("registered").isNotNull() & (F.col("registered") != F.col("entity_id")))
    changes = changed.select(
        F.lit(batch).alias("batch"),
        F.when(F.col("registered_method") == "new", "merge")
        .when(F.col("method") == "new", "split").otherwise("relink").alias("kind"),
        F.col("registered").alias("from_entity"), F.col("entity_id").alias("to_entity"), FINGERPRINT, "record_ref",
        F.col("method").alias("reason"),
    )
    upserts = compared.where(F.col("registered").isNull() | (F.col("registered") != F.col("entity_id"))).select(
        F.lit(FINGERPRINT).alias("key_field"), F.col(FINGERPRINT).alias("key_value"), "entity_id",
        F.lit(batch).alias("first_batch"), F.when(F.col("method") == "new", "new").otherwise("match").alias("method"),
    )
    return {"links": links, "review": review, "registry": upserts, "changes": changes}
