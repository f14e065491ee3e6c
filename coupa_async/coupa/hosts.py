"""Which hosts a file may be fetched from: the tenant, its configured file hosts, and public
hosts a redirect leads to; never an internal address (loopback, private, link-local) unless
``limits.allow_private_hosts`` says so, so a page cannot make the tool reach into the network
it runs in."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from coupa_async.coupa.discover import is_outside

# Names that stand for the machine itself or a private network, whatever DNS says.
INTERNAL_NAMES = ("localhost", ".localhost", ".local", ".internal", ".home.arpa")


def is_internal_host(host: str) -> bool:
    """Whether ``host`` (a name or an address literal) is loopback, private or link-local."""
    host = host.strip("[]").lower().rstrip(".")
    if host == "localhost" or host.endswith(INTERNAL_NAMES):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return not address.is_global or address.is_multicast


@dataclass(frozen=True, slots=True)
class FetchPolicy:
    """Where files may be fetched from, for one tenant."""

    tenant_url: str
    file_hosts: Sequence[str] = ()
    allow_private: bool = False

    def refusal(self, url: str) -> str | None:
        """Why ``url`` may not be fetched, or None when it may."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https"):
            return f"it leads to a {parts.scheme or 'relative'}: address, not a web address"
        if not is_outside(url, self.tenant_url, self.file_hosts):
            return None  # the tenant, or a host the user named
        host = parts.hostname or ""
        if not self.allow_private and is_internal_host(host):
            return (
                f"it leads to {host}, an internal address, which is never fetched unless "
                "limits.allow_private_hosts is set"
            )
        return None
