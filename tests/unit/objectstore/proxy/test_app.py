"""The proxy app's own per-request work: transaction ids, and leaving rings alone."""

from __future__ import annotations

import asyncio
import os
import re
import time
from pathlib import Path
from typing import Any, cast

import pytest

from pocketstack.config import load_settings
from pocketstack.identity.middleware import TokenValidator
from pocketstack.objectstore import runtime
from pocketstack.objectstore.proxy.app import ProxyApp, TransIds
from pocketstack.objectstore.proxy.request import Request, Response
from pocketstack.objectstore.ring.ring import Ring

TRANS_ID = re.compile(r"tx[0-9a-f]{21}-[0-9a-f]{10}")


def test_trans_ids_have_swifts_format_and_are_unique() -> None:
    ids = TransIds()
    made = [ids() for _ in range(5000)]
    assert all(TRANS_ID.fullmatch(one) for one in made), made[:3]
    assert len(set(made)) == len(made)
    assert int(made[0].rsplit("-", 1)[1], 16) == pytest.approx(time.time(), abs=5)


def test_each_process_draws_its_own_prefix() -> None:
    first, second = TransIds(), TransIds()
    assert first()[:15] != second()[:15]  # 13 random hex chars apart (52 bits)
    before = first()
    first.reseed()  # what a forked child does
    assert first()[:15] != before[:15]


def test_the_counter_wraps_within_the_format() -> None:
    ids = TransIds()
    ids._counter = iter([2**32 + 5])  # type: ignore[assignment]
    assert TRANS_ID.fullmatch(made := ids()) and made[15:23] == "00000005"


def test_a_forked_child_reseeds() -> None:
    from pocketstack.objectstore.proxy import app

    read, write = os.pipe()
    parent = app.trans_id()
    pid = os.fork()
    if pid == 0:  # the child: report its id and leave at once
        os.write(write, app.trans_id().encode())
        os._exit(0)
    os.waitpid(pid, 0)
    child = os.read(read, 64).decode()
    os.close(read)
    os.close(write)
    assert TRANS_ID.fullmatch(child)
    assert child[:15] != parent[:15]


def test_requests_leave_the_ring_files_to_the_check_interval(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = {"POCKETSTACK_OBJECTSTORE__RING_CHECK_INTERVAL": "3600"}
    settings = load_settings(None, environ=env, overrides={"data_dir": tmp_path / "data"})
    built = runtime.build(settings, cast(TokenValidator, object()), access_log=False)
    checks: list[Path] = []
    original = Ring.reload_if_changed

    def counting(ring: Ring) -> bool:
        checks.append(ring.path)
        return original(ring)

    monkeypatch.setattr(Ring, "reload_if_changed", counting)
    app = ProxyApp(built.ctx)

    async def core(req: Request) -> Response:
        app.ctx.account_ring.get_part_nodes(0)  # a lookup, as the controllers do
        return Response(204, {}, b"")

    app.pipeline = core
    scope: dict[str, Any] = {"type": "http", "method": "GET", "path": "/v1/AUTH_a/c/o",
                             "raw_path": b"/v1/AUTH_a/c/o", "query_string": b"",
                             "headers": []}  # fmt: skip

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def requests() -> None:
        for _ in range(20):
            response = await app.route(Request.from_scope(scope, receive))
            assert response.status == 204

    asyncio.run(requests())
    assert checks == []
    built.ctx.reload_rings()  # what tests and operators can still force
    assert len(checks) == 2 + len(list(built.ctx.policies))
    asyncio.run(built.close())
