"""Logging: secrets never reach a log line, in either format."""

from __future__ import annotations

import io
import json
import resource
import subprocess
import sys

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


@pytest.mark.skipif(not hasattr(resource, "RLIMIT_FSIZE"), reason="no file size limit here")
def test_a_log_that_cannot_be_written_any_more_does_not_stop_the_program(tmp_path) -> None:
    # stderr sent to a file that may not grow past 4 KB: a full disk, as the program sees it.
    script = (
        "from coupa_async.log import configure_logging, get_logger\n"
        "configure_logging('json', 'info')\n"
        "for n in range(500):\n"
        "    get_logger('test').info('a_line_of_the_run', n=n, padding='x' * 40)\n"
        "print('went on')\n"
    )

    def limit_file_size() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, resource.RLIM_INFINITY))

    log = tmp_path / "stderr.log"
    with log.open("w") as stderr:
        done = subprocess.run(
            [sys.executable, "-c", script],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            preexec_fn=limit_file_size,
            timeout=60,
            check=False,
        )
    assert (done.returncode, done.stdout) == (0, "went on\n")
    lines = log.read_text().splitlines()
    assert 0 < log.stat().st_size <= 4096 and '"n": 0' in lines[0]
