"""Standardization: typed, validated values from staged strings, and quarantine for the rest.

Pure transforms over DataFrames. Each domain field names its type (conf/domains), a FieldType in
`jichu.core.registry` that turns the delivered text into a value; each extract says which of its
columns feeds the field and how its codes and dates read (conf/extracts). A value
that fails its check is a recorded issue (field, column, reason code) and becomes null; a row
whose *required* field fails goes to quarantine instead, so that per extract and batch:
staged = standardized + quarantined + unchanged (a snapshot's rows carried from its previous
delivery, core/snapshots.py, are not standardized again).
"""

from __future__ import annotations

import pandas as pd
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from jichu.config import RELEASE_STATUS, EntityType, Extract, FieldMapping, load_code_list, load_units
from jichu.core import registry
from jichu.core.registry import FieldType, Typed
from jichu.core.statements import SOURCE_SAYS
from jichu.core.text import FORMULA_START, FULL_WIDTH, HALF_WIDTH, INVISIBLE, TO_HALF_WIDTH

LINEAGE = ["record_ref", "agency", "extract", "batch", "file", "row"]
"""Lineage of every record; staging prefixes these with `_` so they never clash with agency columns."""
ERROR_TYPE = "array<struct<field:string,column:string,code:string>>"
ERROR_TYPE_REQUIRED = "array<struct<field:string,column:string,code:string,required:boolean>>"
CANDIDATE = "_candidate"
"""Suffix of the companion column that linkage compares, for field types that have one
(FieldType.candidate): an identifier's characters even when it fails its check (a transposed or
mistyped number is close to the right one), an organisation name's comparison form."""

# Reason codes of the core's own types; each domain's types name theirs. The quarantine table and
# reports use these.
REQUIRED_MISSING = "REQUIRED_MISSING"
DATE_INVALID = "DATE_INVALID"
CODE_UNMAPPED = "CODE_UNMAPPED"
FORMULA_LIKE = "FORMULA_LIKE"
NUMBER_INVALID = "NUMBER_INVALID"
UNIT_INVALID = "UNIT_INVALID"
# Every date layout the agencies were seen to use; an extract's own formats are tried first.
# Single pattern letters read one or two digits, so 2021/8/1 and 2021/08/01 both parse.
DATE_FORMATS = ["yyyy-M-d", "yyyy/M/d", "yyyyMMdd", "yyyy年M月d日", "yyyy.M.d"]

_CHECKED_SCHEMA = T.StructType([T.StructField(n, T.StringType()) for n in ("value", "error")])


def checked_udf(check):
    """A pandas UDF of a (value -> (value, error)) check, for a field type whose check is Python."""

    @F.pandas_udf(_CHECKED_SCHEMA)
    def udf(values: pd.Series) -> pd.DataFrame:
        return pd.DataFrame([check(v) for v in values], columns=["value", "error"])

    return udf


def clean_text(col: Column) -> Column:
    """Invisible characters removed (text.INVISIBLE), full-width to half-width, inner runs of white
    space folded, trimmed; empty becomes null."""
    # Folded before trimming: F.trim removes spaces only, and a leading tab must not stay as a space.
    visible = F.regexp_replace(col, f"[{INVISIBLE}]", "")
    text = F.trim(F.regexp_replace(F.translate(visible, FULL_WIDTH, HALF_WIDTH), r"\s+", " "))
    # nullif names the text once (when/otherwise would copy its expression into the plan twice).
    return F.nullif(text, F.lit(""))


def formula_like(text: Column) -> Column:
    """Whether a spreadsheet would run the text as a formula: it starts like one and is not a signed
    number (a loss of -12.5 in 营业收入 is a number to a spreadsheet, and runs nothing)."""
    return text.rlike(_FORMULA)


# One pattern, so that the text appears once in the plan: a formula's first character, not followed
# by the rest of a signed number.
_FORMULA = "^(?![+-][0-9]+([.][0-9]+)?$)[" + "".join("\\" + c if c in "\\]^-[" else c for c in FORMULA_START) + "]"


def free_text(cleaner):
    """The standardiser of a free-text type: the text as `cleaner` writes it, kept as the agency typed
    it once cleaned. Nothing else checks such values, so each is checked for a formula."""

    def standardise(raw: Column, mapping: FieldMapping, rule) -> Typed:
        value = cleaner(raw)
        formula = formula_like(value)
        return Typed(F.when(~formula, value), F.when(formula, F.lit(FORMULA_LIKE)))

    return standardise


def parse_date(text: Column, formats: list[str]) -> Column:
    """The first of the extract's formats, then every known layout, that reads the text as a date."""
    ordered = list(dict.fromkeys([*formats, *DATE_FORMATS]))
    return F.coalesce(*[F.try_to_date(text, fmt) for fmt in ordered])


def _date(raw: Column, mapping: FieldMapping, rule) -> Typed:
    text = clean_text(raw)
    value = parse_date(text, mapping.formats)
    return Typed(value, F.when(text.isNotNull() & value.isNull(), F.lit(DATE_INVALID)))


def _validity(raw: Column, mapping: FieldMapping) -> Typed:
    """A date of validity: sources often state only the year (启用 1983, 1983年), read as its first day."""
    text = clean_text(raw)
    value = parse_date(text, [*mapping.formats, *DATE_FORMATS, "yyyy", "yyyy年"])
    return Typed(value, F.when(text.isNotNull() & value.isNull(), F.lit(DATE_INVALID)))


def _code(raw: Column, mapping: FieldMapping, rule) -> Typed:
    return mapped_code(raw, mapping, rule.code_list)


def mapped_code(raw: Column, mapping: FieldMapping, code_list: str) -> Typed:
    """The national list's codes, labels and aliases, then the agency's own spellings. Spellings are
    compared as clean_text leaves the value (half-width brackets)."""
    text = clean_text(raw)
    spellings = {k.translate(TO_HALF_WIDTH): v for k, v in {**load_code_list(code_list).lookup(), **mapping.codes}.items()}
    value = F.element_at(F.create_map(*[F.lit(x) for pair in spellings.items() for x in pair]), text)
    return Typed(value, F.when(text.isNotNull() & value.isNull(), F.lit(CODE_UNMAPPED)))


def _code_expectations(column: str, rule) -> list:
    from jichu_expectations.identifiers import ExpectColumnValuesToBeInChineseCodeList
    from jichu_expectations.suites import CRITICAL

    codes = load_code_list(rule.code_list)
    return [ExpectColumnValuesToBeInChineseCodeList(column=column, code_list=codes.standard, codes=sorted(codes.codes),
                                                    severity=CRITICAL)]


_NUMBER = r"^([+-]?[0-9]+(?:[.][0-9]+)?) ?(.*)$"


def _number(raw: Column, mapping: FieldMapping, rule) -> Typed:
    """A figure in the field's unit (conf/units.yaml), written as a plain decimal without trailing zeros,
    so 4.0 and 4.00, or 1.2亿元 and 12000万元, are one value. The unit is the one the value carries
    (1.2亿元), else the mapping's, else the field's; a unit of another dimension, or none known, is
    UNIT_INVALID. Thousands separators are dropped (1,234.5)."""
    text = F.regexp_replace(clean_text(raw), ",", "")
    units = load_units()
    kept = units[rule.unit] if rule.unit else None
    factors = {name: u.factor / kept.factor for name, u in units.items() if kept and u.dimension == kept.dimension}
    if not kept:
        factors = {"": 1.0}  # a number without a unit: only bare values are read
    matched = text.rlike(_NUMBER)
    unit = F.regexp_extract(text, _NUMBER, 2)
    unit = F.when(unit != "", unit).otherwise(F.lit(mapping.unit or rule.unit or ""))
    factor = F.element_at(F.create_map(*[F.lit(x) for pair in factors.items() for x in pair]), unit)
    amount = F.regexp_extract(text, _NUMBER, 1).cast("double") * factor
    canonical = F.regexp_replace(F.round(amount, 9).cast("decimal(38,9)").cast("string"), r"[.]?0*$", "")
    canonical = F.when(canonical.isin("", "-"), F.lit("0")).otherwise(canonical)
    error = (F.when(text.isNotNull() & ~matched, F.lit(NUMBER_INVALID))
             .when(text.isNotNull() & factor.isNull(), F.lit(UNIT_INVALID)))
    return Typed(F.when(error.isNull(), canonical), error)


def _same_number(a: Column, b: Column, rule) -> Column:
    """Within the field's tolerance (and the rounding of a double)."""
    return F.abs(a.cast("double") - b.cast("double")) <= F.lit(rule.tolerance + 1e-9)


# The types every domain has; domain packages register the rest (jichu.core.registry).
registry.register(FieldType("string", free_text(clean_text)))
registry.register(FieldType("date", _date, spark_type="date"))
registry.register(FieldType("code", _code, expectations=_code_expectations, needs_code_list=True))
registry.register(FieldType("number", _number, spark_type="double", same=_same_number))


def assign_standard_fields(staged: DataFrame, extract: Extract, domain: EntityType) -> DataFrame:
    """Map an extract's staged columns to its domain's typed fields, one record per row and role.

    Adds every domain field (null where the extract does not carry it), `<field>_candidate` for
    identifier fields, `observed_at`, what the source says of the record's values (`valid_from`,
    `valid_to`, `vintage`: null where the extract declares none), `original` (field -> value as
    delivered) and `errors` (field, column, reason code, required) for values that failed.
    """
    per_role = [_standard_record(staged, extract, domain, role, fields) for role, fields in extract.mappings().items()]
    result = per_role[0]
    for other in per_role[1:]:
        result = result.unionByName(other)
    return result


def _standard_record(staged: DataFrame, extract: Extract, domain: EntityType, role: str | None, fields: dict) -> DataFrame:
    values, errors, originals = {}, [], []
    for name, rule in domain.fields.items():
        mapping = fields.get(name)
        kind = registry.field_type(rule.type)
        if mapping is None:
            values[name] = F.lit(None).cast(kind.spark_type)
            if kind.candidate:
                values[name + CANDIDATE] = F.lit(None).cast("string")
            continue
        raw = _raw(mapping)
        typed = kind.standardise(raw, mapping, rule)
        values[name] = typed.value
        if kind.candidate:
            values[name + CANDIDATE] = typed.candidate
        originals += [F.lit(name), raw]
        errors.append(_failure(name, mapping, typed.value, typed.error))
    # The date the facts refer to is checked as any date is: one that does not parse is an issue and
    # null, never the batch's date, which stands only for a date the extract does not deliver.
    observed = F.to_date(F.col("_batch"))
    if extract.observed_at is not None:
        raw = _raw(extract.observed_at)
        typed = _date(raw, extract.observed_at, None)
        errors.append(_failure("observed_at", extract.observed_at, typed.value, typed.error))
        observed = F.when(clean_text(raw).isNull(), observed).otherwise(typed.value)
    # Validity and release status as the source states them, checked as any date or code is: a value
    # that does not read is an issue (DATE_INVALID, CODE_UNMAPPED) and null, and the row goes on.
    says = {}
    for name, spark_type in SOURCE_SAYS.items():
        mapping = getattr(extract, name)
        if mapping is None:
            says[name] = F.lit(None).cast(spark_type)
            continue
        typed = mapped_code(_raw(mapping), mapping, RELEASE_STATUS) if name == "vintage" else _validity(_raw(mapping), mapping)
        errors.append(_failure(name, mapping, typed.value, typed.error))
        says[name] = typed.value
    ref = F.col("_record_ref") if role is None else F.concat(F.col("_record_ref"), F.lit(f"#{role}"))
    error_array = F.filter(F.array(*errors), lambda e: e.isNotNull()) if errors else F.array().cast(ERROR_TYPE_REQUIRED)
    return staged.select(
        ref.alias("record_ref"),
        *[F.col(f"_{c}").alias(c) for c in LINEAGE[1:]],
        *[v.alias(k) for k, v in values.items()],
        observed.alias("observed_at"),
        *[v.alias(k) for k, v in says.items()],
        F.map_filter(F.create_map(*originals), lambda k, v: v.isNotNull()).alias("original"),
        error_array.cast(ERROR_TYPE_REQUIRED).alias("errors"),
    )


def _failure(name: str, mapping: FieldMapping, value: Column, error: Column) -> Column:
    """The failure of one field's value (field, column, reason code, required), null where it passed."""
    if error is None:  # a type that cannot fail (free text is checked only for formulas)
        error = F.lit(None).cast("string")
    if mapping.required:
        error = F.coalesce(error, F.when(value.isNull(), F.lit(REQUIRED_MISSING)))
    return F.when(error.isNotNull(), F.struct(
        F.lit(name).alias("field"), F.lit(mapping.column).alias("column"), error.alias("code"),
        F.lit(mapping.required).alias("required"),
    ))


def _raw(mapping: FieldMapping) -> Column:
    """The delivered text of a field: its column, else the first of `also` with a value; with a
    `pattern`, the part of the text the pattern's group names."""
    columns = [F.col(f"`{c}`") for c in [mapping.column, *mapping.also]]
    raw = columns[0] if len(columns) == 1 else F.coalesce(*[F.when(F.trim(c) != "", c) for c in columns])
    if mapping.pattern:
        raw = F.when(raw.rlike(mapping.pattern), F.regexp_extract(raw, mapping.pattern, 1)).otherwise(raw)
    return raw


def split_quarantine(typed: DataFrame, entity: EntityType) -> tuple[DataFrame, DataFrame]:
    """A row whose required field failed goes to quarantine with its reasons; every other row is
    standardized, keeping the failures of its optional fields as `issues` (those values are null).
    The record's identity (core/snapshots `IDENTITY`: record_id, row_hash), where the standardize
    stage assigned it, goes with the row either way: a quarantined row is processed again when
    delivered again unchanged, and a snapshot that stops listing it retracts it."""
    fatal = F.exists("errors", lambda e: e["required"])
    as_reported = F.transform("errors", lambda e: F.struct(e["field"].alias("field"), e["column"].alias("column"), e["code"].alias("code")))
    good = typed.where(~fatal).withColumn("issues", as_reported.cast(ERROR_TYPE)).drop("errors")
    bad = typed.where(fatal).select(
        F.lit(entity.domain).alias("domain"), F.lit(entity.entity).alias("entity"),
        *[F.col(c) for c in LINEAGE],
        F.filter("errors", lambda e: e["required"])[0]["code"].alias("reason"),
        as_reported.cast(ERROR_TYPE).alias("errors"),
        "original",
        *[c for c in ("record_id", "row_hash") if c in typed.columns],
    )
    return good, bad


def count_issues(standardized: DataFrame) -> DataFrame:
    """Failed optional values per file, field and reason code (e.g. unknown codes and their count)."""
    return (
        standardized.select("agency", "extract", "batch", "file", F.explode("issues").alias("i"))
        .groupBy("agency", "extract", "batch", "file", "i.field", "i.column", "i.code").count()
    )
