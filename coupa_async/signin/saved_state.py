"""The saved browser state (cookies) of a tenant: written private to its owner, read back."""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from playwright.async_api import BrowserContext

from coupa_async.log import add_known_secret, get_logger
from coupa_async.settings import Settings, default_storage_state

log = get_logger(__name__)


def write_private_json(path: Path, data: Any) -> None:
    """Write JSON readable by its owner only, atomically (temporary file, then rename)."""
    path = path.expanduser()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise


async def save_storage_state(context: BrowserContext, path: Path) -> dict[str, Any]:
    """Save the context's cookies and local storage to ``path`` with mode 0600.

    The tool's own folder (``~/.coupa_async``) is kept at mode 0700 too.
    """
    state = await context.storage_state()
    await asyncio.to_thread(write_state, path, state)
    log.info("storage_state_saved", path=str(path), cookies=len(state.get("cookies", [])))
    return dict(state)


def write_state(path: Path, state: Any) -> None:
    write_private_json(path, state)
    folder = path.expanduser().parent
    if folder == default_storage_state(None).parent:
        os.chmod(folder, 0o700)


def load_storage_state(path: Path) -> dict[str, Any] | None:
    """The saved sign-in, or None when there is none (or it cannot be read as one)."""
    path = path.expanduser()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        log.warning("storage_state_unreadable", path=str(path), error=type(exc).__name__)
        return None
    return data if isinstance(data, dict) and "cookies" in data else None


def _holds_cookies_for(state: dict[str, Any], host: str) -> bool:
    for cookie in state.get("cookies", []):
        if not isinstance(cookie, dict):
            continue
        domain = str(cookie.get("domain", "")).lstrip(".").lower()
        if domain and (host == domain or host.endswith(f".{domain}")):
            return True
    return False


def adopt_legacy_state(settings: Settings) -> Path | None:
    """Move the single session file of earlier versions to this tenant's name, if it is its.

    Earlier versions kept one ``storage_state.json`` for every tenant. When this tenant has no
    file of its own yet (and no path is configured), and the old file holds cookies of this
    tenant's host, it becomes this tenant's file; a file of another tenant is left alone.
    Returns the adopted path, or None.
    """
    if not settings.base_url or settings.storage_state != default_storage_state(settings.base_url):
        return None
    path = settings.storage_state.expanduser()
    legacy = default_storage_state(None).expanduser()
    if path == legacy or path.exists() or not legacy.is_file():
        return None
    state = load_storage_state(legacy)
    host = (urlsplit(settings.base_url).hostname or "").lower()
    if state is None or not _holds_cookies_for(state, host):
        return None
    os.replace(legacy, path)
    os.chmod(path, 0o600)
    log.info("storage_state_adopted", old=str(legacy), new=str(path))
    return path


def load_tenant_state(settings: Settings) -> dict[str, Any] | None:
    """The saved sign-in of the configured tenant (adopting an older single file), or None.

    Its cookie values are added to the secrets that logs and messages never show.
    """
    adopt_legacy_state(settings)
    state = load_storage_state(settings.storage_state)
    for cookie in (state or {}).get("cookies", []):
        if isinstance(cookie, dict):
            add_known_secret(str(cookie.get("value", "")))
    return state
