"""Geo extracts of the demo province: 民政 division codes (with retired ones) and 自然资源 county boundaries.

The standard address register (自然资源 address) is written by the population generator, because addresses
are created as households settle.
"""

from __future__ import annotations

from jichu.demo.places import TABLE_DATE, Places
from jichu.demo.timeline import Calendar
from jichu.demo.writers import ExtractSpec, Landing

DIVISION = ExtractSpec("minzheng", "division", "geo", "division.csv", "csv", "utf-8-sig",
                       ["区划代码", "区划名称", "级别", "上级区划代码", "启用年份", "停用年份", "状态", "数据截至"],
                       ["code", "name", "level", "parent", "status"], "annual", "snapshot")
BOUNDARY = ExtractSpec("ziran", "boundary", "geo", "boundary.geojson", "geojson", "utf-8",
                       ["code", "name", "geometry"], ["code", "name"], "annual", "snapshot")
LEVELS = {1: "省级", 2: "地级", 3: "县级", 4: "乡级"}


def write_geo(landing: Landing, cal: Calendar, places: Places) -> None:
    """Division table and boundaries in each batch in which they are delivered; no defects are injected:
    they are the sources of record other agencies' division codes are checked against."""
    for b in cal.deliveries(DIVISION.cadence):
        w = landing.writer(DIVISION, cal.names[b])
        rows = [(d, "现行") for d in places.divisions] + [(d, "撤销") for d in places.retired]
        for d, status in sorted(rows, key=lambda r: (r[0].code, r[1])):
            w.write([d.code, d.name, LEVELS[d.level], d.parent, d.start or "", d.end or "", status, TABLE_DATE],
                    d.code, [], {"code": d.code, "name": d.name, "level": d.level, "parent": d.parent,
                                 "status": status})
    for b in cal.deliveries(BOUNDARY.cadence):
        w = landing.writer(BOUNDARY, cal.names[b])
        for code, geometry in sorted(places.boundaries.items()):
            name = places.by_code[code].name
            w.write([code, name, geometry], code, [], {"code": code, "name": name})
