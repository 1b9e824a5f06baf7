"""Public complaints (举报投诉): the unauthenticated form and API, the tracker, and the street office's triage."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Path, Query, Request, UploadFile
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.auth import CurrentUser
from api.database import db_engine
from api.loginguard import client_address
from api.photos_api import actor_of, read_upload
from gis import scope as gis_scope
from gis.campaign import complaints as cp
from gis.campaign import reports
from gis.campaign.field_errors import TooLarge
from gis.campaign.locate import point, to_stored
from gis.config import complaint_settings
from gis.db import transaction

router = APIRouter(tags=["complaints"])
Id = Annotated[int, Path(ge=1, le=2**62)]


class ComplaintBodyLimit:
    """The anonymous form gets a tighter body limit than the API: its text plus one photo, refused from the
    declared length (or while streaming) before anything is parsed or spooled."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] != "/complaints":
            await self.app(scope, receive, send)
            return
        limit = complaint_settings().max_photo_bytes + 64 * 1024
        declared = dict(scope.get("headers", ())).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > limit:
            await JSONResponse({"code": "PayloadTooLarge", "field": "photo",
                                "description": f"请求体过大 a complaint is at most {limit} bytes"},
                               status_code=413)(scope, receive, send)
            return
        seen = 0

        async def bounded() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > limit:
                raise TooLarge(f"请求体过大 a complaint is at most {limit} bytes", field="photo")
            return message

        await self.app(scope, bounded, send)


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
        # the public has no scope: the complaint module derives the street from the point and writes the row as
        # the system, and answers only the tracking code
        with gis_scope.scoped(gis_scope.SYSTEM), transaction(user="public", engine=engine) as conn:
            code = cp.submit(conn, category=category, description=description, geom=geom, photo=upload)
        zh, en = cp.STATUSES["pending"]
        return {"tracking_code": code, "status": "pending", "label_zh": zh, "label_en": en}

    return await run_in_threadpool(work)


@router.get("/complaints/track/{code}", summary="The status of a complaint by its tracking code (status only)")
def track(code: Annotated[str, Path(max_length=40)]) -> dict[str, Any]:
    with gis_scope.scoped(gis_scope.SYSTEM), db_engine().connect() as conn:  # a code shows its status only
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
