"""The aiohttp application: routes, sign-in, pages, files and fault injection."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

from aiohttp import web

from .api import API_PREFIXES, RestApi
from .assets import CACHE_CONTROL, NOTIFICATIONS_PATH, UPDATES_PATH, AssetRefs, HeavyAssets
from .catalog import (
    COMMENTS_JSON,
    LATE_FRAGMENT,
    LATE_JSON,
    Catalog,
    LateFill,
    SimFile,
    SimPO,
    SimRequisition,
    late_part,
)
from .config import SimConfig
from .faults import (
    BODY_FAULTS,
    HOSTILE_FAULTS,
    REQUEST_FAULTS,
    Decision,
    FaultInjector,
    Faults,
    HostileAnswer,
    retry_after_header,
)
from .hostile_answers import HostileResponder
from .outages import (
    ANSWER_STATUS,
    DROPPING_MODES,
    ActiveOutage,
    OutageController,
    abort_transport,
)
from .pages import (
    PROXY_NAME,
    attachments_fragment,
    attachments_json,
    comments_json,
    file_error_page,
    home_page,
    idp_page,
    login_page,
    maintenance_page,
    not_found_oops_page,
    not_found_page,
    po_list_page,
    po_page,
    pr_page,
    proxy_error_page,
    rate_limited_page,
    server_error_page,
)
from .sessions import SESSION_COOKIE, SessionStore, safe_return_to
from .stats import Stats

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

LOGIN_PATH = "/sessions/new"
IDP_PATH = "/idp/saml/login"
ACS_PATH = "/sso/acs"
FILE_PREFIXES = ("/attachments/", "/file_download/", "/files/")
PAGE_PREFIXES = ("/order_headers/", "/requisition_headers/")
DATA_SUFFIXES = (f"/{LATE_JSON}", f"/{LATE_FRAGMENT}", f"/{COMMENTS_JSON}")
SEARCH_FIELD = "search[keyword]"
_HTML = "text/html"
_MAX_CACHED_PAGES = 100_000


def classify(path: str) -> str:
    """The request kind counted in the stats and matched against `Faults.kinds`."""
    if path.startswith(PAGE_PREFIXES) and path.endswith(DATA_SUFFIXES):
        return "page_data"
    if path.startswith("/assets/"):
        return "asset"
    if path.startswith(API_PREFIXES):
        return "api"
    if path.startswith("/order_headers/"):
        return "po_page"
    if path.startswith(FILE_PREFIXES):
        return "file"
    if path.startswith("/requisition_headers/"):
        return "pr_page"
    if path == "/order_headers":
        return "list"
    if path.startswith("/sessions") or path == "/logout":
        return "login"
    if path.startswith(("/idp/", "/sso/")):
        return "idp"
    if path == "/":
        return "home"
    return "other"


def _html(body: str | bytes, status: int = 200) -> web.Response:
    data = body.encode() if isinstance(body, str) else body
    return web.Response(body=data, status=status, content_type=_HTML, charset="utf-8")


def _redirect(location: str) -> web.Response:
    return web.Response(status=302, headers={"Location": location})


class SimApp:
    """State and handlers of one simulator."""

    def __init__(self, config: SimConfig, catalog: Catalog, stats: Stats) -> None:
        self.config = config
        self.catalog = catalog
        self.stats = stats
        self.sessions = SessionStore(config)
        self.injector = FaultInjector(config.seed)
        self.outages = OutageController(stats)
        self.stopping = asyncio.Event()
        self.hostile = HostileResponder(config, self.sessions, stats, self.stopping)
        self._hostile_uses: dict[str, int] = {}  # hostile answers given, per catalog page/file
        self._pages: dict[tuple[str, str], bytes] = {}
        self._static: dict[str, bytes] = {}
        self._catalog_json: bytes | None = None
        self.assets = HeavyAssets(config.seed)  # generated on first use
        self.api = RestApi(config, catalog, stats, self.serve_file)

    # --- application --------------------------------------------------------------------------

    def build(self) -> web.Application:
        """The aiohttp application serving this simulator."""

        @web.middleware
        async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
            return await self._count_and_fault(request, handler)

        app = web.Application(middlewares=[middleware], client_max_size=1024 * 1024)
        r = app.router
        r.add_get("/", self.home)
        r.add_get(LOGIN_PATH, self.login_form)
        r.add_post("/sessions", self.login_submit)
        r.add_get("/sessions/destroy", self.logout)
        r.add_get("/logout", self.logout)
        r.add_get(IDP_PATH, self.idp_form)
        r.add_post(IDP_PATH, self.idp_submit)
        r.add_get(ACS_PATH, self.acs)
        r.add_post(ACS_PATH, self.acs)
        r.add_get("/order_headers", self.po_list)
        r.add_get("/order_headers/{number}", self.po)
        r.add_get("/requisition_headers/{number}", self.pr)
        for page in ("/order_headers/{number}/", "/requisition_headers/{number}/"):
            r.add_get(page + LATE_JSON, self.page_data)
            r.add_get(page + LATE_FRAGMENT, self.page_data)
            r.add_get(page + COMMENTS_JSON, self.comments_data)
        r.add_get("/assets/{tail:.*}", self.asset)
        r.add_get(NOTIFICATIONS_PATH, self.notifications)
        r.add_get(UPDATES_PATH, self.updates)
        self.api.add_routes(r)  # after the polls: its catch-all answers the rest of /api/*
        for prefix in FILE_PREFIXES:
            r.add_get(prefix + "{id}", self.file)
            r.add_get(prefix + "{id}/{name}", self.file)
        self._add_sim_routes(r)
        r.add_route("*", "/{tail:.*}", self.not_found)
        return app

    def build_control(self) -> web.Application:
        """The `/__sim/*` endpoints alone, for the control port no outage touches."""
        app = web.Application(client_max_size=1024 * 1024)
        self._add_sim_routes(app.router)
        return app

    def _add_sim_routes(self, r: web.UrlDispatcher) -> None:
        r.add_get("/__sim/stats", self.sim_stats)
        r.add_post("/__sim/reset", self.sim_reset)
        r.add_get("/__sim/catalog", self.sim_catalog)
        r.add_post("/__sim/expire_sessions", self.sim_expire)
        r.add_post("/__sim/expire_tokens", self.sim_expire_tokens)
        r.add_get("/__sim/faults", self.sim_faults)
        r.add_post("/__sim/faults", self.sim_faults)
        r.add_post("/__sim/inject", self.sim_inject)
        r.add_get("/__sim/outage", self.sim_outage)
        r.add_post("/__sim/outage", self.sim_outage)
        r.add_delete("/__sim/outage", self.sim_outage)

    async def _count_and_fault(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        path = request.path
        if path.startswith("/__sim/"):
            return await handler(request)
        kind = classify(path)
        stats = self.stats
        stats.begin(kind)
        stats.arrived(request.host, path)
        status: int | None = None
        body_bytes = 0
        try:
            active = self.outages.active
            response = None
            if active is not None:
                active.record.requests += 1
                response = await self._during_outage(request, active)
                if response is not None and active.mode in DROPPING_MODES:
                    return response  # never sent: the connection is gone
            if response is None:
                response = await self._request_fault(request, kind)
            if response is None:
                response = await handler(request)
                if kind == "po_page":
                    await self._po_page_answered(request, response)
            status = response.status
            if isinstance(response, web.Response) and isinstance(response.body, bytes):
                body_bytes = len(response.body)
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        finally:
            stats.end(status, body_bytes)

    async def _during_outage(
        self, request: web.Request, active: ActiveOutage
    ) -> web.StreamResponse | None:
        """What an outage does to one request; None lets it through (a hang that ended)."""
        mode = active.mode
        status = ANSWER_STATUS.get(mode)
        if status == 503:
            response = _html(self._cached("maintenance", maintenance_page), status=503)
        elif status is not None:
            url = f"{request.scheme}://{request.host}{request.path_qs}"
            response = _html(proxy_error_page(status, url), status=status)
            response.headers["Server"] = PROXY_NAME
            response.headers["Via"] = f"1.1 {PROXY_NAME}"
        elif mode == "hang":
            await active.over.wait()
            if self.stopping.is_set():
                return _html(server_error_page(503), status=503)
            return None
        else:  # reset; or refuse, for a connection accepted just before the port closed
            transport = request.transport
            if transport is not None:
                abort_transport(transport, reset=mode == "reset")
            return web.Response(status=503)
        if active.retry_after is not None:
            response.headers["Retry-After"] = retry_after_header(active.retry_after)
        return response

    async def _po_page_answered(self, request: web.Request, response: web.StreamResponse) -> None:
        """Count a PO page answered outside an outage; start the outages it makes due."""
        due = self.outages.po_page_answered()
        if not due:
            return
        begun = await self.outages.begin_due(due, keep=request.transport)
        if begun is not None and begun.mode in DROPPING_MODES:
            response.force_close()  # this answer still goes out, then the connection closes

    async def _request_fault(self, request: web.Request, kind: str) -> web.StreamResponse | None:
        """Apply the faults decided before routing; None lets the request through."""
        faults = self.config.faults
        injector = self.injector
        in_scope = kind in faults.kinds
        if in_scope:
            left = injector.penalty_remaining()
            if left > 0:
                self.stats.rate_limited += 1
                if injector.since_penalty_started() * 1000 > faults.retry_after_grace_ms:
                    self.stats.requests_during_retry_after += 1
                else:
                    self.stats.requests_in_flight_at_429 += 1
                return self._too_many(left)
            delay = injector.delay(faults)
            if delay > 0:
                await asyncio.sleep(delay)
        decision = injector.take(request.path_qs, REQUEST_FAULTS)
        if decision is None and in_scope:
            decision = injector.roll_request(faults)
        if decision is None:
            return None
        self.stats.fault(decision.fault)
        return await self._apply(decision, request, faults)

    async def _apply(
        self, decision: Decision, request: web.Request, faults: Faults
    ) -> web.StreamResponse | None:
        fault, params = decision.fault, decision.params
        if fault in HOSTILE_FAULTS:
            return await self.hostile.answer(request, fault, params)
        if fault in ("500", "503"):
            return _html(server_error_page(int(fault)), status=int(fault))
        if fault == "429":
            seconds = float(
                params.get("retry_after", params.get("seconds", faults.retry_after_seconds))
            )
            self.injector.start_penalty(seconds)
            self.stats.rate_limited += 1
            return self._too_many(seconds)
        if fault == "hang":
            hang_s = params.get("seconds", faults.hang_seconds)
            if await self._hang(hang_s):
                return _html(server_error_page(503), status=503)
            return None  # a finite hang: then answer normally
        if fault == "login_redirect":
            return self._login_redirect(request)
        raise AssertionError(fault)

    async def _hang(self, seconds: float | None) -> bool:
        """Wait `seconds` (None: until the client goes or the simulator stops).
        True when cut short by the simulator stopping."""
        try:
            await asyncio.wait_for(self.stopping.wait(), seconds)
        except TimeoutError:
            return False
        return True

    def _hostile_due(self, key: str, answer: HostileAnswer) -> bool:
        """Whether a catalog page or file answers its hostile answer this time (the first
        `answer.times` requests, or always), counting it."""
        used = self._hostile_uses.get(key, 0)
        if answer.times is not None and used >= answer.times:
            return False
        self._hostile_uses[key] = used + 1
        return True

    async def _hostile_answer(
        self, request: web.Request, answer: HostileAnswer
    ) -> web.StreamResponse:
        self.stats.fault(answer.fault)
        return await self.hostile.answer(request, answer.fault, answer.kwargs)

    def _too_many(self, seconds: float) -> web.Response:
        response = _html(rate_limited_page(), status=429)
        response.headers["Retry-After"] = retry_after_header(seconds)
        return response

    # --- sessions -----------------------------------------------------------------------------

    def _signed_in(self, request: web.Request) -> bool:
        return self.sessions.use(request.cookies.get(SESSION_COOKIE))

    def _login_redirect(self, request: web.Request) -> web.Response:
        self.stats.login_redirects += 1
        return _redirect(self._login_location(request.path_qs))

    def _login_location(self, return_to: str) -> str:
        if self.config.sso:
            return f"{IDP_PATH}?RelayState={quote(return_to, safe='/')}"
        return f"{LOGIN_PATH}?return_to={quote(return_to, safe='/')}"

    def _start_session(self, location: str) -> web.Response:
        response = _redirect(location)
        response.set_cookie(
            SESSION_COOKIE, self.sessions.create(), path="/", httponly=True, samesite="Lax"
        )
        self.stats.logins += 1
        return response

    def _credentials_ok(self, login: str, password: str) -> bool:
        config = self.config
        return login.strip().casefold() == config.username.casefold() and (
            password == config.password
        )

    async def login_form(self, request: web.Request) -> web.StreamResponse:
        return_to = safe_return_to(request.query.get("return_to"))
        if self.config.sso:
            return _redirect(self._login_location(return_to))
        if self.sessions.use(request.cookies.get(SESSION_COOKIE)):
            return _redirect(return_to)
        return _html(login_page(self.sessions.issue_csrf(), return_to))

    async def login_submit(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        return_to = safe_return_to(_field(form, "return_to") or request.query.get("return_to"))
        if self.config.sso:
            return _redirect(self._login_location(return_to))
        if not self.sessions.check_csrf(_field(form, "authenticity_token")):
            error = "Your session has expired. Please sign in again."
            return _html(login_page(self.sessions.issue_csrf(), return_to, error))
        if not self._credentials_ok(
            _field(form, "user[login]") or "", _field(form, "user[password]") or ""
        ):
            error = "Invalid email or password"
            return _html(login_page(self.sessions.issue_csrf(), return_to, error))
        return self._start_session(return_to)

    async def logout(self, request: web.Request) -> web.StreamResponse:
        self.sessions.drop(request.cookies.get(SESSION_COOKIE))
        response = _redirect(LOGIN_PATH)
        response.del_cookie(SESSION_COOKIE, path="/")
        return response

    async def idp_form(self, request: web.Request) -> web.StreamResponse:
        return _html(idp_page(safe_return_to(request.query.get("RelayState"))))

    async def idp_submit(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        relay = safe_return_to(_field(form, "RelayState") or request.query.get("RelayState"))
        if not self._credentials_ok(_field(form, "username") or "", _field(form, "passwd") or ""):
            return _html(
                idp_page(relay, "Incorrect user ID or password. Type them again, and try again.")
            )
        token = self.sessions.issue_assertion(relay)
        return _redirect(f"{ACS_PATH}?SAMLResponse={token}&RelayState={quote(relay, safe='/')}")

    async def acs(self, request: web.Request) -> web.StreamResponse:
        data: Any = request.query
        if request.method == "POST":
            data = {**request.query, **(await request.post())}
        relay = safe_return_to(_field(data, "RelayState"))
        if not self.sessions.redeem_assertion(_field(data, "SAMLResponse")):
            return _redirect(self._login_location(relay))
        return self._start_session(relay)

    # --- pages --------------------------------------------------------------------------------

    def _cached(self, key: str, render: Callable[[], str]) -> bytes:
        page = self._static.get(key)
        if page is None:
            page = self._static[key] = render().encode()
        return page

    def _heavy(self, traits: frozenset[str] = frozenset()) -> AssetRefs | None:
        """The assets a page refers to when it is heavy (its trait, or realistic pages)."""
        if self.config.page_weight == "realistic" or "heavy" in traits:
            return self.assets.refs
        return None

    async def home(self, request: web.Request) -> web.StreamResponse:
        if not self._signed_in(request):
            return self._login_redirect(request)
        heavy = self._heavy()
        return _html(
            self._cached("home", lambda: home_page(self.config.username, self.catalog, heavy))
        )

    async def po_list(self, request: web.Request) -> web.StreamResponse:
        if not self._signed_in(request):
            return self._login_redirect(request)
        keyword = request.query.get(SEARCH_FIELD, "").strip()
        raw_page = request.query.get("page", "1")
        page = int(raw_page) if raw_page.isdigit() else 1
        heavy = self._heavy()
        key = f"list:{page}:{keyword}"
        return _html(
            self._page(key, "", "", lambda: po_list_page(self.catalog, keyword, page, heavy))
        )

    def _page(self, kind: str, number: str, origin: str, render: Callable[[], str]) -> bytes:
        key = (f"{kind}:{number}", origin)
        page = self._pages.get(key)
        if page is None:
            if len(self._pages) >= _MAX_CACHED_PAGES:
                self._pages.clear()
            page = self._pages[key] = render().encode()
        return page

    async def po(self, request: web.Request) -> web.StreamResponse:
        """`/order_headers/{internal id}`. The number of a PO whose page is elsewhere (and
        that no other PO's page has) answers Coupa's HTTP 200 "Oops" page."""
        if not self._signed_in(request):
            return self._login_redirect(request)
        number = request.match_info["number"]
        po = self.catalog.find_page(number)
        if po is None:
            moved = self.catalog.find_po(number)
            if moved is None:
                return self._not_found_response()
            heavy = self._heavy()
            return _html(self._page("oops", "", "", lambda: not_found_oops_page(heavy)))
        if po.page == "http_404":
            return self._not_found_response()
        if po.hostile is not None and self._hostile_due(f"po:{po.internal_id}", po.hostile):
            return await self._hostile_answer(request, po.hostile)
        origin = f"{request.scheme}://{request.host}"
        heavy = self._heavy(po.traits)
        return _html(self._page("po", number, origin, lambda: po_page(po, origin, heavy)))

    async def pr(self, request: web.Request) -> web.StreamResponse:
        if not self._signed_in(request):
            return self._login_redirect(request)
        number = request.match_info["number"]
        pr = self.catalog.find_requisition(number)
        if pr is None:
            return self._not_found_response()
        origin = f"{request.scheme}://{request.host}"
        heavy = self._heavy(pr.traits)
        return _html(self._page("pr", number, origin, lambda: pr_page(pr, origin, heavy)))

    # --- heavy pages ---------------------------------------------------------------------------

    async def asset(self, request: web.Request) -> web.StreamResponse:
        """A stylesheet, font, bundle or image: no sign-in, cached for a year."""
        found = await asyncio.to_thread(self.assets.find, request.path)
        if found is None:
            return self._not_found_response()
        return web.Response(
            body=found.body,
            content_type=found.content_type,
            headers={"Cache-Control": CACHE_CONTROL},
        )

    async def notifications(self, request: web.Request) -> web.StreamResponse:
        if not self._signed_in(request):
            return web.json_response({"error": "not signed in"}, status=401)
        return web.json_response({"count": 3})

    async def updates(self, request: web.Request) -> web.StreamResponse:
        """The long-poll: held `long_poll_seconds` (or until the client goes, or the
        simulator stops), then 204."""
        if not self._signed_in(request):
            return web.json_response({"error": "not signed in"}, status=401)
        await self._hang(self.config.long_poll_seconds)
        return web.Response(status=204)

    def _page_of(self, request: web.Request) -> SimPO | SimRequisition | None:
        """The ordinary page (PO or PR) a data endpoint hangs under."""
        number = request.match_info["number"]
        if request.path.startswith("/order_headers/"):
            po = self.catalog.find_page(number)
            return po if po is not None and po.page == "ok" else None
        pr = self.catalog.find_requisition(number)
        return pr if pr is not None and pr.kind != "error" else None

    async def comments_data(self, request: web.Request) -> web.StreamResponse:
        """A page's comments filled by script, after the page's server-side delay."""
        if not self._signed_in(request):
            return self._login_redirect(request)
        page = self._page_of(request)
        if page is None or page.comments_fill is None:
            return self._not_found_response()
        if await self._hang(page.comments_fill.delay_ms / 1000):
            return _html(server_error_page(503), status=503)
        origin = f"{request.scheme}://{request.host}"
        key = f"{request.path.split('/')[1]}:comments"
        number = request.match_info["number"]
        body = self._page(key, number, origin, lambda: json.dumps(comments_json(page, origin)))
        return web.Response(body=body, content_type="application/json", charset="utf-8")

    async def more_data(self, request: web.Request) -> web.StreamResponse:
        """The header files a `late_more` page appends, after its server-side delay."""
        page = self._page_of(request)
        if not isinstance(page, SimPO) or page.more is None:
            return self._not_found_response()
        if await self._hang(page.more.delay_ms / 1000):
            return _html(server_error_page(503), status=503)
        origin = f"{request.scheme}://{request.host}"
        number = request.match_info["number"]
        body = self._page(
            "order_headers:more",
            number,
            origin,
            lambda: json.dumps(attachments_json(page.more_files, origin)),
        )
        return web.Response(body=body, content_type="application/json", charset="utf-8")

    # --- late attachment lists -----------------------------------------------------------------

    async def page_data(self, request: web.Request) -> web.StreamResponse:
        """A late list's data, after the page's server-side delay (or never, or HTTP 500)."""
        if not self._signed_in(request):
            return self._login_redirect(request)
        if request.query.get("part") == "more" and request.path.endswith(f"/{LATE_JSON}"):
            return await self.more_data(request)
        target = self._late_list(request)
        part = _part(request, target[1] if target else None)
        if target is None or part == 0:
            return self._not_found_response()
        files, late = target
        seconds = None if late.failure == "hang" else _delay_ms(late, part) / 1000
        if await self._hang(seconds):
            return _html(server_error_page(503), status=503)
        if late.broken:
            return web.json_response({"error": "Attachments could not be loaded"}, status=500)
        origin = f"{request.scheme}://{request.host}"
        key = f"{request.path.split('/')[1]}:{late.endpoint}:{part or ''}"
        number = request.match_info["number"]
        if late.endpoint == LATE_FRAGMENT:
            return _html(
                self._page(key, number, origin, lambda: attachments_fragment(files, origin))
            )
        body = self._page(
            key,
            number,
            origin,
            lambda: json.dumps(attachments_json(late_part(files, part), origin)),
        )
        return web.Response(body=body, content_type="application/json", charset="utf-8")

    def _late_list(self, request: web.Request) -> tuple[tuple[SimFile, ...], LateFill] | None:
        """(files, late list) of the page whose data endpoint this is; None when it has none."""
        number = request.match_info["number"]
        late: LateFill | None = None
        files: tuple[SimFile, ...] = ()
        if request.path.startswith("/order_headers/"):
            po = self.catalog.find_page(number)
            if po is not None and po.page == "ok":
                files, late = po.header_files, po.late
        else:
            pr = self.catalog.find_requisition(number)
            if pr is not None and pr.kind != "error":
                files, late = pr.header_files, pr.late
        if late is None or request.path.endswith(LATE_FRAGMENT) != (late.endpoint == LATE_FRAGMENT):
            return None
        return files, late

    def _not_found_response(self) -> web.Response:
        return _html(self._cached("404", not_found_page), status=404)

    async def not_found(self, request: web.Request) -> web.StreamResponse:
        return self._not_found_response()

    # --- files --------------------------------------------------------------------------------

    async def file(self, request: web.Request) -> web.StreamResponse:
        """A file; one on "another host" (`other_host`) needs no session, as a document
        store's link would not."""
        raw_id = request.match_info["id"]
        f = self.catalog.find_file(int(raw_id)) if raw_id.isdigit() else None
        if (f is None or not f.other_host) and not self._signed_in(request):
            return self._login_redirect(request)
        if f is None:
            return self._not_found_response()
        return await self.serve_file(request, f, f"file:{f.id}", "file")

    async def serve_file(
        self, request: web.Request, f: SimFile, hostile_key: str, kind: str
    ) -> web.StreamResponse:
        """The file's answer, as its page's file route gives it: its hostile answer (counted
        under `hostile_key`), the body faults (random resets when `kind` is faulted), an HTML
        page instead, or its bytes."""
        if f.hostile is not None and self._hostile_due(hostile_key, f.hostile):
            return await self._hostile_answer(request, f.hostile)
        head = request.method == "HEAD"  # body faults are kept for a request with a body
        decision = None if head else self.injector.take(request.path_qs, BODY_FAULTS)
        faults = self.config.faults
        if (
            decision is None
            and not head
            and kind in faults.kinds
            and self.injector.roll_reset(faults)
        ):
            decision = Decision("reset", {})
        if decision is not None:
            self.stats.fault(decision.fault)
        if f.serves_html or (decision is not None and decision.fault == "html_instead_of_file"):
            return _html(self._cached("file_error", file_error_page))
        cut: int | None = None
        if decision is not None and decision.fault == "reset" and f.size > 0:
            cut = min(int(decision.params.get("after_bytes", f.size // 2)), f.size - 1)
        return await self._stream(request, f, cut)

    async def _stream(
        self, request: web.Request, f: SimFile, cut: int | None
    ) -> web.StreamResponse:
        """Send the file in chunks; with `cut`, send that many bytes and drop the connection."""
        response = web.StreamResponse(headers={"Content-Type": f.content_type})
        disposition = f.content_disposition
        if disposition is not None:
            response.headers["Content-Disposition"] = disposition
        response.content_length = f.size
        await response.prepare(request)
        if request.method == "HEAD":
            await response.write_eof()
            return response
        stats = self.stats
        sent = 0
        # Taken before each chunk is handed over: the client cannot hold the whole body before
        # the last chunk's time, so a completion never looks later than it was.
        handed_at = time.time()
        for chunk in f.chunks():
            if cut is not None and sent + len(chunk) > cut:
                chunk = chunk[: cut - sent]
                if chunk:
                    await response.write(chunk)
                    stats.bytes_sent += len(chunk)
                transport = request.transport
                if transport is not None:
                    transport.close()  # aiohttp then sees a closed connection and lets it go
                return response
            handed_at = time.time()
            await response.write(chunk)
            sent += len(chunk)
            stats.bytes_sent += len(chunk)
        await response.write_eof()
        stats.file_completed(f.url_path, handed_at)
        return response

    # --- /__sim -------------------------------------------------------------------------------

    async def sim_stats(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(self.stats.snapshot())

    async def sim_reset(self, request: web.Request) -> web.StreamResponse:
        self.stats.reset()
        return web.json_response(self.stats.snapshot())

    async def sim_catalog(self, request: web.Request) -> web.StreamResponse:
        if self._catalog_json is None:
            # Hashing every file takes a moment for big catalogs: keep the loop free.
            text = await asyncio.to_thread(self.catalog.to_json)
            self._catalog_json = text.encode()
        return web.Response(body=self._catalog_json, content_type="application/json")

    async def sim_expire(self, request: web.Request) -> web.StreamResponse:
        return web.json_response({"expired": self.sessions.expire_all()})

    async def sim_expire_tokens(self, request: web.Request) -> web.StreamResponse:
        return web.json_response({"expired": self.api.tokens.expire_all()})

    async def sim_faults(self, request: web.Request) -> web.StreamResponse:
        if request.method == "POST":
            changes = await request.json()
            current = dataclasses.asdict(self.config.faults)
            current.update(changes)
            if isinstance(current.get("kinds"), list):
                current["kinds"] = tuple(current["kinds"])
            try:
                self.config.faults = Faults(**current)
            except (TypeError, ValueError) as exc:
                return web.json_response({"error": str(exc)}, status=400)
        return web.json_response(dataclasses.asdict(self.config.faults))

    async def sim_outage(self, request: web.Request) -> web.StreamResponse:
        """GET: the state; POST {"mode": M, "seconds": S, "retry_after": R}: start one (mode
        null: end it); DELETE: end it."""
        outages = self.outages
        begun: ActiveOutage | None = None
        if request.method == "DELETE":
            await outages.end()
        elif request.method == "POST":
            try:
                body = await request.json()
                if not isinstance(body, dict):
                    raise ValueError("the body must be a JSON object")
                mode = body.get("mode")
                if mode is None:
                    await outages.end()
                else:
                    seconds = _optional_float(body.get("seconds"))
                    retry_after = _optional_float(body.get("retry_after"))
                    begun = await outages.begin(
                        str(mode), seconds, retry_after, trigger="http", keep=request.transport
                    )
            except (TypeError, ValueError) as exc:
                return web.json_response({"error": str(exc)}, status=400)
        response = web.json_response(outages.describe())
        if begun is not None and begun.mode in DROPPING_MODES:
            response.force_close()  # the answer goes out, then this connection closes too
        return response

    async def sim_inject(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        try:
            fault = body.pop("fault")
            path_contains = body.pop("path_contains", "")
            raw_count = body.pop("count", 1)
            count = None if raw_count is None else int(raw_count)
            self.injector.inject(fault, path_contains, count, **body)
        except (KeyError, TypeError, ValueError) as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return web.json_response({"pending": len(self.injector.pending)})


def _part(request: web.Request, late: LateFill | None) -> int | None:
    """The `part` asked for: None for the whole list, 1 or 2, 0 when invalid here."""
    raw = request.query.get("part")
    if raw is None:
        return None
    if late is None or late.trait != "late_two_parts" or raw not in ("1", "2"):
        return 0
    return int(raw)


def _delay_ms(late: LateFill, part: int | None) -> int:
    """Server-side wait of one data request."""
    return late.part2_delay_ms if part == 2 else late.delay_ms


def _optional_float(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise TypeError(f"expected a number, got {value!r}")
    return float(value)


def _field(data: Any, name: str) -> str | None:
    value = data.get(name)
    return value if isinstance(value, str) else None
