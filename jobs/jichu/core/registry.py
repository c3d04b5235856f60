"""Registries the domains add to: field types, rules over a domain's whole set, and the reference data
several domains read.

The core names no domain's field type, code list or agency. A field's `type` in conf/domains is a
name looked up here; the core registers the types every domain has (string, date, code, in
`jichu.core.standardize`), and each domain package (`jichu.domains.<domain>`) registers its own when
it is imported: identifiers, names, registering offices. Every package under `jichu.domains` is
imported on the first lookup, so a domain may use a type another domain owns (legal entities'
representatives carry population's ID numbers) and adding a base database adds a package, not a
line here.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Protocol

from pyspark.sql import functions as F

if TYPE_CHECKING:
    from pyspark.sql import Column

    from jichu.config import FieldMapping, FieldRule


@dataclass(frozen=True)
class Typed:
    """A delivered text as a field type reads it: the standardized value (null where it fails), the
    reason code of a failure (null where it passed), and for identifiers and names the companion
    that linkage compares (`<field>_candidate`), which keeps what a failed value still says."""

    value: Column
    error: Column | None = None
    candidate: Column | None = None


def _equal(a: Column, b: Column, rule: FieldRule) -> Column:
    return a == b


@dataclass(frozen=True)
class FieldType:
    """A kind of value: how a delivered text becomes one (`standardise`), what the gate checks of a
    published column of it (`expectations`), and when two of its values are the same value (`same`,
    used wherever values are compared: verification and the change-only statements).

    standardise(raw, mapping, rule) -> Typed: `raw` is the delivered text, `mapping` the extract's
    (conf/extracts: date formats, code spellings), `rule` the domain's field (conf/domains).
    expectations(column, rule) -> Great Expectations expectations for that column of the candidate.
    same(a, b, rule) -> whether two stored values (strings) of a field of the type are one value.
    """

    name: str
    standardise: Callable[[Column, FieldMapping, FieldRule], Typed]
    spark_type: str = "string"
    candidate: bool = False
    expectations: Callable[[str, FieldRule], list] = field(default=lambda column, rule: [])
    same: Callable[[Column, Column, FieldRule], Column] = _equal
    needs_code_list: bool = False


_TYPES: dict[str, FieldType] = {}


def _add(registered: dict, name: str, thing, what: str):
    """A name registered twice is a programming error, never a silent override."""
    if name in registered and registered[name] is not thing:
        raise ValueError(f"{what} {name!r} is registered twice")
    registered[name] = thing
    return thing


def _lookup(registered: dict, name: str, what: str):
    load_packages()
    try:
        return registered[name]
    except KeyError:
        raise KeyError(f"unknown {what} {name!r}; registered: {', '.join(sorted(registered)) or 'none'}") from None


def register(field_type: FieldType) -> FieldType:
    """Add a field type."""
    return _add(_TYPES, field_type.name, field_type, "field type")


@cache
def load_packages() -> tuple[str, ...]:
    """Import the core's own types and every domain package, once; the names of the packages."""
    import jichu.core.standardize  # noqa: F401  (registers the types every domain has)
    import jichu.domains

    names = tuple(sorted(m.name for m in pkgutil.iter_modules(jichu.domains.__path__) if m.ispkg))
    for name in names:
        importlib.import_module(f"jichu.domains.{name}")
    return names


def field_type(name: str) -> FieldType:
    return _lookup(_TYPES, name, "field type")


def field_types() -> dict[str, FieldType]:
    load_packages()
    return dict(_TYPES)


def same_value(fields: dict[str, FieldRule], field: Column, a: Column, b: Column) -> Column:
    """Whether values `a` and `b` of the field named by the column `field` are one value, by the field
    type's comparator (FieldType.same): what verification and the change-only statements compare with.
    Null is the same as null only (a null-safe comparison)."""
    result = a.eqNullSafe(b)
    for name, rule in fields.items():
        kind = field_type(rule.type)
        if kind.same is not _equal:
            compared = F.when(a.isNull() | b.isNull(), a.isNull() & b.isNull()).otherwise(kind.same(a, b, rule))
            result = F.when(field == name, compared).otherwise(result)
    return result


# --- rules over a domain's whole set -----------------------------------------------------------

_RULES: dict[str, Callable] = {}


def register_rule(name: str, check: Callable) -> Callable:
    """Add a rule over a domain's published set, for conf rules that name it as their `check`.

    check(published, rule, batch_date) -> DataFrame of the questioned entities: `entity_id`, and the
    evidence against the questioned field as `golden_value` and `golden_agency` (optionally
    `golden_batch` and `golden_record_ref`). `published` is the wide record the gate validates (every
    field, `<field>_source`, and the references); `batch_date` is the date of the batch verified. The
    rule may read other tables through published.sparkSession (the references it names).
    """
    return _add(_RULES, name, check, "rule")


def rule_check(name: str) -> Callable:
    return _lookup(_RULES, name, "rule check")


# --- reference data ------------------------------------------------------------------------------


class Divisions(Protocol):
    """Administrative divisions (GB/T 2260), which several base databases read: the geo base database
    is their source. Codes are six digits (province, prefecture or county)."""

    def ever_existed(self, code: str) -> bool:
        """Whether the code was ever a division, current or retired."""

    def valid_in(self, code: str, year: int) -> bool:
        """Whether the code was a county-level division in that year."""

    def current(self) -> dict[str, tuple[str, str]]:
        """code -> (name, parent code) of every current province, prefecture and county."""

    def names(self) -> dict[str, tuple[str, ...]]:
        """Division names, current and retired, with their short forms (武汉市 and 武汉), by their
        first two characters, longest first: the places a name or an address may begin with."""


_REFERENCES: dict[str, object] = {}


def provide(kind: str, implementation: object) -> None:
    """Make `implementation` the one source of a kind of reference data (`divisions`)."""
    _REFERENCES[kind] = implementation


def divisions() -> Divisions:
    load_packages()
    return _REFERENCES["divisions"]  # type: ignore[return-value]
