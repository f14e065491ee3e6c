"""The memory policy alone, with made-up samples and a made-up clock."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import pytest

from coupa_async.memory.policy import GIB, MIB, MemoryPolicy, default_budget_bytes
from coupa_async.memory.sampler import MemorySample
from coupa_async.settings import MemorySettings

BUDGET_MB = 1000  # high mark 850 MB, low mark 650 MB with the default marks


def sample(
    at: float,
    tree_mb: float,
    *,
    available_mb: float = 8000,
    psi: float | None = None,
    limit_mb: float | None = None,
    usage_mb: float | None = None,
    per_worker_mb: dict[int, float] | None = None,
) -> MemorySample:
    return MemorySample(
        at=at,
        tree_bytes=int(tree_mb * MIB),
        uses_pss=True,
        available_bytes=int(available_mb * MIB),
        total_bytes=16 * GIB,
        cgroup_limit_bytes=None if limit_mb is None else int(limit_mb * MIB),
        cgroup_usage_bytes=None if usage_mb is None else int(usage_mb * MIB),
        psi_some_avg10=psi,
        per_worker_bytes={w: int(v * MIB) for w, v in (per_worker_mb or {}).items()},
    )


def policy(min_workers: int = 1, max_workers: int = 4, **overrides: object) -> MemoryPolicy:
    settings = MemorySettings(**{"budget_mb": BUDGET_MB, **overrides})  # type: ignore[arg-type]
    return MemoryPolicy(settings, min_workers, max_workers)


@dataclass
class Case:
    name: str
    start: int  # workers at the start
    ticks: list[tuple[float, dict[str, object]]]  # (time, sample fields); tree_mb required
    expected: list[int]  # the target after each tick
    work_waiting: bool = True
    bounds: tuple[int, int] = (1, 4)
    settings: dict[str, object] = field(default_factory=dict)


def calm(t: float, tree: float = 400) -> tuple[float, dict[str, object]]:
    return (t, {"tree_mb": tree})


CASES = [
    Case(
        "over the high mark: one worker fewer",
        4,
        [(0, {"tree_mb": 900})],
        [3],
    ),
    Case(
        "at the high mark exactly: not pressure",
        4,
        [(0, {"tree_mb": 850})],
        [4],
    ),
    Case(
        "cooldown: at most one step per 2 s while pressure lasts",
        4,
        [(t / 2, {"tree_mb": 900}) for t in range(9)],
        [3, 3, 3, 3, 2, 2, 2, 2, 1],
    ),
    Case(
        "pressure ends at the high mark: the shrinking stops",
        4,
        [(0, {"tree_mb": 900}), (2, {"tree_mb": 840}), (4, {"tree_mb": 840})],
        [3, 3, 3],
    ),
    Case(
        "bounds: never below min_workers",
        4,
        [(t * 2.0, {"tree_mb": 2000}) for t in range(6)],
        [3, 2, 2, 2, 2, 2],
        bounds=(2, 4),
    ),
    Case(
        "a target above max_workers is brought back within bounds",
        6,
        [calm(0)],
        [4],
    ),
    Case(
        "system available memory under its floor: pressure",
        4,
        [(0, {"tree_mb": 300, "available_mb": 400})],
        [3],
    ),
    Case(
        "container: limit less working set under the floor is pressure",
        4,
        [(0, {"tree_mb": 300, "limit_mb": 2000, "usage_mb": 1700})],
        [3],
    ),
    Case(
        "PSI some avg10 over its limit: pressure",
        4,
        [(0, {"tree_mb": 300, "psi": 35.0})],
        [3],
    ),
    Case(
        "PSI under its limit: no pressure",
        4,
        [(0, {"tree_mb": 700, "psi": 15.0})],
        [4],
    ),
    Case(
        "calm for 10 s with work waiting: one worker more, then another 10 s later",
        2,
        [calm(t) for t in range(0, 22)],
        [2] * 10 + [3] * 10 + [4, 4],
    ),
    Case(
        "calm but no work waiting: no growth",
        2,
        [calm(t) for t in range(0, 30, 5)],
        [2] * 6,
        work_waiting=False,
    ),
    Case(
        "calm at max_workers: no growth",
        4,
        [calm(t) for t in range(0, 30, 5)],
        [4] * 6,
    ),
    Case(
        "hysteresis: between the marks holds, however long",
        3,
        [(t * 5.0, {"tree_mb": 700 + (t % 3) * 50}) for t in range(12)],
        [3] * 12,
    ),
    Case(
        "calm is interrupted: the 10 s start again",
        2,
        [calm(0), calm(8), (9, {"tree_mb": 700}), calm(10), calm(19), calm(20)],
        [2, 2, 2, 2, 2, 3],
    ),
    Case(
        "calm needs twice the available floor",
        2,
        [(t, {"tree_mb": 300, "available_mb": 800}) for t in range(0, 30, 5)],
        [2] * 6,
    ),
    Case(
        "noise around the high mark: steps go down only, never up",
        4,
        [(t * 1.0, {"tree_mb": 860 if t % 2 else 830}) for t in range(12)],
        [4, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1],
    ),
    Case(
        "after pressure, growth waits for a full calm period",
        3,
        [(0, {"tree_mb": 900}), calm(1), calm(10), calm(11)],
        [2, 2, 2, 3],
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_policy_table(case: Case) -> None:
    low, high = case.bounds
    judge = policy(low, high, **case.settings)
    target = case.start
    got = []
    for at, fields in case.ticks:
        decision = judge.decide(
            sample(at, **fields),  # type: ignore[arg-type]
            now=at,
            active_workers=list(range(1, target + 1)),
            target=target,
            work_waiting=case.work_waiting,
        )
        assert decision.pressure == bool(judge.pressure_reasons(sample(at, **fields)))  # type: ignore[arg-type]
        assert decision.step == decision.target - max(low, min(high, target))
        assert decision.reason
        target = decision.target
        got.append(target)
    assert got == case.expected


def test_a_grow_that_brings_pressure_back_waits_longer_each_time() -> None:
    """Each worker costs more than the band between the marks: no flapping every 10 s."""
    judge = policy(1, 4)
    target, grows, shrinks = 1, [], []
    for t in range(0, 1200):
        tree = 400 + 230 * target  # 1 worker: 630 MB (calm), 2 workers: 860 MB (pressure)
        decision = judge.decide(
            sample(t, tree),
            now=t,
            active_workers=list(range(1, target + 1)),
            target=target,
            work_waiting=True,
        )
        if decision.step > 0:
            grows.append(t)
        if decision.step < 0:
            shrinks.append(t)
        target = decision.target
    gaps = [b - a for a, b in itertools.pairwise(grows)]
    assert len(grows) <= 12  # without the back-off: one every 11 s, about 100
    assert gaps == sorted(gaps) and gaps[-1] >= 100
    assert len(shrinks) == len(grows)  # and every grow was undone at once


def test_drain_the_worker_using_most_memory_else_the_oldest() -> None:
    judge = policy()
    over = {"tree_mb": 900}
    known = judge.decide(
        sample(0, per_worker_mb={1: 40, 2: 90, 3: 60, 9: 500}, **over),  # type: ignore[arg-type]
        now=0,
        active_workers=[1, 2, 3],  # worker 9 is already draining
        target=3,
        work_waiting=True,
    )
    assert (known.target, known.drain) == (2, 2)
    unknown = policy().decide(
        sample(0, **over),  # type: ignore[arg-type]
        now=0,
        active_workers=[5, 7, 8],
        target=3,
        work_waiting=True,
    )
    assert unknown.drain == 5
    assert MemoryPolicy.choose_drain([], {}) is None


@pytest.mark.parametrize(
    ("total_gib", "limit_gib", "expected_mib"),
    [
        (8, None, 4 * 1024),  # laptop: half the RAM
        (16, None, 8 * 1024),
        (3, None, 1024),  # RAM less 2 GB is the lower one
        (2, None, 700),  # never under what one browser needs
        (16, 4, 3 * 1024),  # container: 3/4 of the limit
        (16, 0.78125, 700),  # 800 MB limit: 600 raised to 700
        (16, 0.5, int(512 * 0.9)),  # but never over 90 % of the limit
        (8, 64, 4 * 1024),  # a limit above the RAM is no limit
    ],
)
def test_default_budget(total_gib: float, limit_gib: float | None, expected_mib: int) -> None:
    limit = None if limit_gib is None else int(limit_gib * GIB)
    budget = default_budget_bytes(int(total_gib * GIB), limit)
    assert abs(budget - expected_mib * MIB) <= MIB


def test_budget_is_computed_once_from_the_first_sample_unless_set() -> None:
    computed = MemoryPolicy(MemorySettings(), 1, 4)
    assert computed.budget_for(sample(0, 100)) == 8 * GIB
    assert policy().budget_for(sample(0, 100)) == BUDGET_MB * MIB


def test_marks_must_be_ordered() -> None:
    with pytest.raises(ValueError, match="low_mark"):
        MemorySettings(low_mark=0.9, high_mark=0.8)


def test_the_longer_wait_is_forgiven_once_a_grow_holds() -> None:
    judge = policy(1, 4)
    ticks = [(0, 400), (10, 400), (11, 900), (30, 400), (50, 400), (71, 400), (92, 400)]
    target, factors, steps = 2, [], []
    for at, tree in ticks:
        decision = judge.decide(
            sample(at, tree), now=at, active_workers=[1, 2, 3], target=target, work_waiting=True
        )
        target = decision.target
        factors.append(judge.ease_factor)
        steps.append(decision.step)
    # grow at 10, pressure at 11 (the wait doubles), a grow after 20 s of calm that holds for
    # 20 s (the wait halves again), then the last worker up to max_workers
    assert steps == [0, 1, -1, 0, 1, 1, 0]
    assert factors == [1, 1, 2, 2, 2, 1, 1]
