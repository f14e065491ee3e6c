"""Logging: secrets never reach a log line, in either format."""

from __future__ import annotations

import io
import json

import pytest
import structlog

from coupa_async.log import configure_logging, get_logger


@pytest.fixture(autouse=True)
def _reset_structlog():
    yield
    structlog.reset_defaults()


@pytest.mark.parametrize("log_format", ["console", "json"])
def test_secrets_are_removed_from_every_event(log_format: str) -> None:
    stream = io.StringIO()
    configure_logging(log_format, "debug", stream=stream)
    log = get_logger("test")
    log.info(
        "signing_in",
        password="hunter2",
        cookies=[{"name": "_coupa_session", "value": "abc123secret"}],
        headers={"Cookie": "_coupa_session=abc123secret", "Accept": "text/html"},
        url="https://acme.coupahost.com/sso?token=tok-999&page=2",
        note="Authorization: Bearer eyJhbGciOi.secretpart",
        detail="set-cookie: _coupa_session=abc123secret; Path=/",
        po="PO15262984",
    )
    text = stream.getvalue()
    for secret in ("hunter2", "abc123secret", "tok-999", "secretpart"):
        assert secret not in text, f"{secret} leaked in {text}"
    assert "PO15262984" in text and "text/html" in text and "page=2" in text


def test_json_format_writes_one_json_object_per_line() -> None:
    stream = io.StringIO()
    configure_logging("json", "info", stream=stream)
    get_logger("test").info("first", count=1)
    get_logger("test").debug("hidden")
    get_logger("test").warning("second")
    lines = stream.getvalue().splitlines()
    events = [json.loads(line) for line in lines]
    assert [e["event"] for e in events] == ["first", "second"]
    assert events[0]["count"] == 1 and events[0]["component"] == "test"
