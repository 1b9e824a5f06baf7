"""SQLAlchemy/GeoAlchemy2 tables built from the layer declarations, plus the audit, run and user tables."""

from __future__ import annotations

from collections.abc import Callable

from geoalchemy2 import Geometry
from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.types import TypeEngine

from gis.campaign.lifecycle import EVIDENCE, MAX_DEPARTMENT, MAX_PERSON, MAX_UNIT, STATES
from gis.layers import COMMON_FIELDS, LAYERS, STORAGE_SRID, Field, Layer

#: The acting user, passed per transaction with `SET LOCAL firelane.user = '...'` (gis.db.transaction): the
#: tables' `updated_by`/`by` default and the audit triggers' `who` (gis.audit).
ACTING_USER_SQL = "coalesce(nullif(current_setting('firelane.user', true), ''), current_user)"


metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

_SQL_TYPES: dict[str, Callable[[], TypeEngine]] = {
    "text": Text,
    "int": Integer,
    "float": Float,
    "bool": Boolean,
    "date": Date,
    "timestamp": lambda: DateTime(timezone=True),
    "json": JSONB,
}


def _column(f: Field) -> Column:
    sql_type: TypeEngine
    if f.type == "text" and f.max_length:
        sql_type = String(f.max_length)
    else:
        sql_type = _SQL_TYPES[f.type]()
    return Column(f.name, sql_type, nullable=True, comment=f"{f.label_zh} {f.label_en}".strip()
                  + (f" [{f.unit}]" if f.unit else ""))


def _constraints(layer: Layer, f: Field) -> list[CheckConstraint]:
    out = []
    if f.minimum is not None:
        out.append(CheckConstraint(f"{f.name} >= {f.minimum}", name=f"{f.name}_min"))
    if f.maximum is not None:
        out.append(CheckConstraint(f"{f.name} <= {f.maximum}", name=f"{f.name}_max"))
    if f.choices:
        values = ", ".join(f"'{c}'" for c in f.choices)
        out.append(CheckConstraint(f"{f.name} IN ({values})", name=f"{f.name}_choice"))
    return out


def _layer_table(layer: Layer) -> Table:
    columns: list = [
        Column("id", BigInteger, primary_key=True, autoincrement=True),
    ]
    for f in COMMON_FIELDS:
        if f.name == "street_code" and not layer.in_street:
            continue
        if f.name == "compound_ref" and not layer.in_compound:
            continue
        columns.append(_column(f))
    if layer.in_compound:
        columns.append(Column("compound_id", BigInteger, ForeignKey("compounds.id", ondelete="SET NULL"),
                              nullable=True, index=True))
    for f in layer.fields:
        columns.append(_column(f))
        columns.extend(_constraints(layer, f))
    columns += [
        Column("extra", JSONB, nullable=False, server_default=text("'{}'::jsonb"),
               comment="columns of the source file that firelane does not model, kept for round trips"),
        Column("version", Integer, nullable=False, server_default=text("1")),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("updated_by", String(100), nullable=True, server_default=text(ACTING_USER_SQL)),
        Column("geom", Geometry(layer.geometry, srid=STORAGE_SRID, spatial_index=False), nullable=False),
        CheckConstraint("ST_IsValid(geom) AND NOT ST_IsEmpty(geom)", name="geom_valid"),
    ]
    table = Table(layer.name, metadata, *columns, comment=f"{layer.label_zh} {layer.label_en}")
    Index(f"ix_{layer.name}_geom", table.c.geom, postgresql_using="gist")
    Index(f"ix_{layer.name}_ref", table.c.ref, unique=layer.unique_ref)
    if layer.in_street:
        Index(f"ix_{layer.name}_street_code", table.c.street_code)
    if layer.in_compound:  # the checks read a group's features by their compound as well as by place
        Index(f"ix_{layer.name}_compound_ref", table.c.compound_ref)
    Index(f"ix_{layer.name}_updated_at", table.c.updated_at)
    return table


TABLES: dict[str, Table] = {name: _layer_table(layer) for name, layer in LAYERS.items()}
Index("ix_hazards_key", TABLES["hazards"].c.key, unique=True)
Index("ix_hazards_rule_status", TABLES["hazards"].c.rule, TABLES["hazards"].c.status)
Index("ix_hazards_status_deadline", TABLES["hazards"].c.status, TABLES["hazards"].c.deadline)
Index("ix_hazards_compound_ref", TABLES["hazards"].c.compound_ref)

hazard_events = Table(
    "hazard_events", metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("hazard_id", BigInteger, ForeignKey("hazards.id"), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("by", String(100), nullable=False, server_default=text(ACTING_USER_SQL)),
    Column("from_state", String(20)),
    Column("to_state", String(20), nullable=False),
    Column("note", Text),
    Column("department", String(MAX_DEPARTMENT)),
    Column("unit", String(MAX_UNIT)),
    Column("person", String(MAX_PERSON)),
    Column("deadline", Date),
    Column("photos", ARRAY(BigInteger), nullable=False, server_default=text("'{}'::bigint[]")),
    Column("evidence", String(30)),
    Column("run_id", BigInteger),
    CheckConstraint(f"to_state IN ({', '.join(repr(s) for s in STATES)})", name="to_state_choice"),
    CheckConstraint(f"from_state IS NULL OR from_state IN ({', '.join(repr(s) for s in STATES)})",
                    name="from_state_choice"),
    CheckConstraint(f"evidence IS NULL OR evidence IN ({', '.join(repr(e) for e in EVIDENCE)})",
                    name="evidence_choice"),
    Index("ix_hazard_events_hazard_id_at", "hazard_id", "at"),
    comment="隐患流转记录 hazard events: the append-only history of every hazard (gis.campaign.lifecycle)",
)

audit_log = Table(
    "audit_log", metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("layer", String(40), nullable=False),
    Column("feature_id", BigInteger, nullable=False),
    Column("action", String(10), nullable=False),
    Column("version", Integer),
    Column("changed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("changed_by", String(100)),
    Column("before", JSONB),
    Column("after", JSONB),
    # whose rows these are (row-level security, gis.jurisdiction): the feature's street(s) and compound(s),
    # before and after (a move between streets is both streets' history)
    Column("street_codes", ARRAY(Text), nullable=False, server_default=text("'{}'::text[]")),
    Column("compound_refs", ARRAY(Text), nullable=False, server_default=text("'{}'::text[]")),
    Index("ix_audit_log_layer_feature", "layer", "feature_id"),
    comment="审计日志 audit history of every write, written by triggers",
)

check_runs = Table(
    "check_runs", metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("started_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("finished_at", DateTime(timezone=True)),
    Column("status", String(20), nullable=False, server_default=text("'running'")),
    Column("profile", String(60), nullable=False),
    Column("profile_version", String(40), nullable=False),
    Column("scope", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("counts", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("progress", Float, nullable=False, server_default=text("0")),
    Column("duration_s", Float),
    Column("started_by", String(100)),
    Column("error", Text),
    Column("job_id", BigInteger, ForeignKey("jobs.id", ondelete="SET NULL"), index=True),
    comment="检查批次 check runs",
)

users = Table(
    "users", metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("username", String(100), nullable=False, unique=True),
    Column("display_name", String(200)),
    Column("password_hash", Text, nullable=False),
    Column("role", String(30), nullable=False),
    Column("street_codes", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    Column("compound_refs", JSONB, nullable=False, server_default=text("'[]'::jsonb"),
           comment="物业用户所管小区 compounds a property-company user is bound to"),
    Column("active", Boolean, nullable=False, server_default=text("true")),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint(
        "role IN ('admin', 'planner', 'street_office', 'traffic_brigade', 'demolition', 'fire_brigade', 'viewer', "
        "'property')",
        name="role_choice",
    ),
    comment="用户 users",
)

api_tokens = Table(
    "api_tokens", metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("user_id", BigInteger, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("token_hash", String(128), nullable=False, unique=True),
    Column("name", String(100)),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("expires_at", DateTime(timezone=True)),
    Column("revoked", Boolean, nullable=False, server_default=text("false")),
    comment="访问令牌 API tokens (hashed)",
)

login_attempts = Table(
    "login_attempts", metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("key", String(200), nullable=False),  # "user:<name>" or "addr:<client address>"
    Column("at", DateTime(timezone=True), nullable=False, server_default=func.clock_timestamp()),
    Index(None, "key", "at"),
    Index(None, "at"),
    comment="登录尝试 login attempts: a sliding window shared by every worker (rows older than it are purged)",
)

jobs = Table(
    "jobs", metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("kind", String(40), nullable=False),
    Column("params", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("status", String(20), nullable=False, server_default=text("'queued'")),
    Column("progress", Float, nullable=False, server_default=text("0")),
    Column("result", JSONB),
    Column("error", Text),
    Column("created_by", String(100)),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("started_at", DateTime(timezone=True)),
    Column("finished_at", DateTime(timezone=True)),
    Column("heartbeat_at", DateTime(timezone=True)),
    Column("worker_host", String(255)),
    Column("worker_pid", Integer),
    Column("worker_started", Float),
    CheckConstraint("status IN ('queued', 'running', 'succeeded', 'failed')", name="status_choice"),
    CheckConstraint("progress >= 0 AND progress <= 1", name="progress_range"),
    Index("ix_jobs_status_id", "status", "id"),
    comment="后台任务 persisted jobs (check runs, reports): created first, claimed by a worker",
)

campaigns = Table(
    "campaigns", metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False),
    Column("preset", String(40)),
    Column("year", Integer),
    Column("district_code", String(6)),
    Column("jurisdiction", JSONB, nullable=False, server_default=text("'[]'::jsonb"),
           comment="street codes; empty: every street of the database"),
    Column("pilot_streets", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    Column("milestones", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    Column("settings", JSONB, nullable=False, server_default=text("'{}'::jsonb"),
           comment="spot-check rate, cost shares, warranty years, renovation plan"),
    Column("summary_due", Date),
    Column("created_by", String(100)),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    comment="整治行动 campaigns: a dated plan over a jurisdiction",
)

campaign_stages = Table(
    "campaign_stages", metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("campaign_id", BigInteger, ForeignKey("campaigns.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("seq", Integer, nullable=False),
    Column("code", String(40), nullable=False),
    Column("name_zh", String(100), nullable=False),
    Column("name_en", String(100), nullable=False),
    Column("starts_on", Date, nullable=False),
    Column("ends_on", Date, nullable=False),
    Column("report_due", Date),
    Column("produces", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    CheckConstraint("ends_on >= starts_on", name="dates_order"),
    comment="整治阶段 campaign stages (contiguous, no overlap)",
)

campaign_inspections = Table(
    "campaign_inspections", metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("campaign_id", BigInteger, ForeignKey("campaigns.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("compound_ref", String(200), nullable=False),
    Column("street_code", String(12)),
    Column("kind", String(20), nullable=False),
    Column("on_date", Date, nullable=False),
    Column("unit", String(200)),
    Column("inspector", String(200)),
    Column("note", Text),
    Column("recorded_by", String(100)),
    Column("recorded_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint("kind IN ('self', 'inspection', 'recheck')", name="kind_choice"),
    Index("ix_campaign_inspections_compound", "campaign_id", "compound_ref"),
    comment="自查/检查/复查记录 self-inspections by property companies, street-led inspections, re-inspections",
)

spot_draws = Table(
    "spot_draws", metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("campaign_id", BigInteger, ForeignKey("campaigns.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("seed", BigInteger, nullable=False),
    Column("rate", Float, nullable=False),
    Column("algorithm", Text, nullable=False),
    Column("candidates", JSONB, nullable=False, comment="street code -> candidate compound refs, in draw order"),
    Column("roster", JSONB, nullable=False, comment="the roster as read: [{name, unit, street}]"),
    Column("roster_sha256", String(64), nullable=False),
    Column("drawn_by", String(100)),
    Column("drawn_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint("rate > 0 AND rate <= 1", name="rate_range"),
    comment="双随机抽查抽签 spot-check draws: seed, candidates and roster recorded for audit",
)

spot_checks = Table(
    "spot_checks", metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("draw_id", BigInteger, ForeignKey("spot_draws.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("campaign_id", BigInteger, ForeignKey("campaigns.id", ondelete="CASCADE"), nullable=False),
    Column("compound_ref", String(200), nullable=False),
    Column("street_code", String(12), nullable=False),
    Column("inspectors", JSONB, nullable=False),
    Column("status", String(20), nullable=False, server_default=text("'pending'")),
    Column("checked_at", DateTime(timezone=True)),
    CheckConstraint("status IN ('pending', 'passed', 'failed')", name="status_choice"),
    comment="抽查 spot checks: one drawn compound and its two inspectors",
)

spot_check_items = Table(
    "spot_check_items", metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("check_id", BigInteger, ForeignKey("spot_checks.id", ondelete="CASCADE"), nullable=False),
    Column("item", String(20), nullable=False),
    Column("result", String(10), nullable=False),
    Column("note", Text),
    Column("photos", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    Column("hazard_ids", JSONB, nullable=False, server_default=text("'[]'::jsonb"),
           comment="hazards reopened or created by a failed item"),
    Column("recorded_by", String(100)),
    Column("recorded_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint("result IN ('pass', 'fail')", name="result_choice"),
    Index("ix_spot_check_items_check_item", "check_id", "item", unique=True),
    comment="抽查结果 spot-check results per Changle focus item",
)

# --- field side: photos, public complaints, facility checklists (gis/campaign) -----------------------------------

complaints = Table(
    "complaints", metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("tracking_code", String(32), nullable=False, unique=True),
    Column("category", String(40), nullable=False),
    Column("description", Text, nullable=False),
    Column("status", String(20), nullable=False, server_default=text("'pending'")),
    Column("street_code", String(12), nullable=True, comment="derived from the point, never claimed"),
    Column("compound_id", BigInteger, ForeignKey("compounds.id", ondelete="SET NULL"), nullable=True),
    Column("compound_ref", String(200), nullable=True),
    Column("submitted_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("triaged_by", String(100)),
    Column("triaged_at", DateTime(timezone=True)),
    Column("reason", Text),
    Column("hazard_id", BigInteger, ForeignKey("hazards.id", ondelete="SET NULL"), nullable=True),
    Column("geom", Geometry("POINT", srid=STORAGE_SRID, spatial_index=False), nullable=False),
    CheckConstraint("status IN ('pending', 'accepted', 'rejected')", name="status_choice"),
    CheckConstraint("status <> 'rejected' OR reason IS NOT NULL", name="reject_reason"),
    Index("ix_complaints_street_status", "street_code", "status"),
    comment="举报投诉 public complaints (no personal data) and their triage",
)

complaint_hits = Table(
    "complaint_hits", metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("address_hash", String(64), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("ix_complaint_hits_address_at", "address_hash", "at"),
    comment="举报频率 complaint submissions per client address (hashed), for the rate limit across workers",
)

checklist_items = Table(
    "checklist_items", metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("compound_id", BigInteger, ForeignKey("compounds.id", ondelete="CASCADE"), nullable=False),
    Column("compound_ref", String(200), nullable=False),
    Column("street_code", String(12), nullable=True),
    Column("item", String(40), nullable=False),
    Column("subject", String(200), nullable=False, server_default=text("''"),
           comment="the building of a per-building item (楼长), else empty"),
    Column("status", String(20), nullable=False),
    Column("checked_on", Date, nullable=False),
    Column("note", Text),
    Column("details", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("hazard_id", BigInteger, ForeignKey("hazards.id", ondelete="SET NULL"), nullable=True),
    Column("checked_by", String(100)),
    Column("checked_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("version", Integer, nullable=False, server_default=text("1")),
    CheckConstraint("status IN ('pass', 'fail', 'not_applicable')", name="status_choice"),
    Index("ix_checklist_items_compound_item_subject", "compound_id", "item", "subject", unique=True),
    comment="自查自纠 facility checklist per compound (整治任务 二/四): one current row per item",
)

photos = Table(
    "photos", metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("sha256", String(64), nullable=False, comment="content address in the photo store"),
    Column("hazard_id", BigInteger, ForeignKey("hazards.id", ondelete="CASCADE"), nullable=True, index=True),
    Column("complaint_id", BigInteger, ForeignKey("complaints.id", ondelete="CASCADE"), nullable=True, index=True),
    Column("checklist_id", BigInteger, ForeignKey("checklist_items.id", ondelete="SET NULL"), nullable=True,
           index=True),
    Column("compound_id", BigInteger, ForeignKey("compounds.id", ondelete="SET NULL"), nullable=True),
    Column("compound_ref", String(200), nullable=True, comment="derived from the owner"),
    Column("street_code", String(12), nullable=True, comment="derived from the owner"),
    Column("kind", String(10), nullable=False, server_default=text("'other'")),
    Column("media_type", String(40), nullable=False, comment="sniffed from the content"),
    Column("size_bytes", BigInteger, nullable=False),
    Column("width", Integer),
    Column("height", Integer),
    Column("exif_time", DateTime(timezone=True)),
    Column("exif_geom", Geometry("POINT", srid=STORAGE_SRID, spatial_index=False), nullable=True),
    Column("filename", String(200), nullable=False),
    Column("uploaded_by", String(100)),
    Column("uploaded_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint("kind IN ('before', 'after', 'other')", name="kind_choice"),
    CheckConstraint("media_type IN ('image/jpeg', 'image/png', 'image/webp', 'image/heic', 'application/pdf')",
                    name="media_type_choice"),
    CheckConstraint("hazard_id IS NOT NULL OR complaint_id IS NOT NULL OR checklist_id IS NOT NULL", name="owner"),
    comment="照片与附件 photos and documents of hazards, complaints and checklist items",
)
