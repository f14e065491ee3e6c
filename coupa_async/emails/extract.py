"""A mail's attachments written into a folder, nested e-mails converted in turn, within bounds.

Names are made safe and unique with the layout's rules, and every path is checked to resolve
inside the folder tree being built. Each nested e-mail is converted once, where it is saved.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from coupa_async.emails.errors import LimitExceeded, MailError
from coupa_async.emails.fonts import FontSet
from coupa_async.emails.model import Mail
from coupa_async.emails.options import (
    ConversionLimits,
    EmailMode,
    is_email,
    wants_extract,
    wants_pdf,
)
from coupa_async.emails.outputs import folder_names, pdf_names
from coupa_async.emails.pdf import render_pdf
from coupa_async.emails.read import read_mail
from coupa_async.emails.units import human_size
from coupa_async.results.layout import unique_name

_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
_NEW_FILE |= getattr(os, "O_NOFOLLOW", 0)


@dataclass
class Budget:
    """What a conversion tree has extracted so far, against its limits."""

    limits: ConversionLimits
    top_name: str
    files: int = 0
    bytes: int = 0

    def take(self, size: int) -> None:
        """Count one more file of ``size`` bytes; raises LimitExceeded past a bound."""
        limits = self.limits
        if self.files >= limits.max_attachments:
            raise LimitExceeded(
                "max_attachments",
                f"{self.top_name} holds more than {limits.max_attachments} attachments in all "
                f"(limit max_attachments); extraction stopped after {self.files}",
            )
        if self.bytes + size > limits.max_total_bytes:
            raise LimitExceeded(
                "max_total_bytes",
                f"The attachments of {self.top_name} add up to more than "
                f"{human_size(limits.max_total_bytes)} (limit max_total_bytes); extraction "
                f"stopped after {self.files} files",
            )
        self.files += 1
        self.bytes += size


@dataclass
class Extraction:
    """One conversion tree's extraction: its root folder, budget and the problems met."""

    mode: EmailMode
    fonts: FontSet
    root: Path  # the top folder being built; nothing is written outside it
    budget: Budget
    problems: list[str] = field(default_factory=list)
    missing_font: bool = False

    def extract(self, mail: Mail, mail_name: str, folder: Path, depth: int = 0) -> None:
        """Write the attachments of ``mail`` into the new, empty ``folder``.

        ``depth`` is the nesting of ``mail`` (0 for the saved mail itself).
        """
        taken: set[str] = set()
        planned: list[tuple[bytes, str, bool]] = []
        for attachment in mail.attachments:
            if attachment.data is None:
                if attachment.broken:
                    self.problems.append(
                        f"The attachment {attachment.name} of {mail_name} {attachment.note}"
                    )
                continue
            name = unique_name(attachment.name, taken)
            taken.add(name)
            planned.append((attachment.data, name, attachment.is_mail or is_email(name)))
        for data, name, nested in planned:
            self.budget.take(len(data))
            self._write(folder / name, data)
            if nested:
                self._convert_nested(data, name, mail_name, folder, taken, depth + 1)

    def _convert_nested(
        self, data: bytes, name: str, parent: str, folder: Path, taken: set[str], depth: int
    ) -> None:
        limits = self.budget.limits
        if depth > limits.max_depth:
            raise LimitExceeded(
                "max_depth",
                f"{self.budget.top_name} holds e-mails nested more than {limits.max_depth} deep "
                f"(limit max_depth); extraction stopped at {name}",
            )
        try:
            mail = read_mail(data, name)
        except MailError as exc:
            self.problems.append(f"{exc} (attached to {parent})")
            return
        if wants_pdf(self.mode):
            pdf_name = _free(pdf_names(name), taken)
            try:
                rendered = render_pdf(mail, self.fonts, name)
            except MailError as exc:
                self.problems.append(f"{exc} (attached to {parent})")
            else:
                self._write(folder / pdf_name, rendered.data)
                self.missing_font |= rendered.missing_font
        if wants_extract(self.mode) and any(a.data is not None for a in mail.attachments):
            sub = _free(folder_names(name), taken)
            self._inside(folder / sub).mkdir()
            self.extract(mail, name, folder / sub, depth)

    def _write(self, path: Path, data: bytes) -> None:
        fd = os.open(self._inside(path), _NEW_FILE, 0o666)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)

    def _inside(self, path: Path) -> Path:
        # Names are already safe; this guards against any way around that.
        root = self.root.resolve()
        resolved = path.parent.resolve() / path.name
        if path.name in ("", ".", "..") or not resolved.is_relative_to(root) or resolved == root:
            raise MailError(f"{path.name!r} would be written outside {self.root.name}")
        return path


def _free(names: list[str], taken: set[str]) -> str:
    """The first of ``names`` not in ``taken`` (ignoring case), added to ``taken``."""
    used = {name.casefold() for name in taken}
    name = next((n for n in names if n.casefold() not in used), None)
    name = name or unique_name(names[0], taken)
    taken.add(name)
    return name
