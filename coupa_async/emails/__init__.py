"""Saved e-mails (``.msg``, ``.eml``) made readable: a PDF beside each, attachments extracted.

Importing the package is light; the PDF and Outlook libraries load on the first conversion.
"""

from coupa_async.emails.convert import convert_email
from coupa_async.emails.fonts import FontSet, find_fonts
from coupa_async.emails.options import (
    EMAIL_SUFFIXES,
    ConversionLimits,
    EmailMode,
    is_email,
)
from coupa_async.emails.outcome import ConversionOutcome

__all__ = [
    "EMAIL_SUFFIXES",
    "ConversionLimits",
    "ConversionOutcome",
    "EmailMode",
    "FontSet",
    "convert_email",
    "find_fonts",
    "is_email",
]
