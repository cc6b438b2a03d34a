"""bench.clouds.free_port (also the tests' helper, tests.ports) never gives a process the
same port twice, even when the kernel hands the same free port out twice in a row."""

from __future__ import annotations

import socket
from collections.abc import Callable

import bench.clouds
import pytest
import tests.ports


def test_a_port_handed_out_twice_by_the_kernel_is_skipped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    kernel = iter([41001, 41001, 41001, 41002, 41001, 41003])

    class FakeSocket:
        def __enter__(self) -> FakeSocket:
            return self

        def __exit__(self, *exc: object) -> None:
            pass

        def bind(self, address: tuple[str, int]) -> None:
            self.port = next(kernel)

        def getsockname(self) -> tuple[str, int]:
            return ("127.0.0.1", self.port)

    monkeypatch.setattr(bench.clouds, "_GIVEN", set())
    monkeypatch.setattr(socket, "socket", lambda *args: FakeSocket())
    free_port: Callable[[], int] = bench.clouds.free_port
    assert [free_port(), free_port(), free_port()] == [41001, 41002, 41003]


def test_real_ports_differ() -> None:
    ports = [bench.clouds.free_port() for _ in range(50)]
    assert len(set(ports)) == 50
    assert tests.ports.free_port is bench.clouds.free_port
