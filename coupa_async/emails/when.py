"""Dates shown in the PDF."""

from __future__ import annotations

from datetime import datetime
from email.utils import format_datetime


def format_date(value: datetime | None) -> str:
    """``value`` as in a mail header (English, independent of the locale), or ""."""
    if value is None:
        return ""
    return format_datetime(value)
