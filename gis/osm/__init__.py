"""OpenStreetMap import: derive firelane layers from an .osm.pbf/.osm extract and write them all or nothing.

Streams the file with pyosmium (node locations in a disk-backed index), derives compounds, buildings, fire
lanes, roads, hydrants, entrances, obstructions and parking (rules and defaults in gis.osm.tags), validates
every geometry (invalid OSM geometries are dropped and reported, never written), and writes in one
transaction; a re-import updates only features nobody edited since (gis.osm.sync). Every feature has
``source`` = "osm" and ``ref`` = its OSM id; © OpenStreetMap contributors (ODbL) must be shown with them.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import shapely
from sqlalchemy import Connection, Engine, text
from tqdm import tqdm

from gis.coords import as_bounds, extent_problems
from gis.db import transaction
from gis.osm.derive import ATTRIBUTION, OSM_LAYERS, SOURCE, DerivedLayers, derive_layers
from gis.osm.reader import DEFAULT_NODE_INDEX, RawOsm, read_osm
from gis.osm.report import LayerReport, OsmImportReport
from gis.osm.sync import LayerSync, sync_layer

__all__ = [
    "ATTRIBUTION", "DEFAULT_NODE_INDEX", "OSM_LAYERS", "SOURCE", "DerivedLayers", "LayerReport", "LayerSync",
    "OsmImportError", "OsmImportReport", "RawOsm", "derive_layers", "derive_osm", "import_osm", "read_osm",
]

#: Serialises OSM imports (two at once would both insert the same new refs).
_LOCK_KEY = "firelane.osm_import"


class OsmImportError(ValueError):
    """An OSM extract that cannot be imported here (messages are "中文 English"); nothing was written."""


def derive_osm(path: str | Path, *, node_index: str = DEFAULT_NODE_INDEX, progress: bool = False) -> DerivedLayers:
    """Read an extract and derive the layers without touching the database (see :func:`derive_layers`)."""
    return derive_layers(read_osm(path, node_index=node_index, progress=progress))


def import_osm(
    path: str | Path,
    *,
    user: str | None = "osm-import",
    progress: bool = False,
    engine: Engine | None = None,
    node_index: str = DEFAULT_NODE_INDEX,
) -> OsmImportReport:
    """Derive the firelane layers from an OpenStreetMap extract and write them in one transaction.

    Parameters
    ----------
    path : str or Path
        An .osm.pbf, .osm or .osm.bz2 file (WGS84, as OSM always is); stored in EPSG:4490.
    user : str, optional
        Recorded as updated_by and in the audit log.
    progress : bool
        Show tqdm progress bars (objects read, layers written) on stderr.
    engine : sqlalchemy.Engine, optional
        Default: gis.db.get_engine().
    node_index : str
        pyosmium node-location index; the default keeps it in a temporary file so memory stays bounded.

    Returns
    -------
    OsmImportReport
        Per layer: found, estimated, inserted/updated/unchanged, skipped (user-edited) and dropped features.

    Raises
    ------
    OsmImportError
        When the database already holds a district's streets and the extract lies entirely outside them.
        An extract outside China is fine otherwise: the extent comes from the file itself.
    """
    started = time.perf_counter()
    path = Path(path)
    derived = derive_osm(path, node_index=node_index, progress=progress)
    report = OsmImportReport(path=path, layers={}, bounds=derived.bounds, node_index=node_index,
                             objects_read=derived.objects_read)
    for name in OSM_LAYERS:
        frame = derived.frames[name]
        report.layers[name] = LayerReport(
            found=len(frame), estimated=derived.estimated.get(name, Counter()),
            estimated_features=int(frame["estimated"].sum()) if len(frame) else 0,
            dropped=[(ref, reason) for layer, ref, reason in derived.dropped if layer == name],
        )
    if derived.ignored_incomplete:
        report.notes.append(
            f"忽略 ignored: {derived.ignored_incomplete} 条不完整的步道/障碍线 footway or barrier ways with nodes "
            "missing from the extract (used only inside compounds / on lanes)")
    with transaction(user=user, engine=engine) as conn:
        conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": _LOCK_KEY})
        _check_extent(conn, derived, report)
        bar = tqdm(OSM_LAYERS, desc="写入 writing layers", unit=" layers", disable=not progress)
        for name in bar:
            bar.set_postfix_str(name)
            report.layers[name].sync = sync_layer(conn, name, derived.frames[name], user=user)
    report.seconds = time.perf_counter() - started
    return report


def _check_extent(conn: Connection, derived: DerivedLayers, report: OsmImportReport) -> None:
    """Refuse an extract wholly outside the district's streets (when there are streets); note partial overlap."""
    box = conn.execute(text(
        "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM (SELECT ST_Extent(geom) AS e FROM streets) s"
    )).one()
    if box[0] is None or derived.bounds is None:
        return
    streets = as_bounds(box)
    problems = extent_problems([shapely.box(*derived.bounds)], bounds=streets, field="bbox")
    if problems:
        raise OsmImportError(
            f"OSM 文件不在本区街道范围内 the extract lies outside the district's streets {streets}: "
            + problems[0][1].split(": ", 1)[-1] + "; 未写入任何数据 nothing written"
        )
    outside = sum(
        len(extent_problems(frame.geometry.values, bounds=streets)) for frame in derived.frames.values() if len(frame)
    )
    if outside:
        report.notes.append(f"注意 note: {outside} 个要素在街道范围外 features lie outside the district's streets "
                            "(imported, without street_code)")
