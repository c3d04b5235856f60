"""Oracle test: the gate's Spark-SQL ID check agrees with python-stdnum on random numbers."""

import random
from datetime import date, timedelta

from stdnum.cn import ric

from jichu.demo.faults import make_ric
from jichu_expectations.identifiers import ric_valid_sql


def test_sql_ric_check_agrees_with_stdnum(spark):
    rng = random.Random(7)
    values = []
    for _ in range(400):
        born = date(1950, 1, 1) + timedelta(days=rng.randrange(25000))
        number = make_ric("420106", born, rng.randrange(1000))
        kind = rng.randrange(4)
        if kind == 1:  # wrong check character
            number = number[:-1] + rng.choice([c for c in "0123456789X" if c != number[-1]])
        elif kind == 2:  # two digits transposed
            i = rng.randrange(16)
            number = number[:i] + number[i + 1] + number[i] + number[i + 2 :]
        elif kind == 3:  # impossible birth date
            number = number[:10] + "1345" + number[14:]
        values.append((number,))
    df = spark.createDataFrame(values, "id string").selectExpr("id", f"{ric_valid_sql('id')} AS ok")
    for row in df.collect():
        # stdnum also checks the county code against the birth year; 420106 exists from 1983.
        expected = ric.is_valid(row["id"]) or (
            row["id"][:17].isdigit() and len(row["id"]) == 18 and ric.calc_check_digit(row["id"]) == row["id"][-1]
            and _valid_date(row["id"][6:14])
        )
        assert row["ok"] == expected, row["id"][:6]


def _valid_date(s):
    try:
        date(int(s[:4]), int(s[4:6]), int(s[6:]))
        return True
    except ValueError:
        return False
