"""Manual reports: an inspector or property company files a MANUAL-* hazard at a point or polygon, with photos."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import shapely
from sqlalchemy import Connection, text

from gis.campaign import lifecycle as lc
from gis.campaign import photos as ph
from gis.campaign import workflow as wf
from gis.campaign.actors import REPORTERS, Actor
from gis.campaign.field_errors import InvalidInput, NotPermitted
from gis.campaign.locate import Place, locate
from gis.campaign.manual_rules import CATEGORIES, MANUAL_RULES, ManualRule
from gis.layers import STORAGE_SRID
from gis.text_rules import one_line_breaks, why_refused


@dataclass(frozen=True)
class Upload:
    """One uploaded file as it came: bytes, the client's name (never trusted for anything but display), kind."""

    data: bytes
    filename: str | None = None
    kind: str = "before"


def category_rule(category: str, *, field: str = "category") -> ManualRule:
    rule = MANUAL_RULES.get(str(category))
    if rule is None:
        raise InvalidInput(f"未知类别 unknown category {category!r}; categories: {', '.join(CATEGORIES)}",
                           field=field)
    return rule


def clean_text(value: str | None, *, field: str, limit: int, required: bool = False) -> str | None:
    """Trimmed text (blank → None) with its line breaks as LF, bounded, holding what free text may
    (gis.text_rules); the error names the field."""
    value = one_line_breaks((value or "").strip())
    if not value:
        if required:
            raise InvalidInput("不能为空 must not be empty", field=field)
        return None
    if len(value) > limit:
        raise InvalidInput(f"过长 longer than {limit} characters", field=field)
    why = why_refused(value)
    if why is not None:
        raise InvalidInput(why, field=field)
    return value


def severity_of(rule: ManualRule) -> float:
    """Map ranking weight: what must be cleared within a day weighs most."""
    return 8.0 if rule.deadline_days <= 1 else 5.0 if rule.deadline_days <= 15 else 3.0


def place_for(conn: Connection, geom: shapely.Geometry, *, claimed_compound: str | None, actor: Actor,
              field: str = "lonlat") -> Place:
    """Where the report lies (derived, never claimed), checked against the claim and the caller's jurisdiction."""
    place = locate(conn, geom)
    if claimed_compound and place.compound_ref != claimed_compound:
        where = f"小区 compound {place.compound_ref}" if place.compound_ref else "任何小区之外 outside every compound"
        raise InvalidInput(f"位置在{where}, 不在 not in {claimed_compound!r}", field=field)
    if place.street_code is None:
        raise InvalidInput("位置不在本区任何街道内 the location lies in no street of this district", field=field)
    if actor.compounds is not None and place.compound_ref is None:
        raise InvalidInput("位置不在任何小区内 the location lies in no compound", field=field)
    if not actor.sees(place.street_code, place.compound_ref):
        raise NotPermitted("位置不在您的辖区内 the location lies outside your jurisdiction", field=field)
    return place


def insert_hazard(conn: Connection, *, rule: ManualRule, geom: shapely.Geometry, place: Place,
                  note: str | None, user: str, source: str) -> int:
    """One MANUAL-* row in the hazards ledger (status open); its key is unique per report."""
    key = f"{rule.id}|{place.compound_ref or place.street_code}|{uuid.uuid4().hex}"
    message = rule.title_zh + (f": {note}" if note else "")
    return conn.execute(text(
        "INSERT INTO hazards (ref, key, rule, clause, verdict, strength, severity, status, subject_layer, "
        "subject_ref, other_refs, unit, message_zh, message_en, department, compound_ref, compound_id, street_code, "
        "first_seen_at, last_seen_at, extra, geom) VALUES (:ref, :key, :rule, :clause, 'fail', :strength, :sev, "
        "'open', :layer, :subject, '[]'::jsonb, :unit, :mzh, :men, :dept, :cref, :cid, :street, now(), now(), "
        "jsonb_build_object('source', CAST(:source AS text)), ST_GeomFromEWKT(:g)) RETURNING id"),
        {"ref": key[:200], "key": key, "rule": rule.id, "clause": rule.clause, "strength": rule.strength,
         "sev": severity_of(rule), "layer": "compounds" if place.compound_ref else "streets",
         "subject": place.compound_ref or place.street_code, "unit": rule.unit, "mzh": message[:4000],
         "men": rule.title_en + (f": {note}" if note else ""), "dept": rule.department,
         "cref": place.compound_ref, "cid": place.compound_id, "street": place.street_code, "source": source,
         "g": f"SRID={STORAGE_SRID};{geom.wkt}"}).scalar_one()


def owner_of(hazard_id: int, place: Place) -> ph.Owner:
    return ph.Owner(hazard_id=hazard_id, compound_id=place.compound_id, compound_ref=place.compound_ref,
                    street_code=place.street_code)


def file_report(conn: Connection, *, category: str, geom: shapely.Geometry, actor: Actor,
                compound: str | None = None, note: str | None = None, uploads: Sequence[Upload] = (),
                fixed: bool = False, field: str = "lonlat") -> dict[str, Any]:
    """File a manual hazard; with `fixed` it is found and fixed in one call (边查边改: before and after photos).

    Everything happens in the caller's transaction: a refused photo or step leaves no hazard behind.
    Returns {"id", "rule", "status", "compound_ref", "street_code", "photos": [ids]}.
    """
    if actor.role not in REPORTERS:
        raise NotPermitted(f"角色 {actor.role} 不能上报隐患 role {actor.role!r} may not file reports", field="role")
    rule = category_rule(category)
    note = clean_text(note, field="note", limit=lc.MAX_NOTE)
    if len(uploads) > 20:
        raise InvalidInput("照片过多 at most 20 photos per report", field="photo")
    place = place_for(conn, geom, claimed_compound=compound, actor=actor, field=field)
    if fixed:
        kinds = {u.kind for u in uploads}
        if not {"before", "after"} <= kinds:
            raise InvalidInput("边查边改需要整改前和整改后照片 a fix on the spot needs before and after photos",
                               field="photo")
    hazard_id = insert_hazard(conn, rule=rule, geom=geom, place=place, note=note, user=actor.username,
                              source="report")
    owner = owner_of(hazard_id, place)
    added = [ph.add_photo(conn, u.data, owner=owner, kind=u.kind, filename=u.filename, user=actor.username,
                          field=f"photo[{i}]") for i, u in enumerate(uploads)]
    before = tuple(p["id"] for p in added if p["kind"] != "after")
    after = tuple(p["id"] for p in added if p["kind"] == "after")
    status = record_found(conn, hazard_id, actor=actor, note=note, photos=before, fixed=fixed, after=after)
    return {"id": hazard_id, "rule": rule.id, "status": status, "compound_ref": place.compound_ref,
            "street_code": place.street_code, "department": rule.department,
            "deadline_days": rule.deadline_days, "photos": [p["id"] for p in added]}


def record_found(conn: Connection, hazard_id: int, *, actor: Actor, note: str | None, photos: Sequence[int],
                 fixed: bool = False, after: Sequence[int] = ()) -> str:
    """The hazard's `open` event (evidence manual) and, when fixed on the spot, its fix; returns the status."""
    conn.execute(text(
        "INSERT INTO hazard_events (hazard_id, by, from_state, to_state, note, photos, evidence) "
        "VALUES (:h, :by, NULL, 'open', :note, CAST(:photos AS bigint[]), :evidence)"),
        {"h": hazard_id, "by": actor.username, "note": note, "photos": list(photos),
         "evidence": lc.Evidence.MANUAL.value})
    if not fixed:
        return lc.State.OPEN.value
    moved = wf.fix_on_the_spot(conn, hazard_id, actor=actor,
                               before=photos, after=after, note=note)
    return str(moved["status"])


def visible_hazard(conn: Connection, hazard_id: int, actor: Actor) -> ph.Owner:
    """A hazard inside the caller's jurisdiction as a photo owner (NotVisible otherwise)."""
    return ph.hazard_owner(conn, hazard_id, streets=actor.streets, compounds=actor.compounds)
