"""Character tables shared by the standardizing checks and the reports: full-width forms (Ｕ＋FF01-FF5E and the
ideographic space) and their half-width counterparts, as Chinese input methods type them."""

FULL_WIDTH = "".join(chr(c) for c in range(0xFF01, 0xFF5F)) + "\u3000"
HALF_WIDTH = "".join(chr(c) for c in range(0x21, 0x7F)) + " "
TO_HALF_WIDTH = str.maketrans(FULL_WIDTH, HALF_WIDTH)
"""For str.translate; Spark's F.translate takes FULL_WIDTH and HALF_WIDTH."""

FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "＝", "＋", "－", "＠")
"""A leading character that makes a spreadsheet run a cell as a formula (OWASP CSV injection), in ASCII
and as Chinese input methods type it. Standardize makes a text value starting so a FORMULA_LIKE issue;
the reports neutralise such cells."""
