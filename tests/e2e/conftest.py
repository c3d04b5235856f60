"""The demo province driven end to end by a real Airflow, once for every end-to-end test.

Airflow's scheduler, DAG processor and API server run on this machine (jichu.airflow_local). Per batch
the population DAG is triggered, as a timer would; the legal-entity DAG follows on its own, through
the asset of population's published table, and the reconciliation DAG after legal entities' publish
(batch 1 only: it is paused until population's run has finished, and again before batch 2). 公安's
batch-2 file is cut short in transfer. After batch 2, three processes share the metastore at once:
legal entities' batch 2 in one process (`jichu job`), a rerun of population's batch 1 with a stricter
count bound (ingest to gate in one `jichu job`), which must fail its gate and publish nothing, and a
`jichu sql` query. Every defect kind of both domains is injected at a raised
rate so that each occurs often enough to check.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from jichu.config import ROOT
from jichu.core.runs import latest_summary
from jichu.demo.defects import load_rates
from jichu.demo.generate import generate

JICHU = str(Path(sys.executable).parent / "jichu")
DOMAINS = ("population", "legal_entities")
# Rare kinds raised so that 1,500 persons (about 180 legal entities) show each of them; file-level
# defects off (the fixture cuts a file itself).
RATES = ["truncated_file=0", "redelivered_file=0", "id_checksum=0.02", "id_transposed=0.02", "id_fullwidth=0.03",
         "sex_code_unknown=0.1", "value_conflict=0.03", "authority_error=0.01", "duplicate=0.02",
         "deceased_active=1", "id_missing=0.05",
         "uscc_checksum=0.03", "uscc_missing=0.05", "uscc_legacy=0.3", "entity_name_variant=0.1",
         "entity_duplicate=0.03", "deregistered_filing=1", "entity_address_stale=1"]


def jichu(args: list[str], var: Path, conf: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "JICHU_VAR": str(var)}
    if conf:
        env["JICHU_CONF"] = str(conf)
    return subprocess.run([JICHU, *args], env=env, capture_output=True, text=True, timeout=1200)


def summary_of(var: Path, domain: str) -> dict:
    return json.loads(latest_summary(domain, var / "runs").read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def province(tmp_path_factory, scratch_folder):
    from jichu.airflow_local import LocalAirflow

    var = scratch_folder("e2e") / "var"  # not under tmp_path: see tests/conftest.py
    batches = generate(var, scale=1500, seed=11, batches=2, rates=load_rates(overrides=RATES))["batches"]
    results = {"batches": batches}
    with in_state_folder(var):
        with LocalAirflow((*DOMAINS, "reconciliation")) as airflow:
            # Reconciliation runs after each publish; here once, on legal entities' (both then published).
            airflow.pause("reconciliation")
            airflow.trigger("population", batches[0])
            airflow.wait({"population": 1}, timeout=1800)
            airflow.unpause("reconciliation")  # legal entities, triggered by population's asset, is still building
            results["runs"] = airflow.wait({**{d: 1 for d in DOMAINS}, "reconciliation": 1}, timeout=1800)
            results["first_summary"] = {d: summary_of(var, d) for d in DOMAINS}

            household = var / "landing" / "gongan" / batches[1] / "household.csv"
            household.write_bytes(household.read_bytes()[:-500])  # the last rows never arrived
            # Batch 1 showed the asset chain; batch 2 of legal entities runs in one process below,
            # which keeps this tier's time down (three spark-submits cost more than the work here).
            airflow.pause("legal_entities")
            airflow.pause("reconciliation")  # batch 1 showed it; its reports are checked on batch 1's state
            airflow.trigger("population", batches[1])
            results["runs"] = airflow.wait({"population": 2, "legal_entities": 1, "reconciliation": 1}, timeout=1800)
        results["second_summary"] = {"population": summary_of(var, "population")}
        published_log = var / "warehouse" / "published.db" / "population__person" / "_delta_log"
        results["published_versions_before_strict"] = sorted(p.name for p in published_log.glob("*.json"))

        # Three processes on one metastore at once: legal entities' batch 2 (every stage), a rerun of
        # population's batch 1 with a stricter count bound (the stages that read the batch's files again,
        # then the gate, which must fail and publish nothing; golden's and verify's reruns are unit-tested:
        # test_golden_incremental), and an analyst's query by name over two published objects.
        strict = tmp_path_factory.mktemp("conf") / "conf"
        shutil.copytree(ROOT / "conf", strict)
        domain = yaml.safe_load((strict / "domains" / "population.yaml").read_text(encoding="utf-8"))
        domain["entities"]["person"]["rows"]["min"] = 1_000_000_000
        (strict / "domains" / "population.yaml").write_text(yaml.safe_dump(domain, allow_unicode=True), encoding="utf-8")
        stages = ["ingest", "standardize", "resolve", "golden", "verify", "gate", "publish"]
        rerun = ["ingest", "standardize", "resolve", "gate", "publish"]
        sql = ("SELECT concat('persons=', count(*)) AS v FROM published.population__person "
               "UNION ALL SELECT DISTINCT entity_id FROM published.population__deceased_still_insured")
        results.update(jichu_at_once(var, {
            "legal_second": (["job", *stages, "--domain", "legal_entities", "--batch", batches[1]], None),
            "strict": (["job", *rerun, "--domain", "population", "--batch", batches[0]], strict),
            "sql": (["sql", sql, "--limit", "100000"], None),
        }))
        results["strict_summary"] = summary_of(var, "population")
        results["published_versions_after_strict"] = sorted(p.name for p in published_log.glob("*.json"))
    results["second_summary"]["legal_entities"] = summary_of(var, "legal_entities")
    evaluated = jichu(["evaluate", *DOMAINS, "--output-dir", str(var)], var)  # one process for both
    results.update({f"evaluate_{d}": evaluated for d in DOMAINS})
    yield var, results
    with in_state_folder(var):  # the server that the evaluation and the tests' commands started again
        pass


def jichu_at_once(var: Path, commands: dict[str, tuple[list[str], Path | None]]) -> dict[str, subprocess.CompletedProcess]:
    """Several `jichu ARGS` (each with its own conf, or None) started together; each one's CompletedProcess."""
    started = {}
    for name, (args, conf) in commands.items():
        env = {**os.environ, "JICHU_VAR": str(var), **({"JICHU_CONF": str(conf)} if conf else {})}
        started[name] = (args, subprocess.Popen([JICHU, *args], env=env, stdout=subprocess.PIPE,
                                                stderr=subprocess.PIPE, text=True))
    done = {}
    for name, (args, process) in started.items():
        out, err = process.communicate(timeout=1200)
        done[name] = subprocess.CompletedProcess(args, process.returncode, out, err)
    return done


@contextlib.contextmanager
def in_state_folder(var: Path):
    """JICHU_VAR names `var` inside the block, and what it named before after it; on leaving, the
    folder's PostgreSQL (started by the first command that needed it) is stopped. The session's Spark
    (tests/conftest.py) must keep the test run's own state and server, which outlive the block."""
    from jichu.services import local_server

    before = os.environ.get("JICHU_VAR")
    os.environ["JICHU_VAR"] = str(var)
    try:
        yield var
    finally:
        try:
            server = local_server()
            if server is not None:
                server.stop()
        finally:
            if before is None:
                os.environ.pop("JICHU_VAR", None)
            else:
                os.environ["JICHU_VAR"] = before


@pytest.fixture(scope="session")
def state_folder():
    """`with state_folder(var):` runs its block on another state folder (in_state_folder)."""
    return in_state_folder


@pytest.fixture(scope="session")
def run_jichu():
    """`jichu ARGS` in a subprocess against a state folder: (args, var) -> CompletedProcess."""
    return jichu


@pytest.fixture(scope="session")
def delta(spark, province):
    """A Delta table of the shared province run, by its metastore name (database.table), read from its
    folder: the tests' Spark session has its own metastore."""
    var, _ = province

    def read(table: str):
        database, name = table.split(".")
        return spark.read.format("delta").load(str(var / "warehouse" / f"{database}.db" / name))

    return read
