"""Command-line front of the simulator: `python -m coupa_async.sim` (and the main CLI's `sim`)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, cast

from .config import DEFAULT_PASSWORD, DEFAULT_USERNAME, PROFILES, SimConfig
from .faults import DEFAULT_FAULT_KINDS, Faults
from .outages import OUTAGE_MODES, Outage, OutageMode

if TYPE_CHECKING:
    from .server import Simulator


def add_sim_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the simulator's options to `parser`."""
    d = SimConfig()
    f = Faults()
    g = parser.add_argument_group("simulator")
    g.add_argument("--host", default=d.host, help="address to bind (default %(default)s)")
    g.add_argument("--port", type=int, default=d.port, help="port; 0 picks a free one")
    g.add_argument("--seed", type=int, default=d.seed, help="catalog seed (default %(default)s)")
    g.add_argument("--pos", type=int, default=d.pos, help="number of POs (default %(default)s)")
    g.add_argument(
        "--profile",
        choices=PROFILES,
        default=d.profile,
        help="varied: every page shape; uniform: alike POs; hostile: one PO per way a hostile "
        "server can hurt a run (coupa_async/sim/hostile.py)",
    )
    g.add_argument(
        "--recipes",
        default=None,
        metavar="NAME,NAME,...",
        help="varied profile: the recipe of each PO in order, cycled (default: every recipe); "
        "hostile profile: the hostile cases to hold, in this order (default: all)",
    )
    g.add_argument("--uniform-files", type=int, default=d.uniform_files, help="files per PO")
    g.add_argument(
        "--uniform-file-size", type=int, default=d.uniform_file_size, help="bytes per file"
    )
    g.add_argument("--username", default=DEFAULT_USERNAME)
    g.add_argument("--password", default=DEFAULT_PASSWORD)
    g.add_argument("--sso", action="store_true", help="sign in through a fake identity provider")
    g.add_argument("--session-ttl", type=float, default=None, metavar="SECONDS")
    g.add_argument("--session-max-requests", type=int, default=None, metavar="N")
    g = parser.add_argument_group("hostile profile", "Sizes of the hostile cases, in bytes.")
    g.add_argument(
        "--hostile-page-size",
        type=_size,
        default=d.hostile_page_size,
        metavar="BYTES",
        help="hostile_huge_page's body ('endless' for no end; default %(default)s)",
    )
    g.add_argument(
        "--hostile-file-size",
        type=int,
        default=d.hostile_file_size,
        metavar="BYTES",
        help="hostile_huge_file's declared length (default %(default)s)",
    )
    g.add_argument(
        "--hostile-bomb-size",
        type=int,
        default=d.hostile_bomb_size,
        metavar="BYTES",
        help="what the gzip bombs expand to (default %(default)s)",
    )
    g.add_argument(
        "--hostile-stall-after",
        type=int,
        default=d.hostile_stall_after,
        metavar="BYTES",
        help="bytes hostile_stalled_file sends before it falls silent (default %(default)s)",
    )
    g.add_argument(
        "--hostile-retry-after",
        default=d.hostile_retry_after,
        metavar="VALUE",
        help="raw Retry-After of hostile_other_host_429 (default %(default)s)",
    )
    g.add_argument(
        "--hostile-retry-times",
        type=int,
        default=d.hostile_retry_times,
        metavar="N",
        help="429 answers of hostile_other_host_429 before its file (default %(default)s)",
    )
    g = parser.add_argument_group("simulator faults")
    g.add_argument("--latency-ms", type=float, default=f.latency_ms)
    g.add_argument("--jitter-ms", type=float, default=f.jitter_ms)
    g.add_argument("--error-rate", type=float, default=f.error_rate, help="share of 500/503")
    g.add_argument("--rate-limit-rate", type=float, default=f.rate_limit_rate, help="share of 429")
    g.add_argument("--retry-after", type=float, default=f.retry_after_seconds, metavar="SECONDS")
    g.add_argument("--hang-rate", type=float, default=f.hang_rate)
    g.add_argument(
        "--hang-seconds", type=float, default=None, help="default: until the client gives up"
    )
    g.add_argument("--reset-rate", type=float, default=f.reset_rate, help="share of cut downloads")
    g.add_argument(
        "--fault-kinds",
        default=",".join(DEFAULT_FAULT_KINDS),
        help="request kinds faults apply to (default %(default)s)",
    )

    g = parser.add_argument_group(
        "simulator outages",
        "The whole tenant goes down for a while. Modes: refuse (port closed, connecting is "
        "refused), reset (each connection reset), maintenance (HTTP 503, Coupa's maintenance "
        "page), proxy_502 / proxy_504 (a corporate proxy's error page), hang (requests held "
        "unanswered until the outage ends, then answered). Control a running simulator with "
        'POST /__sim/outage {"mode": MODE, "seconds": S, "retry_after": R} '
        '({"mode": null} or DELETE /__sim/outage ends it; GET shows it). In refuse mode the '
        "main port is closed: use --control-port.",
    )
    g.add_argument(
        "--outage",
        action="append",
        default=[],
        metavar="MODE:AFTER[:SECONDS[:RETRY_AFTER]]",
        help="schedule an outage (repeatable). AFTER: '10' or '10s' = seconds after the first "
        "PO page was answered; '5po' = right after the 5th PO page was answered. SECONDS: how "
        "long (omitted: until ended over the control endpoint). RETRY_AFTER: Retry-After "
        "header of the maintenance and proxy pages. E.g. refuse:20po:5, maintenance:30:10:60",
    )
    g.add_argument(
        "--control-port",
        type=int,
        default=None,
        metavar="PORT",
        help="also serve the /__sim/* endpoints alone on this port (0 picks a free one), which "
        "stays up during every outage: POST/DELETE http://HOST:PORT/__sim/outage",
    )
    g.add_argument(
        "--page-weight",
        choices=("bare", "realistic"),
        default="bare",
        help="realistic: every signed-in page is heavy (assets, polls, analytics, a long-poll)",
    )


def parse_outage(spec: str) -> Outage:
    """`MODE:AFTER[:SECONDS[:RETRY_AFTER]]` (see `--outage`) as an `Outage`."""
    parts = [part.strip() for part in spec.split(":")]
    if not 2 <= len(parts) <= 4:
        raise ValueError(f"--outage {spec!r}: expected MODE:AFTER[:SECONDS[:RETRY_AFTER]]")
    parts += [""] * (4 - len(parts))
    mode, after, seconds, retry_after = parts[0], parts[1].lower(), parts[2], parts[3]
    if mode not in OUTAGE_MODES:
        raise ValueError(f"--outage {spec!r}: mode must be one of {', '.join(OUTAGE_MODES)}")
    try:
        by_requests = after.endswith("po")
        return Outage(
            mode=cast(OutageMode, mode),
            after_s=None if by_requests else float(after.removesuffix("s")),
            after_requests=int(after.removesuffix("po")) if by_requests else None,
            seconds=float(seconds) if seconds else None,
            retry_after=float(retry_after) if retry_after else None,
        )
    except ValueError as exc:
        raise ValueError(f"--outage {spec!r}: {exc}") from None


def config_from_args(args: argparse.Namespace) -> SimConfig:
    """The `SimConfig` described by parsed `add_sim_arguments` options."""
    faults = Faults(
        latency_ms=args.latency_ms,
        jitter_ms=args.jitter_ms,
        error_rate=args.error_rate,
        rate_limit_rate=args.rate_limit_rate,
        retry_after_seconds=args.retry_after,
        hang_rate=args.hang_rate,
        hang_seconds=args.hang_seconds,
        reset_rate=args.reset_rate,
        kinds=tuple(k.strip() for k in args.fault_kinds.split(",") if k.strip()),
    )
    return SimConfig(
        host=args.host,
        port=args.port,
        seed=args.seed,
        pos=args.pos,
        username=args.username,
        password=args.password,
        sso=args.sso,
        session_ttl_seconds=args.session_ttl,
        session_max_requests=args.session_max_requests,
        profile=args.profile,
        recipes=_names(args.recipes),
        uniform_files=args.uniform_files,
        uniform_file_size=args.uniform_file_size,
        faults=faults,
        outages=tuple(parse_outage(spec) for spec in args.outage),
        control_port=args.control_port,
        page_weight=args.page_weight,
        hostile_page_size=args.hostile_page_size,
        hostile_file_size=args.hostile_file_size,
        hostile_bomb_size=args.hostile_bomb_size,
        hostile_stall_after=args.hostile_stall_after,
        hostile_retry_after=args.hostile_retry_after,
        hostile_retry_times=args.hostile_retry_times,
    )


def _size(text: str) -> int | None:
    """A byte count, or None for 'endless'."""
    return None if text.strip().lower() in ("endless", "none") else int(text)


def _names(text: str | None) -> tuple[str, ...] | None:
    """`a, b,c` as ("a", "b", "c"); None stays None."""
    if text is None:
        return None
    return tuple(name.strip() for name in text.split(",") if name.strip())


def describe(sim: Simulator) -> str:
    """What a person needs to use a running simulator."""
    s = sim.catalog.summary()
    outcomes = ", ".join(f"{k} {v}" for k, v in s["outcomes"].items())
    lines = [
        f"Coupa simulator listening on {sim.base_url}",
        f"  sign in:  {sim.username} / {sim.password}"
        + ("  (SSO through the fake identity provider)" if sim.config.sso else ""),
        f"  catalog:  seed {s['seed']}, {s['profile']} profile, {s['pos']} POs "
        f"({s['first_po']}..{s['last_po']}), {s['requisitions']} requisitions, "
        f"{s['files']} files, {s['bytes'] / 1e6:.1f} MB",
        f"  expected: {outcomes}",
        f"  stats:    {sim.base_url}/__sim/stats   catalog: {sim.base_url}/__sim/catalog",
    ]
    if sim.config.profile == "hostile":
        lines += [
            f"  PO{po.number}  {po.recipe:<28} expected {po.expected_outcome}"
            for po in sim.catalog.pos
        ]
    if sim.config.outages:
        lines.append("  outages:  " + "; ".join(o.describe() for o in sim.config.outages))
    if sim.config.control_port is not None:
        lines.append(
            f'  control:  {sim.control_url}/__sim/outage  (POST {{"mode": ..., '
            '"seconds": ...}; DELETE ends it; up during every outage)'
        )
    lines.append("Press Ctrl+C to stop.")
    return "\n".join(lines)


async def _serve(config: SimConfig) -> None:
    from .runner import run_forever  # the aiohttp server only when it is served

    task = asyncio.current_task()
    loop = asyncio.get_running_loop()
    if task is not None:
        # Both signals explicitly: a process started in the background of a shell inherits
        # SIGINT as ignored, and Python then raises no KeyboardInterrupt.
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):  # no such handlers on Windows
                loop.add_signal_handler(signum, task.cancel)
    await run_forever(config, on_ready=lambda sim: print(describe(sim), flush=True))


def run_sim(args: argparse.Namespace) -> int:
    """Run the simulator described by `args` until Ctrl+C (or SIGTERM); returns an exit code."""
    try:
        config = config_from_args(args)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        asyncio.run(_serve(config))
    except (KeyboardInterrupt, asyncio.CancelledError):
        pass
    except OSError as exc:
        print(f"error: cannot serve on {config.host}:{config.port}: {exc}", file=sys.stderr)
        return 1
    print("Coupa simulator stopped.", flush=True)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `python -m coupa_async.sim`."""
    parser = argparse.ArgumentParser(
        prog="python -m coupa_async.sim", description="Run the embedded Coupa simulator."
    )
    add_sim_arguments(parser)
    return run_sim(parser.parse_args(argv))
