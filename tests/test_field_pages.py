"""The field pages in a real headless Chromium against a real uvicorn server: the 390 px phone report page and the
public complaint form, with its complaint arriving in the street office's triage queue."""

from __future__ import annotations

import json
import re
from urllib.parse import urlparse

import pytest
from field_support import picture
from playwright.sync_api import expect
from sqlalchemy import text
from web_support import PASSWORDS, S1, pt

from api.users import create_user

pytestmark = [pytest.mark.db, pytest.mark.web]

PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 3, "is_mobile": True,
         "has_touch": True, "locale": "zh-CN"}
IN_YZ001 = pt(150, 180)  # inside compound YZ-001 of street S1


def _phone(browser, *, user: str | None, base: str):
    here = {"longitude": IN_YZ001.x, "latitude": IN_YZ001.y, "accuracy": 8}
    context = browser.new_context(**PHONE, geolocation=here, permissions=["geolocation"])
    if user is not None:
        resp = context.request.post(f"{base}/auth/login", data=json.dumps({"username": user,
                                                                          "password": PASSWORDS[user]}),
                                    headers={"Content-Type": "application/json"})
        assert resp.ok, resp.text()
    page = context.new_page()
    errors: list[str] = []
    requests: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    context.on("request", lambda r: requests.append(r.url))
    return context, page, errors, requests


def test_an_inspector_at_390px_files_a_report_with_a_photo(site, browser, db, tmp_path):
    context, page, errors, requests = _phone(browser, user="office1", base=site)
    assert page.goto(f"{site}/field/report", wait_until="networkidle").status == 200
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # nothing wider than the phone
    assert page.locator("#fl-photo").get_attribute("capture") == "environment"
    assert page.locator("#fl-photo").get_attribute("accept") == "image/*"
    expect(page.locator("#fl-submit")).to_be_disabled()
    page.click("#fl-gps")
    expect(page.locator("#fl-where")).to_contain_text("GPS")
    page.select_option("#fl-category", "fire_door_defective")
    page.fill("#fl-note", "2幢楼梯间防火门被顶开")
    photo = tmp_path / "door.jpg"
    photo.write_bytes(picture("JPEG", gps=(IN_YZ001.x, IN_YZ001.y)))
    page.set_input_files("#fl-photo", str(photo))
    page.click("#fl-submit")
    expect(page.locator("#fl-result")).to_contain_text("已上报", timeout=20000)
    hazard_id = int(page.locator("#fl-result").get_attribute("data-hazard-id"))
    page.screenshot(path=str(tmp_path / "phone-report.png"))
    with db.connect() as conn:
        h = conn.execute(text("SELECT rule, compound_ref, street_code, message_zh FROM hazards WHERE id = :h"),
                         {"h": hazard_id}).one()
        photos = conn.execute(text("SELECT media_type, kind, ST_X(exif_geom) AS lon FROM photos "
                                   "WHERE hazard_id = :h"), {"h": hazard_id}).all()
    assert (h.rule, h.compound_ref, h.street_code) == ("MANUAL-FIRE-DOOR", "YZ-001", S1)
    assert "防火门被顶开" in h.message_zh
    assert [(p.media_type, p.kind) for p in photos] == [("image/jpeg", "before")]
    assert photos[0].lon == pytest.approx(IN_YZ001.x, abs=1e-6)
    assert errors == []
    assert all(urlparse(u).hostname == "127.0.0.1" for u in requests if not u.startswith(("data:", "blob:")))
    context.close()


def test_a_public_complaint_gets_a_tracking_code_and_shows_in_triage(site, browser, db, tmp_path):
    context, page, errors, _ = _phone(browser, user=None, base=site)
    assert page.goto(f"{site}/complaints/new", wait_until="networkidle").status == 200
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.click("#fl-gps")
    expect(page.locator("#fl-where")).to_contain_text("GPS")
    page.select_option("#fl-category", "lane_occupied")
    page.fill("#fl-description", "小区消防车道上长期停放<b>私家车</b>")
    page.click("#fl-submit")
    code_el = page.locator("#fl-tracking-code")
    expect(code_el).to_have_text(re.compile(r"^TS-"), timeout=20000)
    code = code_el.inner_text()
    page.fill("#fl-track-code", code)
    page.click("#fl-track-form button")
    expect(page.locator("#fl-track-result")).to_contain_text("待处理")
    page.screenshot(path=str(tmp_path / "complaint.png"))
    assert errors == []
    context.close()

    office = browser.new_context(viewport={"width": 1200, "height": 800}, locale="zh-CN")
    resp = office.request.post(f"{site}/auth/login", data=json.dumps({"username": "office1",
                                                                      "password": PASSWORDS["office1"]}),
                               headers={"Content-Type": "application/json"})
    assert resp.ok
    page = office.new_page()
    assert page.goto(f"{site}/field/complaints", wait_until="networkidle").status == 200
    rows = page.locator("#fl-triage tbody tr[data-id]")
    expect(rows).to_have_count(1)
    assert "<b>私家车</b>" in rows.first.inner_text()  # shown as text
    assert page.locator("#fl-triage b").count() == 0
    rows.first.locator("button[data-action=accept]").click()
    expect(rows.first.locator(".fl-row-result")).to_contain_text("隐患 #", timeout=20000)
    with db.connect() as conn:
        status, rule = conn.execute(text("SELECT c.status, h.rule FROM complaints c JOIN hazards h "
                                         "ON h.id = c.hazard_id")).one()
    assert (status, rule) == ("accepted", "MANUAL-LANE-OCCUPIED")
    # the other street's office sees nothing of it
    other = browser.new_context(locale="zh-CN")
    other.request.post(f"{site}/auth/login", data=json.dumps({"username": "office2",
                                                              "password": PASSWORDS["office2"]}),
                       headers={"Content-Type": "application/json"})
    p2 = other.new_page()
    p2.goto(f"{site}/field/complaints?status=", wait_until="networkidle")
    assert p2.locator("#fl-triage tbody tr[data-id]").count() == 0
    other.close()
    office.close()


def test_the_street_page_shows_a_hazards_photos_with_where_they_were_taken(site, browser, db, tmp_path):
    with db.connect() as conn:
        hid, lon, lat = conn.execute(text(
            "SELECT id, ST_X(geom), ST_Y(geom) FROM hazards WHERE rule = 'PARK-HYDRANT'")).one()
    context = browser.new_context(viewport={"width": 1400, "height": 900}, locale="zh-CN")
    context.request.post(f"{site}/auth/login", data=json.dumps({"username": "office1",
                                                               "password": PASSWORDS["office1"]}),
                         headers={"Content-Type": "application/json"})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{site}/map/streets/{S1}", wait_until="networkidle")
    expect(page.locator("#fl-hazard-work[data-loaded='1']")).to_have_count(1)
    page.locator(f"#fl-worklist tr[data-hazard-id='{hid}']").get_by_role("button").click()
    expect(page.locator("#fl-photo-list")).to_contain_text("暂无照片")
    photo = tmp_path / "car.jpg"
    photo.write_bytes(picture("JPEG", gps=(lon + 0.0002, lat), taken="2026:12:04 10:15:00"))  # ~19 m east
    page.set_input_files("#fl-photo-form input[type=file]", str(photo))
    page.locator("#fl-photo-form button").click()
    item = page.locator("#fl-photo-list li[data-photo-id]")
    expect(item).to_have_count(1, timeout=20000)
    text_ = item.inner_text()
    assert "2026-12-04 02:15" in text_ and "拍摄" in text_
    distance = re.search(r"拍摄点距隐患 ([\d.]+) m", text_)
    assert distance is not None, text_
    metres = float(distance.group(1))
    assert metres == pytest.approx(19.3, abs=1.0)
    expect(item.locator("img")).to_have_js_property("naturalWidth", 320)  # the thumbnail loaded
    new_id = item.get_attribute("data-photo-id")
    assert page.locator("#fl-move-form input[name=photos]").input_value() == new_id  # ready for the claim
    assert errors == []
    context.close()


def test_a_property_company_fails_a_checklist_item_on_the_phone_and_a_hazard_is_filed(site, browser, db, tmp_path):
    create_user("wuye1", "property-pass-1", role="property", compound_refs=["YZ-002"])
    context = browser.new_context(**PHONE)
    assert context.request.post(f"{site}/auth/login", data=json.dumps({"username": "wuye1",
                                                                      "password": "property-pass-1"}),
                                headers={"Content-Type": "application/json"}).ok
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    assert page.goto(f"{site}/field/checklist", wait_until="networkidle").status == 200
    links = page.locator("#fl-compounds a")
    expect(links).to_have_count(1)
    links.first.click()
    page.wait_for_url(f"{site}/field/checklist/YZ-002")
    row = page.locator("#fl-checklist tr[data-item='extinguishers']")
    row.locator("select[name=status]").select_option("fail")
    row.locator("input[name=note]").fill("3幢灭火器压力不足")
    photo = tmp_path / "ext.jpg"
    photo.write_bytes(picture("JPEG"))
    row.locator("input[type=file]").set_input_files(str(photo))
    row.locator("button").click()
    expect(row.locator(".fl-now")).to_contain_text("隐患 #", timeout=20000)
    with db.connect() as conn:
        rule, compound, status = conn.execute(text(
            "SELECT h.rule, h.compound_ref, h.status FROM checklist_items k JOIN hazards h ON h.id = k.hazard_id")).one()
    assert (rule, compound, status) == ("MANUAL-EXTINGUISHER", "YZ-002", "open")
    assert page.goto(f"{site}/field/checklist/YZ-001").status == 404  # not its compound
    assert errors == []
    context.close()


CJK = re.compile(r"[\u4e00-\u9fff]")


def _words(page) -> str:
    """The panel's own words: its text without the category list (titles of the rule catalogue)."""
    return page.evaluate("() => { const c = document.getElementById('fl-panel').cloneNode(true);"
                         " c.querySelectorAll('select').forEach(s => s.remove()); return c.innerText; }")


def test_the_language_switch_reaches_the_field_pages_and_their_scripts(site, browser, db, tmp_path):
    """English chosen once (?lang=en, remembered): every label, category, status and message of the report page,
    the complaint form, the triage queue and the checklist is English, and so is what their scripts write."""
    context, page, errors, _ = _phone(browser, user="office1", base=site)
    assert page.goto(f"{site}/field/report?lang=en", wait_until="networkidle").status == 200
    panel = _words(page)
    assert "Report a hazard on site" in panel and not CJK.search(panel), panel
    # categories in English (an English title may keep the Chinese term it glosses in brackets)
    assert "Fire lane occupied" in page.locator("#fl-category").inner_text()
    assert "street office" in page.locator(".fl-phone-top").inner_text()
    page.click("#fl-gps")
    expect(page.locator("#fl-where")).to_contain_text("GPS")
    page.select_option("#fl-category", "fire_door_defective")
    page.click("#fl-submit")
    expect(page.locator("#fl-result")).to_contain_text("Filed", timeout=20000)
    assert "(Open)" in page.locator("#fl-result").inner_text() or not CJK.search(page.locator("#fl-result").inner_text())
    page.screenshot(path=str(tmp_path / "report-en.png"))
    # the triage queue, in English too (the cookie), with a refusal explained in English
    assert page.goto(f"{site}/field/complaints", wait_until="networkidle").status == 200
    assert page.locator("#fl-triage thead").inner_text().split() == [
        "#", "Received", "Street", "Compound", "Category", "Description", "Photos", "Action"]
    assert page.locator("#fl-lang").inner_text() == "中文"
    # back to Chinese from the switch
    page.click("#fl-lang")
    page.wait_for_load_state("networkidle")
    assert "举报投诉分拣" in page.locator("h1").inner_text() and "Complaint triage" not in page.locator("h1").inner_text()
    assert errors == []
    context.close()

    # the public form, no sign-in
    context, page, errors, _ = _phone(browser, user=None, base=site)
    assert page.goto(f"{site}/complaints/new?lang=en", wait_until="networkidle").status == 200
    assert not CJK.search(_words(page)), _words(page)
    page.click("#fl-submit", force=True)  # disabled: nothing happens
    page.click("#fl-gps")
    expect(page.locator("#fl-where")).to_contain_text("GPS")
    page.select_option("#fl-category", "lane_occupied")
    page.fill("#fl-description", "cars on the fire lane")
    page.click("#fl-submit")
    expect(page.locator("#fl-tracking-code")).to_have_text(re.compile(r"^TS-"), timeout=20000)
    assert page.locator("#fl-result").inner_text().startswith("Received. Tracking code: ")
    page.fill("#fl-track-code", page.locator("#fl-tracking-code").inner_text())
    page.click("#fl-track-form button")
    expect(page.locator("#fl-track-result")).not_to_be_empty()
    assert not CJK.search(page.locator("#fl-track-result").inner_text())
    page.fill("#fl-track-code", "TS-NONE-NONE-NONE")
    page.click("#fl-track-form button")
    expect(page.locator("#fl-track-result")).to_contain_text("Not found")
    assert errors == []
    context.close()

    # the checklist of a property company, in English: items, statuses and the script's result
    create_user("wuye-en", "property-pass-2", role="property", compound_refs=["YZ-002"])
    context = browser.new_context(**PHONE)
    assert context.request.post(f"{site}/auth/login", data=json.dumps({"username": "wuye-en",
                                                                      "password": "property-pass-2"}),
                                headers={"Content-Type": "application/json"}).ok
    page = context.new_page()
    page.on("pageerror", lambda e: errors.append(str(e)))
    assert page.goto(f"{site}/field/checklist/YZ-002?lang=en", wait_until="networkidle").status == 200
    assert page.locator("#fl-checklist th").all_inner_texts() == ["Item", "Now", "This check"]
    assert "Fire alarm system working" in page.locator("#fl-checklist").inner_text()
    now = page.locator("#fl-checklist .fl-now").all_inner_texts()
    assert now and not any(CJK.search(t) for t in now), now
    row = page.locator("#fl-checklist tr[data-item='extinguishers']")
    assert row.locator("select[name=status] option").all_inner_texts() == ["pass", "fail", "n/a"]
    assert "not checked" in row.locator(".fl-now").inner_text()
    row.locator("select[name=status]").select_option("fail")
    row.locator("button").click()
    expect(row.locator(".fl-now")).to_contain_text("hazard #", timeout=20000)
    assert not CJK.search(row.locator(".fl-now").inner_text()) and row.locator(".fl-row-result").inner_text() == "saved"
    assert errors == []
    context.close()


def test_the_workflow_panel_speaks_the_pages_language(site, browser, db):
    context = browser.new_context(viewport={"width": 1400, "height": 900}, locale="zh-CN")
    context.request.post(f"{site}/auth/login", data=json.dumps({"username": "office1",
                                                               "password": PASSWORDS["office1"]}),
                         headers={"Content-Type": "application/json"})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{site}/map/streets/{S1}?lang=en", wait_until="networkidle")
    work = page.locator("#fl-hazard-work")
    expect(page.locator("#fl-hazard-work[data-loaded='1']")).to_have_count(1)
    assert "Rectification work list" in work.locator("h2").first.inner_text()
    statuses = page.locator("#fl-worklist td.status").all_inner_texts()
    assert statuses and not any(CJK.search(s) for s in statuses), statuses
    assert not CJK.search(page.locator("#fl-work-status").inner_text())
    page.locator("#fl-worklist tbody tr").filter(
        has=page.locator("td.status", has_text=re.compile("^Open$"))).first.get_by_role("button").click()
    expect(page.locator("#fl-hazard-detail")).to_be_visible()
    facts = page.locator("#fl-detail-facts dt").all_inner_texts()
    assert facts[:3] == ["ID", "Status", "Hazard"], facts
    assert not CJK.search(page.locator("#fl-assign-form").inner_text())
    # a refusal: the API's 400 headed in English
    form = page.locator("#fl-assign-form")
    form.locator("select[name=department]").select_option(index=1)
    form.locator("input[name=unit]").fill("unit")
    page.evaluate("() => { const d = document.querySelector('#fl-assign-form input[name=deadline]');"
                  " d.removeAttribute('min'); d.value = '2000-01-01'; }")
    form.get_by_role("button").click()
    expect(page.locator("#fl-detail-error")).to_contain_text("Invalid input", timeout=20000)
    expect(page.locator("#fl-photo-list")).to_contain_text("no photos yet")
    # assigned for real: the history and the next steps in English
    page.evaluate("() => { document.querySelector('#fl-assign-form input[name=deadline]').value = '2099-01-01'; }")
    form.get_by_role("button").click()
    expect(page.locator("#fl-detail-history li").last).to_contain_text("Open → Assigned", timeout=20000)
    buttons = page.locator("#fl-move-buttons button").all_inner_texts()
    assert "Rectifying" in buttons and not any(CJK.search(b) for b in buttons), buttons
    assert errors == []
    context.close()
