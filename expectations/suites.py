"""Suites built from the field-authority registry (conf/domains), never written by hand: the checks
every field has (provenance, completeness, unique keys) and those its type adds (registry.FieldType).

Severity says what a failure does: critical stops publishing, warning is reported only. Per the
count bounds, a breached minimum is critical and a breached maximum a warning.
"""

from __future__ import annotations

import great_expectations as gx
import great_expectations.expectations as gxe

from jichu.config import EntityType
from jichu.core.registry import field_type
from jichu_expectations.identifiers import ExpectColumnValuesToReferenceExistingEntities

CRITICAL = "critical"
WARNING = "warning"

# Column map expectations that judge each value alone.
_EACH_VALUE = (gxe.ExpectColumnValuesToBeInSet, gxe.ExpectColumnValuesToNotBeNull)


def checks_each_row(expectation) -> bool:
    """Whether `expectation` holds for a table exactly when it holds for each row on its own: a value
    in a set, not null, a valid identifier or code, with no share of rows allowed to fail (`mostly`)
    and no other row or table read. A monthly batch checks these on the rows that changed since the
    published table passed them, and the others (row counts, uniqueness, shares, links) on the whole
    candidate (core/gate.py)."""
    if getattr(expectation, "mostly", None) not in (None, 1, 1.0):
        return False
    return isinstance(expectation, _EACH_VALUE) or getattr(type(expectation), "checks_each_row", False)


def build_suite(domain: EntityType, links_table: str | None = None, unresolved: frozenset[str] = frozenset(),
                absent: frozenset[str] = frozenset(), statements_table: str | None = None) -> gx.ExpectationSuite:
    """The entity type's suite; with `links_table` and `statements_table`, also the links between source
    records and entities, where a link may point to an entity that no agency lists any more (every
    statement about it retracted), which golden no longer holds. References in `unresolved` (their base
    database has not published) are not checked, nor looked-up authorities in `absent` (their table,
    e.g. a catalogue, does not exist yet)."""
    expectations: list = [
        gxe.ExpectColumnValuesToNotBeNull(column="entity_id", severity=CRITICAL),
        gxe.ExpectColumnValuesToBeUnique(column="entity_id", severity=CRITICAL),
        gxe.ExpectTableRowCountToBeBetween(min_value=domain.rows.min, severity=CRITICAL),
    ]
    if domain.rows.max is not None:
        expectations.append(gxe.ExpectTableRowCountToBeBetween(max_value=domain.rows.max, severity=WARNING))
    for name, rule in domain.fields.items():
        # Provenance: each golden value comes from the field's authority or a named fallback. A looked-up
        # authority's agencies are known here only when conf lists them; the issuer check below covers
        # every lookup.
        lookup = domain.authorities.get(rule.authority)
        if lookup is None or lookup.agencies:
            authorities = sorted(set(lookup.agencies.values())) if lookup else [rule.authority]
            expectations.append(
                gxe.ExpectColumnValuesToBeInSet(
                    column=f"{name}_source", value_set=[*authorities, *rule.fallback], severity=CRITICAL
                )
            )
        if rule.completeness > 0:
            expectations.append(
                gxe.ExpectColumnValuesToNotBeNull(column=name, mostly=rule.completeness, severity=CRITICAL)
            )
        # What the field's type says a valid value is (ID numbers, credit codes, divisions, code lists).
        expectations += field_type(rule.type).expectations(name, rule)
    for key, columns in domain.key_sets:
        # Each key value (e.g. a valid ID number) belongs to one entity only.
        if len(columns) == 1:
            expectations.append(gxe.ExpectColumnValuesToBeUnique(column=key, severity=CRITICAL))
        else:
            expectations.append(gxe.ExpectCompoundColumnsToBeUnique(column_list=columns, severity=CRITICAL))
    for name, ref in domain.references.items():
        if ref.completeness > 0 and name not in unresolved:
            # e.g. legal representatives resolve to persons of the population base database
            expectations.append(gxe.ExpectColumnValuesToNotBeNull(column=name, mostly=ref.completeness, severity=CRITICAL))
    for lookup_name, lookup in sorted(domain.authorities.items()):
        if lookup_name not in absent:
            expectations += _issuer_check(domain, lookup_name, lookup)
    if links_table:
        if statements_table is None:
            raise ValueError(f"the checks of {links_table} need the statements table too")
        # Every entity rests on at least one source record, and every link points to an entity.
        expectations.append(ExpectColumnValuesToReferenceExistingEntities(
            column="entity_id", table=links_table, table_column="entity_id", severity=CRITICAL
        ))
        # A person whose every record has left the snapshots (moved out of the province, a cancelled
        # registration) is no longer in golden, while the links of the batches that listed them stay.
        # The statements are read only for the links the candidate lacks (a handful), broadcast into
        # the scan: an existence join of every link against every statement costs three times as much.
        expectations.append(gxe.UnexpectedRowsExpectation(
            unexpected_rows_query=(
                f"WITH lacking AS (SELECT l.record_ref, l.entity_id FROM {links_table} l "
                "LEFT ANTI JOIN {batch} b ON b.entity_id = l.entity_id) "
                "SELECT o.record_ref FROM lacking o WHERE o.entity_id IS NULL OR o.entity_id IN ("
                f"SELECT /*+ BROADCAST(k) */ s.entity_id FROM {statements_table} s "
                "JOIN (SELECT DISTINCT entity_id FROM lacking) k ON s.entity_id = k.entity_id "
                "WHERE s.retracted_in IS NULL)"
            ),
            description=f"every record in {links_table} links to an entity of the candidate, "
                        "or to one no agency lists any more",
            severity=CRITICAL,
        ))
    return gx.ExpectationSuite(name=f"{domain.domain}__{domain.entity}", expectations=expectations)


def _issuer_check(domain: EntityType, name: str, lookup) -> list:
    """A value from a looked-up authority comes from the agency the lookup names for the entity (the
    register that issued its credit code): every value whose source is not one of its field's fallbacks."""
    fields = {n: r for n, r in domain.fields.items() if r.authority == name}
    if not fields:
        return []
    if lookup.agencies:
        pairs = ", ".join(f"('{k}', '{a}')" for k, a in sorted(lookup.agencies.items()))
        relation = f"(SELECT * FROM VALUES {pairs} AS v(_key, _agency))"
    else:
        relation = (f"(SELECT CAST(`{lookup.key_column}` AS STRING) AS _key, `{lookup.agency_column}` AS _agency "
                    f"FROM {lookup.table})")
    wrong = []
    for field, rule in fields.items():
        source = f"b.`{field}_source`"
        not_fallback = f" AND {source} NOT IN ({', '.join(repr(a) for a in rule.fallback)})" if rule.fallback else ""
        wrong.append(f"({source} IS NOT NULL{not_fallback} AND NOT {source} <=> l._agency)")
    return [gxe.UnexpectedRowsExpectation(
        unexpected_rows_query=(f"SELECT b.* FROM {{batch}} b LEFT JOIN {relation} l ON l._key = {lookup.key_sql} "
                               f"WHERE {' OR '.join(wrong)}"),
        description=f"{', '.join(fields)}: from the agency that {name} names for the entity's {lookup.field}",
        severity=CRITICAL,
    )]
