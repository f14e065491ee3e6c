"""Benchmark of the hostile cases (issue 23), not a test: each case against the real command.

For each case of the simulator's hostile profile (``coupa_async/sim/hostile.py``; ``--cases``
picks some), a fresh simulator in its own process holds that one PO; the tool runs as
``python -m coupa_async run INPUT --out OUT --fresh --log-format json`` with the default limits
(``network.file_hosts=["localhost"]`` for hostile_other_host_429 only) and a fresh saved
session, and is measured:

- its exit code and wall time from start to exit (the time to the sentence it ends with);
- the PO's outcome and message from ``OUT/report.csv`` (STATUS, ERROR_MESSAGE);
- the last sentences on its stderr (the lines that are not JSON log events) and its warnings;
- the peak PSS of its process tree (Python, driver, Chromium), sampled every 0.5 s;
- from the simulator's ``/__sim/stats``: password sign-ins (``logins``), requests that reached
  a path paused by a hostile Retry-After (``retry_after``), and the body bytes the hostile
  answers sent (``hostile_bytes``).

``--sign-in-loop`` adds a case: 10 POs of the varied profile whose pages all answer the sign-in
form (``POST /__sim/inject {"fault": "login_page", "path_contains": "/order_headers/",
"count": null}``); the run must stop (exit 4) after a bounded number of sign-ins.
``--stop`` runs that case once more and sends SIGTERM to the tool at its first login page
(its first ``session_expired`` log event; ``--stop-at signed_in,session_expired`` runs it once
per event named), measuring the time from the signal to the exit of the process and of its
tree, and the exit code (130: the signal ended it; 4: its own sign-in stop came first).

A case still running after ``--timeout`` seconds is killed (its whole tree) and reported as
"did not end". ``--sizes real`` is the issue's sizes (a 500 MiB page, a file declaring 3 GiB,
200 MiB gzip bombs, an endless file); ``--sizes small`` shrinks the page and the bombs for a
quick look.

    .venv/bin/python scripts/bench_hostile.py [--sizes real|small] [--cases a,b]
        [--sign-in-loop] [--stop [--stop-at EVENT,...]] [--timeout 600]
        [--json results.json] [--keep]
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psutil
from benchkit import TreeSampler, start_sim, stop_sim, write_po_input

from coupa_async.sim.config import DEFAULT_PASSWORD, DEFAULT_USERNAME
from coupa_async.sim.hostile import HOSTILE_CASES

MiB = 1024 * 1024
GiB = 1024 * MiB
SIGN_IN_LOOP = "sign_in_loop"
STOP_PREFIX = "stop@"  # a stop case: STOP_PREFIX + the log event that triggers the SIGTERM
STOP_EVENTS = ("signed_in", "session_expired")
LOOP_POS = 10
SIZES: dict[str, dict[str, int]] = {
    "real": {"page": 500 * MiB, "file": 3 * GiB, "bomb": 200 * MiB},
    "small": {"page": 50 * MiB, "file": 3 * GiB, "bomb": 20 * MiB},
}
TREE_GONE_WAIT_S = 30.0
SENTENCES_KEPT = 4
REASON_WIDTH = 70
PENDING = "PENDING"
SENTENCE_PREFIX = "coupa-async:"
PROGRESS_PREFIX = "progress:"


@dataclass
class CaseResult:
    """What one case measured."""

    case: str
    exit_code: int | None  # None: did not end before the timeout (killed)
    seconds: float
    ended: bool
    outcome: str
    message: str
    sentences: list[str]
    warnings: dict[str, int]
    last_progress: str
    peak_pss_mb: float
    peak_by_kind_mb: dict[str, float]
    sign_ins: int
    paused_reached: int
    hostile_bytes: dict[str, int]
    bytes_sent: int
    sim_stats: dict[str, Any] = field(repr=False)
    stop: dict[str, Any] | None = None

    @property
    def sent_mb(self) -> float:
        return sum(self.hostile_bytes.values()) / MiB

    @property
    def reason(self) -> str:
        """The run's last sentence when it ended on one (an error, a stop), else the PO's
        message (not a PENDING row's placeholder)."""
        last = self.sentences[-1] if self.sentences else ""
        message = "" if self.outcome.startswith(PENDING) else self.message
        run_error = self.exit_code not in (0, 3) and last.startswith(SENTENCE_PREFIX)
        text = last if run_error or not message else message
        if not self.ended:
            text = f"did not end in {self.seconds:.0f} s; {self.last_progress or text}"
        return " ".join(text.split())


# ---------------------------------------------------------------------------------------------
# The simulator


def sim_call(base_url: str, path: str, body: dict[str, Any] | None = None) -> Any:
    """GET (or POST ``body`` as JSON to) a ``/__sim/*`` endpoint; its JSON answer."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        base_url + path,
        data=data,
        method="GET" if body is None else "POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.loads(answer.read())


def sim_args(case: str, sizes: dict[str, int]) -> list[str]:
    """The simulator's options for one case."""
    if is_loop(case):
        return ["--profile", "varied", "--pos", str(LOOP_POS)]
    return [
        "--profile", "hostile", "--recipes", case,
        "--hostile-page-size", str(sizes["page"]),
        "--hostile-file-size", str(sizes["file"]),
        "--hostile-bomb-size", str(sizes["bomb"]),
    ]  # fmt: skip


# ---------------------------------------------------------------------------------------------
# The tool


class Stderr:
    """Reads the tool's stderr in a thread: keeps it in a file, its sentences (lines that are not
    JSON log events), its warnings and errors by event, and when ``trigger`` was first logged."""

    def __init__(self, stream: Any, log: Path, trigger: str | None = None) -> None:
        self.stream = stream
        self.log = log
        self.trigger = trigger
        self.sentences: list[str] = []
        self.progress = ""  # the last progress line (printed every 10 s when not a terminal)
        self.warnings: Counter[str] = Counter()
        self.triggered = threading.Event()  # the log event `trigger` was seen
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        with self.log.open("w", encoding="utf-8", buffering=1) as copy:  # line by line
            for line in self.stream:
                copy.write(line)
                text = line.strip()
                if not text:
                    continue
                try:
                    event = json.loads(text)
                except ValueError:
                    event = None
                if not isinstance(event, dict):
                    if text.startswith(PROGRESS_PREFIX):
                        self.progress = text
                    else:
                        self.sentences.append(text)
                    continue
                name = str(event.get("event", ""))
                if name == self.trigger:
                    self.triggered.set()
                if event.get("level") in ("warning", "error", "critical"):
                    self.warnings[name] += 1

    def join(self) -> None:
        self._thread.join(timeout=10)


def tool_env(base_url: str, work: Path, case: str) -> dict[str, str]:
    """The environment of the tool: no COUPA_* of this machine, the simulator's tenant and
    credentials, a fresh saved session; the default limits."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("COUPA_")}
    env.update(
        HOME=str(work),
        COUPA_BASE_URL=base_url,
        COUPA_USERNAME=DEFAULT_USERNAME,
        COUPA_PASSWORD=DEFAULT_PASSWORD,
        COUPA_STORAGE_STATE=str(work / "state.json"),
    )
    if case == "hostile_other_host_429":
        env["COUPA_NETWORK__FILE_HOSTS"] = '["localhost"]'
    return env


def tree_of(process: psutil.Process) -> list[psutil.Process]:
    """``process`` and its descendants (those still there)."""
    try:
        return [process, *process.children(recursive=True)]
    except psutil.Error:
        return []


def kill_tree(processes: list[psutil.Process]) -> None:
    """SIGKILL each process of a tree this script started (by its id)."""
    for process in processes:
        with contextlib.suppress(psutil.Error):
            process.kill()


def wait_gone(processes: list[psutil.Process], limit_s: float) -> float | None:
    """Seconds until none of ``processes`` is left, or None past ``limit_s``."""
    started = time.monotonic()
    while time.monotonic() - started < limit_s:
        if not any(_alive(process) for process in processes):
            return time.monotonic() - started
        time.sleep(0.05)
    return None


def _alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def read_report(out: Path) -> tuple[str, str]:
    """The outcome and message of the run's POs from ``report.csv`` (several POs: the count
    of each status, and the first message)."""
    path = out / "report.csv"
    if not path.is_file():
        return "no report", ""
    with path.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        return "empty report", ""
    statuses = Counter(row.get("STATUS", "") for row in rows)
    messages = [row.get("ERROR_MESSAGE", "") for row in rows if row.get("ERROR_MESSAGE")]
    if len(rows) == 1:
        outcome = rows[0].get("STATUS", "")
    else:
        outcome = " ".join(f"{status or '?'}x{count}" for status, count in statuses.items())
    return outcome, messages[0] if messages else ""


def is_loop(case: str) -> bool:
    """Whether ``case`` is the sign-in loop (measured as it is, or stopped with SIGTERM)."""
    return case == SIGN_IN_LOOP or case.startswith(STOP_PREFIX)


def run_case(case: str, sizes: dict[str, int], work: Path, timeout_s: float) -> CaseResult:
    """Start a simulator for ``case``, run the tool against it and measure the run (a stop
    case: SIGTERM at its first log event of that name)."""
    trigger = case.removeprefix(STOP_PREFIX) if case.startswith(STOP_PREFIX) else None
    work.mkdir(parents=True)
    sim, base_url = start_sim(*sim_args(case, sizes))
    try:
        if is_loop(case):
            sim_call(
                base_url,
                "/__sim/inject",
                {"fault": "login_page", "path_contains": "/order_headers/", "count": None},
            )
        numbers = [int(po["number"]) for po in sim_call(base_url, "/__sim/catalog")["pos"]]
        source = write_po_input(work / "input.csv", numbers)
        out = work / "out"
        command = [sys.executable, "-m", "coupa_async", "run", str(source), "--out", str(out)]
        command += ["--fresh", "--log-format", "json"]
        with (work / "stdout.txt").open("w") as stdout:
            started = time.monotonic()
            process = subprocess.Popen(
                command,
                cwd=work,  # no playwright.config or .env of this checkout
                env=tool_env(base_url, work, case),
                stdout=stdout,
                stderr=subprocess.PIPE,
                text=True,
                encoding="utf-8",
                errors="replace",
            )
            root = psutil.Process(process.pid)
            stderr = Stderr(process.stderr, work / "stderr.txt", trigger)
            stop_record: dict[str, Any] | None = None
            with TreeSampler(root, interval_s=0.5, pss_interval_s=0.5) as sampler:
                if trigger is not None:
                    stop_record = _stop_at_event(process, root, stderr, timeout_s)
                try:
                    exit_code: int | None = process.wait(
                        timeout=max(1.0, timeout_s - _since(started))
                    )
                except subprocess.TimeoutExpired:
                    kill_tree(tree_of(root))
                    process.wait()
                    exit_code = None
                seconds = _since(started)
            stderr.join()
        stats = sim_call(base_url, "/__sim/stats")
    finally:
        stop_sim(sim)
    outcome, message = read_report(out)
    stats.pop("file_completions", None)
    return CaseResult(
        case=case,
        exit_code=exit_code,
        seconds=round(seconds, 2),
        ended=exit_code is not None,
        outcome=outcome,
        message=message,
        sentences=stderr.sentences[-SENTENCES_KEPT:],
        warnings=dict(stderr.warnings),
        last_progress=stderr.progress,
        peak_pss_mb=round(sampler.peak_mb, 1),
        peak_by_kind_mb={k: round(v, 1) for k, v in sorted(sampler.peak_by_kind.items())},
        sign_ins=int(stats.get("logins", 0)),
        paused_reached=sum(p["reached"] for p in stats.get("retry_after", {}).values()),
        hostile_bytes=dict(stats.get("hostile_bytes", {})),
        bytes_sent=int(stats.get("bytes_sent", 0)),
        sim_stats=stats,
        stop=stop_record,
    )


def _since(started: float) -> float:
    return time.monotonic() - started


def _stop_at_event(
    process: subprocess.Popen[str], root: psutil.Process, stderr: Stderr, timeout_s: float
) -> dict[str, Any]:
    """Send SIGTERM to the tool when it first logs the trigger event; how long it took to end
    (the process, then its whole tree) and with which exit code."""
    started = time.monotonic()
    while not stderr.triggered.wait(0.02):
        if process.poll() is not None:
            return {"signalled": False, "why": f"the tool ended before {stderr.trigger}"}
        if _since(started) > timeout_s:
            return {"signalled": False, "why": f"no {stderr.trigger} before the timeout"}
    tree = tree_of(root)
    if process.poll() is not None:
        return {"signalled": False, "why": "the tool ended before the signal"}
    signalled = time.monotonic()
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return {"signalled": True, "exit_s": None, "why": "did not end after SIGTERM"}
    exit_s = _since(signalled)
    gone_s = wait_gone(tree, TREE_GONE_WAIT_S)
    left = [p.pid for p in tree if _alive(p)]
    kill_tree([p for p in tree if _alive(p)])
    return {
        "signalled": True,
        "after_start_s": round(signalled - started, 2),
        "exit_s": round(exit_s, 3),
        "tree_gone_s": None if gone_s is None else round(exit_s + gone_s, 3),
        "processes_at_signal": len(tree),
        "left_after_exit": left,
        "exit_code": process.returncode,
        "ended_by": "the signal" if process.returncode == 130 else "its own stop, first",
    }


# ---------------------------------------------------------------------------------------------
# Output


def table(results: list[CaseResult]) -> str:
    """One line per case."""
    head = (
        f"{'case':<26} {'exit':>4} {'outcome':<12} {'peak PSS MB':>11} {'sign-ins':>8} "
        f"{'paused':>6} {'sent MB':>8} {'seconds':>8}  reason"
    )
    lines = [head, "-" * len(head)]
    for r in results:
        reason = r.reason
        if len(reason) > REASON_WIDTH:
            reason = reason[: REASON_WIDTH - 1] + "…"
        exit_text = "-" if r.exit_code is None else str(r.exit_code)
        lines.append(
            f"{r.case.removeprefix('hostile_'):<26} {exit_text:>4} {r.outcome[:12]:<12} "
            f"{r.peak_pss_mb:>11.0f} {r.sign_ins:>8} {r.paused_reached:>6} {r.sent_mb:>8.1f} "
            f"{r.seconds:>8.1f}  {reason}"
        )
    return "\n".join(lines)


def notes(results: list[CaseResult]) -> list[str]:
    """What stands out: a case that did not end, memory above 1.5 GB, more than 3 sign-ins,
    and the stop measurement."""
    found = []
    for r in results:
        if not r.ended:
            found.append(f"{r.case}: did not end within {r.seconds:.0f} s (killed)")
        if r.peak_pss_mb > 1536:
            kinds = ", ".join(f"{k} {v:.0f}" for k, v in r.peak_by_kind_mb.items() if v >= 50)
            found.append(f"{r.case}: peak PSS {r.peak_pss_mb:.0f} MB ({kinds})")
        if r.sign_ins > 3:
            found.append(f"{r.case}: {r.sign_ins} sign-ins")
        if r.stop is not None:
            found.append(f"{r.case}: {json.dumps(r.stop)}")
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--cases",
        default="all",
        help="comma-separated hostile recipe names (with or without 'hostile_'); 'all' "
        "(default) or 'none'",
    )
    parser.add_argument("--sizes", choices=tuple(SIZES), default="real")
    parser.add_argument("--sign-in-loop", action="store_true", help="add the sign-in loop case")
    parser.add_argument(
        "--stop",
        action="store_true",
        help="measure SIGTERM in the sign-in loop, sent at the log events of --stop-at",
    )
    parser.add_argument(
        "--stop-at",
        default="session_expired",
        metavar="EVENT,...",
        help="log event(s) of the tool that trigger the SIGTERM, one run each: "
        f"{', '.join(STOP_EVENTS)} (default %(default)s: its first login page)",
    )
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per case")
    parser.add_argument("--json", type=Path, default=None, help="write every figure here")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (logs, out)")
    args = parser.parse_args()

    cases = _cases(args.cases)
    if args.sign_in_loop:
        cases.append(SIGN_IN_LOOP)
    if args.stop:
        cases += [f"{STOP_PREFIX}{event.strip()}" for event in args.stop_at.split(",") if event]
    if not cases:
        parser.error("nothing to run: give --cases, --sign-in-loop or --stop")
    sizes = SIZES[args.sizes]
    work = Path(tempfile.mkdtemp(prefix="bench-hostile-"))
    print(
        f"bench_hostile: {len(cases)} case(s), sizes {args.sizes} (page {sizes['page'] // MiB} "
        f"MiB, declared file {sizes['file'] // MiB} MiB, bombs {sizes['bomb'] // MiB} MiB), "
        f"timeout {args.timeout:.0f} s, work {work}",
        flush=True,
    )
    results: list[CaseResult] = []
    try:
        for index, case in enumerate(cases):
            folder = work / f"{index:02d}-{case.replace(STOP_PREFIX, 'stop-')}"
            result = run_case(case, sizes, folder, args.timeout)
            results.append(result)
            print(
                f"  {case}: exit {result.exit_code}, {result.outcome}, "
                f"{result.peak_pss_mb:.0f} MB, {result.sign_ins} sign-in(s), "
                f"{result.seconds:.1f} s",
                flush=True,
            )
    finally:
        if results:
            print()
            print(table(results))
            found = notes(results)
            if found:
                print("\nnotes:")
                for line in found:
                    print(f"  {line}")
        if args.json is not None:
            data = {
                "sizes": args.sizes,
                "size_bytes": sizes,
                "timeout_s": args.timeout,
                "cpus": os.cpu_count(),
                "results": [asdict(r) | {"reason": r.reason} for r in results],
            }
            args.json.write_text(json.dumps(data, indent=2) + "\n")
            print(f"\nfigures: {args.json}")
        if args.keep:
            print(f"work folder kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def _cases(text: str) -> list[str]:
    """The hostile cases named in ``--cases``."""
    if text.strip() == "all":
        return list(HOSTILE_CASES)
    if text.strip() == "none":
        return []
    names = []
    for name in (part.strip() for part in text.split(",")):
        if not name:
            continue
        full = name if name.startswith("hostile_") else f"hostile_{name}"
        if full not in HOSTILE_CASES:
            raise SystemExit(f"unknown case {name!r}; known: {', '.join(HOSTILE_CASES)}")
        names.append(full)
    return names


if __name__ == "__main__":
    main()
