"""Character tables shared by the standardizing checks and the reports: full-width forms (Ｕ＋FF01-FF5E and the
ideographic space) and their half-width counterparts, as Chinese input methods type them, and the
invisible characters text cleaning removes."""

from functools import cache

FULL_WIDTH = "".join(chr(c) for c in range(0xFF01, 0xFF5F)) + "\u3000"
HALF_WIDTH = "".join(chr(c) for c in range(0x21, 0x7F)) + " "
TO_HALF_WIDTH = str.maketrans(FULL_WIDTH, HALF_WIDTH)
"""For str.translate; Spark's F.translate takes FULL_WIDTH and HALF_WIDTH."""

FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "＝", "＋", "－", "＠")
"""A leading character that makes a spreadsheet run a cell as a formula (OWASP CSV injection), in ASCII
and as Chinese input methods type it. Standardize makes a text value starting so a FORMULA_LIKE issue;
the reports neutralise such cells."""

INVISIBLE = "\u200b\u200c\u200d\u2060\ufeff\u00ad\u200e\u200f"
"""Characters that show nothing and that text cleaning removes before any comparison: zero-width space,
non-joiner and joiner, word joiner, a stray byte-order mark, soft hyphen, left-to-right and
right-to-left marks. An agency must never be told its value differs by something it cannot see."""


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
