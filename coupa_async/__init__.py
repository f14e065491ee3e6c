"""coupa_async: download the attachments of many Coupa purchase orders at once.

Importing the package starts nothing and reads no environment; ``load_settings`` reads the
configuration sources when you call it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from coupa_async.coupa.numbers import InvalidPoNumber, PoNumber, parse_po_number
    from coupa_async.coupa.po_steps import PoTask
    from coupa_async.errors import (
        AuthenticationError,
        BrowserLaunchError,
        BrowserNotFoundError,
        ConfigurationError,
        CoupaAsyncError,
        InputFileError,
        OutageGiveUpError,
        RunStoppedError,
        SignInRefusedError,
        TenantUnreachableError,
    )
    from coupa_async.results.result import FileProblem, Outcome, PoResult, SavedFile
    from coupa_async.running.downloader import Downloader
    from coupa_async.running.run_status import PoolStatus, WorkerStatus
    from coupa_async.settings import LoadedSettings, Settings, load_settings

_EXPORTS = {
    "AuthenticationError": "coupa_async.errors",
    "BrowserLaunchError": "coupa_async.errors",
    "BrowserNotFoundError": "coupa_async.errors",
    "ConfigurationError": "coupa_async.errors",
    "CoupaAsyncError": "coupa_async.errors",
    "Downloader": "coupa_async.running.downloader",
    "FileProblem": "coupa_async.results.result",
    "InputFileError": "coupa_async.errors",
    "InvalidPoNumber": "coupa_async.coupa.numbers",
    "LoadedSettings": "coupa_async.settings",
    "OutageGiveUpError": "coupa_async.errors",
    "Outcome": "coupa_async.results.result",
    "PoNumber": "coupa_async.coupa.numbers",
    "PoResult": "coupa_async.results.result",
    "PoTask": "coupa_async.coupa.po_steps",
    "PoolStatus": "coupa_async.running.run_status",
    "RunStoppedError": "coupa_async.errors",
    "SavedFile": "coupa_async.results.result",
    "Settings": "coupa_async.settings",
    "SignInRefusedError": "coupa_async.errors",
    "TenantUnreachableError": "coupa_async.errors",
    "WorkerStatus": "coupa_async.running.run_status",
    "load_settings": "coupa_async.settings",
    "parse_po_number": "coupa_async.coupa.numbers",
}


def __getattr__(name: str) -> Any:
    # Imported on first use, so that a process needing one module (the e-mail converter's)
    # does not load the browser's.
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'coupa_async' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__version__ = "0.1.0"

__all__ = [
    "AuthenticationError",
    "BrowserLaunchError",
    "BrowserNotFoundError",
    "ConfigurationError",
    "CoupaAsyncError",
    "Downloader",
    "FileProblem",
    "InputFileError",
    "InvalidPoNumber",
    "LoadedSettings",
    "OutageGiveUpError",
    "Outcome",
    "PoNumber",
    "PoResult",
    "PoTask",
    "PoolStatus",
    "RunStoppedError",
    "SavedFile",
    "Settings",
    "SignInRefusedError",
    "TenantUnreachableError",
    "WorkerStatus",
    "__version__",
    "load_settings",
    "parse_po_number",
]
