"""`Simulator`: the embedded Coupa simulator as an async context manager."""

from __future__ import annotations

import ipaddress
from types import TracebackType
from typing import Any, Self

from aiohttp import web

from .app import SimApp
from .catalog import Catalog
from .config import SimConfig
from .stats import Stats

# Hung requests end as soon as the simulator stops; this bounds the wait for the rest.
SHUTDOWN_TIMEOUT_SECONDS = 2.0


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
        self._port: int | None = None

    @property
    def base_url(self) -> str:
        """`http://HOST:PORT` without a trailing slash (available once started)."""
        if self._port is None:
            raise RuntimeError("the simulator is not running; call start() first")
        return f"http://{_url_host(self.config.host)}:{self._port}"

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

    def inject(self, fault: str, path_contains: str = "", count: int = 1, **params: Any) -> None:
        """Give the next `count` requests whose path+query contains `path_contains` this fault.

        Faults: "500", "503", "429" (params: retry_after), "hang" (seconds; None = until the
        client gives up), "reset" (after_bytes), "html_instead_of_file", "login_redirect".
        """
        self._app.injector.inject(fault, path_contains, count, **params)

    def clear_faults(self) -> None:
        """Drop pending injections and any rate-limit penalty (the random rates stay)."""
        self._app.injector.clear()

    def reset_stats(self) -> None:
        """Zero the counters."""
        self.stats.reset()

    async def start(self) -> None:
        """Bind and start serving."""
        if self._runner is not None:
            raise RuntimeError("the simulator is already running")
        self._app.stopping.clear()
        runner = web.AppRunner(
            self._app.build(),
            access_log=None,
            handler_cancellation=True,
            shutdown_timeout=SHUTDOWN_TIMEOUT_SECONDS,
        )
        await runner.setup()
        try:
            site = web.TCPSite(runner, self.config.host, self.config.port, backlog=1024)
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self._port = int(runner.addresses[0][1])

    async def stop(self) -> None:
        """Stop serving; hung requests are released, open connections closed."""
        runner, self._runner = self._runner, None
        if runner is None:
            return
        self._app.stopping.set()
        await runner.cleanup()
        self._port = None

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
