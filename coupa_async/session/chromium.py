"""Find a browser, launch it with the flags it needs, and make contexts from the saved sign-in.

Discovery order: an explicitly configured executable or channel, Playwright's own Chromium,
``playwright install chromium`` (only when asked to install), a Chromium/Chrome/Edge on PATH,
and as root on Debian/Ubuntu ``apt-get install -y chromium`` (only when asked to install).

No process started here sees our secrets (``coupa_async.session.child_env``): start
Playwright's driver with :func:`start_playwright`, not ``async_playwright()``.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playwright.async_api import Browser, BrowserContext, Playwright, async_playwright

from coupa_async.errors import BrowserLaunchError, BrowserNotFoundError
from coupa_async.log import error_summary, get_logger
from coupa_async.session.child_env import child_environ, scrubbed_environ
from coupa_async.session.network import browser_proxy, browser_trust_flags
from coupa_async.settings import Settings

log = get_logger(__name__)

# Without these Chromium keeps trying to reach the internet (updates, sync, field trials).
QUIET_FLAGS = (
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-default-apps",
    "--disable-dev-shm-usage",
)
# Without a screen nothing is drawn on a GPU: a smaller GPU process (about 12 MB less).
HEADLESS_FLAGS = ("--disable-gpu", "--disable-software-rasterizer")
SYSTEM_BROWSERS = (
    "chromium",
    "chromium-browser",
    "google-chrome",
    "google-chrome-stable",
    "chrome",
    "microsoft-edge",
    "microsoft-edge-stable",
    "msedge",
)
KNOWN_CHANNELS = ("chrome", "chrome-beta", "chrome-dev", "msedge", "msedge-beta", "msedge-dev")


@dataclass(frozen=True)
class BrowserChoice:
    """The browser to launch: either an executable path or a Playwright channel."""

    how: str
    executable_path: Path | None = None
    channel: str | None = None
    tried: tuple[str, ...] = field(default=(), compare=False)

    def describe(self) -> str:
        target = self.channel or self.executable_path or "Playwright's Chromium"
        return f"{target} ({self.how})"


def running_as_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def launch_flags(settings: Settings) -> list[str]:
    """Command-line flags for Chromium: quiet flags, no GPU when headless, ``--no-sandbox`` as
    root, the keys of ``network.ca_bundle`` (reads that file), the user's own."""
    flags = list(QUIET_FLAGS)
    if settings.browser.headless:
        flags.extend(HEADLESS_FLAGS)
    if running_as_root():
        flags.append("--no-sandbox")
    flags.extend(browser_trust_flags(settings.network))
    flags.extend(arg for arg in settings.browser.args if arg not in flags)
    return flags


def find_browser(settings: Settings, bundled: Path, *, install: bool = False) -> BrowserChoice:
    """Pick a browser by the documented order; raise BrowserNotFoundError saying what was tried.

    ``bundled`` is where Playwright's own Chromium lives (``playwright.chromium.executable_path``).
    Installing (with ``install=True``) may take minutes: call it outside an event loop.
    """
    tried: list[str] = []
    options = settings.browser
    if options.executable_path is not None:
        path = options.executable_path.expanduser()
        if path.is_file() and os.access(path, os.X_OK):
            return BrowserChoice("configured executable", executable_path=path)
        raise BrowserNotFoundError(
            f"The configured browser executable {path} does not exist or is not executable. "
            "Fix browser.executable_path (COUPA_BROWSER__EXECUTABLE_PATH) or remove it."
        )
    if options.channel:
        if options.channel not in KNOWN_CHANNELS:
            raise BrowserNotFoundError(
                f"Unknown browser channel '{options.channel}'. Use one of "
                f"{', '.join(KNOWN_CHANNELS)}, or set browser.executable_path instead."
            )
        return BrowserChoice("configured channel", channel=options.channel)

    if bundled.is_file():
        return BrowserChoice("Playwright's Chromium", executable_path=bundled)
    tried.append(f"Playwright's Chromium at {bundled}: not installed")

    if install:
        ok, detail = _run([sys.executable, "-m", "playwright", "install", "chromium"])
        if ok and bundled.is_file():
            return BrowserChoice("installed by playwright install", executable_path=bundled)
        tried.append(f"python -m playwright install chromium: {detail}")

    system = _system_browser()
    if system is not None:
        return BrowserChoice("found on PATH", executable_path=system, tried=tuple(tried))
    tried.append(f"a browser on PATH ({', '.join(SYSTEM_BROWSERS)}): none found")

    if install and running_as_root() and shutil.which("apt-get"):
        ok, detail = _run(["apt-get", "install", "-y", "chromium"])
        if not ok:
            _run(["apt-get", "update"])
            ok, detail = _run(["apt-get", "install", "-y", "chromium"])
        system = _system_browser()
        if system is not None:
            return BrowserChoice("installed with apt-get", executable_path=system)
        tried.append(f"apt-get install -y chromium: {detail}")
    elif install:
        tried.append("apt-get install -y chromium: skipped (needs root on Debian/Ubuntu)")

    raise BrowserNotFoundError(
        "No browser found. Tried:\n  - "
        + "\n  - ".join(tried)
        + "\nInstall Chromium, Chrome or Edge, or set"
        " COUPA_BROWSER__EXECUTABLE_PATH=/path/to/browser or COUPA_BROWSER__CHANNEL=msedge"
        " (or chrome), or executable_path / channel under"
        " [browser] in playwright.config."
    )


def _system_browser() -> Path | None:
    for name in SYSTEM_BROWSERS:
        found = shutil.which(name)
        if found:
            return Path(found)
    return None


def _run(command: list[str]) -> tuple[bool, str]:
    """Run an installer; it downloads through the user's proxy, credentials included."""
    env = child_environ(proxy="keep")
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=900, check=False, env=env
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, str(exc)
    if done.returncode == 0:
        return True, "ok"
    last = (done.stderr or done.stdout).strip().splitlines()[-1:] or [""]
    return False, f"exit {done.returncode}: {last[0][:200]}"


@asynccontextmanager
async def start_playwright() -> AsyncIterator[Playwright]:
    """Playwright's driver (a Node process), stopped on exit, started without our secrets.

    The driver copies ``os.environ`` as it starts and takes no environment of its own, so
    ``os.environ`` is scrubbed (``COUPA_*`` gone, proxy credentials cut) for the start only.
    """
    with scrubbed_environ(proxy="without_credentials"):
        playwright = await async_playwright().start()
    try:
        yield playwright
    finally:
        await playwright.stop()


async def launch_browser(
    playwright: Playwright, settings: Settings, choice: BrowserChoice | None = None
) -> Browser:
    """Launch the chosen (or discovered) browser with the flags these machines need."""
    choice = choice or find_browser(settings, Path(playwright.chromium.executable_path))
    kwargs: dict[str, Any] = {
        "headless": settings.browser.headless,
        "args": await asyncio.to_thread(launch_flags, settings),
        "timeout": settings.timeouts.launch_s * 1000,
        "handle_sigint": False,
        "handle_sigterm": False,
        "handle_sighup": False,
        # Instead of the driver's environment: no secrets, and no proxy variables (the proxy,
        # credentials included, is the ``proxy`` option below).
        "env": child_environ(proxy="drop"),
    }
    proxy = browser_proxy(settings.network)
    if proxy is not None:
        kwargs["proxy"] = proxy
    if choice.channel:
        kwargs["channel"] = choice.channel
    elif choice.executable_path:
        kwargs["executable_path"] = str(choice.executable_path)
    try:
        browser = await playwright.chromium.launch(**kwargs)
    except Exception as exc:
        raise BrowserLaunchError(
            f"Could not start {choice.describe()}: {error_summary(exc).rstrip('.')}. "
            "Set COUPA_BROWSER__EXECUTABLE_PATH to another browser, or run scripts/demo once "
            "to install Chromium."
        ) from exc
    log.debug(
        "browser_launched",
        browser=choice.describe(),
        version=browser.version,
        proxy=proxy["server"] if proxy else None,
    )
    return browser


def context_options(settings: Settings, storage_state: Path | dict[str, Any] | None) -> dict:
    """Keyword arguments for ``browser.new_context`` from the settings."""
    options: dict[str, Any] = {
        "viewport": {
            "width": settings.context.viewport_width,
            "height": settings.context.viewport_height,
        },
        "locale": settings.context.locale,
        "accept_downloads": True,
    }
    if settings.context.user_agent:
        options["user_agent"] = settings.context.user_agent
    if isinstance(storage_state, dict):
        options["storage_state"] = storage_state
    elif storage_state is not None and Path(storage_state).is_file():
        options["storage_state"] = str(storage_state)
    return options


async def new_context(
    browser: Browser, settings: Settings, storage_state: Path | dict[str, Any] | None = None
) -> BrowserContext:
    """A context with the saved sign-in (when there is one) and the configured options."""
    context = await browser.new_context(**context_options(settings, storage_state))
    context.set_default_navigation_timeout(settings.timeouts.navigation_s * 1000)
    context.set_default_timeout(settings.timeouts.navigation_s * 1000)
    return context
