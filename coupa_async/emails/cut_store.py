"""Fonts cut to common characters (``font_core``), kept on disk so a run cuts each font once.

A cut takes a CJK font a second of CPU; the converting process would otherwise pay it at every
start. A stored cut is named after the SHA-256 of the font file it was cut from, the cut's
version and its own SHA-256, and is used only when its bytes still have that hash and its
character map is exactly the characters the cut keeps: anything else is cut anew and stored
again. A folder that cannot be written to only means the cut is not kept.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from pathlib import Path

from coupa_async.emails.font_core import CUT_VERSION, character_set, cut_font

PRIVATE_FOLDER = 0o700


def default_folder() -> Path:
    """Where cut fonts are kept: the cache folder beside the saved sign-in."""
    return Path.home() / ".coupa_async" / "cache" / "fonts"


def stored_cut(data: bytes, kept: frozenset[int], folder: Path | None = None) -> bytes:
    """The cut of the font file ``data`` to ``kept``: from ``folder`` when a good one is kept
    there, else cut now and kept."""
    folder = folder or default_folder()
    prefix = f"{hashlib.sha256(data).hexdigest()[:32]}-v{CUT_VERSION}-"
    with contextlib.suppress(OSError):
        for path in sorted(folder.glob(f"{prefix}*.ttf")):
            cut = _good_cut(path, path.stem.removeprefix(prefix), kept)
            if cut is not None:
                return cut
            with contextlib.suppress(OSError):
                path.unlink()
    cut = cut_font(data, kept)
    with contextlib.suppress(OSError):
        _keep(folder, f"{prefix}{hashlib.sha256(cut).hexdigest()[:32]}.ttf", cut)
    return cut


def _good_cut(path: Path, digest: str, kept: frozenset[int]) -> bytes | None:
    try:
        cut = path.read_bytes()
        if hashlib.sha256(cut).hexdigest()[:32] != digest:
            return None
        if character_set(cut) != kept:
            return None
    except Exception:  # a damaged file: fontTools raises many kinds
        return None
    return cut


def _keep(folder: Path, name: str, cut: bytes) -> None:
    folder.mkdir(parents=True, exist_ok=True, mode=PRIVATE_FOLDER)
    partial = folder / f".{name}.{os.getpid()}.tmp"
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0)
    descriptor = os.open(partial, flags, 0o600)
    try:
        with os.fdopen(descriptor, "wb") as out:
            out.write(cut)
        os.replace(partial, folder / name)
    except BaseException:
        with contextlib.suppress(OSError):
            partial.unlink()
        raise
