"""What one conversion did."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class ConversionOutcome:
    """The result of ``convert_email``; paths are relative to the mail's folder, posix style."""

    source: str
    pdf: str | None = None
    extracted: list[str] = field(default_factory=list)
    skipped: bool = False
    error: str | None = None
    missing_font: bool = False
