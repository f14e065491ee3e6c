"""The host gates: a pause is capped whatever the host asks, and holds that host only."""

from __future__ import annotations

import asyncio
import math

import pytest
import structlog

from coupa_async.session.gate import HostGates, host_of


@pytest.mark.parametrize("asked", [1e9, math.inf, 301.0])
async def test_a_pause_is_never_longer_than_the_cap(asked: float) -> None:
    gates = HostGates("https://acme.coupahost.com", max_pause_s=300)
    with structlog.testing.capture_logs() as logs:
        gates.tenant.pause_for(asked)
        gates.tenant.pause_for(asked)
    assert 299 < gates.tenant.remaining_pause_s <= 300.1
    told = [entry for entry in logs if entry["event"] == "retry_after_capped"]
    assert len(told) == 1 and "limits.retry_after_max_s" in told[0]["detail"]


@pytest.mark.parametrize("asked", [math.nan, -5.0, 0.0])
async def test_a_pause_of_nothing_holds_nothing(asked: float) -> None:
    gates = HostGates("https://acme.coupahost.com")
    gates.tenant.pause_for(asked)
    await asyncio.wait_for(gates.tenant.wait(), 5)
    assert gates.tenant.remaining_pause_s < 1


async def test_another_hosts_pause_leaves_the_tenant_open() -> None:
    gates = HostGates("https://acme.coupahost.com:443", max_pause_s=60)
    files = gates.for_url("https://files.example.net/a/b.pdf")
    files.pause_for(1e9)
    assert gates.for_url("https://FILES.example.net/other") is files
    assert gates.for_url("/attachments/1") is gates.tenant
    assert gates.for_url("https://acme.coupahost.com:443/x") is gates.tenant
    assert gates.tenant.is_open and not files.is_open
    assert not gates.is_tenant("https://files.example.net/a")
    assert host_of("https://user:p@ss@Host.example:8443/x") == "host.example:8443"
