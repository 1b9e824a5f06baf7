"""The campaign page in a real headless Chromium against a real uvicorn server and PostGIS: progress per street with
the charts, the in-page double-random draw (seed, candidates and roster shown as recorded), results recorded per
focus item, a download through the server's job worker, and what a street office may not do.

Screenshots at 1400 and 390 px wide go to artifacts/pages/ (git-ignored), next to the map pages'."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest
from campaign_support import STREETS, load_campaign_district
from field_support import picture
from playwright.sync_api import expect
from server_support import served
from sqlalchemy import text

from api.app import create_app
from api.auth import forget_tokens, login_limiter
from api.users import create_user
from gis.campaign.campaigns import create_campaign

pytestmark = [pytest.mark.db, pytest.mark.web]

ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts" / "pages"
A = "330212003"  # 中河街道: 12 compounds, 11 reported rectified
PASSWORD = "campaign-pass-123"
USERS = {"fire1": ("fire_brigade", ()), "office1": ("street_office", (A,)), "viewer1": ("viewer", ())}
#: two inspectors of each street office and two of district units; as a planner pastes it (header, Chinese comma)
ROSTER = "\n".join(["姓名,单位,街道"] + [f"{name[:2]}检查员{i}，{name}办事处，{code}" for code, (name, _, _)
                                         in STREETS.items() for i in (1, 2)] + ["区住建局甲,区住建局,", "消防大队乙,区消防救援大队,"])
SEED = 2**53 + 1  # above JavaScript's exact integers: the page must send its digits, not a rounded number


@pytest.fixture
def site(db) -> Iterator[tuple[str, int]]:
    """A real uvicorn server (with its job worker) over the three-street district and a Changle 2026 campaign."""
    load_campaign_district(db)
    for name, (role, streets) in USERS.items():
        create_user(name, PASSWORD, role=role, street_codes=streets)
    cid = create_campaign(preset_key="changle-2022", year=2026, user="fixture", engine=db)
    forget_tokens()
    login_limiter.clear()
    with served(create_app()) as url:
        yield url, cid


def _signed_in(browser, base: str, user: str):
    context = browser.new_context(viewport={"width": 1400, "height": 900}, locale="zh-CN", accept_downloads=True)
    resp = context.request.post(f"{base}/auth/login", data={"username": user, "password": PASSWORD})
    assert resp.ok, resp.text()
    page = context.new_page()
    errors: list[str] = []
    requests: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))

    def on_dialog(d) -> None:
        errors.append(f"dialog: {d.message}")
        d.dismiss()

    page.on("dialog", on_dialog)
    context.on("request", lambda r: requests.append(r.url))
    return context, page, errors, requests


def _screenshots(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}-1400.png"), full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})
    page.wait_for_timeout(300)
    page.screenshot(path=str(ARTIFACTS / f"{name}-390.png"), full_page=True)
    page.set_viewport_size({"width": 1400, "height": 900})


def test_the_fire_brigade_draws_records_and_downloads_from_the_page(site, browser, db, tmp_path):
    base, cid = site
    context, page, errors, requests = _signed_in(browser, base, "fire1")
    url = f"{base}/map/campaigns/{cid}?date=2026-08-01"
    assert page.goto(url, wait_until="networkidle").status == 200
    # progress per street office, every street, against the current stage
    expect(page.locator("#stage")).to_have_attribute("data-stage", "spot_checks")  # shown by its name
    assert page.locator("#progress tr[data-street]").evaluate_all("rs => rs.map(r => r.dataset.street)") == list(
        STREETS)
    # the four charts are real, decoded images
    sizes = page.locator(".charts img").evaluate_all("xs => xs.map(i => [i.naturalWidth, i.naturalHeight])")
    assert len(sizes) == 4 and all(w > 200 and h > 100 for w, h in sizes)
    expect(page.get_by_text("尚未抽签")).to_be_visible()

    # a roster too small for the draw is refused, said on the page, nothing stored
    page.fill("#roster", "区住建局甲,区住建局,")
    page.click("#draw-submit")
    expect(page.locator("#draw-error")).to_contain_text("名册人员不足", timeout=30_000)
    with db.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM spot_draws")).scalar_one() == 0

    # the draw: rate 10 %, a seed above 2^53
    page.fill("#roster", ROSTER)
    page.fill("#rate", "10")
    page.fill("#seed", str(SEED))
    with page.expect_navigation(wait_until="networkidle"):
        page.click("#draw-submit")
    with db.connect() as conn:
        d = conn.execute(text("SELECT id, seed, rate, roster FROM spot_draws")).one()
        checks = conn.execute(text("SELECT id, street_code, compound_ref, inspectors FROM spot_checks "
                                   "WHERE draw_id = :d ORDER BY id"), {"d": d.id}).all()
    assert (d.seed, d.rate, len(d.roster)) == (SEED, 0.1, 8)
    section = page.locator(f"#draw-{d.id}")
    expect(section.locator(".seed")).to_have_text(str(SEED), timeout=30_000)  # the recorded seed, digit for digit
    # the candidates per street (compounds reported rectified) and the quota: 10 % rounded up, at least one
    quota = section.locator("table.candidates tr[data-street]").evaluate_all(
        "rs => rs.map(r => [r.dataset.street, +r.cells[1].textContent, +r.cells[2].textContent])")
    assert quota == [[A, 11, 2], ["330212004", 5, 1], ["330212005", 1, 1]]
    expect(section.locator("table.roster tr")).to_have_count(9)  # heading + the 8 inspectors as recorded
    expect(section.locator("table.roster")).to_contain_text("区住建局甲")
    assert [r.street_code for r in checks] == [A, A, "330212004", "330212005"]
    roster_street = {p["name"]: p["street"] for p in d.roster}
    for r in checks:  # nobody checks their own street
        row = section.locator(f"tr[data-check='{r.id}']")
        expect(row).to_contain_text("、".join(r.inspectors))
        assert all(roster_street[n] != r.street_code for n in r.inspectors)

    # results per focus item: a failure needs a note (the API's refusal shown), then recorded and shown
    first = checks[0]
    form = section.locator(f"form.record-form[data-check='{first.id}']")
    form.locator("select[name=item]").select_option("vehicles")
    form.locator("select[name=result]").select_option("fail")
    form.locator("button").click()
    expect(form.locator(".error")).to_contain_text("needs a note", timeout=30_000)
    form.locator("input[name=note]").fill("消防车道上停放车辆")
    shot = tmp_path / "found.jpg"  # what the inspectors found, with the failed item
    shot.write_bytes(picture("JPEG"))
    form.locator("input[name=photo]").set_input_files(shot)
    with page.expect_navigation(wait_until="networkidle"):
        form.locator("button").click()
    row = page.locator(f"#draw-{d.id} tr[data-check='{first.id}']")
    expect(row.locator("td[data-item=vehicles]")).to_have_text("不合格", timeout=30_000)
    expect(row.locator("td.status")).to_have_text("不合格")
    # the item recorded is no longer offered
    assert "vehicles" not in row.locator("select[name=item] option").evaluate_all("os => os.map(o => o.value)")
    second = checks[1]
    form = page.locator(f"form.record-form[data-check='{second.id}']")
    form.locator("select[name=item]").select_option("design")
    with page.expect_navigation(wait_until="networkidle"):
        form.locator("button").click()
    expect(page.locator(f"tr[data-check='{second.id}'] td[data-item=design]")).to_have_text("合格", timeout=30_000)
    with db.connect() as conn:
        got = conn.execute(text("SELECT check_id, item, result, note, recorded_by, hazard_ids, photos "
                                "FROM spot_check_items ORDER BY id")).all()
        kinds = conn.execute(text("SELECT kind FROM photos WHERE id = ANY(:p)"),
                             {"p": [int(p) for p in got[0].photos]}).scalars().all()
    assert [(g.check_id, g.item, g.result, g.recorded_by) for g in got] == [
        (first.id, "vehicles", "fail", "fire1"), (second.id, "design", "pass", "fire1")]
    assert got[0].hazard_ids  # the failure reopened (or filed) the compound's hazard
    assert kinds == ["before"] and got[1].photos == []  # the photo went with it; the pass (empty input) took none

    _screenshots(page, "campaign")

    # downloads: the forms ZIP through a persisted job run by the server's worker
    page.click("button[data-kind=forms]")
    link = page.locator("#jobs a")
    expect(link).to_have_text("下载", timeout=120_000)
    with page.expect_download() as dl:
        link.click()
    path = dl.value.path()
    assert Path(path).read_bytes()[:2] == b"PK" and dl.value.suggested_filename.endswith(".zip")

    assert errors == []
    assert all(urlparse(u).hostname == "127.0.0.1" for u in requests if not u.startswith(("data:", "blob:")))
    context.close()


def test_a_street_office_sees_its_street_and_cannot_draw(site, browser, db):
    base, cid = site
    context, page, errors, _ = _signed_in(browser, base, "office1")
    assert page.goto(f"{base}/map/campaigns/{cid}?date=2026-08-01", wait_until="networkidle").status == 200
    assert page.locator("#progress tr[data-street]").evaluate_all("rs => rs.map(r => r.dataset.street)") == [A]
    expect(page.locator("#draw-form")).to_have_count(0)
    # the API decides, not the page: a draw posted from this session is refused
    status = page.evaluate("""id => fetch('/campaigns/' + id + '/spotchecks', {method: 'POST',
        credentials: 'same-origin', headers: {'Content-Type': 'application/json'},
        body: JSON.stringify({roster: [{name: 'x', unit: 'u', street: ''}, {name: 'y', unit: 'u', street: ''}]})
    }).then(r => r.status)""", cid)
    assert status == 403
    with db.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM spot_draws")).scalar_one() == 0
    expect(page.locator("button[data-kind=summary]")).to_have_count(0)  # district reports are not theirs
    _screenshots(page, "campaign-street-office")
    assert errors == []
    context.close()


def test_the_campaign_page_switches_to_english(site, browser):
    """?lang=en (remembered by the cookie): headings, counts, stage, focus items, results and the script's
    refusals in English; the switch leads back to Chinese."""
    cjk = re.compile(r"[\u4e00-\u9fff]")
    base, cid = site
    context, page, errors, _ = _signed_in(browser, base, "fire1")
    assert page.goto(f"{base}/map/campaigns/{cid}?date=2026-08-01&lang=en", wait_until="networkidle").status == 200
    assert page.locator("html").get_attribute("lang") == "en"
    headings = page.locator("h2").all_inner_texts()
    assert "Progress per street office" in headings and "Random spot checks" in headings, headings
    assert not any(cjk.search(h) for h in headings), headings
    head = page.locator("#progress tr").first.inner_text()
    assert "Hazards found" in head and not cjk.search(head), head
    stage = page.locator("#stage").inner_text()
    assert stage and not cjk.search(stage), stage
    legend = page.locator("#draw-form").inner_text()
    assert "Roster of inspectors" in legend and not cjk.search(legend), legend
    assert not cjk.search(page.locator("button[data-kind]").first.inner_text())
    page.fill("#roster", "name,unit,street")
    page.click("#draw-submit")  # a header and nobody: the script says so in English
    expect(page.locator("#draw-error")).to_have_text("The roster is empty.")
    page.fill("#roster", "A,unit,")
    page.click("#draw-submit")  # too few inspectors: refused by the API, headed in English
    expect(page.locator("#draw-error")).to_contain_text("Invalid input", timeout=30_000)
    page.click("#fl-lang")
    page.wait_for_load_state("networkidle")
    assert "各街道进度" in page.locator("h2").all_inner_texts()
    assert errors == []
    context.close()
