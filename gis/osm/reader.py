"""Streaming read of an OSM extract: the tagged nodes, ways and areas firelane derives layers from, as WKB."""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import osmium
import osmium.filter
import osmium.geom
import osmium.osm
from tqdm import tqdm

from gis.osm import tags as T

#: Node-location index types that live in a file (the index spills to disk; memory stays bounded on city extracts).
FILE_INDEXES = ("sparse_file_array", "dense_file_array")
#: Default node-location index: a sorted (id, location) array in a temporary file. Its size is 16 bytes per node
#: of the extract, it needs no memory beyond the pages the OS caches, and unlike dense_file_array it does not
#: grow with the largest node id in OSM (~12 billion).
DEFAULT_NODE_INDEX = "sparse_file_array"
#: Keys an object must have to reach Python at all (everything else is skipped inside libosmium).
WANTED_KEYS = ("building", "landuse", "highway", "emergency", "barrier", "entrance", "amenity")
#: Highway ways that become roads wherever they lie (their loss at the extract's edge is reported per way).
_ROAD_HIGHWAYS = T.CITY_HIGHWAYS | T.LANE_HIGHWAYS
#: An object's tags: libosmium's TagList view while streaming, a dict once kept.
Tags = Mapping[str, str] | osmium.osm.TagList


@dataclass
class RawOsm:
    """What the streaming pass keeps: small tag dicts and WKB geometries of the objects that matter."""

    #: (ref, osm version, tags, lon, lat) of hydrants, gates/barriers/entrances and parking nodes
    nodes: list[tuple[str, int, dict[str, str], float, float]] = field(default_factory=list)
    #: (ref, osm version, tags, WKB) of highway and barrier ways
    lines: list[tuple[str, int, dict[str, str], bytes]] = field(default_factory=list)
    #: (ref, osm version, tags, WKB) of building / landuse=residential / amenity=parking areas
    areas: list[tuple[str, int, dict[str, str], bytes]] = field(default_factory=list)
    #: (layer, ref, reason) of objects that could not become geometries
    dropped: list[tuple[str, str, str]] = field(default_factory=list)
    #: the file header's bounding box (minx, miny, maxx, maxy), when it has one
    header_bounds: tuple[float, float, float, float] | None = None
    #: objects handed to Python (after the key filter)
    objects_read: int = 0
    #: footways and barrier ways with nodes missing from the extract (only used inside compounds / on lanes,
    #: which cannot be told without their geometry): counted, not listed
    ignored_incomplete: int = 0


def area_layers(tags: Tags) -> tuple[str, ...]:
    """The firelane layers an OSM area with these tags feeds (compounds, buildings, parking), possibly none."""
    out = []
    if tags.get("landuse") == "residential":
        out.append("compounds")
    building = tags.get("building")
    if building is not None and building != "no":
        out.append("buildings")
    elif tags.get("amenity") == "parking" and tags.get("parking") not in T.OFF_GROUND_PARKING:
        out.append("parking")
    return tuple(out)


def _node_wanted(tags: Tags) -> bool:
    barrier = tags.get("barrier")
    return (
        tags.get("emergency") == "fire_hydrant"
        or barrier in T.ENTRANCE_BARRIERS
        or barrier in T.OBSTRUCTION_BARRIERS
        or "entrance" in tags
        or (tags.get("amenity") == "parking" and tags.get("parking") not in T.OFF_GROUND_PARKING
            and "building" not in tags)
    )


def _line_wanted(tags: Tags) -> bool:
    highway = tags.get("highway")
    return (
        highway in T.CITY_HIGHWAYS or highway in T.LANE_HIGHWAYS or highway in T.WALKWAY_HIGHWAYS
        or tags.get("barrier") in T.OBSTRUCTION_LINE_BARRIERS
    )


def _index_spec(node_index: str, workdir: str) -> str:
    if node_index in FILE_INDEXES:
        return f"{node_index},{Path(workdir) / 'node-locations.idx'}"
    return node_index


def _header_bounds(processor: osmium.FileProcessor) -> tuple[float, float, float, float] | None:
    box = processor.header.box()
    if not box.valid():
        return None
    return (box.bottom_left.lon, box.bottom_left.lat, box.top_right.lon, box.top_right.lat)


def read_osm(path: str | Path, *, node_index: str = DEFAULT_NODE_INDEX, progress: bool = False) -> RawOsm:
    """Stream an .osm.pbf / .osm / .osm.bz2 file once (plus libosmium's relation pre-pass for multipolygons).

    Node locations go to `node_index` (default: a sparse array in a temporary file, removed afterwards); only
    objects with one of :data:`WANTED_KEYS` reach Python, and of those only the ones that feed a layer are kept,
    as small tag dicts and WKB. Ways with nodes missing from the extract, unclosed area ways and multipolygons
    that libosmium cannot assemble are listed in ``dropped`` instead of failing the read.
    """
    raw = RawOsm()
    factory = osmium.geom.WKBFactory()
    expected: dict[str, tuple[str, ...]] = {}
    assembled: set[str] = set()
    with tempfile.TemporaryDirectory(prefix="firelane-osm-") as workdir:
        processor = (
            osmium.FileProcessor(str(path))
            .with_locations(_index_spec(node_index, workdir))
            .with_areas(osmium.filter.KeyFilter("building", "landuse", "amenity"))
            .with_filter(osmium.filter.KeyFilter(*WANTED_KEYS))
        )
        raw.header_bounds = _header_bounds(processor)
        bar = tqdm(desc="读取 reading OSM", unit=" objects", disable=not progress, mininterval=0.5)
        count = 0
        for obj in processor:
            count += 1
            if count % 2000 == 0:
                bar.update(2000)
            tags = obj.tags  # a TagList view; copied to a dict only for the objects kept
            if isinstance(obj, osmium.osm.Area):
                layers = area_layers(tags)
                if not layers:
                    continue
                ref = f"osm:{'way' if obj.from_way() else 'relation'}/{obj.orig_id()}"
                try:
                    wkb = factory.create_multipolygon(obj)
                except (osmium.InvalidLocationError, RuntimeError) as exc:
                    for layer in layers:
                        raw.dropped.append((layer, ref, f"面无法构建 area not built ({exc})"))
                    assembled.add(ref)
                    continue
                raw.areas.append((ref, obj.version, dict(tags), bytes.fromhex(wkb)))
                assembled.add(ref)
            elif isinstance(obj, osmium.osm.Node):
                if _node_wanted(tags) and obj.location.valid():
                    raw.nodes.append((f"osm:node/{obj.id}", obj.version, dict(tags), obj.location.lon,
                                      obj.location.lat))
            elif isinstance(obj, osmium.osm.Way):
                ref = f"osm:way/{obj.id}"
                layers = area_layers(tags)
                if layers:
                    if obj.is_closed():
                        expected[ref] = layers
                    else:
                        for layer in layers:
                            raw.dropped.append((layer, ref, "路径未闭合 way is not closed (not an area)"))
                if _line_wanted(tags):
                    reason = None
                    try:
                        # use_nodes=ALL fails on any missing node; the default (UNIQUE) would silently skip
                        # missing nodes at the start of a way
                        factory.create_linestring(obj, osmium.geom.ALL)
                        wkb = factory.create_linestring(obj)
                        raw.lines.append((ref, obj.version, dict(tags), bytes.fromhex(wkb)))
                    except osmium.InvalidLocationError:
                        reason = "节点不在文件中 nodes missing from the extract"
                    except RuntimeError as exc:
                        reason = f"线无法构建 line not built ({exc})"
                    if reason and tags.get("highway") in _ROAD_HIGHWAYS:
                        raw.dropped.append(("roads", ref, reason))
                    elif reason:
                        raw.ignored_incomplete += 1
            elif isinstance(obj, osmium.osm.Relation):
                if tags.get("type") == "multipolygon":
                    layers = area_layers(tags)
                    if layers:
                        expected[f"osm:relation/{obj.id}"] = layers
        bar.update(count % 2000)
        bar.close()
        raw.objects_read = count
    for ref, layers in expected.items():
        if ref not in assembled:
            reason = ("多边形无法组装 multipolygon could not be assembled (members or nodes missing from the "
                      "extract, or broken rings)")
            raw.dropped.extend((layer, ref, reason) for layer in layers)
    return raw
