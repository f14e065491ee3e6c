"""The command line: options to config, and `python -m coupa_async.sim` start and stop."""

from __future__ import annotations

import argparse
import asyncio
import re
import signal
import sys
from dataclasses import dataclass

import aiohttp
import pytest
from sim_testkit import fetch, new_client, sign_in

from coupa_async.sim import DEFAULT_PASSWORD, DEFAULT_USERNAME, Outage
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
    assert config.outages == () and config.control_port is None


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


def test_outage_options() -> None:
    config = config_from_args(
        _parse(
            "--outage=refuse:5po:2",
            "--outage",
            "maintenance:1.5s::30",
            "--outage=hang:0",
            "--control-port=0",
        )
    )
    assert config.outages == (
        Outage(after_requests=5, seconds=2, mode="refuse"),
        Outage(after_s=1.5, mode="maintenance", retry_after=30),
        Outage(after_s=0, mode="hang"),
    )
    assert config.control_port == 0
    for bad in ("teapot:1:1", "refuse", "refuse:0po:1", "refuse:1:-2", "reset:xpo:1"):
        with pytest.raises(ValueError, match="--outage"):
            config_from_args(_parse("--outage", bad))
        assert run_sim(_parse("--outage", bad)) == 2  # reported, nothing started


@dataclass(frozen=True)
class _Remote:
    """A simulator running in another process."""

    base_url: str
    username: str = DEFAULT_USERNAME
    password: str = DEFAULT_PASSWORD


async def _refused(url: str) -> bool:
    host, port = url.removeprefix("http://").split(":")
    try:
        _, writer = await asyncio.open_connection(host, int(port))
    except ConnectionRefusedError:
        return True
    writer.close()
    return False


async def test_module_outages_and_control_port() -> None:
    """A scheduled outage, then the control port: start, end, and Ctrl+C during a refusal."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "coupa_async.sim",
        "--pos=5",
        "--control-port=0",
        "--outage=maintenance:1po:30",
        stdout=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    try:
        banner = ""
        while "Press Ctrl+C" not in banner:
            banner += (await asyncio.wait_for(proc.stdout.readline(), 60)).decode()
        base = re.search(r"listening on (http://127\.0\.0\.1:\d+)", banner)
        control = re.search(r"control: +(http://127\.0\.0\.1:\d+)/__sim/outage", banner)
        assert base and control, banner
        assert "maintenance after 1 PO page(s), for 30 s" in banner
        remote = _Remote(base.group(1))
        endpoint = control.group(1) + "/__sim/outage"
        po = remote.base_url + "/order_headers/15262984"
        async with new_client() as client:
            await sign_in(client, remote)
            assert (await fetch(client, po))[0] in (200, 404)  # the 1st PO page: answered
            assert (await fetch(client, po))[0] == 503  # then the scheduled maintenance
            async with client.post(endpoint, json={"mode": "refuse", "seconds": 30}) as r:
                assert (await r.json())["active"]["mode"] == "refuse"
            assert await _refused(remote.base_url)
            async with client.delete(endpoint) as r:
                assert (await r.json())["active"] is None
            status, _, _ = await fetch(client, po)  # same address, still signed in
            assert status in (200, 404)
            async with client.post(endpoint, json={"mode": "refuse"}) as r:
                assert r.status == 200
            assert await _refused(remote.base_url)
        proc.send_signal(signal.SIGINT)  # stopping during a refusal (it has no end) is clean
        out, _ = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode == 0 and b"stopped" in out
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
