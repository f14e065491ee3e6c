"""Problems with a mail's content, as opposed to problems of the disk (``OSError``)."""

from __future__ import annotations


class MailError(Exception):
    """A mail could not be read or rendered; ``str()`` is one plain sentence."""


class LimitExceeded(MailError):
    """A bound of ``ConversionLimits`` was reached; ``bound`` is the field's name."""

    def __init__(self, bound: str, sentence: str) -> None:
        super().__init__(sentence)
        self.bound = bound


def reason(exc: BaseException) -> str:
    """An exception's message on one line, or its type's name when it has none."""
    # "; " separates the e-mails' sentences in the report's CONVERSION_ERRORS.
    return " ".join(str(exc).split()).replace("; ", ", ") or type(exc).__name__
