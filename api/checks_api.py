"""Check runs in the background (POST /checks/runs → 202) and the hazards ledger as GeoJSON (workflow: hazards_api)."""

from __future__ import annotations

import logging
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy import text

from api.auth import CHECK_ROLES, CurrentUser, Principal, require_role
from api.database import db_engine
from api.errors import BadRequest, Forbidden, NotFound
from api.features import parse_items_query
from api.ogc import check_format, items_parameters, items_response
from gis import jobs
from gis import scope as gis_scope
from gis.campaign.lifecycle import STATES
from gis.config import CheckSettings
from gis.layers import LAYERS

log = logging.getLogger("firelane.api")
router = APIRouter(tags=["checks and hazards ledger"])


# --- check runs -------------------------------------------------------------------------------------------------


class RunRequest(BaseModel):
    scope: Literal["street", "compound", "all"] = "all"
    street: str | None = Field(default=None, max_length=12)
    compound: str | None = Field(default=None, max_length=200)
    profile: str | None = Field(default=None, max_length=60, pattern=r"^[\w.\-]+$")


_RUN_COLUMNS = ("id, status, progress, started_at, finished_at, duration_s, profile, profile_version, scope, "
                "counts, started_by, error, job_id")


def _run_doc(row: Any) -> dict[str, Any]:
    return {
        "id": row.id, "status": row.status, "progress": row.progress,
        "started_at": row.started_at.isoformat() if row.started_at else None,
        "finished_at": row.finished_at.isoformat() if row.finished_at else None,
        "duration_s": row.duration_s, "profile": row.profile, "profile_version": row.profile_version,
        "scope": row.scope, "counts": row.counts, "started_by": row.started_by, "error": row.error,
        "job": row.job_id,
    }


def _authorise_scope(principal: Principal, body: RunRequest) -> dict[str, str]:
    require_role(principal, CHECK_ROLES, "运行检查 start check runs")
    scope: dict[str, str] = {}
    if body.scope == "street":
        if not body.street:
            raise BadRequest("scope=street 需要 street needs a street code")
        scope = {"street": body.street}
    elif body.scope == "compound":
        if not body.compound:
            raise BadRequest("scope=compound 需要 compound needs a compound ref")
        scope = {"compound": body.compound}
    if principal.scoped:
        if body.scope == "all":
            raise Forbidden("街道办只能检查本辖区 a street office may only check its own streets")
        if body.scope == "street" and body.street not in principal.street_codes:
            raise NotFound(f"没有街道 no street {body.street!r}")
        if body.scope == "compound":
            with db_engine().connect() as conn:
                code = conn.execute(text("SELECT street_code FROM compounds WHERE ref = :r"),
                                    {"r": body.compound}).scalar()
            if code not in principal.street_codes:
                raise NotFound(f"没有小区 no compound {body.compound!r}")
    return scope


@router.post("/checks/runs", status_code=202, summary="Queue a check run as a persisted job (202 + run id)")
def start_run(body: RunRequest, principal: CurrentUser) -> JSONResponse:
    scope = _authorise_scope(principal, body)
    profile = body.profile or CheckSettings().profile
    run_id, job_id = jobs.start_check_run(scope, profile=profile, user=principal.username, engine=db_engine())
    return JSONResponse({"id": run_id, "job": job_id, "status": "queued"}, status_code=202,
                        headers={"Location": f"/checks/runs/{run_id}"})


def _runs_scope(principal: Principal) -> tuple[str, dict[str, Any]]:
    """The caller's runs (gis.scope: those of its streets or compounds, and the district-wide ones)."""
    where, params = gis_scope.filter_sql("check_runs", principal.db_scope)
    return (f" WHERE {where}" if where else ""), params


@router.get("/checks/runs", summary="Recent check runs")
def list_runs(principal: CurrentUser) -> dict[str, Any]:
    where, params = _runs_scope(principal)
    jobs.reap(engine=db_engine())  # a run whose worker was killed reads as failed, whoever serves the read
    with db_engine().connect() as conn:
        rows = conn.execute(text(f"SELECT {_RUN_COLUMNS} FROM check_runs t{where} ORDER BY id DESC LIMIT 100"),
                            params).all()
    return {"runs": [_run_doc(r) for r in rows]}


@router.get("/checks/runs/{run_id}", summary="One check run: status, progress, counts")
def get_run(run_id: Annotated[int, Path(ge=1, le=2**62)], principal: CurrentUser) -> dict[str, Any]:
    where, params = _runs_scope(principal)
    clause = (where + " AND" if where else " WHERE") + " id = :id"
    jobs.reap(engine=db_engine())
    with db_engine().connect() as conn:
        row = conn.execute(text(f"SELECT {_RUN_COLUMNS} FROM check_runs t{clause}"), {**params, "id": run_id}).first()
    if row is None:
        raise NotFound(f"没有检查批次 no check run {run_id}")
    return _run_doc(row)


# --- hazards ledger ---------------------------------------------------------------------------------------------

HAZARD_FILTERS = ("street", "department", "severity_min")


@router.get("/hazards", summary="The hazards ledger as GeoJSON (filters: rule, verdict, status, street, "
                                "department, severity_min and any hazards property)",
            openapi_extra={"parameters": [
                *items_parameters(),
                {"name": "rule", "in": "query", "required": False, "schema": {"type": "string"}},
                {"name": "verdict", "in": "query", "required": False,
                 "schema": {"type": "string", "enum": ["fail", "pass", "cannot_judge"]}},
                {"name": "status", "in": "query", "required": False,
                 "schema": {"type": "string", "enum": list(STATES)}},
                {"name": "street", "in": "query", "required": False, "schema": {"type": "string"}},
                {"name": "department", "in": "query", "required": False, "schema": {"type": "string"}},
                {"name": "severity_min", "in": "query", "required": False, "schema": {"type": "number"}},
            ]})
async def hazards(request: Request, principal: CurrentUser) -> Response:
    layer = LAYERS["hazards"]
    html = check_format(request)
    query = request.query_params
    q = parse_items_query(layer, query, extra_params=HAZARD_FILTERS)
    if query.get("street"):
        in_street, binds = gis_scope.streets_filter("hazards", [query["street"]], key="h")
        q.where.append(in_street)
        q.params.update(binds)
    if query.get("department"):
        q.where.append("strpos(t.department, :h_dept) > 0")
        q.params["h_dept"] = query["department"].replace("\x00", "")
    if query.get("severity_min"):
        try:
            q.params["h_sev"] = float(query["severity_min"])
        except ValueError:
            raise BadRequest("severity_min 应为数字 severity_min must be a number") from None
        if q.params["h_sev"] != q.params["h_sev"]:
            raise BadRequest("severity_min 应为数字 severity_min must be a number")
        q.where.append("t.severity >= :h_sev")
    return await items_response(request, layer, q, principal, html=html)
