"""The true persons of the demo province: who they are, where they live when, and their life events.

Every value here is the truth; agencies' extracts are views of it, with defects injected on the way out.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field


@dataclass
class Residence:
    county: str  # current GB/T 2260 county code (6 digits)
    township: str  # 9-digit township code
    address_id: str
    address: str  # full standard address text
    since: dt.date


@dataclass
class Person:
    index: int  # global, dense from 0; the truth entity is person_ref(index)
    id_number: str  # 18-character GB 11643 number, issued in the county of first registration
    name: str
    sex: str  # GB/T 2261.1: 1 male, 2 female
    ethnicity: str  # GB/T 3304 two-digit code
    birth_date: dt.date
    household: str
    relation: str  # 与户主关系: 户主, 配偶, 子, 女, 父亲, 母亲
    education: str  # GB/T 4658 code
    residences: list[Residence] = field(default_factory=list)  # ordered by `since`
    death_date: dt.date | None = None
    spouse: int | None = None  # index of the spouse
    married_on: dt.date | None = None
    divorced_on: dt.date | None = None
    employer: str | None = None  # truth entity of the legal entity employing the person (人社 insured)
    insured_since: dt.date | None = None

    @property
    def ref(self) -> str:
        return person_ref(self.index)

    def alive_on(self, day: dt.date) -> bool:
        return self.birth_date <= day and (self.death_date is None or day <= self.death_date)

    def age_on(self, day: dt.date) -> int:
        b = self.birth_date
        return day.year - b.year - ((day.month, day.day) < (b.month, b.day))

    def residence_on(self, day: dt.date) -> Residence:
        current = self.residences[0]
        for r in self.residences:
            if r.since <= day:
                current = r
        return current

    def previous_residence(self, day: dt.date) -> Residence | None:
        """The residence before the one current on `day`, if the person had moved by then."""
        past = [r for r in self.residences if r.since <= day]
        return past[-2] if len(past) >= 2 else None


def person_ref(index: int) -> str:
    return f"P{index:09d}"
