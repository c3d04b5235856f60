"""`jichu bench DOMAIN --persons N`: stage timings against the I/O floor measured in the same run, for
the whole build and for each batch against its own floor (the first batch is the initial load, the
second a monthly delivery, whose cost should follow what changed).

The floor is what no build can avoid: Spark reading every extract of every batch and writing it as
Delta, nothing else. The build is the real pipeline, run task by task as the DAG groups its
stages, on the same files in the same Spark session, so the ratio build / floor is comparable
across machines and noisy neighbours. A task's time beyond its stages (the run summary's table
counts) is shown as `bookkeeping` and counted in the build.
Generation of the extracts is timed separately and is not part of either figure.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import shutil
import time
import traceback
from collections import defaultdict
from pathlib import Path

from jichu.config import load_extracts, load_profile, var_dir


def _peak_rss_mib(pid: int) -> float:
    """The peak resident set of a process (VmHWM), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def measure_floor(spark, landing: Path, extracts, batches: list[str], scratch: str) -> dict[str, tuple[float, int]]:
    """Read each delivered file with Spark and write it as a Delta table; batch -> (seconds, rows)."""
    from jichu.core.landing import landing_folder, read_rows
    from jichu.core.tables import AS_DELIVERED

    floors = {}
    for batch in batches:
        started, rows = time.monotonic(), 0
        for ex in extracts:
            path = landing_folder(landing, ex.agency, batch) / ex.file.name
            if not path.exists():
                continue
            if ex.file.format == "csv":
                df = spark.read.option("header", True).option("encoding", ex.file.encoding.replace("-sig", "")).csv(str(path))
            elif ex.file.format == "jsonl":
                df = spark.read.json(str(path))
            else:  # Spark has no XLSX reader; the landing reader parses it, as ingest does
                df = read_rows(spark, path, ex.file)[0]
            # Column mapping, as staging has it: agencies' column names may hold brackets.
            df.write.format("delta").options(**AS_DELIVERED).mode("overwrite").save(f"{scratch}/{ex.key}/{batch}")
            rows += spark.read.format("delta").load(f"{scratch}/{ex.key}/{batch}").count()
        floors[batch] = (time.monotonic() - started, rows)
    return floors


SLOW_CALL_S = 0.3  # the Spark calls `--profile` counts: shorter ones are the many small ones of bookkeeping
ROOT_PARTS = ("/jichu/", "/expectations/")


@contextlib.contextmanager
def calls_by_line(stages: dict, roots: tuple[str, ...] = ROOT_PARTS):
    """Time each call from Python into Spark's JVM (py4j) that takes SLOW_CALL_S or more, and add it to
    the pipeline stage running (`stages`, pipeline.STAGES, wrapped meanwhile) and the source lines that
    made it (the last three in files under `roots`, the project's), innermost first. Yields
    {(batch, stage, call and lines): seconds}. A Spark action blocks in one such call, so the figures say
    which action of a stage the time goes to."""
    import py4j.java_gateway as gateway

    spent, running, depth = defaultdict(float), ["", ""], [0]
    call = gateway.JavaMember.__call__

    def timed(member, *args):
        if depth[0]:  # a call made while another is timed (a callback) is part of it
            return call(member, *args)
        depth[0] += 1
        started = time.monotonic()
        try:
            return call(member, *args)
        finally:
            depth[0] -= 1
            seconds = time.monotonic() - started
            if seconds >= SLOW_CALL_S and running[1]:
                ours = [f for f in traceback.extract_stack()[:-1]
                        if any(part in f.filename for part in roots) and f.filename != __file__]  # not this wrapper
                lines = " < ".join(f"{Path(f.filename).name}:{f.lineno}" for f in reversed(ours[-3:]))
                spent[(running[0], running[1], f"{member.name} {lines}")] += seconds

    def labelled(name, stage):
        def run(r):
            running[:] = [r.batch, name]
            try:
                return stage(r)
            finally:
                running[:] = ["", ""]
        return run

    originals = dict(stages)
    gateway.JavaMember.__call__ = timed
    stages.update({name: labelled(name, stage) for name, stage in originals.items()})
    try:
        yield spent
    finally:
        gateway.JavaMember.__call__ = call
        stages.update(originals)


def run_bench(domain: str, persons: int, batches: int, seed: int, profile_calls: bool = False) -> dict:
    """Generate (once per size and seed), then measure the floor and the build in one Spark session.
    With `profile_calls`, the result holds the slow Spark calls of each stage (`calls_by_line`)."""
    from jichu.core.session import get_spark
    from jichu.demo.defects import load_rates
    from jichu.demo.generate import generate
    from jichu.orchestration import TASKS
    from jichu.pipeline import STAGES, run_stages
    from jichu.services import clear_state

    var = var_dir()
    stamp = var / "truth" / f"bench-{persons}-{seed}-{batches}"
    generated_in = None
    if not stamp.exists():
        for name in ("landing", "truth"):
            shutil.rmtree(var / name, ignore_errors=True)
        started = time.monotonic()
        result = generate(var, scale=persons, seed=seed, batches=batches, rates=load_rates(), progress=False)
        generated_in = time.monotonic() - started
        stamp.touch()
        batch_dates = result["batches"]
    else:
        batch_dates = sorted(p.name for p in (var / "landing" / "gongan").iterdir())
    clear_state(var, ("warehouse", "runs", "gx", "review"))

    profile = load_profile()
    spark = get_spark(f"jichu-bench-{domain}", profile)
    extracts = load_extracts(domain)
    floors = measure_floor(spark, Path(profile.landing), extracts, batch_dates, str(var / "bench-floor"))
    shutil.rmtree(var / "bench-floor", ignore_errors=True)
    floor_s, floor_rows = sum(s for s, _ in floors.values()), sum(n for _, n in floors.values())

    stages: dict[str, float] = {s: 0.0 for task in TASKS.values() for s in [*task, "bookkeeping"]}
    per_batch, build_s = [], 0.0
    with calls_by_line(STAGES) if profile_calls else contextlib.nullcontext({}) as calls:
        for batch in batch_dates:
            timings, batch_s = {"bookkeeping": 0.0}, 0.0
            for task in TASKS.values():
                started = time.monotonic()
                figures = run_stages(task, domain, batch, f"bench__{domain}__{batch}", profile)
                task_s = time.monotonic() - started
                for stage in task:  # summed over the domain's entity types
                    timings[stage] = round(sum(f[stage]["seconds"] for f in figures.values()), 1)
                timings["bookkeeping"] = round(timings["bookkeeping"] + task_s - sum(timings[s] for s in task), 1)
                batch_s += task_s
            for stage, seconds in timings.items():
                stages[stage] += seconds
            per_batch.append({"batch": batch, "seconds": timings, "total": round(batch_s, 1),
                              "floor": round(floors[batch][0], 1), "source_rows": floors[batch][1],
                              "over_floor": round(batch_s / floors[batch][0], 2)})
            build_s += batch_s
    jvm_pid = spark.sparkContext._jvm.java.lang.ProcessHandle.current().pid()
    return {
        "domain": domain,
        "persons": persons,
        "batches": batch_dates,
        "source_rows": floor_rows,
        "generate_seconds": None if generated_in is None else round(generated_in, 1),
        "floor_seconds": round(floor_s, 1),
        "build_seconds": round(build_s, 1),
        "build_over_floor": round(build_s / floor_s, 2),
        "stage_seconds": {k: round(v, 1) for k, v in stages.items()},
        "per_batch": per_batch,
        "peak_rss_mib": {
            "jvm": round(_peak_rss_mib(jvm_pid), 0),
            "python": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 0),
        },
        "spark_driver_memory": profile.spark.conf.get("spark.driver.memory"),
        "cpus": os.cpu_count(),
        **({"slow_calls": [{"batch": b, "stage": st, "call": c, "seconds": round(v, 1)}
                           for (b, st, c), v in sorted(calls.items(), key=lambda kv: (kv[0][0], kv[0][1], -kv[1]))]}
           if profile_calls else {}),
    }


def print_bench(result: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    size = f"{result['persons']:,} persons"
    if "entities_requested" in result:
        size = f"about {result['entities_requested']:,} entities ({size})"
    table = Table("stage", "seconds", "share of floor", title=f"{result['domain']}: {size}, "
                  f"{len(result['batches'])} batches, {result['source_rows']:,} source rows")
    table.add_row("I/O floor (read + write Delta)", f"{result['floor_seconds']:.1f}", "1.00")
    for stage, seconds in result["stage_seconds"].items():
        table.add_row(stage, f"{seconds:.1f}", f"{seconds / result['floor_seconds']:.2f}")
    table.add_row("build", f"{result['build_seconds']:.1f}", f"{result['build_over_floor']:.2f}")
    Console().print(table)
    batches = Table("batch", "source rows", "I/O floor s", "build s", "build / floor", "build / first batch's",
                    title="each batch against its own floor: the first is the initial load, later ones monthly")
    first = result["per_batch"][0]["total"]
    for b in result["per_batch"]:
        batches.add_row(b["batch"], f"{b['source_rows']:,}", f"{b['floor']:.1f}", f"{b['total']:.1f}",
                        f"{b['over_floor']:.2f}", f"{b['total'] / first:.0%}")
    Console().print(batches)
    if result.get("slow_calls"):
        last = result["per_batch"][-1]["batch"]
        calls = Table("stage", "seconds", "Spark call < the source lines that made it",
                      title=f"batch {last}: where each stage's time goes (calls of {SLOW_CALL_S} s or more, 1 s or more shown)")
        for c in result["slow_calls"]:
            if c["batch"] == last and c["seconds"] >= 1:
                calls.add_row(c["stage"], f"{c['seconds']:.1f}", c["call"])
        Console().print(calls)
    print(json.dumps(result, indent=2))
