"""Sizes as people read them."""

from __future__ import annotations


def human_size(size: int) -> str:
    """``size`` bytes as "1 byte", "812 bytes", "146.5 KB", "3.2 MB"…"""
    if size < 1024:
        return "1 byte" if size == 1 else f"{size} bytes"
    value = float(size)
    for unit in ("KB", "MB", "GB"):
        value /= 1024
        if value < 1024:
            return f"{value:.1f} {unit}"
    return f"{value / 1024:.1f} TB"
