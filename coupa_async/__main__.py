"""``python -m coupa_async``."""

from coupa_async.cli import entry

entry()
