"""Chaos soak (not a test): every fault at once, for long, then an independent check.

Runs the real command line (`run`, 4 workers) against the simulator in its own process over a
varied catalog of N POs, and while it runs injects faults at random times drawn from a seed:

- ``browser_kill``: SIGKILL of the browser process; ``renderer_crash``: SIGKILL of a renderer;
  ``converter_kill``: SIGKILL of the process converting saved e-mails (when one runs);
- ``reset_mid_file``: files whose connection is cut halfway; ``stall``: a page that answers
  only after the navigation timeout; ``burst_5xx``: a run of 500/503 answers; ``storm_429``: a
  run of 429 with ``Retry-After``; ``session_expiry``: every session dropped (besides the
  simulator expiring each session after ``--session-requests`` requests);
- ``disk_full``: the tool's process may not grow any file past 64 KB for a while
  (``RLIMIT_FSIZE``: the journal, the files and the reports all meet it);
- ``sleep``: SIGSTOP of the whole process tree, SIGCONT after ``--sleep-s`` (a laptop lid);
- ``kill``: SIGKILL of the tool's own process, then the same command again (``--kills`` times).

When the fault window (``--minutes``) is over, the run goes on without faults; when it ends,
the same command runs once more without faults, as a user would rerun it (it retries what
failed and skips what is settled). Then ``soak_check`` (which imports nothing of the package)
checks the output folder against the simulator's catalog and counters, and one line says what
happened: ``soak: seed S, N POs, F faults (…), R restarts, W s: 0 lost, 0 repeated, 0 wrong``.
The seed replays the same catalog and the same fault schedule (the timing of a run still
varies). Loopback only; stops by itself (``--limit-minutes``).

    .venv/bin/python scripts/soak.py [--pos 3000] [--seed 1] [--minutes 10] [--kills 3]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
from benchkit import TreeSampler, process_kind, start_sim, stop_sim, write_po_input
from soak_check import check

USERNAME = "buyer@example.com"  # the simulator's defaults (coupa_async.sim.DEFAULT_USERNAME)
PASSWORD = "coupa-sim-password"
NAVIGATION_S = 10.0  # the tool's navigation timeout in the soak; a stall lasts longer
DISK_LIMIT_BYTES = 64 * 1024
# The longest Retry-After of a 429 storm, and the pause before a rerun (longer than it).
MAX_RETRY_AFTER_S = 4
RERUN_AFTER_S = MAX_RETRY_AFTER_S + 1.5
# Exits the soak causes on purpose: its SIGKILL, and the full disk's exit code (6).
RESTART_CODES = (-signal.SIGKILL, 6)
# A process that ended before its signal is not an error of the soak.
_gone_is_fine = contextlib.suppress(psutil.NoSuchProcess, ProcessLookupError)
# How often each kind of fault is drawn (``kill`` and ``sleep`` are placed apart, by count).
WEIGHTS = {
    "browser_kill": 1.0,
    "renderer_crash": 2.0,
    "converter_kill": 1.0,
    "reset_mid_file": 3.0,
    "stall": 1.0,
    "burst_5xx": 2.0,
    "storm_429": 2.0,
    "session_expiry": 2.0,
    "disk_full": 1.0,
}


@dataclass(frozen=True, slots=True)
class Fault:
    at_s: float  # seconds after the soak's start
    kind: str
    params: dict[str, Any] = field(default_factory=dict)


def schedule(seed: int, window_s: float, count: int, kills: int, sleeps: int) -> list[Fault]:
    """The faults of one soak, in time order, from the seed alone."""
    draw = random.Random(seed)
    kinds, weights = list(WEIGHTS), list(WEIGHTS.values())
    faults = []
    for _ in range(count):
        kind = draw.choices(kinds, weights)[0]
        faults.append(Fault(draw.uniform(5, window_s), kind, _params(kind, draw)))
    # Kills and sleeps spread over the window, so each meets a run in a different state.
    for kind, number in (("kill", kills), ("sleep", sleeps)):
        for index in range(number):
            slot = window_s / (number + 1)
            at = slot * (index + 1) + draw.uniform(-slot / 3, slot / 3)
            faults.append(Fault(at, kind))
    return sorted(faults, key=lambda fault: fault.at_s)


def _params(kind: str, draw: random.Random) -> dict[str, Any]:
    if kind == "reset_mid_file":
        return {"count": draw.randint(1, 4)}
    if kind == "burst_5xx":
        # 500s on pages and files; a 503 is Coupa's maintenance answer, which the tool treats as
        # an outage and probes with one request at a growing interval: a few only, or a burst
        # would be minutes of maintenance.
        fault = draw.choice(["500", "500", "503"])
        count = draw.randint(3, 12) if fault == "500" else draw.randint(1, 3)
        return {
            "fault": fault,
            "count": count,
            "path": draw.choice(["/order_headers/", "/attachments/"]),
        }
    if kind == "storm_429":
        return {"count": draw.randint(2, 8), "retry_after": draw.randint(1, MAX_RETRY_AFTER_S)}
    if kind == "disk_full":
        return {"seconds": draw.uniform(2, 8)}
    return {}


# ---------------------------------------------------------------------------------------------
# The simulator


def sim_call(base_url: str, path: str, body: dict[str, Any] | None = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    method = "POST" if body is not None else "GET"
    request = urllib.request.Request(
        base_url + path, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=60) as answer:
        return json.loads(answer.read())


# ---------------------------------------------------------------------------------------------
# The tool


class Tool:
    """The tool's command line, started again after each kill; the faults that act on it."""

    def __init__(self, base_url: str, source: Path, out: Path, work: Path, workers: int) -> None:
        self.command = [sys.executable, "-m", "coupa_async", "run", str(source)]
        self.command += ["--base-url", base_url, "--out", str(out), "--workers", str(workers)]
        self.command += ["--log-format", "json"]
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("COUPA_")}
        self.env.update(
            HOME=str(work),
            COUPA_USERNAME=USERNAME,
            COUPA_PASSWORD=PASSWORD,
            COUPA_STORAGE_STATE=str(work / "state.json"),
            COUPA_TIMEOUTS__NAVIGATION_S=str(NAVIGATION_S),
        )
        self.logs = work / "logs"
        self.logs.mkdir(parents=True)
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.pids: list[int] = []
        self.exits: list[int] = []
        self.peak_mb = 0.0
        self._sampler: TreeSampler | None = None

    def start(self) -> None:
        self.starts += 1
        log = (self.logs / f"run-{self.starts}.log").open("wb")
        self.process = subprocess.Popen(
            self.command, stdout=log, stderr=subprocess.STDOUT, env=self.env
        )
        self.pids.append(self.process.pid)
        self._sampler = TreeSampler(psutil.Process(self.process.pid), pss_interval_s=1.0)
        self._sampler.__enter__()

    def wait(self, timeout: float) -> int | None:
        """The exit code, or None while it runs."""
        assert self.process is not None
        try:
            code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        if self._sampler is not None:
            self._sampler.__exit__(None, None, None)
            self.peak_mb = max(self.peak_mb, self._sampler.peak_mb)
            self._sampler = None
        self.exits.append(code)
        return code

    def tree(self) -> list[psutil.Process]:
        if self.process is None:
            return []
        try:
            root = psutil.Process(self.process.pid)
            return [root, *root.children(recursive=True)]
        except psutil.Error:
            return []

    def kill_kind(self, kind: str, draw: random.Random) -> bool:
        """SIGKILL one process of the tree of that kind (a renderer, the browser, the e-mail
        converter)."""
        chosen = [p for p in self.tree() if process_kind(p) == kind]
        if not chosen:
            return False
        with _gone_is_fine:
            draw.choice(chosen).send_signal(signal.SIGKILL)
        return True

    def kill_self(self) -> None:
        """SIGKILL of the tool's own process, as a crash would end it (its browser is left to
        Playwright's driver, which ends it when the tool's pipe closes)."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)

    def sleep(self, seconds: float) -> None:
        """Stop the whole tree, as a closed laptop lid does, and wake it ``seconds`` later."""
        tree = self.tree()
        for process in tree:
            with _gone_is_fine:
                process.send_signal(signal.SIGSTOP)
        time.sleep(seconds)
        for process in reversed(tree):
            with _gone_is_fine:
                process.send_signal(signal.SIGCONT)

    def limit_file_size(self, limit: int | None) -> bool:
        """Files of the tool's process may not grow past ``limit`` bytes; None lifts the limit
        from the whole tree (a browser relaunched meanwhile inherited it; a full disk frees up
        for every process)."""
        targets = self.tree() if limit is None else self.tree()[:1]
        for process in targets:
            try:
                # The soft limit only: raising a hard limit back needs a privilege that
                # containers often lack, and a limit that stays would be a disk never freed.
                _, hard = process.rlimit(psutil.RLIMIT_FSIZE)
                soft = hard if limit is None else min(limit, hard)
                process.rlimit(psutil.RLIMIT_FSIZE, (soft, hard))
            except (psutil.Error, OSError, ValueError):
                if limit is not None:
                    return False
        return bool(targets)


# ---------------------------------------------------------------------------------------------
# The soak


@dataclass
class Soak:
    base_url: str
    tool: Tool
    faults: list[Fault]
    sleep_s: float
    seed: int
    applied: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)
    restarts: int = 0
    unexpected_exits: list[int] = field(default_factory=list)
    _draw: random.Random = field(init=False)
    _disk_until: float | None = None

    def __post_init__(self) -> None:
        self._draw = random.Random(self.seed + 1)

    def run(self, started: float, limit_s: float) -> None:
        """Start the tool, apply the faults when due, restart it after kills and exits, until
        it ends on its own after the last fault."""
        pending = list(self.faults)
        self.tool.start()
        while True:
            if time.monotonic() - started > limit_s:
                self.tool.kill_self()
                self.tool.wait(30)
                log = self.tool.logs / f"run-{self.tool.starts}.log"
                print(f"soak: the end of {log} (run {self.tool.starts}, still going at the limit):")
                for line in tail(log, 12):
                    print(f"    {line}")
                raise SystemExit(
                    f"soak: over {limit_s / 60:.1f} minutes; stopped (seed {self.seed}); "
                    f"faults applied {dict(self.applied)}, left {len(pending)}"
                )
            self._end_disk_limit()
            code = self.tool.wait(timeout=0.2)
            if code is not None:
                self._end_disk_limit(force=True)
                if code in RESTART_CODES or code not in (0, 3):
                    if code not in RESTART_CODES:
                        self.unexpected_exits.append(code)
                    self._restart()
                    continue
                if pending:
                    # Finished before the window did: the remaining faults meet a rerun.
                    self._restart()
                    continue
                return
            while pending and time.monotonic() - started >= pending[0].at_s:
                self._apply(pending.pop(0))

    def _restart(self) -> None:
        """Run the same command again, as the user would: a few seconds later, after any
        Retry-After the simulator gave the last process (a new process cannot know of it)."""
        self.restarts += 1
        time.sleep(RERUN_AFTER_S)
        self.tool.start()

    def _apply(self, fault: Fault) -> None:
        done = True
        params = dict(fault.params)
        if fault.kind == "browser_kill":
            done = self.tool.kill_kind("browser", self._draw)
        elif fault.kind == "renderer_crash":
            done = self.tool.kill_kind("renderer", self._draw)
        elif fault.kind == "converter_kill":
            done = self.tool.kill_kind("converter", self._draw)
        elif fault.kind == "reset_mid_file":
            self._inject("reset", "/attachments/", params["count"])
        elif fault.kind == "stall":
            self._inject("hang", "/order_headers/", 1, seconds=NAVIGATION_S + 5)
        elif fault.kind == "burst_5xx":
            self._inject(params["fault"], params["path"], params["count"])
        elif fault.kind == "storm_429":
            self._inject(
                "429", "/order_headers/", params["count"], retry_after=params["retry_after"]
            )
        elif fault.kind == "session_expiry":
            sim_call(self.base_url, "/__sim/expire_sessions", {})
        elif fault.kind == "disk_full":
            done = self.tool.limit_file_size(DISK_LIMIT_BYTES)
            if done:
                self._disk_until = time.monotonic() + params["seconds"]
        elif fault.kind == "sleep":
            self.tool.sleep(self.sleep_s)
        elif fault.kind == "kill":
            self.tool.kill_self()
        (self.applied if done else self.skipped)[fault.kind] += 1

    @property
    def imposed_s(self) -> float:
        """Time the faults impose by themselves, whatever the tool does: the sleeps, each 429's
        Retry-After (the host is paused for every one answered), the stalls, and the pause
        before each rerun."""
        total = self.restarts * RERUN_AFTER_S
        for fault in self.faults:
            if self.applied[fault.kind] == 0:
                continue
            if fault.kind == "sleep":
                total += self.sleep_s
            elif fault.kind == "storm_429":
                total += fault.params["count"] * fault.params["retry_after"]
            elif fault.kind == "stall":
                total += NAVIGATION_S
        return total

    def _inject(self, fault: str, path_contains: str, count: int, **params: Any) -> None:
        body = {"fault": fault, "path_contains": path_contains, "count": count, **params}
        sim_call(self.base_url, "/__sim/inject", body)

    def _end_disk_limit(self, force: bool = False) -> None:
        if self._disk_until is not None and (force or time.monotonic() >= self._disk_until):
            self.tool.limit_file_size(None)
            self._disk_until = None


def budget_overruns(out: Path) -> tuple[int | None, int | None, int]:
    """Peak PSS and budget the run recorded each second, and the seconds over the budget."""
    path = out / ".coupa_async" / "journal.sqlite3"
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = db.execute(
            "SELECT pss_mb, budget_mb FROM samples WHERE pss_mb IS NOT NULL"
        ).fetchall()
    finally:
        db.close()
    budgets = [budget for _, budget in rows if budget is not None]
    if not rows or not budgets:
        return None, None, 0
    peak = max(pss for pss, _ in rows)
    budget = min(budgets)
    over = sum(1 for pss, budget in rows if budget is not None and pss > budget)
    return peak, budget, over


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pos", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--minutes", type=float, default=10.0, help="the window of faults")
    parser.add_argument("--faults", type=int, help="faults besides kills and sleeps")
    parser.add_argument("--kills", type=int, default=3, help="SIGKILLs of the tool, then rerun")
    parser.add_argument("--sleeps", type=int, default=2, help="SIGSTOP/SIGCONT of the tree")
    parser.add_argument("--sleep-s", type=float, default=30.0)
    parser.add_argument("--session-requests", type=int, default=400)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--limit-minutes", type=float, default=60.0)
    parser.add_argument("--keep", action="store_true", help="keep the output folder")
    parser.add_argument(
        "--baseline",
        action="store_true",
        help="first run the same catalog without faults, and compare the times",
    )
    args = parser.parse_args()
    window_s = args.minutes * 60
    count = args.faults if args.faults is not None else max(20, args.pos // 15)
    faults = schedule(args.seed, window_s, count, args.kills, args.sleeps)

    sim, base_url = start_sim(
        "--seed", str(args.seed), "--pos", str(args.pos),
        "--session-max-requests", str(args.session_requests),
    )  # fmt: skip
    work = Path(tempfile.mkdtemp(prefix="soak."))
    try:
        catalog = sim_call(base_url, "/__sim/catalog")
        source = write_po_input(work / "pos.csv", [int(po["number"]) for po in catalog["pos"]])
        baseline_s = None
        if args.baseline:
            clean = Tool(base_url, source, work / "baseline", work / "clean", args.workers)
            began = time.monotonic()
            clean.start()
            clean.wait(timeout=args.limit_minutes * 60)
            baseline_s = time.monotonic() - began
        out = work / "out"
        tool = Tool(base_url, source, out, work, args.workers)
        soak = Soak(base_url, tool, faults, args.sleep_s, args.seed)
        started = time.monotonic()
        soak.run(started, args.limit_minutes * 60)
        # The user's rerun, without faults: retries what failed, skips what is settled.
        sim_call(base_url, "/__sim/faults", {"error_rate": 0, "rate_limit_rate": 0})
        tool.start()
        final = tool.wait(timeout=args.limit_minutes * 60)
        wall = time.monotonic() - started
        stats = sim_call(base_url, "/__sim/stats")
        time.sleep(1)  # the driver's own exit, after a kill, takes its browser with it
        result = check(catalog, stats, out, tool_pids=tool.pids, profile_hint=str(work))
        kinds = ", ".join(f"{kind} {n}" for kind, n in sorted(soak.applied.items()))
        print(
            f"soak: seed {args.seed}, {args.pos} POs, {sum(soak.applied.values())} faults "
            f"({kinds}), {soak.restarts} restarts, {wall:.0f} s: {result.summary()}"
        )
        peak, budget, over = budget_overruns(out)
        print(
            f"  memory: peak PSS of the tree {tool.peak_mb:.0f} MB (sampled here), "
            f"{peak} MB as the run measured it against a budget of {budget} MB; "
            f"{over} s over the budget"
        )
        if baseline_s is not None:
            ratio = (wall - soak.imposed_s) / baseline_s
            print(
                f"  time: {wall:.0f} s with faults, {soak.imposed_s:.0f} s of it imposed by them "
                f"(sleeps, 429 waits, stalls); {baseline_s:.0f} s without faults: "
                f"{ratio:.2f}x"
            )
        if soak.skipped:
            print(f"  not applied (nothing to act on at the time): {dict(soak.skipped)}")
        if soak.unexpected_exits or final not in (0, 3):
            print(f"  exit codes other than 0/3/killed: {soak.unexpected_exits}, last {final}")
            for start, code in enumerate(tool.exits, 1):
                if code not in (0, 3, *RESTART_CODES):
                    print(f"  run {start} ended with {code}; the end of its log:")
                    for line in tail(tool.logs / f"run-{start}.log", 8):
                        print(f"    {line}")
        for problem in [*result.lost, *result.repeated, *result.wrong, *result.other]:
            print(f"  {problem}")
        if not result.ok or final not in (0, 3):
            print(f"  replay: .venv/bin/python scripts/soak.py --seed {args.seed} --pos {args.pos}")
            print(f"  logs: {tool.logs}")
            args.keep = True
            sys.exit(1)
    finally:
        stop_sim(sim)
        if args.keep:
            print(f"  kept: {work}")
        else:
            subprocess.run(["rm", "-rf", str(work)], check=False)


def tail(path: Path, lines: int) -> list[str]:
    try:
        return path.read_text(errors="replace").splitlines()[-lines:]
    except OSError as exc:
        return [f"(unreadable: {exc})"]


if __name__ == "__main__":
    main()
