"""Finding Unicode TrueType fonts on this machine for the e-mails' PDFs.

A regular font (and its bold) covering Latin, Greek and Cyrillic draws the text; fallbacks
covering Chinese, Japanese and Korean are added to a PDF only when its text needs them.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

FONT_SUFFIXES = (".ttf", ".otf", ".ttc", ".otc")


@dataclass(frozen=True)
class FontSet:
    """The font files a PDF may use; ``regular`` None means fpdf2's core Helvetica."""

    regular: Path | None
    bold: Path | None
    fallbacks: tuple[Path, ...]


def _windows_fonts() -> Path:
    return Path(os.environ.get("WINDIR", r"C:\Windows")) / "Fonts"


def _families() -> list[tuple[Path, Path | None]]:
    """(regular, bold) pairs in order of preference."""
    linux = Path("/usr/share/fonts")
    win = _windows_fonts()
    mac = Path("/System/Library/Fonts/Supplemental")
    pairs: list[tuple[Path, Path | None]] = []
    for folder in ("truetype/dejavu", "dejavu", "dejavu-sans-fonts", "TTF", "truetype"):
        pairs.append((linux / folder / "DejaVuSans.ttf", linux / folder / "DejaVuSans-Bold.ttf"))
    for folder in ("truetype/noto", "noto", "google-noto", "google-noto-vf", "TTF"):
        pairs.append(
            (linux / folder / "NotoSans-Regular.ttf", linux / folder / "NotoSans-Bold.ttf")
        )
    for folder in ("truetype/liberation", "truetype/liberation2", "liberation-sans"):
        pairs.append(
            (
                linux / folder / "LiberationSans-Regular.ttf",
                linux / folder / "LiberationSans-Bold.ttf",
            )
        )
    pairs.append(
        (
            linux / "liberation/LiberationSans-Regular.ttf",
            linux / "liberation/LiberationSans-Bold.ttf",
        )
    )
    pairs += [
        (win / "segoeui.ttf", win / "segoeuib.ttf"),
        (win / "arial.ttf", win / "arialbd.ttf"),
        (mac / "Arial Unicode.ttf", None),
        (Path("/Library/Fonts/Arial Unicode.ttf"), None),
        (mac / "Arial.ttf", mac / "Arial Bold.ttf"),
        (Path("/Library/Fonts/Arial.ttf"), Path("/Library/Fonts/Arial Bold.ttf")),
    ]
    return pairs


def _cjk_fallbacks() -> list[Path]:
    linux = Path("/usr/share/fonts")
    win = _windows_fonts()
    return [
        linux / "truetype/droid/DroidSansFallbackFull.ttf",
        linux / "truetype/droid/DroidSansFallback.ttf",
        linux / "opentype/noto/NotoSansCJK-Regular.ttc",
        linux / "noto-cjk/NotoSansCJK-Regular.ttc",
        linux / "google-noto-cjk/NotoSansCJK-Regular.ttc",
        linux / "opentype/noto-cjk/NotoSansCJK-Regular.ttc",
        linux / "truetype/wqy/wqy-microhei.ttc",
        linux / "truetype/wqy/wqy-zenhei.ttc",
        linux / "wenquanyi/wqy-microhei/wqy-microhei.ttc",
        linux / "wenquanyi/wqy-zenhei/wqy-zenhei.ttc",
        win / "msyh.ttc",
        win / "simsun.ttc",
        win / "msgothic.ttc",
        win / "malgun.ttf",
        Path("/System/Library/Fonts/PingFang.ttc"),
        Path("/System/Library/Fonts/Hiragino Sans GB.ttc"),
        Path("/System/Library/Fonts/STHeiti Light.ttc"),
        Path("/System/Library/Fonts/AppleSDGothicNeo.ttc"),
    ]


def find_fonts(extra: Sequence[Path] = ()) -> FontSet:
    """The fonts to use: ``extra`` files first (the caller's setting), then the machine's.

    The first of ``extra`` not named like a bold or italic face is the regular font (with the
    first bold-named one as its bold); the others are fallbacks before the machine's CJK fonts.
    """
    extras = [path for path in map(Path, extra) if _usable(path)]
    extra_regular = [p for p in extras if not _looks_bold(p) and not _looks_italic(p)]
    extra_bold = [p for p in extras if _looks_bold(p) and not _looks_italic(p)]
    regular, bold = _system_family()
    if extra_regular:
        regular, bold = extra_regular[0], next(iter(extra_bold), None)
    chosen = (regular, bold)
    fallbacks = [p for p in extra_regular if p not in chosen]
    fallbacks += [p for p in _cjk_fallbacks() if p not in chosen and _usable(p)]
    return FontSet(regular=regular, bold=bold, fallbacks=tuple(_unique(fallbacks)))


def _system_family() -> tuple[Path | None, Path | None]:
    for regular, bold in _families():
        if _usable(regular):
            return regular, bold if bold is not None and _usable(bold) else None
    return None, None


def _usable(path: Path) -> bool:
    try:
        return path.suffix.lower() in FONT_SUFFIXES and path.is_file()
    except OSError:
        return False


def _looks_bold(path: Path) -> bool:
    stem = path.stem.lower()
    return "bold" in stem or stem.endswith(("bd", "-b", "_b")) or stem in ("segoeuib",)


def _looks_italic(path: Path) -> bool:
    stem = path.stem.lower()
    return "italic" in stem or "oblique" in stem


def _unique(paths: Iterable[Path]) -> list[Path]:
    seen: set[Path] = set()
    result = []
    for path in paths:
        if path not in seen:
            seen.add(path)
            result.append(path)
    return result
