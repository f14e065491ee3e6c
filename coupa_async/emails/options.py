"""What the caller chooses: the conversion mode, which files are e-mails, and the bounds."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

EmailMode = Literal["pdf", "extract", "both", "off"]
EMAIL_MODES: tuple[EmailMode, ...] = ("pdf", "extract", "both", "off")
EMAIL_SUFFIXES = (".msg", ".eml")


def is_email(name: str) -> bool:
    """Whether ``name`` is an Outlook ``.msg`` or a MIME ``.eml`` file, by its suffix."""
    return name.lower().endswith(EMAIL_SUFFIXES)


def wants_pdf(mode: EmailMode) -> bool:
    return mode in ("pdf", "both")


def wants_extract(mode: EmailMode) -> bool:
    return mode in ("extract", "both")


@dataclass(frozen=True)
class ConversionLimits:
    """Bounds on one conversion tree (the mail and every e-mail nested in it)."""

    max_input_bytes: int = 100 * 2**20
    max_attachments: int = 500
    max_total_bytes: int = 512 * 2**20
    max_depth: int = 3


DEFAULT_LIMITS = ConversionLimits()
