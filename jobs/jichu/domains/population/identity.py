"""Persons' identifiers and names: the `ric` (GB 11643 citizen ID number) and `name` field types."""

from __future__ import annotations

import pandas as pd
from pyspark.sql import Column
from pyspark.sql import functions as F
from pyspark.sql import types as T
from stdnum.cn import ric
from stdnum.exceptions import InvalidChecksum, InvalidComponent, InvalidFormat, InvalidLength

from jichu.core import registry
from jichu.core.registry import FieldType, Typed
from jichu.core.standardize import clean_text, free_text
from jichu.core.text import TO_HALF_WIDTH, traditional_to_simplified

ID_ADDRESS_CODE = "ID_ADDRESS_CODE"
RIC_ERRORS = {
    InvalidLength: "ID_LENGTH",
    InvalidFormat: "ID_FORMAT",
    InvalidChecksum: "ID_CHECKSUM",
    InvalidComponent: "ID_BIRTH_DATE",
}
# The middle dot of minority names (GB 18030 U+00B7) as agencies type it: katakana dot, bullet,
# full stop, hyphenation point, and so on.
_DOTS = "・•.．‧∙⋅﹒･"


def upgrade_legacy_ric(number: str) -> str:
    """A 15-digit ID number (GB 11643-1989) as its 18-digit form: century 19 and a check character."""
    body = number[:6] + "19" + number[6:]
    return body + ric.calc_check_digit(body + "0")  # stdnum expects a placeholder check character


def clean_ric_value(value: str | None) -> tuple[str | None, str | None, str | None]:
    """Validate a GB 11643 citizen ID number.

    Returns (valid 18-character number or None, reason code or None, candidate digits). A 15-digit
    legacy number is upgraded to 18 first. The checks are python-stdnum's, in its order (length,
    format, check character, birth date, birth place); the address code must have been a division in
    the year of birth (registry.divisions), so a number issued under a since-retired county code
    stays valid. The candidate keeps the cleaned characters of an invalid number for linkage.
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
    if not registry.divisions().valid_in(number[:6], int(number[6:10])):
        return None, ID_ADDRESS_CODE, number
    return number, None, number


_RIC_SCHEMA = T.StructType([T.StructField(n, T.StringType()) for n in ("value", "error", "candidate")])


@F.pandas_udf(_RIC_SCHEMA)
def _clean_ric(values: pd.Series) -> pd.DataFrame:
    return pd.DataFrame([clean_ric_value(v) for v in values], columns=["value", "error", "candidate"])


def _ric(raw, mapping, rule) -> Typed:
    checked = _clean_ric(clean_text(raw))
    return Typed(checked["value"], checked["error"], checked["candidate"])


def _ric_expectations(column, rule) -> list:
    from jichu_expectations.identifiers import ExpectColumnValuesToBeValidChineseIdNumber
    from jichu_expectations.suites import CRITICAL

    return [ExpectColumnValuesToBeValidChineseIdNumber(column=column, severity=CRITICAL)]


RIC = FieldType("ric", _ric, candidate=True, expectations=_ric_expectations)
"""公民身份号码 (GB 11643); an invalid number keeps its characters as the candidate for linkage."""


def clean_name(col: Column) -> Column:
    """A person's name as written in the household register.

    Simplified characters (OpenCC t2s); any dot variant between two parts becomes the middle dot;
    a space between two parts of two or more characters in a name of five or more is taken for a
    lost middle dot (e.g. 买买提 艾力); every other space goes (张 伟 is 张伟).
    """
    trad, simp = traditional_to_simplified()
    text = F.translate(clean_text(col), trad, simp)
    text = F.regexp_replace(text, f" ?[{_DOTS}·] ?", "·")
    # The lost dot in one pattern (five letters and the space, by the lookahead), so the text appears once
    # in the plan: a name's conversion table is thousands of characters.
    text = F.regexp_replace(text, r"^(?=.{6,}$)([^ ]{2,}) ([^ ]{2,})$", "$1·$2")
    return F.regexp_replace(text, " ", "")


NAME = FieldType("person_name", free_text(clean_name))
"""A person's name (姓名), in one written form."""
