"""Prove a finished (or interrupted) run: check its output folder against its journal.

``await audit(settings, out)`` downloads nothing and changes nothing. Offline it checks every
settled PO's folder and files, leftovers of unfinished work, one folder per PO and the report;
online it reads a sample of POs (and every NO_ATTACHMENTS one) again on the site.
"""

from coupa_async.audit.check import audit
from coupa_async.audit.findings import AuditReport, Check, Disagreement, Unchecked
from coupa_async.audit.listing import print_audit
from coupa_async.audit.online import DEFAULT_SAMPLE, DEFAULT_SETTLE_S

__all__ = [
    "DEFAULT_SAMPLE",
    "DEFAULT_SETTLE_S",
    "AuditReport",
    "Check",
    "Disagreement",
    "Unchecked",
    "audit",
    "print_audit",
]
