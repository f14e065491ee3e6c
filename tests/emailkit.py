"""Checks of the e-mail conversions a run made, against the simulator's catalog."""

from __future__ import annotations

import hashlib
from email.message import EmailMessage
from pathlib import Path

from coupa_async.emails import is_email
from coupa_async.results.result import PoResult
from coupa_async.sim.catalog import SimFile, SimPO
from coupa_async.sim.content import MailSummary


def catalog_files(po: SimPO) -> dict[str, SimFile]:
    """The PO's and its requisition's files by SHA-256."""
    files = list(po.files) + (list(po.requisition.files) if po.requisition else [])
    return {f.sha256: f for f in files}


def is_conversion_output(path: Path) -> bool:
    """A PDF or attachments folder the converter made beside an e-mail in the same folder."""
    for suffix in (".pdf", "_attachments"):
        for tail in ("", " (e-mail)"):
            ending = tail + suffix
            if path.name.endswith(ending):
                mail = path.with_name(path.name[: -len(ending)])
                if is_email(mail.name) and mail.is_file():
                    return True
    return False


def sha256s(folder: Path) -> list[str]:
    """SHA-256 of the plain files directly in ``folder`` (not e-mails, not PDFs of e-mails)."""
    return sorted(
        hashlib.sha256(p.read_bytes()).hexdigest()
        for p in folder.iterdir()
        if p.is_file() and not is_email(p.name) and not is_conversion_output(p)
    )


def check_mail_outputs(mail: Path, summary: MailSummary) -> None:
    """``mail``'s PDF and attachments folder hold what the catalog says it holds."""
    pdf = mail.with_name(f"{mail.name}.pdf")
    assert pdf.read_bytes().startswith(b"%PDF-"), pdf
    folder = mail.with_name(f"{mail.name}_attachments")
    plain = sorted(part.sha256 for part in summary.attachments if not part.nested)
    if not summary.attachments:
        assert not folder.exists(), folder
        return
    assert sha256s(folder) == plain, (mail.name, sha256s(folder), plain)
    inner = sorted(p for p in folder.iterdir() if p.is_file() and is_email(p.name))
    assert len(inner) == len(summary.nested), (mail.name, inner)
    unmatched = list(summary.nested)
    for nested in inner:
        nested_folder = nested.with_name(f"{nested.name}_attachments")
        found = sha256s(nested_folder) if nested_folder.is_dir() else []
        match = next(
            s for s in unmatched if sorted(p.sha256 for p in s.attachments if not p.nested) == found
        )
        unmatched.remove(match)
        check_mail_outputs(nested, match)


def check_conversions(po: SimPO, result: PoResult) -> None:
    """Every saved e-mail of ``result`` converted as the catalog says, and the errors
    reported exactly for the malformed ones; the outcome is the catalog's all the same."""
    by_sha = catalog_files(po)
    expected_errors = []
    for saved in result.files:
        summary = by_sha[saved.sha256].email
        if summary is None:
            continue
        if summary.malformed:
            expected_errors.append(saved.name)
            assert not saved.path.with_name(f"{saved.name}.pdf").exists()
            assert not saved.path.with_name(f"{saved.name}_attachments").exists()
        else:
            check_mail_outputs(saved.path, summary)
    assert len(result.conversion_errors) == len(expected_errors), result.conversion_errors
    for name, error in zip(sorted(expected_errors), sorted(result.conversion_errors), strict=True):
        assert name in error, (name, error)


def write_eml(path: Path, subject: str = "Cotação 42") -> Path:
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = "Ana Souza <ana@fornecedor.pt>"
    message["To"] = "buyer@example.com"
    message.set_content("Olá, segue a cotação.")
    message.add_attachment(
        b"%PDF-1.4 quote", maintype="application", subtype="pdf", filename="q.pdf"
    )
    path.write_bytes(bytes(message))
    return path
