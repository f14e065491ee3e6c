"""How the browser and the file downloads reach the tenant: one proxy rule, one trust rule.

Both clients follow ``settings.network``: the proxy (``network.proxy``, else HTTPS_PROXY /
HTTP_PROXY as read by ``load_settings``), the hosts that bypass it (``network.no_proxy`` and,
as Chromium does, loopback), and extra trusted certificates (``network.ca_bundle``).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import ipaddress
import re
import ssl
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import aiohttp

from coupa_async.errors import ConfigurationError
from coupa_async.settings import NetworkSettings, Settings

_PEM_CERT = re.compile(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.S)


@dataclass(frozen=True)
class Proxy:
    """A proxy server; ``server`` carries no credentials and may be shown."""

    server: str
    username: str | None = None
    password: str | None = None


def configured_proxy(network: NetworkSettings) -> Proxy | None:
    """The proxy of the settings, credentials split off; None for none or ``direct``."""
    if network.proxy is None or network.proxy == "direct":
        return None
    parts = urlsplit(network.proxy)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    port = f":{parts.port}" if parts.port else ""
    return Proxy(
        f"{parts.scheme}://{host}{port}",
        unquote(parts.username) if parts.username else None,
        unquote(parts.password) if parts.password else None,
    )


def _is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def bypasses(host: str, no_proxy: Sequence[str]) -> bool:
    """True when ``host`` is reached directly: loopback, or matched by a NO_PROXY entry.

    Entries as curl reads them: ``*`` (everything), ``example.com`` or ``.example.com`` (the
    domain and its subdomains), ``10.0.0.0/8`` (addresses), ``host:port`` (the port ignored).
    """
    host = host.lower().strip("[]")
    if _is_loopback(host):
        return True
    for raw in no_proxy:
        entry = raw.strip().lower()
        if not entry:
            continue
        if entry == "*":
            return True
        if entry.count(":") == 1:
            entry = entry.partition(":")[0]
        if "/" in entry:
            try:
                if ipaddress.ip_address(host) in ipaddress.ip_network(entry, strict=False):
                    return True
            except ValueError:
                pass
            continue
        name = entry.lstrip("*").lstrip(".")
        if name and (host == name or host.endswith(f".{name}")):
            return True
    return False


def proxy_for(url: str, network: NetworkSettings) -> Proxy | None:
    """The proxy a request to ``url`` goes through, or None for a direct connection."""
    proxy = configured_proxy(network)
    if proxy is None or bypasses(urlsplit(url).hostname or "", network.no_proxy):
        return None
    return proxy


def chromium_bypass(no_proxy: Sequence[str]) -> str:
    """NO_PROXY entries in Chromium's bypass-list syntax (a domain also covers subdomains)."""
    rules: list[str] = []
    for raw in no_proxy:
        entry = raw.strip().lower()
        if not entry or entry == "*":
            continue
        if "/" in entry or entry.count(":") == 1 or _is_ip(entry):
            rules.append(entry)
            continue
        name = entry.lstrip("*").lstrip(".")
        rules += [name, f"*.{name}"] if not entry.startswith((".", "*")) else [f"*.{name}"]
    return ",".join(dict.fromkeys(rules))


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return False
    return True


def browser_proxy(network: NetworkSettings) -> dict[str, str] | None:
    """Playwright's ``proxy`` launch option, or None (no proxy, or NO_PROXY=*)."""
    proxy = configured_proxy(network)
    if proxy is None or any(entry.strip() == "*" for entry in network.no_proxy):
        return None
    option = {"server": proxy.server}
    bypass = chromium_bypass(network.no_proxy)
    if bypass:
        option["bypass"] = bypass
    if proxy.username:
        option["username"] = proxy.username
        option["password"] = proxy.password or ""
    return option


def ssl_context(network: NetworkSettings) -> ssl.SSLContext | bool:
    """Certificate checks for aiohttp: the system's store, plus ``ca_bundle`` when set."""
    if network.ca_bundle is None:
        return True
    context = ssl.create_default_context()
    try:
        context.load_verify_locations(cafile=str(network.ca_bundle))
    except (OSError, ssl.SSLError) as exc:
        raise ConfigurationError(
            f"network.ca_bundle {network.ca_bundle} cannot be read as PEM certificates ({exc}). "
            "Point it at a PEM file (text starting with -----BEGIN CERTIFICATE-----)."
        ) from None
    return context


def _der_item(data: bytes, start: int) -> tuple[int, int, int]:
    """(tag, content start, content end) of the DER item at ``start``."""
    tag, length, at = data[start], data[start + 1], start + 2
    if length & 0x80:
        size = length & 0x7F
        length, at = int.from_bytes(data[at : at + size], "big"), at + size
    return tag, at, at + length


def spki_sha256(der: bytes) -> str:
    """Base64 SHA-256 of a certificate's SubjectPublicKeyInfo (as Chromium pins keys)."""
    _, cert_start, _ = _der_item(der, 0)
    _, at, _ = _der_item(der, cert_start)  # tbsCertificate
    tag, _, end = _der_item(der, at)
    if tag == 0xA0:  # explicit version
        at = end
    for _ in range(5):  # serial, signature algorithm, issuer, validity, subject
        at = _der_item(der, at)[2]
    spki_end = _der_item(der, at)[2]
    return base64.b64encode(hashlib.sha256(der[at:spki_end]).digest()).decode()


def browser_trust_flags(network: NetworkSettings) -> list[str]:
    """Chromium flags to accept chains holding a ``ca_bundle`` key (it reads no CA file).

    Chromium trusts its system store; for the bundle it can only be told the public keys it may
    accept, which works when the server (a company proxy) sends that certificate in its chain.
    """
    if network.ca_bundle is None:
        return []
    hashes = []
    for match in _PEM_CERT.finditer(Path(network.ca_bundle).read_text(errors="replace")):
        try:
            hashes.append(spki_sha256(ssl.PEM_cert_to_DER_cert(match.group(0))))
        except (ValueError, IndexError):
            continue
    return [f"--ignore-certificate-errors-spki-list={','.join(hashes)}"] if hashes else []


async def open_http(
    settings: Settings, *, limit: int = 64, limit_per_host: int = 32
) -> aiohttp.ClientSession:
    """An aiohttp session that reaches the tenant the way the browser does (proxy, trust).

    No cookie jar: callers pass the browser's cookies per request.
    """
    network = settings.network
    trust = await asyncio.to_thread(ssl_context, network)
    kwargs: dict[str, Any] = {
        "cookie_jar": aiohttp.DummyCookieJar(),
        "connector": aiohttp.TCPConnector(limit=limit, limit_per_host=limit_per_host, ssl=trust),
    }
    proxy = proxy_for(settings.base_url or "", network)
    with warnings.catch_warnings():  # proxy_auth is deprecated, yet the only session-wide way
        warnings.simplefilter("ignore", DeprecationWarning)
        if proxy is not None:
            kwargs["proxy"] = proxy.server
            if proxy.username:
                kwargs["proxy_auth"] = aiohttp.BasicAuth(proxy.username, proxy.password or "")
        return aiohttp.ClientSession(**kwargs)
