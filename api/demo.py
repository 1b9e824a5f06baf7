"""`firelane demo`: start the database, load the sample district, run the checks, create a demo admin, serve."""

from __future__ import annotations

import secrets
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import uvicorn
from sqlalchemy import Engine, text

from api.auth import forget_tokens
from api.users import create_user, update_user
from gis import migrate, pgcluster, scope
from gis.checks.runner import run_checks
from gis.config import database_settings, home_settings
from gis.db import get_engine
from gis.ops.backup import backup
from gis.sample import generate, load_sample
from gis.schema_version import SchemaDrift
from web.data import OPEN_SQL

DEMO_USER = "demo-admin"


@dataclass
class DemoResult:
    """What the demo set up: the base URL, the page URLs (zh/en label → URL) and the admin's credentials."""

    base_url: str
    username: str
    password: str
    urls: dict[str, str] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)


def _say(out: Callable[[str], None], zh: str, en: str) -> None:
    out(f"{zh} {en}")


def _demo_admin(*, engine: Engine) -> tuple[str, str]:
    """Create (or reset) the demo admin with a fresh random password; returns (username, password)."""
    password = secrets.token_urlsafe(12)
    with engine.connect() as conn:
        exists = conn.execute(text("SELECT 1 FROM users WHERE username = :u"), {"u": DEMO_USER}).first()
    if exists:
        update_user(DEMO_USER, role="admin", street_codes=[], active=True, password=password)
        forget_tokens()
    else:
        create_user(DEMO_USER, password, role="admin", display_name="演示管理员 demo admin")
    return DEMO_USER, password


def _migrate(out: Callable[[str], None]) -> str:
    """Migrate as the schema owner (the app role has no DDL). A managed database made by an earlier development
    build (SchemaDrift) is backed up under FIRELANE_HOME/backups and rebuilt; an external one is not
    touched."""
    try:
        return migrate.upgrade()
    except SchemaDrift as drift:
        if database_settings().url is not None:
            raise
        kept = Path(home_settings().home).expanduser() / "backups" / f"before-rebuild-{time.strftime('%Y%m%dT%H%M%S')}.tar"
        try:
            backup(kept)
        except Exception as exc:  # whatever the old schema lacks: keep the database, say why
            raise SchemaDrift(f"{drift}; 自动备份失败, 未重建 the automatic backup failed, nothing was "
                                      f"rebuilt: {exc}") from exc
        _say(out, f"托管数据库由另一开发版本建立: 已备份到 {kept}, 重建中…",
             f"the managed database was made by another development build: backed up to {kept}, rebuilding…")
        return migrate.rebuild_managed()


def page_urls(base: str, *, engine: Engine) -> dict[str, str]:
    """The map pages of the loaded district: the street and compound with the most open hazards, and the rest."""
    with engine.connect() as conn:
        street = conn.execute(text(
            "SELECT s.ref FROM streets s LEFT JOIN hazards t ON t.street_code = s.ref AND "
            f"{OPEN_SQL} GROUP BY s.ref ORDER BY count(t.id) DESC, s.ref LIMIT 1")).scalar()
        compound = conn.execute(text(
            "SELECT c.ref FROM compounds c LEFT JOIN hazards t ON t.compound_ref = c.ref AND "
            f"{OPEN_SQL} GROUP BY c.ref ORDER BY count(t.id) DESC, c.ref LIMIT 1")).scalar()
    urls = {"登录 Sign in": f"{base}/login", "地图首页 Map index": f"{base}/map"}
    if street is not None:
        urls["街道隐患热力图 Street hazard heatmap"] = f"{base}/map/streets/{quote(str(street), safe='')}"
    if compound is not None:
        urls["一小区一档 Compound file"] = f"{base}/map/compounds/{quote(str(compound), safe='')}"
    urls.update({
        "交警 停车冲突 Traffic: parking conflicts": f"{base}/map/traffic",
        "拆违清单 Demolition: illegal structures": f"{base}/map/demolition",
        "绘制消防车道 Draw fire lanes": f"{base}/map/draw",
        "OGC API 首页 OGC API landing page": f"{base}/",
    })
    return urls


def run_demo(*, district: str = "yinzhou", scale: str = "s", seed: int = 1, host: str = "127.0.0.1",
             port: int = 8000, workers: int = 1, serve: bool = True,
             out: Callable[[str], None] = print) -> DemoResult:
    """Start the managed PostGIS (unless FIRELANE_DATABASE_URL), migrate, load the sample district, check it,
    create the demo admin (random password, printed), print the page URLs and serve them with uvicorn.

    With ``serve=False`` everything is set up and the function returns instead of serving.
    """
    started = time.perf_counter()
    if database_settings().url is None:
        _say(out, "启动托管数据库…", "starting the managed PostGIS…")
        state = pgcluster.start()
        _say(out, f"  数据库运行中 127.0.0.1:{state.port}", f"database running ({state.datadir})")
    else:
        _say(out, "使用 FIRELANE_DATABASE_URL 指定的数据库", "using the database of FIRELANE_DATABASE_URL")
    revision = _migrate(out)
    engine = get_engine()
    scope.enter(scope.SYSTEM)  # the demo loads and checks the whole district (row-level security)
    _say(out, f"数据库结构已是最新 ({revision})", "schema up to date")

    _say(out, f"生成样例区县 {district} (规模 {scale}, 种子 {seed})…",
         f"generating the sample district {district} (scale {scale}, seed {seed})…")
    sample = generate(district=district, scale=scale, seed=seed)
    load_sample(sample)
    summary = getattr(sample, "summary", None)
    if callable(summary):
        out(summary())
    _say(out, "样例数据已载入", "sample data loaded")

    _say(out, "运行规则检查…", "running the rule checks…")
    result = run_checks(engine=engine, user="demo", progress=sys.stderr.isatty())
    _say(out, f"检查完成: {result.failures} 项不合格, 用时 {result.duration_s:.1f} 秒",
         f"checks done: {result.failures} failures in {result.duration_s:.1f} s")

    username, password = _demo_admin(engine=engine)
    base = f"http://{'127.0.0.1' if host in ('0.0.0.0', '') else host}:{port}"
    urls = page_urls(base, engine=engine)
    with engine.connect() as conn:
        counts = {name: conn.execute(text(f"SELECT count(*) FROM {name}")).scalar_one()
                  for name in ("streets", "compounds", "buildings", "fire_lanes", "hazards")}
    out("")
    _say(out, "演示管理员 (仅用于演示, 每次运行重新生成密码):", "demo admin (demo only; a new password every run):")
    out(f"  用户名 user name: {username}")
    out(f"  密码 password:    {password}")
    out("")
    _say(out, "页面:", "pages:")
    for label, url in urls.items():
        out(f"  {label}: {url}")
    _say(out, f"准备用时 {time.perf_counter() - started:.1f} 秒", f"set up in {time.perf_counter() - started:.1f} s")
    demo = DemoResult(base_url=base, username=username, password=password, urls=urls, counts=counts)
    if serve:
        _say(out, f"服务已启动 {base} (Ctrl+C 停止)", f"serving on {base} (Ctrl+C to stop)")
        serve_app(host=host, port=port, workers=workers)
    return demo


#: How long uvicorn's supervisor waits for a worker to answer a health ping before it kills and replaces it.
WORKER_HEALTHCHECK_S = 60


def serve_app(*, host: str, port: int, workers: int = 1) -> None:
    """Run the app under uvicorn with `workers` processes until stopped (`firelane serve` and `firelane demo`).

    An import string and factory: every worker process builds its own app (pools, change-feed thread, caches).
    uvicorn's access log is off: the app writes one structured JSON line per request.
    """
    scope.enter(scope.NOTHING)  # requests see only what their principal may: never the command line's scope
    # proxy_headers off: X-Forwarded-For is judged by the app itself against FIRELANE_SERVER_TRUSTED_PROXIES
    # (api.loginguard.client_address); uvicorn would otherwise believe any header sent from 127.0.0.1.
    # a worker answers the supervisor's health pings once its imports are done: on a loaded machine that takes
    # longer than uvicorn's 5 s, and a worker killed for it restarts the same slow import, over and over
    uvicorn.run("api.app:create_app", factory=True, host=host, port=port, workers=workers, log_level="info",
                access_log=False, proxy_headers=False, timeout_worker_healthcheck=WORKER_HEALTHCHECK_S)
