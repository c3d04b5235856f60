"""Custom expectations that read as what they check: Chinese identifiers, codes and references.

They are Spark-SQL checks written independently of python-stdnum (which standardization uses),
so the gate is a second implementation of each rule, not the first one run twice.

Each is an `UnexpectedRowsExpectation` whose query selects the rows that break the rule; GX
substitutes `{batch}` with a temp view of the validated data and formats the query with
`str.format`, so every literal brace in the rule (regex quantifiers) is doubled by `_rows_where_not`.
"""

from __future__ import annotations

from typing import ClassVar, List, Optional

from great_expectations.compatibility import pydantic
from great_expectations.expectations import UnexpectedRowsExpectation

# GB/T 2260: the 34 province-level divisions (provinces, autonomous regions, municipalities,
# Taiwan, Hong Kong and Macao), the first two digits of every administrative division code.
PROVINCE_CODES: tuple[str, ...] = (
    "11", "12", "13", "14", "15",
    "21", "22", "23",
    "31", "32", "33", "34", "35", "36", "37",
    "41", "42", "43", "44", "45", "46",
    "50", "51", "52", "53", "54",
    "61", "62", "63", "64", "65",
    "71", "81", "82",
)  # fmt: skip

_RIC_WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
_RIC_CHECK = "10X98765432"

# GB 32100-2015: the 31 characters of the code (digits and capitals without I, O, Z, S, V);
# a character's value is its position here.
USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_CHARSET = "0-9A-HJ-NPQRTUWXY"
_USCC_WEIGHTS = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28]
# GB 32100-2015 registration authorities: 1-9 (establishment office, foreign affairs, justice,
# culture, civil affairs, tourism, religion, trade unions, market regulation), A (Central Military
# Commission establishment office), N (agriculture), Y (others).
USCC_AUTHORITIES = "123456789ANY"


def _col(column: str) -> str:
    return "`" + column.replace("`", "``") + "`"


def _table(name: str) -> str:
    """Quote a (possibly catalog- and database-qualified) table name part by part."""
    return ".".join(_col(part.strip("`")) for part in name.split("."))


def _literal(value: str) -> str:
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


def _in_list(expr: str, values) -> str:
    return f"{expr} IN ({', '.join(_literal(v) for v in values)})"


def _rows_where_not(column: str, valid: str) -> str:
    """The unexpected-rows query: non-null values of `column` for which `valid` is not true.

    `coalesce(..., false)` makes an undecidable verdict (a NULL from a failed parse) a failure, and
    the braces of the predicate are doubled so GX's `str.format` leaves them alone."""
    valid = valid.replace("{", "{{").replace("}", "}}")
    return f"SELECT * FROM {{batch}} WHERE {_col(column)} IS NOT NULL AND NOT coalesce({valid}, false)"


def _column_rule(values: dict, valid: str, description: str) -> dict:
    """Fill in an expectation's query from its rule (`_rows_where_not`) and a default description."""
    values["unexpected_rows_query"] = _rows_where_not(values["column"], valid)
    values.setdefault("description", description)
    return values


def province_prefix_sql(expr: str) -> str:
    """Spark SQL that is true when the first two characters of `expr` are a GB/T 2260 province code."""
    return _in_list(f"substring({expr}, 1, 2)", PROVINCE_CODES)


def ric_valid_sql(column: str, plausible: bool = True) -> str:
    """Spark SQL that is true when `column` is a valid 18-character GB 11643-1999 citizen ID number:
    17 digits, a real birth date in positions 7-14, and the ISO 7064 MOD 11-2 check character.

    With `plausible` (the default) also: the first six digits start with a GB/T 2260 province code,
    and the birth date lies between 1900-01-01 and today."""
    c = _col(column)
    total = " + ".join(f"try_cast(substring({c}, {i + 1}, 1) AS INT) * {w}" for i, w in enumerate(_RIC_WEIGHTS))
    born = f"try_to_date(substring({c}, 7, 8), 'yyyyMMdd')"
    checks = [
        f"length({c}) = 18",
        f"{c} RLIKE '^[0-9]+[0-9X]$'",
        f"substring({c}, 1, 17) RLIKE '^[0-9]+$'",
        f"{born} IS NOT NULL",
    ]
    if plausible:
        checks += [province_prefix_sql(c), f"{born} BETWEEN DATE'1900-01-01' AND current_date()"]
    checks.append(f"substring('{_RIC_CHECK}', CAST(pmod({total}, 11) AS INT) + 1, 1) = substring({c}, 18, 1)")
    return "(" + " AND ".join(checks) + ")"


def division_code_valid_sql(column: str, province: str | None = None) -> str:
    """Spark SQL that is true when `column` is a GB/T 2260 county-level code: six digits, not
    starting with 0, a province prefix (or exactly `province`), and not ending in 00 (which would
    name a province or a prefecture, not a county or district)."""
    c = _col(column)
    checks = [
        f"length({c}) = 6",
        f"{c} RLIKE '^[1-9][0-9]{{5}}$'",
        province_prefix_sql(c) if province is None else f"substring({c}, 1, 2) = {_literal(province)}",
        f"substring({c}, 5, 2) <> '00'",
    ]
    return "(" + " AND ".join(checks) + ")"


def uscc_valid_sql(column: str) -> str:
    """Spark SQL that is true when `column` is a valid GB 32100-2015 unified social credit code:
    18 characters of the code's charset, a registration authority code first, a six-digit
    administrative division code in positions 3-8, and the MOD 31 check character last."""
    c = _col(column)
    value = "instr('{alphabet}', substring({c}, {i}, 1)) - 1"
    total = " + ".join(
        f"({value.format(alphabet=USCC_ALPHABET, c=c, i=i + 1)}) * {w}" for i, w in enumerate(_USCC_WEIGHTS)
    )
    checks = [
        f"length({c}) = 18",
        f"{c} RLIKE '^[{USCC_AUTHORITIES}][{_USCC_CHARSET}][0-9]{{6}}[{_USCC_CHARSET}]{{10}}$'",
        f"substring('{USCC_ALPHABET}', CAST(pmod(-({total}), 31) AS INT) + 1, 1) = substring({c}, 18, 1)",
    ]
    return "(" + " AND ".join(checks) + ")"


def in_code_list_sql(column: str, codes) -> str:
    """Spark SQL that is true when `column` (read as a string) is one of `codes`."""
    return _in_list(f"CAST({_col(column)} AS STRING)", codes) if codes else "false"


class ExpectColumnValuesToBeValidChineseIdNumber(UnexpectedRowsExpectation):
    """Every non-null value of `column` is a valid 公民身份号码 (GB 11643-1999, 18 characters).

    Checks the MOD 11-2 check character (ISO 7064), a real birth date between 1900-01-01 and
    today, and an address code that starts with a GB/T 2260 province code."""

    checks_each_row: ClassVar[bool] = True  # reads one row at a time: see suites.checks_each_row
    column: str
    unexpected_rows_query: str = ""
    description: str = ""

    @pydantic.root_validator(pre=True)
    def _query_from_column(cls, values: dict) -> dict:
        column = values["column"]
        return _column_rule(values, ric_valid_sql(column), f"{column}: valid GB 11643 citizen ID numbers (公民身份号码)")


class ExpectColumnValuesToBeValidDivisionCode(UnexpectedRowsExpectation):
    """Every non-null value of `column` is a GB/T 2260 county-level administrative division code:
    six digits, a province-level prefix, not ending in 00. With `province` (e.g. "42") the prefix
    must be that province."""

    checks_each_row: ClassVar[bool] = True  # reads one row at a time: see suites.checks_each_row
    column: str
    province: Optional[str] = None
    unexpected_rows_query: str = ""
    description: str = ""

    @pydantic.root_validator(pre=True)
    def _query_from_column(cls, values: dict) -> dict:
        column, province = values["column"], values.get("province")
        if province is not None:
            province = str(province)
            if province not in PROVINCE_CODES:
                raise ValueError(f"province {province!r} is not a GB/T 2260 province code")
            values["province"] = province
        where = f" in province {province}" if province else ""
        return _column_rule(values, division_code_valid_sql(column, province),
                            f"{column}: GB/T 2260 county-level division codes{where}")


class ExpectColumnValuesToBeInChineseCodeList(UnexpectedRowsExpectation):
    """Every non-null value of `column` is one of `codes`, the code list of the national standard
    named by `code_list` (e.g. "GB/T 2261.1" for sex, "GB/T 2659" for countries)."""

    checks_each_row: ClassVar[bool] = True  # reads one row at a time: see suites.checks_each_row
    column: str
    code_list: str
    codes: List[str]
    unexpected_rows_query: str = ""
    description: str = ""

    @pydantic.root_validator(pre=True)
    def _query_from_column(cls, values: dict) -> dict:
        column, codes = values["column"], [str(c) for c in values.get("codes") or []]
        values["codes"] = codes
        return _column_rule(values, in_code_list_sql(column, codes), f"{column}: codes of {values['code_list']}")


class ExpectColumnValuesToBeValidCreditCode(UnexpectedRowsExpectation):
    """Every non-null value of `column` is a valid unified social credit code (统一社会信用代码,
    GB 32100-2015): 18 characters without I, O, Z, S, V, a registration authority code (1-9, A, N,
    Y) first, a GB/T 2260 division code in positions 3-8, and the MOD 31 check character."""

    checks_each_row: ClassVar[bool] = True  # reads one row at a time: see suites.checks_each_row
    column: str
    unexpected_rows_query: str = ""
    description: str = ""

    @pydantic.root_validator(pre=True)
    def _query_from_column(cls, values: dict) -> dict:
        column = values["column"]
        return _column_rule(values, uscc_valid_sql(column), f"{column}: valid GB 32100-2015 unified social credit codes")


class ExpectColumnValuesToReferenceExistingEntities(UnexpectedRowsExpectation):
    """Referential integrity: every non-null value of `column` appears in `table_column` of the
    catalog table (or temp view) `table`, e.g. links refer to existing persons."""

    column: str
    table: str
    table_column: str
    unexpected_rows_query: str = ""
    description: str = ""

    @pydantic.root_validator(pre=True)
    def _query_from_column(cls, values: dict) -> dict:
        column, table, table_column = values["column"], values["table"], values["table_column"]
        c, t, tc = (x.replace("{", "{{").replace("}", "}}") for x in (_col(column), _table(table), _col(table_column)))
        values["unexpected_rows_query"] = (
            f"SELECT b.* FROM {{batch}} AS b WHERE b.{c} IS NOT NULL"
            f" AND NOT EXISTS (SELECT 1 FROM {t} AS r WHERE r.{tc} = b.{c})"
        )
        values.setdefault("description", f"{column}: refers to an existing {table}.{table_column}")
        return values
