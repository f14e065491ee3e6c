"""A saved e-mail's bytes as a ``Mail``, whichever of the two formats it really is."""

from __future__ import annotations

from coupa_async.emails.errors import MailError
from coupa_async.emails.model import Mail
from coupa_async.emails.read_eml import read_eml
from coupa_async.emails.read_msg import OLE_MAGIC, read_msg


def read_mail(data: bytes, name: str) -> Mail:
    """The mail in ``data``; raises MailError with one sentence if it cannot be read.

    The content decides, not the suffix: some tools save MIME text as ``.msg``.
    """
    if data.startswith(OLE_MAGIC):
        return read_msg(data, name)
    if not name.lower().endswith(".msg"):
        return read_eml(data, name)
    try:
        return read_eml(data, name)
    except MailError:
        return read_msg(data, name)  # raises: "it is not an Outlook file"
