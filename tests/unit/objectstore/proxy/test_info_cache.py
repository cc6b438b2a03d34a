"""InfoCache: ttl, invalidation, and the generation shared by forked workers."""

from __future__ import annotations

import os

from pocketstack.objectstore.proxy.context import InfoCache


def test_hits_until_invalidated() -> None:
    cache = InfoCache(ttl=60)
    cache.put(("c", "a", "c"), None)  # "does not exist" is cached too
    assert cache.get(("c", "a", "c")) == (True, None)
    cache.invalidate(("c", "a", "c"))
    assert cache.get(("c", "a", "c")) == (False, None)


def test_a_workers_invalidation_empties_the_other_workers_cache() -> None:
    cache = InfoCache(ttl=60)
    cache.share_generation()
    cache.put(("c", "a", "c"), None)
    cache.put(("a", "a"), "info")
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # another worker creates the container
        cache.invalidate(("c", "a", "c"))
        os.write(write, b"x")
        os._exit(0)
    os.read(read, 1)
    os.waitpid(pid, 0)
    os.close(read)
    os.close(write)
    assert cache.get(("c", "a", "c")) == (False, None)
    assert cache.get(("a", "a")) == (False, None)
    cache.put(("a", "a"), "again")
    assert cache.get(("a", "a")) == (True, "again")
