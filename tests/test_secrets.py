"""Secrets never shown: a planted session cookie stays out of every output when Coupa fails,
and the log set-up removes call logs, cookie headers, tokens, passwords of any length and
proxy passwords (a raw "@" in them too)."""

from __future__ import annotations

import io
import json
from pathlib import Path
from urllib.parse import quote

import pytest
import structlog
from aiohttp import web
from playwright.async_api import Browser
from playwright.async_api import Error as PlaywrightError

from coupa_async import log
from coupa_async.errors import TenantUnreachableError
from coupa_async.log import add_known_secret, configure_logging, get_logger, public_text
from coupa_async.session.chromium import new_context
from coupa_async.settings import default_storage_state
from coupa_async.signin.probe import session_is_valid

from .clikit import cli_env, finish, start_cli, write_input
from .netkit import serve
from .runkit import make_settings

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


@pytest.fixture
def own_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    """The known secrets of this test only: none before, those it adds forgotten after."""
    monkeypatch.setattr(log, "_known_secrets", ())
    monkeypatch.setattr(log, "_short_secrets", frozenset())
    monkeypatch.setattr(log, "_short_values", None)


@pytest.mark.usefixtures("own_secrets")
def test_a_one_character_password_goes_where_it_is_a_value_and_nowhere_else() -> None:
    add_known_secret("7", any_length=True)
    text = "PO 17 has 7 files; retry=7, pw=7&user=ana, {'pass': '7'}, [\"7\"], pin: 7."
    assert public_text(text) == (
        "PO 17 has 7 files; retry=[redacted], pw=[redacted]&user=ana, "
        "{'pass': '[redacted]'}, [\"[redacted]\"], pin: [redacted]."
    )
    assert public_text("7") == "[redacted]" and public_text(" 7 ") == "[redacted]"
    assert public_text("7.5 s, 1:75, x=77, 7=7a") == "7.5 s, 1:75, x=77, 7=7a"


@pytest.mark.usefixtures("own_secrets")
@pytest.mark.parametrize("password", ["k", "k9", "k9!", "k9!x", "k9!x@"])
def test_a_short_password_leaves_no_trace_in_the_usual_places(password: str) -> None:
    add_known_secret(password, any_length=True)
    encoded = quote(password, safe="")
    texts = [
        f"http://alice:{password}@proxy.corp:8080",
        f"http://alice:{encoded}@proxy.corp:8080",
        f"login=alice&pw={password}",
        f"login=alice&pw={encoded}",
        json.dumps({"user": "alice", "pass": password}),
        json.dumps({"user": "alice", "pass": password}, separators=(",", ":")),
        f"X-Pin: {password}",
        repr(("alice", password)),
        password,
    ]
    for text in texts:
        shown = public_text(text)
        assert password not in shown and encoded not in shown, shown
        assert "[redacted]" in shown


@pytest.mark.usefixtures("own_secrets")
def test_short_values_not_marked_as_passwords_are_ignored_and_long_ones_go_in_any_form() -> None:
    add_known_secret("1")  # a cookie flag: no secret
    add_known_secret("p@ss w0rd/+1")
    assert public_text("page=1") == "page=1"
    for form in (
        "p@ss w0rd/+1",
        "p%40ss%20w0rd%2F%2B1",
        "p%40ss+w0rd%2F%2B1",
        "p%40ss%20w0rd/%2B1",
    ):
        assert public_text(f"said {form}!") == "said [redacted]!", form


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("http://user:p@ss@proxy:8080", "http://user:[redacted]@proxy:8080"),
        ("via http://user:p@ss@proxy:8080/x ok", "via http://user:[redacted]@proxy:8080/x ok"),
        ("http://ana@corp.pt:pw@proxy:8080", "http://ana@corp.pt:[redacted]@proxy:8080"),
        ("http://us%40er:p%40ss%3Aw@proxy:8080/", "http://us%40er:[redacted]@proxy:8080/"),
        ("http://user:pa:ss@proxy", "http://user:[redacted]@proxy"),
        ("https://user@host.corp/path", "https://[redacted]@host.corp/path"),
        ("https://ghp_t0ken@github.com", "https://[redacted]@github.com"),
        ("http://bob:pa@ss@[2001:db8::1]:3128", "http://bob:[redacted]@[2001:db8::1]:3128"),
        ("socks5://bob:pw@[::1]:1080", "socks5://bob:[redacted]@[::1]:1080"),
        ("http://[::1]:8080/x?mail=a@b.pt", "http://[::1]:8080/x?mail=a@b.pt"),
        ("https://host.corp/users?email=a@b.pt", "https://host.corp/users?email=a@b.pt"),
        ("https://host.corp#a@b", "https://host.corp#a@b"),
        (
            "from http://a:one@h1:1 to http://b:tw@o@h2:2",
            "from http://a:[redacted]@h1:1 to http://b:[redacted]@h2:2",
        ),
        (
            '{"proxy": "http://a:x@h:1", "mail": "c@d.pt"}',
            '{"proxy": "http://a:[redacted]@h:1", "mail": "c@d.pt"}',
        ),
    ],
)
def test_the_userinfo_of_an_address_is_everything_before_its_last_at(text: str, shown: str) -> None:
    assert public_text(text) == shown


@pytest.mark.usefixtures("own_secrets", "_reset_structlog")
@pytest.mark.parametrize("log_format", ["console", "json"])
def test_a_short_password_and_a_proxy_with_a_raw_at_stay_out_of_log_lines(log_format: str) -> None:
    stream = io.StringIO()
    configure_logging(log_format, "debug", stream=stream)
    add_known_secret("Qz!", any_length=True)
    get_logger("test").warning(
        "sign_in_failed",
        typed="Qz!",
        form="login=ana&pw=Qz!",
        proxy="http://ana:pr@xy-Qz@proxy.corp:8080",
        po="PO15262984",
    )
    text = stream.getvalue()
    assert "Qz!" not in text and "pr@xy" not in text and "xy-Qz" not in text, text
    assert "PO15262984" in text and "proxy.corp:8080" in text and "login=ana" in text
