"""Suites built from the field-authority registry (conf/domains), never written by hand: the checks
every field has (provenance, completeness, unique keys) and those its type adds (registry.FieldType).

Severity says what a failure does: critical stops publishing, warning is reported only. Per the
count bounds, a breached minimum is critical and a breached maximum a warning.
"""

from __future__ import annotations

import great_expectations as gx
import great_expectations.expectations as gxe

from jichu.config import REGISTER, Domain
from jichu.core.registry import field_type
from jichu_expectations.identifiers import ExpectColumnValuesToReferenceExistingEntities

CRITICAL = "critical"
WARNING = "warning"


def build_suite(domain: Domain, links_table: str | None = None, unresolved: frozenset[str] = frozenset()) -> gx.ExpectationSuite:
    """The domain's suite; with `links_table`, also the links between source records and entities.
    References in `unresolved` (their base database has not published) are not checked."""
    expectations: list = [
        gxe.ExpectColumnValuesToNotBeNull(column="entity_id", severity=CRITICAL),
        gxe.ExpectColumnValuesToBeUnique(column="entity_id", severity=CRITICAL),
        gxe.ExpectTableRowCountToBeBetween(min_value=domain.rows.min, severity=CRITICAL),
    ]
    if domain.rows.max is not None:
        expectations.append(gxe.ExpectTableRowCountToBeBetween(max_value=domain.rows.max, severity=WARNING))
    registers = domain.registers.agencies if domain.registers else {}
    for name, rule in domain.fields.items():
        # Provenance: each golden value comes from the field's authority or a named fallback.
        authorities = sorted(set(registers.values())) if rule.authority == REGISTER else [rule.authority]
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
        if name in domain.keys:
            # Each key value (e.g. a valid ID number) belongs to one entity only.
            expectations.append(gxe.ExpectColumnValuesToBeUnique(column=name, severity=CRITICAL))
    for name, ref in domain.references.items():
        if ref.completeness > 0 and name not in unresolved:
            # e.g. legal representatives resolve to persons of the population base database
            expectations.append(gxe.ExpectColumnValuesToNotBeNull(column=name, mostly=ref.completeness, severity=CRITICAL))
    by_register = [n for n, r in domain.fields.items() if r.authority == REGISTER]
    if by_register:
        # A value from a register comes from the register that issued the entity's identifier.
        issuer = "CASE substring({0}, 1, 1) {1} END".format(
            f"`{domain.registers.field}`", " ".join(f"WHEN '{p}' THEN '{a}'" for p, a in sorted(registers.items()))
        )
        wrong = " OR ".join(
            f"(`{n}_source` IN ({', '.join(repr(a) for a in sorted(set(registers.values())))}) "
            f"AND NOT `{n}_source` <=> {issuer})" for n in by_register
        )
        expectations.append(gxe.UnexpectedRowsExpectation(
            unexpected_rows_query=f"SELECT * FROM {{batch}} WHERE {wrong}",
            description=f"{', '.join(by_register)}: from the register that issued the {domain.registers.field}",
            severity=CRITICAL,
        ))
    if links_table:
        # Every entity rests on at least one source record, and every link points to an entity.
        expectations.append(ExpectColumnValuesToReferenceExistingEntities(
            column="entity_id", table=links_table, table_column="entity_id", severity=CRITICAL
        ))
        expectations.append(gxe.UnexpectedRowsExpectation(
            unexpected_rows_query=(
                f"SELECT l.record_ref FROM {links_table} l WHERE l.entity_id IS NULL "
                "OR NOT EXISTS (SELECT 1 FROM {batch} b WHERE b.entity_id = l.entity_id)"
            ),
            description=f"every record in {links_table} links to a person of the candidate",
            severity=CRITICAL,
        ))
    return gx.ExpectationSuite(name=f"{domain.domain}__{domain.entity}", expectations=expectations)
