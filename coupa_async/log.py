"""structlog set-up: readable lines on a terminal, JSON lines on request, always to stderr.

Every event passes through :func:`redact_secrets`, so cookies, passwords and tokens never reach a
log, whichever module logged them and however they were nested.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any, Literal, TextIO

import structlog

REDACTED = "[redacted]"

_SECRET_KEY = re.compile(
    r"(cookie|password|passwd|pwd|secret|token|authorization|auth_header|session_id|"
    r"storage_state_content|api_key|apikey|credential)",
    re.IGNORECASE,
)
# key=value or key: value pairs inside free text (query strings, headers, cookie strings).
_SECRET_IN_TEXT = re.compile(
    r"(?P<key>(?:[\w.\-\[\]]*(?:cookie|session|password|passwd|token|secret|auth)[\w.\-\[\]]*))"
    r"(?P<sep>\s*[=:]\s*)(?P<value>\"[^\"]*\"|'[^']*'|(?:(?:Bearer|Basic)\s+)?[^\s&;,\"']+)",
    re.IGNORECASE,
)
_BEARER = re.compile(r"(Bearer|Basic)\s+[A-Za-z0-9._~+/=\-]+", re.IGNORECASE)


def _scrub_text(text: str) -> str:
    text = _SECRET_IN_TEXT.sub(lambda m: f"{m['key']}{m['sep']}{REDACTED}", text)
    return _BEARER.sub(lambda m: f"{m.group(1)} {REDACTED}", text)


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
    """structlog processor: replace secret values by ``[redacted]``."""
    for key in list(event_dict):
        if _SECRET_KEY.search(key):
            event_dict[key] = REDACTED
        else:
            event_dict[key] = _scrub(event_dict[key])
    return event_dict


class _CurrentStderr:
    """A file that writes to whatever ``sys.stderr`` is at the time of writing."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
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
