"""The defect catalogue (conf/demo/defects.yaml), rate overrides, and counted injection.

`Injector.hit(kind)` draws one Bernoulli trial at the kind's rate for one eligible record and counts
both the trial and the hit, so the run's summary can state, per kind, how many records were eligible
and how many were hit. Tests compare those figures with the configured rates and with the labels
found in the truth files.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from jichu.config import ConfigError, conf_dir


@dataclass(frozen=True)
class DefectKind:
    name: str
    rate: float
    domain: str
    applies: str
    what: str


def load_catalogue(path: Path | None = None) -> dict[str, DefectKind]:
    path = path or conf_dir() / "demo" / "defects.yaml"
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return {name: DefectKind(name, float(v["rate"]), v["domain"], v["applies"], v["what"]) for name, v in raw.items()}


def load_rates(defects_file: Path | None = None, overrides: list[str] | None = None) -> dict[str, float]:
    """Default rates from the catalogue, then a YAML file of `kind: rate`, then `kind=rate` strings."""
    catalogue = load_catalogue()
    rates = {k: d.rate for k, d in catalogue.items()}
    updates: dict[str, object] = {}
    if defects_file is not None:
        loaded = yaml.safe_load(Path(defects_file).read_text(encoding="utf-8")) or {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"{defects_file}: expected a mapping of defect kind to rate")
        updates.update({str(k): (v, str(defects_file)) for k, v in loaded.items()})
    for item in overrides or []:
        kind, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"--rate {item}: expected kind=rate")
        updates[kind.strip()] = (value.strip(), "--rate")
    for kind, (value, where) in updates.items():
        if kind not in catalogue:
            raise ConfigError(f"{where}: unknown defect kind {kind!r}; known: {', '.join(sorted(catalogue))}")
        try:
            rate = float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: rate of {kind} is not a number: {value!r}") from None
        if rate < 0 or (rate > 1 and kind not in ("redelivered_file", "truncated_file")):
            raise ConfigError(f"{where}: rate of {kind} must be between 0 and 1, got {rate}")
        rates[kind] = rate
    return rates


@dataclass
class Injector:
    """Bernoulli trials per defect kind on one random stream, with counts of trials and hits."""

    rates: dict[str, float]
    rng: np.random.Generator
    eligible: Counter = field(default_factory=Counter)
    injected: Counter = field(default_factory=Counter)

    def hit(self, kind: str, eligible: bool = True, u: float | None = None) -> bool:
        """One trial for one eligible record. `u` is a uniform draw made earlier, so that a record
        delivered again in a later snapshot keeps the same defect (a register does not heal by itself)."""
        if not eligible:
            return False
        self.eligible[kind] += 1
        if (self.rng.random() if u is None else u) < self.rates[kind]:
            self.injected[kind] += 1
            return True
        return False

    def merge(self, other: "Injector") -> None:
        self.eligible.update(other.eligible)
        self.injected.update(other.injected)
