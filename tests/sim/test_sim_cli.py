"""The command line: options to config, and `python -m coupa_async.sim` start and stop."""

from __future__ import annotations

import argparse
import asyncio
import re
import signal
import sys

import aiohttp
import pytest

from coupa_async.sim.cli import add_sim_arguments, config_from_args, run_sim


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_sim_arguments(parser)
    return parser.parse_args(argv)


def test_defaults_match_simconfig() -> None:
    config = config_from_args(_parse())
    assert (config.host, config.port, config.seed, config.pos) == ("127.0.0.1", 0, 1, 60)
    assert not config.sso and config.profile == "varied"
    assert config.faults.error_rate == 0
    assert config.faults.kinds == ("po_page", "pr_page", "page_data", "file")
    assert config.recipes is None


def test_recipes_option() -> None:
    config = config_from_args(_parse("--recipes", "plain_links, late_json_links,late_broken_a"))
    assert config.recipes == ("plain_links", "late_json_links", "late_broken_a")
    with pytest.raises(ValueError, match="no_such_recipe"):
        config_from_args(_parse("--recipes=plain_links,no_such_recipe"))
    assert run_sim(_parse("--recipes=no_such_recipe")) == 2  # reported, nothing started


def test_options_reach_the_config() -> None:
    config = config_from_args(
        _parse(
            "--port=8123",
            "--seed=9",
            "--pos=12",
            "--sso",
            "--session-ttl=30",
            "--session-max-requests=100",
            "--latency-ms=20",
            "--jitter-ms=5",
            "--error-rate=0.1",
            "--rate-limit-rate=0.05",
            "--retry-after=3",
            "--hang-rate=0.01",
            "--reset-rate=0.02",
            "--profile=uniform",
            "--fault-kinds=file",
        )
    )
    assert config.port == 8123 and config.seed == 9 and config.pos == 12 and config.sso
    assert config.session_ttl_seconds == 30 and config.session_max_requests == 100
    assert config.profile == "uniform"
    f = config.faults
    assert (f.latency_ms, f.jitter_ms, f.error_rate, f.rate_limit_rate) == (20, 5, 0.1, 0.05)
    assert (f.retry_after_seconds, f.hang_rate, f.reset_rate) == (3, 0.01, 0.02)
    assert f.kinds == ("file",)


async def test_module_runs_and_stops_on_ctrl_c() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "coupa_async.sim",
        "--pos",
        "5",
        "--seed",
        "3",
        stdout=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    try:
        first = (await asyncio.wait_for(proc.stdout.readline(), 60)).decode()
        match = re.search(r"listening on (http://127\.0\.0\.1:\d+)", first)
        assert match, first
        rest = b"".join([await asyncio.wait_for(proc.stdout.readline(), 30) for _ in range(5)])
        assert "buyer@example.com / coupa-sim-password" in rest.decode()
        assert "5 POs" in rest.decode()
        async with (
            aiohttp.ClientSession() as client,
            client.get(match.group(1) + "/__sim/stats") as r,
        ):
            assert r.status == 200
        proc.send_signal(signal.SIGINT)
        out, _ = await asyncio.wait_for(proc.communicate(), 30)
        assert proc.returncode == 0
        assert b"stopped" in out
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
