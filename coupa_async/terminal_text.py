"""Text from outside (a Coupa page, a server's answer, the journal) made safe to show on a terminal.

Such text is only ever shown as text. Rich markup in it is not interpreted: it goes out as a
``rich.text.Text`` (``safe_text``), or escaped with ``rich.markup.escape`` inside a message
built from our own markup (``markup``); emoji codes such as ``:warning:`` stay as written.
No control character reaches the terminal: each C0 or C1 control, DEL and Unicode
bidirectional control is shown as a Python-style escape (``\\x1b``, ``\\x9b``, ``\\u202e``), so an
escape sequence in a file name is visible instead of obeyed. Line breaks and tabs become
spaces, except that ``keep_lines=True`` keeps ``\\n`` (``\\r\\n`` counts as one) for a message of
several lines.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

from rich.markup import escape
from rich.text import Text

# Line breaks and tabs: a space in a one-line field.
_BREAKS = "\t\n\x0b\x0c\r\x1c\x1d\x1e\x85\u2028\u2029"
# Unicode bidirectional controls: they can make a name read backwards ("Trojan Source").
_BIDI = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"


def _table(keep_lines: bool) -> dict[int, str]:
    table: dict[int, str] = {}
    for code in [*range(0x20), *range(0x7F, 0xA0)]:
        table[code] = f"\\x{code:02x}"
    for char in _BIDI:
        table[ord(char)] = f"\\u{ord(char):04x}"
    for char in _BREAKS:
        table[ord(char)] = " "
    if keep_lines:
        del table[ord("\n")]
    return table


_ONE_LINE = _table(keep_lines=False)
_LINES = _table(keep_lines=True)


def printable(value: object, *, keep_lines: bool = False) -> str:
    """``value`` as text with no control character in it (see the module's docstring)."""
    text = value if isinstance(value, str) else str(value)
    if keep_lines:
        return text.replace("\r\n", "\n").translate(_LINES)
    return text.translate(_ONE_LINE)


def safe_text(value: object, style: str = "") -> Text:
    """``value`` as a rich ``Text``: printed as it is, markup and all, without controls."""
    return Text(printable(value), style=style)


def markup(template: str, /, **values: object) -> Text:
    """Our own rich markup ``template`` with each ``{name}`` filled by ``values[name]`` as text.

    ``markup("Downloading into [bold]{out}[/]", out=folder)``: the folder's name is shown as
    written, whatever brackets or colons it holds.
    """
    filled = template.format(**{name: escape(printable(v)) for name, v in values.items()})
    return Text.from_markup(filled, emoji=False)


def printable_log_values(
    _: object, __: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor, just before a console renderer (which prints a text value without
    quotes as it is): each text value made ``printable``; ``exception`` keeps its lines."""
    for key, value in event_dict.items():
        if isinstance(value, str):
            event_dict[key] = printable(value, keep_lines=key == "exception")
    return event_dict
