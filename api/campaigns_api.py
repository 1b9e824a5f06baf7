"""The campaign over HTTP: campaigns and progress, spot-check draws and results, reports as persisted jobs, one
compound's file, the jobs themselves, and the campaign page."""

from __future__ import annotations

import hashlib
import json
import tempfile
from datetime import date
from pathlib import Path as FsPath
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy import text

from api.auth import CurrentUser, Principal, optional_principal, require_role
from api.database import db_engine
from api.errors import Forbidden, NotFound, Unauthorized
from api.photos_api import actor_of
from api.reports_api import Text, Uploads, uploads_of
from api.web_routes import _html, _preferences
from gis import jobs
from gis.campaign import campaigns as cp
from gis.campaign import funding
from gis.campaign import spotchecks as sc
from gis.campaign.deadlines import local_today
from gis.campaign.focus import ITEM_CODES
from gis.campaign.progress import progress
from gis.config import home_settings

router = APIRouter(tags=["campaign"])
Id = Annotated[int, Path(ge=1, le=2**62)]
AsOf = Annotated[date | None, Query(alias="date", description="as of this date (default: today, Asia/Shanghai)")]
Streets = Annotated[list[str] | None, Query(description="only these street codes")]
#: Who runs campaigns: the district safety office (admin) creates them; the fire brigade and admins draw and
#: record spot checks (区住建局/区消防救援大队牵头抽查); street offices record their inspections and read progress.
MANAGERS = frozenset({"admin"})
SPOT_CHECKERS = sc.SPOT_CHECKERS
INSPECTORS = frozenset({"admin", "street_office", "fire_brigade"})
READERS = frozenset({"admin", "planner", "street_office", "fire_brigade", "traffic_brigade", "demolition", "viewer"})


def _streets(principal: Principal) -> list[str] | None:
    """The streets a caller's reads are limited to (None: all)."""
    return list(principal.street_codes) if principal.scoped else None


def _readable(principal: Principal) -> None:
    require_role(principal, READERS, "查看整治行动 read campaigns")


class StageBody(BaseModel):
    code: str = Field(max_length=40)
    name_zh: str | None = Field(default=None, max_length=100)
    name_en: str | None = Field(default=None, max_length=100)
    starts_on: date
    ends_on: date
    report_due: date | None = None
    produces: list[str] = Field(default_factory=list, max_length=20)


class CampaignBody(BaseModel):
    preset: Literal["changle-2022", "yinzhou-2020"] | None = None
    year: int | None = Field(default=None, ge=2000, le=2100)
    name: str | None = Field(default=None, max_length=200)
    streets: list[str] = Field(default_factory=list, max_length=500)
    pilot_streets: list[str] | None = Field(default=None, max_length=50)
    stages: list[StageBody] | None = Field(default=None, max_length=50)
    spot_check_rate: float | None = Field(default=None, description="0..1 (refused outside)")
    cost_shares: dict[str, float] | None = None


@router.get("/campaigns", summary="整治行动 campaigns")
def list_campaigns(principal: CurrentUser) -> dict[str, Any]:
    _readable(principal)
    return {"campaigns": [c.as_dict() for c in cp.list_campaigns(engine=db_engine())]}


@router.post("/campaigns", status_code=201, summary="Create a campaign from a preset or stages (admin)")
def create_campaign(body: CampaignBody, principal: CurrentUser) -> JSONResponse:
    require_role(principal, MANAGERS, "创建整治行动 create campaigns")
    stages = cp.parse_stages([s.model_dump(mode="json") for s in body.stages]) if body.stages else None
    settings: dict[str, Any] = {}
    if body.spot_check_rate is not None:
        settings["spot_check_rate"] = body.spot_check_rate
    if body.cost_shares is not None:
        settings["cost_shares"] = body.cost_shares
    cid = cp.create_campaign(preset_key=body.preset, year=body.year, name=body.name, stages=stages,
                             streets=body.streets, pilot_streets=body.pilot_streets, settings=settings,
                             user=principal.username, engine=db_engine())
    return JSONResponse(cp.get_campaign(cid, engine=db_engine()).as_dict(), status_code=201,
                        headers={"Location": f"/campaigns/{cid}"})


@router.get("/campaigns/{campaign_id}", summary="One campaign: stages, milestones, current stage, due next")
def get_campaign(campaign_id: Id, principal: CurrentUser, day: AsOf = None) -> dict:
    _readable(principal)
    return cp.get_campaign(campaign_id, engine=db_engine()).as_dict(today=day or local_today())


@router.get("/campaigns/{campaign_id}/progress", summary="Progress per street office against the current stage")
def get_progress(campaign_id: Id, principal: CurrentUser, day: AsOf = None,
                 street: Streets = None) -> dict[str, Any]:
    _readable(principal)
    mine = _streets(principal)
    only = [s for s in (street or mine or []) if mine is None or s in mine] if (street or mine) else None
    return progress(campaign_id, today=day, streets=only, engine=db_engine())


class InspectionBody(BaseModel):
    compound: str = Field(max_length=200)
    kind: Literal["self", "inspection", "recheck"]
    on_date: date | None = None
    unit: str | None = Field(default=None, max_length=200)
    inspector: str | None = Field(default=None, max_length=200)
    note: str | None = Field(default=None, max_length=2000)


@router.post("/campaigns/{campaign_id}/inspections", status_code=201,
             summary="Record a self-inspection, inspection or re-inspection of a compound")
def post_inspection(campaign_id: Id, body: InspectionBody, principal: CurrentUser) -> dict[str, Any]:
    require_role(principal, INSPECTORS, "记录检查 record inspections")
    with db_engine().connect() as conn:
        street = conn.execute(text("SELECT street_code FROM compounds WHERE ref = :r"), {"r": body.compound}).scalar()
    if not principal.in_scope(street):
        raise NotFound(f"没有小区 no compound {body.compound!r}")
    iid = cp.record_inspection(campaign_id, compound=body.compound, kind=body.kind,
                               on_date=body.on_date or local_today(), unit=body.unit, inspector=body.inspector,
                               note=body.note, user=principal.username, engine=db_engine())
    return {"id": iid}


@router.get("/campaigns/{campaign_id}/plans",
            summary="一小区一策 (measures, cost split, priority, year), the 维保金 gate and renovation routing")
def get_plans(campaign_id: Id, principal: CurrentUser, day: AsOf = None) -> dict[str, Any]:
    _readable(principal)
    mine = _streets(principal)
    with db_engine().connect() as conn:
        campaign = cp.get_campaign(campaign_id, conn=conn)
        plans = funding.compound_plans(conn, campaign, streets=mine)
        gate = funding.warranty_gate(conn, campaign, today=day or local_today(), streets=mine)
        # the renovation plan is the district's (区住建局): street offices see their plans and gate only
        routes = funding.renovation_routes(conn, campaign) if mine is None else []
    return {"plans": plans, "warranty": gate, "renovation": routes,
            "cost_shares": campaign.settings["cost_shares"]}


class RenovationBody(BaseModel):
    year: int = Field(ge=2000, le=2100)
    compounds: list[str] = Field(min_length=1, max_length=5000)
    route: bool = True


@router.post("/campaigns/{campaign_id}/renovation",
             summary="Put compounds in a year's old-compound renovation plan and route their hazards (admin)")
def post_renovation(campaign_id: Id, body: RenovationBody, principal: CurrentUser) -> dict[str, Any]:
    require_role(principal, MANAGERS, "老旧小区改造计划 renovation plans")
    funding.set_renovation(campaign_id, year=body.year, compounds=body.compounds, engine=db_engine())
    moved = funding.route_renovation(campaign_id, actor=actor_of(principal),
                                     engine=db_engine()) if body.route else []
    return {"routed": moved}


# --- spot checks --------------------------------------------------------------------------------------------------


class RosterEntry(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    unit: str = Field(default="", max_length=200)
    street: str = Field(default="", max_length=100)


class DrawBody(BaseModel):
    roster: list[RosterEntry] = Field(min_length=1, max_length=sc.MAX_ROSTER_ROWS)
    rate: float | None = Field(default=None, description="0..1; default the campaign's (0.1)")
    seed: int | None = Field(default=None, ge=0, lt=2**63)


@router.post("/campaigns/{campaign_id}/spotchecks", status_code=201,
             summary="Draw double-random spot checks (seed, candidates and roster recorded)")
def post_draw(campaign_id: Id, body: DrawBody, principal: CurrentUser) -> dict[str, Any]:
    require_role(principal, SPOT_CHECKERS, "抽查抽签 draw spot checks")
    rows = [["name", "unit", "street"]] + [[p.name, p.unit, p.street] for p in body.roster]
    roster = sc.parse_roster(rows)
    sha = hashlib.sha256(json.dumps([p.as_dict() for p in roster], ensure_ascii=False,
                                    sort_keys=True).encode()).hexdigest()
    return sc.draw(campaign_id, roster=roster, roster_sha256=sha, rate=body.rate, seed=body.seed,
                   user=principal.username, engine=db_engine())


@router.get("/campaigns/{campaign_id}/spotchecks", summary="The campaign's draws and their checks with results")
def get_draws(campaign_id: Id, principal: CurrentUser) -> dict[str, Any]:
    _readable(principal)
    return {"draws": sc.within(sc.list_draws(campaign_id, engine=db_engine()), _streets(principal))}


@router.get("/spotchecks/draws/{draw_id}/verify", summary="Re-run a draw from its recorded seed: does it reproduce?")
def verify_draw(draw_id: Id, principal: CurrentUser) -> dict[str, Any]:
    _readable(principal)
    same, again = sc.reproduce(draw_id, engine=db_engine())
    streets = _streets(principal)
    mine = again if streets is None else [c for c in again if c["street"] in set(streets)]
    return {"draw": draw_id, "reproduces": same, "checks": mine}


class ResultBody(BaseModel):
    compound: str = Field(max_length=200)
    item: Literal[ITEM_CODES]  # type: ignore[valid-type]  # a Literal of the codes, made at runtime (pydantic)
    result: Literal["pass", "fail"]
    note: str | None = Field(default=None, max_length=2000)


@router.post("/spotchecks/{check_id}/results", status_code=201,
             summary="Record one focus item of a spot check (a failure reopens or files hazards)")
def post_result(check_id: Id, body: ResultBody, principal: CurrentUser) -> dict[str, Any]:
    require_role(principal, SPOT_CHECKERS, "记录抽查结果 record spot-check results")
    return sc.record(check_id, compound=body.compound, item=body.item, result=body.result, note=body.note,
                     actor=actor_of(principal), engine=db_engine())


@router.post("/spotchecks/{check_id}/results/form", status_code=201,
             summary="Record one focus item of a spot check as a multipart form, with photos of a failure")
def post_result_form(
    check_id: Id,
    principal: CurrentUser,
    compound: Annotated[str, Form(max_length=200)],
    item: Annotated[Literal[ITEM_CODES], Form()],  # type: ignore[valid-type]  # a Literal made at runtime
    result: Annotated[Literal["pass", "fail"], Form()],
    note: Text = None,
    photo: Uploads = None,
) -> dict[str, Any]:
    """The same record as `post_result`, from the page's form: the photos (what the inspectors found) go with the
    hazards a failed item reopens or files, in the same transaction as the result."""
    require_role(principal, SPOT_CHECKERS, "记录抽查结果 record spot-check results")
    photos = [u.data for u in uploads_of(photo, "before", field="photo")]
    return sc.record(check_id, compound=compound, item=item, result=result, note=(note or "").strip() or None,
                     photos=photos, actor=actor_of(principal), engine=db_engine())


# --- reports as jobs ----------------------------------------------------------------------------------------------


class ReportBody(BaseModel):
    kind: Literal["forms", "stage", "summary", "plans", "compound_files"]
    street: str | None = Field(default=None, max_length=12)
    stage: str | None = Field(default=None, max_length=40)
    day: date | None = Field(default=None, alias="date")
    format: Literal["pdf", "xlsx", "html"] = "pdf"


_SUFFIX = {"forms": ".zip", "plans": ".xlsx", "compound_files": ".zip"}


def reports_dir() -> FsPath:
    return home_settings().home / "reports"


@router.post("/campaigns/{campaign_id}/reports", status_code=202,
             summary="Queue a report (forms ZIP, stage report, summary, plans, every compound file) as a job")
def post_report(campaign_id: Id, body: ReportBody, principal: CurrentUser) -> JSONResponse:
    _readable(principal)
    mine = _streets(principal)
    if mine is not None:
        if body.kind in ("summary", "plans") or body.street not in mine:
            raise Forbidden("街道办只能生成本辖区的报表 a street office reports on its own streets only")
    cp.get_campaign(campaign_id, engine=db_engine())
    suffix = _SUFFIX.get(body.kind, f".{body.format}")
    params = {"campaign": campaign_id, "kind": body.kind, "street": body.street, "stage": body.stage,
              "date": body.day.isoformat() if body.day else None,
              "streets": [body.street] if body.street else (mine or []), "workers": 2}
    kind = "compound_files" if body.kind == "compound_files" else "report"
    job_id = jobs.submit(kind, params, user=principal.username, engine=db_engine())
    path = reports_dir() / str(job_id) / f"{body.kind}-{campaign_id}{suffix}"
    with db_engine().begin() as conn:
        conn.execute(text("UPDATE jobs SET params = params || jsonb_build_object('path', CAST(:p AS text)) "
                          "WHERE id = :id"), {"p": str(path), "id": job_id})
    return JSONResponse({"job": job_id, "status": "queued"}, status_code=202, headers={"Location": f"/jobs/{job_id}"})


def _own_job(job_id: int, principal: Principal) -> jobs.Job:
    jobs.reap(engine=db_engine())
    try:
        job = jobs.get(job_id, engine=db_engine())
    except jobs.UnknownJob:
        raise NotFound(f"没有任务 no job {job_id}") from None
    if principal.role != "admin" and job.created_by != principal.username:
        raise NotFound(f"没有任务 no job {job_id}")
    return job


@router.get("/jobs/{job_id}", summary="A persisted job: status, progress, result (its creator or an admin)")
def get_job(job_id: Id, principal: CurrentUser) -> dict[str, Any]:
    doc = _own_job(job_id, principal).as_dict()
    if doc["status"] == "succeeded" and doc["result"] and doc["result"].get("path"):
        doc["download"] = f"/jobs/{job_id}/download"
    return doc


@router.get("/jobs/{job_id}/download", summary="The file a succeeded report job wrote")
def download(job_id: Id, principal: CurrentUser) -> FileResponse:
    job = _own_job(job_id, principal)
    path = FsPath((job.result or {}).get("path") or "")
    if job.status != "succeeded" or not path.is_file() or not path.resolve().is_relative_to(reports_dir().resolve()):
        raise NotFound(f"任务 {job_id} 没有可下载的文件 job {job_id} has no file to download")
    media = {".pdf": "application/pdf", ".zip": "application/zip", ".html": "text/html; charset=utf-8",
             ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}
    return FileResponse(path, media_type=media.get(path.suffix, "application/octet-stream"), filename=path.name)


@router.get("/compounds/{ref}/file", summary="一小区一档: one compound's file as PDF (default) or HTML")
def compound_file(ref: str, principal: CurrentUser, f: Literal["pdf", "html"] = "pdf") -> Response:
    from web.documents import (  # noqa: PLC0415 (matplotlib and WeasyPrint: loaded on the first file)
        compound_html,
        html_to_pdf,
    )

    _readable(principal)
    with db_engine().connect() as conn:
        street = conn.execute(text("SELECT street_code FROM compounds WHERE ref = :r"), {"r": ref}).scalar()
        if street is None or not principal.in_scope(street):
            raise NotFound(f"没有小区 no compound {ref!r}")
        html = compound_html(conn, ref)
    if f == "html":
        return HTMLResponse(html, headers={"Content-Security-Policy": "default-src 'none'; img-src data:; "
                                                                      "style-src 'unsafe-inline'"})
    with tempfile.TemporaryDirectory() as tmp:
        out = FsPath(tmp) / "file.pdf"
        html_to_pdf(html, out)
        data = out.read_bytes()
    return Response(data, media_type="application/pdf",
                    headers={"Content-Disposition": "attachment; filename=compound.pdf"})


# --- the page -----------------------------------------------------------------------------------------------------


@router.get("/map/campaigns/{campaign_id}", response_class=HTMLResponse, include_in_schema=False)
def campaign_page(campaign_id: Id, request: Request, day: AsOf = None) -> Response:
    from web.campaign_page import render_campaign_page  # noqa: PLC0415 (matplotlib: on the first page)

    try:
        principal = optional_principal(request)
    except Unauthorized:
        principal = None
    if principal is None:
        return RedirectResponse(f"/login?next=/map/campaigns/{campaign_id}", status_code=303)
    _readable(principal)
    _preferences(request)  # the page's language (?lang=, then the cookie), remembered by _html
    html = render_campaign_page(campaign_id, streets=_streets(principal), role=principal.role, today=day,
                                engine=db_engine())
    return _html(request, html)
