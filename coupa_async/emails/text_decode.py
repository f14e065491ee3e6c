"""Bytes of unknown or mislabelled encoding as text, never failing."""

from __future__ import annotations

import codecs

# Labels senders use for text in a wider encoding, read as that one (as browsers do).
_SUPERSETS = {
    "ascii": "cp1252",
    "us-ascii": "cp1252",
    "iso-8859-1": "cp1252",
    "latin-1": "cp1252",
    "latin1": "cp1252",
    "iso-8859-9": "cp1254",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "euc-kr": "cp949",
    "ks_c_5601-1987": "cp949",
    "shift_jis": "cp932",
    "big5": "big5hkscs",
}


def decode_text(data: bytes, charset: str | None = None) -> str:
    """``data`` decoded with ``charset`` if that works, else UTF-8, else Windows-1252."""
    if charset:
        charset = _SUPERSETS.get(charset.strip().lower(), charset.strip())
    for candidate in (charset, "utf-8", "cp1252"):
        if not candidate:
            continue
        try:
            codecs.lookup(candidate)
            return data.decode(candidate)
        except (LookupError, UnicodeDecodeError):
            continue
    return data.decode("latin-1")  # every byte is a character: cannot fail
