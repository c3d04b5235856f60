"""Legal entities' field types, over the pure checks in `identifiers`."""

from __future__ import annotations

from functools import cache

import pandas as pd
from pyspark.sql import Column
from pyspark.sql import functions as F
from pyspark.sql import types as T

from jichu.config import load_code_list
from jichu.core.registry import FieldType, Typed
from jichu.core.standardize import checked_udf, clean_text, free_text
from jichu.core.text import traditional_to_simplified
from jichu.domains.legal_entities import identifiers

_USCC_SCHEMA = T.StructType([T.StructField(n, T.StringType()) for n in ("value", "error", "candidate")])


@cache
def _uscc_udf(org_types: frozenset[str]):
    @F.pandas_udf(_USCC_SCHEMA)
    def udf(values: pd.Series) -> pd.DataFrame:
        return pd.DataFrame([identifiers.clean_uscc_value(v, org_types) for v in values],
                            columns=["value", "error", "candidate"])

    return udf


def _uscc(raw, mapping, rule) -> Typed:
    # The GB 32100 authority-and-type pairs (characters 1-2) that exist: the org_type code list.
    checked = _uscc_udf(frozenset(load_code_list("org_type").codes))(clean_text(raw))
    return Typed(checked["value"], checked["error"], checked["candidate"])


def _uscc_expectations(column, rule) -> list:
    from jichu_expectations.identifiers import ExpectColumnValuesToBeValidCreditCode
    from jichu_expectations.suites import CRITICAL

    return [ExpectColumnValuesToBeValidCreditCode(column=column, severity=CRITICAL)]


def _checked_type(name: str, check, doc: str) -> FieldType:
    udf = checked_udf(check)

    def standardise(raw, mapping, rule) -> Typed:
        checked = udf(clean_text(raw))
        return Typed(checked["value"], checked["error"])

    standardise.__doc__ = doc
    return FieldType(name, standardise)


@F.pandas_udf(T.StringType())
def _org_name_key(names: pd.Series) -> pd.Series:
    return names.map(identifiers.org_name_key, na_action="ignore")


def clean_org_name(col: Column) -> Column:
    """An organisation's name in one written form (identifiers.clean_org_name, in Spark): simplified
    characters, no spaces, brackets full-width as names are registered."""
    trad, simp = traditional_to_simplified()
    text = F.regexp_replace(F.translate(clean_text(col), trad, simp), r"\s+", "")
    return F.translate(text, "()", "（）")


def _org_name(raw, mapping, rule) -> Typed:
    typed = free_text(clean_org_name)(raw, mapping, rule)
    return Typed(typed.value, typed.error, _org_name_key(typed.value))


TYPES = [
    FieldType("uscc", _uscc, candidate=True, expectations=_uscc_expectations),
    _checked_type("orgcode", identifiers.clean_orgcode_value, "组织机构代码 (GB 11714), also read from a credit or tax number"),
    _checked_type("regno", identifiers.clean_regno_value, "工商注册号: 15 digits, ISO 7064 MOD 11,10"),
    _checked_type("industry", identifiers.clean_industry_value, "行业代码: a GB/T 4754-2017 class"),
    _checked_type("office", identifiers.clean_office_value, "登记机关, as the division whose office it is"),
    FieldType("org_name", _org_name, candidate=True),
]
"""credit code, the legacy identifiers, industry class, registering office, and the name, whose
candidate is its comparison form (identifiers.org_name_key)."""
