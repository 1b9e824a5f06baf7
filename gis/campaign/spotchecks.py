"""Double-random spot checks (双随机): compounds and inspectors drawn by a recorded seed, results per focus item.

The draw (`ALGORITHM`, stored with every draw so anyone can reproduce and audit it):

1. Candidates: per street office of the campaign, the compounds *reported rectified*: at least one hazard reported
   rectified (status rectified, verified or closed) and none still needing work (open, assigned, rectifying,
   reopened). Sorted by compound ref.
2. The roster as read (file order): name, unit, street (a street code or name; blank for district-level units).
3. ``rng = numpy.random.default_rng(seed)`` (PCG64). Streets in code order; for a street with n candidates,
   k = max(1, ceil(n * rate)) (0 when n = 0); ``rng.choice(n, size=k, replace=False)`` picks the compounds, in
   that order.
4. For each picked compound, in order: the roster entries not of the compound's street office (by code or
   name), in roster order; ``rng.choice(len(eligible), size=2, replace=False)`` picks its two inspectors.

The same seed, candidates, roster and rate give the same checks (`reproduce`).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from openpyxl import load_workbook
from sqlalchemy import Connection, Engine, text

from gis import scope
from gis.campaign import lifecycle as lc
from gis.campaign import photos as ph
from gis.campaign import reports, workflow
from gis.campaign.actors import Actor
from gis.campaign.campaigns import CampaignError, campaign_streets, get_campaign
from gis.campaign.focus import BY_CODE, ITEM_CODES
from gis.campaign.locate import locate
from gis.campaign.manual_rules import BY_ID
from gis.db import get_engine, transaction
from gis.text_rules import one_line_breaks, why_refused

ALGORITHM = __doc__.split("The draw", 1)[1].split("The same seed", 1)[0].strip()
ALGORITHM_VERSION = "firelane-spot-draw/1 numpy PCG64"
MAX_ROSTER_ROWS = 10_000
MAX_ROSTER_BYTES = 5 * 1024 * 1024
INSPECTORS_PER_CHECK = 2
#: Roles that draw spot checks and record their results (区住建局/区消防救援大队牵头抽查): the API and the page.
SPOT_CHECKERS = frozenset({"admin", "fire_brigade"})

_HEADERS = {
    "name": ("name", "姓名", "检查人员", "人员"),
    "unit": ("unit", "单位", "所在单位", "工作单位"),
    "street": ("street", "街道", "所属街道", "street_code", "乡镇（街道）", "乡镇(街道)"),
}


class SpotCheckError(CampaignError):
    """A draw or a result that cannot be accepted (the message names the street, row or field)."""


class SpotCheckNotFound(SpotCheckError):
    """No such spot check."""


@dataclass(frozen=True)
class Inspector:
    name: str
    unit: str
    street: str

    def as_dict(self) -> dict[str, str]:
        return {"name": self.name, "unit": self.unit, "street": self.street}


# --- the roster -----------------------------------------------------------------------------------------------------


def _rows_from_file(path: Path) -> list[list[str]]:
    size = path.stat().st_size
    if size > MAX_ROSTER_BYTES:
        raise SpotCheckError(f"名册文件过大 roster file is {size} bytes; limit {MAX_ROSTER_BYTES}", field="roster")
    suffix = path.suffix.lower()
    if suffix in (".xlsx", ".xlsm"):
        try:
            wb = load_workbook(path, read_only=True, data_only=True)
        except Exception as exc:  # noqa: BLE001 - any unreadable workbook is the same refusal
            raise SpotCheckError(f"无法读取名册 cannot read the roster workbook: {exc}", field="roster") from exc
        try:
            ws = wb.worksheets[0]
            if (ws.max_column or 0) > 50:
                raise SpotCheckError("名册列数过多 roster has more than 50 columns", field="roster")
            rows = []
            for i, row in enumerate(ws.iter_rows(values_only=True, max_col=50)):
                if i > MAX_ROSTER_ROWS:
                    raise SpotCheckError(f"名册行数过多 roster has more than {MAX_ROSTER_ROWS} rows", field="roster")
                rows.append(["" if v is None else str(v).strip() for v in row])
            return rows
        finally:
            wb.close()
    if suffix in (".csv", ".txt"):
        raw = path.read_bytes()
        for enc in ("utf-8-sig", "gb18030"):
            try:
                data = raw.decode(enc)
                break
            except UnicodeDecodeError:
                continue
        else:
            raise SpotCheckError("名册编码无法识别 roster is neither UTF-8 nor GBK", field="roster")
        rows = []
        for i, row in enumerate(csv.reader(io.StringIO(data))):
            if i > MAX_ROSTER_ROWS:
                raise SpotCheckError(f"名册行数过多 roster has more than {MAX_ROSTER_ROWS} rows", field="roster")
            rows.append([c.strip() for c in row[:50]])
        return rows
    raise SpotCheckError(f"名册应为 CSV 或 XLSX roster must be .csv or .xlsx, not {suffix or 'no suffix'}",
                         field="roster")


def parse_roster(rows: Sequence[Sequence[str]]) -> list[Inspector]:
    """Inspectors from a header row + rows; errors name the row and field."""
    if not rows:
        raise SpotCheckError("名册为空 roster is empty", field="roster")
    header = [h.strip().lower() for h in rows[0]]
    cols: dict[str, int] = {}
    for key, names in _HEADERS.items():
        for i, h in enumerate(header):
            if h in names:
                cols[key] = i
                break
    for key in ("name", "unit"):
        if key not in cols:
            raise SpotCheckError(f"名册缺少列 roster has no {key} column (one of: {', '.join(_HEADERS[key])})",
                                 field="roster")
    out, seen = [], set()
    for n, row in enumerate(rows[1:], start=2):
        def cell(key: str, row: Sequence[str] = row) -> str:
            i = cols.get(key)
            return row[i].strip() if i is not None and i < len(row) else ""

        name, unit, street = cell("name"), cell("unit"), cell("street")
        if not any((name, unit, street)):
            continue
        if not name:
            raise SpotCheckError(f"名册第{n}行 name: 姓名必填 roster row {n}: name is required", field="roster")
        if len(name) > 100 or len(unit) > 200 or len(street) > 100:
            raise SpotCheckError(f"名册第{n}行: 内容过长 roster row {n}: a value is too long", field="roster")
        for key, value, identifier in (("name", name, True), ("unit", unit, False), ("street", street, False)):
            why = why_refused(value, identifier=identifier)  # (a name with a zero-width space is another person)
            if why is not None:
                raise SpotCheckError(f"名册第{n}行 {key}: {why} (roster row {n})", field="roster")
        if name in seen:
            raise SpotCheckError(f"名册第{n}行 name: 重复 {name!r} roster row {n}: {name!r} listed twice",
                                 field="roster")
        seen.add(name)
        out.append(Inspector(name=name, unit=unit, street=street))
    if not out:
        raise SpotCheckError("名册没有人员 roster lists nobody", field="roster")
    return out


def read_roster(path: Path) -> tuple[list[Inspector], str]:
    """The roster of a CSV/XLSX file and the SHA-256 of the file's bytes."""
    return parse_roster(_rows_from_file(path)), hashlib.sha256(path.read_bytes()).hexdigest()


# --- the draw -------------------------------------------------------------------------------------------------------

_WORK = lc.sql_list(lc.NEEDS_WORK)
_DONE = lc.sql_list(lc.RECTIFIED_OR_LATER)


def candidates(conn: Connection, streets: Sequence[str]) -> dict[str, list[str]]:
    """Per street: the compounds reported rectified (see the module docstring), sorted by ref."""
    in_streets, params = scope.streets_filter("compounds", streets, alias="c")
    rows = conn.execute(text(
        f"SELECT c.street_code, c.ref FROM compounds c WHERE {in_streets} "
        f"AND EXISTS (SELECT 1 FROM hazards t WHERE t.compound_ref = c.ref AND t.status IN {_DONE}) "
        f"AND NOT EXISTS (SELECT 1 FROM hazards t WHERE t.compound_ref = c.ref AND t.status IN {_WORK}) "
        "ORDER BY c.street_code, c.ref"), params).all()
    out: dict[str, list[str]] = {s: [] for s in streets}
    for r in rows:
        out[r.street_code].append(r.ref)
    return out


def required(n: int, rate: float) -> int:
    """At least `rate` of n, rounded up, at least one (zero candidates: zero)."""
    return 0 if n == 0 else max(1, math.ceil(n * rate - 1e-9))


def _check_rate(rate: float) -> float:
    if not isinstance(rate, int | float) or math.isnan(rate) or rate < 0 or rate > 1:
        raise SpotCheckError(f"抽查比例应在0%到100%之间 rate must be between 0 and 1 (0-100 %), got {rate!r}",
                             field="rate")
    return float(rate)


def draw_checks(cands: dict[str, list[str]], roster: Sequence[Inspector], *, seed: int, rate: float,
                street_names: dict[str, str]) -> list[dict[str, Any]]:
    """The algorithm itself (pure): [{street, compound, inspectors: [name, name]}] in draw order."""
    rate = _check_rate(rate)
    rng = np.random.default_rng(seed)
    out = []
    for street in sorted(cands):
        refs = cands[street]
        k = required(len(refs), rate)
        if k == 0:
            continue
        own = {street, street_names.get(street, street)}
        eligible = [p for p in roster if p.street not in own]
        if len(eligible) < INSPECTORS_PER_CHECK:
            raise SpotCheckError(
                f"名册人员不足: 街道 {street_names.get(street, street)} ({street}) 的抽查需要{INSPECTORS_PER_CHECK}名"
                f"非本街道人员, 名册只有{len(eligible)}名 roster too small: checks in street {street} need "
                f"{INSPECTORS_PER_CHECK} inspectors from outside that street; the roster has {len(eligible)}",
                field="roster")
        for i in rng.choice(len(refs), size=k, replace=False):
            picks = rng.choice(len(eligible), size=INSPECTORS_PER_CHECK, replace=False)
            out.append({"street": street, "compound": refs[int(i)],
                        "inspectors": [eligible[int(j)].name for j in picks]})
    return out


def draw(campaign_id: int, *, roster: Sequence[Inspector], roster_sha256: str, rate: float | None = None,
         seed: int | None = None, user: str | None = None, engine: Engine | None = None) -> dict[str, Any]:
    """Draw and store a campaign's spot checks; returns the draw (id, seed, rate, candidates, checks)."""
    seed = secrets.randbits(63) if seed is None else int(seed)
    if not 0 <= seed < 2**63:
        raise SpotCheckError(f"种子应为非负整数 seed must be in [0, 2^63), got {seed}", field="seed")
    with (engine or get_engine()).begin() as conn:
        campaign = get_campaign(campaign_id, conn=conn)
        rate = _check_rate(campaign.settings["spot_check_rate"] if rate is None else rate)
        streets = campaign_streets(conn, campaign)
        names = {r.ref: r.name for r in streets}
        cands = candidates(conn, [r.ref for r in streets])
        checks = draw_checks(cands, roster, seed=seed, rate=rate, street_names=names)
        draw_id = conn.execute(text(
            "INSERT INTO spot_draws (campaign_id, seed, rate, algorithm, candidates, roster, roster_sha256, drawn_by) "
            "VALUES (:c, :seed, :rate, :alg, CAST(:cand AS jsonb), CAST(:roster AS jsonb), :sha, :u) RETURNING id"),
            {"c": campaign_id, "seed": seed, "rate": rate, "alg": f"{ALGORITHM_VERSION}\n{ALGORITHM}",
             "cand": json.dumps(cands, ensure_ascii=False),
             "roster": json.dumps([p.as_dict() for p in roster], ensure_ascii=False), "sha": roster_sha256,
             "u": user}).scalar_one()
        for c in checks:
            c["id"] = conn.execute(text(
                "INSERT INTO spot_checks (draw_id, campaign_id, compound_ref, street_code, inspectors) "
                "VALUES (:d, :c, :r, :s, CAST(:i AS jsonb)) RETURNING id"),
                {"d": draw_id, "c": campaign_id, "r": c["compound"], "s": c["street"],
                 "i": json.dumps(c["inspectors"], ensure_ascii=False)}).scalar_one()
    units = {p.name: p.unit for p in roster}
    return {"draw": draw_id, "campaign": campaign_id, "seed": seed, "rate": rate,
            "candidates": {s: len(v) for s, v in cands.items()},
            "required": {s: required(len(v), rate) for s, v in cands.items()},
            "checks": [{**c, "street_name": names.get(c["street"]),
                        "inspector_units": [units[n] for n in c["inspectors"]]} for c in checks]}


def reproduce(draw_id: int, *, engine: Engine | None = None) -> tuple[bool, list[dict[str, Any]]]:
    """Re-run a stored draw from its recorded seed, rate, candidates and roster: (same as stored?, redrawn)."""
    with (engine or get_engine()).connect() as conn:
        d = conn.execute(text("SELECT * FROM spot_draws WHERE id = :id"), {"id": draw_id}).first()
        if d is None:
            raise SpotCheckNotFound(f"没有抽签 no draw {draw_id}", field="draw")
        # the draw is compared whole (a street office verifies the district's draw); callers show their own part
        with scope.unscoped_lookup(conn):
            stored = conn.execute(text("SELECT street_code, compound_ref, inspectors FROM spot_checks "
                                       "WHERE draw_id = :id ORDER BY id"), {"id": draw_id}).all()
            names = {r.ref: r.name for r in conn.execute(text("SELECT ref, name FROM streets"))}
    roster = [Inspector(**p) for p in d.roster]
    again = draw_checks({k: list(v) for k, v in d.candidates.items()}, roster, seed=d.seed, rate=d.rate,
                        street_names=names)
    same = [(c["street"], c["compound"], c["inspectors"]) for c in again] == [
        (r.street_code, r.compound_ref, list(r.inspectors)) for r in stored]
    return same, again


def list_draws(campaign_id: int, *, engine: Engine | None = None) -> list[dict[str, Any]]:
    with (engine or get_engine()).connect() as conn:
        get_campaign(campaign_id, conn=conn)
        draws = conn.execute(text("SELECT id, seed, rate, drawn_by, drawn_at, roster_sha256, candidates, roster "
                                  "FROM spot_draws WHERE campaign_id = :c ORDER BY id"), {"c": campaign_id}).all()
        checks = conn.execute(text(
            "SELECT s.id, s.draw_id, s.compound_ref, s.street_code, s.inspectors, s.status, s.checked_at, "
            "c.name AS compound_name, st.name AS street_name, "
            "coalesce((SELECT jsonb_object_agg(i.item, i.result) FROM spot_check_items i WHERE i.check_id = s.id), "
            "'{}'::jsonb) AS items "
            "FROM spot_checks s LEFT JOIN compounds c ON c.ref = s.compound_ref "
            "LEFT JOIN streets st ON st.ref = s.street_code WHERE s.campaign_id = :c ORDER BY s.id"),
            {"c": campaign_id}).all()
    by_draw: dict[int, list[dict[str, Any]]] = {}
    for c in checks:
        by_draw.setdefault(c.draw_id, []).append({
            "id": c.id, "compound": c.compound_ref, "compound_name": c.compound_name, "street": c.street_code,
            "street_name": c.street_name, "inspectors": list(c.inspectors), "status": c.status,
            "checked_at": c.checked_at.isoformat() if c.checked_at else None, "items": dict(c.items)})
    return [{"draw": d.id, "seed": d.seed, "rate": d.rate, "drawn_by": d.drawn_by,
             "drawn_at": d.drawn_at.isoformat(), "roster_sha256": d.roster_sha256,
             "candidates": {s: list(v) for s, v in sorted(d.candidates.items())},
             "required": {s: required(len(v), d.rate) for s, v in sorted(d.candidates.items())},
             "roster": list(d.roster), "checks": by_draw.get(d.id, [])}
            for d in draws]


def within(draws: list[dict[str, Any]], streets: Sequence[str] | None) -> list[dict[str, Any]]:
    """`list_draws` as a caller bound to `streets` sees it: their streets' checks, candidates and quotas (None:
    all)."""
    if streets is None:
        return draws
    mine = set(streets)
    return [{**d, "checks": [c for c in d["checks"] if c["street"] in mine],
             "candidates": {s: v for s, v in d["candidates"].items() if s in mine},
             "required": {s: v for s, v in d["required"].items() if s in mine}} for d in draws]


# --- results --------------------------------------------------------------------------------------------------------


def record(check_id: int, *, compound: str, item: str, result: str, note: str | None = None,
           photos: Sequence[bytes] = (), actor: Actor, engine: Engine | None = None) -> dict[str, Any]:
    """Record one focus item's result of a spot check. A failed item reopens the compound's hazards of that item
    that were reported rectified (through the life cycle), or files a new MANUAL hazard of the item when none
    was; either way the check (and its street) counts as failed. Photos (file bytes) go with a failed item's
    hazards (the photo store keeps photos of hazards); a passed item takes none."""
    if item not in ITEM_CODES:
        raise SpotCheckError(f"未知检查项 unknown item {item!r}; items: {', '.join(ITEM_CODES)}", field="item")
    if result not in ("pass", "fail"):
        raise SpotCheckError(f"结果应为 pass 或 fail result must be pass or fail, got {result!r}", field="result")
    note = one_line_breaks(note) if note is not None else None
    if note is not None and len(note) > 2000:
        raise SpotCheckError("说明过长 note is longer than 2000 characters", field="note")
    why = why_refused(note)
    if why is not None:
        raise SpotCheckError(f"说明 note: {why}", field="note")
    if result == "fail" and not (note and note.strip()):
        raise SpotCheckError("不合格需要说明 a failed item needs a note (what was found)", field="note")
    if photos and result == "pass":
        raise SpotCheckError("合格项不附照片 photos belong to a failed item's hazards", field="photo")
    if len(photos) > 20:
        raise SpotCheckError("照片过多 at most 20 photos", field="photo")
    with transaction(user=actor.username, engine=engine or get_engine()) as conn:
        check = conn.execute(text("SELECT * FROM spot_checks WHERE id = :id FOR UPDATE"), {"id": check_id}).first()
        if check is None:
            raise SpotCheckNotFound(f"没有抽查 no spot check {check_id}", field="check")
        if check.compound_ref != compound:
            raise SpotCheckError(f"抽查 {check_id} 抽中的是小区 {check.compound_ref!r}, 不是 {compound!r} "
                                 f"spot check {check_id} drew compound {check.compound_ref!r}, not {compound!r}",
                                 field="compound")
        if conn.execute(text("SELECT 1 FROM spot_check_items WHERE check_id = :c AND item = :i"),
                        {"c": check_id, "i": item}).first():
            raise SpotCheckError(f"抽查 {check_id} 的 {item} 已记录 item {item} of spot check {check_id} is already "
                                 "recorded", field="item")
        hazard_ids: list[int] = []
        photo_ids: list[int] = []
        if result == "fail":
            hazard_ids = _fail_item(conn, check, item, note or "", actor)
            owner = ph.hazard_owner(conn, hazard_ids[0])
            photo_ids = [ph.add_photo(conn, data, owner=owner, kind="before", user=actor.username,
                                      field=f"photo[{i}]")["id"] for i, data in enumerate(photos)]
        conn.execute(text(
            "INSERT INTO spot_check_items (check_id, item, result, note, photos, hazard_ids, recorded_by) "
            "VALUES (:c, :i, :r, :n, CAST(:p AS jsonb), CAST(:h AS jsonb), :u)"),
            {"c": check_id, "i": item, "r": result, "n": note, "p": json.dumps(photo_ids),
             "h": json.dumps(hazard_ids), "u": actor.username})
        results: dict[str, str] = dict(conn.execute(text("SELECT item, result FROM spot_check_items WHERE check_id = :c"),
                                    {"c": check_id}).all())
        status = "failed" if "fail" in results.values() else (
            "passed" if set(results) >= set(ITEM_CODES) else "pending")
        conn.execute(text("UPDATE spot_checks SET status = :s, checked_at = now() WHERE id = :id"),
                     {"s": status, "id": check_id})
    return {"check": check_id, "compound": compound, "item": item, "result": result, "status": status,
            "hazards": hazard_ids, "photos": photo_ids}


def _fail_item(conn: Connection, check: Any, item: str, note: str, actor: Actor) -> list[int]:
    focus = BY_CODE[item]
    reason = f"抽查不合格 spot check {check.id} failed {focus.zh}: {note}"[:2000]
    reopened = []
    for hid in conn.execute(text(
            "SELECT id FROM hazards WHERE compound_ref = :r AND rule = ANY(:rules) "
            f"AND status IN {lc.sql_list(lc.REOPEN_ON_RECHECK)} ORDER BY id"),
            {"r": check.compound_ref, "rules": sorted(focus.rules)}).scalars():
        workflow.transition(conn, hid, "reopened", actor=actor, change=lc.Change(note=reason))
        reopened.append(int(hid))
    if reopened:
        return reopened
    # nothing of this item was reported: the finding is new, filed as the manual reports are (field side)
    wkt = conn.execute(text("SELECT ST_AsText(ST_PointOnSurface(geom)) FROM compounds WHERE ref = :r"),
                       {"r": check.compound_ref}).scalar()
    if wkt is None:
        raise SpotCheckError(f"没有小区 no compound {check.compound_ref!r}", field="compound")
    geom = shapely.from_wkt(wkt)
    place = locate(conn, geom)
    hid = reports.insert_hazard(conn, rule=BY_ID[focus.manual_rule], geom=geom, place=place, note=reason,
                                user=actor.username, source=f"spotcheck:{check.id}")
    reports.record_found(conn, hid, actor=actor, note=reason,
                         photos=())
    return [int(hid)]
