"""Benchmark of e-mail conversion (not a test): one ~200 KB .msg to PDF plus its attachments.

.venv/bin/python scripts/bench_emails.py [--runs 10] [--profile]

The conversions run in a fresh process, as in the conversion service: the imports are timed
apart, the first call includes parsing the fonts, and the next ones show the steady cost.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import psutil

TARGET_S = 0.3
PARAGRAPH = (
    "Prezados, segue em anexo a cotação atualizada para o pedido de compra 4711, com preços "
    "válidos até o fim do mês e condições de pagamento em 30 dias. "
    "采购订单 4711 的报价单已附上，价格有效期至月底，付款条件为三十天。 "
    "Mit freundlichen Grüßen aus der Einkaufsabteilung.\n"
)


def build_msg() -> bytes:
    from coupa_async.sim.outlook import MailAttachment, MailSpec, msg_bytes

    spec = MailSpec(
        subject="Cotação PO 4711 – 采购订单报价",
        sender_name="José Conceição",
        sender_address="jose@fornecedor.example",
        to=("Anna Müller <anna@buyer.example>", "Compras <compras@buyer.example>"),
        cc=("Jürgen Groß <juergen@buyer.example>",),
        date=datetime(2026, 3, 2, 14, 5, tzinfo=UTC),
        body_text=PARAGRAPH * 60,
        attachments=(
            MailAttachment("Cotação 4711.pdf", os.urandom(150_000), "application/pdf"),
            MailAttachment("condições.txt", ("Condições: 30 dias.\n" * 50).encode()),
        ),
    )
    return msg_bytes(spec)


def child(work: Path, runs: int, profile: bool) -> None:
    """Run in the fresh process: time the imports, the first call, then ``runs`` calls."""
    started = time.perf_counter()
    import extract_msg  # noqa: F401  (else loaded by the first call)

    import coupa_async.emails.extract  # noqa: F401
    from coupa_async.emails import convert_email, find_fonts

    import_s = time.perf_counter() - started
    fonts = find_fonts()
    sources = sorted(work.glob("run*/Quote.msg"))
    started = time.perf_counter()
    first = convert_email(sources[0], "both", fonts)
    first_s = time.perf_counter() - started
    assert first.error is None and not first.skipped, first
    costs = []
    for source in sources[1 : runs + 1]:
        started = time.perf_counter()
        outcome = convert_email(source, "both", fonts)
        costs.append(time.perf_counter() - started)
        assert outcome.error is None and not outcome.skipped, outcome
    if profile:
        profiler = cProfile.Profile()
        profiler.runcall(convert_email, sources[-1], "both", fonts)
        text = io.StringIO()
        pstats.Stats(profiler, stream=text).sort_stats("cumulative").print_stats(25)
        print(text.getvalue(), file=sys.stderr)
    print(
        json.dumps(
            {
                "import_s": import_s,
                "first_s": first_s,
                "costs": costs,
                "pdf_bytes": (sources[0].parent / first.pdf).stat().st_size if first.pdf else 0,
                "extracted": len(first.extracted),
                "fonts": [str(p) for p in (fonts.regular, fonts.bold, *fonts.fallbacks) if p],
                "rss_mb": psutil.Process().memory_info().rss / 2**20,
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--profile", action="store_true", help="profile one more call")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.runs, args.profile)
        return
    data = build_msg()
    with tempfile.TemporaryDirectory() as temp:
        work = Path(temp)
        for n in range(args.runs + 2):
            folder = work / f"run{n:02d}"
            folder.mkdir()
            (folder / "Quote.msg").write_bytes(data)
        command = [sys.executable, __file__, "--child", str(work), "--runs", str(args.runs)]
        if args.profile:
            command.append("--profile")
        result = subprocess.run(command, check=True, capture_output=True, text=True)
        if args.profile:
            print(result.stderr)
        figures = json.loads(result.stdout.strip().splitlines()[-1])
    costs = figures["costs"]
    best, median = min(costs), statistics.median(costs)
    print(f"mail: {len(data) / 1024:.0f} KB .msg (body in Portuguese, Chinese, German; 2 files)")
    print(f"fonts: {', '.join(figures['fonts'])}")
    print(f"output: {figures['pdf_bytes'] / 1024:.0f} KB PDF, {figures['extracted']} files")
    print(f"imports (fresh process):         {figures['import_s']:.3f} s")
    print(f"first call (loads the fonts):    {figures['first_s']:.3f} s")
    print(f"next {len(costs)} calls: best {best:.3f} s, median {median:.3f} s")
    print(f"memory of the converting process: {figures['rss_mb']:.0f} MB")
    verdict = "within" if median <= TARGET_S else "OVER"
    print(f"target {TARGET_S:.1f} s per conversion: {verdict}")


if __name__ == "__main__":
    main()
