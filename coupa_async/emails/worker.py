"""The converting process: ``python -m coupa_async.emails.worker``, one request per line.

Each line on stdin is a JSON request (``path``, ``mode``, ``fonts``, ``limits``,
``timeout_s``); each answer is one JSON line: the outcome, or the disk error that stopped it.
The process ends when stdin closes (its parent has gone). Ctrl+C meant for the parent is
ignored here: the parent decides what becomes of a conversion in flight.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from dataclasses import asdict
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

from coupa_async.emails.convert import convert_email
from coupa_async.emails.fonts import FontSet
from coupa_async.emails.options import ConversionLimits
from coupa_async.emails.outcome import ConversionOutcome


class ConversionTimeout(BaseException):
    """The request's deadline passed (a BaseException: no ``except Exception`` in a parser
    takes it for a damaged e-mail)."""


def _on_alarm(signum: int, frame: FrameType | None) -> None:
    raise ConversionTimeout


def not_converted_in_time(name: str, timeout_s: float) -> str:
    """The sentence for an e-mail past its deadline (said here, or by the parent)."""
    return f"{name} was not converted within {timeout_s:g} s"


def fonts_of(data: dict[str, Any]) -> FontSet:
    regular, bold = data.get("regular"), data.get("bold")
    return FontSet(
        regular=Path(regular) if regular else None,
        bold=Path(bold) if bold else None,
        fallbacks=tuple(Path(p) for p in data.get("fallbacks", ())),
    )


def fonts_data(fonts: FontSet) -> dict[str, Any]:
    return {
        "regular": str(fonts.regular) if fonts.regular else None,
        "bold": str(fonts.bold) if fonts.bold else None,
        "fallbacks": [str(p) for p in fonts.fallbacks],
    }


def answer(request: dict[str, Any]) -> dict[str, Any]:
    """The answer to one request."""
    path = Path(request["path"])
    timeout_s = float(request["timeout_s"])
    timer = getattr(signal, "setitimer", None)  # Windows: the parent's deadline kills instead
    if timer is not None:
        timer(signal.ITIMER_REAL, timeout_s)
    try:
        outcome = convert_email(
            path,
            request["mode"],
            fonts_of(request["fonts"]),
            ConversionLimits(**request["limits"]),
            reserved=request.get("reserved", ()),
        )
    except ConversionTimeout:
        outcome = ConversionOutcome(
            source=path.name, error=not_converted_in_time(path.name, timeout_s)
        )
    except OSError as exc:
        return {"os_error": exc.errno, "strerror": exc.strerror or str(exc)}
    finally:
        if timer is not None:
            timer(signal.ITIMER_REAL, 0)
    return {"outcome": asdict(outcome)}


def serve(requests: TextIO, answers: TextIO) -> None:
    for line in requests:
        if line.strip():
            answers.write(json.dumps(answer(json.loads(line))) + "\n")
            answers.flush()


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if hasattr(os, "nice"):
        # Background work: the browser's pages and downloads go first when CPUs are short.
        os.nice(5)
    if hasattr(signal, "SIGALRM"):
        signal.signal(signal.SIGALRM, _on_alarm)
    # Answers go to a copy of stdout; whatever a library prints goes to stderr instead.
    answers = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8")
    sys.stdout = sys.stderr
    serve(sys.stdin, answers)


if __name__ == "__main__":
    main()
