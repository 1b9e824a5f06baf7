"""The OGC API collections: one per layer, and for a layer of mixed geometry one per geometry dimension."""

from __future__ import annotations

from dataclasses import dataclass

from gis.layers import LAYERS, Layer

#: GeoJSON geometry type served for each stored geometry kind (single-type layers are stored promoted).
_KIND_TYPES: dict[str, str] = {"POINT": "Point", "MULTILINESTRING": "MultiLineString", "MULTIPOLYGON": "MultiPolygon"}

#: The parts a mixed-geometry layer is published as: id suffix, ST_Dimension, GeoJSON type served, zh/en titles.
PARTS: tuple[tuple[str, int, str, str, str], ...] = (
    ("points", 0, "MultiPoint", "点", "points"),
    ("lines", 1, "MultiLineString", "线", "lines"),
    ("polygons", 2, "MultiPolygon", "面", "polygons"),
)


@dataclass(frozen=True)
class Collection:
    """An OGC API collection: a layer, or the part of a mixed-geometry layer with one geometry dimension.

    `dimension` None serves the whole layer; 0/1/2 only its points/lines/polygons, promoted to Multi* so that every
    feature of the collection has the one `geometry_type` a desktop GIS layer holds. `listed` is False for the
    whole of a mixed layer: it stays addressable for API clients that handle mixed geometries, but is not offered
    to desktop clients in /collections.
    """

    id: str
    layer: Layer
    geometry_type: str
    dimension: int | None = None
    listed: bool = True
    title_suffix: tuple[str, str] = ("", "")

    @property
    def title(self) -> str:
        zh, en = self.title_suffix
        return f"{self.layer.label_zh}{zh} {self.layer.label_en}{(' (' + en + ')') if en else ''}"

    @property
    def editable(self) -> bool:
        return self.layer.editable


def _collections() -> dict[str, Collection]:
    out: dict[str, Collection] = {}
    for name, layer in LAYERS.items():
        if layer.geometry != "GEOMETRY":
            out[name] = Collection(id=name, layer=layer, geometry_type=_KIND_TYPES[layer.geometry])
            continue
        out[name] = Collection(id=name, layer=layer, geometry_type="Geometry", listed=False)
        for suffix, dim, gtype, zh, en in (p for p in PARTS if p[1] in layer.dimensions):
            out[f"{name}_{suffix}"] = Collection(id=f"{name}_{suffix}", layer=layer, geometry_type=gtype,
                                                 dimension=dim, title_suffix=(f"({zh})", en))
    return out


COLLECTIONS: dict[str, Collection] = _collections()
#: The collections /collections lists: every single-geometry layer and the parts of the mixed ones.
LISTED: tuple[Collection, ...] = tuple(c for c in COLLECTIONS.values() if c.listed)


def geometry_part_sql(collection: Collection, *, alias: str = "t") -> str | None:
    """The filter keeping a part's geometries (None for a whole layer)."""
    if collection.dimension is None:
        return None
    return f"ST_Dimension({alias}.geom) = {collection.dimension}"
