"""First contact: the tenant unreachable, unknown, on a wrong port, not Coupa, behind a proxy that
wants a password, or with a certificate nobody trusts. Exit 2, one paragraph, nothing created."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

import pytest
from aiohttp import web
from playwright.async_api import Error as PlaywrightError
from playwright.async_api import Playwright

from coupa_async.errors import TenantUnreachableError
from coupa_async.results.journal import Journal
from coupa_async.running.downloader import Downloader
from coupa_async.session.chromium import launch_browser
from coupa_async.session.contact import Problem, check_contact
from coupa_async.sim import SimConfig, Simulator

from .clikit import cli_env, finish, start_cli, write_input
from .netkit import CountingProxy, banner_port, free_port, make_authority, serve, unrelated_site
from .runkit import make_settings

Place = Callable[[], AbstractAsyncContextManager[str]]


@asynccontextmanager
async def closed_port() -> AsyncIterator[str]:
    yield f"http://127.0.0.1:{free_port()}"


@asynccontextmanager
async def unknown_name() -> AsyncIterator[str]:
    yield "https://coupa-does-not-exist.invalid"


@asynccontextmanager
async def wrong_port() -> AsyncIterator[str]:
    async with banner_port() as port:
        yield f"http://127.0.0.1:{port}"


@asynccontextmanager
async def not_coupa() -> AsyncIterator[str]:
    async with serve(unrelated_site()) as port:
        yield f"http://127.0.0.1:{port}"


CASES: dict[str, tuple[Place, str]] = {
    "refused": (closed_port, "refused the connection"),
    "dns": (unknown_name, "DNS lookup failed"),
    "wrong_port": (wrong_port, "port is probably wrong"),
    "not_coupa": (not_coupa, "it is not Coupa"),
}


@pytest.mark.parametrize("case", list(CASES))
async def test_run_at_an_address_without_coupa_exits_2_and_creates_nothing(
    tmp_path: Path, case: str
) -> None:
    place, words = CASES[case]
    source = write_input(tmp_path / "pos.csv", ["PO15262984"])
    out = tmp_path / "out"
    async with place() as url:
        started = time.monotonic()
        code, output = await finish(
            await start_cli(
                tmp_path,
                "run",
                str(source),
                "--base-url",
                url,
                "--out",
                str(out),
                env=cli_env(tmp_path),
            )
        )
        took = time.monotonic() - started
    print(f"first contact {case}: exit {code} after {took:.2f} s")
    assert code == 2, output
    assert url in output and words in output
    assert "Traceback" not in output and "Call log" not in output
    assert not out.exists()  # the time it took is printed above; benchmarks judge it


async def test_login_and_audit_check_first_contact_too(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    env = cli_env(tmp_path, COUPA_USERNAME="buyer@example.com", COUPA_PASSWORD="x-password")
    code, output = await finish(await start_cli(tmp_path, "login", "--base-url", url, env=env))
    assert code == 2 and url in output and "Traceback" not in output, output
    assert not (tmp_path / "state.json").exists()

    out = tmp_path / "earlier-run"
    Journal.open(out).close()
    before = sorted(out.rglob("*"))
    code, output = await finish(
        await start_cli(tmp_path, "audit", "--out", str(out), "--base-url", url, env=env)
    )
    assert code == 2 and url in output and "Traceback" not in output, output
    assert sorted(out.rglob("*")) == before


@pytest.mark.browser
async def test_the_library_says_so_before_it_creates_the_output_folder(tmp_path: Path) -> None:
    out = tmp_path / "out"
    settings = make_settings(tmp_path, base_url="https://coupa-does-not-exist.invalid", out=out)
    with pytest.raises(TenantUnreachableError) as caught:
        async with Downloader(settings):
            pass
    assert caught.value.exit_code == 2 and caught.value.cause == "dns"
    assert not out.exists()


async def test_coupa_and_sso_tenants_pass_a_company_page_does_not(tmp_path: Path) -> None:
    for sso in (False, True):
        async with Simulator(SimConfig(seed=2, pos=2, sso=sso)) as sim:
            contact = await check_contact(make_settings(tmp_path, base_url=sim.base_url))
            assert contact.ok and "sign-in" in contact.sign, contact

    async def to_okta(request: web.Request) -> web.Response:
        raise web.HTTPFound("https://example.okta.com/app/coupa/sso/saml?RelayState=x")

    app = web.Application()
    app.router.add_get("/", to_okta)
    async with serve(app) as port:  # the identity provider itself is never asked
        contact = await check_contact(make_settings(tmp_path, base_url=f"http://127.0.0.1:{port}"))
        assert contact.ok and "example.okta.com" in contact.sign

    async with serve(unrelated_site()) as port:
        contact = await check_contact(make_settings(tmp_path, base_url=f"http://127.0.0.1:{port}"))
        assert contact.problem is Problem.NOT_COUPA and "Intranet news" in contact.explain()


async def test_a_proxy_that_wants_a_password_or_is_not_there(tmp_path: Path) -> None:
    async with Simulator(SimConfig(seed=2, pos=2)) as sim:
        proxy = CountingProxy({"coupa-sim.test": sim.port}, credentials="alice:s3cret-proxy")
        async with proxy.running() as port:
            url = f"http://coupa-sim.test:{sim.port}"
            env = cli_env(tmp_path, HTTP_PROXY=f"http://127.0.0.1:{port}")
            source = write_input(tmp_path / "pos.csv", ["PO15262984"])
            args = ("run", str(source), "--base-url", url, "--out", str(tmp_path / "out"))
            code, output = await finish(await start_cli(tmp_path, *args, env=env))
            assert code == 2 and "HTTP 407" in output and url in output, output
            assert proxy.refused == 1 and not (tmp_path / "out").exists()

            with_password = make_settings(
                tmp_path,
                base_url=url,
                network={"proxy": f"http://alice:s3cret-proxy@127.0.0.1:{port}"},
            )
            contact = await check_contact(with_password)
            assert contact.ok and contact.proxy == f"http://127.0.0.1:{port}", contact
            assert "s3cret" not in contact.explain()

    nowhere = make_settings(
        tmp_path, base_url="http://coupa-sim.test", network={"proxy": f"127.0.0.1:{free_port()}"}
    )
    contact = await check_contact(nowhere)
    assert contact.problem is Problem.PROXY and "through the proxy" in contact.explain()


async def test_no_answer_ends_at_the_contact_deadline(tmp_path: Path) -> None:
    async def never(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # accept, never answer (as a firewall that swallows packets)

    server = await asyncio.start_server(never, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    settings = make_settings(
        tmp_path, base_url=f"http://127.0.0.1:{port}", network={"contact_timeout_s": 1}
    )
    try:
        async with asyncio.timeout(60):  # catches a hang only: the bound is in the message
            contact = await check_contact(settings)
    finally:
        server.close()
    assert contact.problem is Problem.TIMEOUT
    assert "no answer within 1 s" in contact.explain() and "VPN" in contact.explain()


def https_coupa() -> web.Application:
    async def home(request: web.Request) -> web.Response:
        raise web.HTTPFound("/sessions/new")

    async def sign_in(request: web.Request) -> web.Response:
        return web.Response(text="<title>Sign in - Coupa</title>", content_type="text/html")

    app = web.Application()
    app.router.add_get("/", home)
    app.router.add_get("/sessions/new", sign_in)
    return app


async def test_an_untrusted_certificate_and_the_ca_bundle_that_trusts_it(
    tmp_path: Path, playwright: Playwright
) -> None:
    authority = make_authority(tmp_path / "ca")
    async with serve(https_coupa(), authority.server_context()) as port:
        url = f"https://127.0.0.1:{port}"
        source = write_input(tmp_path / "pos.csv", ["PO15262984"])
        args = ("run", str(source), "--base-url", url, "--out", str(tmp_path / "out"))
        code, output = await finish(await start_cli(tmp_path, *args, env=cli_env(tmp_path)))
        assert code == 2 and url in output and "network.ca_bundle" in output, output
        assert "Traceback" not in output and not (tmp_path / "out").exists()

        trusted = make_settings(tmp_path, base_url=url, network={"ca_bundle": str(authority.ca)})
        contact = await check_contact(trusted)
        assert contact.ok, contact.explain()

        for settings, opens in ((make_settings(tmp_path, base_url=url), False), (trusted, True)):
            browser = await launch_browser(playwright, settings)
            try:
                page = await browser.new_page()
                try:
                    await page.goto(f"{url}/sessions/new")
                    assert opens and await page.title() == "Sign in - Coupa"
                except PlaywrightError as exc:
                    assert not opens and "ERR_CERT" in str(exc)
            finally:
                await browser.close()
