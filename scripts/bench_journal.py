"""Benchmark of the journal (not a test): the cost of recording one settled PO with 3 files.

.venv/bin/python scripts/bench_journal.py [--pos 10000]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from coupa_async.results.journal import Journal
from coupa_async.results.result import Outcome, PoResult, SavedFile


def result(out: Path, n: int) -> PoResult:
    folder = out / "Supplier" / f"PO{n}_COMPLETED"
    files = [
        SavedFile(f"file{i}.pdf", folder / f"file{i}.pdf", 50_000, "ab" * 32, "PO", f"http://x/{i}")
        for i in range(3)
    ]
    now = datetime.now(UTC)
    return PoResult(
        f"PO{n}",
        Outcome.COMPLETED,
        "Supplier",
        files,
        folder=folder,
        po_url=f"http://x/order_headers/{n}",
        started_at=now,
        finished_at=now,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pos", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        out = Path(work)
        journal = Journal.open(out)
        labels = [f"PO{n}" for n in range(args.pos)]
        started = time.perf_counter()
        journal.add_pending(labels)
        pending_s = time.perf_counter() - started
        costs = []
        for n in range(args.pos):
            item = result(out, n)
            began = time.perf_counter()
            journal.record(item)
            costs.append((time.perf_counter() - began) * 1000)
        began = time.perf_counter()
        plan = journal.plan(labels)
        plan_s = time.perf_counter() - began
        assert len(plan.retry) == args.pos  # the folders do not exist here: all to redo
        journal.close()
    costs.sort()
    print(f"add_pending of {args.pos} POs: {pending_s * 1000:.0f} ms")
    print(
        f"record one PO with 3 files: median {statistics.median(costs):.3f} ms, "
        f"p99 {costs[int(len(costs) * 0.99)]:.3f} ms, max {costs[-1]:.3f} ms"
    )
    print(f"resume plan over {args.pos} POs (folders checked on disk): {plan_s * 1000:.0f} ms")


if __name__ == "__main__":
    main()
