"""Reading layers from PostGIS into GeoDataFrames and bulk-writing validated frames with COPY."""

from __future__ import annotations

import binascii
import datetime as dt
import io
import json
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from itertools import chain
from queue import Queue
from threading import Thread

import geopandas as gpd
import numpy as np
import pandas as pd
import psycopg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import shapely
import sqlalchemy as sa
import sqlalchemy.exc
from sqlalchemy import Connection, Engine, text
from sqlalchemy import types as sa_types

from gis import scope
from gis.db import get_engine, pyformat, raw_connection
from gis.layers import COMMON_FIELDS, STORAGE_SRID, Layer, get_layer
from gis.placement import PlacementError
from gis.schema import TABLES


def layer_columns(layer: Layer) -> list[str]:
    """The user-data columns of a layer's table (common fields it has + its own), in table order."""
    table = TABLES[layer.name]
    names = [f.name for f in COMMON_FIELDS] + [f.name for f in layer.fields]
    return [n for n in names if n in table.c]


def read_layer(
    layer: str | Layer,
    *,
    engine: Engine | Connection | None = None,
    street: str | None = None,
    compound: str | None = None,
    bbox: tuple[float, float, float, float] | None = None,
    where: str | None = None,
    params: dict | None = None,
    columns: Sequence[str] | None = None,
) -> gpd.GeoDataFrame:
    """A layer as a GeoDataFrame in the storage CRS (EPSG:4490), indexed by id: THE layer reader (exports, the API,
    the rule checks), streamed with COPY ... TO STDOUT as CSV and parsed by pandas' C reader and shapely.

    Rows are those of the running code's scope (gis.scope: the application twin of row-level security). `street`
    selects a street's rows, `compound` a compound's (by its ref), `bbox` (lon/lat) by intersection, `where`
    is an SQL condition on the table aliased `t` (binds from `params`); `columns` (default: every column but the
    geometry) in the order given. Values come back typed as the table declares them: numbers as numbers
    (integers with gaps as floats), booleans as True/False/None, text as str/None, dates as datetime.date,
    timestamps as UTC timestamps, JSON as Python objects.
    """
    layer = get_layer(layer) if isinstance(layer, str) else layer
    table = TABLES[layer.name]
    cols = list(columns) if columns is not None else [
        c.name for c in table.c if c.name != "geom"
    ]
    clauses, args = [], dict(params or {})
    # the jurisdiction of the running code (gis.scope), the twin of the row-level policy: never left to callers
    for condition, binds in (scope.current_filter(layer.name),
                             scope.streets_filter(layer.name, [street]) if street is not None else (None, {})):
        if condition:
            clauses.append(condition)
            args.update(binds)
    if compound is not None:
        if layer.name == "compounds":
            clauses.append("t.ref = :compound")
        elif "compound_id" in table.c:
            clauses.append("t.compound_id IN (SELECT id FROM compounds WHERE ref = :compound)")
        else:
            clauses.append("ST_Intersects(t.geom, (SELECT ST_Union(geom) FROM compounds WHERE ref = :compound))")
        args["compound"] = compound
    if bbox is not None:
        clauses.append("t.geom && ST_MakeEnvelope(:x0, :y0, :x1, :y1, 4490)")
        args.update(x0=bbox[0], y0=bbox[1], x1=bbox[2], y1=bbox[3])
    if where:
        clauses.append(f"({where})")
    # rows in id order: put in order here when the read carries the integer id (usually they come that way: a
    # table's scans return bulk-loaded rows in id order), else by the server, which sorts the formatted rows
    sort_here = "id" in cols and isinstance(table.c["id"].type, sa_types.Integer)
    select = (
        f"SELECT {', '.join('t.' + c for c in cols)}, encode(ST_AsBinary(t.geom), 'hex') AS geom FROM {layer.name} t"
        + (" WHERE " + " AND ".join(clauses) if clauses else "")
        + ("" if sort_here else " ORDER BY t.id")
    )
    bind = engine if engine is not None else get_engine()
    with (bind.connect() if isinstance(bind, Engine) else nullcontext(bind)) as conn:
        raw = raw_connection(conn)
        buf = io.BytesIO()
        # CSV's own NULL (an unquoted empty field; an empty string is written quoted), told apart by arrow's reader
        statement = f"COPY ({pyformat(select)}) TO STDOUT WITH (FORMAT csv, HEADER)"
        with raw.cursor() as cur, cur.copy(statement, args or None) as cp:
            for block in cp:
                buf.write(block)
    buf.seek(0)
    parsed, typed = _parse_csv(buf, table, cols)
    if sort_here:
        parsed = _by_id(parsed)
    frame = _typed(parsed.drop_columns(["geom"]).to_pandas(), table, [c for c in cols if c not in typed])
    geoms = _from_hex_wkb(parsed.column("geom"))
    gdf = gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries(geoms, crs=STORAGE_SRID), crs=STORAGE_SRID)
    if "id" in gdf.columns:
        gdf = gdf.set_index("id", drop=False)
        gdf.index.name = None
    return gdf


#: Planner settings of an indexed read (`read_layers(indexed=True)`), for its transaction only. The planner prices
#: `geom && ANY(boxes)` evaluated row by row in a sequential scan far below its cost (a GEOS-free but per-box
#: comparison for every row of the table) and so scans whole tables where a BitmapOr of the box and ref indexes reads
#: only the rows wanted; parallel workers would only add CPU on cores the checking processes already use.
INDEXED_READ_SETTINGS: dict[str, str] = {
    "enable_seqscan": "off", "enable_indexscan": "off", "max_parallel_workers_per_gather": "0",
}


def read_layers(engine: Engine, layers: Iterable[str], *, where: dict[str, str | None] | None = None,
                params: dict | None = None, columns: dict[str, Sequence[str]] | None = None,
                indexed: bool = False) -> dict[str, gpd.GeoDataFrame]:
    """Several layers over one connection (`where` and `columns` per layer name, shared `params`).

    `indexed`: every layer's `where` is a condition its indexes answer (boxes on the geometry index, refs on a
    btree) that selects a part of the table: the reads are planned as bitmap index scans without parallel
    workers (`INDEXED_READ_SETTINGS`), the same rows in the same order.

    Sequential on purpose: parsing holds the GIL, and measured with threads over several connections the read
    was slower, not faster.
    """
    where, columns = where or {}, columns or {}
    with engine.connect() as conn:
        if indexed:  # transaction-local (is_local): the pooled connection keeps its defaults
            conn.execute(text("SELECT " + ", ".join(f"set_config('{k}', '{v}', true)"
                                                    for k, v in INDEXED_READ_SETTINGS.items())))
        return {name: read_layer(name, engine=conn, where=where.get(name), params=params,
                                 columns=columns.get(name)) for name in layers}


def _arrow_type(kind: sa_types.TypeEngine) -> pa.DataType | None:
    """The arrow type the CSV reader parses a column of this SQL type to (None: text, converted by `_typed`)."""
    if isinstance(kind, sa_types.Boolean):
        return pa.bool_()
    if isinstance(kind, sa_types.Integer):
        return pa.int64()
    if isinstance(kind, sa_types.Float | sa_types.Numeric):
        return pa.float64()
    return None


def _parse_csv(buf: io.BytesIO, table: sa.Table, cols: list[str]) -> tuple[pa.Table, set[str]]:
    """COPY's CSV as an arrow table, and the columns it already typed: booleans (t/f), integers and floats are
    parsed by arrow's reader in C (integers with gaps become floats, booleans with gaps Python objects in pandas, as
    `_typed` makes them); text, JSON and dates stay strings. A value arrow's parser does not take as its column's
    type makes the whole read fall back to strings and `_typed` (pandas' parser)."""
    typed = {c: t for c in cols if (t := _arrow_type(table.c[c].type)) is not None}
    # one block for the whole stream: a single geometry's hex may be megabytes long
    block = pa_csv.ReadOptions(block_size=max(buf.getbuffer().nbytes + 1, 1 << 20), use_threads=False)

    def read(types: dict[str, pa.DataType]) -> pa.Table:
        # CSV's own NULL (an unquoted empty field; an empty string is written quoted), told apart by arrow's reader
        options = pa_csv.ConvertOptions(column_types={c: types.get(c, pa.string()) for c in [*cols, "geom"]},
                                        null_values=[""], true_values=["t"], false_values=["f"],
                                        strings_can_be_null=True, quoted_strings_can_be_null=False)
        buf.seek(0)
        return pa_csv.read_csv(buf, read_options=block, convert_options=options)

    try:
        return read(typed), set(typed)
    except pa.ArrowInvalid:
        if not typed:
            raise
        return read({}), set()


def _by_id(parsed: pa.Table) -> pa.Table:
    """The rows of a read in order of their (unique, integer) id."""
    ids = parsed.column("id")
    if not pa.types.is_integer(ids.type):  # the string fallback of `_parse_csv`
        ids = pc.cast(ids, pa.int64())
    order = ids.to_numpy()
    if len(order) < 2 or bool((order[1:] > order[:-1]).all()):
        return parsed
    return parsed.take(np.argsort(order, kind="stable"))


def _typed(frame: pd.DataFrame, table: sa.Table, cols: list[str]) -> pd.DataFrame:
    """Column types as the table declares them (see `read_layer`), for columns read as strings."""
    for name in cols:
        kind = table.c[name].type
        s = frame[name]
        null = s.isna().to_numpy()
        if isinstance(kind, sa_types.Boolean):
            flags = (s.to_numpy(dtype=object) == "t")
            if null.any():
                flags = flags.astype(object)  # Python True/False, None in the gaps
                flags[null] = None
            frame[name] = pd.Series(flags, index=frame.index)
        elif isinstance(kind, sa_types.Integer):
            f = pd.to_numeric(s, errors="coerce")
            frame[name] = f.astype(float) if f.isna().any() else f.astype(np.int64)
        elif isinstance(kind, sa_types.Float | sa_types.Numeric):
            frame[name] = pd.to_numeric(s, errors="coerce").astype(float)
        elif isinstance(kind, sa_types.JSON):
            v = s.to_numpy(dtype=object)
            out = np.full(len(v), None, dtype=object)
            # fromiter: equal-length lists (other_refs ["IS-1"], ["H1"]) must stay list objects, not a 2-D block
            out[~null] = np.fromiter((json.loads(x) for x in v[~null]), dtype=object, count=int((~null).sum()))
            frame[name] = pd.Series(out, index=frame.index, dtype=object)
        elif isinstance(kind, sa_types.DateTime):
            frame[name] = pd.to_datetime(s, utc=True, format="ISO8601")
        elif isinstance(kind, sa_types.Date):
            d = pd.to_datetime(s, format="%Y-%m-%d", errors="coerce")
            out = np.full(len(s), None, dtype=object)
            out[~null] = d[~null].dt.date.to_numpy(dtype=object)
            frame[name] = pd.Series(out, index=frame.index, dtype=object)
        elif null.any():
            frame[name] = s.astype(object).where(~null, None)
    return frame


def _from_hex_wkb(hexes: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """Geometries from an arrow string column of hex WKB: one hex decode of each chunk's character buffer (no
    Python string per row), shapely's binary WKB reader on the bytes; missing values stay None."""
    chunks = hexes.chunks if isinstance(hexes, pa.ChunkedArray) else [hexes]
    if not chunks:
        return np.empty(0, dtype=object)
    return np.concatenate([_hex_chunk(c) for c in chunks])


def _hex_chunk(arr: pa.Array) -> np.ndarray:
    n = len(arr)
    if not n or arr.null_count == n:
        return np.full(n, None, dtype=object)
    offsets = np.frombuffer(arr.buffers()[1], dtype=np.int32, count=arr.offset + n + 1)[arr.offset:]
    raw = binascii.a2b_hex(memoryview(arr.buffers()[2])[int(offsets[0]):int(offsets[-1])])
    half = ((offsets - offsets[0]) // 2).astype(np.int32)
    valid = arr.is_valid().buffers()[1] if arr.null_count else None
    wkb = pa.Array.from_buffers(pa.binary(), n, [valid, pa.py_buffer(half), pa.py_buffer(raw)],
                                null_count=arr.null_count)
    return np.asarray(shapely.from_wkb(wkb.to_numpy(zero_copy_only=False)), dtype=object)


@dataclass
class WriteResult:
    inserted: int
    deleted: int


#: Rows per COPY statement: each chunk is linked and encoded while the ones before it are written.
_COPY_CHUNK_ROWS = 8_192
#: Frames of at least this many rows written into an empty layer table take the bulk path (`_bulk_indexes`).
BULK_MIN_ROWS = 5_000
_COPY_NULL = "\\N"
_JSON = json.JSONEncoder(ensure_ascii=False, default=str, check_circular=False)
#: Characters that COPY text format escapes, and their escapes (backslash first).
_SPECIAL = r"[\\\t\n\r]"
_ESCAPES = (("\\", "\\\\"), ("\t", "\\t"), ("\n", "\\n"), ("\r", "\\r"))


def _copy_escape(text: str) -> str:
    """COPY text-format escaping: backslash, tab, newline and carriage return."""
    if "\\" in text:
        text = text.replace("\\", "\\\\")
    if "\t" in text or "\n" in text or "\r" in text:
        text = text.replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    return text


def _copy_scalar(value: object, as_json: bool = False) -> str:
    """One value as COPY text (NULL for None/NaN/NaT/NA), formatted as psycopg would dump it."""
    if value is None or value is pd.NaT or value is pd.NA:
        return _COPY_NULL
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and np.isnan(value):
        return _COPY_NULL
    if as_json:
        return _copy_escape(_JSON.encode(value))
    if isinstance(value, str):
        return _copy_escape(value)
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    return _copy_escape(str(value))


def _copy_column(series: pd.Series, *, as_json: bool = False) -> np.ndarray:
    """A frame column as an object array of COPY text cells (vectorised for numeric dtypes)."""
    dtype = series.dtype
    if not as_json and pd.api.types.is_float_dtype(dtype) and isinstance(dtype, np.dtype):
        v = series.to_numpy(dtype=float)
        out = np.array([repr(x) for x in v.tolist()], dtype=object) if len(v) else np.array([], dtype=object)
        out[np.isnan(v)] = _COPY_NULL
        return out
    if not as_json and pd.api.types.is_integer_dtype(dtype) and isinstance(dtype, np.dtype):
        return series.to_numpy().astype(str).astype(object)
    if not as_json and pd.api.types.is_bool_dtype(dtype) and isinstance(dtype, np.dtype):
        return np.where(series.to_numpy(), "t", "f").astype(object)
    kind = "json" if as_json else pd.api.types.infer_dtype(series, skipna=True)
    if kind in ("string", "empty"):  # text: escape only the cells that need it
        values = series.astype(object).to_numpy(dtype=object).copy()
        null = series.isna().to_numpy(dtype=bool)
        values[null] = ""
        special = np.fromiter(("\\" in v or "\t" in v or "\n" in v or "\r" in v for v in values.tolist()),
                              dtype=bool, count=len(values))
        for i in np.flatnonzero(special).tolist():
            values[i] = _copy_escape(values[i])
        values[null] = _COPY_NULL
        return values
    if kind == "boolean":  # True/False with gaps (object dtype)
        values = series.astype(object).to_numpy(dtype=object)
        null = pd.isna(values)
        truth = np.where(null, False, values).astype(bool)
        return np.where(null, _COPY_NULL, np.where(truth, "t", "f")).astype(object)
    return np.array([_copy_scalar(v, as_json) for v in series.astype(object).tolist()], dtype=object)


def _copy_extra(extras: list | None, n: int) -> np.ndarray:
    if extras is None:
        return np.full(n, "{}", dtype=object)
    return np.array([_copy_escape(_JSON.encode(e)) if isinstance(e, dict) and e else "{}" for e in extras],
                    dtype=object)


def _escape_arrow(cells: pa.Array) -> pa.Array:
    """COPY text escaping of a whole arrow string array (untouched when no cell needs it)."""
    if not pc.any(pc.match_substring_regex(cells, _SPECIAL)).as_py():
        return cells
    for char, escaped in _ESCAPES:
        cells = pc.replace_substring(cells, char, escaped)
    return cells


def _copy_cells(series: pd.Series, *, as_json: bool = False) -> pa.Array:
    """A frame column as an arrow string array of COPY text cells (null = NULL), converted in C where it can.

    Text, integers, floats (shortest round-trip repr), booleans and dates go through arrow; anything else
    (JSON, timestamps, mixed objects) through `_copy_column`, cell by cell.
    """
    if not as_json:
        try:
            arr = pa.array(series, from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, OverflowError):
            arr = None
        if arr is not None:
            kind = arr.type
            if pa.types.is_string(kind) or pa.types.is_large_string(kind):
                return _escape_arrow(arr.cast(pa.string()))
            if pa.types.is_boolean(kind):
                return pc.if_else(arr, "t", "f")
            if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_date32(kind):
                return pc.cast(arr, pa.string())
            if pa.types.is_null(kind):
                return pa.nulls(len(arr), pa.string())
    return pa.array(_copy_column(series, as_json=as_json).tolist(), type=pa.string())


def _copy_lines(cells: list[pa.Array | pa.Scalar]) -> memoryview:
    """COPY text rows (tab-separated cells, NULL as \\N, one line per row) as one buffer, joined in arrow."""
    rows = pc.binary_join_element_wise(*cells, "\t", null_handling="replace", null_replacement=_COPY_NULL)
    lines = pc.binary_join_element_wise(rows, "\n", "")
    if isinstance(lines, pa.ChunkedArray):
        lines = lines.combine_chunks()
    offsets = np.frombuffer(lines.buffers()[1], dtype=np.int32, count=len(lines) + 1, offset=lines.offset * 4)
    return memoryview(lines.buffers()[2])[int(offsets[0]):int(offsets[-1])]


#: Upper-case hex digits of every byte value, as little-endian uint16 pairs (index by byte, view as text).
_HEX = np.frombuffer(b"".join(f"{i:02X}".encode() for i in range(256)), dtype=np.uint16)


def _hex_wkb(geoms: np.ndarray) -> pa.Array:
    """Geometries as an arrow string array of hex WKB (COPY text for a geometry column), hexed in numpy.

    No SRID is written: the layer's geometry column (typmod SRID 4490) stamps it on every value.
    """
    wkb = pa.array(shapely.to_wkb(geoms), type=pa.binary())
    offsets = np.frombuffer(wkb.buffers()[1], dtype=np.int32, count=len(wkb) + 1, offset=wkb.offset * 4)
    data = np.frombuffer(wkb.buffers()[2], dtype=np.uint8)[offsets[0]:offsets[-1]] if len(wkb) else np.empty(0, np.uint8)
    hex_offsets = ((offsets - offsets[0]) * 2).astype(np.int32)
    validity = wkb.buffers()[0] if wkb.null_count else None
    return pa.StringArray.from_buffers(len(wkb), pa.py_buffer(hex_offsets), pa.py_buffer(_HEX[data]), validity,
                                       wkb.null_count, wkb.offset)


def _copy_chunks(raw: psycopg.Connection, statement: str, chunks: Iterator[memoryview]) -> None:
    """Run `statement` (a COPY FROM STDIN) once per chunk on a writer thread while the caller encodes the next.

    One COPY per chunk lets PostgreSQL parse, check (constraints, foreign keys) and audit chunk k while Python
    prepares chunk k + 1: two cores at work instead of one waiting for the other. The connection is used only
    by the writer thread until it has finished; the first error stops the stream and is raised here.
    """
    queue: Queue[memoryview | None] = Queue(maxsize=4)
    errors: list[BaseException] = []

    def write() -> None:
        try:
            while (buffer := queue.get()) is not None:
                with raw.cursor() as cur, cur.copy(statement) as copy:
                    copy.write(buffer)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread below
            errors.append(exc)
            while queue.get() is not None:  # keep draining: the producer must never block on a dead writer
                pass

    writer = Thread(target=write, name="firelane-copy", daemon=True)
    writer.start()
    try:
        for buffer in chunks:
            if errors:
                break
            queue.put(buffer)
    finally:
        queue.put(None)
        writer.join()
    if errors:
        raise errors[0]


def _bulk_indexes(conn: Connection, table: str) -> list[tuple[str, str]]:
    """(name, CREATE statement) of the table's plain indexes: not unique, not backing a constraint.

    On the bulk path these are dropped inside the write's transaction and rebuilt after the COPY, as ogr2ogr
    builds its index after loading: one sorted build instead of a GiST/btree insertion per row. Unique and
    primary-key indexes stay, so every constraint is checked exactly as on the row-by-row path.
    """
    return [(r[0], r[1]) for r in conn.execute(text(
        "SELECT c.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
        "WHERE i.indrelid = CAST(:t AS regclass) AND NOT i.indisunique AND NOT i.indisprimary "
        "AND pg_has_role(c.relowner, 'USAGE') "  # only the schema owner may drop and rebuild them
        "AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid) ORDER BY c.relname"),
        {"t": table}).all()]


def _defers_checks(conn: Connection, table: str, *, disabled: set[str]) -> bool:
    """Whether an insert into `table` queues deferred trigger events (a deferred constraint trigger that stays
    enabled during the COPY, such as compounds' overlap check): while they are pending, CREATE INDEX on the table
    fails, so the bulk path keeps its indexes (the checks at commit probe them)."""
    names = conn.execute(text(
        "SELECT tgname FROM pg_trigger WHERE tgrelid = CAST(:t AS regclass) AND tgenabled <> 'D' "
        "AND tgdeferrable AND tginitdeferred AND (tgtype & 4) <> 0"), {"t": table}).scalars()  # 4: on INSERT
    return bool(set(names) - disabled)


@contextmanager
def bulk_load(conn: Connection, raw: psycopg.Connection, table: str) -> Iterator[None]:
    """The bulk path around the COPYs of a load into an empty, locked `table` (inside the caller's transaction).

    Before: drops the plain indexes (`_bulk_indexes`; none where deferred checks would block their rebuild,
    `_defers_checks`) and disables the set-checkable foreign-key triggers
    (`_ForeignKey`). After the body: checks each such key once over all rows, re-enables its trigger and
    rebuilds the indexes (sorted builds, GiST included). When the body raises nothing runs after it: the caller
    rolls back, which restores indexes and triggers as well.
    """
    rebuild, foreign_keys = _bulk_indexes(conn, table), _ForeignKey.set_checkable(conn, table)
    if _defers_checks(conn, table, disabled={fk.trigger for fk in foreign_keys}):
        rebuild = []  # PostgreSQL builds no index on a table with pending trigger events: the indexes stay
    for name, _ in rebuild:
        raw.execute(f'DROP INDEX "{name}"')
    for fk in foreign_keys:
        raw.execute(f'ALTER TABLE {table} DISABLE TRIGGER "{fk.trigger}"')
    yield
    for fk in foreign_keys:
        fk.check(raw, table)
        raw.execute(f'ALTER TABLE {table} ENABLE TRIGGER "{fk.trigger}"')
    for _, create in rebuild:
        raw.execute(create)


def _empty_and_locked(conn: Connection, table: str, *, replace: bool) -> bool:
    """Whether `table` is (after a replace's DELETE: will be) empty, holding an ACCESS EXCLUSIVE lock if so.

    An append first looks without a lock, so a write into a populated table never blocks its readers; the lock
    is taken before the (re)check, so no concurrent writer can slip rows in until this transaction ends.
    """
    if not replace and conn.execute(text(f"SELECT EXISTS (SELECT 1 FROM {table})")).scalar_one():
        return False
    conn.execute(text(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE"))
    return replace or not conn.execute(text(f"SELECT EXISTS (SELECT 1 FROM {table})")).scalar_one()


def write_frame(
    conn: Connection,
    layer: str | Layer,
    frame: gpd.GeoDataFrame,
    *,
    mode: str = "append",
    user: str | None = None,
) -> WriteResult:
    """Bulk-write a validated frame (storage CRS, layer columns, optional `extra` dicts) inside `conn`'s transaction.

    compound_id / compound_ref / street_code are derived in memory where the frame does not give them
    (`Linker`), single parts are promoted to the layer's Multi type, and the rows are COPYed straight into the
    layer table (its statement-level audit trigger logs each batch). The frame goes out in chunks, one COPY each,
    from a writer thread while this thread links and encodes the next chunk in arrow, so PostgreSQL parses,
    checks and audits while Python encodes. `mode="replace"` deletes the layer's rows first.

    The write is atomic inside the caller's transaction (a savepoint): on any error nothing of it remains,
    indexes and triggers included, and the error is raised (database errors as SQLAlchemy's, e.g. IntegrityError).

    `mode="replace"` locks the table in EXCLUSIVE mode: writers wait, readers keep reading the old rows until
    commit. Bulk path: a frame of at least `BULK_MIN_ROWS` rows appended to an empty table (a first load)
    locks the table (ACCESS EXCLUSIVE, until commit), drops its plain indexes and rebuilds them after the COPY
    (sorted builds), and, where the session may (superuser), replaces the per-row foreign-key check by one
    set-based check that takes the same row locks (`_ForeignKey`). CHECK constraints, unique and primary keys
    and the audit and change triggers stay in force on both paths.
    """
    layer = get_layer(layer) if isinstance(layer, str) else layer
    chunks = (frame.iloc[start:start + _COPY_CHUNK_ROWS] for start in range(0, len(frame), _COPY_CHUNK_ROWS))
    return _atomic_write(conn, layer, chunks, rows=len(frame), whole=frame, mode=mode, user=user)


def write_frames(
    conn: Connection,
    layer: str | Layer,
    chunks: Iterable[gpd.GeoDataFrame],
    *,
    rows: int,
    mode: str = "append",
    user: str | None = None,
) -> WriteResult:
    """`write_frame` for a frame that arrives in chunks of `rows` rows in all (all with the same columns).

    A streamed import validates chunk k + 1 while chunk k is written: the iterator runs on this thread between
    COPYs. An exception it raises (say, problems found in a later chunk) aborts the write: nothing of it remains.
    Links come from every compound and street (the frame's extent is not known in advance).
    """
    layer = get_layer(layer) if isinstance(layer, str) else layer
    return _atomic_write(conn, layer, iter(chunks), rows=rows, whole=None, mode=mode, user=user)


def _atomic_write(conn: Connection, layer: Layer, chunks: Iterator[gpd.GeoDataFrame], *, rows: int,
                  whole: gpd.GeoDataFrame | None, mode: str, user: str | None) -> WriteResult:
    """`_write` inside a savepoint: on any error the savepoint is rolled back (rows, indexes, triggers)."""
    if mode not in ("append", "replace"):
        raise ValueError(f"mode must be 'append' or 'replace', not {mode!r}")
    if user:
        conn.execute(text("SELECT set_config('firelane.user', :u, true)"), {"u": user})
    raw = raw_connection(conn)
    raw.execute("SAVEPOINT firelane_write_frame")
    try:
        result = _write(conn, raw, layer, chunks, rows=rows, whole=whole, mode=mode, user=user)
    except BaseException:
        try:
            raw.execute("ROLLBACK TO SAVEPOINT firelane_write_frame")
        except psycopg.Error:  # a broken connection: the caller's transaction fails as a whole anyway
            pass
        raise
    raw.execute("RELEASE SAVEPOINT firelane_write_frame")
    return result


def _write(conn: Connection, raw: psycopg.Connection, layer: Layer, chunks: Iterator[gpd.GeoDataFrame], *,
           rows: int, whole: gpd.GeoDataFrame | None, mode: str, user: str | None) -> WriteResult:
    if mode == "replace":
        # EXCLUSIVE, not ACCESS EXCLUSIVE: other writers wait, readers go on seeing the old rows until commit (a
        # bulk replace used to hold ACCESS EXCLUSIVE through validation and COPY, blocking every read for seconds)
        conn.execute(text(f"LOCK TABLE {layer.name} IN EXCLUSIVE MODE"))
    bulk = rows >= BULK_MIN_ROWS and mode == "append" and _empty_and_locked(conn, layer.name, replace=False)
    deleted = conn.execute(text(f"DELETE FROM {layer.name}")).rowcount if mode == "replace" else 0
    first = next(chunks, None) if rows else None
    if first is None:
        return WriteResult(inserted=0, deleted=deleted)
    linker = Linker.load(conn, layer, whole)
    cols = [c for c in layer_columns(layer) if c in first.columns or c in linker.links]
    if "compound_id" in linker.links:
        cols.append("compound_id")
    json_cols = {c for c in cols if c != "compound_id" and layer.field(c).type == "json"}
    names = [*cols, "extra", "geom"] + (["updated_by"] if user else [])
    written = 0

    def encoded() -> Iterator[memoryview]:  # runs on this thread while the chunks before stream out
        nonlocal written
        for frame in chain([first], chunks):
            for start in range(0, len(frame), _COPY_CHUNK_ROWS):
                chunk = frame.iloc[start:start + _COPY_CHUNK_ROWS]
                links = linker.derived(chunk)  # arrays, not set into a GeoDataFrame copy (GeoPandas' setitem is slow)
                cells: list[pa.Array | pa.Scalar] = [
                    _copy_cells(pd.Series(links[c], copy=False) if c in links else chunk[c], as_json=c in json_cols)
                    for c in cols]
                cells.append(pa.array(_copy_extra(chunk["extra"].tolist(), len(chunk)).tolist(), type=pa.string())
                             if "extra" in chunk.columns else pa.scalar("{}"))
                cells.append(_hex_wkb(_promote(np.asarray(chunk.geometry.values), layer)))
                if user:
                    cells.append(pa.scalar(_copy_escape(user)))
                written += len(chunk)
                yield _copy_lines(cells)

    # PostgreSQL refuses COPY FROM into a table under row-level security: then the rows are COPYed into a
    # session-private staging table and moved by one INSERT ... SELECT, which the policies check (WITH CHECK).
    secured = conn.execute(text("SELECT row_security_active(CAST(:t AS regclass))"), {"t": layer.name}).scalar_one()
    stage = f"firelane_stage_{layer.name}" if secured else layer.name
    statement = f"COPY {stage} ({', '.join(names)}) FROM STDIN"
    try:
        if secured:
            raw.execute(f"DROP TABLE IF EXISTS {stage}")
            raw.execute(f"CREATE TEMP TABLE {stage} ON COMMIT DROP AS SELECT {', '.join(names)} FROM {layer.name} "
                        "WITH NO DATA")
        with bulk_load(conn, raw, layer.name) if bulk else nullcontext():
            _copy_chunks(raw, statement, encoded())
            if secured:
                statement = f"INSERT INTO {layer.name} ({', '.join(names)}) SELECT {', '.join(names)} FROM {stage}"
                raw.execute(statement)
                raw.execute(f"DROP TABLE {stage}")
    except psycopg.Error as exc:  # the same exception types as every other statement (IntegrityError, ...)
        raise sqlalchemy.exc.DBAPIError.instance(statement, None, exc, psycopg.Error) from exc
    return WriteResult(inserted=written, deleted=deleted)


@dataclass
class _ForeignKey:
    """A single-column foreign key whose per-row insert check the bulk path replaces by one set-based check.

    PostgreSQL checks a foreign key per inserted row: an index probe plus a FOR KEY SHARE lock on the referenced
    row, about 4 µs a row. On the bulk path the table is locked ACCESS EXCLUSIVE (nobody else can insert), the
    check trigger is disabled for the COPY only, and `check` then takes the same FOR KEY SHARE locks on every
    referenced row at once (they can be neither deleted nor re-keyed until commit) and looks for rows whose key
    has no referenced row (an anti-join): any such row raises ForeignKeyViolation, as the trigger would have.
    Disabling an internal trigger needs a superuser (the managed cluster); other sessions keep the per-row check.
    """

    name: str
    column: str
    target: str
    target_column: str
    trigger: str

    @classmethod
    def set_checkable(cls, conn: Connection, table: str) -> list[_ForeignKey]:
        if conn.execute(text("SELECT current_setting('is_superuser')")).scalar_one() != "on":
            return []
        return [cls(*row) for row in conn.execute(text(
            "SELECT k.conname, a.attname, CAST(k.confrelid AS regclass)::text, f.attname, g.tgname "
            "FROM pg_constraint k "
            "JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = k.conkey[1] "
            "JOIN pg_attribute f ON f.attrelid = k.confrelid AND f.attnum = k.confkey[1] "
            "JOIN pg_trigger g ON g.tgconstraint = k.oid AND g.tgrelid = k.conrelid AND g.tgenabled = 'O' "
            "AND g.tgfoid = CAST('\"RI_FKey_check_ins\"' AS regproc) "
            "WHERE k.conrelid = CAST(:t AS regclass) AND k.contype = 'f' AND cardinality(k.conkey) = 1 "
            "ORDER BY k.conname"), {"t": table}).all()]

    def check(self, raw: psycopg.Connection, table: str) -> None:
        raw.execute(f"SELECT 1 FROM {self.target} r WHERE r.{self.target_column} IN "
                    f"(SELECT DISTINCT {self.column} FROM {table}) FOR KEY SHARE OF r")
        missing = raw.execute(
            f"SELECT t.{self.column} FROM {table} t WHERE t.{self.column} IS NOT NULL AND NOT EXISTS "
            f"(SELECT 1 FROM {self.target} r WHERE r.{self.target_column} = t.{self.column}) LIMIT 1").fetchone()
        if missing is not None:
            raise psycopg.errors.ForeignKeyViolation(
                f'insert or update on table "{table}" violates foreign key constraint "{self.name}"\n'
                f'DETAIL:  Key ({self.column})=({missing[0]}) is not present in table "{self.target}".')


def _promote(geoms: np.ndarray, layer: Layer) -> np.ndarray:
    """Single parts to the layer's Multi type (Polygon → MultiPolygon, LineString → MultiLineString), vectorised."""
    single = {"MULTIPOLYGON": (3, shapely.multipolygons), "MULTILINESTRING": (1, shapely.multilinestrings)}
    kinds = list(single) if layer.geometry == "GEOMETRY" and layer.multi else [layer.geometry]  # roads: both
    out = geoms.copy()
    for kind in kinds:
        if kind not in single:
            continue
        type_id, make = single[kind]
        mask = shapely.get_type_id(geoms) == type_id
        if mask.any():
            out[mask] = make(geoms[mask], indices=np.arange(int(mask.sum())))
    return out


@dataclass
class _Areas:
    """Candidate polygons of one table (compounds or streets) for linking: id, ref, one more column, STRtree."""

    ids: np.ndarray  # object arrays with a trailing None, so that index -1 means "none"
    refs: np.ndarray
    extra: np.ndarray
    areas: np.ndarray
    tree: shapely.STRtree | None

    @classmethod
    def load(cls, conn: Connection, table: str, extra_col: str, bounds: np.ndarray | None) -> _Areas:
        """The rows of `table` whose geometry meets `bounds` (lon/lat box), or all rows for None."""
        where, args = "", {}
        if bounds is not None:
            where = "WHERE geom && ST_MakeEnvelope(:x0, :y0, :x1, :y1, 4490) "
            args = dict(zip(("x0", "y0", "x1", "y1"), (float(v) for v in bounds), strict=True))
        rows = conn.execute(text(
            f"SELECT id, ref, {extra_col}, ST_AsBinary(geom), ST_Area(geom) FROM {table} {where}ORDER BY id"),
            args).all()
        tree = shapely.STRtree(shapely.from_wkb([bytes(r[3]) for r in rows])) if rows else None
        return cls(ids=np.array([r[0] for r in rows] + [None], dtype=object),
                   refs=np.array([r[1] for r in rows] + [None], dtype=object),
                   extra=np.array([r[2] for r in rows] + [None], dtype=object),
                   areas=np.array([r[4] for r in rows], dtype=float), tree=tree)

    def smallest_containing(self, points: np.ndarray) -> np.ndarray:
        """Per point, the index of the smallest candidate it intersects (-1: none)."""
        hit = np.full(len(points), -1)
        if self.tree is not None:
            p_idx, t_idx = self.tree.query(points, predicate="intersects")
            order = np.lexsort((self.areas[t_idx], p_idx))  # per point, the smallest polygon first
            p_idx, t_idx = p_idx[order], t_idx[order]
            first = np.r_[True, p_idx[1:] != p_idx[:-1]] if p_idx.size else np.array([], dtype=bool)
            hit[p_idx[first]] = t_idx[first]
        return hit


@dataclass
class Linker:
    """What `link_frame` needs from the database, loaded once for a whole frame, then applied chunk by chunk.

    `load` reads the compounds and streets around the frame (bounding box of its geometries) and the compounds
    its compound_refs name, or, for a frame still to come (`frame=None`, a streamed import), every compound
    and street (a district has hundreds to a few thousand: tens of milliseconds). `apply` is pure (no database
    access), so it can run while the connection streams.
    """

    links: list[str]
    by_ref: dict[str, tuple[int, str | None]]
    compounds: _Areas | None
    streets: _Areas | None

    @classmethod
    def load(cls, conn: Connection, layer: Layer, frame: gpd.GeoDataFrame | None) -> Linker:
        links = _link_columns(layer)
        by_ref: dict[str, tuple[int, str | None]] = {}
        compounds = streets = None
        if links and frame is None:
            if "compound_id" in links:
                compounds = _Areas.load(conn, "compounds", "street_code", None)
                by_ref = {r: (i, c) for i, r, c in zip(compounds.ids[:-1], compounds.refs[:-1], compounds.extra[:-1],
                                                       strict=True)}
            if "street_code" in links:
                streets = _Areas.load(conn, "streets", "name", None)
        elif links and frame is not None and len(frame):
            bounds = shapely.total_bounds(np.asarray(frame.geometry.values))
            if "compound_id" in links:
                given = frame["compound_ref"].dropna().tolist() if "compound_ref" in frame.columns else []
                if given:
                    by_ref = {r[0]: (r[1], r[2]) for r in conn.execute(
                        text("SELECT ref, id, street_code FROM compounds WHERE ref = ANY(:refs)"),
                        {"refs": sorted(set(given))}).all()}
                compounds = _Areas.load(conn, "compounds", "street_code", bounds)
            if "street_code" in links:
                streets = _Areas.load(conn, "streets", "name", bounds)
        return cls(links=links, by_ref=by_ref, compounds=compounds, streets=streets)

    def apply(self, frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
        """The frame with compound_id, compound_ref and street_code filled (a copy; the input is untouched)."""
        if not self.links or len(frame) == 0:
            return frame
        out = frame.copy()
        for name, values in self.derived(frame).items():
            out[name] = values
        return out

    def derived(self, frame: gpd.GeoDataFrame) -> dict[str, np.ndarray]:
        """The link columns (compound_id, compound_ref, street_code) for `frame`'s rows, as object arrays."""
        if not self.links or len(frame) == 0:
            return {}
        derived: dict[str, np.ndarray] = {}
        n = len(frame)
        points = None

        def column(name: str) -> np.ndarray:
            return (frame[name].to_numpy(dtype=object).copy() if name in frame.columns
                    else np.full(n, None, dtype=object))

        def smallest(areas: _Areas) -> np.ndarray:
            nonlocal points
            if points is None:  # a point is its own point-on-surface: GEOS runs only for lines and polygons
                geoms = np.asarray(frame.geometry.values)
                points = geoms.copy()
                other = shapely.get_type_id(geoms) != 0
                points[other] = shapely.point_on_surface(geoms[other])
            return areas.smallest_containing(points)

        if "compound_id" in self.links:
            compound_ref = column("compound_ref")
            compound_id = np.full(n, None, dtype=object)
            compound_street = np.full(n, None, dtype=object)
            hit = smallest(self.compounds) if self.compounds is not None else np.full(n, -1)
            c = self.compounds
            if c is not None:  # -1 picks the trailing None
                compound_id[:], compound_street[:] = c.ids[hit], c.extra[hit]
            given = pd.notna(compound_ref)
            if c is not None and given.any():
                clash = given & (hit >= 0) & (c.refs[hit] != compound_ref)
                if clash.any():
                    rows = [str(label) for label in frame.index[clash][:5].tolist()]
                    raise PlacementError("compound_ref", "与几何所在小区不符 disagrees with the compound the geometry "
                                                         f"lies in (rows {', '.join(rows)}; e.g. "
                                                         f"{compound_ref[clash][0]!r} vs {c.refs[hit][clash][0]!r})")
            for i in np.flatnonzero(given & (hit < 0)).tolist():  # in no compound: the named one places it
                compound_id[i], compound_street[i] = self.by_ref.get(compound_ref[i], (None, None))
            todo = ~given
            if c is not None and todo.any():
                compound_ref[todo] = c.refs[hit][todo]
            derived["compound_id"] = compound_id
            derived["compound_ref"] = compound_ref
        if "street_code" in self.links:
            # what the row claims counts only where neither its compound nor a street polygon places it
            street_code = column("street_code")
            placed = np.zeros(n, dtype=bool)
            if "compound_id" in self.links:
                placed = pd.notna(compound_street)
                street_code[placed] = compound_street[placed]
            if self.streets is not None and not placed.all():
                lies_in = self.streets.refs[smallest(self.streets)]
                fill = ~placed & pd.notna(lies_in)
                street_code[fill] = lies_in[fill]
            derived["street_code"] = street_code
        return derived


def link_frame(conn: Connection, layer: Layer, frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Fill compound_id, compound_ref and street_code in memory, by the rule of `gis.placement.place`.

    The compound is the smallest one that the feature's point-on-surface intersects; a given compound_ref must
    name that same compound (PlacementError otherwise) and places only features in no compound. street_code
    follows from the compound, else from the smallest street office containing the point, and only then from
    the row itself. One STRtree query per table over the whole
    frame replaces per-row spatial subqueries in the database.
    """
    return Linker.load(conn, layer, frame).apply(frame)


_LINK_TYPES = {"compound_id": "bigint", "compound_ref": "varchar(200)", "street_code": "varchar(12)"}


def _link_columns(layer: Layer) -> list[str]:
    table = TABLES[layer.name]
    return [c for c in _LINK_TYPES if c in table.c]


def derive_links(conn: Connection, layer: Layer, *, table: str | None = None) -> None:
    """Fill compound_id (from compound_ref, else spatially), compound_ref and street_code where missing.

    The SQL twin of `link_frame`, for rows already in a table: `table` is a staging table (the ledger's, the OSM
    sync's) that is linked before its rows move into the layer, so derived links cost no extra versions or audit
    rows; by default the layer's own table.
    """
    target = table or layer.name
    links = _link_columns(layer)
    if "compound_id" in links:
        conn.execute(text(
            f"UPDATE {target} t SET compound_id = c.id FROM compounds c "
            f"WHERE t.compound_id IS NULL AND t.compound_ref IS NOT NULL AND c.ref = t.compound_ref"
        ))
        conn.execute(text(
            f"""UPDATE {target} t SET compound_id = (
                    SELECT c.id FROM compounds c
                    WHERE ST_Intersects(c.geom, ST_PointOnSurface(t.geom))
                    ORDER BY ST_Area(c.geom) LIMIT 1)
                WHERE t.compound_id IS NULL"""
        ))
        conn.execute(text(
            f"UPDATE {target} t SET compound_ref = c.ref FROM compounds c "
            f"WHERE t.compound_ref IS NULL AND c.id = t.compound_id"
        ))
    if "street_code" in links:
        if "compound_id" in links:
            conn.execute(text(
                f"UPDATE {target} t SET street_code = c.street_code FROM compounds c "
                f"WHERE t.street_code IS NULL AND c.id = t.compound_id AND c.street_code IS NOT NULL"
            ))
        conn.execute(text(
            f"""UPDATE {target} t SET street_code = (
                    SELECT s.ref FROM streets s WHERE ST_Intersects(s.geom, ST_PointOnSurface(t.geom))
                    ORDER BY ST_Area(s.geom) LIMIT 1)
                WHERE t.street_code IS NULL"""
        ))


def count(layer: str, *, engine: Engine | None = None) -> int:
    with (engine or get_engine()).connect() as conn:
        return conn.execute(text(f"SELECT count(*) FROM {get_layer(layer).name}")).scalar_one()
