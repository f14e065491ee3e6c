"""Coupa's REST API: a client-credentials token, one rate limiter per run, and the calls the
tool makes (POs by number, their attachments and their requisition's, file downloads).

``async with ApiClient.open(settings) as api: await api.check_access()`` opens it; see
``client.py``. The browser path stays for users without an API client and for what the API
cannot serve.
"""

from coupa_async.api.client import ApiClient, Lookup
from coupa_async.api.files import Received
from coupa_async.api.limiter import RateLimiter
from coupa_async.api.models import (
    ApiAttachment,
    ApiPo,
    ApiRequisition,
    NotAllowed,
    RequisitionRef,
    normal_number,
)
from coupa_async.api.po_steps import ApiCannotServe, ApiJobEnv, process_po_api
from coupa_async.api.token import TokenSource

__all__ = [
    "ApiAttachment",
    "ApiCannotServe",
    "ApiClient",
    "ApiJobEnv",
    "ApiPo",
    "ApiRequisition",
    "Lookup",
    "NotAllowed",
    "RateLimiter",
    "Received",
    "RequisitionRef",
    "TokenSource",
    "normal_number",
    "process_po_api",
]
