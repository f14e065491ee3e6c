"""coupa_async: download the attachments of many Coupa purchase orders at once.

Importing the package starts nothing and reads no environment; ``load_settings`` reads the
configuration sources when you call it.
"""

from coupa_async.coupa.job import PoTask
from coupa_async.coupa.numbers import InvalidPoNumber, PoNumber, parse_po_number
from coupa_async.downloader import Downloader
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
from coupa_async.pool import PoolStatus, WorkerStatus
from coupa_async.result import FileProblem, Outcome, PoResult, SavedFile
from coupa_async.settings import LoadedSettings, Settings, load_settings

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
