"""The shared HTTP plumbing: request ids, and the service edge (ids, access log, errors)."""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
from typing import Any

import pytest
from starlette.responses import JSONResponse
from starlette.types import Message, Receive, Scope, Send

from pocketstack.common.errors import ServiceError
from pocketstack.common.http import PendingApp, ServiceEdge, keystone_request_id


def test_request_ids_are_unique_uuid4s_in_keystone_form() -> None:
    ids = [keystone_request_id() for _ in range(5000)]
    assert len(set(ids)) == len(ids)
    for request_id in ids[:100] + ids[-100:]:
        assert request_id.startswith("req-")
        parsed = uuid.UUID(request_id[4:])
        assert str(parsed) == request_id[4:]
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122


def test_a_forked_child_makes_other_ids() -> None:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next ids, then leave at once
        os.write(write, " ".join(keystone_request_id() for _ in range(3)).encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    with os.fdopen(read) as pipe:
        child = set(pipe.read().split())
    parent = {keystone_request_id() for _ in range(3)}
    assert len(child) == 3 and not child & parent
    assert {i[:23] for i in child} != {i[:23] for i in parent}  # another random prefix


# -- the edge ----------------------------------------------------------------------------------
class Teapot(ServiceError):
    status = 418
    title = "I'm a teapot"


def render(error: ServiceError, scope: Scope) -> JSONResponse:
    return JSONResponse({"error": error.status, "id": scope["pocketstack.request_id"]},
                        status_code=error.status)


def drive(app: Any, **edge: Any) -> tuple[list[Message], BaseException | None]:
    """One GET through ``ServiceEdge(app)``: the messages sent, and what escaped."""
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b""}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "GET", "path": "/x", "raw_path": b"/x",
             "query_string": b"password=s3cret&a=1", "headers": [], "client": ("10.0.0.1", 5)}
    wrapped = ServiceEdge(app, service="test", id_factory=lambda: "req-1", **edge)
    try:
        asyncio.run(wrapped(scope, receive, send))
    except Exception as exc:  # noqa: BLE001 (the test looks at what escaped)
        return sent, exc
    return sent, None


async def answers(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"x-openstack-request-id", b"forged"), (b"a", b"b")]})
    await send({"type": "http.response.body", "body": b"hello", "more_body": True})
    await send({"type": "http.response.body", "body": b"!"})


async def refuses(scope: Scope, receive: Receive, send: Send) -> None:
    raise Teapot("short and stout")


async def breaks_midway(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    raise RuntimeError("disk on fire")


def test_the_id_replaces_any_the_app_sent_and_one_line_is_logged(
        caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="pocketstack.access"):
        sent, escaped = drive(answers, render=render)
    assert escaped is None
    assert sent[0]["headers"] == [(b"a", b"b"), (b"x-openstack-request-id", b"req-1")]
    lines = [r.getMessage() for r in caplog.records if r.name == "pocketstack.access"]
    assert len(lines) == 1
    assert lines[0].startswith('test 10.0.0.1 "GET /x?password=%2A%2A%2A&a=1" 200 6 ')
    assert lines[0].endswith(" req-1") and "s3cret" not in lines[0]


def test_an_error_is_rendered_with_the_request_id(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO):
        sent, escaped = drive(refuses, render=render)
    assert escaped is None
    assert sent[0]["status"] == 418
    assert (b"x-openstack-request-id", b"req-1") in sent[0]["headers"]
    assert sent[1]["body"] == b'{"error":418,"id":"req-1"}'
    assert any('"GET /x?password=%2A%2A%2A&a=1" 418 ' in r.getMessage() for r in caplog.records)


def test_a_crash_is_a_500_in_the_services_format_and_its_traceback_is_logged(
        caplog: pytest.LogCaptureFixture) -> None:
    async def crashes(scope: Scope, receive: Receive, send: Send) -> None:
        raise KeyError("boom")

    sent, escaped = drive(crashes, render=render)
    assert escaped is None and sent[0]["status"] == 500
    assert any(r.exc_info and r.levelno == logging.ERROR for r in caplog.records)


def test_a_failure_after_the_head_ends_the_response_there(
        caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO):
        sent, escaped = drive(breaks_midway, render=render)
    assert escaped is None
    assert [m["type"] for m in sent] == ["http.response.start"]  # no second response
    assert any(r.exc_info for r in caplog.records)
    assert any('"GET /x?password=%2A%2A%2A&a=1" 200 0 ' in r.getMessage() for r in caplog.records)


def test_without_a_renderer_errors_go_on_up() -> None:
    sent, escaped = drive(refuses)
    assert isinstance(escaped, Teapot) and sent == []


async def _ok(scope: Scope, receive: Receive, send: Send) -> None:
    await JSONResponse({"ok": True})(scope, receive, send)


async def _call(app: Any) -> list[Message]:
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    await app({"type": "http", "method": "GET", "path": "/", "headers": []}, receive, send)
    return sent


def test_a_pending_app_holds_requests_until_it_is_built() -> None:
    async def scenario() -> None:
        pending = PendingApp()
        early = asyncio.ensure_future(_call(pending))
        await asyncio.sleep(0.01)
        assert not early.done()
        pending.set(_ok)
        assert (await early)[0]["status"] == 200
        assert (await _call(pending))[0]["status"] == 200  # and later ones go straight in

    asyncio.run(scenario())


def test_a_pending_app_that_failed_fails_its_requests() -> None:
    async def scenario() -> None:
        pending = PendingApp()
        early = asyncio.ensure_future(_call(pending))
        await asyncio.sleep(0.01)
        pending.fail(ImportError("missing"))
        with pytest.raises(RuntimeError) as caught:
            await early
        assert isinstance(caught.value.__cause__, ImportError)
        with pytest.raises(RuntimeError):
            await _call(pending)

    asyncio.run(scenario())
