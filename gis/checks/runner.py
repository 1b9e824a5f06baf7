"""Running the checks: read a scope from PostGIS, partition by compound, run every family serially, in a process
pool or on a Dask cluster, record the run and update the hazards ledger."""

from __future__ import annotations

import gc
import importlib
import importlib.util
import json
import math
import multiprocessing
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely
from sqlalchemy import Engine, text
from sqlalchemy import types as sa_types
from tqdm import tqdm

from gis import forkserver
from gis import scope as db_scope
from gis.campaign import ledger_writer
from gis.checks.catalog import FAMILIES, RULES
from gis.checks.context import (
    CONTEXT_LAYERS,
    CheckContext,
    build_contexts,
    compact_groups,
    compound_zones,
    context_margins,
    hilbert_order,
)
from gis.checks.findings import FINDING_COLUMNS, empty_findings
from gis.checks.ledger import LedgerResult
from gis.checks.profiles import Profile, load_profile
from gis.coords import adopt_operation, as_bounds, operation_json
from gis.db import engine_for_shared_url, get_engine, shareable_url
from gis.gcpause import paused_gc
from gis.layers import STORAGE_SRID
from gis.schema import TABLES
from gis.store import read_layer, read_layers

#: Output CRS of findings (GeoJSON, RFC 7946).
OUTPUT_CRS = 4326


CheckFn = Callable[[CheckContext], gpd.GeoDataFrame]


class MissingChecksError(ImportError):
    """A rule family module that cannot be imported (the run would silently skip its rules)."""


def _unknown(family: str) -> KeyError:
    return KeyError(f"未知规则族 unknown rule family {family!r}; families: {', '.join(FAMILIES)}")


class _FamilyRegistry(Mapping[str, CheckFn]):
    """`FAMILY_CHECKS[family]` → the family's `check` function, imported on first use."""

    def __getitem__(self, family: str) -> CheckFn:
        if family not in FAMILIES:
            raise _unknown(family)
        try:
            module = importlib.import_module(f"gis.checks.{family}")
        except ModuleNotFoundError as exc:
            if exc.name != f"gis.checks.{family}":
                raise
            raise MissingChecksError(f"规则族模块缺失 rule family module missing: gis.checks.{family}") from exc
        return module.check

    def __iter__(self) -> Iterator[str]:
        return iter(FAMILIES)

    def __len__(self) -> int:
        return len(FAMILIES)


#: Registry of the family check functions (lazy: modules are imported when a run needs them).
FAMILY_CHECKS: Mapping[str, CheckFn] = _FamilyRegistry()


def families_present(families: Iterable[str]) -> None:
    """Raise as `resolve_families` does for unknown families (KeyError) and missing modules (MissingChecksError,
    naming every one), without importing the families: a run whose workers import them need not import them here."""
    names = tuple(families)
    for name in names:
        if name not in FAMILIES:
            raise _unknown(name)
    missing = [f"gis.checks.{n}" for n in names if importlib.util.find_spec(f"gis.checks.{n}") is None]
    if missing:
        raise MissingChecksError(f"规则族模块缺失 rule family modules missing: {', '.join(missing)}")


def resolve_families(families: Iterable[str] | None = None) -> dict[str, CheckFn]:
    """The check functions of `families` (default: all); raises MissingChecksError naming every missing module."""
    names = tuple(families) if families is not None else FAMILIES
    families_present(names)  # (every missing module named at once; the imports below find them all)
    return {name: FAMILY_CHECKS[name] for name in names}


def multi_compound(family: str) -> bool:
    """Whether a family may run on partitions of several compounds (its module sets MULTI_COMPOUND = True:
    per-compound rules group by owner, nothing assumes one compound per context)."""
    module = importlib.import_module(f"gis.checks.{family}")
    return bool(getattr(module, "MULTI_COMPOUND", False))


#: Largest partition (compounds) the runner builds for multi-compound families.
MAX_GROUP = 800


def group_size(n_compounds: int, *, workers: int = 1) -> int:
    """Compounds per partition: as large as MAX_GROUP allows, in a number of groups that is a multiple of the
    workers (each gets the same share; a lone last group would leave the others idle). A group's surroundings and
    the checks' per-partition work cost more CPU than a larger group costs memory (measurements in the commit
    history of this function)."""
    workers = max(1, workers)
    parts = workers * math.ceil(n_compounds / (workers * MAX_GROUP))
    return int(max(1, math.ceil(n_compounds / max(1, parts))))


def family_rules(families: Iterable[str]) -> list[str]:
    """The rule ids a set of families checks."""
    fams = set(families)
    return [r.id for r in RULES.values() if r.family in fams]


# --- one partition ----------------------------------------------------------------------------------------------


class PartitionError(RuntimeError):
    """A check that raised on one compound (the message names the compound and the family)."""


def check_context(ctx: CheckContext, families: Sequence[str] = FAMILIES) -> gpd.GeoDataFrame:
    """Run `families` on one context; findings in EPSG:4326 (FINDING_COLUMNS + geometry).

    Module-level and picklable, so process pools and Dask workers run it unchanged.
    """
    checks = resolve_families(families)
    frames = []
    for name, fn in checks.items():
        try:
            found = fn(ctx)
        except Exception as exc:  # name the partition: a bare GEOS error says nothing about where
            raise PartitionError(f"检查出错 check {name} failed on compound {ctx.compound_ref!r}: {exc!r}") from exc
        if found is not None and len(found):
            if found.crs is None:
                found = found.set_crs(ctx.crs)
            frames.append(found.to_crs(OUTPUT_CRS))
    return _concat(frames)


def _concat(frames: list[gpd.GeoDataFrame]) -> gpd.GeoDataFrame:
    frames = [f for f in frames if len(f)]
    if not frames:
        return empty_findings(crs=OUTPUT_CRS)
    out = pd.concat(frames, ignore_index=True)
    return gpd.GeoDataFrame(out, geometry="geometry", crs=OUTPUT_CRS)


Task = tuple[CheckContext, tuple[str, ...]]


@paused_gc()  # in a pool worker: its partitions' geometries, like the caller's (see run_tasks)
def _check_batch(tasks: list[Task]) -> list[gpd.GeoDataFrame]:
    return [check_context(c, fams) for c, fams in tasks]


def _check_task(task: Task) -> gpd.GeoDataFrame:
    return check_context(task[0], task[1])


def _batches(items: list, n: int) -> list[list]:
    size = max(1, math.ceil(len(items) / n))
    return [items[i:i + size] for i in range(0, len(items), size)]


def run_contexts(
    contexts: Sequence[CheckContext],
    *,
    families: Sequence[str] = FAMILIES,
    workers: int = 1,
    dask_address: str | Any | None = None,
    progress: bool = False,
) -> gpd.GeoDataFrame:
    """Run the checks on prepared contexts: serially, in a process pool (`workers` > 1) or on a Dask cluster.

    Parameters
    ----------
    contexts : sequence of CheckContext
    families : sequence of str
        Rule families to run (default: all; a missing family module raises before any work starts).
    workers : int
        Processes of the local pool (1: run in this process).
    dask_address : str or distributed.Client, optional
        A Dask scheduler address (``tcp://host:8786``) or a connected Client: partitions run as Dask tasks.
    progress : bool
        Show a tqdm progress bar over compounds (on stderr).

    Returns
    -------
    GeoDataFrame
        All findings in EPSG:4326, sorted by compound, rule, subject and key.
    """
    families = tuple(families)
    resolve_families(families)  # fail loudly before the work, naming every missing module
    return run_tasks([(c, families) for c in contexts], workers=workers, dask_address=dask_address,
                     progress=progress)


@paused_gc()  # full collections walk every geometry of the scope: ~0.13 s each, 4-5 per m-scale run
def run_tasks(tasks: Sequence[Task], *, workers: int = 1, dask_address: str | Any | None = None,
              progress: bool = False, pool: ProcessPoolExecutor | None = None) -> gpd.GeoDataFrame:
    """Run (context, families) tasks serially, in a process pool or on Dask; findings in EPSG:4326, sorted.

    `pool`: a running `process_pool(workers)` to use (and leave running) instead of starting one."""
    if dask_address is not None and not hasattr(dask_address, "submit"):
        from distributed import Client  # heavy optional dependency, only for Dask runs

        with Client(dask_address) as client:
            return start_tasks(tasks, workers=workers, dask_address=client, progress=progress, pool=pool)()
    if workers > 1 and pool is None and len(tasks) > 1:
        with process_pool(workers) as own:
            return start_tasks(tasks, workers=workers, progress=progress, pool=own)()
    return start_tasks(tasks, workers=workers, dask_address=dask_address, progress=progress, pool=pool)()


def start_tasks(tasks: Sequence[Task], *, workers: int = 1, dask_address: Any = None, progress: bool = False,
                pool: ProcessPoolExecutor | None = None) -> Callable[[], gpd.GeoDataFrame]:
    """Start (context, families) tasks and return the call that waits for their findings (EPSG:4326, sorted).

    On a connected Dask client (`dask_address`) or a running `pool` the partitions are sent now and checked while
    the caller goes on (reads and partitions the next batch, writes the last one's ledger); serially they run when
    the returned call is made."""
    tasks = list(tasks)
    bar = _bar(sum(len(c.compounds) for c, _ in tasks), progress)
    if dask_address is not None:
        from distributed import as_completed as dask_completed  # heavy optional dependency

        futures = dask_address.map(_check_task, tasks, pure=False)
        sizes = {f.key: len(t[0].compounds) for f, t in zip(futures, tasks, strict=True)}
        del tasks

        @paused_gc()
        def collect_dask() -> gpd.GeoDataFrame:
            frames = []
            try:
                for fut in dask_completed(futures):
                    frames.append(fut.result())
                    bar.update(sizes[fut.key])
            finally:
                bar.close()
            return _sorted(_concat(frames))

        return collect_dask
    if pool is not None and workers > 1 and len(tasks) > 1:
        # a few batches per worker: pickling per task costs more than small partitions' checks
        batches = _batches(sorted(tasks, key=lambda t: -len(t[0].compounds)), workers * 2)
        pending = {pool.submit(_check_batch, b): sum(len(c.compounds) for c, _ in b) for b in batches}
        del tasks, batches

        @paused_gc()
        def collect_pool() -> gpd.GeoDataFrame:
            frames: list[gpd.GeoDataFrame] = []
            try:
                for fut in as_completed(pending):
                    frames.extend(fut.result())
                    bar.update(pending[fut])
            finally:
                bar.close()
            return _sorted(_concat(frames))

        return collect_pool

    @paused_gc()
    def collect_serial() -> gpd.GeoDataFrame:
        frames = []
        try:
            for ctx, fams in tasks:
                frames.append(check_context(ctx, fams))
                bar.update(len(ctx.compounds))
        finally:
            bar.close()
        return _sorted(_concat(frames))

    return collect_serial


def _warm_up(families: tuple[str, ...]) -> int:
    """Import the rule families in a pool worker (no-op when the fork server preloaded them)."""
    resolve_families(families)
    return multiprocessing.current_process().pid or 0


def process_pool(workers: int, *, families: Sequence[str] = FAMILIES) -> ProcessPoolExecutor:
    """A local process pool whose `workers` processes are already starting.

    Processes come from the fork server with the rule families preloaded (imported once, not once per worker),
    and one warm-up task per worker makes the pool start them now: a caller that starts the pool before reading
    the scope has them ready when the partitions are.
    """
    ctx_mp = forkserver.context(families)
    # gc.freeze: the imported modules' objects (~150,000) leave the collector's view in each worker, so the
    # collection after every group (check_group) walks only what the groups left, not every module again (the
    # server froze its own preloads already, gis.forkserver_freeze; this covers what a worker imports or builds as
    # it starts, and a server that was running before with another preload list)
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=ctx_mp, initializer=gc.freeze)

    def warm() -> None:  # starting the fork server waits for its imports: not on the caller's time
        try:
            for _ in range(workers):
                pool.submit(_warm_up, tuple(families))
        except RuntimeError:  # the caller already shut the pool down (its run failed early): nothing to warm
            pass

    threading.Thread(target=warm, name="firelane-pool-warm-up", daemon=True).start()
    return pool


def plan_tasks(layers_4490: dict[str, gpd.GeoDataFrame], *, profile: Profile, families: Sequence[str],
               compounds: Iterable[str] | None = None, workers: int = 1,
               grouped: bool | None = None, size: int | None = None) -> list[Task]:
    """Partition a district for `families`: families that handle several compounds per partition
    (MULTI_COMPOUND) share grouped partitions, the others get one partition per compound.

    `grouped` overrides the families' flags: True groups every family, False none. `size`: compounds per grouped
    partition (default: `group_size` for `workers`)."""
    families = tuple(families)
    resolve_families(families)
    multi = tuple(f for f in families if (multi_compound(f) if grouped is None else grouped))
    single = tuple(f for f in families if f not in multi)
    wanted = list(compounds) if compounds is not None else None
    n = len(wanted) if wanted is not None else len(layers_4490.get("compounds", ()))
    tasks: list[Task] = []
    if multi:
        size = size or group_size(n, workers=workers)
        tasks += [(c, multi) for c in build_contexts(layers_4490, profile=profile, compounds=wanted,
                                                     group_size=size)]
    if single:
        tasks += [(c, single) for c in build_contexts(layers_4490, profile=profile, compounds=wanted)]
    return tasks


class _NoBar:
    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


def _bar(total: int, show: bool) -> Any:
    if not show:
        return _NoBar()
    return tqdm(total=total, unit="小区 compound", desc="检查 checking", leave=False)


def _sorted(findings: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    if not len(findings):
        return findings
    order = findings[["compound_ref", "rule", "subject_ref", "key"]].astype(str)
    idx = order.sort_values(["compound_ref", "rule", "subject_ref", "key"]).index
    return findings.loc[idx].reset_index(drop=True)


@paused_gc()  # partitioning the layers builds the same large, cycle-free heaps as the checks
def run_on_frames(
    layers_4490: dict[str, gpd.GeoDataFrame],
    *,
    profile: Profile | str = "cn-gb",
    workers: int = 1,
    families: Sequence[str] = FAMILIES,
    compounds: Iterable[str] | None = None,
    dask_address: str | Any | None = None,
    grouped: bool | None = None,
) -> gpd.GeoDataFrame:
    """Run the checks on in-memory layers (no database): partition by compound, run, return findings in EPSG:4326.

    Parameters
    ----------
    layers_4490 : dict of str to GeoDataFrame
        Layer frames in EPSG:4490 keyed by layer name (`compounds` required).
    profile : Profile or str
    workers : int
    families : sequence of str
    compounds : iterable of str, optional
        Only these compounds' features are reported (the rest is surroundings).
    dask_address : str or distributed.Client, optional
    grouped : bool, optional
        Partition grouping override (see `plan_tasks`).

    Returns
    -------
    GeoDataFrame
        FINDING_COLUMNS + geometry, EPSG:4326.
    """
    prof = load_profile(profile) if isinstance(profile, str) else profile
    tasks = plan_tasks(layers_4490, profile=prof, families=families, compounds=compounds, workers=workers,
                       grouped=grouped)
    return run_tasks(tasks, workers=workers, dask_address=dask_address)


# --- the database run -----------------------------------------------------------------------------------------


@dataclass
class CheckResult:
    """The outcome of one check run."""

    findings: gpd.GeoDataFrame
    run_id: int | None
    counts: dict[str, dict[str, int]]
    duration_s: float
    profile: str
    profile_version: str
    scope: dict[str, Any]
    compounds: list[str] = field(default_factory=list)
    ledger: Any = None

    @property
    def failures(self) -> int:
        return int((self.findings["verdict"] == "fail").sum()) if len(self.findings) else 0


def count_findings(findings: pd.DataFrame) -> dict[str, dict[str, int]]:
    """Findings per rule and verdict: ``{rule: {verdict: n}}``."""
    if not len(findings):
        return {}
    grouped = findings.groupby(["rule", "verdict"]).size()
    out: dict[str, dict[str, int]] = {}
    for (rule_id, verdict), n in grouped.items():
        out.setdefault(str(rule_id), {})[str(verdict)] = int(n)
    return out


#: Store-managed and bookkeeping columns no rule looks at (the store id stays: it is the frame index and the ref
#: of last resort). Dates and JSON are skipped as a type (no rule reads observation dates or `extra`).
SKIPPED_COLUMNS: frozenset[str] = frozenset({
    "street_code", "estimated", "source", "compound_id", "extra", "version", "created_at", "updated_at",
    "updated_by",
})
_SKIPPED_TYPES = (sa_types.Date, sa_types.DateTime, sa_types.Time, sa_types.JSON)


def check_columns(layer: str) -> list[str]:
    """The columns of a layer's table the checks read (in table order, without the geometry)."""
    return [c.name for c in TABLES[layer].c
            if c.name != "geom" and c.name not in SKIPPED_COLUMNS and not isinstance(c.type, _SKIPPED_TYPES)]


def read_check_layers(engine: Engine, layers: Iterable[str], *, where: Mapping[str, str | None] | None = None,
                      params: Mapping[str, Any] | None = None, indexed: bool = False) -> dict[str, gpd.GeoDataFrame]:
    """The checked columns of several layers, through the one layer reader (`gis.store.read_layers`; `indexed`:
    see there)."""
    names = list(layers)
    return read_layers(engine, names, where=dict(where or {}), params=dict(params or {}),
                       columns={name: check_columns(name) for name in names}, indexed=indexed)


def read_scope(
    *,
    engine: Engine,
    street: str | None = None,
    compound: str | None = None,
    profile: Profile,
) -> tuple[dict[str, gpd.GeoDataFrame], list[str]]:
    """The layers a scope's checks need, in EPSG:4490, and the refs of the compounds to check.

    Only the columns the rules read (`check_columns`: no bookkeeping, dates or `extra`), through the one layer
    reader (`gis.store.read_layers`, COPY). The whole district without a scope; else the scope's compounds plus every feature within the context margins
    of them (neighbouring buildings, city roads, hydrants) or belonging to them.
    """
    if street is None and compound is None:
        layers = read_check_layers(engine, CONTEXT_LAYERS)
        return layers, [str(r) for r in layers["compounds"]["ref"].dropna()]
    targets = read_layer("compounds", engine=engine, street=street, compound=compound)
    refs = [str(r) for r in targets["ref"].dropna()]
    if not refs:
        return read_check_layers(engine, CONTEXT_LAYERS, where=dict.fromkeys(CONTEXT_LAYERS, "false")), []
    outlines = np.asarray(targets.geometry.values, dtype=object)
    outlines = outlines[~(shapely.is_missing(outlines) | shapely.is_empty(outlines))]
    where, params = _around(refs, read_boxes(outlines[hilbert_order(outlines)]), profile)
    return read_check_layers(engine, CONTEXT_LAYERS, where=where, params=params, indexed=True), refs


def _around(refs: list[str], boxes: Sequence[tuple[float, float, float, float]],
            profile: Profile) -> tuple[dict[str, str], dict[str, Any]]:
    """Per layer the SQL condition for the features a set of compounds needs: within the layer's context margin
    of one of `boxes` (lon/lat bounds of runs of the compounds, `read_boxes`), or belonging to one of them.

    Boxes of short runs, not one box of every compound: a run of neighbours along the Hilbert curve can bend
    around a large area that is no compound's surroundings, and its box (and a group's contexts) would read it."""
    many = [tuple(map(float, b)) for b in boxes]
    margins = context_margins(profile)
    lat = math.radians(sum(b[1] + b[3] for b in many) / (2 * len(many))) if many else 0.0
    params: dict[str, Any] = {"scope_refs": refs}
    where: dict[str, str] = {}
    for name in CONTEXT_LAYERS:
        m = margins[name] * 1.2 + 10.0  # degrees below are approximate: widen a little
        dx, dy = m / (111_320.0 * max(math.cos(lat), 0.1)), m / 110_574.0
        params[f"{name}_boxes"] = [_ewkt_box(x0 - dx, y0 - dy, x1 + dx, y1 + dy) for x0, y0, x1, y1 in many]
        # an array of boxes is one index condition (a bitmap scan per box); geometry's array delimiter is not ','
        box = f"t.geom && ANY(CAST(CAST(:{name}_boxes AS text[]) AS geometry[]))"
        if name == "compounds":
            where[name] = f"({box} OR t.ref = ANY(:scope_refs))"
        else:
            where[name] = f"({box} OR t.compound_ref = ANY(:scope_refs))"
    return where, params


def _ewkt_box(x0: float, y0: float, x1: float, y1: float) -> str:
    return f"SRID=4490;POLYGON(({x0!r} {y0!r},{x0!r} {y1!r},{x1!r} {y1!r},{x1!r} {y0!r},{x0!r} {y0!r}))"


#: Compounds per box of a group's read (`read_boxes`): short runs of neighbours have tight boxes; more boxes cost
#: index scans whose results overlap (the margins are wider than a compound).
READ_RUN = 8


def read_boxes(outlines: np.ndarray, run: int = READ_RUN) -> tuple[tuple[float, float, float, float], ...]:
    """The lon/lat bounds of consecutive runs of `run` outlines (in the order given: Hilbert order)."""
    return tuple(as_bounds(shapely.total_bounds(outlines[i:i + run])) for i in range(0, len(outlines), max(1, run)))


#: Most compounds in one group: a scope larger than this is read and checked group by group (neighbouring
#: compounds, `cut_groups`, each with its surroundings), so memory is bounded by the group, not the district.
STREAM_COMPOUNDS = 800


@dataclass(frozen=True)
class Group:
    """A run of neighbouring compounds read and checked as one unit: their refs and the lon/lat bounds of short
    runs of them (`read_boxes`, which `_around` grows by each layer's context margin to read the surroundings)."""

    refs: tuple[str, ...]
    boxes: tuple[tuple[float, float, float, float], ...]


def scope_compounds(*, engine: Engine, street: str | None = None,
                    compound: str | None = None) -> tuple[list[str], np.ndarray, np.ndarray]:
    """The refs of a scope's compounds, and their refs and outlines in Hilbert order of their centres."""
    targets = read_layer("compounds", engine=engine, street=street, compound=compound, columns=["id", "ref"])
    targets = targets[targets["ref"].notna() & targets.geometry.notna()]
    refs = [str(r) for r in targets["ref"]]
    outlines = np.asarray(targets.geometry.values, dtype=object)
    ordered = np.asarray(refs, dtype=object)
    if len(refs) > 1:
        order = hilbert_order(outlines)
        outlines, ordered = outlines[order], ordered[order]
    return refs, ordered, outlines


def cut_groups(ordered: np.ndarray, outlines: np.ndarray, size: int) -> list[Group]:
    """Groups of at most `size` neighbouring compounds, as nearly equal as can be (`compact_groups` of their
    centres: near-square, so a group's surroundings are a small share of what it reads), each in
    `scope_compounds`' order (Hilbert order: its read boxes are runs along the curve).

    The groups come largest expected work first (`group_work`): workers take them in this order, so the last
    ones taken are the smallest and the workers finish close together (longest processing time first)."""
    if not len(ordered):
        return []
    centres = shapely.get_coordinates(shapely.centroid(outlines))
    centres[:, 0] *= math.cos(math.radians(float(centres[:, 1].mean())))  # lon/lat: degrees of x are shorter
    groups = compact_groups(centres, size)
    work = group_work(outlines, groups)
    return [Group(refs=tuple(str(r) for r in ordered[groups[k]]), boxes=read_boxes(outlines[groups[k]]))
            for k in np.argsort(-work, kind="stable")]


def group_work(outlines: np.ndarray, groups: list[np.ndarray]) -> np.ndarray:
    """Expected work per group of compounds (indices into `outlines`): half by the number of compounds, half by
    their area (larger compounds hold more buildings, lanes and parking)."""
    area = shapely.area(outlines)
    mean = float(area.mean()) if len(area) else 0.0
    return np.array([float(area[g].sum()) + mean * len(g) for g in groups])


def read_group(engine: Engine, group: Group, profile: Profile) -> dict[str, gpd.GeoDataFrame]:
    """A group's compounds and every feature within the context margins of them or belonging to them."""
    where, params = _around(list(group.refs), group.boxes, profile)
    return read_check_layers(engine, CONTEXT_LAYERS, where=where, params=params, indexed=True)


def stream_scope(
    *,
    engine: Engine,
    street: str | None = None,
    compound: str | None = None,
    profile: Profile,
    batch: int = STREAM_COMPOUNDS,
) -> tuple[list[str], Iterator[tuple[dict[str, gpd.GeoDataFrame], list[str]]]]:
    """The refs of a scope's compounds, and its layers as a stream of groups: (layers, refs of the group's
    compounds) for groups of at most `batch` neighbouring compounds (`cut_groups`), each read with
    the surroundings its compounds need (`read_scope`'s margins), as `run_checks` reads them."""
    refs, ordered, outlines = scope_compounds(engine=engine, street=street, compound=compound)
    groups = cut_groups(ordered, outlines, batch)

    def batches() -> Iterator[tuple[dict[str, gpd.GeoDataFrame], list[str]]]:
        for group in groups:
            yield read_group(engine, group, profile), list(group.refs)

    return refs, batches()


@dataclass(frozen=True)
class GroupTask:
    """A group's work as it travels to a pool or Dask worker: the worker reads the group's layers itself (from the
    database at `url`, under the caller's `scope`), partitions and checks them, so only this record is sent."""

    group: Group
    families: tuple[str, ...]
    profile: Profile
    grouped: bool | None
    url: str
    scope: db_scope.Scope
    #: (storage CRS, metric CRS, operation) the caller chose (`storage_operations`), for the worker to adopt
    operations: tuple[tuple[pyproj.CRS, pyproj.CRS, str], ...] = ()


def storage_operations(outlines: np.ndarray) -> tuple[tuple[pyproj.CRS, pyproj.CRS, str], ...]:
    """The coordinate operations from storage to the metric CRSs that partitions of these compounds (lon/lat
    outlines) are checked in, chosen in this process once (`gis.coords.operation_json`, cached for its later runs)
    for the workers to adopt: each would otherwise search PROJ's candidates again before its first partition
    (about 0.1 s CPU for CGCS2000 to a WGS 84 UTM zone)."""
    if not len(outlines):
        return ()
    storage = pyproj.CRS.from_user_input(STORAGE_SRID)
    out = []
    for crs in compound_zones(outlines)[1]:
        operation = operation_json(storage, crs)
        if operation is not None:
            out.append((storage, crs, operation))
    return tuple(out)


def check_group(task: GroupTask, engine: Engine | None = None) -> gpd.GeoDataFrame:
    """Read, partition and check one group: in a pool or Dask worker (which opens `task.url` and enters
    `task.scope`: a new process or thread has neither), or in the caller with its `engine`. Findings in
    EPSG:4326, unsorted."""
    for src, dst, operation in task.operations:
        adopt_operation(src, dst, operation)
    if engine is None:
        db_scope.enter(task.scope)
        engine = engine_for_shared_url(task.url)
    found = _read_and_check(task, engine)
    gc.collect()  # the group's frames are gone; what sat in cycles goes now (collections were paused)
    return found


@paused_gc()  # the group's frames and partitions: large, cycle-free heaps
def _read_and_check(task: GroupTask, engine: Engine) -> gpd.GeoDataFrame:
    layers = read_group(engine, task.group, task.profile)
    tasks = plan_tasks(layers, profile=task.profile, families=task.families, compounds=task.group.refs,
                       grouped=task.grouped, size=len(task.group.refs))
    del layers
    frames = []
    while tasks:  # each partition's frames go as soon as it is checked
        ctx, fams = tasks.pop(0)
        frames.append(check_context(ctx, fams))
        del ctx
    return _concat(frames)


def _run_groups(work: list[GroupTask], *, engine: Engine, pool: ProcessPoolExecutor | None,
                client: Any) -> Iterator[tuple[Group, gpd.GeoDataFrame]]:
    """(group, findings) as the groups are done: serially in this process, on the pool or on the Dask client
    (every group sent at once: a task is a few refs, the workers read their own data); pending work is cancelled
    when the caller stops early (an error)."""
    if client is not None:
        from distributed import as_completed as dask_completed  # heavy optional dependency

        futures = {}
        for t in work:
            fut = client.submit(check_group, t, pure=False)
            futures[fut.key] = (fut, t.group)
        try:
            for fut in dask_completed([f for f, _ in futures.values()]):
                found = fut.result()
                _, group = futures.pop(fut.key)
                fut.release()  # the worker drops the findings now that this process holds them
                yield group, found
        finally:
            if futures:
                client.cancel([f for f, _ in futures.values()])
        return
    if pool is not None and len(work) > 1:
        pending = {pool.submit(check_group, t): t.group for t in work}
        try:
            for fut in as_completed(pending):
                yield pending.pop(fut), fut.result()
        finally:
            for fut in pending:
                fut.cancel()
        return
    for t in work:
        yield t.group, check_group(t, engine)


@paused_gc()  # reading the scope and recording the ledger build the same large, cycle-free heaps
def run_checks(
    *,
    street: str | None = None,
    compound: str | None = None,
    workers: int = 1,
    profile: str | Profile = "cn-gb",
    dask_address: str | Any | None = None,
    ledger: bool = True,
    progress: bool = False,
    engine: Engine | None = None,
    user: str | None = None,
    families: Sequence[str] = FAMILIES,
    include_pass: bool = False,
    grouped: bool | None = None,
    stream_batch: int = STREAM_COMPOUNDS,
    run_id: int | None = None,
) -> CheckResult:
    """Check a scope of the database and (by default) update the hazards ledger.

    The scope is cut into groups of neighbouring compounds (a couple per worker, `group_size`); each group is read
    with its surroundings, partitioned and checked by whoever runs it (this process, a pool worker or a Dask
    worker: only the group's refs travel), and its findings go to the ledger as it finishes.

    Parameters
    ----------
    street, compound : str, optional
        Scope: a street code or a compound ref (default: the whole database).
    workers : int
        Local processes (1: serial).
    profile : str or Profile
        Rule profile name, path or object.
    dask_address : str or distributed.Client, optional
        Run partitions on this Dask cluster.
    ledger : bool
        Write findings to the hazards ledger (and close hazards that no longer fail).
    progress : bool
        tqdm progress bar on stderr.
    engine : sqlalchemy.Engine, optional
    user : str, optional
        Recorded as the run's starter and in the audit log of ledger writes.
    families : sequence of str
        Rule families to run (default: all).
    include_pass : bool
        Also store ``pass`` findings in the ledger.
    grouped : bool, optional
        Partition grouping override (see `plan_tasks`; default: each family's MULTI_COMPOUND flag).
    stream_batch : int
        Most compounds per group (see `cut_groups`): memory is bounded by the group, not the scope.
    run_id : int, optional
        An existing check_runs row to drive (created with its job by `gis.jobs`); default: insert one.

    Returns
    -------
    CheckResult
        Findings in EPSG:4326, the run id (a row of check_runs), counts per rule and verdict, duration, profile.
    """
    eng = engine or get_engine()
    prof = load_profile(profile) if isinstance(profile, str) else profile
    families = tuple(families)
    families_present(families)  # (imported where the groups are checked: in the workers, when there are any)
    scope = {k: v for k, v in (("street", street), ("compound", compound)) if v is not None}
    started = time.perf_counter()
    with eng.begin() as conn:
        values = {"p": prof.name, "v": prof.version, "s": _json({**scope, "families": list(families)}), "u": user,
                  "id": run_id}
        run_id = conn.execute(
            text("INSERT INTO check_runs (status, profile, profile_version, scope, started_by) "
                 "VALUES ('running', :p, :v, CAST(:s AS jsonb), :u) RETURNING id") if run_id is None else
            text("UPDATE check_runs SET status = 'running', started_at = now(), profile = :p, profile_version = :v, "
                 "scope = CAST(:s AS jsonb), started_by = coalesce(:u, started_by) WHERE id = :id RETURNING id"),
            values,
        ).scalar_one()
    # the pool's processes start (and import the checks) while this one reads and partitions the scope
    pool = process_pool(workers, families=families) if workers > 1 and dask_address is None else None
    # likewise a Dask client (and the LocalCluster of ``local:N``) connects while the first batch is read
    starter = ThreadPoolExecutor(max_workers=1, thread_name_prefix="firelane-dask-start")
    connecting = (starter.submit(_dask_client, dask_address, password=eng.url.password)
                  if dask_address is not None else None)
    starter.shutdown(wait=False)
    client, own_client = None, False
    ledger_result = LedgerResult() if ledger else None
    parts: list[gpd.GeoDataFrame] = []
    try:
        refs, ordered, outlines = scope_compounds(engine=eng, street=street, compound=compound)
        parallel = workers if pool is not None else 1
        if connecting is not None:
            client, own_client = connecting.result()
            parallel = max(workers, sum(client.nthreads().values()))
        # a couple of groups per worker (balance), each as large as that allows (the checks' per-partition work
        # grows with the number of partitions), at most `stream_batch` compounds (memory)
        groups = cut_groups(ordered, outlines, min(stream_batch, group_size(len(refs), workers=parallel)))
        operations = storage_operations(outlines) if parallel > 1 else ()
        del ordered, outlines
        caller = db_scope.current()
        # a pool worker is this machine's own child; a Dask task passes the scheduler: no password in it (a
        # LocalCluster of this run gets it in its workers' environment, a remote worker needs its own)
        url = shareable_url(eng) if client is not None else eng.url.render_as_string(hide_password=False)
        work = [GroupTask(group=g, families=families, profile=prof, grouped=grouped, url=url, scope=caller,
                          operations=operations) for g in groups]
        bar = _bar(len(refs), progress)
        try:
            for group, found in _run_groups(work, engine=eng, pool=pool, client=client):
                if ledger_result is not None:
                    # the ledger as the groups come: each group's compounds are closed out on their own findings
                    ledger_result += ledger_writer.record(found, engine=eng, run_id=run_id, compounds=list(group.refs),
                                                          rules=family_rules(families), include_pass=include_pass,
                                                          user=user)
                parts.append(found)
                bar.update(len(group.refs))
        finally:
            bar.close()
        findings = _sorted(_concat(parts))
        if pool is not None:  # every group is back: the workers exit on their own, the run need not wait for it
            pool.shutdown(wait=False)
            pool = None
        counts = count_findings(findings)
        duration = time.perf_counter() - started
        with eng.begin() as conn:
            conn.execute(
                text("UPDATE check_runs SET status = 'done', finished_at = now(), progress = 1, "
                     "counts = CAST(:c AS jsonb), duration_s = :d WHERE id = :id"),
                {"c": _json({"rules": counts, "compounds": len(refs),
                             "ledger": ledger_result.as_dict() if ledger_result else None}),
                 "d": duration, "id": run_id},
            )
    except BaseException as exc:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
            pool = None
        with eng.begin() as conn:
            conn.execute(
                text("UPDATE check_runs SET status = 'failed', finished_at = now(), error = :e, duration_s = :d "
                     "WHERE id = :id"),
                {"e": repr(exc)[:4000], "d": time.perf_counter() - started, "id": run_id},
            )
        raise
    finally:
        if pool is not None:
            pool.shutdown()
        if connecting is not None and client is None:  # the run failed before it needed the client
            try:
                client, own_client = connecting.result()
            except Exception:  # noqa: BLE001 - the run's own error is the one to raise
                client = None
        if own_client:
            _close_client(client)
    return CheckResult(findings=findings, run_id=run_id, counts=counts, duration_s=duration, profile=prof.name,
                       profile_version=prof.version, scope=scope, compounds=refs, ledger=ledger_result)


def _dask_client(address: Any, *, password: str | None = None) -> tuple[Any, bool]:
    """(client, whether this run owns it) for a Dask address: a connected Client as it is; ``local`` or
    ``local:N`` a LocalCluster of N worker processes (one thread each; default 2) started for the run, with the
    database `password` in their environment (PGPASSWORD: tasks carry none); a scheduler address
    (``tcp://host:8786``) a new Client of it."""
    if hasattr(address, "submit"):
        return address, False
    from distributed import Client, LocalCluster  # heavy optional dependency, only for Dask runs

    if isinstance(address, str) and (address == "local" or address.startswith("local:")):
        import dask  # heavy optional dependency, only for Dask runs
        from distributed.utils import get_mp_context

        n = int(address.split(":", 1)[1]) if ":" in address else 2
        # workers forked from a server that imported distributed and the checks once (as the pool's are), not
        # spawned interpreters that each import both before their first group
        with dask.config.set({"distributed.worker.multiprocessing-method": "forkserver"}):
            # (Dask's context sets its own preload list on its first use: this one replaces it)
            get_mp_context().set_forkserver_preload(forkserver.preload(FAMILIES, dask=True))
            cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None,
                                   env={"PGPASSWORD": password} if password else None)
        client = Client(cluster)
        client.run(gc.freeze)  # as the pool's initializer: the collection after each group skips the imports
        return client, True
    return Client(address), True


def _close_client(client: Any) -> None:
    """Close a client this run made, and the LocalCluster it started (if any)."""
    cluster = getattr(client, "cluster", None)
    client.close()
    if cluster is not None:
        cluster.close()


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


__all__ = [
    "FAMILIES", "FAMILY_CHECKS", "FINDING_COLUMNS", "SKIPPED_COLUMNS", "CheckResult", "check_columns",
    "read_check_layers", "families_present", "MissingChecksError", "PartitionError",
    "check_context", "count_findings", "family_rules", "group_size", "multi_compound", "plan_tasks", "process_pool",
    "read_scope", "stream_scope",
    "resolve_families", "run_checks", "run_contexts", "run_on_frames", "run_tasks", "start_tasks",
]
