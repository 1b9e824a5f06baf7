"""Which schema a database has: this build's migration head and fingerprint against the database's revision and
stamp, read without Alembic (what a command checks before it uses the database)."""

from __future__ import annotations

import ast
import hashlib
import importlib
import re
from functools import cache
from pathlib import Path

from sqlalchemy import Connection, Engine, text

MIGRATIONS = Path(__file__).with_name("migrations")


class NotTheOwner(RuntimeError):
    """The migration role does not own the schema's tables (a database made before the owner/application role
    split): what a superuser must run is in the message."""


class SchemaDrift(RuntimeError):
    """The database is at this build's revision but was made from other migration files: 0001 is regenerated
    until the schema is released, so a database made by an earlier development build lacks what this one adds
    (columns, functions, indexes) while Alembic believes it is up to date."""


def fingerprint() -> str:
    """sha256 of the migration files and of the SQL they take from this package (`generated_sql`): what a database
    made by this build records beside its revision."""
    digest = hashlib.sha256()
    for path in sorted((MIGRATIONS / "versions").glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
        for name, sql in generated_sql(path):
            digest.update(name.encode() + b"\0" + sql.encode() + b"\0")
    return digest.hexdigest()


def generated_sql(path: Path) -> list[tuple[str, str]]:
    """The SQL a migration file runs that this package writes: what each name it imports from `gis` returns (the
    trigger, function and policy builders, which take no arguments). A change there changes the schema a new
    database gets as surely as an edit of the file does."""
    source = path.read_text(encoding="utf-8")
    out = []
    for line in source.splitlines():
        if line.startswith("from gis"):
            found = _IMPORT.fullmatch(line)
            if found is None:  # (a parenthesised or aliased import would be missed: say so)
                raise ValueError(f"{path.name}: write imports from gis as `from gis.x import a, b` on one line: {line}")
            module = importlib.import_module(found[1])
            for name in found[2].split(","):
                out.append((f"{found[1]}.{name.strip()}", getattr(module, name.strip())()))
    return out


#: Migration files are read as text (an AST parse of 0001 costs 35 ms on every command): one-line imports from gis,
#: and Alembic's `revision = '...'` / `down_revision = ...` assignments.
_IMPORT = re.compile(r"from (gis(?:\.\w+)*) import (\w+(?:, \w+)*)")
_REVISION = re.compile(r"^(revision|down_revision) = (.+)$", re.MULTILINE)


#: The built-from record: a comment on Alembic's own table, so it travels in pg_dump backups with the revision.
STAMP_PREFIX = "firelane migrations sha256:"


def stamp(conn: Connection) -> str | None:
    """The fingerprint the database was made with, or None (no schema yet, or made before stamps existed)."""
    comment = conn.execute(text("SELECT obj_description(to_regclass('alembic_version'), 'pg_class')")).scalar()
    if comment is None or not comment.startswith(STAMP_PREFIX):
        return None
    return str(comment[len(STAMP_PREFIX):])


def check_drift(conn: Connection, ours: str | None = None) -> None:
    """Raise SchemaDrift when the database already has a schema made from other migration files than these
    (`ours`: their fingerprint, when the caller has it already)."""
    if conn.execute(text("SELECT to_regclass('alembic_version')")).scalar() is None:
        return  # a new database: nothing made yet
    ours = ours or fingerprint()
    theirs = stamp(conn)
    if theirs != ours:
        db = conn.execute(text("SELECT current_database()")).scalar()
        raise SchemaDrift(
            f"数据库 {db} 由另一开发版本的迁移文件建立 (记录 {(theirs or '无')[:12]}, 本版本 {ours[:12]}), 结构与本版本不符: "
            f"请先 `firelane backup -o 备份.tar`, 再换用新的数据库 (托管数据库: `firelane demo` 会自动备份并重建; "
            f"或新的 FIRELANE_HOME) | database {db} was made from other migration files "
            f"(recorded {(theirs or 'none')[:12]}, this build {ours[:12]}): schema revision 0001 is regenerated until "
            f"the schema is released, so it lacks what this build adds. Back it up (`firelane backup -o FILE`), then "
            f"use a new database (the managed one: `firelane demo` backs it up and rebuilds it; or a new FIRELANE_HOME)")


@cache
def head() -> str:
    """This build's head revision, read from the migration files (the revision no other revises)."""
    revisions: dict[str, object] = {}
    for path in sorted((MIGRATIONS / "versions").glob("*.py")):
        found = dict(_REVISION.findall(path.read_text(encoding="utf-8")))
        revisions[ast.literal_eval(found["revision"])] = ast.literal_eval(found["down_revision"])
    revised = {r for down in revisions.values() for r in (down if isinstance(down, tuple) else (down,))}
    heads = sorted(set(revisions) - revised)
    if len(heads) != 1:
        raise RuntimeError(f"migration files have {len(heads)} heads: {heads}")
    return heads[0]


def is_current(engine: Engine) -> bool:
    """Whether the database is at this build's head and was made from these migrations (nothing to migrate, no
    drift): two catalogue reads, no Alembic."""
    with engine.connect() as conn:
        if conn.execute(text("SELECT to_regclass('alembic_version')")).scalar() is None:
            return False
        at = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
        return bool(at == head() and stamp(conn) == fingerprint())
