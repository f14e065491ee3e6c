"""The ``coupa-async`` command: a thin shell over the library. Signal handling lives here only."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from coupa_async.errors import CoupaAsyncError
from coupa_async.log import configure_logging
from coupa_async.settings import LoadedSettings, describe, load_settings

EXIT_OK = 0
EXIT_USAGE = 2


def _common(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("configuration")
    group.add_argument("--config", type=Path, help="TOML file (default: ./playwright.config)")
    group.add_argument("--env-file", type=Path, help="dotenv file (default: ./.env)")
    group.add_argument("--log-format", choices=["console", "json"], help="log lines on stderr")
    group.add_argument("--log-level", choices=["debug", "info", "warning", "error"])


def _browser_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("browser")
    group.add_argument("--headed", action="store_true", default=None, help="show the browser")
    group.add_argument("--channel", help="use an installed msedge or chrome")
    group.add_argument("--executable-path", type=Path, help="path of a browser binary")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    from coupa_async.sim.cli import add_sim_arguments

    parser = argparse.ArgumentParser(
        prog="coupa-async",
        description="Download the attachments of many Coupa purchase orders at once.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    demo = commands.add_parser(
        "demo", help="try it: run against the embedded Coupa simulator, no account needed"
    )
    demo.add_argument("--out", type=Path, default=Path("coupa-demo"), help="output folder")
    demo.add_argument("--pos", type=int, default=40, help="POs in the simulated catalog")
    demo.add_argument("--seed", type=int, default=1, help="catalog seed")
    _browser_flags(demo)
    _common(demo)

    sim = commands.add_parser("sim", help="run the embedded Coupa simulator")
    add_sim_arguments(sim)
    _common(sim)

    config = commands.add_parser("config", help="print the effective settings and their sources")
    _common(config)

    browser = commands.add_parser("browser", help="find (and with --install, install) a browser")
    browser.add_argument(
        "--install", action="store_true", help="install Chromium when none is found"
    )
    _browser_flags(browser)
    _common(browser)
    return parser


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    mapping = {
        "log_format": "log_format",
        "log_level": "log_level",
        "channel": "browser.channel",
        "executable_path": "browser.executable_path",
        "base_url": "base_url",
        "out": "out",
        "workers": "workers",
        "min_workers": "min_workers",
        "max_workers": "max_workers",
        "mode": "mode",
    }
    overrides = {key: getattr(args, attr) for attr, key in mapping.items() if hasattr(args, attr)}
    if getattr(args, "headed", None):
        overrides["browser.headless"] = False
    return overrides


def _load(args: argparse.Namespace) -> LoadedSettings:
    return load_settings(_overrides(args), config_file=args.config, env_file=args.env_file)


def cmd_config(args: argparse.Namespace) -> int:
    loaded = _load(args)
    table = Table(title="coupa_async settings", show_lines=False)
    table.add_column("setting")
    table.add_column("value", overflow="fold")
    table.add_column("from")
    for key, value, source in describe(loaded):
        table.add_row(key, value, source)
    Console().print(table)
    return EXIT_OK


def cmd_browser(args: argparse.Namespace) -> int:
    from playwright.sync_api import sync_playwright

    from coupa_async.browser import find_browser

    loaded = _load(args)
    with sync_playwright() as playwright:
        bundled = Path(playwright.chromium.executable_path)
    choice = find_browser(loaded.settings, bundled, install=args.install)
    print(f"browser: {choice.describe()}")
    return EXIT_OK


def cmd_sim(args: argparse.Namespace) -> int:
    from coupa_async.sim.cli import run_sim

    configure_logging(_load(args).settings.log_format)
    return run_sim(args)


def cmd_demo(args: argparse.Namespace) -> int:
    from coupa_async.demo import run_demo

    loaded = _load(args)
    configure_logging(loaded.settings.log_format, loaded.settings.log_level)
    return asyncio.run(run_demo(loaded.settings, out=args.out, pos=args.pos, seed=args.seed))


COMMANDS = {"config": cmd_config, "browser": cmd_browser, "sim": cmd_sim, "demo": cmd_demo}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``coupa-async`` and ``python -m coupa_async``."""
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except CoupaAsyncError as exc:
        print(f"coupa-async: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("coupa-async: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
