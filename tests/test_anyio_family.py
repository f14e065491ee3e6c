"""The deadlines and task groups moved to anyio keep their meaning (issue 24)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest

from coupa_async.coupa.bounded import BodyLimits
from coupa_async.coupa.document_meter import DocumentMeter
from coupa_async.errors import AuthenticationError, PageTooLargeError
from coupa_async.signin import keeper as keeper_module
from coupa_async.signin.keeper import SessionKeeper

from .test_session_renewal import _keeper as renewal_keeper


async def _no_context(_: dict[str, Any] | None) -> Any:
    raise AssertionError("not opened in these tests")


def _keeper(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> SessionKeeper:
    """A keeper whose sign-in bound is a few hundredths of a second."""
    monkeypatch.setattr(keeper_module, "STUCK_MARGIN_S", 0.0)
    keeper = renewal_keeper(tmp_path, _no_context)
    timeouts = keeper.settings.timeouts
    keeper.settings.timeouts = timeouts.model_copy(update={"navigation_s": 0.01})
    return keeper


async def test_a_sign_in_that_never_returns_is_tried_twice_then_told(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    keeper = _keeper(tmp_path, monkeypatch)
    tries: list[int] = []
    relaunched: list[bool] = []

    async def stuck() -> dict[str, Any]:
        tries.append(1)
        await anyio.sleep_forever()
        raise AssertionError("not reached")

    async def relaunch() -> None:
        relaunched.append(True)

    monkeypatch.setattr(keeper, "_sign_in_once", stuck)
    keeper._browser_stuck = relaunch
    with pytest.raises(AuthenticationError, match="stopped answering while signing in"):
        await keeper._sign_in_fresh()
    assert len(tries) == keeper_module.SIGN_IN_TRIES
    assert relaunched == [True]  # between the two tries, not after the last


async def test_a_deadline_of_the_sign_in_s_own_is_raised_as_it_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    keeper = _keeper(tmp_path, monkeypatch)
    own = TimeoutError("the login form did not appear")

    async def times_out() -> dict[str, Any]:
        raise own

    monkeypatch.setattr(keeper, "_sign_in_once", times_out)
    with pytest.raises(TimeoutError) as raised:
        await keeper._sign_in_fresh()
    assert raised.value is own


class _Page:
    """What DocumentMeter.guard touches of a page: going to about:blank once cut off."""

    def __init__(self) -> None:
        self.visited: list[str] = []

    async def goto(self, url: str) -> None:
        self.visited.append(url)


def _meter() -> tuple[DocumentMeter, _Page]:
    page = _Page()
    return DocumentMeter(page, BodyLimits(max_bytes=1024 * 1024)), page  # type: ignore[arg-type]


async def test_guard_gives_the_navigation_s_answer_even_none() -> None:
    meter, page = _meter()

    async def navigation() -> None:
        return None

    assert await meter.guard(navigation(), "https://x.example/a") is None
    assert page.visited == []


async def test_guard_raises_the_navigation_s_own_error_as_itself() -> None:
    meter, _ = _meter()
    error = ValueError("net::ERR_ABORTED")

    async def navigation() -> None:
        raise error

    with pytest.raises(ValueError) as raised:
        await meter.guard(navigation(), "https://x.example/a")
    assert raised.value is error


async def test_guard_stops_a_navigation_whose_documents_grow_past_the_bound() -> None:
    meter, page = _meter()
    ended: list[str] = []

    async def navigation() -> None:
        try:
            meter.exceeded.set()
            await anyio.sleep_forever()
        finally:
            ended.append("cancelled")

    with pytest.raises(PageTooLargeError, match="grew past 1 MB"):
        await meter.guard(navigation(), "https://x.example/a")
    assert ended == ["cancelled"]  # the navigation does not outlive the guard
    assert page.visited == ["about:blank"]
