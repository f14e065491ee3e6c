"""Prove a finished (or interrupted) run: check its output folder against its journal.

``await audit(settings, out)`` downloads nothing and changes nothing. Offline it checks every
settled PO's folder and files, leftovers of unfinished work, one folder per PO and the report;
online it reads a sample of POs (and every NO_ATTACHMENTS one) again on the site, or with
``api`` compares every PO with Coupa's REST API (``api_check``). Names are
imported on first use (the command line needs only the defaults to build its arguments).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from coupa_async.audit.check import audit
    from coupa_async.audit.findings import AuditReport, Check, Disagreement, Unchecked
    from coupa_async.audit.listing import print_audit

# The command line's defaults, here so that building its arguments loads no audit module.
DEFAULT_SAMPLE = 20
DEFAULT_SETTLE_S = 30.0

_EXPORTS = {
    "AuditReport": "coupa_async.audit.findings",
    "Check": "coupa_async.audit.findings",
    "Disagreement": "coupa_async.audit.findings",
    "Unchecked": "coupa_async.audit.findings",
    "audit": "coupa_async.audit.check",
    "print_audit": "coupa_async.audit.listing",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


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
