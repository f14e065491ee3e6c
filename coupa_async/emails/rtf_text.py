"""The text of an RTF body that encapsulates neither HTML nor plain text (Outlook "Rich Text").

Only what a reader needs: paragraphs, line breaks, tabs, ``\\'hh`` bytes in the document's code
page and ``\\uN`` characters. Font tables, pictures and other destinations are skipped.
"""

from __future__ import annotations

import re

from coupa_async.emails.text_decode import decode_text

_TOKEN = re.compile(
    rb"\\(?P<word>[a-zA-Z]+)(?P<arg>-?\d+)? ?"
    rb"|\\'(?P<hex>[0-9a-fA-F]{2})"
    rb"|\\(?P<symbol>[^a-zA-Z])"
    rb"|(?P<brace>[{}])"
    rb"|(?P<newline>[\r\n]+)"
    rb"|(?P<text>[^\\{}\r\n]+)"
)
_KINDS = ("word", "hex", "symbol", "brace", "newline", "text")
_SKIPPED = frozenset(
    {b"fonttbl", b"colortbl", b"stylesheet", b"info", b"pict", b"object", b"header"}
    | {b"footer", b"listtable", b"listoverridetable", b"rsidtbl", b"generator", b"xmlnstbl"}
    | {b"themedata", b"colorschememapping", b"datastore", b"latentstyles", b"mmathPr"}
)
_BREAKS = {b"par": "\n", b"line": "\n", b"row": "\n", b"sect": "\n", b"page": "\n"}
_INLINE = {b"tab": "\t", b"cell": " | ", b"emdash": "—", b"endash": "–", b"bullet": "•"}
_INLINE |= {b"lquote": "‘", b"rquote": "’", b"ldblquote": "“", b"rdblquote": "”"}
_SYMBOLS = {b"~": "\u00a0", b"-": "", b"_": "-", b"\\": "\\", b"{": "{", b"}": "}"}


def rtf_to_text(rtf: bytes) -> str:
    """The readable text of ``rtf``."""
    codepage = "cp1252"
    out: list[str] = []
    pending = bytearray()  # \\'hh bytes, decoded together (multi-byte code pages)
    skip_depth: int | None = None  # group depth below which text is skipped
    depth = 0
    uc_skip = 1  # characters after \\uN that stand in for readers without Unicode
    to_skip = 0
    star = False

    def flush() -> None:
        if pending:
            out.append(decode_text(bytes(pending), codepage))
            pending.clear()

    for match in _TOKEN.finditer(rtf):
        kind = next(k for k in _KINDS if match.group(k) is not None)
        if kind == "brace":
            flush()
            if match.group("brace") == b"{":
                depth += 1
            else:
                if skip_depth is not None and depth <= skip_depth:
                    skip_depth = None
                depth -= 1
            star = False
            continue
        if kind == "newline":
            continue
        if to_skip and kind in ("hex", "text", "symbol"):
            to_skip -= 1
            if kind == "text" and len(match.group("text")) > 1:
                tail = match.group("text")[1 + to_skip :]
                to_skip = 0
                if skip_depth is None and tail:
                    flush()
                    out.append(decode_text(tail, codepage))
            continue
        if kind == "symbol" and match.group("symbol") == b"*":
            star = True
            continue
        if kind == "word":
            word, arg = match.group("word"), match.group("arg")
            if (star or word in _SKIPPED) and skip_depth is None:
                skip_depth = depth
            star = False
            if word == b"ansicpg" and arg:
                codepage = f"cp{int(arg)}"
            elif word == b"uc" and arg:
                uc_skip = max(int(arg), 0)
            if skip_depth is not None:
                continue
            if word == b"u" and arg:
                flush()
                out.append(chr(int(arg) % 0x10000))
                to_skip = uc_skip
            elif word in _BREAKS:
                flush()
                out.append(_BREAKS[word])
            elif word in _INLINE:
                flush()
                out.append(_INLINE[word])
            continue
        if skip_depth is not None:
            continue
        if kind == "hex":
            pending.append(int(match.group("hex"), 16))
        elif kind == "symbol":
            flush()
            out.append(_SYMBOLS.get(match.group("symbol"), ""))
        elif kind == "text":
            flush()
            out.append(decode_text(match.group("text"), codepage))
    flush()
    # \uN gives UTF-16 code units: pair the surrogates of characters beyond the BMP.
    text = "".join(out).encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    lines = [line.rstrip() for line in text.split("\n")]
    return "\n".join(lines).strip("\n")
