"""Run records: each stage writes its figures; `summary.json` gathers them for people and tests.

Layout: ``var/runs/<run_id>/<stage>.json`` and ``var/runs/<run_id>/summary.json``.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from pathlib import Path

from jichu.config import var_dir

STAGE_ORDER = ["ingest", "standardize", "resolve", "golden", "verify", "gate", "publish"]


def safe_run_id(run_id: str) -> str:
    """Airflow run ids hold ':' and '+'; folder names keep letters, digits, '-', '_' and '.'."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", run_id)


def runs_dir() -> Path:
    return var_dir() / "runs"


class RunRecorder:
    def __init__(self, run_id: str, domain: str, batch: str):
        self.run_id = run_id
        self.domain = domain
        self.batch = batch
        self.folder = runs_dir() / safe_run_id(run_id)
        self.folder.mkdir(parents=True, exist_ok=True)

    def record(self, name: str, figures: dict) -> None:
        payload = {"recorded_at": datetime.now(timezone.utc).isoformat(timespec="seconds"), **figures}
        (self.folder / f"{name}.json").write_text(json.dumps(payload, ensure_ascii=False, indent=2, default=str), encoding="utf-8")

    def load(self, name: str) -> dict | None:
        path = self.folder / f"{name}.json"
        return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None

    def write_summary(self) -> dict:
        stages = {s: self.load(s) for s in STAGE_ORDER if self.load(s) is not None}
        ingest = stages.get("ingest", {})
        standardize = stages.get("standardize", {})
        gate = stages.get("gate", {})
        summary = {
            "run_id": self.run_id,
            "domain": self.domain,
            "batch": self.batch,
            "stages_completed": [s for s in STAGE_ORDER if s in stages and (s != "gate" or gate.get("passed"))],
            "tables": {k: v for k, v in (self.load("tables") or {}).items() if k != "recorded_at"},
            "deliveries_rejected": ingest.get("rejected", []),
            "row_accounting": standardize.get("accounting", []),
            "quarantined": sum(a["quarantined"] for a in standardize.get("accounting", [])),
            "quarantine_reasons": standardize.get("quarantine_reasons", {}),
            "issues": standardize.get("issues", {}),
            "resolve": stages.get("resolve"),
            "golden": stages.get("golden"),
            "discrepancies": stages.get("verify", {}),
            "gate": {k: gate.get(k) for k in ("suite", "passed", "evaluated", "critical_failures", "failures")} if gate else None,
            "data_docs": gate.get("data_docs"),
            "published": stages.get("publish"),
        }
        (self.folder / "summary.json").write_text(json.dumps(summary, ensure_ascii=False, indent=2), encoding="utf-8")
        return summary


def latest_summary(domain: str | None = None, runs: Path | None = None) -> Path | None:
    """The newest summary.json under `runs` (default: this profile's var/runs), optionally of one domain."""
    candidates = sorted((runs or runs_dir()).glob("*/summary.json"), key=lambda p: p.stat().st_mtime)
    for path in reversed(candidates):
        if domain is None or json.loads(path.read_text(encoding="utf-8")).get("domain") == domain:
            return path
    return None
