"""Settings, one pydantic-settings class per concern, all read from FIRELANE_* environment variables."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from platformdirs import user_data_dir
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class HomeSettings(BaseSettings):
    """Where firelane keeps its managed database and files (FIRELANE_HOME)."""

    model_config = SettingsConfigDict(env_prefix="FIRELANE_")
    home: Path = Field(default_factory=lambda: Path(user_data_dir("firelane")))


class DatabaseSettings(BaseSettings):
    """The PostGIS to use: FIRELANE_DATABASE_URL, or the managed local cluster when unset."""

    model_config = SettingsConfigDict(env_prefix="FIRELANE_DATABASE_")
    #: What the API, pages, checks and data commands connect with: a least-privilege role (see README).
    url: str | None = None
    #: The schema owner, for `firelane init` (migrations) and backups; unset: `url` (which must then own the schema).
    owner_url: str | None = None
    #: A role to SET ROLE to after connecting with `url` (one login for both: the owner logs in, works as this).
    app_role: str | None = None
    pool_size: int = 10
    max_overflow: int = 0  # overflow connections are closed on return: each new backend re-pays PostGIS/PROJ set-up
    pool_timeout_s: float = 5.0
    statement_timeout_ms: int = 120_000


class ServerSettings(BaseSettings):
    """The HTTP service (firelane serve)."""

    model_config = SettingsConfigDict(env_prefix="FIRELANE_SERVER_")
    host: str = "127.0.0.1"
    port: int = 8000
    default_limit: int = 10
    max_limit: int = 10_000
    max_upload_bytes: int = 50 * 1024 * 1024
    secret_key: str | None = None
    allow_anonymous: bool = False
    login_attempts_per_minute: int = 10  # per account and login window (FIRELANE_AUTH_LOGIN_WINDOW_S)
    login_attempts_per_address: int = 50  # per client address and login window
    trusted_proxies: str = ""  # comma-separated addresses/networks whose X-Forwarded-For is believed; none by default


class LimitSettings(BaseSettings):
    """Bounds on what a client may send: imported files and API bodies (FIRELANE_LIMIT_*)."""

    model_config = SettingsConfigDict(env_prefix="FIRELANE_LIMIT_")
    file_bytes: int = 1024 * 1024 * 1024  # a source file (CSV, GeoJSON, ...) as stored on disk
    uncompressed_bytes: int = 1024 * 1024 * 1024  # all members of a zip (shapefile zip, XLSX, KMZ) inflated
    compression_ratio: float = 200.0  # one zip member's inflated / compressed size (counted above 16 MiB only)
    archive_entries: int = 10_000
    rows: int = 2_000_000
    columns: int = 500
    extra_keys: int = 200  # keys of one feature's `extra` (and extra columns of a file)
    extra_key_chars: int = 100
    extra_bytes: int = 64 * 1024  # one feature's `extra` as JSON
    json_depth: int = 32  # nesting of an API request's JSON body
    concurrent_hashes: int = 4  # argon2 password checks at once per worker process (64 MiB each)
    hash_wait_s: float = 2.0  # how long a login waits for a hashing slot before 503


class CheckSettings(BaseSettings):
    """The rule engine (firelane check)."""

    model_config = SettingsConfigDict(env_prefix="FIRELANE_CHECK_")
    profile: str = "cn-gb"
    workers: int = 1


class AuthSettings(BaseSettings):
    """Users, tokens and the login cookie of the HTTP service."""

    model_config = SettingsConfigDict(env_prefix="FIRELANE_AUTH_")
    token_ttl_hours: float = 12.0
    cookie_name: str = "firelane_token"
    cookie_secure: bool = False
    token_cache_s: float = 5.0
    login_window_s: float = 60.0


class ApiSettings(BaseSettings):
    """OGC API tuning: counts, caches, tiles, readiness."""

    model_config = SettingsConfigDict(env_prefix="FIRELANE_API_")
    count_cap: int = 0  # > 0: numberMatched from a count capped at this (one more query per page with a next page)
    count_exact_max: int = 200_000  # first pages: numberMatched counted up to this; bigger tables: planner's rows
    require_if_match: bool = False  # True: edits without If-Match get 428 (by default they are unconditional)
    tile_cache_mb: float = 64.0  # per worker; 0 turns the tile cache off
    cache_max_age_s: int = 60
    extent_cache_s: float = 60.0
    tile_extent: int = 4096
    tile_buffer: int = 64
    readyz_timeout_s: float = 2.0


class PhotoSettings(BaseSettings):
    """Photo and document uploads: storage backend, size and pixel limits, thumbnails."""

    model_config = SettingsConfigDict(env_prefix="FIRELANE_PHOTO_")
    backend: str = "file"  # the content-addressed store under FIRELANE_HOME/photos (an S3 backend fits the interface)
    max_bytes: int = 20 * 1024 * 1024
    # Pillow's decompression-bomb guard is set to this (its default, ~89 MP, is left to no chance): 50 MP holds
    # every phone camera's full-resolution picture
    max_pixels: int = 50_000_000
    thumb_px: int = 320
    max_per_request: int = 10


class ComplaintSettings(BaseSettings):
    """Public complaints (举报投诉): per-address rate limits and size limits of the unauthenticated form."""

    model_config = SettingsConfigDict(env_prefix="FIRELANE_COMPLAINT_")
    per_hour: int = 5
    per_day: int = 20
    max_text: int = 2000
    max_photo_bytes: int = 10 * 1024 * 1024


@lru_cache
def photo_settings() -> PhotoSettings:
    return PhotoSettings()


@lru_cache
def complaint_settings() -> ComplaintSettings:
    return ComplaintSettings()


@lru_cache
def auth_settings() -> AuthSettings:
    return AuthSettings()


@lru_cache
def api_settings() -> ApiSettings:
    return ApiSettings()


@lru_cache
def home_settings() -> HomeSettings:
    return HomeSettings()


@lru_cache
def database_settings() -> DatabaseSettings:
    return DatabaseSettings()


@lru_cache
def limit_settings() -> LimitSettings:
    return LimitSettings()


@lru_cache
def server_settings() -> ServerSettings:
    return ServerSettings()


def clear_caches() -> None:
    """Re-read settings from the environment (tests change FIRELANE_* between sessions)."""
    for f in (home_settings, database_settings, server_settings, auth_settings, api_settings, photo_settings,
              complaint_settings, limit_settings, workflow_settings):
        f.cache_clear()


class WorkflowSettings(BaseSettings):
    """The rectification workflow (gis.campaign): the time zone deadlines are counted in."""

    model_config = SettingsConfigDict(env_prefix="FIRELANE_WORKFLOW_")
    timezone: str = "Asia/Shanghai"


@lru_cache
def workflow_settings() -> WorkflowSettings:
    return WorkflowSettings()
