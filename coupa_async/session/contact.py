"""First contact: one light request to the tenant before anything starts or is created.

Tells apart the ways a first request fails (the name unknown, nobody listening, no answer, an
untrusted certificate, a proxy that says no) and an answer that is not Coupa at all, so a person
learns at once that the VPN is off or the address has a typo. The same words describe a browser
error of the same kind (``problem_of_browser_error``).
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from urllib.parse import urljoin, urlsplit

import aiohttp
import anyio

from coupa_async.coupa.markers import CoupaMarkers
from coupa_async.coupa.pages import has_login_form, is_login_url, parse_html
from coupa_async.errors import CoupaAsyncError, TenantUnreachableError
from coupa_async.log import error_summary, get_logger, public_text
from coupa_async.session.network import open_http, proxy_for
from coupa_async.session.outage import OUTAGE_STATUSES
from coupa_async.settings import Settings

log = get_logger(__name__)

MAX_REDIRECTS = 5
MAX_BODY = 256 * 1024
COUPA_SIGN = "coupa"  # in Coupa's page titles, asset addresses and cookie names


class Problem(StrEnum):
    """Why the tenant could not be reached, or why what answered is not it."""

    DNS = "dns"
    REFUSED = "refused"
    TIMEOUT = "timeout"
    UNREACHABLE = "unreachable"
    TLS = "tls"
    PROXY = "proxy"
    PROXY_AUTH = "proxy_auth"
    DROPPED = "dropped"
    NOT_HTTP = "not_http"
    NOT_COUPA = "not_coupa"


@dataclass(frozen=True)
class Contact:
    """The result of the first request: ``problem`` is None when Coupa answered."""

    url: str
    problem: Problem | None = None
    detail: str = ""
    status: int | None = None
    final_url: str | None = None
    title: str = ""
    sign: str = ""
    proxy: str | None = None
    timeout_s: float = 0.0
    seconds: float = 0.0
    what: str = "Coupa"  # what was to be reached there (the sign-in page of an SSO tenant…)

    @property
    def ok(self) -> bool:
        return self.problem is None

    def explain(self) -> str:
        """One paragraph: the address, what happened, the likely cause, what to do."""
        if self.problem is None:
            return f"Coupa answers at {self.url} ({self.sign})."
        return _EXPLAIN[self.problem](self)

    def raise_for_problem(self) -> None:
        """Raise TenantUnreachableError (exit code 2) unless Coupa answered."""
        if self.problem is not None:
            raise TenantUnreachableError(self.explain(), self.problem.value)


async def check_contact(settings: Settings) -> Contact:
    """GET the tenant's home page (following its redirects a little) and judge the answer.

    An answer of 5xx or 429 without a sign of Coupa passes (the tenant may be busy or down for a
    moment: that is for the run's outage handling), except from a proxy (502-504): the proxy
    could not reach the tenant.
    """
    assert settings.base_url, "check_contact needs settings.base_url"
    url = f"{settings.base_url}/"
    proxy = proxy_for(url, settings.network)
    base = Contact(
        url=settings.base_url,
        proxy=proxy.server if proxy else None,
        timeout_s=settings.network.contact_timeout_s,
    )
    started = time.monotonic()
    http = await open_http(settings, limit=4)
    try:
        with anyio.fail_after(base.timeout_s):
            answer = await _fetch(http, url, settings.markers)
    except CoupaAsyncError:
        raise
    except Exception as exc:
        problem, detail = problem_of_exception(exc, proxy_host=_host(base.proxy))
        contact = replace(base, problem=problem, detail=detail)
    else:
        contact = judge_answer(base, answer, settings.markers)
    finally:
        await http.close()
    contact = replace(contact, seconds=time.monotonic() - started)
    log.debug(
        "first_contact",
        url=contact.url,
        problem=contact.problem,
        status=contact.status,
        sign=contact.sign,
        seconds=round(contact.seconds, 3),
    )
    return contact


def judge_answer(base: Contact, answer: Answer, markers: CoupaMarkers) -> Contact:
    """``base`` completed with what the answer says: Coupa, or which problem."""
    status, title = answer.status, answer.title
    seen = replace(base, status=status, final_url=answer.url, title=title)
    if status == 407:
        return replace(seen, problem=Problem.PROXY_AUTH, detail="HTTP 407")
    sign = coupa_sign(answer, markers)
    if sign:
        return replace(seen, sign=sign)
    if status in OUTAGE_STATUSES and base.proxy:
        detail = f"the proxy answered HTTP {status}: it could not reach the address"
        return replace(seen, problem=Problem.PROXY, detail=detail)
    if status >= 500 or status == 429:
        return replace(seen, sign=f"HTTP {status}")
    return replace(seen, problem=Problem.NOT_COUPA)


async def ensure_contact(settings: Settings) -> Contact:
    """``check_contact``, raising TenantUnreachableError when Coupa cannot be reached."""
    contact = await check_contact(settings)
    contact.raise_for_problem()
    return contact


@dataclass(frozen=True)
class Answer:
    """What the tenant's home page answered, after the redirects that were followed."""

    url: str
    status: int
    redirects: tuple[str, ...]
    cookie_names: tuple[str, ...]
    html: str
    title: str = ""


async def _fetch(http: aiohttp.ClientSession, url: str, markers: CoupaMarkers) -> Answer:
    redirects: list[str] = []
    cookies: list[str] = []
    status = 0
    for _ in range(MAX_REDIRECTS + 1):
        async with http.get(url, allow_redirects=False) as response:
            cookies += [morsel.key for morsel in response.cookies.values()]
            location = response.headers.get("Location")
            status = response.status
            if status in (301, 302, 303, 307, 308) and location:
                url = urljoin(str(response.url), location)
                redirects.append(url)
                if is_login_url(url, markers):  # an identity provider need not be reached
                    return Answer(url, status, tuple(redirects), tuple(cookies), "")
                continue
            body = await response.content.read(MAX_BODY)
            try:
                html = body.decode(response.charset or "utf-8", "replace")
            except LookupError:
                html = body.decode("utf-8", "replace")
            return Answer(
                str(response.url),
                response.status,
                tuple(redirects),
                tuple(cookies),
                html,
                _title(html),
            )
    return Answer(url, status, tuple(redirects), tuple(cookies), "")


def _title(html: str) -> str:
    node = parse_html(html).css_first("title") if html else None
    return " ".join(node.text().split())[:80] if node is not None else ""


def coupa_sign(answer: Answer, markers: CoupaMarkers) -> str:
    """Why ``answer`` comes from Coupa (or its sign-in), or "" when nothing says so.

    SSO tenants send a signed-out visitor to their identity provider (okta, microsoftonline,
    adfs, a /saml/ or /login path), so a redirect to a sign-in counts, wherever it leads.
    """
    for target in answer.redirects:
        if is_login_url(target, markers):
            return f"redirects to a sign-in page at {urlsplit(target).netloc}"
    if any(COUPA_SIGN in name.lower() for name in answer.cookie_names):
        return "sets a Coupa cookie"
    lowered = answer.html.lower()
    if answer.html and has_login_form(parse_html(answer.html)) and COUPA_SIGN in lowered:
        return "shows Coupa's login form"
    if COUPA_SIGN in lowered:
        return "shows a Coupa page"
    return ""


# ----- telling failures apart ----------------------------------------------------------------


def _host(url: str | None) -> str | None:
    return urlsplit(url).hostname if url else None


def problem_of_exception(exc: BaseException, proxy_host: str | None = None) -> tuple[Problem, str]:
    """The kind of an aiohttp / socket / TLS failure, and a short detail without secrets."""
    detail = error_summary(exc)
    if isinstance(exc, aiohttp.ClientHttpProxyError):
        return (Problem.PROXY_AUTH if exc.status == 407 else Problem.PROXY), f"HTTP {exc.status}"
    if isinstance(exc, aiohttp.ClientProxyConnectionError) or (
        isinstance(exc, aiohttp.ClientConnectorError) and proxy_host and exc.host == proxy_host
    ):
        return Problem.PROXY, _os_detail(exc)
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return Problem.DNS, _os_detail(exc)
    if isinstance(exc, aiohttp.ClientSSLError | ssl.SSLError):
        return Problem.TLS, _os_detail(exc)
    if isinstance(exc, TimeoutError | aiohttp.ServerTimeoutError):
        return Problem.TIMEOUT, "no answer"
    if isinstance(exc, aiohttp.ClientConnectorError):
        if isinstance(exc.os_error, ConnectionRefusedError):
            return Problem.REFUSED, _os_detail(exc)
        if isinstance(exc.os_error, TimeoutError):
            return Problem.TIMEOUT, "no answer"
        return Problem.UNREACHABLE, _os_detail(exc)
    if isinstance(exc, aiohttp.ClientResponseError):
        return Problem.NOT_HTTP, (exc.message or detail).splitlines()[0][:120]
    if isinstance(exc, aiohttp.ServerDisconnectedError | aiohttp.ClientOSError | ConnectionError):
        return Problem.DROPPED, detail
    if isinstance(exc, OSError | aiohttp.ClientError):
        return Problem.UNREACHABLE, detail
    return Problem.UNREACHABLE, f"{type(exc).__name__}: {detail}"


def _os_detail(exc: BaseException) -> str:
    inner = getattr(exc, "certificate_error", None) or getattr(exc, "os_error", None) or exc
    reason = (
        getattr(inner, "verify_message", None)
        or getattr(inner, "reason", None)
        or getattr(inner, "strerror", None)
        or str(inner)
    )
    return public_text(str(reason)).splitlines()[0][:160] if reason else type(inner).__name__


# Chromium's net:: codes and Node's (the request API's) error names, by kind.
_BROWSER_SIGNS: tuple[tuple[Problem, tuple[str, ...]], ...] = (
    (Problem.PROXY_AUTH, ("ERR_PROXY_AUTH", "407 Proxy Authentication")),
    (Problem.PROXY, ("ERR_PROXY_", "ERR_TUNNEL_CONNECTION_FAILED")),
    (Problem.DNS, ("ERR_NAME_NOT_RESOLVED", "ENOTFOUND", "EAI_AGAIN", "getaddrinfo")),
    (Problem.REFUSED, ("ERR_CONNECTION_REFUSED", "ECONNREFUSED")),
    (Problem.TLS, ("ERR_CERT_", "ERR_SSL_", "CERT_", "certificate", "SSL routines")),
    (Problem.TIMEOUT, ("ERR_CONNECTION_TIMED_OUT", "ERR_TIMED_OUT", "ETIMEDOUT", "Timeout ")),
    (
        Problem.DROPPED,
        ("ERR_EMPTY_RESPONSE", "ERR_CONNECTION_RESET", "ERR_CONNECTION_CLOSED", "ECONNRESET"),
    ),
    (Problem.DROPPED, ("socket hang up", "ERR_SOCKET_NOT_CONNECTED")),
    (Problem.NOT_HTTP, ("ERR_INVALID_HTTP_RESPONSE", "ERR_INVALID_RESPONSE", "Parse Error")),
    (
        Problem.UNREACHABLE,
        (
            "ERR_INTERNET_DISCONNECTED",
            "ERR_ADDRESS_UNREACHABLE",
            "ERR_NETWORK_",
            "EHOSTUNREACH",
            "ENETUNREACH",
            "ERR_CONNECTION_FAILED",
        ),
    ),
)


def problem_of_browser_error(text: str) -> Problem | None:
    """The kind of a Playwright network error from its text; None when it is not one."""
    first = text.split("Call log:")[0]
    for problem, signs in _BROWSER_SIGNS:
        if any(sign in first for sign in signs):
            return problem
    return None


def unreachable_from_http(
    exc: BaseException, url: str, *, timeout_s: float = 0.0
) -> TenantUnreachableError:
    """TenantUnreachableError for a failed plain-HTTP request to ``url`` (aiohttp, socket)."""
    problem, detail = problem_of_exception(exc)
    parts = urlsplit(url)
    contact = Contact(
        url=f"{parts.scheme}://{parts.netloc}" if parts.netloc else url,
        problem=problem,
        detail=detail,
        timeout_s=timeout_s,
    )
    return TenantUnreachableError(contact.explain(), problem.value)


def unreachable_from_browser(
    error: BaseException | str, url: str, *, timeout_s: float = 0.0, what: str = "Coupa"
) -> TenantUnreachableError | None:
    """TenantUnreachableError for a browser network error at ``url``; None for other errors.

    ``error`` is a Playwright exception or a failed request's error text (``net::ERR_…``).
    """
    text = str(error)
    problem = problem_of_browser_error(text)
    if problem is None:
        return None
    parts = urlsplit(url)
    lines = public_text(text).splitlines() or [""]
    contact = Contact(
        url=f"{parts.scheme}://{parts.netloc}" if parts.netloc else url,
        problem=problem,
        detail=lines[0].split(": ", 1)[-1].strip()[:200],
        timeout_s=timeout_s,
        what=what,
    )
    return TenantUnreachableError(contact.explain(), problem.value)


# ----- the words -----------------------------------------------------------------------------


def _where(contact: Contact) -> str:
    return urlsplit(contact.url).netloc or contact.url


def _name(contact: Contact) -> str:
    return urlsplit(contact.url).hostname or contact.url


def _detail(contact: Contact) -> str:
    return f" ({contact.detail})" if contact.detail else ""


_TYPO = "Check the address for a typo (a tenant looks like https://<tenant>.coupahost.com)"


def _explain_dns(c: Contact) -> str:
    return (
        f"Cannot reach {c.what} at {c.url}: the name {_name(c)} is not known to this computer "
        f"(DNS lookup failed{': ' + c.detail if c.detail else ''}). {_TYPO}. If the address is "
        "right and is only known inside your company, connect to the company VPN (or network) "
        "and try again."
    )


def _explain_refused(c: Contact) -> str:
    return (
        f"Cannot reach {c.what} at {c.url}: {_where(c)} refused the connection, so nothing listens "
        f"there. {_TYPO}, and its port. If the address is right, the VPN may be off or the site "
        "is down; try again later."
    )


def _explain_timeout(c: Contact) -> str:
    within = f" within {c.timeout_s:g} s" if c.timeout_s else ""
    via = f" through the proxy {c.proxy}" if c.proxy else ""
    return (
        f"Cannot reach {c.what} at {c.url}: no answer{within}{via}. Most often the VPN is off or "
        f"a firewall drops the traffic; {_TYPO[0].lower()}{_TYPO[1:]}. If your network needs a "
        "proxy, set HTTPS_PROXY or network.proxy (COUPA_NETWORK__PROXY)."
    )


def _explain_unreachable(c: Contact) -> str:
    return (
        f"Cannot reach {c.what} at {c.url}{_detail(c)}. Check the network connection and the VPN, "
        f"and {_TYPO[0].lower()}{_TYPO[1:]}."
    )


def _explain_tls(c: Contact) -> str:
    return (
        f"Cannot reach {c.what} at {c.url} safely: the secure (TLS) connection failed{_detail(c)}. "
        "If your company inspects HTTPS traffic with its own certificate, trust that "
        "certificate: install it in the system's certificate store, or point network.ca_bundle "
        "(COUPA_NETWORK__CA_BUNDLE) at a PEM file holding it. If the address should be http:// "
        "or its port is wrong, fix the address."
    )


def _explain_proxy(c: Contact) -> str:
    proxy = f"the proxy {c.proxy}" if c.proxy else "the proxy"
    return (
        f"Cannot reach {c.what} at {c.url} through {proxy}{_detail(c)}. Check the proxy address "
        "(network.proxy, HTTPS_PROXY) and the VPN; on a network without a proxy, unset "
        "HTTPS_PROXY or set network.proxy to direct (COUPA_NETWORK__PROXY=direct)."
    )


def _explain_proxy_auth(c: Contact) -> str:
    proxy = f"The proxy {c.proxy}" if c.proxy else "A proxy on the way"
    return (
        f"{proxy} asks for a username and password (HTTP 407) before it lets anything through "
        f"to {c.url}. Put them in the proxy address: network.proxy (or HTTPS_PROXY) = "
        "http://user:password@host:port, or ask IT for a proxy that needs no sign-in."
    )


def _explain_dropped(c: Contact) -> str:
    return (
        f"Cannot reach {c.what} at {c.url}: {_where(c)} closed the connection without an "
        f"answer{_detail(c)}. Check the address's scheme (https:// or http://) and port; if "
        "they are right, the site or the VPN may be having trouble, try again later."
    )


def _explain_not_http(c: Contact) -> str:
    return (
        f"Cannot reach {c.what} at {c.url}: something answers at {_where(c)}, but not as a web "
        f"site{_detail(c)}, so the port is probably wrong. {_TYPO}."
    )


def _explain_not_coupa(c: Contact) -> str:
    said = f"HTTP {c.status}" + (f', "{c.title}"' if c.title else "")
    return (
        f"{c.url} answered ({said}), but it is not Coupa: no redirect to a sign-in page or an "
        f"identity provider, no Coupa login form, no sign of a Coupa page. {_TYPO}. A Wi-Fi "
        "sign-in portal or a company block page also looks like this: is the VPN on?"
    )


_EXPLAIN: Mapping[Problem, Callable[[Contact], str]] = {
    Problem.DNS: _explain_dns,
    Problem.REFUSED: _explain_refused,
    Problem.TIMEOUT: _explain_timeout,
    Problem.UNREACHABLE: _explain_unreachable,
    Problem.TLS: _explain_tls,
    Problem.PROXY: _explain_proxy,
    Problem.PROXY_AUTH: _explain_proxy_auth,
    Problem.DROPPED: _explain_dropped,
    Problem.NOT_HTTP: _explain_not_http,
    Problem.NOT_COUPA: _explain_not_coupa,
}
