"""Sign-in, SSO, session lifetime and the login redirect, over real HTTP."""

from __future__ import annotations

import asyncio
from urllib.parse import parse_qs, urlsplit

import aiohttp
from sim_testkit import MakeSim, csrf_token, fetch, new_client, sign_in, tree

from coupa_async.sim import SESSION_COOKIE, Simulator


def _po_path(sim: Simulator) -> str:
    return next(po for po in sim.catalog.pos if po.page == "ok").url_path


async def test_login_form_is_coupas_own(make_sim: MakeSim, client: aiohttp.ClientSession) -> None:
    sim = await make_sim(pos=5)
    status, _, html = await fetch(client, f"{sim.base_url}/sessions/new")
    assert status == 200
    form = tree(html).css_first("form")
    assert form is not None and form.attributes["action"] == "/sessions"
    assert form.attributes["method"] == "post"
    assert tree(html).css_first("input#user_login[name='user[login]'][type=text]")
    assert tree(html).css_first("input[name='user[password]'][type=password]")
    assert tree(html).css_first("input[type=hidden][name=authenticity_token]")
    assert tree(html).css_first("form button[type=submit]")


async def test_protected_page_redirects_to_login_then_back(
    make_sim: MakeSim, client: aiohttp.ClientSession
) -> None:
    sim = await make_sim(pos=5)
    path = _po_path(sim) + "?tab=attachments&x=1"
    status, location, _ = await fetch(client, sim.base_url + path)
    assert status == 302
    parts = urlsplit(location)
    assert parts.path == "/sessions/new"
    assert parse_qs(parts.query)["return_to"] == [path]
    # Following the redirect gives the form, which carries return_to on to the POST.
    async with client.get(sim.base_url + path) as r:
        html = await r.text()
        assert r.url.path == "/sessions/new"
    form = {
        "authenticity_token": csrf_token(html),
        "user[login]": sim.username.upper(),  # e-mail logins ignore case
        "user[password]": sim.password,
        "return_to": path,
    }
    async with client.post(f"{sim.base_url}/sessions", data=form, allow_redirects=False) as r:
        assert r.status == 302
        assert r.headers["Location"] == path
        cookie = r.cookies[SESSION_COOKIE]
        assert cookie["httponly"] and cookie.value
    status, _, html = await fetch(client, sim.base_url + path)
    assert status == 200 and "Purchase Order #" in html
    assert sim.stats.logins == 1


async def test_bad_password_shows_form_with_flash_error(
    make_sim: MakeSim, client: aiohttp.ClientSession
) -> None:
    sim = await make_sim(pos=5)
    _, _, html = await fetch(client, f"{sim.base_url}/sessions/new")
    form = {
        "authenticity_token": csrf_token(html),
        "user[login]": sim.username,
        "user[password]": "wrong",
    }
    async with client.post(f"{sim.base_url}/sessions", data=form, allow_redirects=False) as r:
        assert r.status == 200
        assert SESSION_COOKIE not in r.cookies
        page = tree(await r.text())
    flash = page.css_first("div.flash_error")
    assert flash is not None and flash.text().strip() == "Invalid email or password"
    assert page.css_first("input[name='user[password]']")
    status, location, _ = await fetch(client, sim.base_url + _po_path(sim))
    assert status == 302 and location.startswith("/sessions/new")
    assert sim.stats.logins == 0


async def test_missing_or_forged_csrf_token_is_refused(
    make_sim: MakeSim, client: aiohttp.ClientSession
) -> None:
    sim = await make_sim(pos=5)
    for token in (None, "forged-token"):
        form = {"user[login]": sim.username, "user[password]": sim.password}
        if token:
            form["authenticity_token"] = token
        async with client.post(f"{sim.base_url}/sessions", data=form, allow_redirects=False) as r:
            assert r.status == 200
            assert SESSION_COOKIE not in r.cookies
            page = tree(await r.text())
        assert page.css_first("div.flash_error") is not None
        assert page.css_first("input[name=authenticity_token]") is not None
    assert sim.stats.logins == 0


async def test_return_to_only_same_site(make_sim: MakeSim, client: aiohttp.ClientSession) -> None:
    sim = await make_sim(pos=5)
    for target in ("//evil.example/x", "https://evil.example/", "/\\evil.example"):
        async with new_client() as fresh:
            response = await sign_in(fresh, sim, return_to=target)
            assert response.headers["Location"] == "/"
    response = await sign_in(client, sim)
    assert response.headers["Location"] == "/"
    status, _, html = await fetch(client, sim.base_url + "/")
    assert status == 200 and sim.username in html
    # Signed in already: the form sends the browser straight on.
    status, location, _ = await fetch(
        client, f"{sim.base_url}/sessions/new?return_to=/order_headers"
    )
    assert status == 302 and location == "/order_headers"
    status, _, _ = await fetch(client, sim.base_url + "/order_headers")
    assert status == 200


async def test_logout_ends_the_session(make_sim: MakeSim, client: aiohttp.ClientSession) -> None:
    sim = await make_sim(pos=5)
    await sign_in(client, sim)
    status, location, _ = await fetch(client, f"{sim.base_url}/sessions/destroy")
    assert status == 302 and location == "/sessions/new"
    status, location, _ = await fetch(client, f"{sim.base_url}/order_headers")
    assert status == 302 and location.startswith("/sessions/new")


async def test_file_without_session_lands_on_the_login_page(
    make_sim: MakeSim, client: aiohttp.ClientSession
) -> None:
    sim = await make_sim(pos=10)
    f = next(f for f in sim.catalog.files if f.has_href)
    status, location, _ = await fetch(client, sim.base_url + f.url_path)
    assert status == 302
    assert location == "/sessions/new?return_to=" + f.url_path.replace("?", "%3F")
    async with client.get(sim.base_url + f.url_path) as r:  # what a naive client saves
        assert r.status == 200
        assert r.content_type == "text/html"
        assert "authenticity_token" in await r.text()


async def test_sso_flow(make_sim: MakeSim, client: aiohttp.ClientSession) -> None:
    sim = await make_sim(pos=5, sso=True)
    path = _po_path(sim)
    status, location, _ = await fetch(client, sim.base_url + path)
    parts = urlsplit(location)
    assert status == 302 and "saml" in parts.path and "login" in parts.path
    assert parse_qs(parts.query)["RelayState"] == [path]
    status, location, _ = await fetch(client, f"{sim.base_url}/sessions/new?return_to={path}")
    assert status == 302 and urlsplit(location).path == parts.path

    status, _, html = await fetch(client, sim.base_url + location)
    assert status == 200 and "Sign in with your organisation account" in html
    page = tree(html)
    assert page.css_first("input[name=username]") and page.css_first("input[name=passwd]")
    assert page.css_first("input[name=user\\[login\\]]") is None

    url = sim.base_url + parts.path
    bad = {"username": sim.username, "passwd": "nope", "RelayState": path}
    async with client.post(url, data=bad, allow_redirects=False) as r:
        assert r.status == 200 and "Incorrect user ID or password" in await r.text()
    good = {"username": sim.username, "passwd": sim.password, "RelayState": path}
    async with client.post(url, data=good, allow_redirects=False) as r:
        assert r.status == 302
        acs = r.headers["Location"]
    assert urlsplit(acs).path == "/sso/acs"
    assert parse_qs(urlsplit(acs).query)["RelayState"] == [path]
    status, location, _ = await fetch(client, sim.base_url + acs)
    assert status == 302 and location == path
    status, _, html = await fetch(client, sim.base_url + path)
    assert status == 200 and "Purchase Order #" in html
    assert sim.stats.logins == 1
    # An assertion is good once only; a forged one sends the browser back to the IdP.
    async with new_client() as other:
        status, location, _ = await fetch(other, sim.base_url + acs)
        assert status == 302 and "/idp/saml/login" in location
        status, location, _ = await fetch(other, f"{sim.base_url}/sso/acs?SAMLResponse=x")
        assert status == 302 and "/idp/saml/login" in location
    assert sim.stats.snapshot()["requests"]["idp"] >= 5


async def test_session_expires_by_time(make_sim: MakeSim, client: aiohttp.ClientSession) -> None:
    sim = await make_sim(pos=5, session_ttl_seconds=0.4)
    await sign_in(client, sim)
    assert (await fetch(client, sim.base_url + _po_path(sim)))[0] == 200
    await asyncio.sleep(0.5)
    status, location, _ = await fetch(client, sim.base_url + _po_path(sim))
    assert status == 302 and location.startswith("/sessions/new")
    await sign_in(client, sim)  # a fresh sign-in works again
    assert (await fetch(client, sim.base_url + _po_path(sim)))[0] == 200


async def test_session_expires_by_request_count(
    make_sim: MakeSim, client: aiohttp.ClientSession
) -> None:
    sim = await make_sim(pos=5, session_max_requests=3)
    await sign_in(client, sim)
    statuses = [(await fetch(client, sim.base_url + _po_path(sim)))[0] for _ in range(5)]
    assert statuses == [200, 200, 200, 302, 302]


async def test_expire_sessions_ends_all(make_sim: MakeSim) -> None:
    sim = await make_sim(pos=5)
    async with new_client() as a, new_client() as b:
        await sign_in(a, sim)
        await sign_in(b, sim)
        assert sim.expire_sessions() == 2
        for c in (a, b):
            status, location, _ = await fetch(c, sim.base_url + _po_path(sim))
            assert status == 302 and location.startswith("/sessions/new")
        await sign_in(a, sim)
        async with a.post(f"{sim.base_url}/__sim/expire_sessions") as r:
            assert (await r.json()) == {"expired": 1}
        assert (await fetch(a, sim.base_url + _po_path(sim)))[0] == 302
