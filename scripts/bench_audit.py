"""Benchmark of the audit (not a test): what one audit costs per 1,000 POs, offline and online.

Runs the simulator in its own process (uniform catalog: every PO three 50 KB PDFs, latency
off), the real command line once to make an output folder, then the audit in this process:
offline twice (the second with the files in the page cache), and online with two sample sizes,
so the cost of one PO read again and the fixed cost (browser start, sign-in) can be told apart.
Loopback only, bounded in time.

    .venv/bin/python scripts/bench_audit.py [--pos 1000] [--workers 4] [--samples 20 100]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from benchkit import simulator, start_run, write_po_input

from coupa_async.audit import AuditReport, audit
from coupa_async.log import configure_logging
from coupa_async.settings import Settings, load_settings

FIRST_PO = 15262984
RUN_LIMIT_S = 900


def make_output(base_url: str, pos: int, workers: int, work: Path) -> tuple[Path, float]:
    """Run the command line over the whole catalog; return the output folder and the time."""
    source = write_po_input(work / "pos.csv", range(FIRST_PO, FIRST_PO + pos))
    out = work / "out"
    started = time.monotonic()
    process = start_run(source, base_url, out, work, "--workers", str(workers))
    try:
        process.wait(timeout=RUN_LIMIT_S)
    except Exception:
        process.kill()
        raise SystemExit(f"the run took over {RUN_LIMIT_S} s; stopped") from None
    took = time.monotonic() - started
    if process.returncode != 0:
        tail = (process.stdout.read() if process.stdout else "").strip().splitlines()[-3:]
        raise SystemExit(f"the run exited {process.returncode}: {tail}")
    return out, took


def audit_settings(base_url: str, out: Path, work: Path) -> Settings:
    config = work / "empty.config"
    config.write_text("")
    return load_settings(
        {
            "base_url": base_url,
            "username": "buyer@example.com",
            "password": "coupa-sim-password",
            "out": str(out),
            "storage_state": str(out.with_name(f"{out.name}-state.json")),
        },
        config_file=config,
        env_file=work / "absent.env",
        environ={},
    ).settings


async def timed(settings: Settings, **options: object) -> tuple[AuditReport, float]:
    started = time.monotonic()
    report = await audit(settings, seed=1, **options)  # type: ignore[arg-type]
    took = time.monotonic() - started
    if report.disagreements or report.unchecked:
        raise SystemExit(f"the audit of a clean run found {len(report.disagreements)} problems")
    return report, took


async def bench(settings: Settings, pos: int, samples: list[int]) -> None:
    per_k = 1000 / pos
    for label in ("offline, first", "offline, again"):
        report, took = await timed(settings, offline=True)
        print(
            f"{label}: {took:.2f} s for {report.settled} POs, {report.files_hashed} files "
            f"({report.bytes_hashed / 1e6:.0f} MB hashed): {took * per_k:.2f} s per 1,000 POs"
        )
    online: list[tuple[int, float]] = []
    for sample in samples:
        report, took = await timed(settings, offline=False, sample=sample)
        reads = report.online_checked
        online.append((reads, report.online_s))
        print(
            f"online, sample {sample}: {took:.1f} s in all, of which {report.online_s:.1f} s "
            f"online for {reads} POs read again"
        )
    if len(online) >= 2 and online[-1][0] != online[0][0]:
        (n1, t1), (n2, t2) = online[0], online[-1]
        per_po = (t2 - t1) / (n2 - n1)
        fixed = t1 - n1 * per_po
        print(
            f"online: {per_po:.2f} s per PO read again (settled render of the PO page), "
            f"{fixed:.1f} s fixed (browser start, sign-in)"
        )
        print(
            f"per 1,000 POs with the default sample of 20 and N POs settled NO_ATTACHMENTS: "
            f"offline + {fixed:.1f} s + (20 + N) x {per_po:.2f} s"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pos", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--samples", type=int, nargs="+", default=[20, 100])
    args = parser.parse_args()
    configure_logging(level="warning")
    with (
        simulator("--pos", str(args.pos), "--profile", "uniform") as base_url,
        tempfile.TemporaryDirectory() as temp,
    ):
        work = Path(temp)
        out, took = make_output(base_url, args.pos, args.workers, work)
        print(f"the run to audit: {args.pos} POs in {took:.0f} s")
        asyncio.run(bench(audit_settings(base_url, out, work), args.pos, args.samples))


if __name__ == "__main__":
    main()
