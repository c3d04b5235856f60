"""The publishing gate: a Great Expectations checkpoint over the candidate table.

Write, audit, publish: the candidate is written to `audit.*`, validated here, and only a passing
candidate is copied to `published.*`. Data Docs are written whether the gate passes or not.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

import great_expectations as gx  # noqa: E402
from great_expectations.checkpoint import UpdateDataDocsAction  # noqa: E402

from jichu.config import EntityType, var_dir  # noqa: E402
from jichu_expectations.suites import CRITICAL, build_suite, checks_each_row  # noqa: E402


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
    row_checks: str = ""  # row_checks_fingerprint of the row-by-row checks
    rows_checked: int = 0  # the rows they read: every row, or those changed since the published table

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


@dataclass(frozen=True)
class Passed:
    """The published table and the fingerprint of the row checks (`row_checks`) its rows passed, and
    where known the entities whose rows may differ from the candidate's (`changed`: the candidate is
    derived from golden, `tables.derive`)."""
    rows: DataFrame
    row_checks: str
    changed: list[str] | None = None


def row_checks_fingerprint(expectations: list) -> str:
    """What the row-by-row checks are: their types, columns, code lists and queries."""
    configs = sorted(json.dumps(e.configuration.to_json_dict(), sort_keys=True, default=str) for e in expectations)
    return hashlib.sha256("\n".join(configs).encode("utf-8")).hexdigest()[:16]


def changed_rows(candidate: DataFrame, published: DataFrame) -> DataFrame:
    """The candidate's rows that are not, column for column, a row of `published`: new entities and
    changed values. Compared by a 64-bit hash of the whole row, so only hashes are shuffled; the
    changed ones are few and materialized, and each check of them reads no more."""
    columns = sorted(candidate.columns)
    if sorted(published.columns) != columns:
        return candidate
    row_hash = F.xxhash64(*[F.col(f"`{c}`") for c in columns]).alias("_row_hash")
    new = candidate.select(row_hash).subtract(published.select(row_hash)).localCheckpoint()
    return candidate.withColumn("_row_hash", row_hash).join(new, "_row_hash", "left_semi").drop("_row_hash").localCheckpoint()


def run_gate(candidate: DataFrame, domain: EntityType, links_table: str | None = None,
             unresolved: frozenset[str] = frozenset(), absent: frozenset[str] = frozenset(),
             statements_table: str | None = None, passed: Passed | None = None) -> GateResult:
    """Validate `candidate` with the entity type's suite (build_suite: references in `unresolved` and
    looked-up authorities in `absent` are not checked; a link to an entity without a current statement
    in `statements_table` may miss the candidate); write Data Docs; return what failed.

    The suite is run in two parts. The checks that hold row by row (suites.checks_each_row) read only
    the rows that differ from `passed`, the published table, when its rows passed the same row checks:
    on a monthly batch, the few that changed (the rows of `passed.changed` where it names them, else
    those that `changed_rows` finds). Without `passed`, or after the checks changed, they read
    every row. The other checks (counts, uniqueness, shares of nulls, links) always read the whole
    candidate."""
    suite = build_suite(domain, links_table, unresolved, absent, statements_table)
    whole, each_row = [], []
    for e in suite.expectations:
        (each_row if checks_each_row(e) else whole).append(e)
    fingerprint = row_checks_fingerprint(each_row)
    if passed is None or passed.row_checks != fingerprint:
        rows = candidate
    elif passed.changed is not None:
        # Materialized: each expectation queries the rows, and each query would plan the list anew.
        rows = candidate.where(F.col("entity_id").isin(passed.changed)).localCheckpoint()
    else:
        rows = changed_rows(candidate, passed.rows)
    context = gx.get_context(mode="file", project_root_dir=str(gx_root()))
    source = context.data_sources.add_or_update_spark(name="jichu")
    asset_name = f"{domain.domain}__{domain.entity}"
    parts = [
        (asset_name, whole, candidate),
        (f"{asset_name}__rows", each_row, rows),
    ]
    runs = [_checkpoint(context, source, name, gx.ExpectationSuite(name=name, expectations=checks), frame)
            for name, checks, frame in parts if checks]
    failures, evaluated = [], 0
    for vr in (r for run in runs for r in run.run_results.values()):
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
    return GateResult(suite=suite.name, passed=not any(f.severity == CRITICAL for f in failures), evaluated=evaluated,
                      failures=failures, data_docs=str(docs), row_checks=fingerprint, rows_checked=rows.count())


def _checkpoint(context, source, name: str, suite: gx.ExpectationSuite, frame: DataFrame):
    """Run `suite` over `frame` as the checkpoint gate__<name>, updating Data Docs."""
    asset = next((a for a in source.assets if a.name == name), None) or source.add_dataframe_asset(name)
    batch_def = next((b for b in asset.batch_definitions if b.name == "candidate"), None)
    batch_def = batch_def or asset.add_batch_definition_whole_dataframe("candidate")
    validation = context.validation_definitions.add_or_update(
        gx.ValidationDefinition(name=name, data=batch_def, suite=context.suites.add_or_update(suite))
    )
    checkpoint = context.checkpoints.add_or_update(
        gx.Checkpoint(
            name=f"gate__{name}",
            validation_definitions=[validation],
            actions=[UpdateDataDocsAction(name="data_docs")],
            result_format={"result_format": "SUMMARY"},
        )
    )
    return checkpoint.run(batch_parameters={"dataframe": frame})
