"""`firelane demo --no-serve`: the sample district is loaded and checked, and every printed page URL answers 200."""

from __future__ import annotations

import re

import httpx
import pytest
from server_support import free_port, served

from api.app import create_app
from api.auth import login
from api.demo import DEMO_USER, _demo_admin, run_demo
from api.errors import Unauthorized

pytestmark = [pytest.mark.db, pytest.mark.slow]




def test_demo_loads_checks_and_serves_every_page(db):
    port = free_port()
    lines: list[str] = []
    result = run_demo(district="yinzhou", scale="s", seed=1, host="127.0.0.1", port=port, serve=False,
                      out=lines.append)
    printed = "\n".join(lines)
    assert result.username == DEMO_USER
    assert re.search(rf"password:\s+{re.escape(result.password)}$", printed, re.M)
    assert result.counts["compounds"] > 0 and result.counts["hazards"] > 0
    for url in result.urls.values():
        assert url in printed
    assert any("/map/streets/" in u for u in result.urls.values())
    assert any("/map/compounds/" in u for u in result.urls.values())

    with served(create_app(), port=port):
        with httpx.Client(timeout=60) as client:
            login = client.post(f"{result.base_url}/auth/login",
                                json={"username": result.username, "password": result.password})
            assert login.status_code == 200, login.text
            for label, url in result.urls.items():
                r = client.get(url, headers={"Accept": "text/html"}, follow_redirects=True)  # / → /map
                assert r.status_code == 200, (label, url, r.status_code, r.text[:300])
                if "/map" in url or url.endswith("/login"):
                    # pages load nothing from the internet (AMap/Baidu navigation links only open the apps)
                    assert "https://" not in re.sub(r'<a class="fl-nav-link[^>]*>', "", r.text), url


def test_demo_rerun_resets_the_admin_password(db):
    user, first = _demo_admin(engine=db)
    _, second = _demo_admin(engine=db)
    assert first != second
    login(user, second, address="test-rerun")
    with pytest.raises(Unauthorized):
        login(user, first, address="test-rerun")
