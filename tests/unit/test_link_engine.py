"""The spec-driven linkage engine: scoring on literal rows, blocking, clusters against a BFS oracle, files end to end."""

from __future__ import annotations

import json
import math
import random
from collections import defaultdict, deque

import numpy as np
import pandas as pd
import pytest
from rapidfuzz.distance import JaroWinkler

from jichu.cli import main
from jichu.config import ROOT, ConfigError
from jichu.link.engine import assign_clusters, candidate_pairs, link_files, score_frame, score_pairs
from jichu.link.spec import LinkSpec, load_link_spec

EXAMPLE = ROOT / "conf" / "linkage" / "example_people.yaml"

SPEC = LinkSpec.model_validate({
    "name": "test",
    "id_column": "rid",
    "blocking": [["dob", "sex"], ["name"]],
    "comparisons": [
        {"field": "name", "scorer": "jaro_winkler", "normalize": "text", "levels": [
            {"min": 1.0, "m": 0.9, "u": 0.002}, {"min": 0.85, "m": 0.06, "u": 0.01}, {"min": 0.0, "m": 0.04, "u": 0.988}]},
        {"field": "dob", "scorer": "exact", "levels": [
            {"min": 1.0, "m": 0.97, "u": 0.01}, {"min": 0.0, "m": 0.03, "u": 0.99}]},
        {"field": "city", "scorer": "ratio", "levels": [
            {"min": 1.0, "m": 0.8, "u": 0.05}, {"min": 0.0, "m": 0.2, "u": 0.95}]},
    ],
    "prior": 0.001,
    "thresholds": {"match": 0.99, "review": 0.5},
})


def _p(weight: float, prior: float = 0.001) -> float:
    return 1 / (1 + (1 - prior) / prior * 2 ** -weight)


# --- score_frame ------------------------------------------------------------------------------


def test_score_frame_levels_weights_and_decisions():
    pdf = pd.DataFrame(
        [
            ("Zhang San", "ZHANG  san ", "1990-01-01", "1990-01-01", "Hangzhou", "Hangzhou"),  # same after normalizing
            ("Zhang San", "Li Si", "1990-01-01", "1985-05-05", "Hangzhou", "Ningbo"),  # differs everywhere
            ("Zhang San", "Zhang Shan", "1990-01-01", None, "Hangzhou", ""),  # typo; dob and city missing
        ],
        columns=["name_l", "name_r", "dob_l", "dob_r", "city_l", "city_r"],
    )
    out = score_frame(pdf, SPEC)

    assert list(out.columns[:6]) == list(pdf.columns)  # input columns kept, in order
    assert out["level_name"].tolist() == [0, 2, 1]
    assert out["level_dob"].tolist() == [0, 1, -1]
    assert out["level_city"].tolist() == [0, 1, -1]
    assert out["sim_name"].iloc[0] == 1.0
    assert out["sim_name"].iloc[2] == pytest.approx(JaroWinkler.normalized_similarity("zhang san", "zhang shan"))
    assert np.isnan(out["sim_dob"].iloc[2]) and np.isnan(out["sim_city"].iloc[2])

    top = math.log2(0.9 / 0.002) + math.log2(0.97 / 0.01) + math.log2(0.8 / 0.05)
    bottom = math.log2(0.04 / 0.988) + math.log2(0.03 / 0.99) + math.log2(0.2 / 0.95)
    typo_only = math.log2(0.06 / 0.01)  # the null dob and blank city add 0
    assert out["weight"].tolist() == pytest.approx([top, bottom, typo_only])
    assert out["probability"].tolist() == pytest.approx([_p(top), _p(bottom), _p(typo_only)], rel=1e-12)
    assert _p(top) > 0.99 and _p(bottom) < 1e-6  # the cut-offs below are not decided by rounding
    assert out["decision"].tolist() == ["match", "non_match", "non_match"]


def test_score_frame_review_band_and_empty_input():
    # Exact name and dob, city missing: 8.81 + 6.60 bits against prior odds of 9.96 bits gives p ~ 0.978.
    pdf = pd.DataFrame([("A", "A", "1", "1", None, None)], columns=["name_l", "name_r", "dob_l", "dob_r", "city_l", "city_r"])
    out = score_frame(pdf, SPEC)
    weight = math.log2(0.9 / 0.002) + math.log2(0.97 / 0.01)
    assert out["probability"].iloc[0] == pytest.approx(_p(weight)) and 0.5 < _p(weight) < 0.99
    assert out["decision"].tolist() == ["review"]
    empty = score_frame(pdf.iloc[:0], SPEC)
    assert len(empty) == 0 and {"weight", "probability", "decision", "level_city"} <= set(empty.columns)


# --- spec validation --------------------------------------------------------------------------

VALID = EXAMPLE.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    "old, new, key",
    [
        ("{min: 0.8,  m: 0.07", "{min: 1.0,  m: 0.07", "comparisons.0.levels"),  # not strictly decreasing
        ("{min: 0.0, m: 0.10, u: 0.90}", "{min: 0.1, m: 0.10, u: 0.90}", "comparisons.3.levels"),  # last min not 0
        ("scorer: jaro_winkler", "scorer: soundex", "comparisons.0.scorer"),
        ("normalize: text             #", "normalise: text             #", "comparisons.0.normalise"),
        ("prior: 0.01", "priors: 0.01", "priors"),
        ("review: 0.5}", "review: 0.95}", "thresholds"),
        ("{min: 1.0, m: 0.95, u: 0.003}", "{min: 1.0, m: 0.95, u: 0}", "comparisons.1.levels.0.u"),
    ],
)
def test_spec_errors_name_file_and_key(tmp_path, old, new, key):
    assert VALID.count(old) == 1
    path = tmp_path / "bad.yaml"
    path.write_text(VALID.replace(old, new), encoding="utf-8")
    with pytest.raises(ConfigError) as e:
        load_link_spec(path)
    assert str(path) in str(e.value) and f"key '{key}'" in str(e.value)


def test_example_spec_loads():
    spec = load_link_spec(EXAMPLE)
    assert spec.columns == ["record_id", "name", "birth_date", "sex", "address"]
    assert spec.blocking == [["birth_date", "sex"], ["name"]]


# --- candidate pairs --------------------------------------------------------------------------

PEOPLE = "rid string, name string, dob string, sex string, city string, entity string"


def test_candidate_pairs_dedupe_union_without_duplicates_or_null_blocks(spark):
    people = spark.createDataFrame(
        [
            ("r1", "A", "D1", "M", "x", "e1"),
            ("r2", "A", "D1", "M", "x", "e1"),  # found by both rules: must appear once
            ("r3", "B", "D1", "M", "y", "e2"),  # same dob and sex as r1, r2
            ("r4", None, None, "M", "z", "e3"),  # nulls never block ...
            ("r5", None, None, "M", "z", "e4"),  # ... not even against each other
            ("r6", "", "D2", "F", None, "e5"),  # blank names do not block either
            ("r7", "", "D3", "F", None, "e6"),
        ],
        PEOPLE,
    )
    pairs = candidate_pairs(people, None, SPEC, carry=["entity"])
    assert pairs.columns == ["id_l", "id_r", "name_l", "name_r", "dob_l", "dob_r", "city_l", "city_r",
                             "entity_l", "entity_r"]
    rows = pairs.collect()
    assert sorted((r.id_l, r.id_r) for r in rows) == [("r1", "r2"), ("r1", "r3"), ("r2", "r3")]
    by_pair = {(r.id_l, r.id_r): r for r in rows}
    assert by_pair[("r1", "r3")].name_r == "B" and by_pair[("r1", "r3")].entity_r == "e2"

    scored = score_pairs(pairs, SPEC)
    assert dict(scored.dtypes)["level_name"] == "int" and dict(scored.dtypes)["probability"] == "double"
    levels = {(r.id_l, r.id_r): (r.level_name, r.level_dob, r.decision) for r in scored.collect()}
    assert levels[("r1", "r2")] == (0, 0, "match") and levels[("r1", "r3")][:2] == (2, 0)


def test_candidate_pairs_link_mode_pairs_only_across_sides(spark):
    left = spark.createDataFrame([("L1", "A", "D1", "M", "x", "e"), ("L2", "A", "D1", "M", "x", "e")], PEOPLE)
    right = spark.createDataFrame([("R1", "A", "D9", "F", "x", "e"), ("R2", "C", "D1", "M", "x", "e"),
                                   ("R3", "C", "D1", "F", "x", "e")], PEOPLE)
    pairs = sorted((r.id_l, r.id_r) for r in candidate_pairs(left, right, SPEC).collect())
    # L1-L2 and R2-R3 share blocks within one side and must not appear.
    assert pairs == [("L1", "R1"), ("L1", "R2"), ("L2", "R1"), ("L2", "R2")]


def test_candidate_pairs_missing_column_is_a_config_error(spark):
    people = spark.createDataFrame([("r1", "A", "D1")], "rid string, name string, dob string")
    with pytest.raises(ConfigError, match="sex"):
        candidate_pairs(people, None, SPEC)


# --- clusters ---------------------------------------------------------------------------------


def _bfs_clusters(nodes, edges) -> dict:
    neighbours = defaultdict(set)
    for a, b in edges:
        neighbours[a].add(b)
        neighbours[b].add(a)
    result = {}
    for start in nodes:
        if start in result:
            continue
        seen, queue = {start}, deque([start])
        while queue:
            for n in neighbours[queue.popleft()] - seen:
                seen.add(n)
                queue.append(n)
        smallest = min(seen)
        result.update({n: smallest for n in seen})
    return result


def _clusters(spark, nodes, edges, ddl: str) -> dict:
    ids = spark.createDataFrame([(n,) for n in nodes], f"id {ddl}")
    matches = spark.createDataFrame(edges, f"id_l {ddl}, id_r {ddl}")
    rows = assign_clusters(spark, ids, matches).collect()
    assert len(rows) == len(set(nodes))  # every id exactly once
    return {r.id: r.cluster_id for r in rows}


def test_assign_clusters_by_hand(spark):
    got = _clusters(spark, list("abcdefg"), [("b", "c"), ("c", "a"), ("f", "e"), ("e", "f")], "string")
    assert got == {"a": "a", "b": "a", "c": "a", "d": "d", "e": "e", "f": "e", "g": "g"}


def test_assign_clusters_matches_bfs_on_random_graphs(spark):
    rng = random.Random(7)
    for trial in range(4):
        # Integer ids keep their type; string ids order as strings ("n10" < "n9"), in Spark as in Python.
        ints = trial % 2 == 0
        nodes = list(range(80)) if ints else [f"n{i}" for i in range(80)]
        edges = [tuple(rng.sample(nodes, 2)) for _ in range(rng.randint(20, 70))]
        got = _clusters(spark, nodes, edges, "bigint" if ints else "string")
        assert got == _bfs_clusters(nodes, edges)
        assert len(set(got.values())) < len(nodes)  # the graph did merge something


# --- files end to end -------------------------------------------------------------------------

HEADER = "name,birth_date,sex,address\n"
A_ROWS = [
    ("张三丰", "1990-01-01", "M", "北京市海淀区中关村大街１号"),  # full-width digit: NFKC makes it "1"
    ("李四", "1985-05-05", "F", "上海市浦东新区世纪大道100号"),
    ("王五", "1990-01-01", "M", "广州市天河区体育西路88号"),  # same block as 张三丰, another person
]
# b has its own ids, other column order and a column the spec does not use.
B_ROWS = [
    ("p1", "M", "1990-01-01", "张三峰", "北京市海淀区中关村大街1号", "x"),  # typo of a:1
    ("p2", "F", "1985-05-05", "李四", "上海市浦东新区世纪大道100号", "y"),  # exact copy of a:2
    ("p3", "F", "2000-02-02", "赵六", "", "z"),
]
B_COLUMNS = ["record_id", "sex", "birth_date", "name", "address", "note"]


def _write_inputs(tmp_path):
    a = tmp_path / "a.csv"
    # utf-8-sig writes a BOM, as Excel does; the id column is absent, so ids become a:<row>.
    a.write_text(HEADER + "".join(",".join(r) + "\n" for r in A_ROWS), encoding="utf-8-sig")
    b = tmp_path / "b.csv"
    pd.DataFrame(B_ROWS, columns=B_COLUMNS).to_csv(b, index=False, encoding="utf-8")
    return a, b


EXPECTED_CLUSTERS = [
    ("a:1", "a", "a:1", 2), ("p1", "b", "a:1", 2),
    ("a:2", "a", "a:2", 2), ("p2", "b", "a:2", 2),
    ("a:3", "a", "a:3", 1),
    ("p3", "b", "p3", 1),
]
EXPECTED_SUMMARY = {"records": 6, "candidate_pairs": 4, "matches": 2, "reviews": 0, "clusters": 4}


def _read_clusters(out) -> list[tuple]:
    clusters = pd.read_csv(out / "clusters.csv", dtype={"id": str, "source": str, "cluster_id": str})
    assert list(clusters.columns) == ["id", "source", "cluster_id", "cluster_size"]
    return [tuple(r) for r in clusters.itertuples(index=False)]


def test_link_files_end_to_end(spark, tmp_path):
    a, b = _write_inputs(tmp_path)
    out = tmp_path / "out"
    summary = link_files(spark, load_link_spec(EXAMPLE), [a, b], out)

    assert summary == EXPECTED_SUMMARY
    assert json.loads((out / "summary.json").read_text(encoding="utf-8")) == EXPECTED_SUMMARY
    assert _read_clusters(out) == EXPECTED_CLUSTERS

    pairs = pd.read_csv(out / "pairs.csv", dtype=str, keep_default_na=False)
    assert list(pairs.columns[:4]) == ["id_l", "id_r", "source_l", "source_r"]
    assert list(pairs.columns[-3:]) == ["weight", "probability", "decision"]
    got = {(r.id_l, r.id_r): r for r in pairs.itertuples(index=False)}
    assert sorted(got) == [("a:1", "a:3"), ("a:1", "p1"), ("a:2", "p2"), ("a:3", "p1")]
    typo = got[("a:1", "p1")]
    assert (typo.source_l, typo.source_r, typo.name_l, typo.name_r) == ("a", "b", "张三丰", "张三峰")
    assert (typo.level_name, typo.level_birth_date, typo.level_address, typo.decision) == ("1", "0", "0", "match")
    assert float(typo.sim_name) == pytest.approx(0.8222222, abs=1e-6)
    other = got[("a:1", "a:3")]
    assert (other.level_name, other.decision) == ("2", "non_match") and float(other.probability) < 0.1


def test_cli_link_with_parquet_overwrites_output(spark, tmp_path, capsys):
    a, b = _write_inputs(tmp_path)
    parquet = tmp_path / "parquet" / "b.parquet"
    parquet.parent.mkdir()
    typed = pd.read_csv(b, dtype=str)
    # Parquet keeps types: a date column must still compare as "1990-01-01".
    typed["birth_date"] = pd.to_datetime(typed["birth_date"]).dt.date
    typed.to_parquet(parquet, index=False)
    out = tmp_path / "out"
    out.mkdir()
    (out / "clusters.csv").write_text("stale\n", encoding="utf-8")  # as left by an earlier run
    # main() reuses the test session: get_spark returns the active one.
    assert main(["link", "--spec", str(EXAMPLE), "--input", str(a), str(parquet), "--output", str(out)]) == 0
    assert json.loads(capsys.readouterr().out) == EXPECTED_SUMMARY
    assert _read_clusters(out) == EXPECTED_CLUSTERS


def test_link_files_names_input_and_missing_column(spark, tmp_path):
    a, _ = _write_inputs(tmp_path)
    c = tmp_path / "c.csv"
    c.write_text("name,birth_date,address\n张三,1990-01-01,北京\n", encoding="utf-8")
    with pytest.raises(ConfigError) as e:
        link_files(spark, load_link_spec(EXAMPLE), [a, c], tmp_path / "out")
    assert str(c) in str(e.value) and "sex" in str(e.value)
    assert not (tmp_path / "out").exists()


def test_link_files_rejects_ids_repeated_across_inputs(spark, tmp_path):
    _, b = _write_inputs(tmp_path)
    again = tmp_path / "again.csv"
    again.write_bytes(b.read_bytes())
    with pytest.raises(ConfigError, match=r"record_id 'p1' is not unique across inputs \(in again, b\)"):
        link_files(spark, load_link_spec(EXAMPLE), [b, again], tmp_path / "out")
