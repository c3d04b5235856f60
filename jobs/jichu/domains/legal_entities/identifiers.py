"""Organisations' identifiers and names: pure checks behind legal entities' field types.

- 统一社会信用代码 (GB 32100-2015): python-stdnum's format and MOD 31 check, then what stdnum does not
  check: a registration authority and organisation type that go together (the `org_type` code list),
  a registering-office division code that exists (registry.divisions), and the embedded
  GB 11714 organisation code's own check character.
- Legacy identifiers still held by other agencies' systems: the 9-character 组织机构代码 (GB 11714,
  often written 12345678-9), the 15-character 税务登记号 (a division code and the organisation code)
  and the 15-digit 工商注册号 (ISO 7064 MOD 11,10, python-stdnum).
- GB/T 4754-2017 industry classes: four digits in a division the standard has, optionally led by
  the section letter, which must be the division's.
- Organisation names: one written form, and a comparison form for linkage.
- Registering offices (登记机关): the division whose office it is, read from the place names that
  lead its name (湖北省武汉市江汉区市场监督管理局 is 420103's).
"""

from __future__ import annotations

import re
from functools import cache

from stdnum.cn import uscc
from stdnum.exceptions import InvalidChecksum, InvalidFormat, InvalidLength
from stdnum.iso7064 import mod_11_10

from jichu.core import registry
from jichu.core.text import TO_HALF_WIDTH

USCC_ERRORS = {InvalidLength: "USCC_LENGTH", InvalidFormat: "USCC_FORMAT", InvalidChecksum: "USCC_CHECKSUM"}
USCC_LEGACY = "USCC_LEGACY"  # a legacy identifier where the credit code belongs
USCC_TYPE = "USCC_TYPE"  # authority and type characters that do not go together
USCC_DIVISION = "USCC_DIVISION"  # the registering office's division code does not exist
USCC_ORG_CODE = "USCC_ORG_CODE"  # the embedded organisation code fails its own check
ORG_CODE_CHECKSUM = "ORG_CODE_CHECKSUM"
REGNO_CHECKSUM = "REGNO_CHECKSUM"
INDUSTRY_INVALID = "INDUSTRY_INVALID"
OFFICE_UNKNOWN = "OFFICE_UNKNOWN"  # no current division, or more than one, leads the office's name

# GB 11714-1997: weights of the 8 body characters; a letter counts as 10 (A) to 35 (Z).
_ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)
_ORG_BODY = re.compile(r"^[0-9A-Z]{8}$")


def compact_code(value: str) -> str:
    """Half-width, upper case, without spaces, hyphens and dots (12345678-9 is 123456789)."""
    return re.sub(r"[\s\-.]", "", value.translate(TO_HALF_WIDTH)).upper()


def org_check_character(body: str) -> str:
    """The GB 11714 check character of an 8-character organisation-code body."""
    total = sum((int(c) if c.isdigit() else ord(c) - 55) * w for c, w in zip(body, _ORG_WEIGHTS))
    check = 11 - total % 11
    return "X" if check == 10 else "0" if check == 11 else str(check)


def is_org_code(code: str) -> bool:
    return len(code) == 9 and bool(_ORG_BODY.match(code[:8])) and code[8] == org_check_character(code[:8])


def is_regno(code: str) -> bool:
    return len(code) == 15 and code.isdigit() and mod_11_10.is_valid(code)


def division_exists(code: str) -> bool:
    """Whether a six-digit code is a GB/T 2260 division (province, prefecture or county), current or retired."""
    return registry.divisions().ever_existed(code)


def is_tax_number(code: str) -> bool:
    """A 15-character 税务登记号: a division code and the organisation code."""
    return len(code) == 15 and division_exists(code[:6]) and is_org_code(code[6:])


def clean_uscc_value(value: str | None, org_types: frozenset[str]) -> tuple[str | None, str | None, str | None]:
    """(valid credit code or None, reason code or None, candidate characters for linkage).

    `org_types` are the GB 32100 authority-and-type pairs (characters 1-2) that exist. A legacy
    identifier in the credit code's place is USCC_LEGACY: the orgcode and regno fields take it.
    """
    if value is None or not value.strip():
        return None, None, None
    code = compact_code(value)
    if is_org_code(code) or is_regno(code) or is_tax_number(code):
        return None, USCC_LEGACY, None
    try:
        uscc.validate(code)
    except tuple(USCC_ERRORS) as e:
        return None, USCC_ERRORS[type(e)], code
    if code[:2] not in org_types:
        return None, USCC_TYPE, code
    if not division_exists(code[2:8]):
        return None, USCC_DIVISION, code
    if not is_org_code(code[8:17]):
        return None, USCC_ORG_CODE, code
    return code, None, code


def clean_orgcode_value(value: str | None) -> tuple[str | None, str | None]:
    """(organisation code or None, reason code or None) from whatever identifier an agency holds:
    the code itself (9 characters), a valid credit code (characters 9-17) or a tax number (7-15).
    A 9-character value that fails its check is ORG_CODE_CHECKSUM; any other value is not an
    organisation code at all (the credit code's own check reports it)."""
    if value is None or not value.strip():
        return None, None
    code = compact_code(value)
    if len(code) == 9:
        return (code, None) if is_org_code(code) else (None, ORG_CODE_CHECKSUM)
    if len(code) == 18 and uscc.is_valid(code) and is_org_code(code[8:17]):
        return code[8:17], None
    if is_tax_number(code):
        return code[6:], None
    return None, None


def clean_regno_value(value: str | None) -> tuple[str | None, str | None]:
    """(15-digit registration number or None, reason code or None). Fifteen digits that fail the
    MOD 11,10 check are REGNO_CHECKSUM unless they read as a tax number; other values are not
    registration numbers."""
    if value is None or not value.strip():
        return None, None
    code = compact_code(value)
    if is_regno(code):
        return code, None
    if len(code) == 15 and code.isdigit() and not is_tax_number(code):
        return None, REGNO_CHECKSUM
    return None, None


# GB/T 4754-2017: the sections (门类) and the two-digit divisions (大类) each holds.
INDUSTRY_SECTIONS = {
    "A": (1, 5), "B": (6, 12), "C": (13, 43), "D": (44, 46), "E": (47, 50), "F": (51, 52), "G": (53, 60),
    "H": (61, 62), "I": (63, 65), "J": (66, 69), "K": (70, 70), "L": (71, 72), "M": (73, 75), "N": (76, 79),
    "O": (80, 82), "P": (83, 83), "Q": (84, 85), "R": (86, 90), "S": (91, 96), "T": (97, 97),
}
def industry_section(division: int) -> str | None:
    for letter, (low, high) in INDUSTRY_SECTIONS.items():
        if low <= division <= high:
            return letter
    return None


def clean_industry_value(value: str | None) -> tuple[str | None, str | None]:
    """(four-digit GB/T 4754-2017 class or None, reason code or None). A section letter before the
    class (F5212, as market regulation writes it) is dropped once it agrees with the division."""
    if value is None or not value.strip():
        return None, None
    code = compact_code(value)
    letter, digits = (code[0], code[1:]) if code[:1].isalpha() else (None, code)
    if len(digits) != 4 or not digits.isdigit():
        return None, INDUSTRY_INVALID
    section = industry_section(int(digits[:2]))
    if section is None or (letter is not None and letter != section):
        return None, INDUSTRY_INVALID
    return digits, None


# --- names ----------------------------------------------------------------------------------------

# Company-form words at the end of a name, longest first: 有限公司 and 有限责任公司 are one form.
_FORM_SUFFIX = re.compile(r"(股份有限公司|有限责任公司|有限公司|分公司|公司|（个体工商户）)$")
_BRACKETED = re.compile(r"（[^（）]*）")


def clean_org_name(value: str | None) -> str | None:
    """An organisation's name in one written form: half-width text (the caller's clean_text and
    traditional-to-simplified conversion come first), brackets full-width as names are registered,
    no spaces (a Chinese name has none)."""
    if value is None:
        return None
    name = re.sub(r"\s+", "", value).replace("(", "（").replace(")", "）")
    return name or None


def org_name_key(name: str | None) -> str | None:
    """The comparison form of a cleaned organisation name: without its company-form suffix, without a
    bracketed part, and without a leading place name, so that 武汉市XX科技有限公司, XX科技（武汉）有限责任公司
    and XX科技有限公司 compare as XX科技. Kept only for linkage; the name itself is never changed so."""
    if name is None:
        return None
    key = _FORM_SUFFIX.sub("", name)
    key = _BRACKETED.sub("", key)
    stripped = True
    while stripped:  # 湖北省武汉市 or 鄂州市梁子湖区: a province, then a prefecture, then a county
        stripped = False
        for place in registry.divisions().names().get(key[:2], ()):
            if key.startswith(place) and len(key) > len(place) + 1:
                key, stripped = key[len(place):], True
                break
    return key or name


# --- registering offices --------------------------------------------------------------------------

# An office of the central tax administration is named after the division it serves.
_OFFICE_PREFIXES = ("国家税务总局",)


def _contains(ancestor: str, code: str) -> bool:
    """Whether division `code` lies inside division `ancestor`."""
    divisions = registry.divisions().current()
    parent = divisions[code][1]
    while parent:
        if parent == ancestor:
            return True
        parent = divisions[parent][1] if parent in divisions else ""
    return False


@cache
def _divisions_by_first_character() -> dict[str, tuple[tuple[str, str], ...]]:
    by_first: dict[str, list[tuple[str, str]]] = {}
    for code, (name, _) in registry.divisions().current().items():
        by_first.setdefault(name[0], []).append((name, code))
    return {c: tuple(sorted(v, key=lambda nc: -len(nc[0]))) for c, v in by_first.items()}


def _place_paths(text: str, parent: str | None) -> list[tuple[int, str]]:
    """Every (characters read, division) of a chain of division names at the start of `text`, each
    inside the one before (a province, its prefecture, the prefecture's county)."""
    paths = []
    for name, code in _divisions_by_first_character().get(text[:1], ()):
        if text.startswith(name) and (parent is None or _contains(parent, code)):
            deeper = _place_paths(text[len(name):], code)
            paths += [(len(name) + n, c) for n, c in deeper] or [(len(name), code)]
    return paths


@cache
def clean_office_value(value: str | None) -> tuple[str | None, str | None]:
    """(division code or None, reason code or None) of a registering office from its name: the
    longest chain of current division names that leads the name, when exactly one division reads
    so and the office's own name follows it. 武汉市江汉区市场监督管理局 is 420103, 湖北省民政厅
    420000, 国家税务总局大冶市税务局 420281; a name no chain or several chains lead is OFFICE_UNKNOWN."""
    if value is None or not value.strip():
        return None, None
    text = re.sub(r"\s+", "", value.translate(TO_HALF_WIDTH))
    for prefix in _OFFICE_PREFIXES:
        text = text.removeprefix(prefix)
    paths = [(n, c) for n, c in _place_paths(text, None) if n < len(text)]
    longest = max((n for n, _ in paths), default=0)
    codes = {c for n, c in paths if n == longest}
    return (codes.pop(), None) if len(codes) == 1 else (None, OFFICE_UNKNOWN)
