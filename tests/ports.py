"""Free loopback ports for the servers tests start (one helper for every suite): the
bench's, which never gives a process the same port twice."""

from __future__ import annotations

from bench.clouds import free_port

__all__ = ["free_port"]
