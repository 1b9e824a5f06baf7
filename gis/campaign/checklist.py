"""Facility checklist per compound (自查自纠, 整治任务 二 and 四): a failing item becomes a MANUAL-* hazard, and
passing again (with after-photos) claims that hazard rectified for a verifier to confirm."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import shapely
from sqlalchemy import Connection, text

from gis.campaign import lifecycle as lc
from gis.campaign import photos as ph
from gis.campaign import reports
from gis.campaign import workflow as wf
from gis.campaign.actors import CHECKLIST_ROLES, Actor
from gis.campaign.deadlines import local_today
from gis.campaign.field_errors import InvalidInput, NotPermitted, NotVisible
from gis.campaign.locate import Place
from gis.campaign.manual_rules import MANUAL_RULES

#: a residential building above this height is high-rise (GB 50016-2014 5.1.1: 住宅 > 27 m) and needs a 楼长
HIGH_RISE_M = 27.0


@dataclass(frozen=True)
class Item:
    """One self-inspection item: what passing means, and the category its failure is reported under."""

    key: str
    title_zh: str
    title_en: str
    category: str
    per_building: bool = False


ITEMS: dict[str, Item] = {i.key: i for i in (
    Item("alarm", "火灾自动报警系统完好有效", "Fire alarm system working", "alarm_defective"),
    Item("sprinkler", "自动喷水灭火系统完好有效", "Sprinkler system working", "sprinkler_defective"),
    Item("hydrant_system", "室内外消火栓系统完好有效", "Hydrant system working", "hydrant_defective"),
    Item("smoke_control", "防排烟系统完好有效", "Smoke control working", "smoke_control_defective"),
    Item("evacuation_signs", "应急照明和疏散指示标志完好", "Emergency lighting and evacuation signs working",
         "evacuation_sign_defective"),
    Item("fire_doors", "防火门完好且常闭", "Fire doors intact and kept closed", "fire_door_defective"),
    Item("extinguishers", "灭火器配置齐全有效", "Extinguishers present and charged", "extinguisher_defective"),
    Item("maintenance_contract", "签订消防设施维保合同", "Fire-system maintenance contract in force",
         "maintenance_contract"),
    Item("control_room", "消控室24小时双人持证值班", "Control room staffed 24 h by two certified people",
         "control_room_unstaffed"),
    Item("building_captain", "高层住宅落实消防安全楼长", "Building captain (楼长) named for the high-rise",
         "building_captain", per_building=True),
    Item("emergency_plan", "制定灭火和应急疏散预案并定期演练", "Emergency plan made and drilled", "emergency_plan"),
    Item("safety_ledger", "建立消防安全管理台账", "Fire-safety management ledger (台账) kept", "safety_ledger"),
)}
STATUSES: tuple[str, ...] = ("pass", "fail", "not_applicable")
#: a drill older than this does not count as "定期演练"
DRILL_MAX_AGE_DAYS = 366


def _compound(conn: Connection, ref: str, actor: Actor) -> Any:
    if actor.role not in CHECKLIST_ROLES:
        raise NotPermitted(f"角色 {actor.role} 不能填写自查表 role {actor.role!r} may not record the checklist",
                           field="role")
    row = conn.execute(text("SELECT id, ref, street_code, ST_AsText(ST_PointOnSurface(geom)) AS spot "
                            "FROM compounds WHERE ref = :r"), {"r": ref}).first()
    if row is None or not actor.sees(row.street_code, row.ref):
        raise NotVisible(f"没有小区 no compound {ref!r}", field="compound")
    return row


def _high_rises(conn: Connection, compound_id: int) -> dict[str, str]:
    rows = conn.execute(text(
        "SELECT ref, ST_AsText(ST_PointOnSurface(geom)) AS spot FROM buildings WHERE compound_id = :c "
        "AND ref IS NOT NULL AND (height_m > :h OR (height_m IS NULL AND floors >= 10)) ORDER BY ref"),
        {"c": compound_id, "h": HIGH_RISE_M}).all()
    return {r.ref: r.spot for r in rows}


def _row_doc(row: Any) -> dict[str, Any]:
    item = ITEMS.get(row.item)
    return {"id": row.id, "item": row.item, "subject": row.subject or None,
            "title_zh": item.title_zh if item else row.item, "title_en": item.title_en if item else row.item,
            "status": row.status, "checked_on": row.checked_on.isoformat(), "note": row.note,
            "details": row.details, "hazard_id": row.hazard_id, "checked_by": row.checked_by,
            "checked_at": row.checked_at.isoformat(), "photos": list(row.photo_ids or [])}


_SELECT = ("SELECT k.*, (SELECT coalesce(array_agg(p.id ORDER BY p.id), '{}') FROM photos p "
           "WHERE p.checklist_id = k.id) AS photo_ids FROM checklist_items k")


def checklist(conn: Connection, compound: str, actor: Actor) -> dict[str, Any]:
    """Every item of the compound's checklist (high-rise buildings each get a 楼长 line), checked or not."""
    c = _compound(conn, compound, actor)
    done = {(r.item, r.subject): _row_doc(r) for r in conn.execute(
        text(f"{_SELECT} WHERE k.compound_id = :c"), {"c": c.id}).all()}
    lines = []
    for item in ITEMS.values():
        subjects = list(_high_rises(conn, c.id)) if item.per_building else [""]
        for subject in subjects:
            lines.append(done.get((item.key, subject)) or {
                "item": item.key, "subject": subject or None, "title_zh": item.title_zh,
                "title_en": item.title_en, "status": "unchecked"})
    return {"compound": c.ref, "street_code": c.street_code, "items": lines}


def record(conn: Connection, *, compound: str, item: str, status: str, actor: Actor,
           checked_on: date | None = None, subject: str | None = None, note: str | None = None,
           drill_date: date | None = None, uploads: Sequence[reports.Upload] = ()) -> dict[str, Any]:
    """Record one item's result. A failure files a MANUAL-* hazard (once: while it is unresolved, later failures
    add to it); a pass after a failure claims that hazard rectified, which needs after-photos."""
    c = _compound(conn, compound, actor)
    spec = ITEMS.get(item)
    if spec is None:
        raise InvalidInput(f"未知检查项 unknown item {item!r}; items: {', '.join(ITEMS)}", field="item")
    if status not in STATUSES:
        raise InvalidInput(f"状态应为 status must be one of {', '.join(STATUSES)}", field="status")
    today = local_today()
    checked_on = checked_on or today
    if checked_on > today:
        raise InvalidInput(f"检查日期不能晚于今天 {checked_on.isoformat()} is after today", field="checked_on")
    note = reports.clean_text(note, field="note", limit=lc.MAX_NOTE)
    spot = c.spot
    if spec.per_building:
        buildings = _high_rises(conn, c.id)
        if not subject or subject not in buildings:
            raise InvalidInput(f"应指定本小区的高层建筑 name a high-rise building of {c.ref}: "
                               f"{', '.join(buildings) or '(none)'}", field="subject")
        spot = buildings[subject]
    elif subject:
        raise InvalidInput(f"{item} 不按楼栋检查 {item} is not checked per building", field="subject")
    details: dict[str, Any] = {}
    if item == "emergency_plan" and status == "pass":
        if drill_date is None:
            raise InvalidInput("预案合格需填最近演练日期 a passing emergency plan needs the last drill date",
                               field="drill_date")
        if drill_date > today or (today - drill_date).days > DRILL_MAX_AGE_DAYS:
            raise InvalidInput(f"最近演练日期应在一年内 the last drill must lie within the past year, not "
                               f"{drill_date.isoformat()}", field="drill_date")
        details["drill_date"] = drill_date.isoformat()
    prev = conn.execute(text(
        "SELECT k.id, k.hazard_id, h.status AS hazard_status FROM checklist_items k "
        "LEFT JOIN hazards h ON h.id = k.hazard_id WHERE k.compound_id = :c AND k.item = :i AND k.subject = :s "
        "FOR UPDATE OF k"), {"c": c.id, "i": item, "s": subject or ""}).first()
    row_id = conn.execute(text(
        "INSERT INTO checklist_items (compound_id, compound_ref, street_code, item, subject, status, checked_on, "
        "note, details, checked_by) VALUES (:c, :ref, :street, :i, :s, :st, :on, :note, CAST(:d AS jsonb), :by) "
        "ON CONFLICT (compound_id, item, subject) DO UPDATE SET status = EXCLUDED.status, "
        "checked_on = EXCLUDED.checked_on, note = EXCLUDED.note, details = EXCLUDED.details, "
        "checked_by = EXCLUDED.checked_by, checked_at = now(), version = checklist_items.version + 1 "
        "RETURNING id"),
        {"c": c.id, "ref": c.ref, "street": c.street_code, "i": item, "s": subject or "", "st": status,
         "on": checked_on, "note": note, "d": json.dumps(details), "by": actor.username}).scalar_one()
    place = Place(compound_id=c.id, compound_ref=c.ref, compound_name=None, street_code=c.street_code)
    open_prev = prev if prev is not None and prev.hazard_status in lc.UNRESOLVED else None
    open_hazard = open_prev.hazard_id if open_prev is not None else None
    hazard_id, moved = open_hazard, None
    if status == "fail" and open_hazard is None:
        rule = MANUAL_RULES[spec.category]
        what = f"{spec.title_zh}: 不合格" + (f" ({subject})" if subject else "") + (f" {note}" if note else "")
        hazard_id = reports.insert_hazard(conn, rule=rule, geom=shapely.from_wkt(spot), place=place, note=what,
                                          user=actor.username, source="checklist")
    owner = ph.Owner(hazard_id=hazard_id if status == "fail" else None, checklist_id=row_id, compound_id=c.id,
                     compound_ref=c.ref, street_code=c.street_code)
    added = [ph.add_photo(conn, u.data, owner=owner, kind="before" if status == "fail" else "after",
                          filename=u.filename, user=actor.username, field=f"photo[{i}]")
             for i, u in enumerate(uploads)]
    ids = tuple(p["id"] for p in added)
    if status == "fail" and open_hazard is None and hazard_id is not None:
        reports.record_found(conn, hazard_id, actor=actor, note=f"自查不合格 checklist item {item} failed", photos=ids)
    elif status == "pass" and open_prev is not None:
        moved = _passed_again(conn, open_prev.hazard_id, open_prev.hazard_status, actor=actor, after=ids, item=item,
                              place=place)
    conn.execute(text("UPDATE checklist_items SET hazard_id = :h WHERE id = :id"), {"h": hazard_id, "id": row_id})
    doc = _row_doc(conn.execute(text(f"{_SELECT} WHERE k.id = :id"), {"id": row_id}).one())
    doc["hazard_status"] = moved or (conn.execute(text("SELECT status FROM hazards WHERE id = :h"),
                                                  {"h": hazard_id}).scalar() if hazard_id else None)
    return doc


def _passed_again(conn: Connection, hazard_id: int, state: str, *, actor: Actor, after: Sequence[int], item: str,
                  place: Place) -> str:
    """A failed item passes again: its hazard is claimed rectified (a fix on the spot while still `open`),
    carrying the after-photos; verification stays with the fire brigade or an admin."""
    if not after:
        raise InvalidInput("此项曾不合格, 复查合格需上传整改后照片 the item failed before: passing again needs "
                           "after-photos", field="photo")
    ph.attach(conn, after, owner=reports.owner_of(hazard_id, place))
    note = f"自查复查合格 checklist item {item} passes again"
    if state in lc.NEEDS_WORK - {lc.State.OPEN.value}:
        return str(wf.transition(conn, hazard_id, lc.State.RECTIFIED.value, actor=actor,
                                 change=lc.Change(note=note, photos=tuple(after)))["status"])
    if state == lc.State.OPEN.value:
        before = conn.execute(text("SELECT coalesce(array_agg(id ORDER BY id), '{}') FROM photos "
                                   "WHERE hazard_id = :h AND kind <> 'after'"), {"h": hazard_id}).scalar_one()
        if not before:
            raise InvalidInput("该隐患没有整改前照片, 无法边查边改 the hazard has no before-photo to pair with",
                               field="photo")
        return str(wf.fix_on_the_spot(conn, hazard_id, actor=actor, before=list(before), after=after,
                                      note=note)["status"])
    return state  # already claimed (rectified): the verifier's turn
