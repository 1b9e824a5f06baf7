"""Database access: the engine for FIRELANE_DATABASE_URL or the managed cluster, sessions acting as a user."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

import psycopg
from sqlalchemy import Connection, Engine, create_engine, event, make_url, text

from gis import pgcluster, scope
from gis.config import database_settings


def _psycopg_url(configured: str) -> str:
    for prefix in ("postgresql+psycopg2://", "postgres://", "postgresql://"):
        if configured.startswith(prefix):
            return "postgresql+psycopg://" + configured[len(prefix):]
    return configured


def database_url(*, start_managed: bool = True) -> str:
    """The application's URL: FIRELANE_DATABASE_URL when set (any postgresql:// URL, normalised to psycopg 3), else
    the managed cluster's least-privilege role."""
    configured = database_settings().url
    if configured:
        return _psycopg_url(configured)
    return pgcluster.url(start_if_needed=start_managed)


def owner_url(*, start_managed: bool = True) -> str:
    """The schema owner's URL (migrations, backups): FIRELANE_DATABASE_OWNER_URL, else FIRELANE_DATABASE_URL, else
    the managed cluster's owner role."""
    settings = database_settings()
    if settings.owner_url or settings.url:
        return _psycopg_url(settings.owner_url or settings.url or "")
    return pgcluster.url(start_if_needed=start_managed, owner=True)


def raw_connection(conn: Connection) -> psycopg.Connection:
    """The psycopg connection under a SQLAlchemy one (COPY, savepoints and other driver-level calls)."""
    raw = conn.connection.driver_connection
    if raw is None:  # a pooled connection that was invalidated: no driver connection to use
        raise RuntimeError("the database connection is closed")
    return raw


@lru_cache(maxsize=256)
def pyformat(sql: str) -> str:
    """SQL written for SQLAlchemy's text() (`:name` binds) for a raw psycopg cursor (`%(name)s`), by SQLAlchemy's
    own bind rule: literal % doubled, `::type` casts and `\\:` escapes untouched."""
    return re.sub(r"(?<![:\w\\]):(\w+)(?!:)", r"%(\1)s", sql.replace("%", "%%"))


def libpq_conninfo(engine: Engine) -> str:
    """`engine`'s database as a plain libpq URL (password included) for psycopg connections outside SQLAlchemy."""
    return engine.url.set(drivername="postgresql").render_as_string(hide_password=False)


def session_options(*, app: bool = True) -> str:
    """libpq `options` of every connection: the statement timeout and, for the application with
    FIRELANE_DATABASE_APP_ROLE, the role it works as (SET ROLE at connect)."""
    settings = database_settings()
    options = f"-c statement_timeout={settings.statement_timeout_ms}"
    if app and settings.app_role:
        options += f" -c role={settings.app_role}"
    return options


@lru_cache
def _engine_for(url: str, owner: bool = False) -> Engine:
    settings = database_settings()
    engine = create_engine(
        url,
        pool_size=settings.pool_size,
        max_overflow=settings.max_overflow,
        pool_timeout=settings.pool_timeout_s,
        pool_pre_ping=True,  # a PostgreSQL restart costs one failed ping, not a broken pool
        connect_args={"connect_timeout": 5, "options": session_options(app=not owner)},
    )

    @event.listens_for(engine, "checkout")
    def _carry_scope(dbapi_connection: Any, record: Any, proxy: Any) -> None:  # SQLAlchemy's checkout event
        # every connection handed out carries the scope of the code asking for it (gis.scope); the owner's
        # engine (migrations, backups) always works unscoped, explicitly
        scope.apply(dbapi_connection, scope.SYSTEM if owner else scope.current())

    return engine


@lru_cache
def _resolved_url() -> str:
    return database_url()


def get_engine() -> Engine:
    """The process-wide engine (psycopg 3 driver).

    The URL is resolved once per process (starting the managed PostGIS on first use); afterwards a stopped
    database shows up as failing connections (the API answers 503), never as a silent restart.
    """
    return _engine_for(_resolved_url())


#: Passwords of the databases whose password-free URLs this process handed to check workers (`shareable_url`): a
#: worker thread of this process (an in-process Dask cluster) finds the password here.
_PASSWORDS: dict[str, str] = {}


def shareable_url(engine: Engine) -> str:
    """`engine`'s URL without its password, for a task that travels through a Dask scheduler (whose logs, state and
    remote workers are not this process); the password stays in this process for `engine_for_shared_url`."""
    url = engine.url._replace(password=None).render_as_string(hide_password=False)
    if engine.url.password is not None:
        _PASSWORDS[url] = str(engine.url.password)
    return url


def engine_for_shared_url(url: str) -> Engine:
    """The engine of a `shareable_url` in a check worker: with the password this process knows for it, else the
    worker's own libpq credentials (PGPASSWORD, PGPASSFILE or ~/.pgpass: what a remote Dask worker needs)."""
    password = _PASSWORDS.get(url)
    if password is not None:
        url = make_url(url).set(password=password).render_as_string(hide_password=False)
    return _engine_for(url)


def owner_engine() -> Engine:
    """The schema owner's engine: migrations (`firelane init`) and backups, never the API."""
    return _engine_for(_resolved_owner_url(), True)


@lru_cache
def _resolved_owner_url() -> str:
    return owner_url()


def reset_engine() -> None:
    """Forget cached engines and the resolved URL (tests switch databases)."""
    _engine_for.cache_clear()
    _resolved_url.cache_clear()
    _resolved_owner_url.cache_clear()


@contextmanager
def transaction(*, user: str | None = None, engine: Engine | None = None) -> Iterator[Connection]:
    """One transaction that commits on success and rolls back on any error; `user` goes to the audit log."""
    engine = engine or get_engine()
    with engine.begin() as conn:
        if user:
            conn.execute(text("SELECT set_config('firelane.user', :u, true)"), {"u": user})
        yield conn
