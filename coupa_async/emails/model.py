"""A mail as read from a ``.msg`` or ``.eml`` file, ready to render and extract."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Attachment:
    """One attachment: its name as the mail gives it (unsafe) and its bytes.

    ``data`` is None when the attachment holds nothing to save (a link, a broken entry);
    ``note`` then says why, and ``broken`` whether that is a problem of the mail.
    ``subject`` is set when the attachment is itself an e-mail.
    """

    name: str
    data: bytes | None
    is_mail: bool = False
    subject: str | None = None
    note: str | None = None
    broken: bool = False

    @property
    def size(self) -> int:
        return len(self.data) if self.data is not None else 0


@dataclass(frozen=True)
class Mail:
    """Headers as display text, the body as plain text, and the attachments."""

    sender: str
    to: str
    cc: str
    date: str
    subject: str
    body: str
    attachments: tuple[Attachment, ...] = ()
