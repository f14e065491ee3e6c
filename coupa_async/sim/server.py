"""`Simulator`: the embedded Coupa simulator as an async context manager."""

from __future__ import annotations

import asyncio
import concurrent.futures
import ipaddress
import sys
from types import TracebackType
from typing import Any, Self

from aiohttp import web

from .app import SimApp
from .catalog import Catalog
from .config import SimConfig
from .outages import OutageMode, abort_transport
from .stats import Stats

# Hung requests end as soon as the simulator stops; this bounds the wait for the rest.
SHUTDOWN_TIMEOUT_SECONDS = 2.0
BACKLOG = 1024
# SO_REUSEADDR, so a port closed by a `refuse` outage can be bound again at once (asyncio's
# default on Unix too; on Windows the option would let two servers share a port).
REUSE_ADDRESS = None if sys.platform == "win32" else True


class Simulator:
    """A simulated Coupa tenant served over HTTP on `config.host`:`config.port`.

    ```
    async with Simulator(SimConfig(seed=7, pos=60)) as sim:
        sim.base_url  # "http://127.0.0.1:PORT"
    ```
    """

    def __init__(self, config: SimConfig | None = None) -> None:
        self.config = config if config is not None else SimConfig()
        self.catalog = Catalog.build(self.config)
        self.stats = Stats()
        self._app = SimApp(self.config, self.catalog, self.stats)
        self._runner: web.AppRunner | None = None
        self._control: web.AppRunner | None = None
        self._port: int | None = None
        self._control_port: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def base_url(self) -> str:
        """`http://HOST:PORT` without a trailing slash (available once started)."""
        if self._port is None:
            raise RuntimeError("the simulator is not running; call start() first")
        return f"http://{_url_host(self.config.host)}:{self._port}"

    @property
    def control_url(self) -> str:
        """`http://HOST:PORT` of the control port (`config.control_port`): the `/__sim/*`
        endpoints only, reachable during every outage."""
        if self._control_port is None:
            raise RuntimeError("the simulator has no control port running")
        return f"http://{_url_host(self.config.host)}:{self._control_port}"

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the simulator is not running; call start() first")
        return self._port

    @property
    def running(self) -> bool:
        return self._runner is not None

    @property
    def username(self) -> str:
        return self.config.username

    @property
    def password(self) -> str:
        return self.config.password

    def expire_sessions(self) -> int:
        """End every current session now; returns how many there were."""
        return self._app.sessions.expire_all()

    def inject(
        self, fault: str, path_contains: str = "", count: int | None = 1, **params: Any
    ) -> None:
        """Give the next `count` requests whose path+query contains `path_contains` this fault
        (`count` None or -1: every such request until `clear_faults()`).

        Faults: "500", "503", "429" (params: retry_after), "hang" (seconds; None = until the
        client gives up), "reset" (after_bytes), "html_instead_of_file", "login_redirect";
        the hostile ones (see `hostile_answers.py`): "login_page", "retry_after" (value),
        "big_body" (size, declare_length, content_type, filename, number), "gzip_bomb" (size,
        content_type, filename, number), "stall" (after_bytes, size, content_type, filename),
        "declared_size" (size, content_type, filename). Raises ValueError for an unknown fault
        or a parameter a hostile fault does not take.
        """
        self._app.injector.inject(fault, path_contains, count, **params)

    def clear_faults(self) -> None:
        """Drop pending injections and any rate-limit penalty (the random rates stay)."""
        self._app.injector.clear()

    def reset_stats(self) -> None:
        """Zero the counters."""
        self.stats.reset()

    # --- outages ------------------------------------------------------------------------------

    async def outage(
        self, mode: OutageMode, seconds: float | None = None, *, retry_after: float | None = None
    ) -> None:
        """Start an outage now (ending a running one first), for `seconds` or until
        `end_outage()`. Modes: see `coupa_async.sim.outages`; `retry_after` sets the
        Retry-After header of the maintenance and proxy pages. Raises ValueError for a bad
        mode or duration. When it returns, the outage is in force."""
        self._check_running()
        await self._app.outages.begin(mode, seconds, retry_after, trigger="api")

    async def end_outage(self) -> bool:
        """End the running outage (a closed port is bound again first); False if none ran."""
        self._check_running()
        return await self._app.outages.end()

    @property
    def outage_mode(self) -> str | None:
        """The mode of the running outage, None when there is none."""
        active = self._app.outages.active
        return active.mode if active is not None else None

    def outage_threadsafe(
        self, mode: OutageMode, seconds: float | None = None, *, retry_after: float | None = None
    ) -> concurrent.futures.Future[None]:
        """`outage()` from another thread than the simulator's event loop; wait on the
        returned future (its result is None once the outage is in force)."""
        loop = self._foreign_loop()
        return asyncio.run_coroutine_threadsafe(
            self.outage(mode, seconds, retry_after=retry_after), loop
        )

    def end_outage_threadsafe(self) -> concurrent.futures.Future[bool]:
        """`end_outage()` from another thread than the simulator's event loop."""
        loop = self._foreign_loop()
        return asyncio.run_coroutine_threadsafe(self.end_outage(), loop)

    def _check_running(self) -> None:
        if self._runner is None:
            raise RuntimeError("the simulator is not running; call start() first")

    def _foreign_loop(self) -> asyncio.AbstractEventLoop:
        loop = self._loop
        if self._runner is None or loop is None:
            raise RuntimeError("the simulator is not running; call start() first")
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            raise RuntimeError("on the simulator's own loop, await outage()/end_outage()")
        return loop

    # --- start and stop -----------------------------------------------------------------------

    async def start(self) -> None:
        """Bind and start serving (and the control port, when configured)."""
        if self._runner is not None:
            raise RuntimeError("the simulator is already running")
        self._app.stopping.clear()
        runner = await _serve(
            self._app.build(), self.config.host, self.config.port, handler_cancellation=True
        )
        control: web.AppRunner | None = None
        if self.config.control_port is not None:
            try:
                control = await _serve(
                    self._app.build_control(), self.config.host, self.config.control_port
                )
            except BaseException:
                await runner.cleanup()
                raise
        self._runner, self._control = runner, control
        self._port = int(runner.addresses[0][1])
        self._control_port = int(control.addresses[0][1]) if control is not None else None
        self._loop = asyncio.get_running_loop()
        network = _Network(runner, self.config.host, self._port)
        self._app.outages.start(network, self.config.outages)

    async def stop(self) -> None:
        """Stop serving, fast in any outage: hung requests are released, open connections
        closed, a closed port is not bound again, outage timers are cancelled."""
        runner, self._runner = self._runner, None
        if runner is None:
            return
        self._app.stopping.set()
        self._app.hostile.close_streams()
        try:
            await self._app.outages.shutdown()
        finally:
            await runner.cleanup()
            control, self._control = self._control, None
            if control is not None:
                await control.cleanup()
            self._port = self._control_port = None
            self._loop = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()


class _Network:
    """The listening sockets and connections of a running simulator, as outages act on them."""

    def __init__(self, runner: web.AppRunner, host: str, port: int) -> None:
        self._runner = runner
        self._host = host
        self._port = port

    async def close_listeners(self) -> None:
        """Close the listening socket(s): connecting is refused from now on."""
        for site in list(self._runner.sites):
            await site.stop()

    async def reopen_listeners(self) -> None:
        """Bind the same host:port again."""
        if not self._runner.sites and self._runner.server is not None:
            await _open_site(self._runner, self._host, self._port)

    def drop_connections(self, reset: bool, keep: asyncio.BaseTransport | None) -> int:
        """Close every open connection but `keep` (with a TCP reset if `reset`); how many."""
        server = self._runner.server
        if server is None:
            return 0
        dropped = 0
        for handler in server.connections:
            transport = handler.transport
            if transport is None or transport is keep or transport.is_closing():
                continue
            abort_transport(transport, reset)
            dropped += 1
        return dropped


async def _serve(
    app: web.Application, host: str, port: int, handler_cancellation: bool = False
) -> web.AppRunner:
    runner = web.AppRunner(
        app,
        access_log=None,
        handler_cancellation=handler_cancellation,
        shutdown_timeout=SHUTDOWN_TIMEOUT_SECONDS,
    )
    await runner.setup()
    try:
        await _open_site(runner, host, port)
    except BaseException:
        await runner.cleanup()
        raise
    return runner


async def _open_site(runner: web.AppRunner, host: str, port: int) -> None:
    site = web.TCPSite(runner, host, port, backlog=BACKLOG, reuse_address=REUSE_ADDRESS)
    try:
        await site.start()
    except BaseException:
        if site in runner.sites:  # registered before binding: unregister, or it looks bound
            await site.stop()
        raise


def _url_host(host: str) -> str:
    if host in ("", "0.0.0.0"):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    try:
        if ipaddress.ip_address(host).version == 6:
            return f"[{host}]"
    except ValueError:
        pass
    return host
