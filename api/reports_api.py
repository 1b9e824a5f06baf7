"""Manual reports (MANUAL-* hazards, fix on the spot) and the facility checklist per compound (自查自纠)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, File, Form, Path, UploadFile

from api.auth import CurrentUser
from api.database import db_engine
from api.photos_api import actor_of, read_upload
from gis.campaign import checklist as ck
from gis.campaign import reports
from gis.campaign.field_errors import InvalidInput
from gis.campaign.locate import parse_geometry, point, to_stored
from gis.campaign.manual_rules import MANUAL_RULES
from gis.config import photo_settings
from gis.db import transaction

router = APIRouter(tags=["field reports"])
Text = Annotated[str | None, Form(max_length=2000)]
Uploads = Annotated[list[UploadFile] | None, File()]


def uploads_of(files: list[UploadFile] | None, kind: str, *, field: str) -> list[reports.Upload]:
    files = [f for f in (files or []) if f.filename or f.size]
    if len(files) > photo_settings().max_per_request:
        raise InvalidInput(f"照片过多 at most {photo_settings().max_per_request} files", field=field)
    return [reports.Upload(read_upload(f, field=field), f.filename, kind) for f in files]


@router.get("/reports/categories", summary="The categories a manual report may name (MANUAL-* rules)")
def categories() -> dict[str, Any]:
    return {"categories": [
        {"category": r.category, "rule": r.id, "title_zh": r.title_zh, "title_en": r.title_en,
         "department": r.department, "deadline_days": r.deadline_days, "clause": r.clause}
        for r in MANUAL_RULES.values()]}


@router.post("/reports", status_code=201,
             summary="File a manual hazard at a point (lon, lat) or polygon (geometry, GeoJSON); fixed = 边查边改")
def file_report(
    principal: CurrentUser,
    category: Annotated[str, Form(max_length=40)],
    lon: Annotated[float | None, Form()] = None,
    lat: Annotated[float | None, Form()] = None,
    geometry: Annotated[str | None, Form(max_length=200_000)] = None,
    crs: Annotated[str | None, Form(max_length=40)] = None,
    compound: Annotated[str | None, Form(max_length=200)] = None,
    note: Text = None,
    fixed: Annotated[bool, Form()] = False,
    photo: Uploads = None,
    after: Uploads = None,
) -> dict[str, Any]:
    if geometry:
        geom, field = parse_geometry(geometry), "geometry"
    elif lon is not None and lat is not None:
        geom, field = point(lon, lat), "lonlat"
    else:
        raise InvalidInput("需要位置 give lon and lat, or a GeoJSON geometry", field="lonlat")
    geom = to_stored(geom, crs)
    files = uploads_of(photo, "before", field="photo") + uploads_of(after, "after", field="after")
    with transaction(user=principal.username, engine=db_engine()) as conn:
        return reports.file_report(conn, category=category, geom=geom, actor=actor_of(principal),
                                   compound=compound or None, note=note, uploads=files, fixed=fixed, field=field)


CompoundRef = Annotated[str, Path(min_length=1, max_length=200)]


@router.get("/compounds/{ref}/checklist", summary="The compound's facility checklist (自查自纠), item by item")
def get_checklist(ref: CompoundRef, principal: CurrentUser) -> dict[str, Any]:
    with db_engine().connect() as conn:
        return ck.checklist(conn, ref, actor_of(principal))


@router.post("/compounds/{ref}/checklist", status_code=201,
             summary="Record one checklist item: a failure files a MANUAL-* hazard, a pass again claims it fixed")
def record_item(
    ref: CompoundRef,
    principal: CurrentUser,
    item: Annotated[str, Form(max_length=40)],
    status: Annotated[Literal["pass", "fail", "not_applicable"], Form()],
    subject: Annotated[str | None, Form(max_length=200)] = None,
    checked_on: Annotated[date | None, Form()] = None,
    drill_date: Annotated[date | None, Form()] = None,
    note: Text = None,
    photo: Uploads = None,
) -> dict[str, Any]:
    files = uploads_of(photo, "before" if status == "fail" else "after", field="photo")
    with transaction(user=principal.username, engine=db_engine()) as conn:
        return ck.record(conn, compound=ref, item=item, status=status, actor=actor_of(principal),
                         checked_on=checked_on, subject=subject or None, note=note, drill_date=drill_date,
                         uploads=files)
