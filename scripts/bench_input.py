"""Benchmark reading input files and writing reports of many rows.

Generates, in a temporary folder, one input of ``--rows`` rows in each form it can write (CSV in
UTF-8, Windows-1252 and Excel's UTF-16 "Unicode Text", and XLSX), times ``read_input`` on each,
then times ``write_reports`` for those rows with a result for every valid PO, and measures the
memory that writing the reports adds (resident memory, sampled every 5 ms).

    .venv/bin/python scripts/bench_input.py [--rows 100000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import codecs
import os
import statistics
import tempfile
import threading
import time
import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import psutil
from xlsxwriter import Workbook

from coupa_async.results.result import Outcome, PoResult, SavedFile
from coupa_async.tabular import InputTable, read_input, write_reports

HEADER = ["PO_NUMBER", "SUPPLIER", "PRIORITY", "Notes", "Cost Center"]
PRIORITIES = ["", "HIGH", "low", "1", ""]
SUPPLIERS = ["Acme Corp", "Müller GmbH", "Café São Paulo Ltda", "Bolt & Nut", ""]


def make_rows(count: int) -> list[list[str]]:
    """Realistic rows: mostly PO numbers in various spellings, some duplicates and invalid ones."""
    rows = []
    for n in range(count):
        digits = 15_000_000 + n
        kind = n % 20
        if kind == 0:
            po = f"po{digits}"
        elif kind == 1:
            po = f" {digits} "
        elif kind == 2:
            po = f"PO{15_000_000 + n // 2}"  # duplicates
        elif kind == 3:
            po = "N/A"
        else:
            po = f"PO{digits}"
        rows.append([po, SUPPLIERS[n % 5], PRIORITIES[n % 5], f"note {n}; €", f"CC{n % 97}"])
    return rows


def write_csv(path: Path, rows: list[list[str]], delimiter: str, encoding: str) -> None:
    lines = [delimiter.join(cells) for cells in [HEADER, *rows]]
    text = "\r\n".join(lines) + "\r\n"
    data = text.encode(encoding)
    if encoding == "utf-16-le":
        data = codecs.BOM_UTF16_LE + data
    path.write_bytes(data)


def write_xlsx(path: Path, rows: list[list[str]]) -> None:
    with Workbook(path, {"constant_memory": True, "strings_to_numbers": False}) as book:
        sheet = book.add_worksheet("PO_Data")
        sheet.write_row(0, 0, HEADER)
        for n, cells in enumerate(rows):
            # Every other PO as a number, as Excel stores typed-in numbers (a double).
            number = n % 2 and cells[0].startswith("PO")
            po: str | float = float(cells[0][2:]) if number else cells[0]
            sheet.write_row(n + 1, 0, [po, *cells[1:]])


def timed(action: Callable[[], object], rounds: int) -> tuple[list[float], float, object]:
    """Wall-clock seconds of each round, the least CPU seconds of a round, the last value."""
    times = []
    cpu = float("inf")
    value = None
    for _ in range(rounds):
        start, start_cpu = time.perf_counter(), time.process_time()
        value = action()
        times.append(time.perf_counter() - start)
        cpu = min(cpu, time.process_time() - start_cpu)
    return times, cpu, value


def peak_memory(action: Callable[[], object]) -> tuple[float, float]:
    """Run ``action`` twice: the most memory it added, in MB, by Python's count and as RSS.

    Python's count (tracemalloc) is exact for what the code allocates; resident memory (sampled
    every 5 ms) also counts native buffers, but not memory that earlier work freed and that
    ``action`` reuses, so it can read lower.
    """
    tracemalloc.start()
    try:
        action()
        traced = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    process = psutil.Process()
    baseline = process.memory_info().rss
    peak = baseline
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.wait(0.005):
            peak = max(peak, process.memory_info().rss)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        action()
    finally:
        done.set()
        sampler.join()
    peak = max(peak, process.memory_info().rss)
    return traced / 1e6, (peak - baseline) / 1e6


def results_for(table: InputTable, out: Path) -> dict[str, PoResult]:
    now = datetime.now(UTC)
    results = {}
    for row in table.rows:
        if row.po is None or row.po.label in results:
            continue
        label = row.po.label
        folder = out / "Acme_Corp" / f"{label}_COMPLETED"
        file = SavedFile("invoice.pdf", folder / "invoice.pdf", 1000, "0" * 64, "PO", "https://x/1")
        results[label] = PoResult(
            label,
            Outcome.COMPLETED,
            supplier="Acme Corp",
            files=[file],
            po_url=f"https://tenant.coupahost.com/order_headers/{row.po.digits}",
            folder=folder,
            started_at=now,
            finished_at=now,
        )
    return results


def show(name: str, times: list[float], cpu: float, size: int) -> None:
    print(
        f"{name:<34} best {min(times):6.3f} s   median {statistics.median(times):6.3f} s"
        f"   cpu {cpu:6.3f} s   ({size / 1e6:5.1f} MB)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    rows = make_rows(args.rows)
    load = ", ".join(f"{n:.1f}" for n in os.getloadavg())
    print(f"{args.rows} rows, {args.rounds} rounds, {os.cpu_count()} CPUs, load average {load}")
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        inputs = {
            "CSV UTF-8 ','": tmp / "utf8.csv",
            "CSV Windows-1252 ';'": tmp / "cp1252.csv",
            "CSV UTF-16 LE BOM tab": tmp / "utf16.txt",
            "XLSX PO_Data": tmp / "input.xlsx",
        }
        write_csv(inputs["CSV UTF-8 ','"], rows, ",", "utf-8")
        write_csv(inputs["CSV Windows-1252 ';'"], rows, ";", "cp1252")
        write_csv(inputs["CSV UTF-16 LE BOM tab"], rows, "\t", "utf-16-le")
        write_xlsx(inputs["XLSX PO_Data"], rows)
        table: InputTable | None = None
        for name, path in inputs.items():
            times, cpu, value = timed(lambda path=path: read_input(path), args.rounds)
            assert isinstance(value, InputTable)
            assert len(value.rows) == args.rows, (name, len(value.rows))
            table = table or value
            show(f"read_input {name}", times, cpu, path.stat().st_size)
        assert table is not None
        valid = sum(1 for row in table.rows if row.po)
        print(f"rows: {len(table.rows)} ({valid} valid, {len(table.rows) - valid} invalid)")
        out = tmp / "out"
        results = results_for(table, out)
        times, cpu, paths = timed(
            lambda: write_reports(out, table.rows, results, table.columns), args.rounds
        )
        assert isinstance(paths, list)
        size = sum(p.stat().st_size for p in paths)
        show("write_reports (CSV + XLSX)", times, cpu, size)
        traced, resident = peak_memory(
            lambda: write_reports(out, table.rows, results, table.columns)
        )
        print(
            f"  memory while writing: {traced:.0f} MB allocated at the peak (tracemalloc), "
            f"{resident:.0f} MB more resident"
        )
        for path in paths:
            print(f"  {path.name}: {path.stat().st_size / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
