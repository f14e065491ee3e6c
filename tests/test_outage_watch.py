"""The outage watch on its own: when it declares Coupa down, how it probes, when it gives up.

The probe is handed in, so these tests script what the tenant answers; the engine's tests run the
same watch against the simulator going down for real (tests/test_outage.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

import pytest

from coupa_async.session.gate import HostGate
from coupa_async.session.outage import OutageWatch, is_network_failure


class ScriptedTenant:
    """Answers probes from a script: None (answered) or a reason; the last entry repeats."""

    def __init__(self, *answers: str | None, delay_s: float = 0.0) -> None:
        self.answers = list(answers)
        self.delay_s = delay_s
        self.calls: list[float] = []

    async def probe(self) -> str | None:
        self.calls.append(asyncio.get_running_loop().time())
        await asyncio.sleep(self.delay_s)
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]


class Harness:
    """The watch with a clock of its own: its waits are recorded and pass at once."""

    def __init__(self, tenant: ScriptedTenant, *, give_up_s: float = 60.0) -> None:
        self.gate = HostGate()
        self.tasks: list[asyncio.Task[None]] = []
        self.gave_up: list[str] = []
        self.now = 1000.0
        self.waits: list[float] = []
        self.watch = OutageWatch(
            self.gate,
            tenant.probe,
            self.spawn,
            self.gave_up.append,
            give_up_s=give_up_s,
            first_delay_s=1.0,
            max_delay_s=30.0,
            clock=lambda: self.now,
            sleep=self.sleep,
        )

    async def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)

    def spawn(self, coro: Awaitable[None], name: str) -> None:
        self.tasks.append(asyncio.ensure_future(coro))

    async def settle(self) -> None:
        await asyncio.gather(*self.tasks)


async def test_a_failure_the_tenant_answers_is_not_an_outage() -> None:
    tenant = ScriptedTenant(None)
    harness = Harness(tenant)
    assert not await harness.watch.confirm("ECONNRESET")
    assert harness.gate.is_open and not harness.watch.down and not harness.watch.outages
    assert len(tenant.calls) == 1


async def test_an_outage_closes_the_gate_backs_off_and_reopens() -> None:
    tenant = ScriptedTenant("refused", "refused", "refused", "refused", None)
    harness = Harness(tenant)
    assert await harness.watch.confirm("net::ERR_CONNECTION_REFUSED")
    assert harness.watch.down and not harness.gate.is_open
    assert harness.watch.unreachable_since is not None
    assert await harness.watch.confirm("another worker's failure")  # no second probe meanwhile
    await harness.settle()
    assert harness.gate.is_open and not harness.watch.down
    (outage,) = harness.watch.outages
    assert outage.ended is not None and outage.probes == 5
    assert harness.waits == [1.0, 2.0, 4.0, 8.0]  # backing off between the probes


async def test_failures_at_once_share_one_probe() -> None:
    tenant = ScriptedTenant("reset", None, delay_s=0.1)
    harness = Harness(tenant)
    answers = await asyncio.gather(*(harness.watch.confirm(f"failure {n}") for n in range(5)))
    assert answers == [True] * 5
    await harness.settle()
    assert harness.gate.is_open
    assert len(tenant.calls) == 2  # one probe for the five failures, one that found it back


async def test_the_gate_stays_closed_for_a_renewal_when_the_outage_ends() -> None:
    tenant = ScriptedTenant("down", None)
    harness = Harness(tenant)
    harness.gate.close("session")
    await harness.watch.confirm("ENOTFOUND")
    await harness.settle()
    assert not harness.gate.is_open  # the renewal still holds it
    harness.gate.open("session")
    assert harness.gate.is_open


async def test_it_backs_off_to_every_30_s_and_gives_up_once_after_the_bound() -> None:
    tenant = ScriptedTenant("still down")
    harness = Harness(tenant, give_up_s=180)
    await harness.watch.confirm("ETIMEDOUT")
    await harness.settle()
    assert harness.waits == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0, 30.0, 30.0]
    assert len(harness.gave_up) == 1 and "unreachable since" in harness.gave_up[0]
    assert harness.watch.down  # nothing answered: still down when the run stops
    assert len(tenant.calls) == 1 + 9  # the confirming probe, then one per wait but the last


@pytest.mark.parametrize(
    ("message", "network"),
    [
        ("Page.goto: net::ERR_NAME_NOT_RESOLVED at https://x.coupahost.com/", True),
        ("APIRequestContext.get: connect ECONNREFUSED 127.0.0.1:9", True),
        ("Cannot connect to host 127.0.0.1:9 ssl:default [Connect call failed]", True),
        ("Server disconnected", True),
        ("HTTP 404 for https://x/attachments/1", False),
        ("the server sent an HTML page instead of the file", False),
    ],
)
def test_network_failures_are_told_from_other_errors(message: str, network: bool) -> None:
    assert is_network_failure(message) is network


async def test_a_check_cancelled_midway_leaves_the_others_to_check_again() -> None:
    # A probe long enough that a loaded machine cannot finish it before the cancellation.
    tenant = ScriptedTenant("connection refused", delay_s=0.5)
    harness = Harness(tenant)
    first = asyncio.create_task(harness.watch.confirm("ECONNRESET"))
    await asyncio.sleep(0.01)  # its probe is under way
    second = asyncio.create_task(harness.watch.confirm("ECONNRESET"))
    await asyncio.sleep(0)
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    assert await second  # not cancelled with it: it probed again and found Coupa down
    assert len(tenant.calls) == 2 and harness.watch.down
    for task in harness.tasks:
        task.cancel()
