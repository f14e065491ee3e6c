"""What is measured: memory of the whole process tree, of the system and of the container.

One sample is a few reads of ``/proc`` and ``/sys/fs/cgroup``; it is synchronous and meant to run
in a thread (``asyncio.to_thread``). The tree is measured as PSS (each shared page counted once,
divided among the processes sharing it), falling back to RSS where PSS cannot be read; RSS counts
Chromium's shared memory many times over, so the fallback is said once in the log.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from coupa_async.log import get_logger

log = get_logger(__name__)

CGROUP_ROOT = Path("/sys/fs/cgroup")
PROC_PRESSURE = Path("/proc/pressure/memory")
NO_LIMIT = 1 << 60  # cgroup v1 writes "no limit" as a huge number (2**63 less a page)


@dataclass(frozen=True, slots=True)
class MemorySample:
    """One reading. Sizes are bytes; ``at`` is ``time.monotonic()``.

    ``cgroup_usage_bytes`` is the container's working set: ``memory.current`` less the
    ``inactive_file`` line of ``memory.stat`` (page cache the kernel can drop at once; the same
    figure container runtimes and Kubernetes compare with the limit). ``per_worker_bytes`` maps a
    worker id to its measured memory, where known.
    """

    at: float
    tree_bytes: int
    uses_pss: bool
    available_bytes: int
    total_bytes: int
    cgroup_limit_bytes: int | None = None
    cgroup_usage_bytes: int | None = None
    psi_some_avg10: float | None = None
    per_worker_bytes: dict[int, int] = field(default_factory=dict)
    exact: bool = True  # False: PSS estimated from the RSS since the last exact reading

    @property
    def headroom_bytes(self) -> int:
        """What can still be allocated: the system's available memory, or less in a container."""
        if self.cgroup_limit_bytes is None or self.cgroup_usage_bytes is None:
            return self.available_bytes
        return min(self.available_bytes, self.cgroup_limit_bytes - self.cgroup_usage_bytes)


@dataclass(frozen=True, slots=True)
class CgroupReading:
    limit_bytes: int | None
    usage_bytes: int | None
    psi_some_avg10: float | None


class ProcessTreeSampler:
    """Samples the tree under ``root_pid`` (default: this Python process) and the system.

    ``cpu_s`` is the CPU time spent sampling so far (user and system, of the sampling thread).
    """

    def __init__(
        self,
        root_pid: int | None = None,
        cgroup_root: Path = CGROUP_ROOT,
        proc_pressure: Path = PROC_PRESSURE,
        self_cgroup: Path = Path("/proc/self/cgroup"),
        *,
        exact_every: int = 5,
        drift: float = 0.03,
    ) -> None:
        self.root = psutil.Process(root_pid or os.getpid())
        self.cgroup_root = cgroup_root
        self.proc_pressure = proc_pressure
        self.self_cgroup = self_cgroup
        self.exact_every = max(1, exact_every)
        self.drift = drift
        self.uses_pss = True
        self.exact = True  # the last tree figure was read, not estimated
        self._last_exact: _Exact | None = None
        self._since_exact = 0
        self.cpu_s = 0.0
        self.samples = 0
        self.exact_readings = 0

    def sample(self) -> MemorySample:
        cpu_before = time.thread_time()
        tree = self.tree_bytes()
        memory = psutil.virtual_memory()
        cgroup = read_cgroup(self.cgroup_root, self.self_cgroup)
        psi = cgroup.psi_some_avg10
        if psi is None:
            psi = read_psi_some_avg10(self.proc_pressure)
        now = time.monotonic()
        self.cpu_s += time.thread_time() - cpu_before
        self.samples += 1
        return MemorySample(
            at=now,
            tree_bytes=tree,
            uses_pss=self.uses_pss,
            available_bytes=memory.available,
            total_bytes=memory.total,
            cgroup_limit_bytes=cgroup.limit_bytes,
            cgroup_usage_bytes=cgroup.usage_bytes,
            psi_some_avg10=psi,
            exact=self.exact,
        )

    def tree_bytes(self) -> int:
        """PSS (or RSS) of the root and every descendant, now.

        PSS costs about a millisecond a process (the kernel walks its page tables), RSS a few
        microseconds. Between exact readings the PSS is estimated: the last exact PSS scaled by
        how the tree's RSS moved since. It is read exactly again when a process came or went,
        when the RSS moved by more than ``drift``, and at least every ``exact_every`` samples.
        """
        try:
            processes = [self.root, *self.root.children(recursive=True)]
        except psutil.Error:
            processes = [self.root]
        rss = sum(_rss(process) for process in processes)
        if not self.uses_pss:
            return rss
        pids = frozenset(process.pid for process in processes)
        last = self._last_exact
        due = (
            last is None
            or pids != last.pids
            or self._since_exact + 1 >= self.exact_every
            or abs(rss - last.rss) > self.drift * last.rss
        )
        if not due and last is not None and last.rss > 0:
            self._since_exact += 1
            self.exact = False
            return int(last.pss * rss / last.rss)
        pss = 0
        for process in processes:
            value = self._pss(process)
            if value is None:  # PSS cannot be read here: RSS from now on
                return rss
            pss += value
        self._last_exact = _Exact(pids, rss, pss)
        self.exact_readings += 1
        self._since_exact = 0
        self.exact = True
        return pss

    def _pss(self, process: psutil.Process) -> int | None:
        try:
            pss = getattr(process.memory_full_info(), "pss", None)
        except psutil.AccessDenied:
            pss = None
        except psutil.Error:
            return 0  # gone since the listing
        if pss is not None:
            return int(pss)
        self.uses_pss = False
        log.warning(
            "memory_rss_fallback",
            detail="PSS cannot be read on this system; measuring RSS, which counts memory "
            "shared between browser processes more than once (budgets will trip early)",
        )
        return None


@dataclass(frozen=True, slots=True)
class _Exact:
    pids: frozenset[int]
    rss: int
    pss: int


def _rss(process: psutil.Process) -> int:
    try:
        return int(process.memory_info().rss)
    except psutil.Error:
        return 0


def read_cgroup(root: Path, self_cgroup: Path | None = None) -> CgroupReading:
    """The container's limit, working set and PSI: cgroup v2, else v1, else nothing."""
    v2 = _v2_dir(root, self_cgroup)
    if v2 is not None:
        limit = _read_limit(v2 / "memory.max")
        current = _read_int(v2 / "memory.current")
        inactive = _stat_value(v2 / "memory.stat", "inactive_file")
        usage = None if current is None else max(0, current - (inactive or 0))
        psi = read_psi_some_avg10(v2 / "memory.pressure")
        return CgroupReading(limit, usage, psi)
    v1 = root / "memory"
    if (v1 / "memory.limit_in_bytes").is_file():
        limits = [
            _read_limit(v1 / "memory.limit_in_bytes"),
            _stat_value(v1 / "memory.stat", "hierarchical_memory_limit"),
        ]
        known = [value for value in limits if value is not None and value < NO_LIMIT]
        current = _read_int(v1 / "memory.usage_in_bytes")
        inactive = _stat_value(v1 / "memory.stat", "total_inactive_file")
        usage = None if current is None else max(0, current - (inactive or 0))
        return CgroupReading(min(known) if known else None, usage, None)
    return CgroupReading(None, None, None)


def _v2_dir(root: Path, self_cgroup: Path | None) -> Path | None:
    """This process's cgroup v2 folder (the namespace root inside most containers)."""
    candidates = []
    if self_cgroup is not None:
        try:
            for line in self_cgroup.read_text().splitlines():
                if line.startswith("0::"):
                    candidates.append(root / line[3:].strip().lstrip("/"))
        except OSError:
            pass
    candidates.append(root)
    for folder in candidates:
        if (folder / "memory.current").is_file() or (folder / "memory.max").is_file():
            return folder
    return None


def read_psi_some_avg10(path: Path) -> float | None:
    """The ``some avg10`` figure of a PSI file: % of the last 10 s some task waited on memory."""
    try:
        text = path.read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("some "):
            for part in line.split()[1:]:
                key, _, value = part.partition("=")
                if key == "avg10":
                    try:
                        return float(value)
                    except ValueError:
                        return None
    return None


def _read_int(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _read_limit(path: Path) -> int | None:
    """A limit file: a number of bytes, or ``max`` (v2) / a huge number (v1) for none."""
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    if text == "max":
        return None
    try:
        value = int(text)
    except ValueError:
        return None
    return None if value >= NO_LIMIT else value


def _stat_value(path: Path, key: str) -> int | None:
    try:
        text = path.read_text()
    except OSError:
        return None
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name == key:
            try:
                return int(value)
            except ValueError:
                return None
    return None
