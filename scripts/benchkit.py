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
