"""``convert_email``: a saved e-mail's PDF and attachments, written beside it once.

Run in a worker process: the function and its arguments pickle, and the heavy libraries are
imported on the first call, not when the package is.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

from coupa_async.emails.errors import LimitExceeded, MailError
from coupa_async.emails.fonts import FontSet
from coupa_async.emails.model import Mail
from coupa_async.emails.options import (
    DEFAULT_LIMITS,
    EMAIL_MODES,
    ConversionLimits,
    EmailMode,
    wants_extract,
    wants_pdf,
)
from coupa_async.emails.outcome import ConversionOutcome
from coupa_async.emails.outputs import (
    INCOMPLETE,
    choose_names,
    files_under,
    folder_names,
    install_folder,
    is_fresh,
    our_pdf_attachments,
    partial_folder,
    pdf_names,
    remove_leftovers,
    remove_tree,
    stamp,
    write_pdf,
)
from coupa_async.emails.units import human_size


def convert_email(
    path: Path,
    mode: EmailMode,
    fonts: FontSet,
    limits: ConversionLimits = DEFAULT_LIMITS,
    reserved: Collection[str] = (),
) -> ConversionOutcome:
    """Write the PDF of the e-mail at ``path`` and/or extract its attachments, per ``mode``.

    A mail that cannot be read, or passes a limit, gives an outcome with ``error``; the mail
    itself is never changed. Errors of the disk raise ``OSError``.

    ``reserved``: the names of the server's files beside the mail (the PO's saved files). Our
    outputs never take one of them, nor the name of any other file that is not ours.
    """
    if mode not in EMAIL_MODES:
        raise ValueError(f"unknown e-mail conversion mode {mode!r}; expected one of {EMAIL_MODES}")
    path = Path(path)
    if mode == "off":
        return ConversionOutcome(path.name, None, [], skipped=True, error=None)
    return _Conversion(path, mode, fonts, limits, frozenset(reserved)).run()


@dataclass
class _Conversion:
    path: Path
    mode: EmailMode
    fonts: FontSet
    limits: ConversionLimits
    reserved: frozenset[str] = frozenset()
    problems: list[str] = field(default_factory=list)
    missing_font: bool = False
    changed: bool = False

    def run(self) -> ConversionOutcome:
        folder, name = self.path.parent, self.path.name
        source = self.path.stat()
        pdfs, folders = pdf_names(name), folder_names(name)
        remove_leftovers(folder, pdfs, folders)
        pdf_name, folder_name = choose_names(folder, name, self.reserved)
        if pdf_name is None or folder_name is None:
            return self._outcome(None, None, _no_free_name(name))
        pdf_path, target = folder / pdf_name, folder / folder_name
        mtime = source.st_mtime_ns
        pdf_done = is_fresh(pdf_path, mtime) and our_pdf_attachments(pdf_path) is not None
        extract_done = _extraction_done(target, pdf_path, pdf_done, mtime)

        pending_pdf = wants_pdf(self.mode) and not pdf_done
        pending_extract = wants_extract(self.mode) and extract_done is not True
        if pending_pdf or pending_extract:
            if source.st_size > self.limits.max_input_bytes:
                return self._outcome(None, None, _too_big(name, source.st_size, self.limits))
            data = self.path.read_bytes()
            try:
                mail = _read(data, name)
            except MailError as exc:
                # Outputs of an earlier version of the mail would now mislead.
                if pending_pdf and our_pdf_attachments(pdf_path) is not None:
                    pdf_path.unlink(missing_ok=True)
                if pending_extract and target.is_dir():
                    remove_tree(target)
                return self._outcome(None, None, str(exc))
            if pending_pdf:
                self._write_pdf(mail, pdf_path, mtime)
            if pending_extract:
                self._extract(mail, name, target, mtime)
        pdf = pdf_name if wants_pdf(self.mode) and pdf_path.is_file() else None
        extracted = target if wants_extract(self.mode) and target.is_dir() else None
        return self._outcome(pdf, extracted, self.problems[0] if self.problems else None)

    def _write_pdf(self, mail: Mail, pdf_path: Path, mtime: int) -> None:
        from coupa_async.emails.pdf import render_pdf

        try:
            rendered = render_pdf(mail, self.fonts, self.path.name)
        except MailError as exc:
            self.problems.append(str(exc))
            if our_pdf_attachments(pdf_path) is not None:
                pdf_path.unlink(missing_ok=True)  # of an earlier version of the mail
            return
        write_pdf(pdf_path.parent, pdf_path.name, rendered.data, mtime)
        self.missing_font |= rendered.missing_font
        self.changed = True

    def _extract(self, mail: Mail, name: str, target: Path, mtime: int) -> None:
        from coupa_async.emails.extract import Budget, Extraction

        if not any(attachment.data is not None for attachment in mail.attachments):
            self.problems += [
                f"The attachment {a.name} of {name} {a.note}" for a in mail.attachments if a.broken
            ]
            if target.exists():  # the mail changed and has nothing to extract any more
                remove_tree(target)
                self.changed = True
            return
        partial = partial_folder(target.parent, target.name)
        partial.mkdir()
        extraction = Extraction(self.mode, self.fonts, partial, Budget(self.limits, name))
        try:
            try:
                extraction.extract(mail, name, partial)
            except LimitExceeded as exc:
                extraction.problems.insert(0, str(exc))
            if extraction.problems:
                (partial / INCOMPLETE).write_text("\n".join(extraction.problems) + "\n")
            stamp(partial, mtime)
            install_folder(partial, target)
        except BaseException:
            remove_tree(partial)  # frees the space on a full disk; a rerun starts over anyway
            raise
        stamp(target, mtime)
        self.problems = extraction.problems + self.problems
        self.missing_font |= extraction.missing_font
        self.changed = True

    def _outcome(
        self, pdf: str | None, extracted: Path | None, error: str | None
    ) -> ConversionOutcome:
        files = sorted(files_under(extracted, extracted.name)) if extracted else []
        if error is not None and len(self.problems) > 1:
            more = len(self.problems) - 1
            error = f"{error} (and {more} more problem{'s' if more > 1 else ''})"
        skipped = not self.changed and error is None
        return ConversionOutcome(
            self.path.name, pdf, files, skipped=skipped, error=error, missing_font=self.missing_font
        )


def _read(data: bytes, name: str) -> Mail:
    from coupa_async.emails.read import read_mail

    return read_mail(data, name)


def _extraction_done(target: Path, pdf: Path, pdf_done: bool, mtime: int) -> bool | None:
    """Whether the attachments are extracted and current; None when only reading tells."""
    if target.is_dir():
        return is_fresh(target, mtime) and not (target / INCOMPLETE).exists()
    if pdf_done:
        return our_pdf_attachments(pdf) == 0  # the PDF says whether there was anything to do
    return None


def _no_free_name(name: str) -> str:
    return (
        f"{name} was not converted: other files already use every name its PDF or attachments "
        "folder could have"
    )


def _too_big(name: str, size: int, limits: ConversionLimits) -> str:
    return (
        f"{name} is {human_size(size)}, more than the {human_size(limits.max_input_bytes)} "
        "allowed (limit max_input_bytes); it was not converted"
    )
