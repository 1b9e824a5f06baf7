"""The layer registry: every firelane layer, declared once in its own module, in dependency order."""

from gis.layers import (
    aerial_areas,
    buildings,
    compounds,
    ebike_sites,
    entrances,
    fire_lanes,
    hazards,
    hydrants,
    illegal_structures,
    obstructions,
    parking,
    roads,
    streets,
)
from gis.layers.base import COMMON_FIELDS, MANAGED_COLUMNS, STORAGE_SRID, Field, Layer

LAYERS: dict[str, Layer] = {m.LAYER.name: m.LAYER for m in (
    streets, compounds, buildings, fire_lanes, aerial_areas, hydrants, entrances, roads, obstructions, illegal_structures, parking, ebike_sites, hazards,
)}


class UnknownLayerError(KeyError):
    """A layer id that firelane does not have."""

    def __str__(self) -> str:
        return f"未知图层 unknown layer {self.args[0]!r}; layers: {', '.join(LAYERS)}"


def get_layer(name: str) -> Layer:
    """The layer declared under `name` (collection id), or UnknownLayerError."""
    try:
        return LAYERS[name]
    except KeyError:
        raise UnknownLayerError(name) from None


__all__ = ["COMMON_FIELDS", "LAYERS", "MANAGED_COLUMNS", "STORAGE_SRID", "Field", "Layer", "UnknownLayerError", "get_layer"]
