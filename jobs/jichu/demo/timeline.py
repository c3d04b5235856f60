"""Batch calendar of the demo province: monthly batch dates and each extract's delivery cadence."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

FIRST_BATCH = dt.date(2026, 1, 1)

# Months (1-12) in which an extract of each cadence is delivered after its first delivery.
CADENCE_MONTHS = {
    "monthly": set(range(1, 13)),
    "quarterly": {1, 4, 7, 10},
    "semester": {3, 9},  # 教育 student rolls: spring and autumn terms
    "annual": {1},
}


def add_months(day: dt.date, months: int) -> dt.date:
    y, m = divmod(day.month - 1 + months, 12)
    return dt.date(day.year + y, m + 1, 1)


@dataclass(frozen=True)
class Calendar:
    batches: int

    @property
    def dates(self) -> list[dt.date]:
        return [add_months(FIRST_BATCH, i) for i in range(self.batches)]

    @property
    def names(self) -> list[str]:
        return [d.isoformat() for d in self.dates]

    @property
    def horizon(self) -> dt.date:
        """The last batch date: nothing in the province happens after it."""
        return self.dates[-1]

    def deliveries(self, cadence: str) -> list[int]:
        """Batch indexes in which an extract of this cadence is delivered; every extract delivers in batch 0."""
        months = CADENCE_MONTHS[cadence]
        return [i for i, d in enumerate(self.dates) if i == 0 or d.month in months]

    def windows(self, cadence: str, backlog_from: dt.date) -> list[tuple[int, dt.date, dt.date]]:
        """(batch index, start, end) for an events extract: events with start <= date < end.

        The first delivery carries the backlog since `backlog_from`; each later one the events since
        the previous delivery.
        """
        out, start = [], backlog_from
        for i in self.deliveries(cadence):
            end = self.dates[i]
            out.append((i, start, end))
            start = end
        return out
