"""Probabilistic record linkage (Fellegi-Sunter), driven entirely by a `LinkSpec`.

Spark does the joins (blocking) and runs the scoring in parallel; the scoring itself is a pure
pandas function, `score_frame`, so it is tested without Spark. Clusters are the connected
components of the match edges, solved on the driver because match edges are far fewer than records.

Column conventions of the engine (the only names it fixes): a pair is `id_l`, `id_r`, and each
spec column `<field>` appears as `<field>_l`, `<field>_r`; scoring adds `level_<field>`,
`sim_<field>`, `weight`, `probability` and `decision`; clusters are `id`, `cluster_id`.
"""

from __future__ import annotations

import json
import logging
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from functools import reduce
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import DoubleType, IntegerType, StringType, StructField, StructType
from rapidfuzz import fuzz, process
from rapidfuzz.distance import JaroWinkler, Levenshtein, Prefix

from jichu.config import ConfigError
from jichu.link.spec import Comparison, LinkSpec

log = logging.getLogger(__name__)

NULL_LEVEL = -1
"""`level_<field>` of a pair where either side has no value; such a comparison adds weight 0."""

# Similarities are floats computed by rapidfuzz (e.g. 84.99999/100); a level's `min` of 0.85 must
# still be reached by a score that is 0.85 up to rounding.
_EPS = 1e-9

# rapidfuzz's fuzz.* scorers return 0..100, the distance module's normalized similarities 0..1.
_SCORERS = {
    "ratio": (fuzz.ratio, 100.0),
    "token_sort_ratio": (fuzz.token_sort_ratio, 100.0),
    "partial_ratio": (fuzz.partial_ratio, 100.0),
    "jaro_winkler": (JaroWinkler.normalized_similarity, 1.0),
    "levenshtein": (Levenshtein.normalized_similarity, 1.0),
    # Length of the common prefix over the longer string's length.
    "prefix": (Prefix.normalized_similarity, 1.0),
}


# --- scoring (pure pandas) --------------------------------------------------------------------


def _as_text(value, normalize: str) -> str | None:
    """The value as compared: a string, or None where there is nothing to compare."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    text = str(value)
    if normalize == "text":
        # NFKC folds full-width letters and digits (common in Chinese extracts) to ASCII.
        text = " ".join(unicodedata.normalize("NFKC", text).split()).lower()
    # An empty or blank cell is no evidence either way, exactly like a null.
    return text if text.strip() else None


def _similarities(left: list[str], right: list[str], scorer: str) -> np.ndarray:
    if not left:
        return np.empty(0, dtype=np.float64)
    if scorer == "exact":
        return np.fromiter((1.0 if a == b else 0.0 for a, b in zip(left, right)), dtype=np.float64, count=len(left))
    func, scale = _SCORERS[scorer]
    # cpdist scores element-wise pairs in C; one worker because Spark already runs one task per core.
    return process.cpdist(left, right, scorer=func, dtype=np.float64, workers=1) / scale


def _score_comparison(pdf: pd.DataFrame, comparison: Comparison) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(level index, similarity, weight) per row for one comparison; nulls get level -1, NaN, 0."""
    left = [_as_text(v, comparison.normalize) for v in pdf[f"{comparison.field}_l"]]
    right = [_as_text(v, comparison.normalize) for v in pdf[f"{comparison.field}_r"]]
    present = np.array([a is not None and b is not None for a, b in zip(left, right)], dtype=bool)
    sims = np.full(len(pdf), np.nan)
    sims[present] = _similarities(
        [a for a, p in zip(left, present) if p], [b for b, p in zip(right, present) if p], comparison.scorer
    )
    levels = np.full(len(pdf), NULL_LEVEL, dtype=np.int32)
    weights = np.zeros(len(pdf))
    # Walk the levels from the lowest min up: each later (higher) level overwrites, so every pair ends
    # at the first level in spec order whose min it reaches.
    for index in reversed(range(len(comparison.levels))):
        level = comparison.levels[index]
        reached = present & (sims >= level.min - _EPS)
        levels[reached] = index
        weights[reached] = level.weight
    return levels, sims, weights


def match_probability(weight, prior: float):
    """P(match | weight) = 1 / (1 + (1 - prior) / prior * 2**-weight); works on scalars and arrays."""
    # Very negative weights overflow 2**-weight to inf, which correctly gives probability 0.
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + (1.0 - prior) / prior * np.exp2(-np.asarray(weight, dtype=np.float64)))


def score_frame(pdf: pd.DataFrame, spec: LinkSpec) -> pd.DataFrame:
    """Score candidate pairs: a copy of `pdf` (columns `<field>_l`, `<field>_r` per comparison) plus
    `level_<field>` (int, -1 where either side is null or blank), `sim_<field>` (0..1, NaN for null),
    `weight`, `probability` and `decision` ("match" | "review" | "non_match")."""
    out = pdf.copy()
    total = np.zeros(len(pdf))
    for comparison in spec.comparisons:
        levels, sims, weights = _score_comparison(pdf, comparison)
        out[f"level_{comparison.field}"] = levels
        out[f"sim_{comparison.field}"] = sims
        total += weights
    probability = match_probability(total, spec.prior)
    out["weight"] = total
    out["probability"] = probability
    out["decision"] = np.select(
        [probability >= spec.thresholds.match, probability >= spec.thresholds.review], ["match", "review"], "non_match"
    ).astype(object)
    return out


# --- candidate pairs (Spark) ------------------------------------------------------------------


def _require_columns(df: DataFrame, columns: Iterable[str], what: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ConfigError(f"{what}: columns {missing} required by the linkage spec are missing")


def _blocked(df: DataFrame, id_column: str, rule: Sequence[str]) -> DataFrame:
    """(id, k0..kn) of records with a value in every column of the rule: nulls and blanks never block."""
    keys = [F.col(c).alias(f"k{i}") for i, c in enumerate(rule)]
    usable = reduce(
        lambda acc, c: acc & F.col(c).isNotNull() & (F.trim(F.col(c).cast("string")) != ""), rule, F.lit(True)
    )
    return df.where(usable).select(F.col(id_column).alias("id"), *keys)


def candidate_pairs(left: DataFrame, right: DataFrame | None, spec: LinkSpec, carry: Sequence[str] = ()) -> DataFrame:
    """Pairs of records that agree on every column of at least one blocking rule.

    With `right` None, deduplicate `left`: each unordered pair once, as id_l < id_r. Otherwise link
    `left` to `right`: only left x right pairs. Blocking compares raw values (standardize first).
    Columns: id_l, id_r, then `<col>_l`, `<col>_r` for each compared field and each `carry` column.
    A pair found by several rules appears once. Ids must be unique within each side.
    """
    dedupe = right is None
    right = left if dedupe else right
    needed = [spec.id_column, *spec.blocking_fields, *spec.compared_fields, *carry]
    _require_columns(left, needed, "left input")
    _require_columns(right, needed, "right input")

    per_rule = []
    for rule in spec.blocking:
        keys = [f"k{i}" for i in range(len(rule))]
        lhs = _blocked(left, spec.id_column, rule).withColumnRenamed("id", "id_l")
        rhs = _blocked(right, spec.id_column, rule).withColumnRenamed("id", "id_r")
        joined = lhs.join(rhs, keys)
        if dedupe:
            # Also drops self pairs; the inequality is applied after the equi-join on the keys.
            joined = joined.where(F.col("id_l") < F.col("id_r"))
        per_rule.append(joined.select("id_l", "id_r"))
    pairs = reduce(DataFrame.unionByName, per_rule).distinct()

    attributes = list(dict.fromkeys([*spec.compared_fields, *carry]))

    def side(df: DataFrame, suffix: str) -> DataFrame:
        return df.select(
            F.col(spec.id_column).alias(f"id_{suffix}"), *[F.col(c).alias(f"{c}_{suffix}") for c in attributes]
        )

    pairs = pairs.join(side(left, "l"), "id_l").join(side(right, "r"), "id_r")
    ordered = ["id_l", "id_r", *[f"{c}_{s}" for c in attributes for s in ("l", "r")]]
    return pairs.select(*ordered)


def score_pairs(pairs: DataFrame, spec: LinkSpec) -> DataFrame:
    """`score_frame` over a Spark DataFrame of candidate pairs (as from `candidate_pairs`)."""
    added = []
    for c in spec.compared_fields:
        added += [StructField(f"level_{c}", IntegerType(), False), StructField(f"sim_{c}", DoubleType(), True)]
    added += [
        StructField("weight", DoubleType(), False),
        StructField("probability", DoubleType(), False),
        StructField("decision", StringType(), False),
    ]
    schema = StructType([*pairs.schema.fields, *added])
    names = schema.fieldNames()

    def score(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for pdf in batches:
            yield score_frame(pdf, spec)[names]

    return pairs.mapInPandas(score, schema)


# --- clusters ---------------------------------------------------------------------------------


def _components(edges: Iterable[tuple]) -> dict:
    """Union-find: node -> smallest node of its component, for every node on an edge."""
    parent: dict = {}

    def root(x):
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]  # path halving keeps the trees shallow
            x = parent[x]
        return x

    for a, b in edges:
        ra, rb = root(a), root(b)
        # The smaller root wins, so each component's root is its smallest id: deterministic cluster ids.
        if ra != rb:
            if rb < ra:
                ra, rb = rb, ra
            parent[rb] = ra
    return {x: root(x) for x in parent}


def assign_clusters(spark: SparkSession, ids: DataFrame, matches: DataFrame) -> DataFrame:
    """Connected components of the match edges: (id, cluster_id) once per distinct id of `ids`.

    `ids` has a column `id`; `matches` has `id_l`, `id_r` (the pairs taken as matches, all among
    `ids`). cluster_id is the smallest id of the component; a record with no match is its own cluster.
    The edges are collected to the driver, which suits match edges being far fewer than records.
    """
    edges = [(r["id_l"], r["id_r"]) for r in matches.select("id_l", "id_r").collect()]
    id_type = ids.schema["id"].dataType
    mapping = spark.createDataFrame(
        list(_components(edges).items()),
        StructType([StructField("id", id_type, False), StructField("cluster_id", id_type, False)]),
    )
    return (
        ids.select("id")
        .where(F.col("id").isNotNull())
        .distinct()
        .join(mapping, "id", "left")
        .select("id", F.coalesce("cluster_id", "id").alias("cluster_id"))
    )


# --- files in, files out ----------------------------------------------------------------------


def _read_input(path: Path, wanted: Sequence[str]) -> tuple[pd.DataFrame, list[str]]:
    """The `wanted` columns the file has, as strings (None for empty cells) in file order; and the
    names of all its columns."""
    if path.is_dir() or path.suffix.lower() == ".parquet":
        table = pq.read_table(path)
        names = table.column_names
        present = [c for c in wanted if c in names]
        # Cast in Arrow: through pandas an integer column with nulls would turn into "1990.0".
        try:
            table = table.select(present).cast(pa.schema([pa.field(c, pa.string()) for c in present]))
        except (pa.ArrowNotImplementedError, pa.ArrowInvalid) as e:
            raise ConfigError(f"{path}: a column used by the linkage spec cannot be read as text: {e}") from None
        pdf = table.to_pandas()
    else:
        # utf-8-sig drops the BOM Excel writes; keep_default_na=False keeps strings like "NA" as values.
        pdf = pd.read_csv(path, dtype=str, encoding="utf-8-sig", keep_default_na=False, na_values=[""])
        names = list(pdf.columns)
        pdf = pdf[[c for c in wanted if c in names]]
    return pdf.astype(object).where(pdf.notna(), None), names


def _load_records(spec: LinkSpec, inputs: Sequence[Path]) -> pd.DataFrame:
    """All inputs as one frame of the spec's columns plus `source` (the file's stem)."""
    if "source" in spec.columns:
        raise ConfigError("link_files adds a column 'source'; the spec must not use a column of that name")
    frames = []
    for path in inputs:
        path = Path(path)
        if not path.exists():
            raise ConfigError(f"{path}: input file not found")
        pdf, names = _read_input(path, spec.columns)
        if spec.id_column not in pdf.columns:
            # Row numbers in file order (1-based), so the same file always yields the same ids.
            pdf[spec.id_column] = [f"{path.stem}:{i}" for i in range(1, len(pdf) + 1)]
        missing = [c for c in spec.columns if c not in pdf.columns]
        if missing:
            raise ConfigError(
                f"{path}: column(s) {', '.join(missing)} required by linkage spec '{spec.name}' not found"
            )
        if pdf[spec.id_column].isna().any():
            raise ConfigError(f"{path}: column {spec.id_column} (the spec's id_column) has empty values")
        unused = sorted(set(names) - set(spec.columns))
        if unused:
            log.info("%s: columns not used by linkage spec '%s': %s", path, spec.name, ", ".join(unused))
        frames.append(pdf[spec.columns].assign(source=path.stem))
    records = pd.concat(frames, ignore_index=True)
    repeated = records[records[spec.id_column].duplicated(keep=False)]
    if len(repeated):
        example = repeated.iloc[0][spec.id_column]
        sources = sorted(set(repeated.loc[repeated[spec.id_column] == example, "source"]))
        raise ConfigError(f"{spec.id_column} {example!r} is not unique across inputs (in {', '.join(sources)})")
    return records


def link_files(spark: SparkSession, spec: LinkSpec, inputs: Sequence[Path], output: Path) -> dict:
    """Deduplicate the records of all `inputs` together and write pairs, clusters and a summary.

    Inputs are CSV (header, UTF-8 with or without BOM, read as strings) or Parquet (a `.parquet`
    file or a directory). Each record gets `source` = its file's stem and, where the file has no
    `id_column`, the id `<stem>:<row number>`. Several inputs are unioned and deduplicated as one,
    so a cluster may span files. Writes `pairs.csv` (every scored candidate pair), `clusters.csv`
    (id, source, cluster_id, cluster_size) and `summary.json` into `output`, replacing earlier
    results, and returns the summary {records, candidate_pairs, matches, reviews, clusters}.
    The inputs are read on the driver: this is for files of ad-hoc size.
    """
    if not inputs:
        raise ConfigError("link_files needs at least one input")
    records_pdf = _load_records(spec, inputs)
    schema = StructType([StructField(c, StringType(), True) for c in records_pdf.columns])
    records = spark.createDataFrame(records_pdf, schema)

    scored = score_pairs(candidate_pairs(records, None, spec, carry=["source"]), spec).cache()
    try:
        pairs_pdf = scored.toPandas().sort_values(["id_l", "id_r"], ignore_index=True)
        clusters = assign_clusters(
            spark, records.select(F.col(spec.id_column).alias("id")), scored.where(F.col("decision") == "match")
        ).toPandas()
    finally:
        scored.unpersist()

    sources = records_pdf[[spec.id_column, "source"]].rename(columns={spec.id_column: "id"})
    clusters = clusters.merge(sources, on="id", how="left")
    clusters["cluster_size"] = clusters.groupby("cluster_id")["id"].transform("size")
    clusters = clusters[["id", "source", "cluster_id", "cluster_size"]]
    clusters = clusters.sort_values(["cluster_id", "id"], ignore_index=True)

    columns = ["id_l", "id_r", "source_l", "source_r"]
    for c in spec.compared_fields:
        columns += [f"{c}_l", f"{c}_r", f"level_{c}", f"sim_{c}"]
    columns += ["weight", "probability", "decision"]

    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    pairs_pdf[columns].to_csv(output / "pairs.csv", index=False, encoding="utf-8")
    clusters.to_csv(output / "clusters.csv", index=False, encoding="utf-8")
    decisions = pairs_pdf["decision"].value_counts()
    summary = {
        "records": len(records_pdf),
        "candidate_pairs": len(pairs_pdf),
        "matches": int(decisions.get("match", 0)),
        "reviews": int(decisions.get("review", 0)),
        "clusters": int(clusters["cluster_id"].nunique()),
    }
    (output / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return summary
