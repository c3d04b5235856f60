"""Custom expectations that read as what they check: Chinese identifiers.

They are Spark-SQL checks written independently of python-stdnum (which standardization uses),
so the gate is a second implementation of each rule, not the first one run twice.
"""

from __future__ import annotations

from great_expectations.compatibility import pydantic
from great_expectations.expectations import UnexpectedRowsExpectation

_RIC_WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
_RIC_CHECK = "10X98765432"


def ric_valid_sql(column: str) -> str:
    """Spark SQL that is true when `column` is a valid 18-character GB 11643 citizen ID number:
    17 digits, a real birth date in positions 7-14, and the ISO 7064 MOD 11-2 check character."""
    c = f"`{column}`"
    total = " + ".join(f"CAST(substring({c}, {i + 1}, 1) AS INT) * {w}" for i, w in enumerate(_RIC_WEIGHTS))
    return (
        f"(length({c}) = 18 AND {c} RLIKE '^[0-9]+[0-9X]$' AND substring({c}, 1, 17) RLIKE '^[0-9]+$'"
        f" AND try_to_date(substring({c}, 7, 8), 'yyyyMMdd') IS NOT NULL"
        f" AND substring('{_RIC_CHECK}', CAST(pmod({total}, 11) AS INT) + 1, 1) = substring({c}, 18, 1))"
    )


class ExpectColumnValuesToBeValidChineseIdNumber(UnexpectedRowsExpectation):
    """Every non-null value of `column` is a valid 公民身份号码 (GB 11643-1999, 18 characters)."""

    column: str
    unexpected_rows_query: str = ""
    description: str = ""

    @pydantic.root_validator(pre=True)
    def _query_from_column(cls, values: dict) -> dict:
        column = values["column"]
        values["unexpected_rows_query"] = (
            f"SELECT * FROM {{batch}} WHERE `{column}` IS NOT NULL AND NOT {ric_valid_sql(column)}"
        )
        values.setdefault("description", f"{column}: valid GB 11643 citizen ID numbers (公民身份号码)")
        return values
