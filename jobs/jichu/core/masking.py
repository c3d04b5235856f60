"""Personal data masked for analysts: one Spark SQL function per personal-data class, and the masked
tables built from the classes the domains declare (`pii` in conf/domains, `config.FieldRule`).

Analysts read `published.<domain>__<entity>_masked` and `verified.discrepancies_masked`, never the raw
tables. Both are materialised Delta tables, not views: a view over the raw table would let whoever may
read it read the raw table through it, while a table holds only masked values, can be granted on its
own, and keeps a version per write (`VERSION AS OF`). Nothing here is written by hand per domain: a field
that declares a class is masked wherever it appears, and a new class is one function in `MASKS`.

The functions are Spark SQL expressions (no Python UDF), total over any string: null stays null, and a
value of an unexpected shape is masked whole rather than passed through.
"""

from __future__ import annotations

from collections.abc import Callable

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from jichu.config import EntityType, load_entity
from jichu.core import tables

DISCREPANCIES_MASKED = "verified.discrepancies_masked"


def _stars(n: Column) -> Column:
    """n stars; null for a null n (greatest would take 0 for it)."""
    return F.when(n.isNotNull(), F.repeat(F.lit("*"), F.greatest(n, F.lit(0))))


def mask_id_number(value: Column) -> Column:
    """An ID number (GB 11643) keeps its region (the first six digits) and what follows the birth date:
    the last four of 18 digits (sequence and check), the last three of a 15-digit legacy number. The
    birth date and any value of another length are stars, one per character."""
    s, n = value.cast("string"), F.length(value.cast("string"))
    return (
        F.when(n == 18, F.concat(F.substring(s, 1, 6), F.lit("*" * 8), F.substring(s, 15, 4)))
        .when(n == 15, F.concat(F.substring(s, 1, 6), F.lit("*" * 6), F.substring(s, 13, 3)))
        .otherwise(_stars(n))
    )


def mask_name(value: Column) -> Column:
    """A person's name keeps its first character (the surname, or the first of a compound one) and
    shows the others as stars, a middle dot (·) included; a one-character name is a star."""
    s, n = value.cast("string"), F.length(value.cast("string"))
    return F.when(n <= 1, _stars(n)).otherwise(F.concat(F.substring(s, 1, 1), _stars(n - 1)))


def mask_personal_date(value: Column) -> Column:
    """A date in a person's life (birth, death) keeps its year only, as a string: the first year in the
    value, whatever the layout an agency delivered it in (1990-05-17, 19900517, 1990年5月17日); null
    where there is none (90-5-17)."""
    return F.nullif(F.regexp_extract(value.cast("string"), r"(1[89]|20)\d\d", 0), F.lit(""))


def withhold(value: Column) -> Column:
    """An organisation a person belongs to (employer, school): nothing of it is shown. With the year of
    birth, sex and county it singles a person out, and no part of its code is coarser."""
    return F.lit(None).cast("string")


MASKS: dict[str, Callable[[Column], Column]] = {
    "id_number": mask_id_number,
    "name": mask_name,
    "personal_date": mask_personal_date,
    "affiliation": withhold,
}
"""Personal-data class (conf/domains `pii`) -> its masking function."""


def pii_columns(domain: EntityType) -> dict[str, str]:
    """Column of the domain's published record -> personal-data class: each field that declares one, and
    each reference that takes a column its base database declares (a legal representative's date of
    death is population's `death_date`)."""
    classes = {name: rule.pii for name, rule in domain.fields.items() if rule.pii}
    for name, ref in domain.references.items():
        taken = load_entity(ref.domain, ref.entity).fields.get(ref.column)
        if taken is not None and taken.pii:
            classes[name] = taken.pii
    return classes


def masked_table(domain: EntityType) -> str:
    return f"{domain.published_table}_masked"


def mask_record(published: DataFrame, domain: EntityType) -> DataFrame:
    """The published record with each personal-data column replaced by `<column>_masked`, in its place;
    every other column as published."""
    classes = pii_columns(domain)
    return published.select(*[
        MASKS[classes[c]](F.col(c)).alias(f"{c}_masked") if c in classes else F.col(c) for c in published.columns
    ])


def write_masked_record(published: DataFrame, domain: EntityType) -> str:
    """Overwrite `published.<domain>__<entity>_masked` from the published record just written (it also
    replaces the hand-written view `population__person_masked` that a metastore of an earlier release holds)."""
    name = masked_table(domain)
    tables.overwrite(mask_record(published, domain), name)
    return name


def _by_class(value: Column, field: Column, classes: dict[str, str]) -> Column:
    """`value` masked by the class of the field the column `field` names; as it is for other fields."""
    masked = None
    for cls in sorted(set(classes.values())):
        named = field.isin(*sorted(c for c, k in classes.items() if k == cls))
        masked = F.when(named, MASKS[cls](value)) if masked is None else masked.when(named, MASKS[cls](value))
    return value if masked is None else masked.otherwise(value)


def mask_discrepancies(discrepancies: DataFrame, domain: EntityType) -> DataFrame:
    """A domain's discrepancies with `value`, `original_value` and each agency's value in `evidence`
    masked by the class of the item's field, and `golden_value` by the class of the field it is a value
    of: the item's own field, or for a rule of the domain (conf/domains `rules`) its `evidence` field
    (a representative's date of death against the ID number questioned)."""
    classes = pii_columns(domain)
    golden_field = F.col("field")
    if domain.rules:
        evidence = F.create_map(*[F.lit(x) for r in domain.rules for x in (r.code, r.evidence)])
        golden_field = F.coalesce(F.try_element_at(evidence, F.col("rule")), F.col("field"))
    field = F.col("field")
    return discrepancies.withColumns({
        "value": _by_class(F.col("value"), field, classes),
        "original_value": _by_class(F.col("original_value"), field, classes),
        "golden_value": _by_class(F.col("golden_value"), golden_field, classes),
        "evidence": F.transform("evidence", lambda e: e.withField("value", _by_class(e["value"], field, classes))),
    })


def write_masked_discrepancies(discrepancies: DataFrame, domain: EntityType) -> None:
    """Replace the entity type's slice of `verified.discrepancies_masked` with its discrepancies masked:
    the table is partitioned by domain like `verified.discrepancies`, so two domains' runs write their
    own partitions at once."""
    tables.replace_slice(mask_discrepancies(discrepancies, domain), DISCREPANCIES_MASKED, {"domain": domain.domain, "entity": domain.entity})
