"""The ``coupa-async`` command: a thin shell over the library. Signal handling lives here only."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import socket
import sqlite3
import ssl
import sys
from collections.abc import Awaitable, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import structlog
from rich.console import Console
from rich.table import Table

from coupa_async.errors import CoupaAsyncError, ExitCode, JournalError, missing_base_url
from coupa_async.log import configure_logging, error_summary, get_logger, public_text
from coupa_async.running.stop_deadline import StopDeadline, closing_deadline_s
from coupa_async.settings import LoadedSettings, Settings, describe, load_settings
from coupa_async.terminal_text import printable, safe_text


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
    _add_run(commands.add_parser("run", help="download the attachments of the POs in INPUT"))
    for name, text in (
        ("status", "what earlier runs into an output folder did"),
        ("report", "write report.html from an output folder's journal (also while a run goes on)"),
    ):
        folder_command = commands.add_parser(name, help=text)
        folder_command.add_argument("--out", type=Path, help=OUT_HELP)
        _common(folder_command)
    _add_audit(
        commands.add_parser(
            "audit", help="prove a run: check its folders, files, report and the site against it"
        )
    )
    login = commands.add_parser("login", help="sign in once and save the session for later runs")
    login.add_argument("--base-url", help=BASE_URL_HELP)
    _browser_flags(login)
    _common(login)
    _add_demo(
        commands.add_parser(
            "demo", help="try it: run against the embedded Coupa simulator, no account needed"
        )
    )
    sim = commands.add_parser("sim", help="run the embedded Coupa simulator")
    add_sim_arguments(sim)
    _common(sim)
    _common(commands.add_parser("config", help="print the effective settings and their sources"))
    browser = commands.add_parser("browser", help="find (and with --install, install) a browser")
    browser.add_argument(
        "--install", action="store_true", help="install Chromium when none is found"
    )
    _browser_flags(browser)
    _common(browser)
    return parser


OUT_HELP = "output folder (default: ./coupa-downloads)"
BASE_URL_HELP = "your tenant, e.g. https://acme.coupahost.com"


def _add_run(run: argparse.ArgumentParser) -> None:
    run.add_argument("input", type=Path, metavar="INPUT", help="CSV file with a PO_NUMBER column")
    run.add_argument("--base-url", help=BASE_URL_HELP)
    run.add_argument("--out", type=Path, help=OUT_HELP)
    run.add_argument("--workers", type=int, help="browser contexts working at once")
    run.add_argument("--min-workers", type=int)
    run.add_argument("--max-workers", type=int)
    run.add_argument("--mode", choices=["auto", "render", "fast"], help="page discovery mode")
    run.add_argument(
        "--emails",
        choices=["pdf", "extract", "both", "off"],
        help="saved .msg/.eml: a PDF beside each, their attachments extracted, both (default), off",
    )
    again = run.add_mutually_exclusive_group()
    again.add_argument(
        "--fresh", action="store_true", help="start over: forget earlier runs (files are kept)"
    )
    again.add_argument(
        "--retry-failed", action="store_true", help="retry only the POs that failed last time"
    )
    _browser_flags(run)
    _common(run)


def _add_audit(audit: argparse.ArgumentParser) -> None:
    from coupa_async.audit import DEFAULT_SAMPLE, DEFAULT_SETTLE_S

    audit.add_argument("--out", type=Path, help=OUT_HELP)
    audit.add_argument("--base-url", help=BASE_URL_HELP)
    where = audit.add_mutually_exclusive_group()
    where.add_argument(
        "--offline", action="store_true", help="check the disk and the report only; open no page"
    )
    where.add_argument(
        "--api",
        action="store_true",
        help="compare every PO with Coupa's REST API instead of its pages (needs api.client_id "
        "and api.client_secret); the files of --sample POs are downloaded and hashed",
    )
    audit.add_argument(
        "--sample",
        type=int,
        default=DEFAULT_SAMPLE,
        metavar="N",
        help="POs read again on the site besides every NO_ATTACHMENTS one; with --api, POs "
        f"whose files are downloaded and hashed (default {DEFAULT_SAMPLE}; 0 for none)",
    )
    audit.add_argument("--seed", type=int, help="seed of the sample, to repeat an audit exactly")
    audit.add_argument(
        "--settle",
        type=float,
        default=DEFAULT_SETTLE_S,
        metavar="SECONDS",
        help=f"longest wait for a page to finish loading (default {DEFAULT_SETTLE_S:g})",
    )
    _browser_flags(audit)
    _common(audit)


def _add_demo(demo: argparse.ArgumentParser) -> None:
    demo.add_argument("--out", type=Path, default=Path("coupa-demo"), help="output folder")
    demo.add_argument(
        "--pos",
        type=int,
        default=None,
        help="POs in the simulated catalog (default: one of each page shape the simulator has)",
    )
    demo.add_argument("--seed", type=int, default=1, help="catalog seed")
    _browser_flags(demo)
    _common(demo)


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
        "emails": "convert.emails",
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
    for key, value, source in describe(loaded):  # values and sources are the user's: text
        table.add_row(safe_text(key), safe_text(value), safe_text(source))
    Console().print(table)
    return ExitCode.OK


def cmd_browser(args: argparse.Namespace) -> int:
    from playwright.sync_api import sync_playwright

    from coupa_async.session.chromium import find_browser

    loaded = _load(args)
    with sync_playwright() as playwright:
        bundled = Path(playwright.chromium.executable_path)
    choice = find_browser(loaded.settings, bundled, install=args.install)
    print(f"browser: {printable(choice.describe())}")
    return ExitCode.OK


def cmd_sim(args: argparse.Namespace) -> int:
    from coupa_async.sim.cli import run_sim

    configure_logging(_load(args).settings.log_format)
    return run_sim(args)


def _loop_error(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """Errors the event loop would print with a traceback ("exception was never retrieved"):
    logged at debug level instead, redacted like every log line."""
    get_logger(__name__).debug(
        "loop_error", message=context.get("message"), exc_info=context.get("exception")
    )


def run_quietly(main: Awaitable[int]) -> int:
    """``asyncio.run(main)`` with the loop's stray errors logged, not printed."""

    async def runner() -> int:
        asyncio.get_running_loop().set_exception_handler(_loop_error)
        return await main

    return asyncio.run(runner())


def run_with_signals(
    main: Callable[[asyncio.Event], Awaitable[int]],
    *,
    grace_s: float = 30.0,
    close_s: float = 10.0,
) -> int:
    """Run ``main(stop)``: the first SIGINT/SIGTERM sets ``stop``, a second cancels at once.

    Whatever the run waits for, the process then ends within the stop's deadlines: ``grace_s``
    for the POs in flight, then the closing of everything (``close_s`` per step); past them it
    is ended (see stop_deadline). The same bound applies to closing after ``main`` returns.
    """
    deadline = StopDeadline(ExitCode.INTERRUPTED)
    closing_s = closing_deadline_s(close_s)

    async def runner() -> int:
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(_loop_error)
        stop = asyncio.Event()
        current = asyncio.current_task()
        hits = 0

        def on_signal() -> None:
            nonlocal hits
            hits += 1
            if hits == 1:
                print(
                    "coupa-async: stopping after the POs in flight (Ctrl+C again to stop now)",
                    file=sys.stderr,
                )
                stop.set()
                deadline.arm(grace_s + closing_s)
            elif current is not None:
                current.cancel()
                deadline.arm(closing_s)

        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, on_signal)
        code: int = ExitCode.INTERRUPTED
        try:
            code = await main(stop)
            return code
        except asyncio.CancelledError:
            print("coupa-async: stopped; run the same command again to resume", file=sys.stderr)
            return ExitCode.INTERRUPTED
        finally:
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(signum)
            # What is left (tasks, threads the loop waits for) ends within the closing deadline.
            deadline.arm(closing_s, exit_code=code)

    try:
        return asyncio.run(runner())
    finally:
        deadline.disarm()  # closed in time (a caller in this process goes on)


def _settings_with_tenant(args: argparse.Namespace) -> Settings:
    settings = _load(args).settings
    if not settings.base_url:
        raise missing_base_url()
    return settings


def cmd_run(args: argparse.Namespace) -> int:
    from coupa_async.running.table_run import load_input, print_summary, run_table

    settings = _settings_with_tenant(args)
    configure_logging(settings.log_format, settings.log_level)
    table = load_input(args.input)
    console = Console()
    for warning in table.warnings:
        print(f"coupa-async: warning: {printable(warning)}", file=sys.stderr)

    async def main(stop: asyncio.Event) -> int:
        summary = await run_table(
            settings,
            table,
            stop=stop,
            console=Console(stderr=True),
            fresh=args.fresh,
            retry_failed=args.retry_failed,
        )
        print_summary(summary, console)
        return summary.exit_code

    with journal_damage(settings.out):
        return run_with_signals(
            main, grace_s=settings.timeouts.shutdown_s, close_s=settings.timeouts.close_s
        )


def cmd_status(args: argparse.Namespace) -> int:
    from coupa_async.results.status_view import print_status

    settings = _load(args).settings
    with journal_damage(settings.out):
        return print_status(settings.out, Console())


def cmd_report(args: argparse.Namespace) -> int:
    from coupa_async.htmlreport import report_data, write_html_report
    from coupa_async.results.journal import Journal

    settings = _load(args).settings
    with journal_damage(settings.out):
        journal = Journal.open_read_only(settings.out)
        try:
            path = write_html_report(settings.out, report_data(journal))
        finally:
            journal.close()
    Console().print(safe_text(f"Report: {path}"))
    return ExitCode.OK


def cmd_audit(args: argparse.Namespace) -> int:
    from coupa_async.audit import audit, print_audit
    from coupa_async.errors import missing_api_client
    from coupa_async.results.journal import JOURNAL_DIR, JOURNAL_NAME
    from coupa_async.session.contact import ensure_contact
    from coupa_async.signin.saved_state import adopt_legacy_state

    settings = _load(args).settings
    configure_logging(settings.log_format, settings.log_level)
    journal = settings.out / JOURNAL_DIR / JOURNAL_NAME
    online = not args.offline and settings.base_url is not None and journal.is_file()
    if args.api and not settings.api.configured:
        raise missing_api_client("audit without --api")
    if online and not args.api:  # else the audit itself says what is missing
        adopt_legacy_state(settings)

    async def main(stop: asyncio.Event) -> int:
        if online and not args.api:  # the API's first contact is its token
            await ensure_contact(settings)
        report = await audit(
            settings,
            sample=args.sample,
            offline=args.offline,
            api=args.api,
            seed=args.seed,
            settle_s=args.settle,
            stop=stop,
        )
        print_audit(report, Console())
        return report.exit_code

    with journal_damage(settings.out):
        return run_with_signals(
            main, grace_s=settings.timeouts.shutdown_s, close_s=settings.timeouts.close_s
        )


def cmd_login(args: argparse.Namespace) -> int:
    from coupa_async.signin.login_command import login

    settings = _settings_with_tenant(args)
    configure_logging(settings.log_format, settings.log_level)
    return run_quietly(login(settings))


def cmd_demo(args: argparse.Namespace) -> int:
    from coupa_async.running.demo import run_demo

    loaded = _load(args)
    configure_logging(loaded.settings.log_format, loaded.settings.log_level)
    timeouts = loaded.settings.timeouts
    return run_with_signals(
        lambda stop: run_demo(
            loaded.settings, out=args.out, pos=args.pos, seed=args.seed, stop=stop
        ),
        grace_s=timeouts.shutdown_s,
        close_s=timeouts.close_s,
    )


COMMANDS = {
    "run": cmd_run,
    "status": cmd_status,
    "report": cmd_report,
    "audit": cmd_audit,
    "login": cmd_login,
    "demo": cmd_demo,
    "sim": cmd_sim,
    "config": cmd_config,
    "browser": cmd_browser,
}


def _innermost(exc: BaseException) -> BaseException:
    """The first leaf of an exception group (a task group's failure), else ``exc``."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


def _journal_problem(exc: sqlite3.DatabaseError, journal: str) -> str:
    """The sentence for a journal SQLite could not use: in use elsewhere, or damaged."""
    what = error_summary(exc)
    if isinstance(exc, sqlite3.OperationalError) and ("locked" in what or "busy" in what):
        return (
            f"The journal {journal} is in use by another program ({what}). Wait until the other "
            "run ends, then run the same command again."
        )
    return (
        f"The journal {journal} is damaged ({what}). Move it aside and run again to start over; "
        "the files already saved stay where they are."
    )


@contextlib.contextmanager
def journal_damage(out: Path) -> Iterator[None]:
    """Turn a SQLite error about the journal of ``out`` that no part of the tool turned into a
    message (journal.py says what it knows itself) into a JournalError naming the file."""
    from coupa_async.results.journal import JOURNAL_DIR, JOURNAL_NAME

    try:
        yield
    except Exception as raised:
        exc = _innermost(raised)
        if not isinstance(exc, sqlite3.DatabaseError):
            raise
        _log_details(exc)
        raise JournalError(_journal_problem(exc, str(out / JOURNAL_DIR / JOURNAL_NAME))) from exc


def explain_unexpected(exc: BaseException) -> str:
    """A calm sentence for an error that no part of the tool turned into a message."""
    import aiohttp
    from playwright.async_api import Error as PlaywrightError

    from coupa_async.session.contact import problem_of_browser_error, problem_of_exception

    network = aiohttp.ClientError | ConnectionError | socket.gaierror | ssl.SSLError | TimeoutError
    problem = problem_of_browser_error(str(exc)) if isinstance(exc, PlaywrightError) else None
    if problem is None and isinstance(exc, network):
        problem = problem_of_exception(exc)[0]
    what = error_summary(exc)
    if isinstance(exc, sqlite3.DatabaseError):  # from a command without journal_damage
        return _journal_problem(exc, "of the output folder (.coupa_async/journal.sqlite3)")
    if problem is not None:
        return (
            f"A network error stopped the work ({problem.value}: {what}). Check the network "
            "connection and the VPN, then run the same command again; a run resumes where it "
            "stopped."
        )
    if isinstance(exc, PlaywrightError):
        return (
            f"The browser reported an error ({what}). Run the same command again; a run "
            "resumes where it stopped."
        )
    if isinstance(exc, OSError):
        return f"A file could not be read or written ({what}). Check the folder and free space."
    return (
        f"Unexpected error ({type(exc).__name__}: {what}). Please report it, with the output "
        "of the same command run with --log-level debug."
    )


def _log_details(exc: BaseException) -> None:
    """With --log-level debug: the traceback, call logs and secrets removed by the log set-up."""
    if structlog.is_configured():
        get_logger(__name__).debug("error_details", exc_info=exc)


# From main's return to the process's end: the interpreter's own shutdown.
EXIT_DEADLINE_S = 30.0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``coupa-async`` and ``python -m coupa_async``.

    Errors end as one sentence on stderr, never a traceback nor a browser's call log.
    """
    args = build_parser().parse_args(argv)
    # Playwright's driver (Node) inherits this process's environment. Young-generation spaces
    # of 1 MB keep its heap about 25 MB smaller on long runs at no measurable cost; a user's
    # own NODE_OPTIONS wins. Only the command line does this: a library leaves os.environ alone.
    os.environ.setdefault("NODE_OPTIONS", "--max-semi-space-size=1")
    try:
        return COMMANDS[args.command](args)
    except KeyboardInterrupt:
        print("coupa-async: interrupted", file=sys.stderr)
        return ExitCode.INTERRUPTED
    except Exception as raised:
        exc = _innermost(raised)
        if isinstance(exc, CoupaAsyncError):
            # Messages may quote a page or a file name: shown, never obeyed by the terminal.
            message = printable(public_text(str(exc)), keep_lines=True)
            print(f"coupa-async: {message}", file=sys.stderr)
            return exc.exit_code
        _log_details(exc)
        print(f"coupa-async: {printable(explain_unexpected(exc))}", file=sys.stderr)
        return ExitCode.ERROR


def entry() -> None:
    """The process's entry (``python -m coupa_async``, ``coupa-async``): ``main``, then an exit
    that nothing left behind (a thread, a child) can hold up past the closing deadline."""
    code = main()
    StopDeadline(code).arm(EXIT_DEADLINE_S)
    sys.exit(code)


if __name__ == "__main__":
    entry()
