"""common.eventloop: the servers' coroutine runs to its result on a uvloop loop."""

from __future__ import annotations

import asyncio

import pytest
import uvloop

from pocketstack.common import eventloop


def test_run_gives_the_result_on_a_uvloop_loop() -> None:
    async def main() -> str:
        await asyncio.sleep(0)
        return type(asyncio.get_running_loop()).__module__

    assert eventloop.run(main()).startswith("uvloop")


def test_run_raises_what_the_coroutine_raises() -> None:
    async def main() -> None:
        raise LookupError("x")

    with pytest.raises(LookupError):
        eventloop.run(main())
    assert not isinstance(asyncio.get_event_loop_policy(), uvloop.EventLoopPolicy)
