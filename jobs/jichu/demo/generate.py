"""The demo province: all four base databases' agency extracts, in the landing format, with their truth.

`generate(out, scale, seed, batches)` writes ``out/landing/<agency>/<batch>/`` (files plus manifest.json)
and ``out/truth/`` beside it. Persons are made in partitions of PARTITION, each followed at once by its
legal entities and every extract row that concerns them, so memory does not grow with scale. The same
(scale, seed, batches, rates) give byte-identical files. docs/demo-province.md documents every extract,
the defect catalogue and the truth layout.
"""

from __future__ import annotations

import csv
import json
import shutil
from contextlib import nullcontext
from pathlib import Path

from jichu.demo.defects import Injector, load_rates
from jichu.demo.geo import write_geo
from jichu.demo.legal import LegalGenerator
from jichu.demo.macro import generate_macro
from jichu.demo.places import Places
from jichu.demo.population import PopulationGenerator
from jichu.demo.timeline import Calendar
from jichu.demo.writers import Landing, rng_for
from jichu.core.landing import sha256_of, write_manifest

PARTITION = 20_000

# File-level defects pick among these (agency, extract): events files can be re-sent, and files of
# agencies that are not a source of record can arrive cut short.
REDELIVERABLE = ["weijian__birth", "weijian__death", "minzheng__marriage", "minzheng__funeral"]
TRUNCATABLE = ["weijian__death", "renshe__insured", "jiaoyu__student", "minzheng__funeral", "shuiwu__taxpayer",
               "tongji__directory", "renshe__employer"]


def generate(out: Path, scale: int = 2000, seed: int = 42, batches: int = 2, rates: dict[str, float] | None = None,
             progress: bool = False) -> dict:
    """Write the province's extracts and truth under `out`; return the run summary (also truth/summary.json)."""
    rates = rates or load_rates()
    for sub in ("landing", "truth"):
        shutil.rmtree(out / sub, ignore_errors=True)
    cal, places, landing = Calendar(batches), Places(), Landing(out)
    write_geo(landing, cal, places)
    population = PopulationGenerator(landing, cal, places, rates, seed)
    legal = LegalGenerator(landing, cal, places, rates, seed)
    with _progress(progress, scale) as advance:
        done, part = 0, 0
        while done < scale:
            n = min(PARTITION, scale - done)
            persons, addresses = population.persons(part, n)
            entities = legal.partition(part, persons)
            population.write(part, persons, addresses, entities)
            done, part = done + n, part + 1
            advance(n)
    injector = Injector(rates, rng_for(seed, "summary"))
    for inj in (population.close(), legal.close(), generate_macro(landing, cal, places, rates, seed)):
        injector.merge(inj)
    landing.close()
    files = _file_defects(landing, cal, rates, seed, injector)
    summary = {
        "scale": scale, "seed": seed, "batches": cal.names, "persons": population.next_index,
        "defects": {k: {"rate": rates[k], "eligible": injector.eligible[k], "injected": injector.injected[k]}
                    for k in sorted(rates)},
        "file_defects": files,
        "files": [{"agency": a, "batch": b, "name": f["name"], "extract": f["extract"], "rows": f["rows"]}
                  for a, b, f in landing.files()],
    }
    (out / "truth" / "summary.json").write_text(json.dumps(summary, ensure_ascii=False, indent=2) + "\n",
                                               encoding="utf-8")
    return summary


def _progress(enabled: bool, total: int):
    if not enabled:
        return nullcontext(lambda n: None)
    from contextlib import contextmanager

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    @contextmanager
    def bar():
        with Progress(TextColumn("generating persons"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn()) as p:
            task = p.add_task("persons", total=total)
            yield lambda n: p.advance(task, n)

    return bar()


def _file_defects(landing: Landing, cal: Calendar, rates: dict, seed: int, injector: Injector) -> list[dict]:
    """Re-deliver and truncate whole files in the last batch, as configured; record them in truth/files.csv."""
    rng = rng_for(seed, "file-defects")
    last = cal.names[-1]
    delivered = {(a, b, f["extract"]): f for a, b, f in landing.files()}
    out: list[dict] = []
    if len(cal.names) >= 2:
        def in_last(key: str) -> bool:
            agency, extract = key.split("__")
            return (agency, last, extract) in delivered

        redone: set[str] = set()
        for key in _pick(rng, [k for k in REDELIVERABLE if in_last(k)], int(rates["redelivered_file"])):
            agency, extract = key.split("__")
            earlier = [b for b in cal.names[:-1] if (agency, b, extract) in delivered]
            if not earlier:
                continue
            prev, entry = earlier[-1], delivered[(agency, last, extract)]
            folder = landing.out / "landing" / agency
            shutil.copyfile(folder / prev / entry["name"], folder / last / entry["name"])
            truth = landing.out / "truth" / "records" / key
            shutil.copyfile(truth / f"{prev}.csv", truth / f"{last}.csv")
            entry["rows"] = delivered[(agency, prev, extract)]["rows"]
            write_manifest(folder / last, agency, last, sorted(landing.delivered[(agency, last)], key=lambda f: f["name"]))
            redone.add(key)
            out.append({"defect": "redelivered_file", "agency": agency, "batch": last, "name": entry["name"],
                        "detail": f"same bytes as the {prev} delivery"})
        # Only a file with rows to lose can arrive cut short.
        cut = [k for k in TRUNCATABLE if k not in redone and in_last(k)
               and delivered[(k.split("__")[0], last, k.split("__")[1])]["rows"] >= 10]
        for key in _pick(rng, cut, int(rates["truncated_file"])):
            agency, extract = key.split("__")
            path = landing.out / "landing" / agency / last / delivered[(agency, last, extract)]["name"]
            data = path.read_bytes()
            path.write_bytes(data[: max(1, int(len(data) * 0.6))])
            out.append({"defect": "truncated_file", "agency": agency, "batch": last, "name": path.name,
                        "detail": f"{int(len(data) * 0.6)} of {len(data)} bytes; manifest sha256 is of the whole file"})
    for o in out:
        injector.eligible[o["defect"]] += 1
        injector.injected[o["defect"]] += 1
    with (landing.out / "truth" / "files.csv").open("w", encoding="utf-8", newline="") as fh:
        w = csv.DictWriter(fh, ["defect", "agency", "batch", "name", "detail"], lineterminator="\n")
        w.writeheader()
        w.writerows(out)
    return out


def _pick(rng, options: list[str], k: int) -> list[str]:
    if not options or k <= 0:
        return []
    idx = rng.choice(len(options), size=min(k, len(options)), replace=False)
    return [options[i] for i in sorted(idx)]


def verify_manifests(out: Path) -> list[str]:
    """Files whose bytes no longer match their manifest (the truncated ones): for tests and the summary."""
    bad = []
    for manifest in sorted((out / "landing").glob("*/*/manifest.json")):
        for f in json.loads(manifest.read_text(encoding="utf-8"))["files"]:
            if sha256_of(manifest.parent / f["name"]) != f["sha256"]:
                bad.append(str((manifest.parent / f["name"]).relative_to(out)))
    return bad
