"""The street office's hazard actions in a real headless Chromium against a real uvicorn server and PostGIS."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta

import pytest
from playwright.sync_api import expect
from server_support import served
from sqlalchemy import text
from test_api_support import PASSWORD, STREET_A, load_district, make_user

from api.app import create_app
from api.auth import forget_tokens, login_limiter
from gis.campaign.deadlines import local_today

pytestmark = [pytest.mark.db, pytest.mark.web]


@pytest.fixture
def site(db) -> Iterator[tuple[str, object]]:
    """A uvicorn server (background thread, random port) over the two-street district; yields (url, district)."""
    district = load_district(db)
    make_user(db, "office_a", "street_office", (STREET_A,))
    forget_tokens()
    login_limiter.clear()
    with served(create_app()) as url:
        yield url, district


def test_a_street_office_assigns_a_hazard_with_a_deadline_and_sees_it_in_the_department_list(site, browser, db):
    base, district = site
    hid = district.id("hazards", "k-a")
    context = browser.new_context(viewport={"width": 1400, "height": 900}, locale="zh-CN")
    errors: list[str] = []
    page = context.new_page()
    page.on("pageerror", lambda e: errors.append(str(e)))
    login = context.request.post(f"{base}/auth/login", data=json.dumps({"username": "office_a", "password": PASSWORD}),
                                 headers={"Content-Type": "application/json"})
    assert login.ok, login.text()
    page.goto(f"{base}/map/streets/{STREET_A}", wait_until="networkidle")
    expect(page.locator("#fl-hazard-work[data-loaded='1']")).to_have_count(1)
    row = page.locator(f"#fl-worklist tr[data-hazard-id='{hid}']")
    expect(row.locator("td.status")).to_have_text("待整改")  # the zh label, never the raw state
    assert page.locator("#fl-worklist tbody tr").count() == 1  # street B's hazard is not on street A's list

    row.get_by_role("button").click()
    form = page.locator("#fl-assign-form")
    expect(form).to_be_visible()
    deadline = (local_today() + timedelta(days=7)).isoformat()
    form.locator("select[name=department]").select_option("交警/公安")
    form.locator("input[name=unit]").fill("甲物业服务有限公司")
    form.locator("input[name=person]").fill("李四")
    form.locator("input[name=deadline]").fill(deadline)
    form.get_by_role("button").click()
    expect(page.locator("#fl-detail-history li")).to_contain_text(["已交办"])
    assert "甲物业服务有限公司" in page.locator("#fl-detail-history").inner_text()

    # the department's list: filter the work list by department, and the per-department counts
    page.locator("#fl-work-department").select_option("交警/公安")
    expect(row.locator("td.status")).to_have_text("已交办")
    expect(row.locator("td.deadline")).to_have_text(deadline)
    counts = page.locator("#fl-workload tr[data-department='交警/公安'] td")
    expect(counts).to_have_text(["交警/公安", "1", "0", "1"])  # open 1, overdue 0, due this week 1
    page.locator("#fl-work-department").select_option("物业/住建")
    expect(page.locator("#fl-worklist tbody")).to_contain_text("没有")

    # the next steps offered follow the life cycle: a street office may start or claim the work
    expect(page.locator("#fl-move-buttons button")).to_have_text(["整改中", "已整改待复核"])  # the page's language
    assert errors == []
    with db.connect() as conn:
        event = conn.execute(text("SELECT by, to_state, department, unit, person, deadline FROM hazard_events "
                                  "WHERE hazard_id = :h"), {"h": hid}).one()
    assert tuple(event)[:5] == ("office_a", "assigned", "交警/公安", "甲物业服务有限公司", "李四")
    assert event.deadline.isoformat() == deadline
    context.close()


def test_an_english_page_names_each_department_of_a_routing_in_english(site, browser, db):
    base, district = site
    hid = district.id("hazards", "k-a")
    with db.begin() as conn:  # a finding routed to two departments, as the rule catalogue routes some
        conn.execute(text("UPDATE hazards SET department = '交警/公安; 物业' WHERE id = :h"), {"h": hid})
    context = browser.new_context(viewport={"width": 1400, "height": 900}, locale="en-GB")
    page = context.new_page()
    login = context.request.post(f"{base}/auth/login", data=json.dumps({"username": "office_a", "password": PASSWORD}),
                                 headers={"Content-Type": "application/json"})
    assert login.ok, login.text()
    page.goto(f"{base}/map/streets/{STREET_A}?lang=en", wait_until="networkidle")
    expect(page.locator("#fl-hazard-work[data-loaded='1']")).to_have_count(1)
    both = "Traffic police / public security; Property company"
    expect(page.locator("#fl-workload tr[data-department='交警/公安; 物业'] td").first).to_have_text(both)
    expect(page.locator(f"#fl-worklist tr[data-hazard-id='{hid}']")).to_contain_text(both)
    expect(page.locator("#fl-f-department option[value='交警/公安; 物业']")).to_have_text(both)
    context.close()
