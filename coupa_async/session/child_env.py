"""The environment our child processes start with: ours, without our secrets.

Rule: a child gets a copy of ``os.environ`` with

- no ``COUPA_*`` variable at all (any case). Settings are read once, in this process, and
  passed down as arguments, options and pipe messages; no child reads them again. Removing
  the whole prefix, rather than names that look secret, also covers secrets added later
  (``COUPA_API__CLIENT_SECRET``) and a proxy with credentials in ``COUPA_NETWORK__PROXY``.
- proxy variables (``*_proxy`` in any case, such as ``HTTPS_PROXY``, ``all_proxy``; not
  ``NO_PROXY``) handled per child (:data:`ProxyVariables`): dropped (Chromium gets its proxy
  through Playwright's ``proxy=`` launch option; the e-mail worker has no network), kept
  without credentials (Playwright's driver), or kept whole (an installer that downloads
  through the user's own proxy).

Where a spawn cannot be given an environment (Playwright's driver copies ``os.environ`` when
it starts), :func:`scrubbed_environ` makes ``os.environ`` this environment for that moment.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from typing import Literal

from coupa_async.settings import ENV_PREFIX

ProxyVariables = Literal["drop", "without_credentials", "keep"]


def is_ours(name: str) -> bool:
    """True for a variable of our settings (``COUPA_*``), which no child may see."""
    return name.upper().startswith(ENV_PREFIX)


def is_proxy_variable(name: str) -> bool:
    """True for a proxy address variable (``HTTPS_PROXY``, ``all_proxy``), not ``NO_PROXY``."""
    lowered = name.lower()
    return lowered.endswith("_proxy") and lowered != "no_proxy"


def without_credentials(url: str) -> str:
    """``url`` without its userinfo: everything before the last ``@`` of the authority.

    ``http://user:p@ss@proxy:8080`` gives ``http://proxy:8080``; a value without ``://``
    (``user:pw@proxy:3128``, as some tools accept) loses its userinfo as well.
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = "", url
    end = len(rest)
    for stop in "/?#":
        found = rest.find(stop)
        if found != -1:
            end = min(end, found)
    authority, tail = rest[:end], rest[end:]
    host = authority.rpartition("@")[2]
    return f"{scheme}{sep}{host}{tail}"


def child_environ(
    environ: Mapping[str, str] | None = None, *, proxy: ProxyVariables = "drop"
) -> dict[str, str]:
    """A copy of ``environ`` (``os.environ`` by default) for a child process, per the rule above."""
    source = os.environ if environ is None else environ
    env: dict[str, str] = {}
    for name, value in source.items():
        if is_ours(name):
            continue
        if is_proxy_variable(name) and proxy != "keep":
            if proxy == "drop":
                continue
            value = without_credentials(value)
        env[name] = value
    return env


_lock = threading.Lock()
_depth = 0
_saved: dict[str, str] = {}
_placed: dict[str, str | None] = {}


@contextmanager
def scrubbed_environ(proxy: ProxyVariables = "without_credentials") -> Iterator[None]:
    """``os.environ`` as :func:`child_environ` gives it, for the duration only.

    For a spawn that copies ``os.environ`` itself (Playwright's driver): hold it around that
    spawn and no longer, since the whole process sees the change. Our settings were read
    before; nothing of ours reads the environment later. On exit each removed or rewritten
    variable gets its value back, unless someone set it to something else meanwhile. Nested
    or overlapping uses share one scrub; the last to leave restores.
    """
    global _depth
    with _lock:
        if _depth == 0:
            _scrub(os.environ, proxy)
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                _restore(os.environ)


def _scrub(environ: MutableMapping[str, str], proxy: ProxyVariables) -> None:
    clean = child_environ(environ, proxy=proxy)
    for name, value in list(environ.items()):
        if clean.get(name) != value:
            _saved[name] = value
            _placed[name] = clean.get(name)
            if name in clean:
                environ[name] = clean[name]
            else:
                del environ[name]


def _restore(environ: MutableMapping[str, str]) -> None:
    for name, value in _saved.items():
        if environ.get(name) == _placed[name]:
            environ[name] = value
    _saved.clear()
    _placed.clear()
