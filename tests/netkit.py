"""Small real servers for network tests: a forwarding HTTP proxy, a site that is not Coupa,
a port that speaks another protocol, and a TLS server with its own certificate authority."""

from __future__ import annotations

import asyncio
import base64
import socket
import ssl
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import trustme
from aiohttp import web
from multidict import CIMultiDict
from yarl import URL

HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authorization",
    "proxy-connection",
    "proxy-authenticate",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "content-length",
}


def free_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@asynccontextmanager
async def serve(
    app: web.Application, ssl_context: ssl.SSLContext | None = None
) -> AsyncIterator[int]:
    """Serve ``app`` on a free loopback port; yields the port."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ssl_context)
    await site.start()
    try:
        yield site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    finally:
        await runner.cleanup()


def unrelated_site() -> web.Application:
    """A web site that is not Coupa: a plain page, no form, no redirect."""

    async def page(request: web.Request) -> web.Response:
        return web.Response(
            text="<html><head><title>Intranet news</title></head><body><h1>Canteen menu</h1>"
            "<p>Soup of the day.</p></body></html>",
            content_type="text/html",
        )

    app = web.Application()
    app.router.add_get("/{tail:.*}", page)
    return app


@asynccontextmanager
async def banner_port() -> AsyncIterator[int]:
    """A port where something else listens (an SSH-like banner, then close)."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"SSH-2.0-OpenSSH_9.2p1\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


@dataclass
class CountingProxy:
    """A forwarding HTTP proxy on loopback that maps made-up host names to loopback ports.

    Plain requests (absolute URLs, as browsers and aiohttp send them for http://) are forwarded
    one by one and counted in ``counts[(client, path)]``, ``client`` being ``browser``
    (Chromium's user agent) or ``python`` (aiohttp). CONNECT tunnels (Playwright's request API
    uses them) are piped and counted in ``tunnels``. With ``credentials`` ("user:password") it
    answers 407 to requests without them.
    """

    hosts: dict[str, int]
    credentials: str | None = None
    counts: Counter[tuple[str, str]] = field(default_factory=Counter)
    tunnels: int = 0
    refused: int = 0

    def count(self, client: str, prefix: str = "/") -> int:
        return sum(
            n for (who, path), n in self.counts.items() if who == client and path.startswith(prefix)
        )

    @asynccontextmanager
    async def running(self) -> AsyncIterator[int]:
        """Listen on a free loopback port; yields the port."""
        async with aiohttp.ClientSession(
            auto_decompress=False, cookie_jar=aiohttp.DummyCookieJar()
        ) as http:
            self._http = http
            server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
            try:
                yield server.sockets[0].getsockname()[1]
            finally:
                server.close()
                await server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, target, _ = lines[0].split(" ", 2)
                headers = CIMultiDict(
                    line.split(":", 1)
                    for line in lines[1:]
                    if ":" in line  # type: ignore[misc]
                )
                headers = CIMultiDict((k.strip(), v.strip()) for k, v in headers.items())
                if not self._allowed(headers):
                    self.refused += 1
                    writer.write(
                        b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                        b'Proxy-Authenticate: Basic realm="corp"\r\nContent-Length: 0\r\n\r\n'
                    )
                    await writer.drain()
                    continue
                if method == "CONNECT":
                    await self._tunnel(target, reader, writer)
                    return
                body = await reader.readexactly(int(headers.get("Content-Length", "0")))
                await self._forward(method, target, headers, body, writer)
        except (asyncio.IncompleteReadError, ConnectionError, ValueError):
            pass
        finally:
            writer.close()

    def _allowed(self, headers: CIMultiDict[str]) -> bool:
        if self.credentials is None:
            return True
        expected = "Basic " + base64.b64encode(self.credentials.encode()).decode()
        return headers.get("Proxy-Authorization") == expected

    async def _forward(
        self,
        method: str,
        target: str,
        headers: CIMultiDict[str],
        body: bytes,
        writer: asyncio.StreamWriter,
    ) -> None:
        url = URL(target)
        port = self.hosts.get(url.host or "")
        if port is None:
            writer.write(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()
            return
        client = "browser" if "Chrome" in headers.get("User-Agent", "") else "python"
        self.counts[(client, url.path)] += 1
        sent = CIMultiDict((k, v) for k, v in headers.items() if k.lower() not in HOP_BY_HOP)
        async with self._http.request(
            method,
            f"http://127.0.0.1:{port}{url.raw_path_qs}",
            headers=sent,
            data=body or None,
            allow_redirects=False,
        ) as upstream:
            data = await upstream.read()
            out = [f"HTTP/1.1 {upstream.status} {upstream.reason}"]
            out += [f"{k}: {v}" for k, v in upstream.headers.items() if k.lower() not in HOP_BY_HOP]
            out.append(f"Content-Length: {len(data)}")
            writer.write(("\r\n".join(out) + "\r\n\r\n").encode("latin-1") + data)
            await writer.drain()

    async def _tunnel(
        self, target: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        host, _, _ = target.rpartition(":")
        port = self.hosts.get(host)
        if port is None:
            writer.write(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()
            return
        self.tunnels += 1
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await writer.drain()

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            try:
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            except ConnectionError:
                pass
            finally:
                sink.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


@dataclass(frozen=True)
class Authority:
    """A certificate authority and a server certificate for 127.0.0.1 signed by it."""

    ca: Path
    chain: Path  # the server's certificate, then the authority's (as company proxies send)
    key: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(str(self.chain), str(self.key))
        return context


def make_authority(folder: Path) -> Authority:
    """Create a CA and a server certificate for 127.0.0.1 signed by it (trustme)."""
    folder.mkdir(parents=True, exist_ok=True)
    authority = trustme.CA(organization_name="Example Corp Inspection CA")
    server = authority.issue_cert("127.0.0.1")
    authority.cert_pem.write_to_path(str(folder / "ca.pem"))
    server.private_key_pem.write_to_path(str(folder / "server.key"))
    chain = folder / "chain.pem"
    leaf = b"".join(blob.bytes() for blob in server.cert_chain_pems)
    chain.write_bytes(leaf + authority.cert_pem.bytes())
    return Authority(folder / "ca.pem", chain, folder / "server.key")
