"""Public complaints (举报投诉): the unauthenticated form and API, the tracker, and the street office's triage."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Path, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from api.auth import CurrentUser, optional_principal
from api.database import db_engine
from api.errors import Forbidden, Unauthorized
from api.photos_api import actor_of, read_upload
from api.web_routes import _headers, _login_redirect
from gis.campaign import complaints as cp
from gis.campaign import reports
from gis.campaign.actors import TRIAGERS, Actor
from gis.campaign.locate import point, to_stored
from gis.config import complaint_settings
from gis.db import get_engine, transaction
from web import field_pages
from web.pages import OutOfJurisdiction

router = APIRouter(tags=["complaints"])
Id = Annotated[int, Path(ge=1, le=2**62)]


def client_address(request: Request) -> str:
    """The submitter's address as the server sees it (X-Forwarded-For is not trusted: anyone can write it)."""
    return request.client.host if request.client else "unknown"


@router.get("/complaints/new", response_class=HTMLResponse, summary="举报投诉 The public complaint form")
def complaint_form() -> HTMLResponse:
    return HTMLResponse(field_pages.complaint_page(engine=get_engine()), headers=_headers())


@router.post("/complaints", status_code=201, summary="Submit a complaint (no sign-in; rate-limited per address)")
async def submit(
    request: Request,
    category: Annotated[str, Form(max_length=40)],
    description: Annotated[str, Form(max_length=20_000)],
    lon: Annotated[float, Form()],
    lat: Annotated[float, Form()],
    crs: Annotated[str | None, Form(max_length=40)] = None,
    photo: Annotated[UploadFile | None, File()] = None,
) -> dict[str, Any]:
    engine = db_engine()
    await run_in_threadpool(cp.rate_limit, engine, client_address(request))

    def work() -> dict[str, Any]:
        upload = None
        if photo is not None and (photo.filename or photo.size):
            upload = reports.Upload(read_upload(photo, limit=complaint_settings().max_photo_bytes, field="photo"),
                                    photo.filename, "before")
        geom = to_stored(point(lon, lat), crs)
        with transaction(user="public", engine=engine) as conn:
            code = cp.submit(conn, category=category, description=description, geom=geom, photo=upload)
        zh, en = cp.STATUSES["pending"]
        return {"tracking_code": code, "status": "pending", "label_zh": zh, "label_en": en}

    return await run_in_threadpool(work)


@router.get("/complaints/track/{code}", summary="The status of a complaint by its tracking code (status only)")
def track(code: Annotated[str, Path(max_length=40)]) -> dict[str, Any]:
    with db_engine().connect() as conn:
        return cp.track(conn, code)


@router.get("/complaints", summary="The triage queue of the caller's streets")
def queue(principal: CurrentUser,
          status: Annotated[str | None, Query(max_length=20)] = "pending") -> dict[str, Any]:
    with db_engine().connect() as conn:
        return {"complaints": cp.queue(conn, actor_of(principal), status=status or None)}


class AcceptBody(BaseModel):
    category: str | None = Field(default=None, max_length=40)
    note: str | None = Field(default=None, max_length=2000)


class RejectBody(BaseModel):
    reason: str = Field(max_length=2000)


@router.post("/complaints/{complaint_id}/accept", summary="Accept a complaint: it becomes a MANUAL-* hazard")
def accept(complaint_id: Id, principal: CurrentUser, body: AcceptBody | None = None) -> dict[str, Any]:
    body = body or AcceptBody()
    with transaction(user=principal.username, engine=db_engine()) as conn:
        return cp.accept(conn, complaint_id, actor_of(principal), category=body.category, note=body.note)


@router.post("/complaints/{complaint_id}/reject", summary="Reject a complaint (reason required)")
def reject(complaint_id: Id, body: RejectBody, principal: CurrentUser) -> dict[str, Any]:
    with transaction(user=principal.username, engine=db_engine()) as conn:
        return cp.reject(conn, complaint_id, actor_of(principal), reason=body.reason)


# --- pages of signed-in users -------------------------------------------------------------------------------------


def _signed_in_page(request: Request, build: Callable[[Actor], str]) -> Response:
    try:
        principal = optional_principal(request)
    except Unauthorized:
        principal = None  # expired or revoked cookie: sign in again
    if principal is None:
        return _login_redirect(request)
    try:
        html = build(actor_of(principal))
    except OutOfJurisdiction as exc:
        raise Forbidden(f"不在您的权限内 outside your role: {exc.args[0]}") from None
    return HTMLResponse(html, headers=_headers())


@router.get("/field/report", response_class=HTMLResponse, include_in_schema=False)
def report_page(request: Request) -> Response:
    return _signed_in_page(request, lambda a: field_pages.report_page(engine=get_engine(), actor=a))


@router.get("/field/complaints", response_class=HTMLResponse, include_in_schema=False)
def triage_page(request: Request) -> Response:
    def build(actor: Actor) -> str:
        with db_engine().connect() as conn:
            queue_ = cp.queue(conn, actor) if actor.role in TRIAGERS else []
        return field_pages.triage_page(complaints=queue_, actor=actor)

    return _signed_in_page(request, build)
