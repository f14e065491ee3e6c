"""Greedy line wrapping by character widths, in linear time.

fpdf2's own line breaker re-measures the line for every character, which is slow for long
bodies. Lines break at spaces, and around wide (Chinese, Japanese, Korean) characters, which
are written without spaces; a word longer than a line is cut.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping


def is_wide(ch: str) -> bool:
    return unicodedata.east_asian_width(ch) in ("W", "F")


def wrap(text: str, widths: Mapping[str, float], max_width: float) -> list[str]:
    """``text`` as lines no wider than ``max_width``; ``widths`` has every character of it."""
    wide = {ch for ch in widths if is_wide(ch)}
    lines: list[str] = []
    for paragraph in text.split("\n"):
        lines.extend(_wrap_paragraph(paragraph, widths, wide, max_width))
    return lines


def _wrap_paragraph(
    text: str, widths: Mapping[str, float], wide: set[str], max_width: float
) -> list[str]:
    lines: list[str] = []
    start = 0  # first character of the current line
    width = 0.0  # of text[start:i]
    opening = 0  # the last place the current line may end (a line never ends at start)
    i = 0
    while i < len(text):
        ch = text[i]
        if ch in wide and i > start:
            opening = i
        if width + widths[ch] > max_width and i > start:
            # A space past the edge ends the line where it is; a letter goes back to the
            # last opening, if the line has one.
            end = i if ch == " " or opening <= start else opening
            lines.append(text[start:end].rstrip(" "))
            start = end
            while start < len(text) and text[start] == " ":
                start += 1
            width = sum(widths[c] for c in text[start:i])
            opening = start
            i = max(i, start)
            continue
        width += widths[ch]
        if ch == " " or ch in wide:
            opening = i + 1
        i += 1
    tail = text[start:].rstrip(" ")
    if tail or not lines:
        lines.append(tail)
    return lines
