"""Public complaints (举报投诉): rate-limited anonymous submissions, a triage queue per street, a status-only tracker."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from typing import Any

import shapely
from sqlalchemy import Connection, Engine, text

from gis import scope
from gis.campaign import lifecycle as lc
from gis.campaign import photos as ph
from gis.campaign import reports
from gis.campaign.actors import TRIAGERS, Actor
from gis.campaign.field_errors import InvalidInput, NotPermitted, NotVisible, RateLimited, StateConflict
from gis.campaign.locate import Place, locate
from gis.campaign.manual_rules import CATEGORIES
from gis.config import complaint_settings
from gis.layers import STORAGE_SRID

STATUSES: dict[str, tuple[str, str]] = {
    "pending": ("待处理", "Received, awaiting triage"),
    "accepted": ("已受理, 已转为隐患整改", "Accepted: being rectified as a hazard"),
    "rejected": ("不予受理", "Not accepted"),
}
#: what the public may report: the manual categories minus the property company's own paperwork items
PUBLIC_CATEGORIES: tuple[str, ...] = tuple(
    c for c in CATEGORIES if c not in ("maintenance_contract", "building_captain", "emergency_plan", "safety_ledger"))
_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read aloud over the phone


def _address_key(address: str) -> str:
    return hashlib.sha256(f"firelane-complaint|{address}".encode()).hexdigest()


def rate_limit(engine: Engine, address: str) -> None:
    """Count one submission from `address` (in its own committed transaction, so refused and failed attempts
    count too); RateLimited when the hour or day window is full. Kept in PostgreSQL: holds across workers."""
    settings = complaint_settings()
    key = _address_key(address)
    with engine.begin() as conn:  # the owner's function counts (and records, when under the limits): the
        # application role may not read the hits (gis.signin_tables)
        row = conn.execute(text("SELECT hour, day, hour_wait, day_wait FROM firelane_complaint_hit(:k, :h, :d)"),
                           {"k": key, "h": settings.per_hour, "d": settings.per_day}).one()
    if row.hour >= settings.per_hour or row.day >= settings.per_day:
        wait = row.hour_wait if row.hour >= settings.per_hour else row.day_wait
        raise RateLimited("提交过于频繁, 请稍后再试 too many complaints from your address, try again later",
                          retry_after=max(1, int(wait or 60) + 1))


def unscoped(conn: Connection) -> None:
    """The public paths see every street (they derive the street themselves, and show the public nothing but a
    status): under row-level security by jurisdiction (firelane.scope) this transaction is explicitly unscoped."""
    conn.execute(text("SELECT set_config('firelane.scope', 'all', true)"))


def new_code() -> str:
    """A tracking code: 12 symbols of a 32-letter alphabet (60 bits), grouped for reading aloud."""
    raw = "".join(secrets.choice(_CODE_ALPHABET) for _ in range(12))
    return f"TS-{raw[:4]}-{raw[4:8]}-{raw[8:]}"


def submit(conn: Connection, *, category: str, description: str, geom: shapely.Point,
           photo: reports.Upload | None = None) -> str:
    """Record a complaint in the triage queue of the street its point lies in; returns the tracking code."""
    if category not in PUBLIC_CATEGORIES:
        raise InvalidInput(f"未知类别 unknown category {category!r}; categories: {', '.join(PUBLIC_CATEGORIES)}",
                           field="category")
    settings = complaint_settings()
    text_ = reports.clean_text(description, field="description", limit=settings.max_text, required=True)
    unscoped(conn)
    place = locate(conn, geom)
    if place.street_code is None:
        raise InvalidInput("位置不在本区任何街道内 the point lies in no street of this district", field="lonlat")
    code = new_code()
    complaint_id = conn.execute(text(
        "INSERT INTO complaints (tracking_code, category, description, street_code, compound_id, compound_ref, geom) "
        "VALUES (:code, :cat, :d, :street, :cid, :cref, ST_GeomFromEWKT(:g)) RETURNING id"),
        {"code": code, "cat": category, "d": text_, "street": place.street_code, "cid": place.compound_id,
         "cref": place.compound_ref, "g": f"SRID={STORAGE_SRID};{geom.wkt}"}).scalar_one()
    if photo is not None:
        owner = ph.Owner(complaint_id=complaint_id, compound_id=place.compound_id, compound_ref=place.compound_ref,
                         street_code=place.street_code)
        ph.add_photo(conn, photo.data, owner=owner, kind="before", filename=photo.filename, user="public",
                     max_bytes=settings.max_photo_bytes, field="photo")
    return code


def track(conn: Connection, code: str) -> dict[str, Any]:
    """The status of a complaint by its tracking code, and nothing else (no text, place or other complaints)."""
    code = (code or "").strip().upper()
    row = None
    unscoped(conn)
    if len(code) <= 32:
        row = conn.execute(text("SELECT status FROM complaints WHERE tracking_code = :c"), {"c": code}).first()
    if row is None:
        raise NotVisible("没有该查询码 no complaint with this tracking code", field="code")
    zh, en = STATUSES[row.status]
    return {"tracking_code": code, "status": row.status, "label_zh": zh, "label_en": en}


def _triager(actor: Actor) -> None:
    if actor.role not in TRIAGERS:
        raise NotPermitted(f"角色 {actor.role} 不能处理举报 role {actor.role!r} may not triage complaints", field="role")


_COLUMNS = ("c.id, c.tracking_code, c.category, c.description, c.status, c.street_code, c.compound_ref, "
            "c.submitted_at, c.triaged_by, c.triaged_at, c.reason, c.hazard_id, ST_X(c.geom) AS lon, "
            "ST_Y(c.geom) AS lat, (SELECT coalesce(array_agg(p.id ORDER BY p.id), '{}') FROM photos p "
            "WHERE p.complaint_id = c.id) AS photo_ids")


def _doc(row: Any) -> dict[str, Any]:
    return {"id": row.id, "category": row.category, "description": row.description, "status": row.status,
            "street_code": row.street_code, "compound_ref": row.compound_ref,
            "submitted_at": row.submitted_at.isoformat(), "triaged_by": row.triaged_by,
            "triaged_at": row.triaged_at.isoformat() if row.triaged_at else None, "reason": row.reason,
            "hazard_id": row.hazard_id, "lonlat": [row.lon, row.lat], "photos": list(row.photo_ids)}


def queue(conn: Connection, actor: Actor, *, status: str | None = "pending", limit: int = 200) -> list[dict[str, Any]]:
    """The triage queue of the caller's streets (oldest first), or every complaint of a status."""
    _triager(actor)
    where: list[str] = ["TRUE"]
    params: dict[str, Any] = {"limit": max(1, min(limit, 1000))}
    if status:
        if status not in STATUSES:
            raise InvalidInput(f"未知状态 unknown status {status!r}; statuses: {', '.join(STATUSES)}", field="status")
        where.append("c.status = :status")
        params["status"] = status
    mine, binds = scope.actor_filter("complaints", actor.streets, None, alias="c")
    if mine:
        where.append(mine)
        params.update(binds)
    rows = conn.execute(text(f"SELECT {_COLUMNS} FROM complaints c WHERE {' AND '.join(where)} "
                             "ORDER BY c.submitted_at, c.id LIMIT :limit"), params).all()
    return [_doc(r) for r in rows]


def _pending(conn: Connection, complaint_id: int, actor: Actor) -> Any:
    _triager(actor)
    row = conn.execute(text(f"SELECT {_COLUMNS}, c.compound_id FROM complaints c WHERE c.id = :id FOR UPDATE"),
                       {"id": complaint_id}).first()
    if row is None or (actor.streets is not None and row.street_code not in actor.streets):
        raise NotVisible(f"没有举报 no complaint {complaint_id}", field="complaint_id")
    if row.status != "pending":
        raise StateConflict(f"举报已处理 complaint {complaint_id} is already {row.status}", field="status")
    return row


def accept(conn: Connection, complaint_id: int, actor: Actor, *, category: str | None = None,
           note: str | None = None) -> dict[str, Any]:
    """Turn a pending complaint into a MANUAL-* hazard (the complaint's photos become its before-photos)."""
    row = _pending(conn, complaint_id, actor)
    rule = reports.category_rule(category or row.category)
    note = reports.clean_text(note, field="note", limit=lc.MAX_NOTE)
    geom = shapely.Point(row.lon, row.lat)
    place = Place(compound_id=row.compound_id, compound_ref=row.compound_ref, compound_name=None,
                  street_code=row.street_code)
    text_ = f"[举报 complaint] {row.description}" + (f" / {note}" if note else "")
    hazard_id = reports.insert_hazard(conn, rule=rule, geom=geom, place=place, note=text_[:lc.MAX_NOTE],
                                      user=actor.username, source="complaint")
    photo_ids: Sequence[int] = list(row.photo_ids)
    ph.attach(conn, photo_ids, owner=reports.owner_of(hazard_id, place))
    reports.record_found(conn, hazard_id, actor=actor, note=f"举报受理 accepted complaint {complaint_id}"
                         + (f": {note}" if note else ""), photos=photo_ids)
    conn.execute(text("UPDATE complaints SET status = 'accepted', hazard_id = :h, triaged_by = :u, "
                      "triaged_at = now(), reason = :n WHERE id = :id"),
                 {"h": hazard_id, "u": actor.username, "n": note, "id": complaint_id})
    return {"id": complaint_id, "status": "accepted", "hazard_id": hazard_id, "rule": rule.id}


def reject(conn: Connection, complaint_id: int, actor: Actor, *, reason: str | None) -> dict[str, Any]:
    """Close a pending complaint without a hazard; the reason is required (kept internal, not shown publicly)."""
    _pending(conn, complaint_id, actor)
    reason = reports.clean_text(reason, field="reason", limit=lc.MAX_NOTE, required=True)
    conn.execute(text("UPDATE complaints SET status = 'rejected', triaged_by = :u, triaged_at = now(), "
                      "reason = :r WHERE id = :id"), {"u": actor.username, "r": reason, "id": complaint_id})
    return {"id": complaint_id, "status": "rejected", "reason": reason}
