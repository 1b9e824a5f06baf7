"""The rectification workflow over HTTP: work lists, one hazard with its history, assign, transition, fix on the spot."""

from __future__ import annotations

import json
from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Path, Query
from fastapi.responses import Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from api.auth import CurrentUser, Principal
from api.changefeed import changed
from api.database import db_engine, hot_reads, read_connection
from api.errors import BadRequest
from api.features import scope_sql
from api.photos_api import actor_of
from gis.campaign import lifecycle as lc
from gis.campaign import workflow as wf
from gis.campaign.departments import DEPARTMENTS
from gis.campaign.worklist_export import worklist_csv
from gis.db import transaction
from gis.layers import LAYERS

router = APIRouter(tags=["hazard workflow"])
HazardId = Annotated[int, Path(ge=1, le=2**62, description="hazard id")]
IfMatch = Annotated[str | None, Header(description='the hazard\'s version as seen ("N" or W/"N"): a hazard changed '
                                                   "since is refused with 412 and its current state")]


def scope_of(principal: Principal) -> wf.Scope:
    """The caller's jurisdiction over hazards: the one call site of the API's scoped query path."""
    clause, params = scope_sql(LAYERS["hazards"], principal)
    return clause, params


def _version(if_match: str | None, body_version: int | None) -> int | None:
    if if_match and if_match.strip() != "*":
        tag = if_match.split(",")[0].strip().removeprefix("W/").strip('"')
        try:
            return int(tag)
        except ValueError:
            raise BadRequest(f"If-Match 应为隐患版本号 If-Match must be the hazard's version, got {tag!r}") from None
    return body_version


class TransitionBody(BaseModel):
    to: lc.State = Field(description="the state to move to (GET /hazards/lifecycle)")
    note: str | None = Field(default=None, max_length=lc.MAX_NOTE, description="the reason (reopen, dismiss)")
    department: str | None = Field(default=None, max_length=lc.MAX_DEPARTMENT,
                                   description="assigned: one of /hazards/departments")
    unit: str | None = Field(default=None, max_length=lc.MAX_UNIT, description="assigned: the responsible unit")
    person: str | None = Field(default=None, max_length=lc.MAX_PERSON)
    deadline: date | None = Field(default=None, description="assigned: not before today (default: the profile's)")
    photos: list[int] = Field(default_factory=list, max_length=lc.MAX_PHOTOS, description="rectified: after-photos")
    version: int | None = Field(default=None, description="the version seen (or send If-Match)")


class AssignBody(BaseModel):
    department: str = Field(max_length=lc.MAX_DEPARTMENT)
    unit: str = Field(max_length=lc.MAX_UNIT)
    person: str | None = Field(default=None, max_length=lc.MAX_PERSON)
    deadline: date | None = None
    note: str | None = Field(default=None, max_length=lc.MAX_NOTE)
    version: int | None = None


class FixBody(BaseModel):
    before: list[int] = Field(min_length=1, max_length=lc.MAX_PHOTOS, description="photo ids before the fix")
    after: list[int] = Field(min_length=1, max_length=lc.MAX_PHOTOS, description="photo ids after the fix")
    note: str | None = Field(default=None, max_length=lc.MAX_NOTE)
    version: int | None = None


def _move(principal: Principal, hazard_id: int, run: Any) -> dict[str, Any]:
    with transaction(user=principal.username, engine=db_engine()) as conn:
        out = run(conn)
    changed("hazards")
    return out


@router.get("/hazards/lifecycle", summary="The hazard life cycle: states with zh/en labels, sets, transitions and "
                                          "the roles that may take each, required fields")
def lifecycle_doc() -> dict[str, Any]:
    return {
        "states": [{"id": s, "zh": lc.label(s, "zh"), "en": lc.label(s, "en")} for s in lc.STATES],
        "needs_work": sorted(lc.NEEDS_WORK), "unresolved": sorted(lc.UNRESOLVED), "resolved": sorted(lc.RESOLVED),
        "transitions": [{"from": f, "to": t, "roles": sorted(r)} for (f, t), r in lc.TRANSITIONS.items()],
        "required": {k: list(v) for k, v in lc.REQUIRED.items()},
        "evidence": list(lc.EVIDENCE),
    }


@router.get("/hazards/departments", summary="Departments a hazard can be assigned to")
def departments(principal: CurrentUser) -> dict[str, Any]:
    return {"departments": [{"id": k, "zh": k, "en": v} for k, v in DEPARTMENTS.items()]}


@router.get("/hazards/worklist", summary="Hazards in the life cycle with filters (data gaps excluded), soonest "
                                         "deadline first; JSON or CSV")
async def worklist(
    principal: CurrentUser,
    status: Annotated[list[str] | None, Query(description="one or more states")] = None,
    department: Annotated[str | None, Query(max_length=lc.MAX_DEPARTMENT)] = None,
    unit: Annotated[str | None, Query(max_length=lc.MAX_UNIT)] = None,
    street: Annotated[str | None, Query(max_length=12)] = None,
    compound: Annotated[str | None, Query(max_length=200)] = None,
    overdue: bool | None = None,
    family: Annotated[str | None, Query(max_length=40, description="rule family (lanes, parking, ..., manual)")]
    = None,
    rule: Annotated[str | None, Query(max_length=40)] = None,
    severity_min: Annotated[float | None, Query(ge=0, le=1e6)] = None,
    limit: Annotated[int, Query(ge=1, le=wf.MAX_PAGE)] = 100,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    f: Literal["json", "csv"] = "json",
    count: Annotated[bool, Query(description="also count every match (numberMatched; one more query)")] = False,
) -> Any:
    flt = wf.HazardFilter(status=tuple(status or ()), department=department, unit=unit, street=street,
                          compound=compound, overdue=overdue, family=family, rule=rule, severity_min=severity_min)
    # read on the event loop's async pool (api.aio): no worker-thread hop, no pool ping, the caller's scope set on
    # the session (row-level security) as for every read, and the statement prepared once per connection
    pool = await hot_reads()
    where = scope_of(principal)
    sql, params = wf.list_sql(flt, scope=where, limit=limit, offset=offset, role=principal.role)
    doc, n = await pool.one(sql, params)
    full = n == limit
    if count and full:
        sql, params = wf.count_sql(flt, scope=where)
        (matched,) = await pool.one(sql, params)
    else:
        matched = None if full else offset + n
    if f == "csv":
        body = await run_in_threadpool(lambda: worklist_csv(json.loads(doc)))  # up to MAX_PAGE rows: off the loop
        return Response(body, media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": 'attachment; filename="hazards.csv"'})
    # the page's rows are JSON made by PostgreSQL: spliced in as they are
    tail = json.dumps({"numberReturned": n, "numberMatched": matched, "limit": limit, "offset": offset})
    return Response('{"hazards":' + doc + "," + tail[1:], media_type="application/json")


def json_response(doc: Any, headers: dict[str, str] | None = None) -> Response:
    """JSON straight from json.dumps: the rows are plain values already (no per-value jsonable_encoder walk)."""
    return Response(json.dumps(doc, ensure_ascii=False, default=str, separators=(",", ":")),
                    media_type="application/json", headers=headers)


@router.get("/hazards/workload", summary="Per department, responsible unit or street: open, overdue, due this "
                                         "week, awaiting verification, resolved")
def workload(principal: CurrentUser, by: Literal["department", "street", "unit"] = "department",
             street: Annotated[str | None, Query(max_length=12)] = None) -> dict[str, Any]:
    with read_connection() as conn:
        return {"by": by, "rows": wf.workload(conn, by=by, scope=scope_of(principal), street=street)}


@router.get("/hazards/data-gaps", summary="The complete-the-data queue: cannot_judge findings (missing datum, "
                                          "feature), never counted as open hazards")
def data_gaps(principal: CurrentUser, compound: Annotated[str | None, Query(max_length=200)] = None,
              limit: Annotated[int, Query(ge=1, le=wf.MAX_PAGE)] = 100,
              offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0) -> dict[str, Any]:
    with read_connection() as conn:
        return {"gaps": wf.data_gaps(conn, scope=scope_of(principal), compound=compound, limit=limit,
                                     offset=offset)}


@router.get("/hazards/{hazard_id:int}", summary="One hazard with its events (history)")
def show(hazard_id: HazardId, principal: CurrentUser) -> Response:
    with read_connection() as conn:
        doc = wf.show(conn, hazard_id, scope=scope_of(principal), role=principal.role)
    return json_response(doc, headers={"ETag": f'"{doc["version"]}"'})


@router.get("/hazards/{hazard_id:int}/events", summary="A hazard's history: its append-only events, oldest first")
def history(hazard_id: HazardId, principal: CurrentUser) -> dict[str, Any]:
    with read_connection() as conn:
        wf.show(conn, hazard_id, scope=scope_of(principal))  # 404 outside the jurisdiction
        return {"events": wf.events(conn, [hazard_id])}


@router.post("/hazards/{hazard_id:int}/transition", summary="Move a hazard along its life cycle (one event; 409 names the "
                                                        "allowed next states, 412 when someone moved it first)")
def transition(hazard_id: HazardId, body: TransitionBody, principal: CurrentUser,
               if_match: IfMatch = None) -> dict[str, Any]:
    change = lc.Change(note=body.note, department=body.department, unit=body.unit, person=body.person,
                       deadline=body.deadline, photos=tuple(body.photos))
    version = _version(if_match, body.version)
    return _move(principal, hazard_id, lambda conn: wf.transition(
        conn, hazard_id, body.to.value, actor=actor_of(principal), change=change, scope=scope_of(principal),
        expected_version=version))


@router.post("/hazards/{hazard_id:int}/assign", summary="交办: assign to a department and responsible unit with a "
                                                    "deadline (default: the profile's for the rule)")
def assign(hazard_id: HazardId, body: AssignBody, principal: CurrentUser, if_match: IfMatch = None) -> dict[str, Any]:
    version = _version(if_match, body.version)
    return _move(principal, hazard_id, lambda conn: wf.assign(
        conn, hazard_id, actor=actor_of(principal), department=body.department, unit=body.unit, person=body.person,
        deadline=body.deadline, note=body.note, scope=scope_of(principal), expected_version=version))


@router.post("/hazards/{hazard_id:int}/fix", summary="边查边改: found and fixed on the spot, with before and after photos "
                                                 "(one step to rectified)")
def fix(hazard_id: HazardId, body: FixBody, principal: CurrentUser, if_match: IfMatch = None) -> dict[str, Any]:
    version = _version(if_match, body.version)
    return _move(principal, hazard_id, lambda conn: wf.fix_on_the_spot(
        conn, hazard_id, actor=actor_of(principal), before=body.before, after=body.after, note=body.note,
        scope=scope_of(principal), expected_version=version))
