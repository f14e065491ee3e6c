"""Benchmark of a long run (not a test): memory of the whole tool while 10,000 POs are settled.

Runs the real command line (`run`, journal and reports included) against the simulator in its
own process (uniform catalog, latency off) and samples the PSS of the command's process tree
(Python, Playwright driver, Chromium) every half second, with the number of POs settled (read
from the journal). Prints the PSS at 10 %, 50 % and 100 % and the growth after the first 1,000.

    .venv/bin/python scripts/bench_long_run.py [--pos 10000] [--workers 4]
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

import psutil
from benchkit import start_run, start_sim, stop_sim, tree_pss_mb, write_po_input

PYTHON = sys.executable


def settled(journal: Path) -> int:
    try:
        db = sqlite3.connect(f"file:{journal}?mode=ro", uri=True, timeout=1)
        try:
            return db.execute("SELECT COUNT(*) FROM pos WHERE state != 'PENDING'").fetchone()[0]
        finally:
            db.close()
    except sqlite3.Error:
        return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pos", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=4)
    args = parser.parse_args()
    sim, base_url = start_sim("--pos", str(args.pos), "--profile", "uniform")
    try:
        with tempfile.TemporaryDirectory() as work:
            numbers = range(15262984, 15262984 + args.pos)
            source = write_po_input(Path(work) / "pos.csv", numbers)
            out = Path(work) / "out"
            started = time.time()
            run = start_run(source, base_url, out, Path(work), "--workers", str(args.workers))
            root = psutil.Process(run.pid)
            journal = out / ".coupa_async" / "journal.sqlite3"
            samples: list[tuple[int, float]] = []
            while run.poll() is None:
                samples.append((settled(journal), tree_pss_mb(root)))
                time.sleep(0.5)
            took = time.time() - started
            output = run.stdout.read() if run.stdout else ""
    finally:
        stop_sim(sim)
    print(f"exit {run.returncode}; {args.pos} POs in {took:.0f} s ({args.pos / took:.1f} POs/s)")
    if run.returncode not in (0, 3):
        print(output[-2000:])
        return

    def pss_at(share: float) -> tuple[int, float]:
        # At 100 % the browser may already be closing: take the last samples before that.
        wanted = int(args.pos * min(share, 0.99))
        reached = [s for s in samples if s[0] >= wanted]
        if not reached:
            return samples[-1]
        if share < 1:
            return reached[0]
        return max(reached[:4], key=lambda sample: sample[1])

    for share in (0.10, 0.50, 1.00):
        done, pss = pss_at(share)
        print(f"PSS at {share:4.0%} ({done:>6} POs settled): {pss:7.0f} MB")
    after_warmup = [pss for done, pss in samples if done >= 1000]
    if after_warmup:
        first, peak = after_warmup[0], max(after_warmup)
        print(
            f"after the first 1,000 POs: first {first:.0f} MB, peak {peak:.0f} MB, "
            f"growth {100 * (peak - first) / first:+.1f} %"
        )


if __name__ == "__main__":
    main()
