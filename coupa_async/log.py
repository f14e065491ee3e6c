"""structlog set-up: readable lines on a terminal, JSON lines on request, always to stderr.

Every event passes through :func:`redact_secrets`, so cookies, passwords and tokens never reach a
log, whichever module logged them and however they were nested.
"""

from __future__ import annotations

import contextlib
import logging
import re
import sys
import traceback
from collections.abc import Mapping, MutableMapping
from typing import Any, Literal, TextIO

import structlog

REDACTED = "[redacted]"

_SECRET_KEY = re.compile(
    r"(cookie|password|passwd|pwd|secret|token|authorization|auth_header|session_id|"
    r"storage_state_content|api_key|apikey|credential)",
    re.IGNORECASE,
)
# Header lines (as in Playwright's call logs): everything after the name, to the end of line.
_SECRET_HEADER = re.compile(
    r"\b(?P<name>set-cookie|cookie|proxy-authorization|authorization|x-csrf-token|x-xsrf-token)"
    r"(?P<sep>\s*:\s*)[^\n]*",
    re.IGNORECASE,
)
# key=value or key: value pairs inside free text (query strings, headers, cookie strings).
_SECRET_IN_TEXT = re.compile(
    r"(?P<key>(?:[\w.\-\[\]]*(?:cookie|session|password|passwd|token|secret|auth|saml|"
    r"assertion|jwt|api_?key|signature|credential)[\w.\-\[\]]*))"
    r"(?P<sep>\s*[=:]\s*)(?P<value>\"[^\"]*\"|'[^']*'|(?:(?:Bearer|Basic)\s+)?[^\s&;,\"']+)",
    re.IGNORECASE,
)
_BEARER = re.compile(r"(Bearer|Basic)\s+[A-Za-z0-9._~+/=\-]+", re.IGNORECASE)
# The password in an address such as http://user:password@proxy:8080.
_URL_PASSWORD = re.compile(r"(?P<head>[a-z][a-z0-9+.\-]*://[^\s/:@]*):[^\s/@]*@", re.IGNORECASE)
# Playwright appends a "Call log:" of the steps it took, with request headers (cookies).
_CALL_LOG = re.compile(r"^[ \t]*Call log:[^\n]*\n?(?:[ \t]+[^\n]*\n?|[ \t]*\n)*", re.M)
_LOGS_BLOCK = re.compile(r"^=+ logs =+$.*?^=+$\n?", re.M | re.S)
_known_secrets: set[str] = set()
MIN_KNOWN_SECRET = 6


def add_known_secret(value: str | None) -> None:
    """Remove ``value`` (a password, a cookie value) from every text that is logged or shown.

    Values shorter than six characters are ignored: they would blank out ordinary words.
    """
    if value and len(value) >= MIN_KNOWN_SECRET:
        _known_secrets.add(value)


def cut_call_log(text: str) -> str:
    """``text`` without Playwright's "Call log:" sections (steps and request headers)."""
    return _CALL_LOG.sub("", _LOGS_BLOCK.sub("", text)).rstrip()


def _scrub_text(text: str) -> str:
    for secret in tuple(_known_secrets):
        if secret in text:
            text = text.replace(secret, REDACTED)
    text = _SECRET_HEADER.sub(lambda m: f"{m['name']}{m['sep']}{REDACTED}", text)
    text = _URL_PASSWORD.sub(lambda m: f"{m['head']}:{REDACTED}@", text)
    text = _SECRET_IN_TEXT.sub(lambda m: f"{m['key']}{m['sep']}{REDACTED}", text)
    return _BEARER.sub(lambda m: f"{m.group(1)} {REDACTED}", text)


def public_text(text: str) -> str:
    """``text`` fit to show a person: no call log, no cookie, token or password."""
    return _scrub_text(cut_call_log(text))


def error_summary(exc: BaseException) -> str:
    """One line about ``exc`` for a log or a message: its first line, secrets removed."""
    lines = public_text(str(exc)).splitlines()
    return lines[0].strip() if lines else type(exc).__name__


def _scrub(value: Any, depth: int = 0) -> Any:
    if depth > 6:
        return value
    if isinstance(value, str):
        return _scrub_text(value)
    if isinstance(value, Mapping):
        return {
            k: REDACTED if isinstance(k, str) and _SECRET_KEY.search(k) else _scrub(v, depth + 1)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return type(value)(_scrub(item, depth + 1) for item in value)
    return value


def redact_secrets(
    _: Any, __: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: replace secret values by ``[redacted]``.

    An exception attached with ``exc_info`` is formatted here, without call logs and secrets,
    so no renderer ever prints its raw text (or its local variables).
    """
    _format_exception(event_dict)
    for key in list(event_dict):
        if _SECRET_KEY.search(key):
            event_dict[key] = REDACTED
        else:
            event_dict[key] = _scrub(event_dict[key])
    return event_dict


def _format_exception(event_dict: MutableMapping[str, Any]) -> None:
    exc_info = event_dict.pop("exc_info", None)
    if not exc_info:
        return
    if exc_info is True:
        exc_info = sys.exc_info()
    elif isinstance(exc_info, BaseException):
        exc_info = (type(exc_info), exc_info, exc_info.__traceback__)
    if isinstance(exc_info, tuple) and exc_info[0] is not None:
        event_dict["exception"] = public_text("".join(traceback.format_exception(*exc_info)))


class _CurrentStderr:
    """A file that writes to whatever ``sys.stderr`` is at the time of writing.

    A line that cannot be written (stderr sent to a file on a full disk, a closed pipe) is
    lost, not raised into whatever code was logging: the run goes on.
    """

    def write(self, text: str) -> int:
        try:
            return sys.stderr.write(text)
        except (OSError, ValueError):  # ValueError: stderr closed
            return 0

    def flush(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            sys.stderr.flush()


def configure_logging(
    log_format: Literal["console", "json"] = "console",
    level: str = "info",
    stream: TextIO | None = None,
) -> None:
    """Configure structlog for the command line. The library itself never calls this."""
    renderer: Any
    if log_format == "json":
        renderer = structlog.processors.JSONRenderer()
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=(stream or sys.stderr).isatty())
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=False),
        redact_secrets,
    ]
    if log_format == "json":
        processors.append(structlog.processors.format_exc_info)
    processors.append(renderer)
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        # sys.stderr is looked up at each line, so a live progress display that takes over
        # stderr shows log lines above itself instead of being torn by them.
        logger_factory=structlog.PrintLoggerFactory(file=stream or _CurrentStderr()),
        cache_logger_on_first_use=False,
    )


def get_logger(name: str) -> Any:
    """A structlog logger bound to a component name."""
    return structlog.get_logger(component=name)


def ensure_logging() -> None:
    """For library use: warnings and errors to stderr, secrets removed, unless the application
    has configured structlog itself (then its configuration is left alone)."""
    if not structlog.is_configured():
        configure_logging("console", "warning")
