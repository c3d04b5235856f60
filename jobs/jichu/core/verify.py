"""Verification (多元校核): every record's value is checked against the golden value.

Each current record an agency delivered is checked, not only its latest statement per field: two
records one agency holds for one person are two checks, and the source of record's own second
record is checked against the value golden took from its first.

A disagreement is a discrepancy with a stable id (domain, entity, field, agency), a rule code, a
severity and its evidence. Across runs each discrepancy has a life: new, open, resolved, reopened.
"""

from __future__ import annotations

import logging
import re

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from jichu.config import EntityType
from jichu.core.registry import rule_check, same_value
from jichu.core.statements import SAID_BY, current, with_source_says

log = logging.getLogger("jichu")

RULE_VALUE_MISMATCH = "VALUE_MISMATCH"
RULE_SUSPECTED_SOURCE_ERROR = "SUSPECTED_SOURCE_ERROR"
"""Two or more agencies agree with each other against the source of record (多元校核 the other way)."""

DISCREPANCY_SCHEMA = (
    "discrepancy_id string, domain string, entity string, entity_id string, field string, agency string, rule string, "
    "severity string, value string, original_value string, batch string, record_ref string, "
    "golden_value string, golden_agency string, golden_batch string, golden_record_ref string, "
    "status string, first_seen string, last_seen string, resolved_in string, times_reopened int, "
    "evidence array<struct<agency:string,value:string,batch:string,record_ref:string>>"
)
ACTIVE = ("new", "open", "reopened", "escalated")
DISCREPANCY_COLUMNS = [
    "discrepancy_id", "domain", "entity", "entity_id", "field", "agency", "rule", "severity", "value", "original_value",
    "batch", "record_ref", "golden_value", "golden_agency", "golden_batch", "golden_record_ref",
]


def discrepancy_id(domain: str | F.Column) -> F.Column:
    """The stable id of (domain, entity, field, agency, rule); `domain` a name or a column."""
    key = F.concat_ws("|", F.lit(domain) if isinstance(domain, str) else domain, "entity_id", "field", "agency", "rule")
    return F.upper(F.substring(F.sha2(key, 256), 1, 16))


def _identified(found: DataFrame, entity: EntityType) -> DataFrame:
    """Discrepancy rows with their id, domain and entity type in front (entity ids carry their entity
    type's prefix, so the id needs no more than the domain)."""
    return found.select(discrepancy_id(entity.domain).alias("discrepancy_id"), F.lit(entity.domain).alias("domain"),
                        F.lit(entity.entity).alias("entity"), "*")


def find_discrepancies(statements: DataFrame, golden: DataFrame, domain: EntityType, as_of: str | None = None) -> DataFrame:
    """The domain's discrepancies among the given entities' statements and golden values.

    VALUE_MISMATCH: the latest value of each current record per (entity, field) that differs from
    golden (every record but the one golden comes from). Then each of the domain's rules over the golden record (`entity_rules`),
    as of the batch date `as_of`.
    """
    mismatches = value_mismatches(statements, golden, domain)
    return mismatches.unionByName(entity_rules(golden, domain, as_of)) if domain.rules else mismatches


def entity_rules(golden: DataFrame, domain: EntityType, as_of: str | None) -> DataFrame:
    """Discrepancies of the domain's rules (conf/domains `rules`): for each entity a rule questions (its
    `when` holds on the wide golden record, or its registered `check` over the whole set names it), its
    `field` value is questioned, with the evidence against it. Both carry their agency, batch and record."""
    from jichu.core.authority import assign_published_record

    wide, unresolved = assign_published_record(golden, domain)
    wide = wide.withColumn("batch_date", F.lit(as_of).cast("date"))
    values = golden.select("entity_id", "field", "value", "agency", "batch", "record_ref", "original_value")
    found = None
    for rule in domain.rules:
        uses = {rule.field, rule.evidence, *re.findall(r"\w+", rule.when or "")} - {None}
        if uses & unresolved:
            log.warning("rule %s skipped: %s not published yet", rule.code, ", ".join(sorted(uses & unresolved)))
            continue
        # The evidence as the record shows it (a field or a reference), with its batch and record
        # where it is a golden value of this domain.
        hit = _rule_hits(wide, rule, domain, as_of)
        questioned = values.where(F.col("field") == rule.field).join(hit, "entity_id")
        if rule.evidence is not None and "golden_batch" not in hit.columns:
            evidence = values.where(F.col("field") == rule.evidence).select(
                "entity_id", F.col("batch").alias("golden_batch"), F.col("record_ref").alias("golden_record_ref"),
            )
            questioned = questioned.join(evidence, "entity_id", "left")
        elif "golden_batch" not in hit.columns:
            questioned = questioned.withColumns({"golden_batch": F.lit(None).cast("string"),
                                                 "golden_record_ref": F.lit(None).cast("string")})
        rows = questioned.select(
            "entity_id", "field", "agency", F.lit(rule.code).alias("rule"), F.lit(rule.severity).alias("severity"),
            "value", "original_value", "batch", "record_ref",
            "golden_value", "golden_agency", "golden_batch", "golden_record_ref",
        )
        found = rows if found is None else found.unionByName(rows)
    if found is None:
        return golden.sparkSession.createDataFrame([], DISCREPANCY_SCHEMA).select(*DISCREPANCY_COLUMNS)
    return _identified(found, domain)


def _rule_hits(wide: DataFrame, rule, domain: EntityType, as_of: str | None) -> DataFrame:
    """The entities a rule questions, with the evidence against them (golden_value, golden_agency): where
    a `when` rule's condition holds on the entity's record, its `evidence` field; a `check` rule's own
    (registry.register_rule), over the whole published set."""
    if rule.check is not None:
        return rule_check(rule.check)(wide, rule, as_of)
    # A reference that resolves to nothing is evidence from the base database it points into.
    source = F.col(f"{rule.evidence}_source")
    if rule.evidence in domain.references:
        source = F.coalesce(source, F.lit(domain.references[rule.evidence].domain))
    return wide.where(F.expr(rule.when)).select(
        "entity_id", F.col(rule.evidence).cast("string").alias("golden_value"), source.alias("golden_agency"),
    )


def latest_said(statements: DataFrame) -> DataFrame:
    """Each current record's latest statement per (entity, field): the value the agency holds now in
    that record. Per record, not per agency: of two records one agency holds for an entity, each
    is checked, so a wrong one cannot hide behind a right one."""
    latest = Window.partitionBy(*SAID_BY).orderBy(
        F.col("observed_at").desc(), F.col("batch").desc(), F.col("record_ref").desc()
    )
    return current(statements).withColumn("_n", F.row_number().over(latest)).where("_n = 1").drop("_n")


def evidence_of(statements: DataFrame, items: DataFrame) -> DataFrame:
    """For each (entity, field) the items name: every current record's value, with its batch and record, sorted by
    agency (the `evidence` column). For analysts and the data authority; an agency's report shows only
    its own record. Columns entity_id, field, evidence."""
    said = latest_said(statements.join(items.select("entity_id", "field").distinct(), ["entity_id", "field"], "left_semi"))
    return said.groupBy("entity_id", "field").agg(
        F.array_sort(F.collect_list(F.struct("agency", "value", "batch", "record_ref"))).alias("evidence")
    )


def latest_releases(statements: DataFrame, golden: DataFrame) -> DataFrame:
    """Per (entity, field, vintage): the latest current statement of that vintage by the agency golden
    comes from (the source of record, or the fallback golden took), as `golden_*` columns. What an
    agency's release is compared with (`value_mismatches`)."""
    of_source = current(statements).where(F.col("vintage").isNotNull()).join(
        golden.select("entity_id", "field", "agency"), ["entity_id", "field", "agency"], "left_semi")
    latest = Window.partitionBy("entity_id", "field", "vintage").orderBy(
        F.col("observed_at").desc(), F.col("batch").desc(), F.col("record_ref").desc()
    )
    return of_source.withColumn("_n", F.row_number().over(latest)).where("_n = 1").select(
        "entity_id", "field", "vintage",
        F.col("value").alias("golden_value"), F.col("agency").alias("golden_agency"),
        F.col("batch").alias("golden_batch"), F.col("record_ref").alias("golden_record_ref"),
    )


def value_mismatches(statements: DataFrame, golden: DataFrame, domain: EntityType) -> DataFrame:
    """Every current record whose value differs from golden, but the record golden comes from. The item
    is the agency's (one per entity, field and agency: its id says so): where several of its records
    differ, it cites the latest of them, and the evidence lists every record.

    Like for like: a value with a vintage is compared with the source of record's latest release of
    the same vintage (`latest_releases`: an agency's preliminary figure with the authority's
    preliminary, not its final), and with golden where the source released none of that vintage; a
    value without one with golden. The `golden_*` columns name the value it was compared with."""
    statements = with_source_says(statements)
    severity = F.create_map(*[F.lit(x) for n, r in domain.fields.items() for x in (n, r.severity)])
    checked = latest_said(statements)
    compared = ["golden_value", "golden_agency", "golden_batch", "golden_record_ref"]
    g = golden.select(
        "entity_id", "field",
        F.col("value").alias("golden_value"),
        F.col("agency").alias("golden_agency"),
        F.col("batch").alias("golden_batch"),
        F.col("record_ref").alias("golden_record_ref"),
    )
    releases = latest_releases(statements, golden).select(
        "entity_id", "field", "vintage", *[F.col(c).alias(f"_release_{c}") for c in compared])
    joined = checked.join(g, ["entity_id", "field"]).join(releases, ["entity_id", "field", "vintage"], "left")
    like = F.col("_release_golden_value").isNotNull()
    joined = joined.withColumns({c: F.when(like, F.col(f"_release_{c}")).otherwise(F.col(c)) for c in compared})
    # Every record but the one compared with (golden's, or the release's): the source of record's other
    # records too (公安 holding a person twice), which its one golden value cannot vouch for.
    chosen = (F.col("agency") == F.col("golden_agency")) & (F.col("record_ref") == F.col("golden_record_ref"))
    joined = joined.where(~chosen)
    # One value or two by the field type's comparator (a number within its tolerance is one value).
    same = same_value(domain.fields, F.col("field"), F.col("value"), F.col("golden_value"))
    differing = joined.where(~same).withColumn("rule", F.lit(RULE_VALUE_MISMATCH))
    cited = Window.partitionBy("entity_id", "field", "agency").orderBy(
        F.col("observed_at").desc(), F.col("batch").desc(), F.col("record_ref").desc()
    )
    differing = differing.withColumn("_n", F.row_number().over(cited)).where("_n = 1")
    return _identified(differing.select(
        "entity_id", "field", "agency", "rule",
        F.element_at(severity, F.col("field")).alias("severity"),
        "value", "original_value", "batch", "record_ref",
        "golden_value", "golden_agency", "golden_batch", "golden_record_ref",
    ), domain)


def suspected_source_errors(discrepancies: DataFrame, domain: EntityType, history: DataFrame | None = None) -> DataFrame:
    """Multi-source doubt: where two or more agencies hold the same value for an entity's field and
    the authority holds another, the authority's value is itself in question. One discrepancy for the
    authoritative agency, rule SUSPECTED_SOURCE_ERROR: its value questioned, the agreed value as the
    evidence, the agreeing agencies (joined with +) as its source, the latest of their records as
    its reference. The other agencies keep their own VALUE_MISMATCH items.

    With the golden `history`, agreement on a value the authority itself held before is not doubt: the
    others kept an old value that the authority has since replaced. Fields marked `doubt: false` are
    never put in doubt: the others' copies of them go stale together (a move before the first batch)."""
    doubted = [name for name, rule in domain.fields.items() if rule.doubt]
    mismatches = discrepancies.where((F.col("rule") == RULE_VALUE_MISMATCH) & F.col("field").isin(*doubted))
    if history is not None:
        # History narrowed to the entities in question first (broadcast): the anti-join then shuffles
        # a few rows per entity, not every history row of the province.
        history = history.join(F.broadcast(mismatches.select("entity_id").distinct()), "entity_id", "left_semi")
        earlier = history.select("entity_id", "field", "value", F.col("agency").alias("golden_agency"))
        mismatches = mismatches.join(earlier, ["entity_id", "field", "value", "golden_agency"], "left_anti")
    agreeing = (
        mismatches
        .groupBy("entity_id", "field", "value", "severity", "golden_value", "golden_agency", "golden_batch", "golden_record_ref")
        .agg(
            F.array_join(F.array_sort(F.collect_set("agency")), "+").alias("agencies"),
            F.count_distinct("agency").alias("n"),
            F.max_by("record_ref", F.struct("batch", "record_ref")).alias("latest_ref"),
            F.max("batch").alias("latest_batch"),
        )
        .where(F.col("n") >= 2)
    )
    return _identified(agreeing.select(
        "entity_id", "field", F.col("golden_agency").alias("agency"), F.lit(RULE_SUSPECTED_SOURCE_ERROR).alias("rule"),
        "severity", F.col("golden_value").alias("value"), F.lit(None).cast("string").alias("original_value"),
        F.col("golden_batch").alias("batch"), F.col("golden_record_ref").alias("record_ref"),
        F.col("value").alias("golden_value"), F.col("agencies").alias("golden_agency"),
        F.col("latest_batch").alias("golden_batch"), F.col("latest_ref").alias("golden_record_ref"),
    ), domain)


def evolve_discrepancies(previous: DataFrame, current: DataFrame, batch: str) -> DataFrame:
    """Carry each discrepancy's life forward one run.

    current and not seen before -> new; current and active -> open (still new on a rerun of the
    batch that found it); current and resolved -> reopened; active and not current -> resolved.
    `resolved_in` is the batch it was last resolved in, kept when it reopens.
    """
    p = previous.alias("p")
    c = current.alias("c")
    both = p.join(c, F.col("p.discrepancy_id") == F.col("c.discrepancy_id"), "full_outer")
    seen_now = F.col("c.discrepancy_id").isNotNull()
    existed = F.col("p.discrepancy_id").isNotNull()
    was_active = F.col("p.status").isin(*ACTIVE)
    status = (
        F.when(seen_now & ~existed, "new")
        .when(seen_now & was_active & (F.col("p.first_seen") == batch), F.col("p.status"))
        .when(seen_now & was_active, "open")
        .when(seen_now, "reopened")
        .when(was_active, "resolved")
        .otherwise(F.col("p.status"))
    )
    reopened = seen_now & existed & ~was_active
    return both.select(
        *[F.coalesce(F.col(f"c.{n}"), F.col(f"p.{n}")).alias(n) for n in DISCREPANCY_COLUMNS],
        status.alias("status"),
        F.coalesce(F.col("p.first_seen"), F.lit(batch)).alias("first_seen"),
        F.when(seen_now, F.lit(batch)).otherwise(F.col("p.last_seen")).alias("last_seen"),
        F.when(~seen_now & was_active, F.lit(batch)).otherwise(F.col("p.resolved_in")).alias("resolved_in"),
        (F.coalesce(F.col("p.times_reopened"), F.lit(0)) + F.when(reopened, 1).otherwise(0)).alias("times_reopened"),
    )
