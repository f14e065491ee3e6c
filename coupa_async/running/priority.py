"""PO priorities: a PRIORITY cell of the input or the ``priority`` of ``Downloader.submit``.

Lower runs first. URGENT is 0, HIGH 1, NORMAL 2 (the default), LOW 3; any other integer is
allowed too.
"""

from __future__ import annotations

import re

PRIORITY_NAMES = {"URGENT": 0, "HIGH": 1, "NORMAL": 2, "LOW": 3}
DEFAULT_PRIORITY = PRIORITY_NAMES["NORMAL"]

_INTEGER = re.compile(r"[+-]?[0-9]+")


def parse_priority(value: object) -> int:
    """``value`` as an integer priority, lower first.

    Accepts an int, a float with no fraction (a spreadsheet's ``1.0``), a string holding an
    integer, or URGENT / HIGH / NORMAL / LOW in any case, blanks around ignored. None and a blank
    string are NORMAL. Raises ValueError for anything else, booleans included.
    """
    if value is None:
        return DEFAULT_PRIORITY
    if isinstance(value, bool):  # an int subclass: True would otherwise pass as HIGH
        raise ValueError(f"priority {value!r} is a boolean, not a number nor a priority name")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError(f"priority {value!r} is not a whole number")
        return int(value)
    text = str(value).strip()
    if not text:
        return DEFAULT_PRIORITY
    if _INTEGER.fullmatch(text):
        return int(text)
    try:
        return PRIORITY_NAMES[text.upper()]
    except KeyError:
        raise ValueError(
            f"priority {value!r} is not a whole number nor one of {', '.join(PRIORITY_NAMES)}"
        ) from None
