"""What the benchmarks share: the simulator in its own process, and the memory of a process tree.

Benchmarks run the simulator in a process of its own so that neither its CPU nor its memory is
counted against the tool. Loopback only.
"""

from __future__ import annotations

import contextlib
import csv
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import psutil

_URL = re.compile(r"listening on (http://\S+)")


def start_sim(*sim_args: str) -> tuple[subprocess.Popen[str], str]:
    """Start ``python -m coupa_async sim --port 0 ARGS…``; return the process and its base URL."""
    process = subprocess.Popen(
        [sys.executable, "-m", "coupa_async", "sim", "--port", "0", *sim_args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        match = _URL.search(line)
        if match:
            return process, match.group(1)
    process.kill()
    raise SystemExit("the simulator did not start")


def stop_sim(process: subprocess.Popen[str]) -> None:
    """Ctrl+C the simulator and wait for it (kill it after 10 s)."""
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextlib.contextmanager
def simulator(*sim_args: str) -> Iterator[str]:
    """The simulator's base URL for the duration of a ``with`` block."""
    process, base_url = start_sim(*sim_args)
    try:
        yield base_url
    finally:
        stop_sim(process)


def tree_pss_mb(root: psutil.Process) -> float:
    """PSS of ``root`` and all its descendants in MB (RSS where PSS cannot be read)."""
    total = 0
    for process in [root, *root.children(recursive=True)]:
        try:
            info = process.memory_full_info()
            total += getattr(info, "pss", info.rss)
        except psutil.Error:
            continue
    return total / 2**20


def write_po_input(path: Path, numbers: Iterable[int]) -> Path:
    """A CSV input file with one PO number a row."""
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["PO_NUMBER"])
        writer.writerows([[f"PO{number}"] for number in numbers])
    return path


def start_run(
    source: Path, base_url: str, out: Path, work: Path, *options: str
) -> subprocess.Popen[str]:
    """``python -m coupa_async run`` against the simulator, signing in with its credentials,
    its saved session kept in ``work`` and no COUPA_* setting of this machine leaking in."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("COUPA_")}
    env.update(
        HOME=str(work),
        COUPA_USERNAME="buyer@example.com",
        COUPA_PASSWORD="coupa-sim-password",
        COUPA_STORAGE_STATE=str(out.with_name(f"{out.name}-state.json")),
    )
    command = [sys.executable, "-m", "coupa_async", "run", str(source)]
    command += ["--base-url", base_url, "--out", str(out), *options]
    return subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    )


# Chromium's --type= of a child process -> the kind reported; the browser process has none.
_CHROMIUM_TYPES = {"renderer": "renderer", "gpu-process": "gpu", "utility": "utility"}
PROCESS_KINDS = (
    "renderer", "browser", "gpu", "utility", "zygote", "python", "converter", "driver", "other"
)  # fmt: skip
CONVERTER = "coupa_async.emails.worker"  # the module of the process converting e-mails


def process_kind(process: psutil.Process) -> str:
    """What a process of the tool's tree is: a Chromium process by its ``--type=`` (renderer,
    gpu, utility: the network service and the like, zygote), the browser process (Chromium
    without ``--type=``), python (the tool), converter (its e-mail converting process), driver
    (Playwright's node), or other (crashpad, shells)."""
    try:
        command = process.cmdline()
        name = process.name()
    except psutil.Error:
        return "other"
    program = os.path.basename(command[0]) if command else name
    for arg in command[1:]:
        if arg.startswith("--type="):
            kind = arg.removeprefix("--type=")
            return _CHROMIUM_TYPES.get(kind, "zygote" if "zygote" in kind else "other")
    if "crashpad" in program or "crashpad" in name:
        return "other"
    if program.startswith("python") or name.startswith("python"):
        return "converter" if CONVERTER in command else "python"
    if program == "node" or name == "node":
        return "driver"
    if any(word in program for word in ("chrom", "headless_shell", "msedge")):
        return "browser"
    return "other"


class TreeSampler:
    """Samples a process tree from a thread until stopped: PSS by process kind (the sample with
    the largest total is kept, so the kinds add up to the peak) and CPU seconds (user + system,
    the last value seen of each process, summed: a process that ends keeps its last reading).

    CPU times are cheap to read and taken every ``interval_s``; PSS costs the kernel a walk of
    each process's page tables (about 30 ms of CPU for a browser with four contexts), so it is
    taken every ``pss_interval_s`` only.
    """

    def __init__(
        self, root: psutil.Process, interval_s: float = 0.1, pss_interval_s: float = 0.5
    ) -> None:
        self.root = root
        self.interval_s = interval_s
        self.pss_interval_s = pss_interval_s
        self.peak_mb = 0.0
        self.peak_by_kind: dict[str, float] = {}
        self.samples = 0
        self._cpu: dict[tuple[int, float], float] = {}
        self._kind: dict[tuple[int, float], str] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @property
    def cpu_s(self) -> float:
        return sum(self._cpu.values())

    @property
    def cpu_by_kind(self) -> dict[str, float]:
        """CPU seconds per process kind (a process seen only between PSS samples: other)."""
        split: dict[str, float] = {}
        for key, seconds in self._cpu.items():
            kind = self._kind.get(key, "other")
            split[kind] = split.get(kind, 0.0) + seconds
        return split

    def sample(self, pss: bool = True) -> None:
        """One sample of the whole tree (CPU times only unless ``pss``)."""
        try:
            processes = [self.root, *self.root.children(recursive=True)]
        except psutil.Error:
            return
        by_kind: dict[str, float] = {}
        for process in processes:
            try:
                times = process.cpu_times()
                key = (process.pid, process.create_time())
                self._cpu[key] = times.user + times.system
                if not pss and key in self._kind:
                    continue
                # Not cached: Chromium starts through a shell script that execs it, and a
                # zygote's child shows the zygote's command line until it becomes a renderer.
                kind = process_kind(process)
                if kind != "other" or key not in self._kind:  # an ending process reads "other"
                    self._kind[key] = kind
                if not pss:
                    continue
                info = process.memory_full_info()
            except psutil.Error:
                continue
            by_kind[kind] = by_kind.get(kind, 0.0) + getattr(info, "pss", info.rss) / 2**20
        if not pss:
            return
        self.samples += 1
        total = sum(by_kind.values())
        if total > self.peak_mb:
            self.peak_mb, self.peak_by_kind = total, by_kind

    def _run(self) -> None:
        next_pss = 0.0
        while not self._stop.is_set():
            now = time.monotonic()
            self.sample(pss=now >= next_pss)
            if now >= next_pss:
                next_pss = now + self.pss_interval_s
            self._stop.wait(self.interval_s)

    def __enter__(self) -> TreeSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
