"""Standardization: typed, validated values from staged strings, and quarantine for the rest.

Pure transforms over DataFrames. Each domain field has a type (conf/domains); each extract says
which of its columns feeds the field and how its codes and dates read (conf/extracts). A row whose
value cannot be standardized goes to quarantine with a reason code per field, so that per extract
and batch: staged = standardized + quarantined.
"""

from __future__ import annotations

import pandas as pd
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T
from stdnum.cn import ric
from stdnum.exceptions import InvalidChecksum, InvalidComponent, InvalidFormat, InvalidLength

from jichu.config import Domain, Extract, FieldMapping

LINEAGE = ["record_ref", "agency", "extract", "batch", "file", "row"]
"""Lineage of every record; staging prefixes these with `_` so they never clash with agency columns."""
ERROR_TYPE = "array<struct<field:string,column:string,code:string>>"

# Reason codes, one per way a value can fail. The quarantine table and reports use these.
REQUIRED_MISSING = "REQUIRED_MISSING"
DATE_INVALID = "DATE_INVALID"
CODE_UNMAPPED = "CODE_UNMAPPED"
DIVISION_INVALID = "DIVISION_INVALID"
RIC_ERRORS = {
    InvalidLength: "ID_LENGTH",
    InvalidFormat: "ID_FORMAT",
    InvalidChecksum: "ID_CHECKSUM",
    InvalidComponent: "ID_BIRTH_DATE",
}

_FULL_WIDTH = "".join(chr(c) for c in range(0xFF01, 0xFF5F)) + "\u3000"
_HALF_WIDTH = "".join(chr(c) for c in range(0x21, 0x7F)) + " "


def clean_ric_value(value: str | None) -> tuple[str | None, str | None]:
    """Validate a GB 11643 citizen ID number; return (compact number, None) or (None, reason code)."""
    if value is None or not value.strip():
        return None, None
    try:
        return ric.validate(value.translate(str.maketrans(_FULL_WIDTH, _HALF_WIDTH))), None
    except tuple(RIC_ERRORS) as e:
        return None, RIC_ERRORS[type(e)]


@F.pandas_udf(T.StructType([T.StructField("value", T.StringType()), T.StructField("error", T.StringType())]))
def _clean_ric(values: pd.Series) -> pd.DataFrame:
    cleaned = [clean_ric_value(v) for v in values]
    return pd.DataFrame(cleaned, columns=["value", "error"])


def clean_text(col: Column) -> Column:
    """Full-width to half-width, trimmed, inner runs of white space folded; empty becomes null."""
    text = F.regexp_replace(F.trim(F.translate(col, _FULL_WIDTH, _HALF_WIDTH)), r"\s+", " ")
    return F.when(text == "", None).otherwise(text)


def _typed(raw: Column, kind: str, mapping: FieldMapping) -> tuple[Column, Column]:
    """Return (standardized value, error code or null) for one field."""
    text = clean_text(raw)
    if kind in ("string", "name"):
        value = F.regexp_replace(text, " ", "") if kind == "name" else text
        return value, F.lit(None).cast("string")
    if kind == "date":
        formats = mapping.formats or ["yyyy-MM-dd"]
        value = F.coalesce(*[F.try_to_date(text, fmt) for fmt in formats])
        return value, F.when(text.isNotNull() & value.isNull(), F.lit(DATE_INVALID))
    if kind == "code":
        lookup = F.create_map(*[F.lit(x) for pair in mapping.codes.items() for x in pair])
        value = F.element_at(lookup, text) if mapping.codes else text
        return value, F.when(text.isNotNull() & value.isNull(), F.lit(CODE_UNMAPPED))
    if kind == "division":
        ok = text.rlike(r"^[1-9][0-9]{5}$")
        return F.when(ok, text), F.when(text.isNotNull() & ~ok, F.lit(DIVISION_INVALID))
    if kind == "ric":
        checked = _clean_ric(text)
        return checked["value"], checked["error"]
    raise ValueError(f"unknown field type {kind!r}")


def assign_standard_fields(staged: DataFrame, extract: Extract, domain: Domain) -> DataFrame:
    """Map an extract's staged columns to its domain's typed fields.

    Adds every domain field (null where the extract does not carry it), `original` (field ->
    value as delivered) and `errors` (field, column, reason code) for values that failed.
    """
    values, errors, originals = {}, [], []
    for name, rule in domain.fields.items():
        mapping = extract.fields.get(name)
        if mapping is None:
            values[name] = F.lit(None).cast("date" if rule.type == "date" else "string")
            continue
        raw = F.col(f"`{mapping.column}`")
        value, error = _typed(raw, rule.type, mapping)
        if mapping.required:
            error = F.coalesce(error, F.when(value.isNull(), F.lit(REQUIRED_MISSING)))
        values[name] = value
        originals += [F.lit(name), raw]
        errors.append(
            F.when(error.isNotNull(), F.struct(F.lit(name).alias("field"), F.lit(mapping.column).alias("column"), error.alias("code")))
        )
    error_array = F.filter(F.array(*errors), lambda e: e.isNotNull()) if errors else F.array().cast(ERROR_TYPE)
    return staged.select(
        *[F.col(f"_{c}").alias(c) for c in LINEAGE],
        *[v.alias(k) for k, v in values.items()],
        F.map_filter(F.create_map(*originals), lambda k, v: v.isNotNull()).alias("original"),
        error_array.cast(ERROR_TYPE).alias("errors"),
    )


def split_quarantine(typed: DataFrame, domain: str) -> tuple[DataFrame, DataFrame]:
    """Rows without errors are standardized; the others go to quarantine with their reasons."""
    good = typed.where(F.size("errors") == 0).drop("errors")
    bad = typed.where(F.size("errors") > 0).select(
        F.lit(domain).alias("domain"),
        *[F.col(c) for c in LINEAGE],
        F.col("errors")[0]["code"].alias("reason"),
        "errors",
        "original",
    )
    return good, bad

