"""The publishing gate: a Great Expectations checkpoint over the candidate table.

Write, audit, publish: the candidate is written to `audit.*`, validated here, and only a passing
candidate is copied to `published.*`. Data Docs are written whether the gate passes or not.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from pyspark.sql import DataFrame

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

import great_expectations as gx  # noqa: E402
from great_expectations.checkpoint import UpdateDataDocsAction  # noqa: E402

from jichu.config import EntityType, var_dir  # noqa: E402
from jichu_expectations.suites import CRITICAL, build_suite  # noqa: E402


@dataclass
class Failure:
    expectation: str
    column: str | None
    severity: str
    observed: str


@dataclass
class GateResult:
    suite: str
    passed: bool
    evaluated: int
    failures: list[Failure] = field(default_factory=list)
    data_docs: str = ""

    @property
    def critical(self) -> list[Failure]:
        return [f for f in self.failures if f.severity == CRITICAL]

    def describe(self) -> str:
        lines = [f"{f.severity}: {f.expectation}({f.column or ''}) observed {f.observed}" for f in self.failures]
        return "; ".join(lines) or "all expectations met"

    def to_dict(self) -> dict:
        return {**asdict(self), "critical_failures": len(self.critical)}


def gx_root() -> Path:
    return var_dir() / "gx"


def _observed(result: dict) -> str:
    r = result or {}
    if "observed_value" in r:
        return str(r["observed_value"])
    if "unexpected_count" in r:
        return f"{r['unexpected_count']} unexpected ({r.get('unexpected_percent', 0):.2f}%)"
    return "failed"


def run_gate(candidate: DataFrame, domain: EntityType, links_table: str | None = None,
             unresolved: frozenset[str] = frozenset(), absent: frozenset[str] = frozenset(),
             statements_table: str | None = None) -> GateResult:
    """Validate `candidate` with the entity type's suite (build_suite: references in `unresolved` and
    looked-up authorities in `absent` are not checked; a link to an entity without a current statement
    in `statements_table` may miss the candidate); write Data Docs; return what failed."""
    context = gx.get_context(mode="file", project_root_dir=str(gx_root()))
    source = context.data_sources.add_or_update_spark(name="jichu")
    asset_name = f"{domain.domain}__{domain.entity}"
    asset = next((a for a in source.assets if a.name == asset_name), None) or source.add_dataframe_asset(asset_name)
    batch_def = next((b for b in asset.batch_definitions if b.name == "candidate"), None)
    batch_def = batch_def or asset.add_batch_definition_whole_dataframe("candidate")
    suite = context.suites.add_or_update(build_suite(domain, links_table, unresolved, absent, statements_table))
    validation = context.validation_definitions.add_or_update(
        gx.ValidationDefinition(name=asset_name, data=batch_def, suite=suite)
    )
    checkpoint = context.checkpoints.add_or_update(
        gx.Checkpoint(
            name=f"gate__{asset_name}",
            validation_definitions=[validation],
            actions=[UpdateDataDocsAction(name="data_docs")],
            result_format={"result_format": "SUMMARY"},
        )
    )
    run = checkpoint.run(batch_parameters={"dataframe": candidate})
    failures, evaluated = [], 0
    for vr in run.run_results.values():
        for r in vr.results:
            evaluated += 1
            if r.success:
                continue
            cfg = r.expectation_config
            failures.append(
                Failure(
                    expectation=cfg.type,
                    column=cfg.kwargs.get("column"),
                    severity=getattr(cfg.severity, "value", cfg.severity),
                    observed=_observed(r.result),
                )
            )
    docs = gx_root() / "gx" / "uncommitted" / "data_docs" / "local_site" / "index.html"
    passed = not any(f.severity == CRITICAL for f in failures)
    return GateResult(suite=suite.name, passed=passed, evaluated=evaluated, failures=failures, data_docs=str(docs))
