"""Photos of hazards: multipart upload, listing, and the files served with their sniffed type and safe headers."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import APIRouter, File, Form, Path, UploadFile
from fastapi.responses import Response

from api.auth import CurrentUser, Principal, require_role
from api.database import db_engine
from gis.campaign import photos as ph
from gis.campaign.actors import REPORTERS, Actor
from gis.campaign.field_errors import InvalidInput, TooLarge
from gis.config import photo_settings
from gis.db import transaction

router = APIRouter(tags=["photos"])
Id = Annotated[int, Path(ge=1, le=2**62)]


def actor_of(principal: Principal) -> Actor:
    """The caller as the field side sees it: streets for street offices, compounds for property companies."""
    return Actor(username=principal.username, role=principal.role,
                 streets=tuple(principal.street_codes) if principal.scoped else None,
                 compounds=tuple(principal.compound_refs) if principal.compound_bound else None)


def read_upload(file: UploadFile, *, limit: int | None = None, field: str = "file") -> bytes:
    """The uploaded bytes, refusing (without reading on) anything over `limit`."""
    limit = photo_settings().max_bytes if limit is None else limit
    data = file.file.read(limit + 1)
    if len(data) > limit:
        raise TooLarge(f"文件过大 file is over {limit} bytes", field=field)
    return data


def file_headers(doc: dict[str, Any], *, thumbnail: bool = False) -> dict[str, str]:
    """Headers that keep a stored file inert: its sniffed type, nosniff, a sandbox CSP and a safe file name."""
    name = doc["filename"] if not thumbnail else doc["filename"].rsplit(".", 1)[0] + "-thumb.jpg"
    ascii_name = f"photo-{doc['id']}" + ("-thumb.jpg" if thumbnail else "." + name.rsplit(".", 1)[-1])
    disposition = "attachment" if doc["media_type"] == "application/pdf" and not thumbnail else "inline"
    return {
        "Content-Disposition": f"{disposition}; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name, safe='')}",
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "default-src 'none'; sandbox",
        "Cache-Control": "private, max-age=3600",
        "Vary": "Authorization, Cookie",
        "ETag": f'"{doc["sha256"][:32]}{"-t" if thumbnail else ""}"',
    }


@router.post("/hazards/{hazard_id}/photos", status_code=201, summary="Upload a photo or PDF of a hazard (multipart)")
def upload(hazard_id: Id, principal: CurrentUser, file: Annotated[UploadFile, File()],
           kind: Annotated[Literal["before", "after", "other"], Form()] = "other") -> dict[str, Any]:
    require_role(principal, REPORTERS, "上传照片 upload photos")
    actor = actor_of(principal)
    data = read_upload(file)
    with transaction(user=principal.username, engine=db_engine()) as conn:
        owner = ph.hazard_owner(conn, hazard_id, streets=actor.streets, compounds=actor.compounds)
        return ph.add_photo(conn, data, owner=owner, kind=kind, filename=file.filename, user=principal.username)


@router.get("/hazards/{hazard_id}/photos", summary="The photos of a hazard, with EXIF time and distance to the hazard")
def list_photos(hazard_id: Id, principal: CurrentUser) -> dict[str, Any]:
    actor = actor_of(principal)
    with db_engine().connect() as conn:
        return {"photos": ph.hazard_photos(conn, hazard_id, streets=actor.streets, compounds=actor.compounds)}


def _visible(principal: Principal, photo_id: int) -> dict[str, Any]:
    actor = actor_of(principal)
    with db_engine().connect() as conn:
        return ph.get_photo(conn, photo_id, streets=actor.streets, compounds=actor.compounds)


@router.get("/photos/{photo_id}/info", summary="One photo's record (type, size, pixels, EXIF time and point)")
def photo_info(photo_id: Id, principal: CurrentUser) -> dict[str, Any]:
    return _visible(principal, photo_id)


@router.get("/photos/{photo_id}", summary="The stored file, served with its sniffed type",
            responses={200: {"content": {m: {} for m in ph.MEDIA_TYPES}}})
def photo_file(photo_id: Id, principal: CurrentUser) -> Response:
    doc = _visible(principal, photo_id)
    return Response(ph.photo_bytes(doc), media_type=doc["media_type"], headers=file_headers(doc))


@router.get("/photos/{photo_id}/thumbnail", summary="A JPEG thumbnail of a picture (none for PDFs)",
            responses={200: {"content": {"image/jpeg": {}}}})
def photo_thumbnail(photo_id: Id, principal: CurrentUser) -> Response:
    doc = _visible(principal, photo_id)
    if not doc["width"]:
        raise InvalidInput("PDF 没有缩略图 a PDF has no thumbnail", field="photo_id")
    return Response(ph.photo_bytes(doc, thumbnail=True), media_type="image/jpeg",
                    headers=file_headers(doc, thumbnail=True))
