"""Secrets never shown: a planted session cookie stays out of every output when Coupa fails,
and the log set-up removes call logs, cookie headers, tokens and proxy passwords."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import structlog
from aiohttp import web
from playwright.async_api import Browser
from playwright.async_api import Error as PlaywrightError

from coupa_async.auth import session_is_valid
from coupa_async.browser import new_context
from coupa_async.errors import TenantUnreachableError
from coupa_async.log import add_known_secret, configure_logging, get_logger, public_text
from coupa_async.settings import default_storage_state

from .conftest import make_settings
from .netkit import serve
from .test_cli import cli_env, finish, start_cli, write_input

MARKER = "PLANTED-cookie-5e1f0c9a"


def hangs_up_on_the_po_list() -> web.Application:
    """Coupa-like at first sight; the PO list (the sign-in check) drops the connection."""

    async def home(request: web.Request) -> web.Response:
        raise web.HTTPFound("/sessions/new")

    async def form(request: web.Request) -> web.Response:
        return web.Response(
            text="<title>Sign in - Coupa</title><form><input type=password></form>",
            content_type="text/html",
        )

    async def hang_up(request: web.Request) -> web.Response:
        assert request.transport is not None
        request.transport.abort()
        return web.Response()

    app = web.Application()
    app.router.add_get("/", home)
    app.router.add_get("/sessions/new", form)
    app.router.add_get("/order_headers", hang_up)
    return app


def state_with_marker(host: str) -> dict[str, object]:
    cookie = {
        "name": "_coupa_session",
        "value": MARKER,
        "domain": host,
        "path": "/",
        "expires": -1,
        "httpOnly": True,
        "secure": False,
        "sameSite": "Lax",
    }
    return {"cookies": [cookie], "origins": []}


async def test_a_planted_cookie_appears_in_no_output_when_coupa_hangs_up(
    tmp_path: Path, browser: Browser
) -> None:
    async with serve(hangs_up_on_the_po_list()) as port:
        base_url = f"http://127.0.0.1:{port}"
        # The raw browser error does carry the cookie: that is what must never be shown.
        settings = make_settings(tmp_path, base_url=base_url)
        context = await new_context(browser, settings, state_with_marker("127.0.0.1"))
        try:
            with pytest.raises(PlaywrightError) as raw:
                await context.request.get(f"{base_url}/order_headers")
            assert MARKER in str(raw.value)
            assert MARKER not in public_text(str(raw.value))
            with pytest.raises(TenantUnreachableError) as calm:
                await session_is_valid(context, base_url, settings.markers)
            assert MARKER not in str(calm.value) and base_url in str(calm.value)
        finally:
            await context.close()

        env = cli_env(tmp_path)
        del env["COUPA_STORAGE_STATE"]  # the tenant's own file under HOME
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("HOME", str(tmp_path))
            state_file = default_storage_state(base_url)
        state_file.parent.mkdir(parents=True)
        state_file.write_text(json.dumps(state_with_marker("127.0.0.1")))
        source = write_input(tmp_path / "pos.csv", ["PO15262984"])
        out = tmp_path / "out"
        outputs = []
        for log_format in ("console", "json"):
            args = ("run", str(source), "--base-url", base_url, "--out", str(out))
            extra = ("--log-level", "debug", "--log-format", log_format)
            code, output = await finish(await start_cli(tmp_path, *args, *extra, env=env))
            assert code == 2, output
            assert "closed the connection" in output and base_url in output
            outputs.append(output)
    assert MARKER in state_file.read_text()  # still planted: it was there to be leaked
    for output in outputs:
        assert MARKER not in output and "Traceback" not in output and "Call log" not in output
    written = [path for path in out.rglob("*") if path.is_file()]
    assert written  # the journal and the report: they must not hold it either
    for path in written:
        assert MARKER.encode() not in path.read_bytes(), path


@pytest.fixture
def _reset_structlog():
    yield
    structlog.reset_defaults()


@pytest.mark.usefixtures("_reset_structlog")
@pytest.mark.parametrize("log_format", ["console", "json"])
def test_logged_errors_lose_call_logs_headers_tokens_and_passwords(log_format: str) -> None:
    stream = io.StringIO()
    configure_logging(log_format, "debug", stream=stream)
    add_known_secret("hunter2-known")
    call_log = (
        "APIRequestContext.get: socket hang up\nCall log:\n  - → GET https://acme.coupahost.com/x\n"
        "    - accept: */*\n    - cookie: locale=en; _coupa_session=c00kie-one\n"
    )
    try:
        raise RuntimeError(call_log)
    except RuntimeError:
        get_logger("test").exception(
            "po_job_error",
            detail="Set-Cookie: _coupa_session=c00kie-two; Path=/; HttpOnly",
            header="Authorization: Basic YWxpY2U6c2VjcmV0LTM=",
            url="https://acme.okta.com/sso?SAMLResponse=assert-four&RelayState=/order_headers",
            proxy="http://alice:proxy-five@proxy.corp:8080",
            said="typed hunter2-known by mistake",
            po="PO15262984",
        )
    text = stream.getvalue()
    for secret in ("c00kie-one", "c00kie-two", "YWxpY2U6", "assert-four", "proxy-five", "hunter2"):
        assert secret not in text, f"{secret} in {text}"
    assert "Call log" not in text and "socket hang up" in text
    assert "PO15262984" in text and "RelayState=/order_headers" in text and "proxy.corp" in text
