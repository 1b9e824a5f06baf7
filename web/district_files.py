"""The district's compound files (一小区一档): every compound's PDF of a campaign's jurisdiction in one ZIP,
rendered in worker processes (a persisted `compound_files` job)."""

from __future__ import annotations

import multiprocessing
import os
import tempfile
import zipfile
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, text

from gis import scope as db_scope
from gis.campaign.campaigns import campaign_streets, get_campaign
from gis.db import get_engine
from gis.scope import Scope
from web.documents import write_compound_pdf


def _render_chunk(refs: list[str], out_dir: str, scope: Scope) -> list[str]:
    """A pool worker: render compound PDFs into out_dir (its own database engine and WeasyPrint) under the
    caller's `scope` (a spawned process starts with none, and row-level security shows it nothing)."""
    db_scope.enter(scope)
    engine = get_engine()
    written = []
    with engine.connect() as conn:
        for ref in refs:
            path = Path(out_dir) / f"{safe_name(ref)}.pdf"
            write_compound_pdf(conn, ref, path)
            written.append(str(path))
    return written


def safe_name(ref: str) -> str:
    keep = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in ref)
    return keep[:120] or "compound"


def compound_refs(conn: Connection, campaign_id: int, streets: Sequence[str] | None = None) -> list[str]:
    campaign = get_campaign(campaign_id, conn=conn)
    codes = [r.ref for r in campaign_streets(conn, campaign, only=streets)]
    where, params = db_scope.streets_filter("compounds", codes)
    return list(conn.execute(text(f"SELECT t.ref FROM compounds t WHERE {where} ORDER BY t.street_code, t.ref"),
                             params).scalars())


def district_zip(campaign_id: int, out: Path, *, streets: Sequence[str] | None = None, workers: int = 2,
                 engine: Engine | None = None, progress: Callable[[float], None] | None = None,
                 chunk: int = 20) -> dict[str, Any]:
    """Every compound file (PDF) of a campaign's jurisdiction in one ZIP, rendered in `workers` processes."""
    with (engine or get_engine()).connect() as conn:
        refs = compound_refs(conn, campaign_id, streets)
    out.parent.mkdir(parents=True, exist_ok=True)
    done = 0
    with tempfile.TemporaryDirectory(prefix="firelane-files-") as tmp:
        chunks = [refs[i:i + chunk] for i in range(0, len(refs), chunk)]
        files: list[str] = []
        if workers <= 1 or len(chunks) <= 1:
            for part in chunks:
                files += _render_chunk(part, tmp, db_scope.current())
                done += len(part)
                if progress:
                    progress(done / max(len(refs), 1))
        else:
            ctx = multiprocessing.get_context("spawn")  # fresh interpreters: no inherited DB connections
            with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
                futures = {pool.submit(_render_chunk, part, tmp, db_scope.current()): len(part) for part in chunks}
                for fut in as_completed(futures):
                    files += fut.result()
                    done += futures[fut]
                    if progress:
                        progress(done / max(len(refs), 1))
        tmp_zip = out.with_suffix(out.suffix + ".part")
        with zipfile.ZipFile(tmp_zip, "w", compression=zipfile.ZIP_STORED) as zf:
            for f in sorted(files):
                zf.write(f, arcname=f"一小区一档/{Path(f).name}")
        os.replace(tmp_zip, out)
    return {"path": str(out), "files": len(files), "bytes": out.stat().st_size}


def district_zip_handler(ctx: Any) -> dict[str, Any]:
    """The `compound_files` job: params {campaign, streets, path, workers}."""
    p = ctx.params
    return district_zip(int(p["campaign"]), Path(p["path"]), streets=p.get("streets") or None,
                        workers=int(p.get("workers", 2)), engine=ctx.engine, progress=ctx.progress)
