"""The linkage spec: which records may pair (blocking), how pairs are compared, and where the cut-offs lie.

A spec is one YAML file validated by pydantic models that forbid unknown keys, so a typo names the
file and the key. The engine reads every column name from here; nothing about people, companies
or any other entity is written into the engine itself.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, field_validator, model_validator

from jichu.config import Strict, load_yaml_model

Scorer = Literal["exact", "ratio", "token_sort_ratio", "partial_ratio", "jaro_winkler", "levenshtein", "prefix"]
Normalize = Literal["none", "text"]


def _check_column(name: str) -> str:
    # Spark parses dots and backticks in column references; refusing them here keeps the engine
    # free of quoting rules and keeps the `<field>_l` / `level_<field>` output names readable.
    if not name.strip() or "." in name or "`" in name:
        raise ValueError(f"column name {name!r} must be non-empty and contain no '.' or '`'")
    return name


Column = Annotated[str, AfterValidator(_check_column)]


class Level(Strict):
    """One agreement level: a pair lands here when its similarity reaches `min`."""

    min: float = Field(ge=0, le=1, description="lowest similarity (0..1) that reaches this level")
    m: float = Field(gt=0, le=1, description="P(level | the pair is a match)")
    u: float = Field(gt=0, le=1, description="P(level | the pair is not a match)")

    @property
    def weight(self) -> float:
        """The Fellegi-Sunter weight log2(m/u) this level adds to a pair."""
        return math.log2(self.m / self.u)


class Comparison(Strict):
    """One compared column: a scorer on 0..1 and the levels that turn the score into evidence."""

    field: Column
    scorer: Scorer
    normalize: Normalize = "none"
    levels: list[Level] = Field(min_length=1)

    @field_validator("levels")
    @classmethod
    def _levels_ordered(cls, levels: list[Level]) -> list[Level]:
        mins = [lv.min for lv in levels]
        if any(a <= b for a, b in zip(mins, mins[1:])):
            raise ValueError(f"levels must have strictly decreasing min, got {mins}")
        if mins[-1] != 0:
            raise ValueError(f"the last level must have min 0 so every pair lands somewhere, got {mins[-1]}")
        return levels


class Thresholds(Strict):
    match: float = Field(gt=0, le=1, description="probability at or above which a pair is a match")
    review: float = Field(ge=0, lt=1, description="probability at or above which a pair goes to review")

    @model_validator(mode="after")
    def _review_below_match(self) -> Thresholds:
        if not self.review < self.match:
            raise ValueError(f"review ({self.review}) must be below match ({self.match})")
        return self


class LinkSpec(Strict):
    """A probabilistic (Fellegi-Sunter) linkage: blocking rules, comparisons, prior and thresholds."""

    name: str
    id_column: Column = Field(description="unique id of each input record")
    blocking: list[list[Column]] = Field(
        min_length=1, description="candidate pairs agree on every column of at least one rule"
    )
    comparisons: list[Comparison] = Field(min_length=1)
    prior: float = Field(gt=0, lt=1, description="prior probability that a candidate pair is a match")
    thresholds: Thresholds

    @field_validator("blocking")
    @classmethod
    def _rules_valid(cls, rules: list[list[str]]) -> list[list[str]]:
        for rule in rules:
            if not rule:
                raise ValueError("a blocking rule needs at least one column")
            if len(set(rule)) != len(rule):
                raise ValueError(f"blocking rule {rule} repeats a column")
        if len({tuple(sorted(r)) for r in rules}) != len(rules):
            raise ValueError("two blocking rules use the same columns")
        return rules

    @field_validator("comparisons")
    @classmethod
    def _fields_unique(cls, comparisons: list[Comparison]) -> list[Comparison]:
        fields = [c.field for c in comparisons]
        repeated = sorted({f for f in fields if fields.count(f) > 1})
        if repeated:
            raise ValueError(f"fields compared more than once: {repeated}")
        return comparisons

    @property
    def compared_fields(self) -> list[str]:
        return [c.field for c in self.comparisons]

    @property
    def blocking_fields(self) -> list[str]:
        return list(dict.fromkeys(c for rule in self.blocking for c in rule))

    @property
    def columns(self) -> list[str]:
        """Every input column the spec reads: the id first, then compared and blocking columns."""
        return list(dict.fromkeys([self.id_column, *self.compared_fields, *self.blocking_fields]))


def load_link_spec(path: Path) -> LinkSpec:
    """Read a linkage spec; raises `jichu.config.ConfigError` naming the file and the key."""
    return load_yaml_model(Path(path), LinkSpec)


def spec_sha256(text: str) -> str:
    """The hash a run names its spec by: SHA-256 of the file's text as read (UTF-8), so any edit,
    a comment included, gives a new hash, and the saved copy hashes back to it."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
