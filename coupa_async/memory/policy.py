"""What a memory sample means: pressure or calm, and how many workers the engine should have.

The policy does no I/O and reads no clock: :meth:`MemoryPolicy.decide` is given a sample and the
time, and keeps only the little state hysteresis needs (when the last step was taken, since when
memory has been calm). Tests drive it with made-up samples.

**Default budget** (``memory.budget_mb`` unset), for the whole process tree (Python, the
Playwright driver, the browser and its children), measured as PSS:

- in a container whose memory limit is below the machine's RAM: 3/4 of the limit. The container
  is there for this job; the last quarter is room for the page cache of files being written and
  for the second or so between a sample and the drained context being gone.
- on a host (a laptop, say): half the RAM, never more than RAM less 2 GB. The other half is the
  user's own work (a browser full of tabs, an IDE); on an 8 GB laptop that is a 4 GB budget,
  enough for some 60 contexts, far more than two cores can use.
- never under 700 MB, what one browser with one worker needs (but never over 90 % of a
  container's limit).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from coupa_async.memory.sampler import MemorySample
from coupa_async.settings import MemorySettings

MIB = 1 << 20
GIB = 1 << 30
MIN_BUDGET = 700 * MIB
USER_RESERVE = 2 * GIB
HOST_SHARE = 0.5
CONTAINER_SHARE = 0.75
CONTAINER_CEILING = 0.9
MAX_EASE_FACTOR = 16  # a grow that brings pressure back doubles the next wait, up to this


def default_budget_bytes(total_bytes: int, cgroup_limit_bytes: int | None) -> int:
    """The budget when none is set: a share of the container limit, or of RAM (see module)."""
    if cgroup_limit_bytes is not None and cgroup_limit_bytes < total_bytes:
        budget = max(int(cgroup_limit_bytes * CONTAINER_SHARE), MIN_BUDGET)
        return min(budget, int(cgroup_limit_bytes * CONTAINER_CEILING))
    budget = min(int(total_bytes * HOST_SHARE), total_bytes - USER_RESERVE)
    return max(budget, MIN_BUDGET)


@dataclass(frozen=True, slots=True)
class Decision:
    """How many workers to have, and why. ``drain`` is the worker to retire first, if any."""

    target: int
    reason: str
    pressure: bool
    drain: int | None = None
    step: int = 0  # -1 one fewer, +1 one more, 0 hold


def mb(value: float) -> int:
    return round(value / MIB)


class MemoryPolicy:
    """Pressure: one worker fewer per cooldown. Calm for a while with work waiting: one more."""

    def __init__(self, settings: MemorySettings, min_workers: int, max_workers: int) -> None:
        self.settings = settings
        self.min_workers = max(1, min_workers)
        self.max_workers = max(self.min_workers, max_workers)
        self.budget_bytes: int | None = (
            settings.budget_mb * MIB if settings.budget_mb is not None else None
        )
        self.ease_factor = 1
        self.pressure_since: float | None = None  # first sample of the current pressure
        self._last_shrink_at: float | None = None
        self._calm_since: float | None = None
        self._grow_on_trial: float | None = None  # a grow not yet followed by ease_after_s calm

    # ----- figures -----------------------------------------------------------------------------

    def budget_for(self, sample: MemorySample) -> int:
        """The budget in bytes; computed from the first sample when not set."""
        if self.budget_bytes is None:
            self.budget_bytes = default_budget_bytes(sample.total_bytes, sample.cgroup_limit_bytes)
        return self.budget_bytes

    def high_bytes(self, sample: MemorySample) -> int:
        return int(self.budget_for(sample) * self.settings.high_mark)

    def low_bytes(self, sample: MemorySample) -> int:
        return int(self.budget_for(sample) * self.settings.low_mark)

    def pressure_reasons(self, sample: MemorySample) -> list[str]:
        """Why this sample is pressure; empty when it is not."""
        reasons = []
        high = self.high_bytes(sample)
        if sample.tree_bytes > high:
            reasons.append(
                f"tree {mb(sample.tree_bytes)} MB over the high mark {mb(high)} MB "
                f"({self.settings.high_mark:.0%} of {mb(self.budget_for(sample))} MB)"
            )
        floor = self.settings.min_available_mb * MIB
        if sample.headroom_bytes < floor:
            reasons.append(f"available {mb(sample.headroom_bytes)} MB under {mb(floor)} MB")
        psi_max = self.settings.psi_some_avg10_max
        if sample.psi_some_avg10 is not None and sample.psi_some_avg10 > psi_max:
            reasons.append(f"PSI some avg10 {sample.psi_some_avg10:.1f} % over {psi_max:g} %")
        return reasons

    def is_calm(self, sample: MemorySample) -> bool:
        """Below the low mark, twice the available floor, half the PSI limit: room to grow."""
        psi = sample.psi_some_avg10
        return (
            sample.tree_bytes < self.low_bytes(sample)
            and sample.headroom_bytes >= 2 * self.settings.min_available_mb * MIB
            and (psi is None or psi <= self.settings.psi_some_avg10_max / 2)
        )

    @staticmethod
    def choose_drain(active_workers: Sequence[int], per_worker: dict[int, int]) -> int | None:
        """The worker using the most memory where known, else the oldest (first listed)."""
        known = [w for w in active_workers if w in per_worker]
        if known:
            return max(known, key=lambda w: per_worker[w])  # ties: the oldest (max keeps first)
        return active_workers[0] if active_workers else None

    # ----- judgement ---------------------------------------------------------------------------

    def decide(
        self,
        sample: MemorySample,
        *,
        now: float,
        active_workers: Sequence[int],
        target: int,
        work_waiting: bool,
    ) -> Decision:
        """The target for the engine given ``sample``; ``active_workers`` oldest first."""
        current = max(self.min_workers, min(self.max_workers, target))
        if self._grow_on_trial is not None and now - self._grow_on_trial >= self._ease_wait():
            self._grow_on_trial = None  # the last grow held: no penalty any more
            self.ease_factor = max(1, self.ease_factor // 2)
        reasons = self.pressure_reasons(sample)
        if reasons:
            return self._under_pressure("; ".join(reasons), now, active_workers, current, sample)
        self.pressure_since = None
        if not self.is_calm(sample):
            self._calm_since = None
            return Decision(current, "between the marks", False)
        if self._calm_since is None:
            self._calm_since = now
        calm_for = now - self._calm_since
        if current >= self.max_workers:
            return Decision(current, f"calm, at max_workers={self.max_workers}", False)
        if not work_waiting:
            return Decision(current, "calm, no work waiting", False)
        wait = self._ease_wait()
        if calm_for < wait:
            return Decision(current, f"calm for {calm_for:.1f} of {wait:.1f} s", False)
        self._calm_since = now  # the next worker needs another calm period
        self._grow_on_trial = now
        return Decision(
            current + 1,
            f"calm for {calm_for:.1f} s (tree {mb(sample.tree_bytes)} MB under the low mark "
            f"{mb(self.low_bytes(sample))} MB) and work waiting",
            False,
            step=1,
        )

    def _under_pressure(
        self,
        reason: str,
        now: float,
        active_workers: Sequence[int],
        current: int,
        sample: MemorySample,
    ) -> Decision:
        self._calm_since = None
        if self.pressure_since is None:
            self.pressure_since = now
        if current <= self.min_workers:
            return Decision(current, f"{reason}; at min_workers={self.min_workers}", True)
        if (
            self._last_shrink_at is not None
            and now - self._last_shrink_at < self.settings.cooldown_s
        ):
            return Decision(current, f"{reason}; cooling down", True)
        self._last_shrink_at = now
        if self._grow_on_trial is not None:  # the last grow brought pressure back: wait longer
            self._grow_on_trial = None
            self.ease_factor = min(MAX_EASE_FACTOR, self.ease_factor * 2)
        drain = self.choose_drain(active_workers, sample.per_worker_bytes)
        return Decision(current - 1, reason, True, drain=drain, step=-1)

    def _ease_wait(self) -> float:
        return self.settings.ease_after_s * self.ease_factor
