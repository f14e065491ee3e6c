"""Coupa going away mid-run (VPN drop, Wi-Fi change, proxy restart, maintenance) and coming back:
a pause, not failures. The simulator really stops answering; the engine must notice, hold every
worker, charge no PO, probe with backoff and carry on when the tenant answers again.
"""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path

import pytest

from coupa_async import Downloader, Outcome, PoResult
from coupa_async.sim import Outage, SimConfig, Simulator

from .clikit import cli_env, finish, read_report, start_cli, write_input
from .runkit import check_against_catalog, settings_for

pytestmark = pytest.mark.browser


def uniform(pos: int, *outages: Outage) -> SimConfig:
    return SimConfig(
        seed=41, pos=pos, profile="uniform", uniform_files=2, uniform_file_size=20_000,
        outages=outages,
    )  # fmt: skip


# The outage begins a third of the way into the requests: POs are done and many still wait
# through it (the uniform catalog's POs take a few requests each).
@pytest.mark.parametrize(
    ("mode", "seconds", "pos"),
    [
        pytest.param("refuse", 14.0, 90, marks=pytest.mark.long),
        ("maintenance", 6.0, 60),
        ("reset", 4.0, 48),
    ],
)
async def test_an_outage_mid_run_is_a_pause_and_no_po_is_charged(
    mode: str, seconds: float, pos: int, tmp_path: Path
) -> None:
    config = uniform(pos, Outage(after_requests=pos // 3, seconds=seconds, mode=mode))
    async with Simulator(config) as sim:
        settings = settings_for(sim, tmp_path, workers=4)
        settled_at: list[float] = []

        async def note(result: PoResult) -> None:
            settled_at.append(time.time())

        async with Downloader(settings) as downloader:
            downloader.add_listener(note)
            results = [r async for r in downloader.run([f"PO{p.number}" for p in sim.catalog.pos])]
            outages = downloader.outages
            status = downloader.status()
        (record,) = sim.stats.outages
    check_against_catalog(sim, results, settings.out)
    assert all(r.outcome is Outcome.COMPLETED for r in results)
    assert all(r.attempts == 1 for r in results), "an attempt was charged for the outage"
    assert status.unreachable_since is None and status.outages == 1
    (outage,) = outages  # one outage, with its duration
    assert outage.ended is not None
    assert seconds - 1 <= outage.seconds <= seconds + 33  # until the probe after the return
    # A handful of probes on the backoff schedule (1, 2, 4, 8, 16, 30 s), not hundreds of tries.
    schedule = [1, 2, 4, 8, 16, 30]
    most = 1 + next(n for n in range(1, 7) if sum(schedule[:n]) >= seconds + 1)
    assert outage.probes <= most, outage
    if mode != "refuse":  # refused connections never reach the simulator to be counted
        assert record.requests <= outage.probes + 2 * settings.workers, record
    # Back to work promptly: the first PO settled after the return, within the probe interval.
    assert record.ended is not None
    back = min(t for t in settled_at if t >= record.ended)
    interval = max(s for s in schedule if s <= max(outage.seconds, 1))
    print(
        f"\n{mode} {seconds:.0f} s: pause {outage.seconds:.1f} s, {outage.probes} probes, "
        f"{record.requests} requests reached the simulator during it, first PO settled "
        f"{back - record.ended:.1f} s after the return (probe interval then {interval} s)"
    )
    # Back to work promptly is the probe schedule above (a handful of probes); the delay itself
    # is a figure of a busy or calm machine, printed, not asserted.


@pytest.mark.long
async def test_an_outage_longer_than_the_bound_stops_resumably_with_exit_5(
    tmp_path: Path,
) -> None:
    config = uniform(24, Outage(after_requests=10, seconds=None, mode="refuse"))
    async with Simulator(config) as sim:
        source = write_input(tmp_path / "pos.csv", [f"PO{po.number}" for po in sim.catalog.pos])
        env = cli_env(
            tmp_path,
            COUPA_USERNAME=sim.username,
            COUPA_PASSWORD=sim.password,
            COUPA_NETWORK__OUTAGE_GIVE_UP_S="4",
        )
        out = tmp_path / "out"
        args = ("run", str(source), "--base-url", sim.base_url, "--out", str(out), "--workers", "2")
        started = datetime.now().astimezone()
        code, output = await finish(await start_cli(tmp_path, *args, env=env), timeout=90)
        assert code == 5, output
        assert "Traceback" not in output
        assert "unreachable since" in output and "resume" in output
        rows = read_report(out / "report.csv")
        statuses = [row["STATUS"] for row in rows]
        assert "PENDING" in statuses and "FAILED" not in statuses and len(rows) == 24
        assert (datetime.now().astimezone() - started).total_seconds() < 60

        await sim.end_outage()
        code, output = await finish(await start_cli(tmp_path, *args, env=env), timeout=120)
        assert code == 0, output
        rows = read_report(out / "report.csv")
        assert {row["STATUS"] for row in rows} == {"COMPLETED"}
