"""The shared HTTP plumbing: request ids."""

from __future__ import annotations

import os
import uuid

from pocketstack.common.http import keystone_request_id


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
