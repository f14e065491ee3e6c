"""structlog set-up: readable lines on a terminal, JSON lines on request, always to stderr.

Every event passes through :func:`redact_secrets`, so cookies, passwords and tokens never reach a
log, whichever module logged them and however they were nested: values made known with
:func:`add_known_secret` (a password of any length), and the password in any address's userinfo
(everything before the last ``@``: ``http://user:p@ss@proxy``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import sys
import traceback
from collections.abc import Mapping, MutableMapping
from typing import Any, Literal, TextIO, cast
from urllib.parse import quote, quote_plus

import structlog

from coupa_async.terminal_text import printable_log_values

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
# The userinfo of an address such as http://user:password@proxy:8080: everything before the
# authority's last "@" (a raw "@" in a password: http://user:p@ss@proxy), so the greedy run
# stops only where an authority ends (/ ? # whitespace) or at characters no URL holds raw.
_URL_USERINFO = re.compile(r"(?P<head>\b[a-z][a-z0-9+.\-]*://)(?P<userinfo>[^\s/?#\"<>]*)@", re.I)
# Playwright appends a "Call log:" of the steps it took, with request headers (cookies).
_CALL_LOG = re.compile(r"^[ \t]*Call log:[^\n]*\n?(?:[ \t]+[^\n]*\n?|[ \t]*\n)*", re.M)
_LOGS_BLOCK = re.compile(r"^=+ logs =+$.*?^=+$\n?", re.M | re.S)
# Where a short secret counts as a value: after "=" or ":", up to one of these (or the end).
_VALUE_END = r"""(?=[\s&;,@"'<>)\]}|]|\.(?:\s|$)|$)"""
MIN_KNOWN_SECRET = 6
_known_secrets: tuple[str, ...] = ()  # replaced wherever they appear, longest first
_short_secrets: frozenset[str] = frozenset()  # replaced where they stand as a value
_short_values: re.Pattern[str] | None = None


def _written_forms(value: str) -> set[str]:
    """``value`` as text may carry it: raw, percent-encoded (URL, form body), JSON-escaped."""
    return {
        value,
        quote(value, safe=""),
        quote(value),
        quote_plus(value, safe=""),
        json.dumps(value)[1:-1],
    }


def add_known_secret(value: str | None, *, any_length: bool = False) -> None:
    """Remove ``value`` (a password, a cookie value) from every text that is logged or shown.

    A value of six characters or more is replaced wherever it appears, raw, percent-encoded or
    JSON-escaped. A shorter one would blank out ordinary words, so it is ignored, unless
    ``any_length`` (a password, a client secret: any length is a secret; a cookie value such
    as ``1`` or ``en`` is not). Such a short secret is replaced only where it stands as a
    value: a whole logged string; after ``=`` or ``:`` (``pw=abc``, ``"pass": "abc"``,
    ``user:abc@host``) up to a quote, a space, one of ``& ; , @ ) ] } | < >``, a final
    period or the end; or between matching quotes (``'abc'``).
    """
    global _known_secrets, _short_secrets, _short_values
    if not value:
        return
    if len(value) >= MIN_KNOWN_SECRET:
        known = set(_known_secrets) | _written_forms(value)
        _known_secrets = tuple(sorted(known, key=len, reverse=True))
    elif any_length:
        short = _short_secrets | _written_forms(value)
        forms = "|".join(re.escape(f) for f in sorted(short, key=len, reverse=True))
        _short_secrets, _short_values = (
            short,
            re.compile(
                rf"""(?P<pre>[=:][ \t]*)(?:(?P<q>["'])(?:{forms})(?P=q)|(?:{forms}){_VALUE_END})"""
                rf"""|(?P<q2>["'])(?:{forms})(?P=q2)"""
            ),
        )


def _short_value(match: re.Match[str]) -> str:
    if match["pre"] is None:
        return f"{match['q2']}{REDACTED}{match['q2']}"
    quote_mark = match["q"] or ""
    return f"{match['pre']}{quote_mark}{REDACTED}{quote_mark}"


def _url_userinfo(match: re.Match[str]) -> str:
    """``user:[redacted]@``; a userinfo without ``:`` may be a token, so all of it goes."""
    user, colon, _ = match["userinfo"].partition(":")
    return f"{match['head']}{user}:{REDACTED}@" if colon else f"{match['head']}{REDACTED}@"


def cut_call_log(text: str) -> str:
    """``text`` without Playwright's "Call log:" sections (steps and request headers)."""
    return _CALL_LOG.sub("", _LOGS_BLOCK.sub("", text)).rstrip()


def _scrub_text(text: str) -> str:
    if text.strip() in _short_secrets:
        return REDACTED
    for secret in _known_secrets:
        if secret in text:
            text = text.replace(secret, REDACTED)
    if _short_values is not None:
        text = _short_values.sub(_short_value, text)
    text = _SECRET_HEADER.sub(lambda m: f"{m['name']}{m['sep']}{REDACTED}", text)
    text = _URL_USERINFO.sub(_url_userinfo, text)
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
    else:  # the console shows page text as text: no escape sequence reaches the terminal
        processors.append(printable_log_values)
    processors.append(renderer)
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        # sys.stderr is looked up at each line, so a live progress display that takes over
        # stderr shows log lines above itself instead of being torn by them. structlog's
        # annotation asks for a TextIO, but it only print()s to the file: write and flush suffice.
        logger_factory=structlog.PrintLoggerFactory(file=stream or cast(TextIO, _CurrentStderr())),
        cache_logger_on_first_use=False,
    )


def get_logger(module: str) -> Any:
    """A structlog logger for a module (``get_logger(__name__)``): its component is the module
    path inside the package, ``running.downloader`` for ``coupa_async.running.downloader``."""
    return structlog.get_logger(component=module.removeprefix(f"{__package__}."))


def ensure_logging() -> None:
    """For library use: warnings and errors to stderr, secrets removed, unless the application
    has configured structlog itself (then its configuration is left alone)."""
    if not structlog.is_configured():
        configure_logging("console", "warning")
