"""The field pages: public complaint form, phone report page (390 px), complaint triage, facility checklist."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse, Response

from api.auth import optional_principal
from api.database import db_engine
from api.errors import Forbidden, Unauthorized
from api.photos_api import actor_of
from api.web_routes import _html, _login_redirect, _preferences
from gis import scope
from gis.campaign import complaints as cp
from gis.campaign.actors import TRIAGERS, Actor
from gis.db import get_engine
from web import field_pages
from web.pages import OutOfJurisdiction

router = APIRouter(tags=["pages"])


@router.get("/complaints/new", response_class=HTMLResponse, include_in_schema=False)
def complaint_form(request: Request) -> HTMLResponse:
    _preferences(request)  # the page's language (?lang=, then the cookie), as on the map pages
    with scope.scoped(scope.SYSTEM):  # the public form's map shows the street offices' outlines (public)
        return _html(request, field_pages.complaint_page(engine=get_engine()))


def _signed_in_page(request: Request, build: Callable[[Actor], str]) -> Response:
    try:
        principal = optional_principal(request)
    except Unauthorized:
        principal = None  # expired or revoked cookie: sign in again
    if principal is None:
        return _login_redirect(request)
    _preferences(request)
    try:
        html = build(actor_of(principal))
    except OutOfJurisdiction as exc:
        raise Forbidden(f"不在您的权限内 outside your role: {exc.args[0]}") from None
    return _html(request, html)


@router.get("/field/report", response_class=HTMLResponse, include_in_schema=False)
def report_page(request: Request) -> Response:
    return _signed_in_page(request, lambda a: field_pages.report_page(engine=get_engine(), actor=a))


@router.get("/field/complaints", response_class=HTMLResponse, include_in_schema=False)
def triage_page(request: Request) -> Response:
    def build(actor: Actor) -> str:
        with db_engine().connect() as conn:
            queue_ = cp.queue(conn, actor) if actor.role in TRIAGERS else []
        return field_pages.triage_page(complaints=queue_, actor=actor)

    return _signed_in_page(request, build)


@router.get("/field/checklist", response_class=HTMLResponse, include_in_schema=False)
def checklist_index(request: Request) -> Response:
    return _signed_in_page(request, lambda a: field_pages.checklist_page(engine=get_engine(), actor=a, compound=None))


@router.get("/field/checklist/{ref}", response_class=HTMLResponse, include_in_schema=False)
def checklist_page(request: Request, ref: Annotated[str, Path(max_length=200)]) -> Response:
    return _signed_in_page(request, lambda a: field_pages.checklist_page(engine=get_engine(), actor=a, compound=ref))
