"""A real Airflow on this machine: scheduler, DAG processor and API server, started and stopped by jichu.

`airflow dags test` runs one DAG without a scheduler, which is how `jichu run` reruns a batch. DAGs
that follow an asset (legal_entities after population publishes) need the scheduler: it turns the
asset event into a DAG run and the LocalExecutor runs its tasks through the API server. `jichu demo`
and the end-to-end tests use this stack; its processes, ports and logs belong to one JICHU_VAR.

Runs are followed in Airflow's metadata database (the `dag_run` table), read-only.
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import create_engine, text

from jichu.config import load_profile, var_dir
from jichu.orchestration import airflow_env

log = logging.getLogger("jichu")

FINISHED = ("success", "failed")
ERROR_LINE = re.compile(r"\bERROR\b|Error\b|Exception\b|Traceback|FAILED|failed", re.IGNORECASE)
ERROR_LINES_SHOWN = 20


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class DagRun:
    dag_id: str
    run_id: str
    state: str
    run_type: str
    batch: str | None  # the logical date, or the batch the triggering asset event announced


class LocalAirflow:
    """`with LocalAirflow() as airflow:` starts the three processes and waits for the DAGs to be parsed;
    leaving the block stops them."""

    COMPONENTS = (("api-server",), ("dag-processor",), ("scheduler",))

    def __init__(self, dags: tuple[str, ...], startup_timeout: float = 300):
        self.dags = dags
        self.startup_timeout = startup_timeout
        self.logs = var_dir() / "airflow" / "logs" / "local"
        self.engine = create_engine(load_profile().airflow_db_url)
        self.processes: list[subprocess.Popen] = []
        api_port = _free_port()
        self.env = {
            **airflow_env(),
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": "2",  # two cores: one Spark job at a time and a spare
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{api_port}/execution/",
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(api_port),
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(_free_port()),
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "10",
            # The DAG files do not change while this Airflow runs: parse each once. Parsing all three every
            # 10 s took about 4 s of CPU each time, a third of a core taken from the Spark jobs.
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "3600",
        }
        self.airflow = str(Path(sys.executable).parent / "airflow")

    def __enter__(self) -> LocalAirflow:
        self.logs.mkdir(parents=True, exist_ok=True)
        subprocess.run([self.airflow, "db", "migrate"], env=self.env, check=True, stdout=subprocess.DEVNULL)
        try:
            for argv in self.COMPONENTS:
                out = open(self.logs / f"{argv[0]}.log", "ab")
                self.processes.append(subprocess.Popen(
                    [self.airflow, *argv], env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
                ))
            self._wait_for_dags()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        for p in self.processes:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        deadline = time.monotonic() + 60
        for p in self.processes:
            try:
                p.wait(timeout=max(1.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
        self.processes = []
        self.engine.dispose()

    def _query(self, sql: str, **params) -> list:
        with self.engine.connect() as c:
            return list(c.execute(text(sql), params))

    def _wait_for_dags(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            self._check_alive()
            try:
                rows = self._query("SELECT dag_id, is_paused FROM dag")
            except Exception:  # the tables appear with the first parse
                rows = []
            parsed = {r[0]: r[1] for r in rows}
            if all(d in parsed for d in self.dags):
                for dag in (d for d in self.dags if parsed[d]):
                    self.unpause(dag)
                return
            time.sleep(2)
        raise TimeoutError(f"Airflow did not parse {self.dags} within {self.startup_timeout:.0f} s; see {self.logs}")

    def _check_alive(self) -> None:
        for argv, p in zip(self.COMPONENTS, self.processes):
            if p.poll() is not None:
                raise RuntimeError(f"airflow {argv[0]} exited with {p.returncode}; see {self.logs / (argv[0] + '.log')}")

    def trigger(self, dag_id: str, batch: str) -> None:
        """A run of `dag_id` for the batch date, as a timer would start it (its logical date)."""
        subprocess.run(
            [self.airflow, "dags", "trigger", dag_id, "--logical-date", f"{batch}T00:00:00+00:00"],
            env=self.env, check=True, stdout=subprocess.DEVNULL,
        )

    def pause(self, dag_id: str) -> None:
        """No new runs of `dag_id`, whatever triggers it, until it is unpaused (an asset event meanwhile is
        not queued for it)."""
        subprocess.run([self.airflow, "dags", "pause", dag_id], env=self.env, check=True, stdout=subprocess.DEVNULL)

    def unpause(self, dag_id: str) -> None:
        subprocess.run([self.airflow, "dags", "unpause", dag_id], env=self.env, check=True, stdout=subprocess.DEVNULL)

    def runs(self, dag_id: str) -> list[DagRun]:
        rows = self._query(
            "SELECT r.run_id, r.state, r.run_type, r.logical_date FROM dag_run r WHERE r.dag_id = :dag ORDER BY r.id",
            dag=dag_id,
        )
        return [DagRun(dag_id, r[0], r[1], r[2], self._batch(dag_id, r[0], r[3])) for r in rows]

    def _batch(self, dag_id: str, run_id: str, logical_date) -> str | None:
        if logical_date is not None:
            return str(logical_date)[:10]
        # An asset-triggered run: the batch its triggering event announced.
        rows = self._query(
            "SELECT e.extra FROM asset_event e JOIN dagrun_asset_event d ON d.event_id = e.id "
            "JOIN dag_run r ON r.id = d.dag_run_id WHERE r.dag_id = :dag AND r.run_id = :run ORDER BY e.id",
            dag=dag_id, run=run_id,
        )
        extras = [json.loads(r[0]) if isinstance(r[0], str) else r[0] for r in rows]
        return (extras[-1] or {}).get("batch") if extras else None

    def wait(self, expected: dict[str, int], timeout: float, progress=None) -> dict[str, list[DagRun]]:
        """Wait until each DAG has its expected number of runs and none is still going; its runs.
        `progress`, if given, is called with the running tasks (`running()`) every few seconds."""
        deadline = time.monotonic() + timeout
        while True:
            self._check_alive()
            runs = {dag: self.runs(dag) for dag in expected}
            done = all(len(runs[d]) >= n and all(r.state in FINISHED for r in runs[d]) for d, n in expected.items())
            failed = [r for rs in runs.values() for r in rs if r.state == "failed"]
            if done or failed:
                return runs
            if time.monotonic() > deadline:
                raise TimeoutError(f"Airflow runs not finished within {timeout:.0f} s: {runs}")
            if progress is not None:
                progress(self.running())
            time.sleep(5)

    def running(self) -> list[tuple[str, str, float]]:
        """The tasks running now: (dag, task, seconds since it started)."""
        rows = self._query(
            "SELECT dag_id, task_id, start_date FROM task_instance WHERE state = 'running' ORDER BY start_date"
        )
        now = time.time()
        return [(r[0], r[1], now - r[2].timestamp() if r[2] else 0.0) for r in rows]

    def failures(self, run: DagRun) -> list[TaskFailure]:
        """The failed tasks of a DAG run, each with the error lines of its log."""
        return task_failures(self.engine, run, var_dir() / "airflow" / "logs")


@dataclass(frozen=True)
class TaskFailure:
    dag_id: str
    task_id: str
    batch: str | None
    log: Path | None
    errors: list[str]

    def describe(self) -> str:
        where = f"log {self.log}" if self.log else "no task log found"
        lines = "\n".join(f"    {e}" for e in self.errors) or "    (no error lines in the log)"
        return f"DAG {self.dag_id}, task {self.task_id}, batch {self.batch}: failed ({where})\n{lines}"


def task_failures(engine, run: DagRun, logs: Path) -> list[TaskFailure]:
    """The failed (or upstream-failed) tasks of `run` in Airflow's database, with their logs' error lines."""
    with engine.connect() as c:
        rows = list(c.execute(text(
            "SELECT task_id, try_number, map_index FROM task_instance WHERE dag_id = :dag AND run_id = :run "
            "AND state = 'failed' ORDER BY end_date"), {"dag": run.dag_id, "run": run.run_id}))
    failures = []
    for task_id, try_number, map_index in rows:
        folder = logs / f"dag_id={run.dag_id}" / f"run_id={run.run_id}" / f"task_id={task_id}"
        if map_index is not None and map_index >= 0:
            folder = folder / f"map_index={map_index}"
        path = folder / f"attempt={max(try_number or 1, 1)}.log"
        found = path if path.exists() else None
        failures.append(TaskFailure(run.dag_id, task_id, run.batch, found, error_lines(found) if found else []))
    return failures


def error_lines(path: Path, limit: int = ERROR_LINES_SHOWN) -> list[str]:
    """The lines of a task log that say what went wrong: errors and exceptions, without Java stack frames.
    Airflow 3 writes one JSON object per line (its `event` is the text); other lines are taken as they are."""
    found: list[str] = []
    for raw in path.read_text(encoding="utf-8", errors="replace").splitlines():
        line, level = raw, ""
        if raw.startswith("{"):
            try:
                entry = json.loads(raw)
                line, level = str(entry.get("event", "")), str(entry.get("level", ""))
            except json.JSONDecodeError:
                pass
        for part in line.splitlines():
            part = part.rstrip()
            if not part or part.lstrip().startswith("at ") or part.lstrip().startswith("..."):
                continue
            if level.lower() in ("error", "critical") or ERROR_LINE.search(part):
                if part not in found[-3:]:
                    found.append(part[:400])
    return found[-limit:]
