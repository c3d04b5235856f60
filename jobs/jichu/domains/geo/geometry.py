"""The `geometry` field type: shapes kept as WKB in CGCS2000 (EPSG:4490), one written form per shape."""

from __future__ import annotations

from functools import cache

import pandas as pd
from pyspark.sql import functions as F
from pyspark.sql import types as T

from jichu.core.registry import FieldType, Typed

CRS = "EPSG:4490"
"""CGCS2000, the national geodetic datum: every geometry is kept in it."""
GEOMETRY_UNREADABLE = "GEOMETRY_UNREADABLE"
CRS_UNKNOWN = "CRS_UNKNOWN"


@cache
def _to_kept_crs(crs: str):
    """A function that moves coordinates from `crs` into CRS (None where they are in it already)."""
    if crs.upper() == CRS:
        return None
    import pyproj

    return pyproj.Transformer.from_crs(crs, CRS, always_xy=True).transform


def clean_geometry_value(text: str | None, crs: str = CRS) -> tuple[str | None, str | None]:
    """(WKB as upper-case hex, normalised, in EPSG:4490; or None, reason code or None) from GeoJSON, WKT
    or WKB hex. Normalised (shapely.normalize: rings and parts in a canonical order and orientation),
    so one shape written from another starting vertex is one value. A shape that is not valid (a ring
    that crosses itself) is kept as delivered: checking it is a rule, and the discrepancy goes to the
    agency that drew it."""
    import shapely
    import shapely.ops

    if text is None or not text.strip():
        return None, None
    body = text.strip()
    try:
        if body.startswith("{"):
            geometry = shapely.from_geojson(body)
        elif all(c in "0123456789abcdefABCDEF" for c in body):
            geometry = shapely.from_wkb(body)
        else:
            geometry = shapely.from_wkt(body)
    except (shapely.errors.GEOSException, ValueError, TypeError):
        return None, GEOMETRY_UNREADABLE
    if geometry is None or geometry.is_empty:
        return None, GEOMETRY_UNREADABLE
    try:
        move = _to_kept_crs(crs)
    except Exception:  # pyproj.exceptions.CRSError, raised as its own type
        return None, CRS_UNKNOWN
    if move is not None:
        geometry = shapely.ops.transform(move, geometry)
    return shapely.to_wkb(shapely.normalize(geometry), hex=True), None


_CHECKED = T.StructType([T.StructField("value", T.StringType()), T.StructField("error", T.StringType())])


@cache
def _udf(crs: str):
    @F.pandas_udf(_CHECKED)
    def clean(values: pd.Series) -> pd.DataFrame:
        return pd.DataFrame([clean_geometry_value(v, crs) for v in values], columns=["value", "error"])

    return clean


def _standardise(raw, mapping, rule) -> Typed:
    """The extract's `crs` is the one its shapes are drawn in (default EPSG:4490)."""
    checked = _udf(mapping.crs or CRS)(F.trim(raw))
    return Typed(checked["value"], checked["error"])


@cache
def _same_udf(tolerance: float):
    @F.pandas_udf(T.BooleanType())
    def same(a: pd.Series, b: pd.Series) -> pd.Series:
        import shapely

        left, right = shapely.from_wkb(a.to_numpy()), shapely.from_wkb(b.to_numpy())
        near = shapely.hausdorff_distance(left, right) <= tolerance
        return pd.Series(shapely.equals(left, right) | (near & (shapely.get_type_id(left) == shapely.get_type_id(right))))

    return same


def _same(a, b, rule):
    """The same shape (topologically equal), or one of the same type no farther from it anywhere than the
    field's tolerance (the Hausdorff distance, in degrees of EPSG:4490), whichever vertex it starts from."""
    return _same_udf(rule.tolerance)(a, b)


def _expectations(column, rule) -> list:
    import great_expectations.expectations as gxe

    from jichu_expectations.suites import CRITICAL

    return [gxe.ExpectColumnValuesToMatchRegex(column=column, regex=r"^([0-9A-F]{2})+$", severity=CRITICAL)]


GEOMETRY = FieldType("geometry", _standardise, same=_same, expectations=_expectations)
"""A point, line or polygon (boundaries, address points), as WKB hex in EPSG:4490."""
