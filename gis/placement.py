"""Where a feature lands: its compound and street derived from its geometry (and any compound_ref), never claimed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, text

from gis import scope
from gis.layers import Layer
from gis.schema import TABLES


class PlacementError(ValueError):
    """A feature's claimed compound disagrees with its geometry, or names no compound; `field` is the claim."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Placement:
    """The links a feature is stored with and every street its write must be authorised on."""

    links: dict[str, Any]
    streets: frozenset[str | None]


_SMALLEST_COMPOUND = (
    "SELECT c.id, c.ref, c.street_code FROM compounds c "
    "WHERE ST_Intersects(c.geom, ST_PointOnSurface(CAST(:g AS geometry))) ORDER BY ST_Area(c.geom), c.id LIMIT 1")
_SMALLEST_STREET = (
    "SELECT s.ref FROM streets s WHERE ST_Intersects(s.geom, ST_PointOnSurface(CAST(:g AS geometry))) "
    "ORDER BY ST_Area(s.geom), s.id LIMIT 1")


def place(conn: Connection, layer: Layer, geom_hex: str, *, compound_ref: str | None = None,
          street_code: str | None = None, stored_ref: str | None = None) -> Placement:
    """compound_id / compound_ref / street_code of one feature of `layer` whose geometry is `geom_hex` (EWKB hex).

    The compound is the smallest one containing the geometry's point on surface. A `compound_ref` the client
    names must be an existing compound and, when the geometry lies in a compound, that same compound
    (PlacementError naming compound_ref otherwise); it places only a feature that lies in no compound (a
    hydrant on the road that serves it). A ref equal to `stored_ref` (the feature's current one, sent back by a
    client that read it) is no claim: a moved feature follows its geometry. The street is the compound's; for
    a feature in no compound the street office polygon's; the client's `street_code` only where neither
    exists. `streets` holds the street the feature gets and, when a named compound placed it, also the street
    its geometry lies in: the principal must hold every one of them.
    """
    with scope.unscoped_lookup(conn):
        return _place(conn, layer, geom_hex, compound_ref=compound_ref, street_code=street_code, stored_ref=stored_ref)


def _place(conn: Connection, layer: Layer, geom_hex: str, *, compound_ref: str | None, street_code: str | None,
           stored_ref: str | None) -> Placement:
    table = TABLES[layer.name]
    links: dict[str, Any] = {}
    streets: set[str | None] = set()
    compound_street = None
    has_compound = False
    if "compound_id" in table.c:
        found = conn.execute(text(_SMALLEST_COMPOUND), {"g": geom_hex}).first()
        chosen = found
        if compound_ref and compound_ref != stored_ref:
            named = conn.execute(text("SELECT id, ref, street_code FROM compounds WHERE ref = :r"),
                                 {"r": compound_ref}).first()
            if named is None:
                raise PlacementError("compound_ref", f"没有该小区 no compound {compound_ref!r}")
            if found is not None and found.id != named.id:
                raise PlacementError("compound_ref", f"与几何所在小区 {found.ref!r} 不符 the geometry lies in "
                                                     f"compound {found.ref!r}, not {compound_ref!r}")
            chosen = named
        elif compound_ref and found is None:  # the stored link of a feature outside every compound stays
            chosen = conn.execute(text("SELECT id, ref, street_code FROM compounds WHERE ref = :r"),
                                  {"r": compound_ref}).first()
        links["compound_id"] = chosen.id if chosen is not None else None
        links["compound_ref"] = chosen.ref if chosen is not None else None
        has_compound = chosen is not None
        compound_street = chosen.street_code if chosen is not None else None
        if chosen is not None and found is None:
            lies_in = conn.execute(text(_SMALLEST_STREET), {"g": geom_hex}).scalar()
            if lies_in is not None:
                streets.add(lies_in)
    if "street_code" in table.c:
        code = compound_street
        if code is None:
            code = conn.execute(text(_SMALLEST_STREET), {"g": geom_hex}).scalar()
        if code is None and not has_compound:
            code = street_code or None
        links["street_code"] = code
        streets.add(code)
    return Placement(links=links, streets=frozenset(streets))
