"""`jichu`: the command line for everything a person runs by hand. `make` targets call it."""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import subprocess
import sys
from datetime import date
from pathlib import Path

from jichu.config import ROOT, ConfigError, domain_names, entity_types, load_domain, load_profile, var_dir

log = logging.getLogger("jichu")


def _batch(value: str) -> str:
    try:
        return date.fromisoformat(value).isoformat()
    except ValueError:
        raise argparse.ArgumentTypeError(f"batch must be a date like 2026-01-01, got {value!r}") from None


def cmd_job(args) -> int:
    """Run pipeline stages in this process (what each DAG task does through spark-submit)."""
    from jichu.pipeline import GateFailed, run_stages

    run_id = args.run_id or f"cli__{args.domain}__{args.batch}"
    try:
        figures = run_stages(args.stages, args.domain, args.batch, run_id, load_profile())
    except GateFailed as e:
        log.error("%s", e)
        return 3
    log.info("%s %s done: %s", args.domain, args.batch, json.dumps(figures, ensure_ascii=False, default=str)[:2000])
    return 0


def _airflow(argv: list[str], output: Path | None = None) -> int:
    """The airflow command with jichu's environment (its database migrated once); `output` also gets
    everything it prints."""
    from jichu.orchestration import airflow_env

    env = airflow_env()
    airflow = str(Path(sys.executable).parent / "airflow")
    stamp = Path(env["AIRFLOW_HOME"]) / ".migrated"
    if not stamp.exists():
        subprocess.run([airflow, "db", "migrate"], env=env, check=True, stdout=subprocess.DEVNULL)
        stamp.touch()
    if output is None:
        return subprocess.run([airflow, *argv], env=env, check=False).returncode
    output.parent.mkdir(parents=True, exist_ok=True)
    with subprocess.Popen([airflow, *argv], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT) as p, \
            open(output, "wb") as copy:
        for line in p.stdout:
            sys.stdout.buffer.write(line)
            sys.stdout.buffer.flush()
            copy.write(line)
    return p.returncode


def run_dag(domain: str, batch: str) -> int:
    """One real DAG run for a batch date (`airflow dags test`: no scheduler needed); reruns replace.
    A failed run is reported by DAG, task and batch with the error lines of what it printed."""
    from jichu.airflow_local import error_lines

    output = var_dir() / "airflow" / "logs" / "run" / f"{domain}-{batch}.log"
    status = _airflow(["dags", "test", domain, batch], output=output)
    if status:
        failed = _failed_tasks(domain, batch) or ["(unknown: see the log)"]
        print(f"\nFAILED: DAG {domain}, task {', '.join(failed)}, batch {batch} (exit code {status}); "
              f"full output in {output}", file=sys.stderr)
        for line in error_lines(output):
            print(f"    {line}", file=sys.stderr)
    return status


def _failed_tasks(dag_id: str, batch: str) -> list[str]:
    """The failed tasks of the DAG's latest run for the batch, from Airflow's database."""
    from sqlalchemy import create_engine, text

    from jichu.airflow_local import DagRun, task_failures

    engine = create_engine(load_profile().airflow_db_url)
    try:
        with engine.connect() as c:
            run_id = c.execute(text(
                "SELECT run_id FROM dag_run WHERE dag_id = :dag AND CAST(logical_date AS DATE) = :batch "
                "ORDER BY id DESC LIMIT 1"), {"dag": dag_id, "batch": date.fromisoformat(batch)}).scalar()
        if run_id is None:
            return []
        run = DagRun(dag_id, run_id, "failed", "manual", batch)
        return [f.task_id for f in task_failures(engine, run, var_dir() / "airflow" / "logs")]
    finally:
        engine.dispose()


def cmd_run(args) -> int:
    status = 0
    for batch in args.batch:
        status = run_dag(args.domain, batch)
        for entity in load_domain(args.domain).entities:
            print_summary(domain=args.domain, entity=entity)
        if status:
            break
    return status


def _generate(args, out: Path) -> dict:
    """Generate the demo province and print what was written (counts only: no personal data)."""
    import time

    from rich.console import Console
    from rich.table import Table

    from jichu.demo.defects import load_rates
    from jichu.demo.generate import generate

    rates = load_rates(args.defects, args.rate)
    started = time.monotonic()
    result = generate(out, scale=args.scale, seed=args.seed, batches=args.batches, rates=rates,
                      progress=not args.quiet)
    seconds = time.monotonic() - started
    console = Console()
    files = Table("agency", "batch", "file", "rows", title=f"Extracts written under {out / 'landing'}")
    for f in result["files"]:
        files.add_row(f["agency"], f["batch"], f["name"], f"{f['rows']:,}")
    defects = Table("defect", "rate", "eligible", "injected", title="Defects injected (labels in truth/)")
    for kind, d in result["defects"].items():
        defects.add_row(kind, f"{d['rate']:g}", f"{d['eligible']:,}", f"{d['injected']:,}")
    console.print(files, defects)
    for f in result["file_defects"]:
        console.print(f"file defect: {f['defect']} {f['agency']}/{f['batch']}/{f['name']} ({f['detail']})")
    rows = sum(f["rows"] for f in result["files"])
    console.print(f"{result['persons']:,} persons, {len(result['files'])} files, {rows:,} rows "
                  f"in {seconds:.1f} s; truth in {out / 'truth'}")
    return result


def cmd_generate(args) -> int:
    _generate(args, Path(args.out))
    return 0


RECONCILIATION = "reconciliation"
"""Runs after each publish (once per base database and batch in the demo), writing every agency's report
to the outbox."""


def cmd_demo(args) -> int:
    """Fresh demo state, generated extracts, then per batch a triggered run of each base database that
    depends on none (conf/domains `depends_on`), which the scheduler follows with the others as their
    Assets update; the summaries and the evaluation of every one."""
    from jichu.airflow_local import LocalAirflow

    from jichu.services import clear_state, local_server

    domains = domain_names()
    first = [d for d in domains if not load_domain(d).depends_on]
    var = var_dir()
    clear_state(var, ("landing", "truth", "warehouse", "runs", "gx", "review", "airflow", "outbox"))
    result = _generate(args, var)
    failures = []
    print("\n== starting PostgreSQL and Airflow (scheduler, DAG processor, API server); logs in var/airflow/logs/local")
    try:
        with LocalAirflow((*domains, RECONCILIATION)) as airflow:
            for count, batch in enumerate(result["batches"], start=1):
                print(f"\n== batch {batch}: {', '.join(first)} triggered; "
                      f"{', '.join(d for d in domains if d not in first) or 'nothing else'} when what it depends on "
                      "publishes, reconciliation after each publish")
                for domain in first:
                    airflow.trigger(domain, batch)
                expected = {**{d: count for d in domains}, RECONCILIATION: len(domains) * count}
                runs = airflow.wait(expected, timeout=3600, progress=_Progress())
                for dag, n in expected.items():
                    for r in runs[dag][n - n // count:]:  # this batch's runs
                        print(f"   {dag}: run {r.run_id} ({r.run_type}) batch {r.batch}: {r.state}")
                failed = [r for rs in runs.values() for r in rs if r.state != "success"]
                for r in failed:
                    failures += [f.describe() for f in airflow.failures(r)] or [
                        f"DAG {r.dag_id}, batch {r.batch}: run {r.run_id} {r.state} without a failed task "
                        "(see var/airflow/logs/local)"]
                if failed:
                    break
        for entity in entity_types(domains):
            print_summary(domain=entity.domain, entity=entity.entity)
        status = 1 if failures else 0
        if not failures:
            print_outbox(Path(load_profile().outbox), result["batches"][-1])
            status = cmd_evaluate(argparse.Namespace(domains=domains, truth=None, output_dir=str(var)))
    finally:
        server = local_server()
        if server is not None:
            server.stop()  # `jichu sql` and the other commands start it again when they need it
    for failure in failures:
        print("\n" + failure, file=sys.stderr)
    verdict = "PASSED" if status == 0 else "FAILED"
    print(f"\n== demo {verdict}: {len(result['batches'])} batches of {args.scale:,} persons; "
          + ("every DAG run succeeded, reports in the outbox, evaluations in " + str(var) if status == 0
             else "see the failure above" if failures else "see the evaluation above"))
    return status


class _Progress:
    """Prints the running tasks while the demo waits: when they change, and every minute otherwise."""

    def __init__(self, every: float = 60):
        import time

        self.clock, self.every, self.shown, self.at = time.monotonic, every, None, 0.0

    def __call__(self, running: list[tuple[str, str, float]]) -> None:
        names = tuple((dag, task) for dag, task, _ in running)
        if names == self.shown and self.clock() - self.at < self.every:
            return
        self.shown, self.at = names, self.clock()
        text = ", ".join(f"{dag}.{task} ({seconds // 60:.0f} min {seconds % 60:.0f} s)" for dag, task, seconds in running)
        print(f"   running: {text or 'nothing (the scheduler is starting the next run)'}", flush=True)


def print_outbox(outbox: Path, batch: str) -> None:
    """What each agency received for a batch: its items by status (counts only), and where."""
    import pandas as pd
    from rich.console import Console
    from rich.table import Table

    from jichu.reconcile.report import HEADERS, STATUS_LABELS

    statuses = list(STATUS_LABELS.values())
    t = Table("agency", *statuses, title=f"Reconciliation reports of batch {batch}: {outbox}/<agency>/{batch}/")
    for folder in sorted(outbox.glob(f"*/{batch}")):
        agency = folder.parent.name
        csv = folder / f"jichu-{agency}-{batch}.csv"
        if not csv.exists():  # the province summary
            continue
        counts = pd.read_csv(csv, dtype=str, encoding="utf-8-sig")[HEADERS["status"]].value_counts()
        t.add_row(agency, *[str(counts.get(s, 0)) for s in statuses])
    console = Console()
    console.print(t)
    console.print(f"Province summary: {outbox / 'province' / batch}")


def print_summary(domain: str | None = None, path: Path | None = None, entity: str | None = None) -> None:
    from rich.console import Console
    from rich.table import Table

    from jichu.core.runs import latest_summary

    path = path or latest_summary(domain, entity=entity)
    console = Console()
    if path is None:
        console.print("no run summary found")
        return
    s = json.loads(path.read_text(encoding="utf-8"))
    console.rule(f"jichu run {s['run_id']} - {s['domain']} {s['entity']} batch {s['batch']}")
    t = Table("table", "rows", title="Tables")
    for name, rows in s["tables"].items():
        t.add_row(name, f"{rows:,}")
    console.print(t)
    # The batch is the run's, in the rule above.
    t = Table("extract", "records", "standardized", "quarantined", "unchanged", "balanced", "retracted",
              title="Row accounting (records = standardized + quarantined + unchanged)")
    for a in s["row_accounting"]:
        t.add_row(a["extract"], str(a["records"]), str(a["standardized"]), str(a["quarantined"]),
                  str(a.get("unchanged", 0)), "yes" if a["balanced"] else "NO", str(a.get("retracted", 0)))
    console.print(t)
    issues = s.get("issues") or {}
    if issues:
        console.print("Values that failed their check (kept as null): "
                      + ", ".join(f"{k} {v}" for k, v in sorted(issues.items())))
    resolve = s.get("resolve") or {}
    if resolve.get("methods"):
        console.print("Records without a valid key, linked by: " + ", ".join(f"{k} {v}" for k, v in sorted(resolve["methods"].items()))
                      + f"; {resolve.get('review_pairs', 0)} pairs for clerical review in {resolve.get('review_export')}")
    if s["quarantine_reasons"]:
        console.print("Quarantine reasons: " + ", ".join(f"{k} {v}" for k, v in sorted(s["quarantine_reasons"].items())))
    for r in s["deliveries_rejected"]:
        console.print(f"[red]Delivery rejected[/red] {r['agency']}/{r['extract']}: {r['reason']}")
    for w in s.get("delivery_warnings") or []:
        console.print(f"[yellow]Delivery accepted with a warning[/yellow] {w['agency']}/{w['extract']}: {w['warning']}")
    d = s.get("discrepancies") or {}
    if d:
        console.print("Discrepancies by status: " + ", ".join(f"{k} {v}" for k, v in sorted(d.get("by_status", {}).items())))
        console.print("Open by agency.field: " + ", ".join(f"{k} {v}" for k, v in sorted(d.get("open_by_agency_field", {}).items())))
    g = s.get("gate")
    if g:
        verdict = "[green]passed[/green]" if g["passed"] else "[red]FAILED[/red]"
        console.print(f"Gate {g['suite']}: {verdict}, {g['evaluated']} expectations, {g['critical_failures']} critical failures")
        for f in g["failures"]:
            console.print(f"  {f['severity']}: {f['expectation']}({f['column'] or ''}) observed {f['observed']}")
    if s.get("data_docs"):
        console.print(f"Data Docs: {s['data_docs']}")
    if s.get("published"):
        p = s["published"]
        console.print(f"Published {p['table']} version {p['version']}: {p['rows']:,} rows")
    console.print(f"Summary: {path}")


def cmd_summary(args) -> int:
    print_summary(domain=args.domain, path=Path(args.path) if args.path else None, entity=args.entity)
    return 0


def cmd_evaluate(args) -> int:
    """Score each domain's links and golden values against the demo truth (one Spark start for all);
    print each report as JSON."""
    from jichu.evaluate import TablesMissing, check_truth, evaluate, load_evaluation

    truth = Path(args.truth) if args.truth else var_dir() / "truth"
    # Validate the specs and find the truth before paying for a Spark start-up.
    for domain in args.domains:
        check_truth(truth, load_evaluation(domain))
    from jichu.core.session import get_spark

    spark = get_spark("jichu-evaluate")
    status = 0
    for domain in args.domains:
        print(f"\n== {domain} base database against the generator's truth")
        try:
            report = evaluate(spark, domain, truth)
        except TablesMissing as e:
            log.error("%s", e)
            status = 2
            continue
        text = json.dumps(report, ensure_ascii=False, indent=2)
        if args.output_dir:  # the full report to a file, its headline to the screen
            path = Path(args.output_dir, f"evaluation-{domain}.json")
            path.write_text(text + "\n", encoding="utf-8")
            print(", ".join(f"{k} {report[k]}" for k in ("precision", "recall", "f1", "golden_accuracy", "records")
                            if k in report) + f"; full report in {path}")
        else:
            print(text)
    # The figures are judged by tests and README targets, not by the exit status.
    return status


def cmd_sql(args) -> int:
    """Run a SQL statement against the metastore (tables by name, Delta time travel included)."""
    from jichu.core.session import get_spark

    from pyspark.errors import PySparkException

    spark = get_spark("jichu-sql")
    # PySpark also logs each query error with its whole Java stack trace to stderr; the line below says it.
    logging.getLogger("SQLQueryContextLogger").setLevel(logging.CRITICAL)
    try:
        spark.sql(args.query).show(args.limit, truncate=False)
    except PySparkException as e:  # a mistake in the query: its first line (class and message), no traceback
        print(f"SQL error: {str(e).strip().splitlines()[0]}", file=sys.stderr)
        return 2
    return 0


def cmd_services(args) -> int:
    """Start, stop or show the PostgreSQL that the local profile runs (metastore and Airflow's database)."""
    from jichu.services import local_server

    server = local_server()
    if server is None:
        print(f"the {load_profile().name} profile runs no server here (metastore {load_profile().metastore_url})")
        return 0 if args.action == "status" else 2
    if args.action == "start":
        server.ensure_running()
    elif args.action == "stop":
        print("stopped" if server.stop() else "was not running")
        return 0
    up = server.accepting()
    print(f"PostgreSQL {'running' if up else 'stopped'}: 127.0.0.1:{server.port}, data {server.data}, log {server.logfile}")
    return 0 if up or args.action == "status" else 1


def cmd_link(args) -> int:
    """Deduplicate ad-hoc CSV/Parquet files with a linkage spec; print the summary as JSON."""
    from jichu.link.engine import link_files
    from jichu.link.spec import load_link_spec

    # Validate the spec before paying for a Spark start-up.
    spec = load_link_spec(Path(args.spec))
    from jichu.core.session import get_spark

    spark = get_spark("jichu-link")
    summary = link_files(spark, spec, [Path(p) for p in args.input], Path(args.output))
    print(json.dumps(summary, ensure_ascii=False, indent=2))
    return 0


def cmd_review(args) -> int:
    """Import a filled-in review export: its decisions apply from the next run on."""
    from jichu.core.review import ReviewFileError, import_decisions, review_target
    from jichu.core.session import get_spark

    try:
        entity = review_target(Path(args.file))
        n = import_decisions(get_spark("jichu-review", load_profile()), entity, Path(args.file))
    except ReviewFileError as e:
        log.error("%s", e)
        return 2
    print(f"{n} decisions stored in {entity.table('review', 'decisions')}; they apply from the next run of {entity.domain}")
    return 0


def cmd_reconcile(args) -> int:
    """Every agency's report for a batch, and the province summary, into the outbox."""
    from jichu.core.session import get_spark
    from jichu.reconcile.stage import deliver

    profile = load_profile()
    outbox = Path(args.outbox or profile.outbox)
    manifests = deliver(get_spark("jichu-reconcile", profile), args.batch, outbox)
    for agency, manifest in manifests.items():
        print(f"{agency}: {manifest}")
    return 0


def cmd_answers(args) -> int:
    """Import an agency's returned report: its valid answers count from the next run on."""
    from jichu.core.session import get_spark
    from jichu.reconcile.stage import import_answers

    stored, errors = import_answers(get_spark("jichu-answers", load_profile()), Path(args.file), args.agency, args.batch)
    print(f"{stored} answers of {args.agency} stored in reconcile.answers; {len(errors)} rows refused (see the log)")
    return 2 if errors else 0


def cmd_bench(args) -> int:
    from jichu.bench import print_bench, run_bench

    if args.var:
        os.environ["JICHU_VAR"] = str(Path(args.var).resolve())
    persons = args.persons
    if args.entities is not None:  # legal entities are made from persons, about ENTITIES_PER_PERSON each
        from jichu.demo.legal import ENTITIES_PER_PERSON

        persons = math.ceil(args.entities / ENTITIES_PER_PERSON)
    result = run_bench(args.domain, persons, args.batches, args.seed, profile_calls=args.profile)
    if args.entities is not None:
        result["entities_requested"] = args.entities
    print_bench(result)
    return 0


def cmd_spark_sql(args) -> int:
    """Exec the `spark-sql` shell with this profile's jars, Delta and metastore settings."""
    from jichu.core.session import spark_conf

    profile = load_profile()
    argv = [str(Path(sys.executable).parent / "spark-sql"), "--master", profile.spark.master]
    for key, value in spark_conf(profile).items():
        argv += ["--jars", value] if key == "spark.jars" else ["--conf", f"{key}={value}"]
    import pyspark

    # The shell script looks for Spark through `python3` on PATH; point it at the virtualenv's.
    env = {**os.environ, "SPARK_HOME": str(Path(pyspark.__file__).parent),
           "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", "")}
    os.execve(argv[0], argv + args.rest, env)


def cmd_airflow(args) -> int:
    return _airflow(args.rest)


PASSTHROUGH = {"spark-sql": cmd_spark_sql, "airflow": cmd_airflow}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="jichu", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("job", help="run pipeline stages for one batch date, in this process")
    from jichu.core.runs import STAGE_ORDER

    s.add_argument("stages", nargs="+", choices=STAGE_ORDER, metavar="STAGE", help=" ".join(STAGE_ORDER))
    s.add_argument("--domain", required=True)
    s.add_argument("--batch", required=True, type=_batch)
    s.add_argument("--run-id")
    s.set_defaults(func=cmd_job)

    s = sub.add_parser("run", help="run a domain's DAG for one or more batch dates (reruns are idempotent)")
    s.add_argument("domain")
    s.add_argument("--batch", required=True, type=_batch, action="append")
    s.set_defaults(func=cmd_run)

    def generator_options(s) -> None:
        s.add_argument("--scale", type=int, default=2000, help="number of persons (entities and series follow)")
        s.add_argument("--seed", type=int, default=42)
        s.add_argument("--batches", type=int, default=2, help="monthly batches from 2026-01-01")
        s.add_argument("--defects", type=Path, help="YAML mapping of defect kind to rate (conf/demo/defects.yaml)")
        s.add_argument("--rate", action="append", default=[], metavar="KIND=RATE", help="override one defect rate")
        s.add_argument("--quiet", action="store_true", help="no progress bar")

    s = sub.add_parser("generate", help="write the demo province's agency extracts and their truth")
    generator_options(s)
    s.add_argument("--out", required=True, help="folder: extracts go to OUT/landing, truth to OUT/truth")
    s.set_defaults(func=cmd_generate)

    s = sub.add_parser("demo", help="generate the demo province and run every DAG on it")
    generator_options(s)
    s.set_defaults(func=cmd_demo)

    s = sub.add_parser("summary", help="print a run summary (default: the latest)")
    s.add_argument("--domain")
    s.add_argument("--entity", help="one of the domain's entity types (conf/domains `entities`)")
    s.add_argument("--path")
    s.set_defaults(func=cmd_summary)

    s = sub.add_parser("evaluate", help="score a domain's links and golden values against the demo truth (JSON)")
    s.add_argument("domains", nargs="+", metavar="domain")
    s.add_argument("--truth", help="truth folder written by `jichu generate` (default: var/truth)")
    s.add_argument("--output-dir", help="also write each report to OUTPUT_DIR/evaluation-<domain>.json")
    s.set_defaults(func=cmd_evaluate)

    s = sub.add_parser("sql", help="run one SQL statement against the curated tables")
    s.add_argument("query")
    s.add_argument("--limit", type=int, default=20)
    s.set_defaults(func=cmd_sql)

    s = sub.add_parser("services", help="start, stop or show the local PostgreSQL (metastore, Airflow's database)")
    s.add_argument("action", choices=["start", "stop", "status"])
    s.set_defaults(func=cmd_services)

    s = sub.add_parser("link", help="find duplicate records in CSV/Parquet files with a linkage spec (conf/linkage/)")
    s.add_argument("--spec", required=True, help="linkage spec YAML, e.g. conf/linkage/example_people.yaml")
    s.add_argument("--input", required=True, nargs="+", metavar="FILE", help="CSV or Parquet; several are deduplicated together")
    s.add_argument("--output", required=True, metavar="DIR", help="gets pairs.csv, clusters.csv and summary.json")
    s.set_defaults(func=cmd_link)

    s = sub.add_parser("review", help="import a filled-in clerical-review file (var/review/<domain>/<entity>/<batch>.csv)")
    s.add_argument("action", choices=["import"])
    s.add_argument("file", help="the export, in its folder: the folder names the domain and entity type")
    s.set_defaults(func=cmd_review)

    s = sub.add_parser("reconcile", help="write every agency's report for a batch and the province summary")
    s.add_argument("--batch", required=True)
    s.add_argument("--outbox", help="default: the profile's outbox (var/outbox locally)")
    s.set_defaults(func=cmd_reconcile)

    s = sub.add_parser("answers", help="import an agency's returned report (XLSX or CSV)")
    s.add_argument("action", choices=["import"])
    s.add_argument("file")
    s.add_argument("--agency", required=True)
    s.add_argument("--batch", required=True, help="the batch of the report being answered")
    s.set_defaults(func=cmd_answers)

    s = sub.add_parser("bench", help="time a domain's build against the I/O floor measured in the same run")
    s.add_argument("domain")
    size = s.add_mutually_exclusive_group()
    size.add_argument("--persons", type=int, default=100_000, help="demo province size in persons")
    size.add_argument("--entities", type=int, help="size in legal entities (the province gets the persons that make them)")
    s.add_argument("--batches", type=int, default=2)
    s.add_argument("--seed", type=int, default=42)
    s.add_argument("--var", help="state folder for the bench (default: var/bench)", default=str(ROOT / "var" / "bench"))
    s.add_argument("--profile", action="store_true",
                   help="also time each slow Spark call by stage and source line (bench.calls_by_line)")
    s.set_defaults(func=cmd_bench)

    # Listed for --help only: main() hands these two their arguments untouched, options included.
    sub.add_parser("spark-sql", help="open the spark-sql shell on the curated tables (arguments passed through)")
    sub.add_parser("airflow", help="the airflow command with jichu's home, database and connections")
    return p


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("py4j", "great_expectations"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    argv = sys.argv[1:] if argv is None else argv
    # Pass-through commands hand every later argument (options included) to the wrapped tool.
    if argv and argv[0] in PASSTHROUGH:
        return PASSTHROUGH[argv[0]](argparse.Namespace(rest=argv[1:])) or 0
    args = build_parser().parse_args(argv)
    try:
        return args.func(args) or 0
    except ConfigError as e:
        log.error("%s", e)
        return 2


if __name__ == "__main__":
    sys.exit(main())
