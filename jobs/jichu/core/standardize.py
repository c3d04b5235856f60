"""Standardization: typed, validated values from staged strings, and quarantine for the rest.

Pure transforms over DataFrames. Each domain field has a type (conf/domains); each extract says
which of its columns feeds the field and how its codes and dates read (conf/extracts). A value
that fails its check is a recorded issue (field, column, reason code) and becomes null; a row
whose *required* field fails goes to quarantine instead, so that per extract and batch:
staged = standardized + quarantined + unchanged (a snapshot's rows carried from its previous
delivery, core/snapshots.py, are not standardized again).
"""

from __future__ import annotations

from functools import cache

import pandas as pd
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T
from stdnum.cn import ric
from stdnum.exceptions import InvalidChecksum, InvalidComponent, InvalidFormat, InvalidLength

from jichu.config import Domain, Extract, FieldMapping, load_code_list
from jichu.core import orgcodes
from jichu.core.text import FORMULA_START, FULL_WIDTH, HALF_WIDTH, TO_HALF_WIDTH

LINEAGE = ["record_ref", "agency", "extract", "batch", "file", "row"]
"""Lineage of every record; staging prefixes these with `_` so they never clash with agency columns."""
ERROR_TYPE = "array<struct<field:string,column:string,code:string>>"
ERROR_TYPE_REQUIRED = "array<struct<field:string,column:string,code:string,required:boolean>>"
CANDIDATE = "_candidate"
"""Suffix of the companion column that linkage compares: an identifier's characters even when it
fails its check (a transposed or mistyped number is close to the right one), an organisation
name's comparison form (orgcodes.org_name_key)."""
CANDIDATE_TYPES = ("ric", "uscc", "org_name")

# Reason codes, one per way a value can fail. The quarantine table and reports use these.
REQUIRED_MISSING = "REQUIRED_MISSING"
DATE_INVALID = "DATE_INVALID"
CODE_UNMAPPED = "CODE_UNMAPPED"
DIVISION_INVALID = "DIVISION_INVALID"
FORMULA_LIKE = "FORMULA_LIKE"
ID_ADDRESS_CODE = "ID_ADDRESS_CODE"
RIC_ERRORS = {
    InvalidLength: "ID_LENGTH",
    InvalidFormat: "ID_FORMAT",
    InvalidChecksum: "ID_CHECKSUM",
    InvalidComponent: "ID_BIRTH_DATE",
}
# Every date layout the agencies were seen to use; an extract's own formats are tried first.
# Single pattern letters read one or two digits, so 2021/8/1 and 2021/08/01 both parse.
DATE_FORMATS = ["yyyy-M-d", "yyyy/M/d", "yyyyMMdd", "yyyy年M月d日", "yyyy.M.d"]

# The middle dot of minority names (GB 18030 U+00B7) as agencies type it: katakana dot, bullet,
# full stop, hyphenation point, and so on.
_DOTS = "・•.．‧∙⋅﹒･"


def upgrade_legacy_ric(number: str) -> str:
    """A 15-digit ID number (GB 11643-1989) as its 18-digit form: century 19 and a check character."""
    body = number[:6] + "19" + number[6:]
    return body + ric.calc_check_digit(body + "0")  # stdnum expects a placeholder check character


@cache
def _address_code_valid(code: str, birth_year: str) -> bool:
    """Whether a county code was valid in a year (python-stdnum's table of codes and their years).

    A code the table knows only as a province or prefecture (no county) is not an address code;
    stdnum's lookup fails on it with a KeyError, which is that answer too.
    """
    try:
        ric.get_birth_place(code + birth_year + "0101000X")
    except (InvalidComponent, KeyError):
        return False
    return True


def clean_ric_value(value: str | None) -> tuple[str | None, str | None, str | None]:
    """Validate a GB 11643 citizen ID number.

    Returns (valid 18-character number or None, reason code or None, candidate digits). A 15-digit
    legacy number is upgraded to 18 first. The checks are python-stdnum's, in its order (length,
    format, check character, birth date, birth place); the address code must have been valid in
    the year of birth, so a number issued under a since-retired county code stays valid. The place
    check is cached per code and year: it is a table lookup, and the costliest part per row.
    The candidate keeps the cleaned characters of an invalid number for linkage.
    """
    if value is None or not value.strip():
        return None, None, None
    number = ric.compact(value.translate(TO_HALF_WIDTH)).upper()
    if len(number) == 15 and number.isdigit():
        number = upgrade_legacy_ric(number)
    if len(number) != 18:
        return None, RIC_ERRORS[InvalidLength], number
    if not number[:-1].isdigit() or not number[:-1].isascii():
        return None, RIC_ERRORS[InvalidFormat], number
    if number[-1] != ric.calc_check_digit(number):
        return None, RIC_ERRORS[InvalidChecksum], number
    try:
        ric.get_birth_date(number)
    except InvalidComponent:
        return None, RIC_ERRORS[InvalidComponent], number
    if not _address_code_valid(number[:6], number[6:10]):
        return None, ID_ADDRESS_CODE, number
    return number, None, number


_RIC_SCHEMA = T.StructType([T.StructField(n, T.StringType()) for n in ("value", "error", "candidate")])


@F.pandas_udf(_RIC_SCHEMA)
def _clean_ric(values: pd.Series) -> pd.DataFrame:
    return pd.DataFrame([clean_ric_value(v) for v in values], columns=["value", "error", "candidate"])


_CHECKED_SCHEMA = T.StructType([T.StructField(n, T.StringType()) for n in ("value", "error")])


def _checked(check):
    """A pandas UDF of a (value -> (value, error)) check, run once per distinct value of a batch."""

    @F.pandas_udf(_CHECKED_SCHEMA)
    def udf(values: pd.Series) -> pd.DataFrame:
        return pd.DataFrame([check(v) for v in values], columns=["value", "error"])

    return udf


_ORG_CODE = _checked(orgcodes.clean_orgcode_value)
_REGNO = _checked(orgcodes.clean_regno_value)
_INDUSTRY = _checked(orgcodes.clean_industry_value)
_OFFICE = _checked(orgcodes.clean_office_value)


@cache
def _uscc_udf(org_types: frozenset[str]):
    @F.pandas_udf(_RIC_SCHEMA)
    def udf(values: pd.Series) -> pd.DataFrame:
        return pd.DataFrame([orgcodes.clean_uscc_value(v, org_types) for v in values], columns=["value", "error", "candidate"])

    return udf


@F.pandas_udf(T.StringType())
def _org_name_key(names: pd.Series) -> pd.Series:
    return names.map(orgcodes.org_name_key, na_action="ignore")


@cache
def traditional_to_simplified() -> tuple[str, str]:
    """(traditional, simplified) characters for F.translate, from OpenCC's t2s conversion.

    Names are compared character by character, so OpenCC's one-to-one character mappings are all a
    name needs, and Spark applies them without a Python round trip per row.
    """
    import opencc

    chars = "".join(chr(c) for c in range(0x3400, 0xA000))
    converted = opencc.OpenCC("t2s").convert("\n".join(chars)).split("\n")
    pairs = [(a, b) for a, b in zip(chars, converted, strict=True) if len(b) == 1 and a != b]
    return "".join(a for a, _ in pairs), "".join(b for _, b in pairs)


def clean_text(col: Column) -> Column:
    """Full-width to half-width, inner runs of white space folded, trimmed; empty becomes null."""
    # Folded before trimming: F.trim removes spaces only, and a leading tab must not stay as a space.
    text = F.trim(F.regexp_replace(F.translate(col, FULL_WIDTH, HALF_WIDTH), r"\s+", " "))
    return F.when(text == "", None).otherwise(text)


def clean_name(col: Column) -> Column:
    """A person's name as written in the household register.

    Simplified characters (OpenCC t2s); any dot variant between two parts becomes the middle dot;
    a space between two parts of two or more characters in a name of five or more is taken for a
    lost middle dot (e.g. 买买提 艾力); every other space goes (张 伟 is 张伟).
    """
    trad, simp = traditional_to_simplified()
    text = F.translate(clean_text(col), trad, simp)
    text = F.regexp_replace(text, f" ?[{_DOTS}·] ?", "·")
    lost_dot = text.rlike(r"^[^ ]{2,} [^ ]{2,}$") & (F.length(text) >= 6)
    text = F.when(lost_dot, F.regexp_replace(text, " ", "·")).otherwise(text)
    return F.regexp_replace(text, " ", "")


def clean_org_name(col: Column) -> Column:
    """An organisation's name in one written form (orgcodes.clean_org_name, in Spark): simplified
    characters, no spaces, brackets full-width as names are registered."""
    trad, simp = traditional_to_simplified()
    text = F.regexp_replace(F.translate(clean_text(col), trad, simp), r"\s+", "")
    return F.translate(text, "()", "（）")


_TEXT_CLEANERS = {"string": clean_text, "name": clean_name, "org_name": clean_org_name}
"""The free-text field types, kept as the agency typed them once cleaned: nothing else checks their
values, so each is checked for a formula."""


def formula_like(text: Column) -> Column:
    """Whether a spreadsheet would run the text as a formula: it starts like one and is not a signed
    number (a loss of -12.5 in 营业收入 is a number to a spreadsheet, and runs nothing)."""
    return F.substring(text, 1, 1).isin(*FORMULA_START) & ~text.rlike(r"^[+-][0-9]+([.][0-9]+)?$")


def parse_date(text: Column, formats: list[str]) -> Column:
    """The first of the extract's formats, then every known layout, that reads the text as a date."""
    ordered = list(dict.fromkeys([*formats, *DATE_FORMATS]))
    return F.coalesce(*[F.try_to_date(text, fmt) for fmt in ordered])


def _typed(raw: Column, kind: str, mapping: FieldMapping, code_list: str | None) -> tuple[Column, Column, Column | None]:
    """Return (standardized value, error code or null, candidate or None) for one field."""
    text = clean_text(raw)
    if kind in _TEXT_CLEANERS:
        value = _TEXT_CLEANERS[kind](raw)
        formula = formula_like(value)
        value = F.when(~formula, value)
        return value, F.when(formula, F.lit(FORMULA_LIKE)), _org_name_key(value) if kind == "org_name" else None
    if kind == "date":
        value = parse_date(text, mapping.formats)
        return value, F.when(text.isNotNull() & value.isNull(), F.lit(DATE_INVALID)), None
    if kind == "code":
        # The national list's codes, labels and aliases, then the agency's own spellings.
        # Spellings are compared as clean_text leaves the value (half-width brackets).
        spellings = {k.translate(TO_HALF_WIDTH): v for k, v in {**load_code_list(code_list).lookup(), **mapping.codes}.items()}
        value = F.element_at(F.create_map(*[F.lit(x) for pair in spellings.items() for x in pair]), text)
        return value, F.when(text.isNotNull() & value.isNull(), F.lit(CODE_UNMAPPED)), None
    if kind == "division":
        ok = text.rlike(r"^[1-9][0-9]{5}$")
        return F.when(ok, text), F.when(text.isNotNull() & ~ok, F.lit(DIVISION_INVALID)), None
    if kind == "ric":
        checked = _clean_ric(text)
        return checked["value"], checked["error"], checked["candidate"]
    if kind == "uscc":
        checked = _uscc_udf(frozenset(load_code_list("org_type").codes))(text)
        return checked["value"], checked["error"], checked["candidate"]
    if kind in ("orgcode", "regno", "industry", "office"):
        checked = {"orgcode": _ORG_CODE, "regno": _REGNO, "industry": _INDUSTRY, "office": _OFFICE}[kind](text)
        return checked["value"], checked["error"], None
    raise ValueError(f"unknown field type {kind!r}")


def assign_standard_fields(staged: DataFrame, extract: Extract, domain: Domain) -> DataFrame:
    """Map an extract's staged columns to its domain's typed fields, one record per row and role.

    Adds every domain field (null where the extract does not carry it), `<field>_candidate` for
    identifier fields, `observed_at`, `original` (field -> value as delivered) and `errors`
    (field, column, reason code, required) for values that failed.
    """
    per_role = [_standard_record(staged, extract, domain, role, fields) for role, fields in extract.mappings().items()]
    result = per_role[0]
    for other in per_role[1:]:
        result = result.unionByName(other)
    return result


def _standard_record(staged: DataFrame, extract: Extract, domain: Domain, role: str | None, fields: dict) -> DataFrame:
    values, errors, originals = {}, [], []
    for name, rule in domain.fields.items():
        mapping = fields.get(name)
        empty = F.lit(None).cast("date" if rule.type == "date" else "string")
        if mapping is None:
            values[name] = empty
            if rule.type in CANDIDATE_TYPES:
                values[name + CANDIDATE] = F.lit(None).cast("string")
            continue
        raw = _raw(mapping)
        value, error, candidate = _typed(raw, rule.type, mapping, rule.code_list)
        values[name] = value
        if rule.type in CANDIDATE_TYPES:
            values[name + CANDIDATE] = candidate
        originals += [F.lit(name), raw]
        errors.append(_failure(name, mapping, value, error))
    # The date the facts refer to is checked as any date is: one that does not parse is an issue and
    # null, never the batch's date, which stands only for a date the extract does not deliver.
    observed = F.to_date(F.col("_batch"))
    if extract.observed_at is not None:
        raw = _raw(extract.observed_at)
        value, error, _ = _typed(raw, "date", extract.observed_at, None)
        errors.append(_failure("observed_at", extract.observed_at, value, error))
        observed = F.when(clean_text(raw).isNull(), observed).otherwise(value)
    ref = F.col("_record_ref") if role is None else F.concat(F.col("_record_ref"), F.lit(f"#{role}"))
    error_array = F.filter(F.array(*errors), lambda e: e.isNotNull()) if errors else F.array().cast(ERROR_TYPE_REQUIRED)
    return staged.select(
        ref.alias("record_ref"),
        *[F.col(f"_{c}").alias(c) for c in LINEAGE[1:]],
        *[v.alias(k) for k, v in values.items()],
        observed.alias("observed_at"),
        F.map_filter(F.create_map(*originals), lambda k, v: v.isNotNull()).alias("original"),
        error_array.cast(ERROR_TYPE_REQUIRED).alias("errors"),
    )


def _failure(name: str, mapping: FieldMapping, value: Column, error: Column) -> Column:
    """The failure of one field's value (field, column, reason code, required), null where it passed."""
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


def split_quarantine(typed: DataFrame, domain: str) -> tuple[DataFrame, DataFrame]:
    """A row whose required field failed goes to quarantine with its reasons; every other row is
    standardized, keeping the failures of its optional fields as `issues` (those values are null).
    The record's identity (core/snapshots `IDENTITY`: record_id, row_hash), where the standardize
    stage assigned it, goes with the row either way: a quarantined row is processed again when
    delivered again unchanged, and a snapshot that stops listing it retracts it."""
    fatal = F.exists("errors", lambda e: e["required"])
    as_reported = F.transform("errors", lambda e: F.struct(e["field"].alias("field"), e["column"].alias("column"), e["code"].alias("code")))
    good = typed.where(~fatal).withColumn("issues", as_reported.cast(ERROR_TYPE)).drop("errors")
    bad = typed.where(fatal).select(
        F.lit(domain).alias("domain"),
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
