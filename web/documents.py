"""Printable documents: one compound's file (一小区一档) and the campaign's reports as HTML, and as PDF via WeasyPrint."""

from __future__ import annotations

import base64
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy import Connection, Engine

from gis.campaign import dossier
from gis.db import get_engine

TEMPLATES = Path(__file__).resolve().parent / "templates"


@lru_cache
def _env() -> Environment:
    # autoescape: compound names, notes and messages are user text (a name may be "<script>...")
    return Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]))


def render(template: str, **context: Any) -> str:
    return _env().get_template(template).render(**context)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def compound_html(conn: Connection, ref: str) -> str:
    """One compound's file as a self-contained HTML page (map and photos inlined)."""
    f = dossier.compound_file(conn, ref)
    for h in f["hazards"]:
        for kind in ("before", "after"):
            for p in h["photos"][kind]:
                p["b64"] = b64(p.pop("jpeg"))
    jpeg = dossier.map_png(conn, ref, f["hazards"], fmt="jpeg")
    return render("documents/dossier.html", f=f, c=f["compound"], map_jpeg=b64(jpeg),
                  legend=dossier.map_legend(f["counts"], f["hazards"]))


@lru_cache
def _fonts() -> Any:
    # WeasyPrint (and its pango/cairo bindings) loads on first PDF only: HTML output does not need it
    from weasyprint.text.fonts import FontConfiguration

    return FontConfiguration()  # one per process: the CJK fonts are found and loaded once, not per document


def html_to_pdf(html: str, path: Path) -> None:
    from weasyprint import HTML  # WeasyPrint loads on the first PDF: HTML output does not need it

    HTML(string=html, base_url=str(TEMPLATES)).write_pdf(str(path), font_config=_fonts())


def write_compound_pdf(conn: Connection, ref: str, path: Path) -> None:
    html_to_pdf(compound_html(conn, ref), path)


def write_compound(ref: str, path: Path, *, engine: Engine | None = None) -> Path:
    """Write one compound's file to `path`: PDF for .pdf, HTML otherwise."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with (engine or get_engine()).connect() as conn:
        html = compound_html(conn, ref)
    if path.suffix.lower() == ".pdf":
        html_to_pdf(html, path)
    else:
        path.write_text(html, encoding="utf-8")
    return path
