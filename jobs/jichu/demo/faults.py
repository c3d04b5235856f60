"""Names, identifiers and dates of the demo province, and the ways agencies get them wrong.

Every `spoil_*` function is pure: it takes the true value and a random stream and returns the value as a
careless clerk would type it, or None when the defect cannot apply to that value (the caller then does
not count the record as eligible).
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache

import numpy as np

ID_CHECK = "0123456789X"  # the characters a GB 11643 check position can hold

# Look-alike characters (形近字) that clerks confuse.
LOOKALIKE = {
    "王": "玉", "玉": "王", "未": "末", "末": "未", "己": "已", "已": "己", "人": "入", "大": "太", "太": "大",
    "天": "夫", "夫": "天", "土": "士", "士": "土", "干": "千", "千": "干", "木": "本", "本": "木", "贝": "见",
    "今": "令", "令": "今", "子": "孑", "日": "曰", "田": "由", "由": "田", "甲": "申", "申": "甲", "刀": "力",
    "力": "刀", "东": "车", "车": "东", "明": "朋", "红": "江", "江": "红", "林": "休", "丽": "俪", "娟": "绢",
    "秀": "透", "兰": "当", "军": "车", "杰": "木", "华": "毕", "平": "干", "伟": "传", "传": "伟", "鹏": "朋",
    "辉": "挥", "静": "净", "敏": "每", "涛": "寿", "强": "虽", "洋": "样", "磊": "垒", "霞": "暇", "勇": "男",
    "燕": "艳", "玲": "铃", "芳": "方", "娜": "哪", "英": "荚", "梅": "海", "婷": "停", "萍": "苹", "建": "健",
}

UYGHUR_NAMES = ("买买提·艾力", "阿依古丽·吐尔逊", "艾尔肯·买买提", "古丽娜尔·阿不都", "热依拉·艾买提", "阿不都热合曼·吐尔洪")
DOT_VARIANTS = ("・", "•", ".", " ", "")


@lru_cache(maxsize=1)
def name_pools() -> tuple[list[str], list[float], list[str], list[str], list[str]]:
    """Faker's zh_CN surnames (with their weights) and given names, plus single characters for 2-char names."""
    from faker.providers.person.zh_CN import Provider

    surnames = list(Provider.last_names)
    weights = np.array(list(Provider.last_names.values()), dtype=float)
    male, female = list(Provider.first_names_male), list(Provider.first_names_female)
    chars = sorted({c for n in male + female for c in n})
    return surnames, list(weights / weights.sum()), male, female, chars


@lru_cache(maxsize=1)
def homophones() -> dict[str, list[str]]:
    """Character -> other characters of the same toneless pinyin, among name characters (pypinyin)."""
    from pypinyin import lazy_pinyin

    surnames, _, male, female, chars = name_pools()
    pool = sorted(set(chars) | set(LOOKALIKE) | set("".join(surnames)) | set("玮炜薇蔚卫维巍俪莉立力利丽历励"))
    by_sound: dict[str, list[str]] = {}
    for c in pool:
        by_sound.setdefault(lazy_pinyin(c)[0], []).append(c)
    return {c: [o for o in by_sound[lazy_pinyin(c)[0]] if o != c] for c in pool if len(by_sound[lazy_pinyin(c)[0]]) > 1}


def make_name(rng: np.random.Generator, sex: str, surname: str | None = None) -> str:
    surnames, weights, male, female, chars = name_pools()
    if surname is None:
        surname = surnames[rng.choice(len(surnames), p=weights)]
    if rng.random() < 0.5:
        given = (male if sex == "1" else female)[rng.integers(len(male if sex == "1" else female))]
    else:
        given = chars[rng.integers(len(chars))] + chars[rng.integers(len(chars))]
    return surname + given


def make_ric(county: str, born: dt.date, sequence: int) -> str:
    """A GB 11643 number; python-stdnum computes the MOD 11-2 check character (it ignores the last one given)."""
    from stdnum.cn import ric

    body = f"{county}{born:%Y%m%d}{sequence:03d}"
    return body + ric.calc_check_digit(body + "0")


# --- spoilers: the true value in, the value as delivered out (None: not applicable) -----------------


def spoil_typo(name: str, rng: np.random.Generator) -> str | None:
    if len(name) < 2:
        return None
    i = int(rng.integers(1, len(name)))
    c = name[i]
    if c == "·":
        return None
    _, _, _, _, chars = name_pools()
    repl = LOOKALIKE.get(c) or next(x for x in (chars[int(rng.integers(len(chars)))] for _ in range(8)) if x != c)
    return name[:i] + repl + name[i + 1:]


def spoil_homophone(name: str, rng: np.random.Generator) -> str | None:
    table = homophones()
    spots = [i for i, c in enumerate(name) if i > 0 and c in table]
    if not spots:
        return None
    i = spots[int(rng.integers(len(spots)))]
    options = table[name[i]]
    return name[:i] + options[int(rng.integers(len(options)))] + name[i + 1:]


@lru_cache(maxsize=1)
def _s2t():
    import opencc

    return opencc.OpenCC("s2t")


def spoil_traditional(name: str, rng: np.random.Generator) -> str | None:
    t = _s2t().convert(name)
    return t if t != name else None


def spoil_width(name: str, rng: np.random.Generator) -> str | None:
    if "·" in name:
        return name.replace("·", DOT_VARIANTS[int(rng.integers(len(DOT_VARIANTS)))])
    if len(name) < 2:
        return None
    i = int(rng.integers(1, len(name)))
    return name[:i] + (" " if rng.random() < 0.7 else "\u3000") + name[i:]


def spoil_fullwidth(id_number: str, rng: np.random.Generator) -> str | None:
    return id_number.translate({ord(c): ord(c) + 0xFEE0 for c in "0123456789X"}) if id_number else None


def spoil_legacy15(id_number: str, rng: np.random.Generator) -> str | None:
    """The 15-digit number of a person born in the 1900s: the 18-digit one without '19' and the check."""
    if len(id_number) != 18 or id_number[6:8] != "19":
        return None
    return id_number[:6] + id_number[8:17]


def spoil_checksum(id_number: str, rng: np.random.Generator) -> str | None:
    if len(id_number) != 18:
        return None
    wrong = [c for c in ID_CHECK if c != id_number[-1]]
    return id_number[:-1] + wrong[int(rng.integers(len(wrong)))]


def spoil_transposed(id_number: str, rng: np.random.Generator) -> str | None:
    """Two adjacent, different digits swapped; GB 11643's MOD 11-2 always detects this."""
    spots = [i for i in range(6, 16) if id_number[i] != id_number[i + 1]]
    if len(id_number) != 18 or not spots:
        return None
    i = spots[int(rng.integers(len(spots)))]
    return id_number[:i] + id_number[i + 1] + id_number[i] + id_number[i + 2:]


DATE_VARIANTS = ("{d:%Y-%m-%d}", "{d:%Y/%m/%d}", "{d:%Y%m%d}", "{d.year}年{d.month}月{d.day}日", "{d:%Y.%m.%d}",
                 "{d.year}/{d.month}/{d.day}")


def format_date(day: dt.date | None, pattern: str) -> str:
    return "" if day is None else pattern.format(d=day)


def spoil_date_format(day: dt.date, usual: str, rng: np.random.Generator) -> str:
    other = [p for p in DATE_VARIANTS if format_date(day, p) != format_date(day, usual)]
    return format_date(day, other[int(rng.integers(len(other)))])


def spoil_date_value(day: dt.date, rng: np.random.Generator) -> dt.date:
    shift = int(rng.integers(1, 31)) * (1 if rng.random() < 0.5 else -1)
    return day + dt.timedelta(days=shift)
